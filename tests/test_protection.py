"""What a person holds stays protected whatever else happens: each open trade carries its own
exit levels and the pulse checks them whatever became of its strategy; the clock never depends
on who is switched on; Alpaca's refusals are read by what they say; nothing new leaves after a
stop or in the session's last minute; a trade moves only through the order it waits for; P&L
from exact fills. Driven through the pulse and the callables, against the emulators and the
Alpaca stand-in."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import google_crc32c
import pytest
import requests
from bot_world import World, price_of, seed_open_trade, trade
from calling import Code, auth, error_of
from google.api_core import exceptions as gexc

from agenttrader.api import (
    admin_callables,
    callables,
    keys_callables,
    position_callables,
    strategy_callables,
)
from agenttrader.bot.lifecycle import Change, Event, Fill, figures, move
from agenttrader.broker.keystore import AlpacaKeys
from agenttrader.core.clients import project_id, secret_manager_client
from agenttrader.pulse.people import PulseSettings
from agenttrader.pulse.run import run_pulse
from agenttrader.store import paths
from localdev.seed import register_alpaca_account

DAY = "2026-11-23"


def hold(
    world: World,
    trade_id: str,
    symbol: str,
    entry: Decimal,
    sid: str | None,
    *,
    stop_pct: str = "5",
    mode: str = "shadow",
    qty: str = "3",
) -> None:
    """An open long position of `qty` shares entered at `entry` that carries its own stop."""
    stop = entry * (1 - Decimal(stop_pct) / 100)
    doc: dict[str, Any] = {
        "symbol": symbol,
        "side": "BUY",
        "quantity": qty,
        "entry_price": str(entry),
        "status": "OPEN",
        "state": "open",
        "strategy_id": sid,
        "entry_day": "2026-11-20",
        "created_at": datetime(2026, 11, 20, tzinfo=UTC),
        "mode": mode,
        "take_profit_pct": None,
        "stop_loss_pct": stop_pct,
        "take_profit_price": None,
        "stop_loss_price": str(stop),
    }
    if mode == "paper":
        doc["fills"] = {f"{trade_id}-open": {"role": "entry", "qty": qty, "price": str(entry)}}
        doc["account_number"] = account_number(world)
    seed_open_trade(world, trade_id, doc)


def account_number(world: World) -> str:
    return world.alpaca_account().account_number


# -- 1: exits belong to the position, not to the strategy that opened it -------------------------


def test_every_open_trade_is_stopped_whatever_its_strategy_became(world: World) -> None:
    symbols = [world.holding()] * 4
    price = price_of(world, symbols[0])
    paused = world.strategy(symbols=symbols[:1])
    strategy_callables.set_strategy_status(
        world.services, auth(world.uid), {"id": paused, "status": "paused"}
    )
    failed = world.strategy(symbols=symbols[:1])
    paths.strategies(world.db, world.uid).document(failed).update(
        {"status": "error", "last_error": {"code": "NO_BARS", "message": "x", "retry": False}}
    )
    deleted = world.strategy(symbols=symbols[:1])
    strategy_callables.delete_strategy(world.services, auth(world.uid), {"id": deleted})
    owners = {"paused": paused, "error": failed, "deleted": deleted, "by-hand": None}
    for name, sid in owners.items():  # each entered at twice today's price: its stop is crossed
        hold(world, f"t-{name}", symbols[0], price * 2, sid)
    world.pulse()
    for name in owners:
        closed = trade(world, f"t-{name}")
        assert (closed["status"], closed["state"]) == ("CLOSED", "closed"), name
        assert closed["close_reason"].startswith("stop-loss: $"), closed["close_reason"]
        assert Decimal(closed["realized_pnl"]) == ((price - price * 2) * 3).quantize(
            Decimal("0.01")
        )
    assert world.doc("")["open_trades"] == 0


def test_one_refused_close_does_not_keep_the_next_trade_from_its_stop(world: World) -> None:
    first, second = world.holding(), "KO"
    sid = world.strategy(symbols=[first], mode="paper", start=False)
    prices = {s: price_of(world, s) for s in (first, second)}
    world.account(
        holdings={first: 3, second: 3},
        orders={
            "refuse": {"message": "potential wash trade detected", "times": 1},
            "fill_delay_s": 0,
        },
    )
    hold(world, "t-first", first, prices[first] * 2, sid, mode="paper")
    hold(world, "t-second", second, prices[second] * 2, sid, mode="paper")
    world.pulse()
    orders = world.docs("orders")
    ends = sorted(orders[f"{t}-close"]["status"] for t in ("t-first", "t-second"))
    assert ends[-1] == "rejected" and ends[0] != "rejected"  # one refused, the other sent
    refused = next(t for t in ("t-first", "t-second") if trade(world, t)["state"] == "open")
    assert "wash trade" in trade(world, refused)["last_close_error"]["reason"]
    world.pulse(f"{DAY}T10:01")
    world.pulse(f"{DAY}T10:02")
    assert {t: trade(world, t)["state"] for t in ("t-first", "t-second")} == {
        "t-first": "closed",
        "t-second": "closed",
    }
    assert world.positions() == {}


def test_a_paper_entry_carries_levels_from_its_exact_fill(world: World) -> None:
    symbol = world.acting()[0][0]
    world.account(orders={"fill_delay_s": 0})
    sid = world.strategy(symbols=[symbol], mode="paper", take_profit_pct="10", stop_loss_pct="5")
    world.pulse()
    world.pulse(f"{DAY}T10:01")
    held = trade(world, f"{sid}-{symbol}-{DAY}")
    assert held["state"] == "open"
    fill = Decimal(held["fills"][f"{sid}-{symbol}-{DAY}-open"]["price"])
    assert Decimal(held["take_profit_price"]) == fill * Decimal("1.1")
    assert Decimal(held["stop_loss_price"]) == fill * Decimal("0.95")
    assert (held["take_profit_pct"], held["stop_loss_pct"]) == ("10", "5")
    account = world.alpaca_account()
    assert (held["account_number"], held["account_id"], held["paper"]) == (
        account.account_number,
        account.account_id,
        True,
    )
    assert account.account_id  # Alpaca's id of the account, not only its number


def test_new_levels_reach_a_strategys_open_trades_only_when_the_person_says_so(
    world: World,
) -> None:
    symbol = world.holding()
    price = price_of(world, symbol)
    world.account(holdings={symbol: 3}, orders={"fill_delay_s": 0})
    sid = world.strategy(symbols=[symbol], mode="paper", stop_loss_pct="5", start=False)
    other = world.strategy(symbols=[symbol], stop_loss_pct="5", start=False)
    entry = price * Decimal("1.03")  # 5% under it is below the price; 2% under it is above
    hold(world, "t-paper", symbol, entry, sid, mode="paper")
    hold(world, "t-other", symbol, entry, other)
    base = {
        "id": sid,
        "strategy": "momentum_20d",
        "symbols": [symbol],
        "allocation_usd": "1000",
        "mode": "paper",
        "stop_loss_pct": "2",
    }
    who = auth(world.uid)
    assert strategy_callables.save_strategy(world.services, who, base)["relevelled"] == []
    assert trade(world, "t-paper")["stop_loss_pct"] == "5"  # kept what it entered with
    answer = strategy_callables.save_strategy(
        world.services, who, {**base, "take_profit_pct": "10", "apply_to_open_trades": True}
    )
    assert answer["relevelled"] == ["t-paper"]
    moved = trade(world, "t-paper")
    assert (moved["stop_loss_pct"], moved["take_profit_pct"]) == ("2", "10")
    assert Decimal(moved["stop_loss_price"]) == entry * Decimal("0.98")  # from the exact entry
    assert Decimal(moved["take_profit_price"]) == entry * Decimal("1.1")
    assert trade(world, "t-other")["stop_loss_pct"] == "5"  # another strategy's trade
    world.pulse()  # the strategy is paused: its trade's own (new) stop closes it
    closed = trade(world, "t-paper")
    assert (closed["state"], closed["close_reason"][:9]) == ("closed", "stop-loss")
    assert trade(world, "t-other")["state"] == "open"
    assert world.positions() == {}


# -- 3: the clock never depends on who is switched on ---------------------------------------------


@pytest.mark.parametrize("alpaca_clock", [True, False])
def test_everyone_switched_off_still_has_their_stop_after_the_clock_expired(
    world: World, alpaca_clock: bool
) -> None:
    symbol = world.holding()
    price = price_of(world, symbol)
    hold(world, "t-held", symbol, price * 2, None)
    callables.set_trading_enabled(world.services, auth(world.uid), {"enabled": False})
    world.pulse("2026-11-20T17:00")  # Friday after the close: the clock is read and stored
    assert trade(world, "t-held")["state"] == "open"
    if not alpaca_clock:  # nobody's keys answer the clock: the exchange calendar does
        world.fault(world.uid, {"kind": "http", "status": 500, "endpoints": ["clock"]})
    run = world.pulse(f"{DAY}T10:00")  # Monday: the stored clock expired at Monday's open
    assert run.market_open is True
    closed = trade(world, "t-held")
    assert (closed["state"], closed["close_reason"][:9]) == ("closed", "stop-loss")
    clock = world.db.document("ops/pulse_state").get().to_dict()["clock"]
    assert clock["is_open"] is True


def test_the_operators_own_key_pair_reads_the_clock_first(world: World) -> None:
    symbol = world.holding()
    hold(world, "t-held", symbol, price_of(world, symbol) * 2, None)
    callables.set_trading_enabled(world.services, auth(world.uid), {"enabled": False})
    world.pulse("2026-11-20T17:00")
    platform_keys = register_alpaca_account(world.alpaca.url, "AKOPERATOR1", "secret-key-9")
    store_platform_keys("alpaca-clock-keys", platform_keys)
    before = world.alpaca.market.stats()["by_key"]
    world.set(f"{DAY}T10:00")
    settings = PulseSettings(clock_keys_secret="alpaca-clock-keys")
    assert run_pulse(world.platform, settings).market_open is True
    asked = world.alpaca.market.stats()["by_key"]
    assert asked["AKOPERATOR1"] == {"clock": 1}  # the clock, and nothing else, with its keys
    person_clock = before.get(world.keys.key_id, {}).get("clock", 0)
    assert asked[world.keys.key_id].get("clock", 0) == person_clock  # not the person's keys
    assert trade(world, "t-held")["state"] == "closed"


def test_a_platform_key_pair_that_is_missing_falls_back_to_peoples_keys(world: World) -> None:
    symbol = world.holding()
    hold(world, "t-held", symbol, price_of(world, symbol) * 2, None)
    world.pulse("2026-11-20T17:00")
    world.set(f"{DAY}T10:00")
    settings = PulseSettings(clock_keys_secret="no-such-secret")
    assert run_pulse(world.platform, settings).market_open is True
    assert "no-such-secret" not in world.alpaca.market.stats()["by_key"]
    assert trade(world, "t-held")["state"] == "closed"


def store_platform_keys(secret_id: str, keys: AlpacaKeys) -> None:
    """The operator's key pair, as they would store it with gcloud."""
    client = secret_manager_client()
    parent = f"projects/{project_id()}"
    with contextlib.suppress(gexc.AlreadyExists):
        client.create_secret(
            request={
                "parent": parent,
                "secret_id": secret_id,
                "secret": {"replication": {"automatic": {}}},
            }
        )
    data = keys.payload()
    client.add_secret_version(
        request={
            "parent": f"{parent}/secrets/{secret_id}",
            "payload": {"data": data, "data_crc32c": google_crc32c.value(data)},
        }
    )


# -- 6: nothing new leaves after a stop -----------------------------------------------------------


def test_an_entry_decided_before_a_switch_off_is_cancelled_not_sent(world: World) -> None:
    symbol = world.acting()[0][0]
    sid = world.strategy(symbols=[symbol], mode="paper")
    world.fault(world.uid, {"kind": "http", "status": 500, "endpoints": ["submit_order"]})
    world.pulse()
    order_id = f"{sid}-{symbol}-{DAY}-open"
    assert world.docs("orders")[order_id]["status"] == "pending"
    callables.set_trading_enabled(world.services, auth(world.uid), {"enabled": False})
    world.fault(world.uid, None)
    sent_before = world.orders_at_alpaca()
    world.pulse(f"{DAY}T10:01")
    order = world.docs("orders")[order_id]
    assert (order["status"], order["open"]) == ("canceled", False)
    assert "switched off" in order["reason"]
    assert world.orders_at_alpaca() == sent_before  # nothing sent since the switch-off
    assert trade(world, f"{sid}-{symbol}-{DAY}")["state"] == "closed"
    assert world.positions() == {}


# -- 7: Alpaca's refusals by what they say --------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        "trade denied due to pattern day trading protection",
        "potential wash trade detected. use complex orders",
        "insufficient qty available for order (requested: 3, available: 0)",
        "insufficient buying power",
        "a refusal Alpaca adds next year",
    ],
)
def test_an_order_refusal_is_never_read_as_bad_keys(world: World, message: str) -> None:
    symbol = world.acting()[0][0]
    world.account(orders={"refuse": {"message": message, "times": 5}})
    sid = world.strategy(symbols=[symbol], mode="paper")
    world.pulse()
    order = world.docs("orders")[f"{sid}-{symbol}-{DAY}-open"]
    assert (order["status"], order["open"]) == ("rejected", False)
    assert message in order["reason"]
    strategy = world.docs("strategies")[sid]
    assert strategy["last_error"]["code"] == "ORDER_REJECTED"
    assert message in strategy["last_error"]["message"]
    assert trade(world, f"{sid}-{symbol}-{DAY}")["state"] == "closed"
    world.pulse(f"{DAY}T10:01")  # the refused order is not sent again under its id
    assert world.docs("orders")[f"{sid}-{symbol}-{DAY}-open"]["status"] == "rejected"
    assert world.doc("status/sync").get("last_error_code") != "ALPACA_UNAUTHORIZED"


def test_a_refusal_of_the_keys_is_still_bad_keys(world: World) -> None:
    world.fault(world.uid, {"kind": "http", "status": 403, "endpoints": ["account"]})
    world.pulse()
    assert world.doc("status/last_sync_error")["code"] == "ALPACA_UNAUTHORIZED"


# -- 8: no order after the close ------------------------------------------------------------------


def test_no_order_leaves_in_the_sessions_last_minute(world: World) -> None:
    world.set(f"{DAY}T15:59:30")
    symbol = world.acting()[0][0]  # the strategy would enter it then
    world.strategy(symbols=[symbol], mode="paper")
    world.pulse(f"{DAY}T09:00")  # the clock is read before the open: it closes at 16:00
    world.pulse(f"{DAY}T15:59:30")
    assert world.orders_at_alpaca() == 0
    assert world.docs("orders") == {}
    assert world.docs("shadowTradeHistory") == {}


# -- 9: an event moves a trade only through the order it waits for --------------------------------


def test_a_late_refusal_of_an_earlier_close_does_not_reopen_the_trade(world: World) -> None:
    ref = paths.shadow_trades(world.db, world.uid).document("t-closing")
    ref.set(
        {
            "symbol": "KO",
            "side": "BUY",
            "quantity": "3",
            "entry_price": "60",
            "status": "OPEN",
            "state": "closing",
            "mode": "paper",
            "fills": {"t-closing-open": {"role": "entry", "qty": "3", "price": "60"}},
            "close_order_id": "t-closing-close-2",
            "close_attempts": 2,
        }
    )
    now = datetime.now(UTC)
    stale = Change(
        Event.EXIT_FAILED, reason="old", fill=("t-closing-close", Fill("exit", Decimal(0), None))
    )
    assert move(world.db, world.uid, "t-closing", stale, now) is None
    assert ref.get().to_dict()["state"] == "closing"
    filled = Change(
        Event.EXIT_FILLED, fill=("t-closing-close-2", Fill("exit", Decimal(3), Decimal("61")))
    )
    assert move(world.db, world.uid, "t-closing", filled, now) is not None
    closed = ref.get().to_dict()
    assert (closed["state"], closed["realized_pnl"]) == ("closed", "3.00")


# -- 11: realized P&L from exact fills ------------------------------------------------------------


def test_realized_pnl_comes_from_the_exact_average_not_a_rounded_one() -> None:
    fills = {
        "a": Fill("entry", Decimal(1000), Decimal("10")),
        "b": Fill("entry", Decimal(2000), Decimal("10.00013")),
        "c": Fill("exit", Decimal(3000), Decimal("11")),
    }
    numbers = figures("BUY", fills)
    exact = (Decimal(11) - (Decimal(10000) + Decimal("20000.26")) / 3000) * 3000
    assert numbers.realized_pnl == exact.quantize(Decimal("0.01")) == Decimal("2999.74")


def test_the_stand_in_refuses_with_alpacas_words(world: World) -> None:
    world.account(orders={"refuse": {"message": "potential wash trade detected", "times": 1}})
    answer = requests.post(
        f"{world.alpaca.url}/v2/orders",
        json={"symbol": "KO", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"},
        headers={"APCA-API-KEY-ID": world.keys.key_id, "APCA-API-SECRET-KEY": "secret-key-1"},
        timeout=5,
    )
    assert (answer.status_code, answer.json()["message"]) == (403, "potential wash trade detected")


# -- 2: an order goes only to the account that holds its position ---------------------------------


def submitted(world: World, key_id: str) -> int:
    stats = requests.get(f"{world.alpaca.url}/_standin/stats", timeout=5).json()["by_key"]
    return int(stats.get(key_id, {}).get("submit_order", 0))


def test_nothing_is_sent_to_an_account_that_does_not_hold_the_position(world: World) -> None:
    symbol = world.holding()
    price = price_of(world, symbol)
    world.account(holdings={symbol: 3}, orders={"fill_delay_s": 0})
    hold(world, "t-paper", symbol, price * 2, None, mode="paper")
    paper_account = account_number(world)
    live = register_alpaca_account(world.alpaca.url, "AKLIVE0001", "secret-key-1", cash="50000")
    saved = keys_callables.save_alpaca_keys(
        world.services,
        auth(world.uid),
        {"key_id": live.key_id, "secret_key": "secret-key-1", "paper": False},
    )
    assert saved["trades_in_other_account"] == [
        {"trade_id": "t-paper", "symbol": symbol, "account_last4": paper_account[-4:]}
    ]
    world.pulse()  # its stop is crossed, but these keys open the live account
    flagged = trade(world, "t-paper")
    assert flagged["state"] == "open"
    assert flagged["other_account"]["held_in"] == paper_account
    assert "save the keys of the account that holds it again" in flagged["other_account"]["message"]
    assert submitted(world, live.key_id) == 0
    assert world.doc("status/reconciliation").get("mismatches", {}) == {}  # not compared
    refused = error_of(
        position_callables.close_shadow_trade,
        world.services,
        auth(world.uid),
        {"trade_id": "t-paper"},
    )
    assert refused.code == Code.FAILED_PRECONDITION and "ending" in refused.message
    assert submitted(world, live.key_id) == 0
    closed = position_callables.mark_trade_closed(
        world.services, auth(world.uid), {"trade_id": "t-paper"}
    )
    assert closed["state"] == "closed"
    by_hand = trade(world, "t-paper")
    assert (by_hand["status"], by_hand["close_reason"]) == (
        "CLOSED",
        "marked closed by you, no order sent",
    )
    assert "trade_marked_closed" in {a["action"] for a in world.docs("audit").values()}
    assert submitted(world, live.key_id) == 0 and submitted(world, world.keys.key_id) == 0


def test_saving_the_holding_accounts_keys_again_lets_its_stop_leave(world: World) -> None:
    symbol = world.holding()
    world.account(holdings={symbol: 3}, orders={"fill_delay_s": 0})
    hold(world, "t-paper", symbol, price_of(world, symbol) * 2, None, mode="paper")
    paper_account = account_number(world)
    live = register_alpaca_account(world.alpaca.url, "AKLIVE0001", "secret-key-1")
    who = auth(world.uid)
    keys_callables.save_alpaca_keys(
        world.services, who, {"key_id": live.key_id, "secret_key": "secret-key-1", "paper": False}
    )
    flag = trade(world, "t-paper")["other_account"]  # said at once, before any run
    assert flag["held_in"] == paper_account and flag["keys_open"] not in ("", paper_account)
    assert f"ending {paper_account[-4:]}" in flag["message"]
    again = keys_callables.save_alpaca_keys(
        world.services, who, {"key_id": world.keys.key_id, "secret_key": "secret-key-1"}
    )
    assert again["trades_in_other_account"] == []
    assert "other_account" not in trade(world, "t-paper")
    world.pulse()  # its stop is crossed: the sale goes to the paper account that holds it
    assert trade(world, "t-paper")["state"] == "closed"
    assert submitted(world, world.keys.key_id) == 1 and submitted(world, live.key_id) == 0
    assert world.positions() == {}


# -- 4: a difference caps exits -------------------------------------------------------------------


@pytest.mark.parametrize(("alpaca_holds", "sold"), [(0, 0), (5, 5)])
def test_an_exit_in_a_symbol_that_differs_never_sells_past_zero(
    world: World, alpaca_holds: int, sold: int
) -> None:
    symbol = world.holding()
    price = price_of(world, symbol)
    world.account(holdings={symbol: alpaca_holds}, orders={"fill_delay_s": 0})
    hold(world, "t-ten", symbol, price * 2, None, mode="paper", qty="10")
    world.pulse()  # the difference is recorded, the stop is crossed
    assert world.doc("status/reconciliation")["mismatches"][symbol]["broker_qty"] == str(
        alpaca_holds
    )
    assert world.orders_at_alpaca() == (1 if sold else 0)
    world.pulse(f"{DAY}T10:01")
    world.pulse(f"{DAY}T10:02")
    assert world.positions().get(symbol, Decimal(0)) == 0  # never a short
    if sold:
        closed = trade(world, "t-ten")
        assert closed["state"] == "closed"
        assert world.docs("orders")["t-ten-close"]["qty"] == "5"
    else:
        assert trade(world, "t-ten")["state"] == "open"
    assert world.orders_at_alpaca() == (1 if sold else 0)


def test_a_difference_stands_while_its_symbols_order_works(world: World) -> None:
    ((symbol, _),) = world.acting()
    price = price_of(world, symbol)
    world.account(holdings={symbol: 5}, orders={"fill_delay_s": 3600})
    hold(world, "t-ten", symbol, price / 2, None, mode="paper", qty="10")
    world.pulse()  # book 10, Alpaca 5: recorded
    position_callables.close_shadow_trade(world.services, auth(world.uid), {"trade_id": "t-ten"})
    assert world.docs("orders")["t-ten-close"]["qty"] == "5"  # capped, and working
    sid = world.strategy(symbols=[symbol], mode="paper")  # would enter the symbol now
    world.pulse(f"{DAY}T10:01")  # the symbol is not compared while its close works
    mismatch = world.doc("status/reconciliation")["mismatches"][symbol]
    assert (mismatch["broker_qty"], mismatch["book_qty"]) == ("5", "10")
    assert not any(order_id.startswith(sid) for order_id in world.docs("orders"))
    assert world.orders_at_alpaca() == 1  # the close only


def test_use_alpacas_quantity_sets_the_book_without_an_order(world: World) -> None:
    symbol = world.holding()
    price = price_of(world, symbol)
    world.account(holdings={symbol: 4})
    hold(world, "t-ten", symbol, price / 2, None, mode="paper", qty="10")
    world.pulse()
    assert symbol in world.doc("status/reconciliation")["mismatches"]
    answer = position_callables.use_alpaca_quantity(
        world.services, auth(world.uid), {"symbol": symbol}
    )
    assert (answer["alpaca_qty"], answer["book_qty"], answer["trades"]) == ("4", "10", ["t-ten"])
    held = trade(world, "t-ten")
    assert (held["state"], held["quantity"]) == ("open", "4")
    world.pulse(f"{DAY}T10:01")
    assert world.doc("status/reconciliation")["mismatches"] == {}
    assert world.book() == world.positions() == {symbol: Decimal(4)}
    # nothing bought or sold: the only order is the stop that now rests for the 4 it holds
    orders = world.docs("orders").values()
    assert [(o.get("kind"), o["qty"]) for o in orders] == [("resting", "4")]
    assert world.orders_at_alpaca() == 1
    world.account(holdings={symbol: 4, "KO": 5})  # a KO position the product never opened
    more = error_of(
        position_callables.use_alpaca_quantity, world.services, auth(world.uid), {"symbol": "KO"}
    )
    assert more.code == Code.FAILED_PRECONDITION and "never takes over" in more.message


# -- 5: every refused close is tried again, boundedly ---------------------------------------------


def test_a_refused_close_the_person_asked_for_is_tried_again_then_handed_back(
    world: World,
) -> None:
    symbol = world.holding()
    price = price_of(world, symbol)
    world.account(holdings={symbol: 3}, orders={"reject_closes": 10, "fill_delay_s": 0})
    hold(world, "t-mine", symbol, price / 2, None, mode="paper")  # far from its stop
    world.pulse("2026-11-23T09:45")  # the clock is read: the market is open
    position_callables.close_shadow_trade(world.services, auth(world.uid), {"trade_id": "t-mine"})
    assert trade(world, "t-mine")["state"] == "open"  # refused at once
    for minute in range(10, 20):
        world.pulse(f"{DAY}T10:{minute:02d}")
    held = trade(world, "t-mine")
    assert (held["state"], held["close_attempts"]) == ("open", 5)
    assert held["close_reason"] == "closed by you"
    assert "insufficient qty" in held["last_close_error"]["reason"]
    orders = world.docs("orders")
    closes = ["t-mine-close"] + [f"t-mine-close-{n}" for n in range(2, 6)]
    # once the product stops trying, the trade's stop is offered to Alpaca to rest: refused
    # here too (this account refuses every sale), once, and not asked again unchanged
    assert sorted(orders) == [*closes, "t-mine-rest-1"]
    assert {o["status"] for o in orders.values()} == {"rejected"}
    assert world.orders_at_alpaca() == 6  # one at a time, never two working
    assert "Alpaca refused its resting exit" in trade(world, "t-mine")["resting_problem"]
    told = {k: v for k, v in world.docs("notifications").items() if v["kind"] == "exit_failed"}
    assert sorted(told) == ["exit-failed-t-mine-1", "exit-failed-t-mine-5"]
    assert "stopped trying" in told["exit-failed-t-mine-5"]["message"]
    assert "mark the trade closed" in told["exit-failed-t-mine-5"]["message"]
    assert world.positions() == {symbol: Decimal(3)} == world.book()


# -- 10: the switch changes only through the callable; an administrator's switch-off is a lock ---


def test_an_administrators_switch_off_holds_until_an_administrator_lifts_it(
    world: World,
) -> None:
    ops = auth("ops", admin=True)
    admin_callables.admin_disable_user_trading(
        world.services, ops, {"uid": world.uid, "reason": "unusual orders, under review"}
    )
    switch = world.doc("status/trading")
    assert (switch["enabled"], switch["locked_by"]) == (False, "ops")
    refused = error_of(
        callables.set_trading_enabled, world.services, auth(world.uid), {"enabled": True}
    )
    assert refused.code == Code.FAILED_PRECONDITION
    assert "unusual orders, under review" in refused.message
    assert world.doc("status/trading") == switch  # nothing changed, the reason kept
    admin_callables.admin_unlock_user_trading(world.services, ops, {"uid": world.uid})
    assert world.doc("status/trading")["enabled"] is False  # lifted, still off
    callables.set_trading_enabled(world.services, auth(world.uid), {"enabled": True})
    assert world.doc("status/trading")["enabled"] is True
    actions = [a["action"] for a in world.docs("audit").values()]
    assert {"trading_switched", "trading_unlocked"} <= set(actions)


def test_a_person_switches_back_on_after_a_risk_trip(world: World) -> None:
    world.account(last_equity="200000")  # today's loss is over the daily limit
    world.strategy(symbols=[world.acting()[0][0]])
    world.pulse()
    assert world.doc("status/trading")["tripped_by"] == "max_daily_loss_usd"
    callables.set_trading_enabled(world.services, auth(world.uid), {"enabled": True})
    assert world.doc("status/trading")["enabled"] is True


# -- 12: the limits read open P&L from the current marks ------------------------------------------


def test_a_fill_does_not_make_the_shadow_books_gains_look_lost(world: World) -> None:
    symbol = world.acting()[0][0]
    held = world.holding()
    price = price_of(world, held)
    qty = int(4400 / price) + 1  # up more than the $2,000 daily-loss limit since the entry
    hold(world, "t-up", held, price / 2, None, stop_pct="90", qty=str(qty))
    world.account(orders={"fill_delay_s": 600})
    world.strategy(symbols=[symbol], mode="paper")
    world.pulse()  # the shadow book's day starts up; a paper entry goes out
    world.advance(600)
    world.pulse(f"{DAY}T10:01")  # the entry fills: the run reads its trades again
    assert world.doc("status/trading")["enabled"] is True
    assert "tripped_by" not in world.doc("status/trading")
    stats = world.doc("stats/summary")
    assert Decimal(stats["unrealized_pnl"]) > 2000
