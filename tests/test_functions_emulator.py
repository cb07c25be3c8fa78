"""The deployed shape: the scheduled pulse and its Cloud Tasks fan-out, run by the Functions
emulator (its own Python runtime, reading functions/.env.demo-agenttrader) against the
stand-ins this test process serves."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import firebase_admin
import requests
from google.cloud import firestore

from agenttrader import runtime
from agenttrader.broker.keystore import KeyStore
from agenttrader.context.platform import Platform
from agenttrader.pulse.people import PulseSettings
from agenttrader.pulse.run import run_pulse
from agenttrader.store import paths
from localdev import emulators
from localdev.alpaca_standin import AlpacaServer
from localdev.seed import open_trade, register_alpaca_account, seed_user

OPEN_MONDAY = 1_795_446_000.0  # 2026-11-23 15:00 UTC, 10:00 in New York


def wait_for(check: Callable[[], bool], seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"not reached within {seconds} s")


def seed(alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore, n: int) -> list[str]:
    uids = []
    for i in range(n):
        uid = f"user{i:03d}"
        keys = register_alpaca_account(alpaca.url, f"PKFANOUT{i:03d}", "secret-key-1")
        seed_user(db, keystore, uid, keys=keys)
        open_trade(db, uid, "t1", "AAPL", "BUY", "2", "150")
        uids.append(uid)
    return uids


def synced(db: firestore.Client, uids: list[str]) -> Callable[[], bool]:
    def check() -> bool:
        refs = [paths.account_snapshot(db, uid) for uid in uids]
        return all(doc.exists for doc in db.get_all(refs))

    return check


def market_open(alpaca: AlpacaServer) -> None:
    """The stand-in's clock at a Monday 10:00 in New York: the scheduled run prices trades."""
    requests.post(
        f"{alpaca.url}/_standin/clock", json={"now": OPEN_MONDAY}, timeout=5
    ).raise_for_status()


def test_scheduled_pulse_runs_in_the_functions_emulator(
    alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    market_open(alpaca)
    uids = seed(alpaca, db, keystore, 3)
    answer = emulators.run_scheduled("pulse")
    assert answer.status_code == 200, answer.text
    wait_for(synced(db, uids))
    last = paths.last_pulse(db).get().to_dict() or {}
    assert (last["mode"], last["synced"]) == ("in_process", 3)
    marks = paths.marks(db, "user000").get().to_dict() or {}
    assert marks["trades"]["t1"]["current_price"]  # priced while the market is open


def test_fanout_through_the_task_queue(
    platform: Platform, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    assert os.environ.get("CLOUD_TASKS_EMULATOR_HOST"), "the tasks emulator must be running"
    if not firebase_admin._apps:
        firebase_admin.initialize_app(options={"projectId": os.environ["GCLOUD_PROJECT"]})
    market_open(alpaca)
    uids = seed(alpaca, db, keystore, 7)
    to_queue = runtime.sync_queue()
    enqueued: list[dict[str, Any]] = []

    def enqueue(task: dict[str, Any]) -> None:
        """The queue delivers each task twice, as Cloud Tasks may (at least once)."""
        enqueued.append(task)
        to_queue(task)
        to_queue(task)

    settings = PulseSettings(fanout_threshold=5, fanout_batch=3)
    summary = run_pulse(platform, settings, enqueue=enqueue)

    assert summary.mode == "fanout"
    assert summary.tasks_enqueued == 3
    assert sorted(task_user[0] for task in enqueued for task_user in task["users"]) == uids
    wait_for(synced(db, uids))
    run = paths.pulse_run(db, summary.run_id)
    wait_for(lambda: (run.get().to_dict() or {}).get("synced") == 7)
    claimed = {doc.id for doc in run.collection("batches").stream()}
    assert claimed == {"0", "1", "2"}
    wait_for(lambda: set(requests_by_account(alpaca, "account")) == set(uids))
    time.sleep(3)  # a second delivery's sync would land by now
    # each person synced once: one account read each, counted once in the run's record
    assert requests_by_account(alpaca, "account") == dict.fromkeys(uids, 1)
    assert (run.get().to_dict() or {})["synced"] == 7
    last = paths.last_pulse(db).get().to_dict() or {}
    assert last["run_id"] == summary.run_id
    assert last["synced"] == 7


def requests_by_account(alpaca: AlpacaServer, endpoint: str) -> dict[str, int]:
    """Requests to `endpoint` by the person whose keys made them (their uid)."""
    stats = requests.get(f"{alpaca.url}/_standin/stats", timeout=5).json()["by_key"]
    return {
        f"user{key[-3:]}": counts[endpoint]
        for key, counts in stats.items()
        if key.startswith("PKFANOUT") and counts.get(endpoint)
    }


def test_one_trigger_is_one_pulse_even_on_fresh_workers(
    alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    """The emulator probes every new worker with GET /__/health; that must not run a pulse.
    Overlapping triggers make it start new workers, each probed; each trigger is one run in
    the history (the lease lets one sync, the others record that they stood aside)."""
    market_open(alpaca)
    seed(alpaca, db, keystore, 1)
    runs = paths.pulse_run(db, "x").parent
    triggers = 3
    with ThreadPoolExecutor(max_workers=triggers) as pool:
        answers = list(pool.map(lambda _: emulators.run_scheduled("pulse"), range(triggers)))
    assert [a.status_code for a in answers] == [200] * triggers
    wait_for(lambda: len(list(runs.stream())) >= triggers)
    time.sleep(2)  # a probe's extra run would land by now
    assert len(list(runs.stream())) == triggers
