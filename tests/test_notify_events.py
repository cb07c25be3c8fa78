"""The notifications the pulse writes itself: syncs failing for 15 minutes (once a failing
spell) and each trading day's summary after the close (once a day), on the Firestore emulator
with the Alpaca and Secret Manager stand-ins."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import requests
from google.cloud import firestore

from agenttrader.bot import notices
from agenttrader.broker.keystore import KeyStore
from agenttrader.context.platform import Platform
from agenttrader.pulse.run import run_pulse
from agenttrader.store import paths
from localdev.alpaca_standin import AlpacaServer
from localdev.seed import register_alpaca_account, seed_user

MONDAY_OPEN = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 10:00 in New York
MONDAY_CLOSED = datetime(2026, 11, 23, 21, 30, tzinfo=UTC)  # 16:30 in New York


def at(platform: Platform, moment: datetime) -> Platform:
    return replace(platform, now=lambda: moment)


def freeze(alpaca: AlpacaServer, moment: datetime) -> None:
    requests.post(
        f"{alpaca.url}/_standin/clock", json={"now": moment.timestamp()}, timeout=5
    ).raise_for_status()


def person(
    alpaca: AlpacaServer,
    db: firestore.Client,
    keystore: KeyStore,
    uid: str,
    fault: dict[str, Any] | None = None,
) -> None:
    keys = register_alpaca_account(alpaca.url, f"PK{uid.upper():0<10}", "secret-key-1", fault=fault)
    seed_user(db, keystore, uid, keys=keys)


def feed(db: firestore.Client, uid: str) -> dict[str, dict[str, Any]]:
    return {doc.id: doc.to_dict() or {} for doc in paths.notifications(db, uid).stream()}


def test_syncs_failing_for_15_minutes_are_told_once_a_failing_spell(
    platform: Platform, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    # refused keys for five runs, then accepted, then refused again
    person(alpaca, db, keystore, "revoked", fault={"kind": "http", "status": 403, "times": 5})
    start = MONDAY_OPEN
    for minutes in (0, 10):
        assert run_pulse(at(platform, start + timedelta(minutes=minutes))).counts["failed"] == 1
    assert feed(db, "revoked") == {}  # failing for 10 minutes: not yet

    run_pulse(at(platform, start + timedelta(minutes=16)))
    told = feed(db, "revoked")
    spell = f"sync-failing-{int(start.timestamp())}"
    assert list(told) == [spell]
    assert told[spell]["kind"] == notices.SYNC_FAILING
    assert told[spell]["code"] == "ALPACA_UNAUTHORIZED"
    assert told[spell]["message"].startswith("Your account has not synced for 16 minutes: ")
    assert "ALPACA" not in told[spell]["message"]
    paths.notifications(db, "revoked").document(spell).update({"read_at": start})

    for minutes in (30, 45):  # still failing: told already
        run_pulse(at(platform, start + timedelta(minutes=minutes)))
    assert list(feed(db, "revoked")) == [spell]
    assert feed(db, "revoked")[spell]["read_at"] is not None  # never rewritten

    assert run_pulse(at(platform, start + timedelta(minutes=50))).counts["synced"] == 1
    profile = paths.user(db, "revoked").get().to_dict() or {}
    assert "failing_since" not in profile
    assert "failing_told" not in profile

    # a new failing spell is told again, under its own id
    register_alpaca_account(
        alpaca.url, "PKREVOKED000", "secret-key-1", fault={"kind": "http", "status": 403}
    )
    again = start + timedelta(minutes=60)
    for minutes in (0, 15):
        run_pulse(at(platform, again + timedelta(minutes=minutes)))
    assert sorted(feed(db, "revoked")) == sorted([spell, f"sync-failing-{int(again.timestamp())}"])


def test_each_trading_day_is_summed_up_once_after_the_close(
    platform: Platform, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    person(alpaca, db, keystore, "trader")
    freeze(alpaca, MONDAY_OPEN)
    opened = run_pulse(at(platform, MONDAY_OPEN), cadence=True)
    assert opened.market_open is True
    assert (paths.pulse_state(db).get().to_dict() or {})["session_day"] == "2026-11-23"
    # what the day told the person: two entries and an exit that day, one entry the day before
    batch = db.batch()
    day = MONDAY_OPEN + timedelta(hours=1)
    for event_id, kind, when in [
        ("entry-filled-a", notices.ENTRY_FILLED, day),
        ("entry-filled-b", notices.ENTRY_FILLED, day + timedelta(hours=1)),
        ("exit-filled-a", notices.EXIT_FILLED, day + timedelta(hours=2)),
        ("entry-filled-old", notices.ENTRY_FILLED, day - timedelta(days=1)),
    ]:
        notices.notify(batch, db, "trader", event_id, kind, "a fill", when)
    batch.commit()
    assert "daily-summary-2026-11-23" not in feed(db, "trader")  # not while the market is open

    freeze(alpaca, MONDAY_CLOSED)
    closed = run_pulse(at(platform, MONDAY_CLOSED), cadence=True)
    assert (closed.market_open, closed.counts["synced"]) == (False, 1)
    summary = feed(db, "trader")["daily-summary-2026-11-23"]
    account = paths.account_snapshot(db, "trader").get().to_dict() or {}
    assert summary["kind"] == notices.DAILY_SUMMARY
    assert summary["equity"] == account["equity"]
    pnl = Decimal(account["equity"]) - Decimal(account["last_equity"])
    assert Decimal(summary["day_pnl"]) == pnl
    assert (summary["trades_opened"], summary["trades_closed"]) == (2, 1)
    assert summary["message"].startswith("Your day, 2026-11-23: equity $")
    assert summary["message"].endswith("2 trades opened and 1 closed.")

    paths.notifications(db, "trader").document("daily-summary-2026-11-23").update(
        {"read_at": MONDAY_CLOSED}
    )
    later = MONDAY_CLOSED + timedelta(minutes=10)
    run_pulse(at(platform, later), cadence=True)
    kept = feed(db, "trader")["daily-summary-2026-11-23"]
    assert kept["read_at"] is not None  # the same summary, never written again
    assert [k for k in feed(db, "trader") if k.startswith("daily-summary")] == [
        "daily-summary-2026-11-23"
    ]
