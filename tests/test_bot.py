"""The bot on the emulators: strategies set up through the callables, run by the pulse while
the market is open by the stand-in's clock (NYSE calendar, daylight saving included), paper
orders at the Alpaca stand-in, risk limits that switch trading off, statistics."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
import requests
from bot_world import World, seed_position
from calling import Code, auth, data_of, error_of
from google.cloud import firestore

from agenttrader.api import admin_callables, callables, keys_callables, strategy_callables
from agenttrader.api.guard import Services
from agenttrader.broker.alpaca import AlpacaBroker
from agenttrader.context.memory import PulseMemory
from agenttrader.pulse.people import PulseSettings
from agenttrader.pulse.run import list_users
from agenttrader.pulse.sync import sync_users
from agenttrader.store import paths
from localdev.seed import register_alpaca_account

# -- entries, exits and idempotence ---------------------------------------------------------------


def test_an_active_strategy_enters_once_a_day_however_often_it_runs(world: World) -> None:
    (symbol, action), *_ = world.acting()
    sid = world.strategy(symbols=[symbol])
    first = world.pulse()
    assert first.counts["synced"] == 1
    trades = world.docs("shadowTradeHistory")
    trade_id = f"{sid}-{symbol}-2026-11-23"
    assert list(trades) == [trade_id]
    trade = trades[trade_id]
    assert (trade["side"], trade["status"], trade["strategy_id"]) == (action, "OPEN", sid)
    assert Decimal(trade["quantity"]) * Decimal(trade["entry_price"]) <= 1000
    assert world.docs("signals")[trade_id]["action"] == action
    world.pulse()  # a second run in the same minute
    world.pulse("2026-11-23T10:05")
    assert list(world.docs("shadowTradeHistory")) == [trade_id]
    assert world.doc("")["open_trades"] == 1
    strategy = world.docs("strategies")[sid]
    assert strategy["status"] == "active"
    assert strategy["last_decisions"] == {symbol: action}


def test_overlapping_runs_and_retried_tasks_enter_once(world: World) -> None:
    symbols = [s for s, _ in world.acting(3)]
    world.strategy(symbols=symbols)
    users = list_users(world.db)
    barrier = threading.Barrier(4)
    results: list[Any] = []

    def run(n: int) -> None:
        barrier.wait()
        results.append(
            sync_users(
                world.platform,
                users,
                f"task-{n}",
                time.monotonic() + 30,
                PulseSettings(),
                trading_day="2026-11-23",
            )
        )

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    trades = world.docs("shadowTradeHistory")
    assert sorted(t["symbol"] for t in trades.values()) == sorted(symbols)
    assert world.doc("")["open_trades"] == 3


@pytest.mark.parametrize(
    ("when", "why"),
    [
        ("2026-11-26T11:00", "Thanksgiving: NYSE closed"),
        ("2026-11-28T11:00", "a Saturday"),
        ("2026-11-23T09:29", "a minute before the open"),
        ("2026-11-23T16:00", "the close"),
        ("2026-11-02T09:29", "the Monday daylight saving ended: 09:29 EST is still closed"),
        ("2026-03-09T09:29", "the Monday daylight saving began: 09:29 EDT is still closed"),
    ],
)
def test_no_strategy_trades_while_the_market_is_closed(world: World, when: str, why: str) -> None:
    world.set(when)
    symbol = world.acting()[0][0]
    world.strategy(symbols=[symbol])
    summary = world.pulse()
    assert summary.market_open is False, why
    assert world.docs("shadowTradeHistory") == {}, why


@pytest.mark.parametrize("day", ["2026-11-02", "2026-03-09"])
def test_on_the_day_daylight_saving_changes_the_open_is_09_30_new_york(
    world: World, day: str
) -> None:
    world.set(f"{day}T09:31")
    symbol = world.acting()[0][0]
    sid = world.strategy(symbols=[symbol])
    assert world.pulse().market_open is True
    assert list(world.docs("shadowTradeHistory")) == [f"{sid}-{symbol}-{day}"]


@pytest.mark.parametrize(
    ("entry_factor", "reason"),
    [(Decimal("0.5"), "take-profit"), (Decimal("2"), "stop-loss")],
)
def test_take_profit_and_stop_loss_close_the_position(
    world: World, entry_factor: Decimal, reason: str
) -> None:
    symbol = world.holding()
    sid = world.strategy(symbols=[symbol], take_profit_pct="10", stop_loss_pct="5")
    broker = AlpacaBroker(world.keys, trading_url=world.alpaca.url, data_url=world.alpaca.url)
    price = broker.latest_prices([symbol])[symbol]
    broker.close()
    trade_id = seed_position(world, sid, symbol, "BUY", str(price * entry_factor))
    world.pulse()
    trade = world.docs("shadowTradeHistory")[trade_id]
    assert trade["status"] == "CLOSED"
    assert trade["close_reason"].startswith(reason)
    expected = (price - price * entry_factor) * 3
    assert Decimal(trade["realized_pnl"]) == expected.quantize(Decimal("0.01"))
    assert world.doc("")["open_trades"] == 0
    world.pulse()
    assert world.docs("shadowTradeHistory")[trade_id]["closed_at"] == trade["closed_at"]


def test_the_strategy_exit_closes_a_position_against_it(world: World) -> None:
    (symbol, action), *_ = world.acting()
    sid = world.strategy(symbols=[symbol])
    against = "SELL" if action == "BUY" else "BUY"
    trade_id = seed_position(world, sid, symbol, against, "100")
    world.pulse()
    trades = world.docs("shadowTradeHistory")
    assert trades[trade_id]["status"] == "CLOSED"
    assert trades[trade_id]["close_reason"].startswith("strategy exit")
    assert len(trades) == 1
    world.pulse("2026-11-23T10:01")  # flat now: the next run follows the strategy in
    assert world.docs("shadowTradeHistory")[f"{sid}-{symbol}-2026-11-23"]["side"] == action


def test_a_paused_or_deleted_strategy_does_nothing(world: World) -> None:
    symbol = world.acting()[0][0]
    paused = world.strategy(symbols=[symbol], start=False)
    deleted = world.strategy(symbols=[symbol])
    strategy_callables.delete_strategy(world.services, auth(world.uid), {"id": deleted})
    world.pulse()
    assert world.docs("shadowTradeHistory") == {}
    assert world.docs("strategies")[paused]["status"] == "paused"


def test_switched_off_halted_or_keyless_people_do_not_trade(world: World) -> None:
    symbol = world.acting()[0][0]
    world.strategy(symbols=[symbol])
    callables.set_trading_enabled(world.services, auth(world.uid), {"enabled": False})
    world.pulse()
    assert world.docs("shadowTradeHistory") == {}
    callables.set_trading_enabled(world.services, auth(world.uid), {"enabled": True})
    admin_callables.admin_set_global_trading(
        world.services, auth("ops", admin=True), {"enabled": False}
    )
    world.pulse()
    assert world.docs("shadowTradeHistory") == {}


# -- paper orders ---------------------------------------------------------------------------------


def test_paper_mode_sends_one_order_and_follows_it_until_filled(world: World) -> None:
    requests.post(f"{world.alpaca.url}/_standin/fill_delay", json={"seconds": 0.5}, timeout=5)
    (symbol, action), *_ = world.acting()
    sid = world.strategy(symbols=[symbol], mode="paper")
    world.pulse()
    trade_id = f"{sid}-{symbol}-2026-11-23"
    orders = world.docs("orders")
    assert list(orders) == [f"{trade_id}-open"]
    order = orders[f"{trade_id}-open"]
    assert (order["side"], order["status"], order["open"]) == (action, "accepted", True)
    sent_at = order["submitted_at"]
    assert world.doc("")["orders_pending"] == 1
    world.pulse()  # the same minute: nothing sent again
    assert world.orders_at_alpaca() == 1
    time.sleep(0.6)
    world.pulse("2026-11-23T10:01")
    order = world.docs("orders")[f"{trade_id}-open"]
    assert (order["status"], order["open"]) == ("filled", False)
    assert Decimal(order["filled_avg_price"]) > 0
    assert order["alpaca_order_id"]
    assert world.doc("")["orders_pending"] == 0
    assert world.orders_at_alpaca() == 1
    assert order["submitted_at"] == sent_at  # when it was sent, not when it was last asked
    # filled a minute later, at that minute's price: the trade follows the fill
    trade = world.docs("shadowTradeHistory")[trade_id]
    assert trade["entry_price"] == order["filled_avg_price"]


def test_a_paper_exit_sends_its_order_and_takes_the_fill_as_the_exit_price(
    world: World,
) -> None:
    requests.post(f"{world.alpaca.url}/_standin/fill_delay", json={"seconds": 0.5}, timeout=5)
    symbol = world.holding()
    sid = world.strategy(symbols=[symbol], mode="paper", take_profit_pct="10")
    broker = AlpacaBroker(world.keys, trading_url=world.alpaca.url, data_url=world.alpaca.url)
    price = broker.latest_prices([symbol])[symbol]
    broker.close()
    trade_id = seed_position(world, sid, symbol, "BUY", str(price / 2), mode="paper")
    world.pulse()
    order = world.docs("orders")[f"{trade_id}-close"]
    assert (order["side"], order["qty"], order["status"]) == ("SELL", "3", "accepted")
    time.sleep(0.6)
    world.pulse("2026-11-23T10:01")
    order = world.docs("orders")[f"{trade_id}-close"]
    assert order["status"] == "filled"
    trade = world.docs("shadowTradeHistory")[trade_id]
    fill = Decimal(order["filled_avg_price"])
    assert trade["exit_price"] == str(fill)
    assert Decimal(trade["realized_pnl"]) == ((fill - price / 2) * 3).quantize(Decimal("0.01"))
    world.pulse("2026-11-23T10:02")
    assert world.doc("stats/summary")["realized_pnl"] == trade["realized_pnl"]
    assert world.orders_at_alpaca() == 1


def test_an_order_that_could_not_be_sent_is_sent_by_the_next_run_under_the_same_id(
    world: World,
) -> None:
    requests.post(f"{world.alpaca.url}/_standin/fill_delay", json={"seconds": 0}, timeout=5)
    symbol = world.acting()[0][0]
    sid = world.strategy(symbols=[symbol], mode="paper")
    world.fault(world.uid, {"kind": "http", "status": 500, "endpoints": ["submit_order"]})
    world.pulse()
    order_id = f"{sid}-{symbol}-2026-11-23-open"
    assert world.docs("orders")[order_id]["status"] == "pending"
    strategy = world.docs("strategies")[sid]
    assert strategy["status"] == "error"
    assert strategy["last_error"]["code"] == "ALPACA_UNAVAILABLE"
    assert strategy["last_error"]["retry"] is True
    world.fault(world.uid, None)
    world.pulse("2026-11-23T10:01")
    order = world.docs("orders")[order_id]
    assert (order["status"], order["open"]) == ("filled", False)
    assert world.orders_at_alpaca() == 4  # three tries that failed, one that went through
    assert world.docs("strategies")[sid]["status"] == "active"
    assert "last_error" not in world.docs("strategies")[sid]
    assert len(world.docs("shadowTradeHistory")) == 1


def test_an_order_alpaca_refuses_for_buying_power_closes_the_entry_flat(world: World) -> None:
    symbol = world.acting()[0][0]
    sid = world.strategy(symbols=[symbol], mode="paper", allocation_usd="5000")
    world.fault(world.uid, None, cash="100")  # buys nothing at Alpaca
    world.pulse()
    trade_id = f"{sid}-{symbol}-2026-11-23"
    order = world.docs("orders")[f"{trade_id}-open"]
    assert (order["status"], order["open"]) == ("rejected", False)
    assert "insufficient buying power" in order["reason"]
    trade = world.docs("shadowTradeHistory")[trade_id]
    assert (trade["status"], trade["state"], trade["quantity"]) == ("CLOSED", "closed", "0")
    assert "realized_pnl" not in trade  # no position was ever held: outside the statistics
    strategy = world.docs("strategies")[sid]
    assert (strategy["status"], strategy["last_error"]["code"]) == ("error", "ORDER_REJECTED")
    assert world.doc("")["orders_pending"] == 0


def test_an_order_alpaca_answers_422_fails_its_strategy_only(world: World) -> None:
    first, second = (s for s, _ in world.acting(2))
    paper = world.strategy(symbols=[first], mode="paper")
    shadow = world.strategy(symbols=[second])
    world.fault(world.uid, {"kind": "http", "status": 422, "endpoints": ["submit_order"]})
    summary = world.pulse()
    assert summary.errors["ORDER_REJECTED"] == 1
    strategies = world.docs("strategies")
    assert strategies[paper]["last_error"]["code"] == "ORDER_REJECTED"
    assert strategies[shadow]["status"] == "active"
    trades = world.docs("shadowTradeHistory")
    assert trades[f"{paper}-{first}-2026-11-23"]["status"] == "CLOSED"  # flat: never filled
    assert trades[f"{shadow}-{second}-2026-11-23"]["status"] == "OPEN"


def test_paper_mode_refuses_live_keys(world: World) -> None:
    key_id = "PKLIVE000001"
    register_alpaca_account(world.alpaca.url, key_id, "secret-key-1")
    keys_callables.save_alpaca_keys(
        world.services,
        auth("live"),
        {"key_id": key_id, "secret_key": "secret-key-1", "paper": False},
    )
    request = {"strategy": "momentum_20d", "symbols": ["AAPL"], "allocation_usd": "100"}
    error = error_of(
        strategy_callables.save_strategy,
        world.services,
        auth("live"),
        {**request, "mode": "paper"},
    )
    assert error.code == Code.FAILED_PRECONDITION
    assert "live keys" in error.message


# -- failures stay with their strategy ------------------------------------------------------------


def test_an_unlisted_symbol_fails_its_strategy_and_nothing_else(
    world: World, services: Services
) -> None:
    symbol = world.acting()[0][0]
    bad = world.strategy(symbols=["ZZZZ"])
    good = world.strategy(symbols=[symbol])
    world.open_account("other")
    other = world.strategy(uid="other", symbols=[symbol])
    summary = world.pulse()
    assert summary.counts["synced"] == 2
    assert summary.errors["NO_BARS"] == 1
    strategies = world.docs("strategies")
    assert strategies[bad]["status"] == "error"
    assert strategies[bad]["last_error"]["code"] == "NO_BARS"
    assert "ZZZZ" in strategies[bad]["last_error"]["message"]
    assert strategies[bad]["last_error"]["retry"] is False
    assert strategies[good]["status"] == "active"
    assert list(world.docs("shadowTradeHistory")) == [f"{good}-{symbol}-2026-11-23"]
    assert list(world.docs("shadowTradeHistory", "other")) == [f"{other}-{symbol}-2026-11-23"]
    world.pulse("2026-11-23T10:01")  # an error that will not pass is not retried
    assert world.docs("strategies")[bad]["status"] == "error"


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ({"kind": "http", "status": 500}, "ALPACA_UNAVAILABLE"),
        ({"kind": "http", "status": 429, "retry_after": 0.1}, "ALPACA_RATE_LIMITED"),
        ({"kind": "slow", "seconds": 3}, "ALPACA_TIMEOUT"),
    ],
)
def test_a_fault_on_bars_is_retried_by_the_next_run(
    world: World, fault: dict[str, Any], code: str
) -> None:
    symbol = world.acting()[0][0]
    sid = world.strategy(symbols=[symbol])
    world.fault(world.uid, {**fault, "endpoints": ["multi_bars"]})
    summary = world.pulse()
    assert summary.counts["synced"] == 1  # the account still synced
    error = world.docs("strategies")[sid]["last_error"]
    assert error["code"] == code
    world.fault(world.uid, None)
    world.pulse("2026-11-23T10:01")
    assert world.docs("strategies")[sid]["status"] == "active"
    assert len(world.docs("shadowTradeHistory")) == 1


# -- risk limits ---------------------------------------------------------------------------------


def _assert_tripped(world: World, limit: str) -> None:
    switch = world.doc("status/trading")
    assert switch["enabled"] is False
    assert switch["tripped_by"] == limit
    assert switch["reason"]
    events = [e for e in world.docs("audit").values() if e["action"] == "risk_limit_tripped"]
    assert [e["details"]["limit"] for e in events] == [limit]
    error = world.doc("status/last_sync_error")
    assert error["code"] == "RISK_LIMIT_TRIPPED"
    assert switch["reason"] in error["message"]


def test_todays_loss_over_the_limit_switches_trading_off(world: World) -> None:
    symbol = world.acting()[0][0]
    world.strategy(symbols=[symbol])
    world.fault(world.uid, None)
    body = {"key_id": world.keys.key_id, "secret_key": "secret-key-1", "last_equity": "103000"}
    requests.post(f"{world.alpaca.url}/_standin/accounts", json=body, timeout=5)
    world.pulse()
    _assert_tripped(world, "max_daily_loss_usd")
    assert world.docs("shadowTradeHistory") == {}
    world.pulse("2026-11-23T10:01")  # off: not synced, not traded, not tripped twice
    _assert_tripped(world, "max_daily_loss_usd")


def test_a_drawdown_from_the_peak_over_the_limit_switches_trading_off(world: World) -> None:
    world.strategy(symbols=[world.holding()])
    paths.stats_summary(world.db, world.uid).set({"peak_equity": "130000.00"})
    world.pulse()
    _assert_tripped(world, "max_drawdown_pct")


def test_an_entry_over_the_position_limit_switches_trading_off(world: World) -> None:
    symbol = world.acting()[0][0]
    world.strategy(symbols=[symbol], allocation_usd="5000")
    world.limits(max_position_usd="1000")
    world.pulse()
    _assert_tripped(world, "max_position_usd")
    assert world.docs("shadowTradeHistory") == {}


def test_entries_past_the_days_limit_switch_trading_off(world: World) -> None:
    symbols = [s for s, _ in world.acting(2)]
    world.strategy(symbols=symbols)
    world.limits(max_trades_per_day=1)
    world.pulse()
    assert len(world.docs("shadowTradeHistory")) == 1
    _assert_tripped(world, "max_trades_per_day")


def test_the_person_switches_trading_back_on_and_the_error_clears(world: World) -> None:
    world.strategy(symbols=[world.holding()])
    paths.stats_summary(world.db, world.uid).set({"peak_equity": "130000.00"})
    world.pulse()
    _assert_tripped(world, "max_drawdown_pct")
    world.limits(max_drawdown_pct="50")
    callables.set_trading_enabled(world.services, auth(world.uid), {"enabled": True})
    world.pulse("2026-11-23T10:01")
    assert world.doc("status/trading")["enabled"] is True
    assert not world.db.document(f"users/{world.uid}/status/last_sync_error").get().exists


# -- statistics ------------------------------------------------------------------------------------


def test_statistics_and_the_equity_point_follow_the_trades(world: World) -> None:
    symbol = world.holding()
    sid = world.strategy(symbols=[symbol], take_profit_pct="10")
    broker = AlpacaBroker(world.keys, trading_url=world.alpaca.url, data_url=world.alpaca.url)
    price = broker.latest_prices([symbol])[symbol]
    broker.close()
    seed_position(world, sid, symbol, "BUY", str(price / 2))
    world.pulse()
    stats = world.doc("stats/summary")
    gain = (price - price / 2) * 3
    assert stats["realized_pnl"] == str(gain.quantize(Decimal("0.01")))
    assert stats["trades_closed"] == 1
    assert stats["win_rate"] == "100.0000"
    assert stats["sharpe_daily"] is None
    point = world.doc("equity/2026-11-23")
    assert point["equity"] == world.doc("alpacaAccounts/snapshot")["equity"]
    world.pulse("2026-11-24T10:00")
    assert set(world.docs("equity")) == {"2026-11-23", "2026-11-24"}


def test_a_new_instance_rewrites_no_books_that_did_not_change(world: World) -> None:
    """Instances come and go (every deploy, every scale-up): one that starts knowing nobody
    takes the statistics, the equity point and the evaluations as last written, and writes
    them again only when they change or `BOOKS_EVERY` has passed, as the instance before would
    have."""
    symbol = world.holding()
    sid = world.strategy(symbols=[symbol])
    world.pulse()
    books = ("stats/summary", "equity/2026-11-23", f"strategies/{sid}")

    def written() -> dict[str, Any]:
        return {
            path: world.db.document(f"users/{world.uid}/{path}").get().update_time for path in books
        }

    before = written()
    assert world.doc(f"strategies/{sid}")["last_decisions"] == {symbol: "HOLD"}
    world.platform = replace(world.platform, memory=PulseMemory())  # a new instance
    world.pulse("2026-11-23T10:05")
    assert written() == before
    assert world.doc("alpacaAccounts/snapshot")  # it did sync them

    world.platform = replace(world.platform, memory=PulseMemory())
    world.pulse("2026-11-23T10:16")  # BOOKS_EVERY after they were written
    after = written()
    assert after["stats/summary"] > before["stats/summary"]
    assert after["equity/2026-11-23"] > before["equity/2026-11-23"]
    assert after[f"strategies/{sid}"] == before[f"strategies/{sid}"]  # its evaluation is the same


# -- the callables ---------------------------------------------------------------------------------

VALID = {
    "strategy": "momentum_20d",
    "symbols": ["AAPL"],
    "allocation_usd": "1000",
    "mode": "shadow",
}


@pytest.mark.parametrize(
    "change",
    [
        {"strategy": "astrology"},
        {"symbols": []},
        {"symbols": [f"S{chr(65 + i)}" for i in range(21)]},
        {"symbols": ["AAPL", "AAPL"]},
        {"symbols": ["aapl"]},
        {"allocation_usd": 1000},
        {"allocation_usd": "0"},
        {"allocation_usd": "-5"},
        {"allocation_usd": "1e3"},
        {"mode": "real"},  # live is a mode, with its own refusals (test_live_trading)
        {"take_profit_pct": "0"},
        {"stop_loss_pct": 5},
        {"id": "__x__"},
        {"extra": True},
    ],
)
def test_bad_strategies_are_refused_and_change_nothing(
    world: World, db: firestore.Client, change: dict[str, Any]
) -> None:
    before = data_of(db)
    error = error_of(
        strategy_callables.save_strategy, world.services, auth(world.uid), {**VALID, **change}
    )
    assert error.code == Code.INVALID_ARGUMENT
    assert data_of(db) == before


@pytest.mark.parametrize(
    ("call", "data", "code"),
    [
        (
            strategy_callables.set_strategy_status,
            {"id": "nope", "status": "active"},
            Code.NOT_FOUND,
        ),
        (
            strategy_callables.set_strategy_status,
            {"id": "x", "status": "error"},
            Code.INVALID_ARGUMENT,
        ),
        (strategy_callables.delete_strategy, {"id": "nope"}, Code.NOT_FOUND),
        (strategy_callables.save_strategy, {**VALID, "id": "nope"}, Code.NOT_FOUND),
        (
            strategy_callables.save_strategy,
            {**VALID, "allocation_usd": "20000"},
            Code.FAILED_PRECONDITION,
        ),
        (
            strategy_callables.save_risk_limits,
            {
                "max_position_usd": "1",
                "max_daily_loss_usd": "1",
                "max_drawdown_pct": "101",
                "max_trades_per_day": 1,
            },
            Code.INVALID_ARGUMENT,
        ),
        (
            strategy_callables.save_risk_limits,
            {
                "max_position_usd": "1",
                "max_daily_loss_usd": "1",
                "max_drawdown_pct": "5",
                "max_trades_per_day": True,
            },
            Code.INVALID_ARGUMENT,
        ),
    ],
)
def test_strategy_calls_say_what_is_wrong(
    world: World, db: firestore.Client, call: Any, data: dict[str, Any], code: Code
) -> None:
    before = data_of(db)
    assert error_of(call, world.services, auth(world.uid), data).code == code
    assert data_of(db) == before


def test_each_change_is_audited_and_tells_the_pulse_to_read_again(world: World) -> None:
    version = world.doc("").get("bot_version")
    sid = world.strategy(symbols=["AAPL"])
    strategy_callables.save_strategy(
        world.services, auth(world.uid), {**VALID, "id": sid, "symbols": ["MSFT", "AAPL"]}
    )
    strategy_callables.delete_strategy(world.services, auth(world.uid), {"id": sid})
    assert world.doc("")["bot_version"] == (version or 0) + 4
    actions = sorted(e["action"] for e in world.docs("audit").values())
    assert actions.count("strategy_saved") == 2
    assert "strategy_status" in actions
    assert "strategy_deleted" in actions


def test_someone_else_cannot_touch_my_strategy(world: World) -> None:
    sid = world.strategy(symbols=["AAPL"])
    for call, data in (
        (strategy_callables.set_strategy_status, {"id": sid, "status": "paused"}),
        (strategy_callables.delete_strategy, {"id": sid}),
        (strategy_callables.save_strategy, {**VALID, "id": sid}),
    ):
        assert error_of(call, world.services, auth("mallory"), data).code == Code.NOT_FOUND
    assert world.docs("strategies")[sid]["status"] == "active"


def test_a_person_keeps_at_most_ten_strategies(world: World) -> None:
    for _ in range(strategy_callables.MAX_STRATEGIES):
        world.strategy(symbols=["AAPL"], start=False)
    error = error_of(strategy_callables.save_strategy, world.services, auth(world.uid), VALID)
    assert error.code == Code.FAILED_PRECONDITION
