"""The pulse on the Firestore emulator with the Alpaca and Secret Manager stand-ins."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import grpc
import pytest
import requests
from google.cloud import firestore

from agenttrader.bot.books import stored_books
from agenttrader.bot.performance import Performance
from agenttrader.bot.settings import load_bot_config
from agenttrader.broker.alpaca import AlpacaBroker, BrokerFactory
from agenttrader.broker.keystore import AlpacaKeys, KeyStore, KeyStoreError
from agenttrader.context.platform import Platform
from agenttrader.core.errors import ErrorCode
from agenttrader.pulse.people import PulseSettings, UserRef
from agenttrader.pulse.prime import PRIME_MIN, prime
from agenttrader.pulse.run import run_pulse
from agenttrader.store import paths
from localdev.alpaca_standin import AlpacaServer, price_at
from localdev.secret_manager_standin import SecretManagerServer
from localdev.seed import open_trade, register_alpaca_account, seed_user

NOW = 1_790_000_000.0


def freeze(alpaca: AlpacaServer, now: float = NOW) -> None:
    requests.post(f"{alpaca.url}/_standin/clock", json={"now": now}, timeout=5).raise_for_status()


def user_with_account(
    alpaca: AlpacaServer,
    db: firestore.Client,
    keystore: KeyStore,
    uid: str,
    *,
    fault: dict[str, Any] | None = None,
    trading: bool | None = True,
    cash: str = "10000",
) -> AlpacaKeys:
    keys = register_alpaca_account(
        alpaca.url, f"PK{uid.upper():0<10}", "secret-key-1", cash=cash, fault=fault
    )
    seed_user(db, keystore, uid, keys=keys, trading=trading)
    return keys


def get(ref: firestore.DocumentReference) -> dict[str, Any] | None:
    snapshot = ref.get()
    return snapshot.to_dict() if snapshot.exists else None


def test_every_kind_of_user_in_one_run(
    platform: Platform, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    freeze(alpaca)
    user_with_account(alpaca, db, keystore, "healthy", cash="12345.67")
    seed_user(db, keystore, "badkeys", keys=AlpacaKeys(key_id="PKUNKNOWN1", secret_key="nope-nope"))
    seed_user(db, keystore, "nokeys", keys=None)
    user_with_account(alpaca, db, keystore, "switchedoff", trading=False)
    user_with_account(alpaca, db, keystore, "neverswitched", trading=None)

    summary = run_pulse(platform)

    assert summary.users_total == 5
    assert dict(summary.counts) == {
        "synced": 1,
        "failed": 1,
        "skipped_no_keys": 1,
        "skipped_disabled": 2,
    }
    assert dict(summary.errors) == {"ALPACA_UNAUTHORIZED": 1}
    snapshot = get(paths.account_snapshot(db, "healthy"))
    assert snapshot is not None
    assert snapshot["cash"] == "12345.67"
    assert snapshot["status"] == "ACTIVE"
    assert get(paths.last_sync_error(db, "healthy")) is None
    error = get(paths.last_sync_error(db, "badkeys"))
    assert error is not None
    assert error["code"] == "ALPACA_UNAUTHORIZED"
    assert error["run_id"] == summary.run_id
    assert "keys" in error["message"]
    assert (get(paths.sync_status(db, "badkeys")) or {})["consecutive_failures"] == 1
    for uid in ("badkeys", "nokeys", "switchedoff", "neverswitched"):
        assert get(paths.account_snapshot(db, uid)) is None
    last = get(paths.last_pulse(db))
    assert last is not None
    assert last["run_id"] == summary.run_id
    assert (last["synced"], last["failed"], last["skipped_disabled"]) == (1, 1, 2)


def test_global_kill_switch_halts_everyone(
    platform: Platform, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    user_with_account(alpaca, db, keystore, "alice")
    paths.global_trading(db).set({"enabled": False, "updated_by": "ops"})
    summary = run_pulse(platform)
    assert summary.halted
    assert sum(summary.counts.values()) == 0
    assert get(paths.account_snapshot(db, "alice")) is None
    assert requests.get(f"{alpaca.url}/_standin/stats", timeout=5).json()["total"] == 0
    assert (get(paths.last_pulse(db)) or {})["halted"] is True


def test_empty_user_collection(platform: Platform, db: firestore.Client) -> None:
    summary = run_pulse(platform)
    assert summary.users_total == 0
    assert (get(paths.last_pulse(db)) or {})["users_total"] == 0


def test_exact_pnl_for_long_and_short_trades(
    platform: Platform, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    freeze(alpaca)
    user_with_account(alpaca, db, keystore, "trader")
    open_trade(db, "trader", "long", "AAPL", "BUY", "3", "100.10")
    open_trade(db, "trader", "short", "MSFT", "SELL", "0.5", "400.20")
    open_trade(db, "trader", "long2", "AAPL", "BUY", "1.25", "0.10")
    paths.shadow_trades(db, "trader").document("closed").set(
        {"symbol": "TSLA", "side": "BUY", "quantity": "1", "entry_price": "5", "status": "CLOSED"}
    )
    run_pulse(platform)

    aapl, msft = price_at("AAPL", NOW), price_at("MSFT", NOW)
    marks = get(paths.marks(db, "trader")) or {}
    assert marks["priced_at"] is not None
    assert set(marks["trades"]) == {"long", "short", "long2"}  # open trades only
    long = marks["trades"]["long"]
    assert long["current_price"] == str(aapl)
    pnl = (aapl - Decimal("100.10")) * 3
    assert long["unrealized_pnl"] == str(pnl.quantize(Decimal("0.01")))
    expected_pct = (pnl / (Decimal("100.10") * 3) * 100).quantize(Decimal("0.0001"))
    assert long["pnl_percent"] == str(expected_pct)
    short = marks["trades"]["short"]
    short_pnl = (Decimal("400.20") - msft) * Decimal("0.5")
    assert short["unrealized_pnl"] == str(short_pnl.quantize(Decimal("0.01")))
    assert short["current_price"] == str(msft)
    # prices for all symbols came in one request
    stats = requests.get(f"{alpaca.url}/_standin/stats", timeout=5).json()
    assert stats["by_key"]["PKTRADER0000"]["latest_trades"] == 1


def test_unchanged_data_is_not_rewritten_and_changes_are(
    platform: Platform, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    freeze(alpaca)
    user_with_account(alpaca, db, keystore, "trader")
    open_trade(db, "trader", "t1", "AAPL", "BUY", "1", "100")
    open_trade(db, "trader", "t2", "AAPL", "BUY", "2", "101")
    open_trade(db, "trader", "t3", "MSFT", "SELL", "1", "400")
    run_pulse(platform)
    first_snapshot = get(paths.account_snapshot(db, "trader")) or {}
    first_marks = get(paths.marks(db, "trader")) or {}
    trades = paths.shadow_trades(db, "trader")
    written_at = {t: trades.document(t).get().update_time for t in ("t1", "t2", "t3")}

    run_pulse(platform)
    assert (get(paths.account_snapshot(db, "trader")) or {})["synced_at"] == first_snapshot[
        "synced_at"
    ]
    assert (get(paths.marks(db, "trader")) or {})["priced_at"] == first_marks["priced_at"]

    freeze(alpaca, NOW + 600)
    run_pulse(platform)
    marks = get(paths.marks(db, "trader")) or {}
    assert marks["trades"]["t1"]["current_price"] == str(price_at("AAPL", NOW + 600))
    assert marks["trades"]["t3"]["current_price"] == str(price_at("MSFT", NOW + 600))
    assert marks["priced_at"] > first_marks["priced_at"]
    # three trades' marks moved: one document written for them, the trades left alone
    assert {t: trades.document(t).get().update_time for t in written_at} == written_at


def test_429_then_success_is_retried_within_the_run(
    platform: Platform, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    fault = {"kind": "http", "status": 429, "retry_after": 0.2, "times": 2}
    user_with_account(alpaca, db, keystore, "busy", fault=fault)
    summary = run_pulse(platform)
    assert summary.counts["synced"] == 1
    stats = requests.get(f"{alpaca.url}/_standin/stats", timeout=5).json()
    assert stats["by_key"]["PKBUSY000000"]["account"] == 3
    assert get(paths.account_snapshot(db, "busy")) is not None


def test_429_that_persists_is_recorded_and_cleared_on_success(
    platform: Platform, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    fault = {"kind": "http", "status": 429, "retry_after": 0.1, "times": 6}
    user_with_account(alpaca, db, keystore, "busy", fault=fault)
    user_with_account(alpaca, db, keystore, "calm")
    first = run_pulse(platform)
    assert dict(first.counts) == {"synced": 1, "failed": 1}
    assert (get(paths.last_sync_error(db, "busy")) or {})["code"] == "ALPACA_RATE_LIMITED"
    second = run_pulse(platform)
    assert second.counts["failed"] == 1
    assert (get(paths.sync_status(db, "busy")) or {})["consecutive_failures"] == 2
    third = run_pulse(platform)
    assert third.counts["synced"] == 2
    assert get(paths.last_sync_error(db, "busy")) is None
    sync = get(paths.sync_status(db, "busy")) or {}
    assert sync["consecutive_failures"] == 0
    assert "last_error_code" not in sync
    assert "lease" not in sync


def test_unauthorized_is_not_retried(
    platform: Platform, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    user_with_account(alpaca, db, keystore, "locked", fault={"kind": "http", "status": 403})
    summary = run_pulse(platform)
    assert summary.errors["ALPACA_UNAUTHORIZED"] == 1
    stats = requests.get(f"{alpaca.url}/_standin/stats", timeout=5).json()
    assert stats["by_key"]["PKLOCKED0000"] == {"account": 1}


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ({"kind": "slow", "seconds": 3.0}, "ALPACA_TIMEOUT"),
        ({"kind": "http", "status": 500}, "ALPACA_UNAVAILABLE"),
        ({"kind": "malformed"}, "ALPACA_MALFORMED"),
    ],
)
def test_one_users_fault_leaves_the_others_synced(
    platform: Platform,
    alpaca: AlpacaServer,
    db: firestore.Client,
    keystore: KeyStore,
    fault: dict[str, Any],
    code: str,
) -> None:
    user_with_account(alpaca, db, keystore, "faulty", fault=fault)
    for i in range(3):
        user_with_account(alpaca, db, keystore, f"fine{i}")
    summary = run_pulse(platform)
    assert summary.counts["synced"] == 3
    assert dict(summary.errors) == {code: 1}
    assert (get(paths.last_sync_error(db, "faulty")) or {})["code"] == code
    for i in range(3):
        assert get(paths.account_snapshot(db, f"fine{i}")) is not None


def test_a_crash_mid_user_writes_nothing_half_done(
    platform: Platform,
    brokers: BrokerFactory,
    alpaca: AlpacaServer,
    db: firestore.Client,
    keystore: KeyStore,
) -> None:
    freeze(alpaca)  # the market is open: open trades are priced
    crash_keys = user_with_account(alpaca, db, keystore, "crashy")
    user_with_account(alpaca, db, keystore, "fine")
    for uid in ("crashy", "fine"):
        open_trade(db, uid, "t1", "AAPL", "BUY", "1", "100")
    seeded = get(paths.shadow_trades(db, "crashy").document("t1"))

    class CrashingBroker(AlpacaBroker):
        def latest_prices(self, symbols: list[str]) -> dict[str, Decimal]:
            raise RuntimeError("injected crash after the account was read")

    def make(keys: AlpacaKeys) -> AlpacaBroker:
        if keys.key_id == crash_keys.key_id:
            return CrashingBroker(keys, trading_url=alpaca.url, data_url=alpaca.url)
        return brokers(keys)

    summary = run_pulse(replace(platform, brokers=make))
    assert dict(summary.errors) == {"INTERNAL": 1}
    assert get(paths.account_snapshot(db, "crashy")) is None
    assert get(paths.shadow_trades(db, "crashy").document("t1")) == seeded
    assert get(paths.marks(db, "crashy")) is None  # not marked
    assert (get(paths.last_sync_error(db, "crashy")) or {})["code"] == "INTERNAL"
    assert "t1" in (get(paths.marks(db, "fine")) or {})["trades"]
    # the next run, without the crash, finishes the job
    assert run_pulse(platform).counts["synced"] == 2
    assert get(paths.account_snapshot(db, "crashy")) is not None


def test_overlapping_runs_never_sync_anyone_twice_at_once(
    platform: Platform, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    user_with_account(alpaca, db, keystore, "slow", fault={"kind": "slow", "seconds": 1.0})
    user_with_account(alpaca, db, keystore, "quick")
    results = []

    def pulse() -> None:
        results.append(run_pulse(platform))

    first = threading.Thread(target=pulse)
    first.start()
    threading.Event().wait(0.5)
    pulse()  # while the first still holds the run's lease: it stands aside
    first.join()
    assert sorted(r.mode for r in results) == ["in_process", "overlap"]
    assert sorted(r.counts["skipped_in_progress"] for r in results) == [0, 2]
    stats = requests.get(f"{alpaca.url}/_standin/stats", timeout=5).json()
    assert stats["by_key"]["PKSLOW000000"]["account"] == 1
    assert stats["by_key"]["PKQUICK00000"]["account"] == 1
    assert "lease" not in (get(paths.pulse_state(db)) or {})  # released at the end
    assert run_pulse(platform).mode == "in_process"


def test_a_lease_left_by_a_dead_run_expires(
    platform: Platform, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    user_with_account(alpaca, db, keystore, "alice")
    now = platform.now()
    paths.pulse_state(db).set({"lease": {"run_id": "dead", "until": now + timedelta(seconds=60)}})
    assert run_pulse(platform).mode == "overlap"
    paths.pulse_state(db).set({"lease": {"run_id": "dead", "until": now}})
    assert run_pulse(platform).counts["synced"] == 1


def test_secrets_are_cached_and_refreshed_when_keys_change(
    platform: Platform, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    for i in range(4):
        user_with_account(alpaca, db, keystore, f"user{i}")
    for _ in range(10):
        run_pulse(platform)
    assert keystore.accesses == 4
    # user0 saves new keys: the next pulse reads their secret again, and only theirs
    keys = register_alpaca_account(alpaca.url, "PKROTATED1", "secret-key-2", cash="777")
    keystore.save("user0", keys)
    paths.user(db, "user0").update({"keys_version": 2})
    run_pulse(platform)
    assert keystore.accesses == 5
    assert (get(paths.account_snapshot(db, "user0")) or {})["cash"] == "777.00"


def test_keys_loaded_at_once_are_read_once(
    secrets: SecretManagerServer, keystore: KeyStore, alpaca: AlpacaServer
) -> None:
    """A new instance fetches keys ahead of the syncs, and a sync may ask for the same keys
    while that fetch is under way: they share one access and its answer (keys, or none)."""
    keys = register_alpaca_account(alpaca.url, "PKONCE0000", "secret-key-1")
    keystore.save("once", keys)
    secrets.store.latency_s = 0.2
    try:
        with ThreadPoolExecutor(8) as pool:
            loaded = list(pool.map(lambda _: keystore.load("once", 1), range(8)))
        assert keystore.accesses == 1
        assert {k.key_id if k else None for k in loaded} == {"PKONCE0000"}
        assert keystore.load("once", 2) is not None and keystore.accesses == 2  # a new version

        keystore.delete("once")
        with ThreadPoolExecutor(4) as pool:
            missing = list(pool.map(lambda _: keystore.load("once", 3), range(4)))
        assert missing == [None] * 4 and keystore.accesses == 3
    finally:
        secrets.store.latency_s = 0


def test_keys_read_ahead_many_at_once_each_once(
    secrets: SecretManagerServer, keystore: KeyStore, alpaca: AlpacaServer
) -> None:
    """A new instance reads everyone's keys ahead of their syncs, many accesses in flight on
    one channel: each person's once, kept for their sync, and a person without keys known to
    have none. A failed access is not kept: the person's own load raises it as a read of its
    own would, and reads again once Secret Manager answers."""
    people = [f"ahead{i}" for i in range(150)]  # more than are ever in flight at once
    for uid in people[:-1]:
        keystore.save(uid, AlpacaKeys(key_id=f"PK{uid.upper():0<10}", secret_key="secret-key-1"))
    failing = "ahead0"
    secrets.store.failing[keystore.secret_name(failing)] = grpc.StatusCode.UNAVAILABLE
    secrets.store.latency_s = 0.01
    try:
        assert keystore.prefetch([(uid, 1) for uid in people]) == len(people)
        assert secrets.store.calls["AccessSecretVersion"] == len(people)
        assert all(keystore.knows(uid, 1) for uid in people[1:])
        assert not keystore.knows(failing, 1)
        loaded = keystore.load("ahead7", 1)
        assert loaded is not None and loaded.key_id == "PKAHEAD70000"
        assert keystore.load(people[-1], 1) is None  # no secret: known, not read again
        assert keystore.prefetch([(uid, 1) for uid in people[1:]]) == 0
        assert secrets.store.calls["AccessSecretVersion"] == len(people)

        with pytest.raises(KeyStoreError) as raised:
            keystore.load(failing, 1)
        assert raised.value.code == ErrorCode.SECRET_UNAVAILABLE
        tried = secrets.store.calls["AccessSecretVersion"]
        assert tried > len(people) + 1  # tried again, for at most ACCESS_RETRY's 5 s
        del secrets.store.failing[keystore.secret_name(failing)]
        assert keystore.load(failing, 1) is not None
        assert secrets.store.calls["AccessSecretVersion"] == tried + 1
    finally:
        secrets.store.latency_s = 0


def test_a_read_ahead_that_fails_is_read_again_by_whoever_waited_for_it(
    secrets: SecretManagerServer, keystore: KeyStore
) -> None:
    """A sync that asked for keys while the read ahead was fetching them, and that read
    failed: the sync reads them itself, with its retries, instead of failing at once."""
    keystore.save("late", AlpacaKeys(key_id="PKLATE000000", secret_key="secret-key-1"))
    name = keystore.secret_name("late")
    secrets.store.failing[name] = grpc.StatusCode.UNAVAILABLE
    secrets.store.latency_s = 0.3
    try:
        with ThreadPoolExecutor(2) as pool:
            ahead = pool.submit(keystore.prefetch, [("late", 1)])
            time.sleep(0.1)  # the read ahead is in flight
            waiting = pool.submit(keystore.load, "late", 1)
            assert ahead.result() == 1
            assert not waiting.done()
            del secrets.store.failing[name]
            loaded = waiting.result(timeout=10)
        assert loaded is not None and loaded.key_id == "PKLATE000000"
    finally:
        secrets.store.latency_s = 0


def test_one_persons_secret_failing_fails_only_their_sync(
    platform: Platform,
    alpaca: AlpacaServer,
    db: firestore.Client,
    keystore: KeyStore,
    secrets: SecretManagerServer,
) -> None:
    """Secret Manager refusing one person's keys on a new instance's first run: everyone else
    is synced, and that person's page says their keys could not be read, until they can."""
    for uid in ("alice", "bob", "carol"):
        user_with_account(alpaca, db, keystore, uid)
    secrets.store.failing[keystore.secret_name("bob")] = grpc.StatusCode.UNAVAILABLE
    summary = run_pulse(platform)
    assert summary.counts["synced"] == 2 and summary.counts["failed"] == 1
    assert dict(summary.errors) == {"SECRET_UNAVAILABLE": 1}
    error = get(paths.last_sync_error(db, "bob")) or {}
    assert error["code"] == "SECRET_UNAVAILABLE"
    assert error["message"] == "your keys could not be read right now; try again"
    assert get(paths.account_snapshot(db, "bob")) is None
    assert get(paths.account_snapshot(db, "alice")) is not None

    secrets.store.failing.clear()
    assert run_pulse(platform).counts["synced"] == 3
    assert get(paths.last_sync_error(db, "bob")) is None
    assert get(paths.account_snapshot(db, "bob")) is not None


def test_deadline_defers_users_not_started(
    platform: Platform, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    for i in range(3):
        user_with_account(alpaca, db, keystore, f"user{i}")
    summary = run_pulse(platform, PulseSettings(deadline_s=0))
    assert summary.counts["deferred"] == 3
    assert get(paths.account_snapshot(db, "user0")) is None


def test_a_user_past_their_time_budget_fails_and_writes_nothing(
    platform: Platform, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    user_with_account(alpaca, db, keystore, "slow", fault={"kind": "slow", "seconds": 1.2})
    user_with_account(alpaca, db, keystore, "quick")
    summary = run_pulse(platform, PulseSettings(user_timeout_s=1.0))
    assert dict(summary.errors) == {"SYNC_TIMEOUT": 1}
    assert summary.counts["synced"] == 1
    assert get(paths.account_snapshot(db, "slow")) is None
    assert (get(paths.last_sync_error(db, "slow")) or {})["code"] == "SYNC_TIMEOUT"


def test_the_snapshot_does_not_need_fields_alpaca_deprecated(
    platform: Platform, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    for uid, sends in (("modern", False), ("legacy", True)):
        body = {"key_id": f"PK{uid.upper():0<10}", "secret_key": "secret-key-1"}
        requests.post(
            f"{alpaca.url}/_standin/accounts", json={**body, "deprecated_fields": sends}, timeout=5
        ).raise_for_status()
        keys = AlpacaKeys(key_id=body["key_id"], secret_key=body["secret_key"])
        seed_user(db, keystore, uid, keys=keys)
    assert run_pulse(platform).counts["synced"] == 2
    modern = get(paths.account_snapshot(db, "modern")) or {}
    legacy = get(paths.account_snapshot(db, "legacy")) or {}
    assert "pattern_day_trader" not in modern and "daytrade_count" not in modern
    assert (legacy["pattern_day_trader"], legacy["daytrade_count"]) == (False, 0)
    assert modern["equity"] == legacy["equity"]


def test_a_new_instance_learns_everyones_trades_at_once(
    platform: Platform, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    """A new instance knows nobody: it reads every open trade in one collection-group query,
    so one shared request prices everyone's symbols and nobody asks Alpaca for their own."""
    freeze(alpaca)
    people = [f"p{i:02d}" for i in range(PRIME_MIN + 10)]
    for i, uid in enumerate(people):
        user_with_account(alpaca, db, keystore, uid)
        open_trade(db, uid, "t1", ["AAPL", "MSFT", "NVDA"][i % 3], "BUY", "1", "100")
    summary = run_pulse(platform)
    assert summary.counts["synced"] == len(people)
    stats = requests.get(f"{alpaca.url}/_standin/stats", timeout=5).json()["by_key"]
    assert sum(k.get("latest_trades", 0) for k in stats.values()) == 1
    for i, uid in enumerate(people):
        symbol = ["AAPL", "MSFT", "NVDA"][i % 3]
        marks = (get(paths.marks(db, uid)) or {})["trades"]
        assert marks["t1"]["current_price"] == str(price_at(symbol, NOW))


def test_a_new_instance_learns_everyones_strategies_as_each_would_read_them(
    platform: Platform, db: firestore.Client
) -> None:
    """The strategies and limits learned for everyone at once are what each person's own read
    gives: the same strategies (an unreadable one set aside) and the same limits."""
    now = datetime.now(UTC)
    people = [UserRef(f"s{i:02d}", 1, open_trades=0, bot_version=3) for i in range(PRIME_MIN)]
    for i, person in enumerate(people):
        for k in range(2):
            paths.strategies(db, person.uid).document(f"st{k}").set(
                {
                    "strategy": "momentum_20d",
                    "symbols": ["AAPL", ["MSFT", "NVDA"][i % 2]],
                    "allocation_usd": "1000",
                    "mode": "shadow",
                    "status": ["active", "paused"][k],
                    "created_at": now,
                    "updated_at": now,
                    **({"last_decisions": {"AAPL": "HOLD"}} if i % 2 else {}),
                }
            )
        if i % 4 == 0:
            summary = Performance(trades_closed=i, peak_equity=Decimal("1000.50"), point_day="d")
            paths.stats_summary(db, person.uid).set(summary.document(now))
        if i % 3 == 0:
            paths.risk_settings(db, person.uid).set(
                {
                    "max_position_usd": str(500 + i),
                    "max_daily_loss_usd": "100",
                    "max_drawdown_pct": "10",
                    "max_trades_per_day": 5,
                }
            )
    paths.strategies(db, "s01").document("broken").set(
        {"strategy": "momentum_20d", "status": "active"}  # no symbols, no allocation
    )
    assert prime(platform, people, trades=False, bots=True) == len(people)
    for person in people:
        learned = platform.memory.recall("bot", person.memory_key)
        assert learned == load_bot_config(db, person.uid, 3), person.uid
        # and the books as last written, as each person's own read finds them
        summary_doc = paths.stats_summary(db, person.uid).get()
        books = platform.memory.recall("books", person.memory_key)
        assert books == stored_books(summary_doc, learned.running), person.uid
    assert platform.memory.recall("books", people[4].memory_key).performance.trades_closed == 4
    assert platform.memory.recall("books", people[1].memory_key).notes == {"st0": {"AAPL": "HOLD"}}
    assert platform.memory.recall("bot", people[1].memory_key).unreadable == ("broken",)
