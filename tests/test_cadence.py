"""The scheduled pulse's cadence by Alpaca's clock (the stand-in's follows the NYSE calendar,
daylight saving included), and what a run costs when nothing changed."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from calling import auth, ready_user
from firestore_state import all_documents
from google.cloud import firestore

from agenttrader.api import callables, keys_callables, position_callables
from agenttrader.api.guard import Services
from agenttrader.broker.keystore import KeyStore
from agenttrader.context.platform import Platform
from agenttrader.pulse.run import PulseSummary, run_pulse
from agenttrader.store import paths, queries
from agenttrader.store.totals import count_open_trades_once
from localdev.alpaca_standin import AlpacaServer
from localdev.seed import open_trade, register_alpaca_account, seed_user

NEW_YORK = ZoneInfo("America/New_York")


class Market:
    """Moves the stand-in's clock and the pulse's clock together."""

    def __init__(self, alpaca: AlpacaServer, platform: Platform) -> None:
        self.alpaca = alpaca
        self.at = datetime(2026, 11, 23, 9, 0, tzinfo=NEW_YORK)
        self.platform = replace(platform, now=lambda: self.at.astimezone(UTC))

    def set(self, local: str) -> None:
        self.at = datetime.fromisoformat(local).replace(tzinfo=NEW_YORK)
        requests.post(
            f"{self.alpaca.url}/_standin/clock", json={"now": self.at.timestamp()}, timeout=5
        ).raise_for_status()

    def pulse(self, local: str) -> PulseSummary:
        self.set(local)
        return run_pulse(self.platform, cadence=True)

    def requests(self, endpoint: str) -> int:
        stats = requests.get(f"{self.alpaca.url}/_standin/stats", timeout=5).json()
        return sum(by.get(endpoint, 0) for by in stats["by_key"].values())


@pytest.fixture
def market(
    alpaca: AlpacaServer, platform: Platform, db: firestore.Client, keystore: KeyStore
) -> Market:
    keys = register_alpaca_account(alpaca.url, "PKTRADER0001", "secret-key-1")
    seed_user(db, keystore, "trader", keys=keys)
    open_trade(db, "trader", "t1", "AAPL", "BUY", "2", "100")
    return Market(alpaca, platform)


def people_docs(db: firestore.Client) -> dict[str, Any]:
    return {
        k: v for k, v in all_documents(db, with_update_time=True).items() if k.startswith("users/")
    }


def test_closed_every_ten_minutes_then_every_minute_from_the_open(
    market: Market, db: firestore.Client
) -> None:
    first = market.pulse("2026-11-23T09:20")
    assert (first.mode, first.market_open, first.counts["synced"]) == ("in_process", False, 1)
    before = all_documents(db, with_update_time=True)
    alpaca_before = market.requests("account")
    idle = market.pulse("2026-11-23T09:25")
    assert (idle.mode, idle.counts["synced"]) == ("idle", 0)
    assert all_documents(db, with_update_time=True) == before  # an idle tick writes nothing
    assert market.requests("account") == alpaca_before
    assert market.pulse("2026-11-23T09:30").market_open is True  # the open: clock read again
    for minute in ("09:31", "09:32"):
        assert market.pulse(f"2026-11-23T{minute}").counts["synced"] == 1
    assert market.requests("clock") == 2  # 09:20 and the open, never once per person


def test_the_close_syncs_once_more_then_the_closed_cadence(market: Market) -> None:
    assert market.pulse("2026-11-23T15:59").market_open is True
    prices = market.requests("latest_trades")
    at_close = market.pulse("2026-11-23T16:00")
    assert (at_close.market_open, at_close.counts["synced"]) == (False, 1)
    assert market.pulse("2026-11-23T16:05").mode == "idle"
    later = market.pulse("2026-11-23T16:10")
    assert later.counts["synced"] == 1
    # closed: the account is read, but prices do not move, so no trade is priced
    assert market.requests("latest_trades") == prices
    assert market.requests("clock") == 2


def test_a_holiday_is_closed_all_day(market: Market) -> None:
    thanksgiving = market.pulse("2026-11-26T11:00")
    assert (thanksgiving.market_open, thanksgiving.counts["synced"]) == (False, 1)
    assert market.pulse("2026-11-26T11:05").mode == "idle"
    assert market.pulse("2026-11-26T11:10").counts["synced"] == 1
    state = paths.pulse_state(market.platform.db).get().to_dict() or {}
    assert state["clock"]["next_open"].astimezone(NEW_YORK).isoformat() == (
        "2026-11-27T09:30:00-05:00"
    )
    assert market.requests("clock") == 1


@pytest.mark.parametrize(
    ("utc", "is_open"),
    [
        ("2026-03-06T14:35", True),  # EST: the session is 14:30-21:00 UTC
        ("2026-03-06T13:35", False),
        ("2026-03-09T13:35", True),  # EDT from March 8: 13:30-20:00 UTC
        ("2026-03-09T20:05", False),
    ],
)
def test_daylight_saving_moves_the_session(market: Market, utc: str, is_open: bool) -> None:
    local = datetime.fromisoformat(utc).replace(tzinfo=UTC).astimezone(NEW_YORK)
    assert market.pulse(local.replace(tzinfo=None).isoformat()).market_open is is_open


def test_nothing_changed_writes_nothing_for_anyone(market: Market, db: firestore.Client) -> None:
    market.pulse("2026-11-23T10:00")
    first = people_docs(db)
    again = run_pulse(market.platform)  # same minute, same prices: nothing to write
    assert again.counts["synced"] == 1
    assert people_docs(db) == first


def test_a_person_with_no_open_trades_costs_no_trade_query(
    services: Services,
    alpaca: AlpacaServer,
    db: firestore.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ready_user(services, alpaca, "alice")  # opens no trade: her profile counts 0
    assert (paths.user(db, "alice").get().to_dict() or {})["open_trades"] == 0
    asked: list[str] = []
    real: Callable[..., Any] = queries.open_trades
    monkeypatch.setattr(queries, "open_trades", lambda db, uid: asked.append(uid) or real(db, uid))
    assert run_pulse(services.platform).counts["synced"] == 1
    assert asked == []


def test_the_profile_counts_open_trades_as_they_open_and_close(
    services: Services, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    ready_user(services, alpaca, "alice")
    open_at = datetime.fromisoformat("2026-11-23T10:00").replace(tzinfo=NEW_YORK).timestamp()
    requests.post(f"{alpaca.url}/_standin/clock", json={"now": open_at}, timeout=5)

    def count() -> Any:
        return (paths.user(db, "alice").get().to_dict() or {}).get("open_trades")

    opened = []
    for symbol in ("AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META", "AMD", "INTC"):
        result = callables.generate_trading_signal(
            services, auth("alice"), {"symbol": symbol, "open_shadow_trade": True}
        )
        if result["shadow_trade_id"]:
            opened.append(result["shadow_trade_id"])
        if len(opened) == 2:
            break
    assert len(opened) == 2, "no symbol gave a BUY or SELL at this moment"
    assert count() == 2
    position_callables.close_shadow_trade(services, auth("alice"), {"trade_id": opened[0]})
    assert count() == 1
    run_pulse(services.platform)
    assert len(list(queries.open_trades(db, "alice").stream())) == 1
    # a count that went wrong (a hand edit) is recounted by the next pulse
    paths.user(db, "alice").update({"open_trades": -4})
    run_pulse(services.platform)
    assert count() == 1
    keys_callables.delete_my_account(services, auth("alice"), {"confirm": True})
    assert run_pulse(services.platform).users_total == 0


def test_entries_racing_a_first_count_are_all_counted(db: firestore.Client) -> None:
    """A profile without a count (a migration, an older product) is counted in a transaction
    before each entry; entries from overlapping syncs, each adding one, are never overwritten
    by another sync's count."""
    paths.user(db, "alice").set({"email": "alice@example.com"})
    open_trade(db, "alice", "t-0", "AAPL", "BUY", "1", "100")
    open_trade(db, "alice", "t-1", "MSFT", "BUY", "1", "100")
    paths.user(db, "alice").update({"open_trades": firestore.DELETE_FIELD})
    barrier = threading.Barrier(6)
    failed: list[BaseException] = []

    def enter(n: int) -> None:
        barrier.wait()
        try:
            count_open_trades_once(db, "alice")
            open_trade(db, "alice", f"e-{n}", "NVDA", "BUY", "1", "100")
        except Exception as error:  # noqa: BLE001 - shown by the assertion below
            failed.append(error)

    threads = [threading.Thread(target=enter, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failed == []
    assert len(list(queries.open_trades(db, "alice").stream())) == 8
    assert (paths.user(db, "alice").get().to_dict() or {})["open_trades"] == 8
    # a count already there is the writers' to keep: counting again reads it, changes nothing
    assert count_open_trades_once(db, "alice") == 8


def test_freshness_is_written_once_per_run(market: Market, db: firestore.Client) -> None:
    summary = market.pulse("2026-11-23T11:00")
    fresh = paths.freshness(db).get().to_dict() or {}
    assert (fresh["run_id"], fresh["market_open"]) == (summary.run_id, True)
    assert fresh["finished_at"] >= market.at - timedelta(seconds=1)
