"""The bot's book always matches the broker's: a position exists in the product exactly when
the Alpaca stand-in holds it, at the quantity that filled, whatever the broker does (fills late,
fills partly, cancels, refuses a close, loses an answer), and whatever the switches say.

Each test ends by comparing the product's paper book (its open paper trades' quantities,
signed) with the stand-in's positions (`GET /v2/positions`)."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import requests
from bot_world import World, price_of, seed_position, trade
from calling import Code, auth, error_of

from agenttrader.api import admin_callables, callables, strategy_callables
from agenttrader.store import paths
from localdev.alpaca_standin import price_at
from localdev.market_calendar import NEW_YORK

DAY = "2026-11-23"


def assert_books_agree(world: World) -> dict[str, Decimal]:
    book, broker = world.book(), world.positions()
    assert book == broker, f"the product holds {book}, Alpaca holds {broker}"
    return book


def moves(symbol: str, before: str, after: str) -> bool:
    """The stand-in's price of `symbol` differs at the two New York times."""
    at = [datetime.fromisoformat(t).replace(tzinfo=NEW_YORK).timestamp() for t in (before, after)]
    return price_at(symbol, at[0]) != price_at(symbol, at[1])


def slow_fills(world: World, **plan: Any) -> None:
    """The person's orders fill only when the test says (`world.advance`)."""
    world.account(orders={"fill_delay_s": 600, **plan})


# -- 1 and 3: exits only after the entry filled; P&L from both legs' fills ------------------------


def test_no_exit_while_the_entry_is_unfilled_and_pnl_comes_from_the_fills(world: World) -> None:
    # a symbol whose price moves between the fill (10:03) and the next run (10:04)
    symbol = next(s for s, _ in world.acting(3) if moves(s, f"{DAY}T10:03", f"{DAY}T10:04"))
    slow_fills(world)
    sid = world.strategy(
        symbols=[symbol], mode="paper", take_profit_pct="0.0001", stop_loss_pct="0.0001"
    )
    world.pulse()
    trade_id = f"{sid}-{symbol}-{DAY}"
    opening = trade(world, trade_id)
    assert (opening["state"], opening["quantity"], opening["status"]) == ("opening", "0", "OPEN")
    for minute in ("10:01", "10:02"):  # the price moves past both limits; nothing is held
        world.pulse(f"{DAY}T{minute}")
        assert trade(world, trade_id)["state"] == "opening"
    assert list(world.docs("orders")) == [f"{trade_id}-open"]
    assert_books_agree(world)  # nothing on either side
    world.advance(600)
    world.pulse(f"{DAY}T10:03")  # the entry fills: held now, at its fill
    entry = world.docs("orders")[f"{trade_id}-open"]
    held = trade(world, trade_id)
    assert held["state"] == "open"
    assert held["quantity"] == entry["filled_qty"] == opening["ordered_qty"]
    assert held["entry_price"] == entry["filled_avg_price"]
    assert_books_agree(world)
    world.pulse(f"{DAY}T10:04")  # the price moved: the exit goes out now, after the fill
    assert trade(world, trade_id)["state"] == "closing"
    world.advance(600)
    world.pulse(f"{DAY}T10:05")
    closed = trade(world, trade_id)
    exit_order = world.docs("orders")[f"{trade_id}-close"]
    assert (closed["state"], closed["status"]) == ("closed", "CLOSED")
    expected = (Decimal(exit_order["filled_avg_price"]) - Decimal(entry["filled_avg_price"])) * (
        Decimal(entry["filled_qty"])
    )
    assert Decimal(closed["realized_pnl"]) == expected.quantize(Decimal("0.01"))
    assert closed["exit_price"] == exit_order["filled_avg_price"]
    assert assert_books_agree(world) == {}
    # the person heard of each fill once, in words, with the figures
    told = world.docs("notifications")
    assert set(told) == {f"entry-filled-{trade_id}", f"exit-filled-{trade_id}"}
    entered, left = told[f"entry-filled-{trade_id}"], told[f"exit-filled-{trade_id}"]
    assert (entered["kind"], entered["quantity"], entered["price"]) == (
        "entry_filled",
        held["quantity"],
        held["entry_price"],
    )
    assert entered["message"].startswith(f"Your paper trade bought {held['quantity']} {symbol}")
    assert (left["kind"], left["realized_pnl"], left["quantity"]) == (
        "exit_filled",
        closed["realized_pnl"],
        held["quantity"],
    )
    assert "realized P&L" in left["message"] and left["read_at"] is None


def test_an_entry_never_sent_has_no_exit(world: World) -> None:
    symbol = world.acting()[0][0]
    sid = world.strategy(symbols=[symbol], mode="paper", stop_loss_pct="0.0001")
    world.fault(world.uid, {"kind": "http", "status": 500, "endpoints": ["submit_order"]})
    world.pulse()
    world.pulse(f"{DAY}T10:01")
    trade_id = f"{sid}-{symbol}-{DAY}"
    assert trade(world, trade_id)["state"] == "opening"
    assert list(world.docs("orders")) == [f"{trade_id}-open"]  # no closing order
    assert world.docs("orders")[f"{trade_id}-open"]["status"] == "pending"
    assert_books_agree(world)


# -- 2: a partial fill, then a cancel -------------------------------------------------------------


def test_a_partly_filled_then_cancelled_entry_holds_what_filled(world: World) -> None:
    symbol = world.acting()[0][0]
    slow_fills(world, partial="0.5", then="cancel")
    price = price_of(world, symbol)
    sid = world.strategy(symbols=[symbol], mode="paper", allocation_usd=str(price * 20))
    world.pulse()
    trade_id = f"{sid}-{symbol}-{DAY}"
    assert trade(world, trade_id)["ordered_qty"] == "20"
    world.advance(600)
    world.pulse(f"{DAY}T10:01")  # 10 of 20 filled, the order still working
    filling = trade(world, trade_id)
    assert (filling["state"], filling["quantity"]) == ("opening", "10")
    world.advance(600)
    world.pulse(f"{DAY}T10:02")  # the rest is cancelled: 10 shares are held, with their stops
    held = trade(world, trade_id)
    assert (held["state"], held["quantity"], held["status"]) == ("open", "10", "OPEN")
    assert held["entry_price"] == world.docs("orders")[f"{trade_id}-open"]["filled_avg_price"]
    assert world.docs("orders")[f"{trade_id}-open"]["status"] == "canceled"
    assert "realized_pnl" not in held
    assert assert_books_agree(world) == {symbol: Decimal(10)}


# -- 4: a close Alpaca refuses --------------------------------------------------------------------


def test_a_refused_close_stays_open_and_is_tried_again_once(world: World) -> None:
    symbol = world.holding()
    sid = world.strategy(symbols=[symbol], mode="paper", take_profit_pct="10")
    price = price_of(world, symbol)
    trade_id = seed_position(world, sid, symbol, "BUY", str(price / 2), mode="paper")
    world.account(holdings={symbol: 3}, orders={"reject_closes": 1, "fill_delay_s": 0})
    world.pulse()
    refused = trade(world, trade_id)
    assert (refused["state"], refused["status"]) == ("open", "OPEN")
    assert "insufficient qty" in refused["last_close_error"]["reason"]
    assert world.docs("orders")[f"{trade_id}-close"]["status"] == "rejected"
    assert_books_agree(world)
    world.pulse(f"{DAY}T10:01")  # tried again, under a new id
    closed = trade(world, trade_id)
    assert (closed["state"], closed["status"]) == ("closed", "CLOSED")
    assert closed["close_order_id"] == f"{trade_id}-close-2"
    fill = Decimal(world.docs("orders")[f"{trade_id}-close-2"]["filled_avg_price"])
    assert Decimal(closed["realized_pnl"]) == ((fill - price / 2) * 3).quantize(Decimal("0.01"))
    assert world.orders_at_alpaca() == 2  # the refused one and the one that filled
    world.pulse(f"{DAY}T10:02")
    assert world.orders_at_alpaca() == 2
    assert assert_books_agree(world) == {}
    told = world.docs("notifications")
    assert set(told) == {f"exit-failed-{trade_id}-1", f"exit-filled-{trade_id}"}
    assert "insufficient qty" in told[f"exit-failed-{trade_id}-1"]["message"]


# -- 5: the day's limit counts entries, only when one is due --------------------------------------


def test_a_later_run_after_an_exit_does_not_trip_the_days_limit(world: World) -> None:
    symbol = world.acting()[0][0]
    world.strategy(symbols=[symbol], take_profit_pct="0.0001", stop_loss_pct="0.0001")
    world.limits(max_trades_per_day=1)
    world.pulse()
    world.pulse(f"{DAY}T10:01")  # the price moved: it exits
    assert [t["status"] for t in world.docs("shadowTradeHistory").values()] == ["CLOSED"]
    [trade_id] = world.docs("shadowTradeHistory")
    told = paths.notifications(world.db, world.uid)
    told.document(f"entry-filled-{trade_id}").update({"read_at": datetime.now(UTC)})
    for minute in ("10:02", "10:03"):  # the strategy still says BUY: today's entry was made
        world.pulse(f"{DAY}T{minute}")
    assert world.doc("status/trading")["enabled"] is True
    assert len(world.docs("shadowTradeHistory")) == 1
    # one notification per event, whatever the runs after it: what was read stays read
    notes = world.docs("notifications")
    assert set(notes) == {f"entry-filled-{trade_id}", f"exit-filled-{trade_id}"}
    assert notes[f"entry-filled-{trade_id}"]["read_at"] is not None
    assert notes[f"entry-filled-{trade_id}"]["message"].startswith("Your shadow trade bought")


# -- 6: switches stop entries, not stops ----------------------------------------------------------


def test_a_risk_trip_keeps_the_stops_of_what_is_held(world: World) -> None:
    symbol = world.holding()
    sid = world.strategy(symbols=[symbol], mode="paper", stop_loss_pct="5")
    price = price_of(world, symbol)
    trade_id = seed_position(world, sid, symbol, "BUY", str(price), mode="paper")
    world.account(holdings={symbol: 3}, last_equity="200000", orders={"fill_delay_s": 0})
    run = world.pulse()  # today's loss trips the limits; the position is held, its stop armed
    assert world.doc("status/trading")["tripped_by"] == "max_daily_loss_usd"
    tripped = world.docs("notifications")[f"risk-tripped-{run.run_id}"]
    assert tripped["kind"] == "risk_tripped" and tripped["limit"] == "max_daily_loss_usd"
    assert tripped["message"].startswith("Your max daily loss limit switched your trading off")
    assert trade(world, trade_id)["state"] == "open"
    paths.shadow_trades(world.db, world.uid).document(trade_id).update(
        {"entry_price": str(price * 2)}  # as if the price had halved since the entry
    )
    paths.user(world.db, world.uid).update({"trades_version": 1000})
    world.pulse(f"{DAY}T10:01")
    closed = trade(world, trade_id)
    assert (closed["state"], closed["close_reason"][:9]) == ("closed", "stop-loss")
    assert world.doc("status/trading")["enabled"] is False  # and no new entry
    assert world.doc("status/last_sync_error")["code"] == "RISK_LIMIT_TRIPPED"
    assert assert_books_agree(world) == {}


def test_switching_off_stops_entries_but_orders_are_followed(world: World) -> None:
    first, second = (s for s, _ in world.acting(2))
    slow_fills(world)
    sid = world.strategy(symbols=[first], mode="paper")
    world.pulse()
    callables.set_trading_enabled(world.services, auth(world.uid), {"enabled": False})
    strategy_callables.save_strategy(
        world.services,
        auth(world.uid),
        {
            "id": sid,
            "strategy": "momentum_20d",
            "symbols": [first, second],
            "allocation_usd": "1000",
            "mode": "paper",
        },
    )
    strategy_callables.set_strategy_status(
        world.services, auth(world.uid), {"id": sid, "status": "active"}
    )
    world.advance(600)
    summary = world.pulse(f"{DAY}T10:01")
    assert summary.counts["synced"] == 1  # switched off, still followed
    assert trade(world, f"{sid}-{first}-{DAY}")["state"] == "open"
    assert f"{sid}-{second}-{DAY}" not in world.docs("shadowTradeHistory")  # no entry
    assert assert_books_agree(world) != {}
    world.pulse(f"{DAY}T10:02")
    assert len(world.docs("shadowTradeHistory")) == 1


def test_the_global_switch_stops_every_order(world: World) -> None:
    symbol = world.acting()[0][0]
    slow_fills(world)
    world.strategy(symbols=[symbol], mode="paper")
    world.pulse()
    admin_callables.admin_set_global_trading(
        world.services, auth("ops", admin=True), {"enabled": False}
    )
    before = requests.get(f"{world.alpaca.url}/_standin/stats", timeout=5).json()["total"]
    world.advance(600)
    world.pulse(f"{DAY}T10:01")
    assert requests.get(f"{world.alpaca.url}/_standin/stats", timeout=5).json()["total"] == before


# -- 7: plain decimal strings everywhere ----------------------------------------------------------

EXPONENT = re.compile(r"^-?\d+(\.\d+)?[eE][+-]?\d+$")


def test_quantities_and_money_are_plain_decimals_over_a_whole_run(world: World) -> None:
    symbol = world.acting()[0][0]
    price = price_of(world, symbol)
    assert price == price.quantize(Decimal("0.01"))
    allocation = str(int(price * 100))  # an exact division: 100 shares, "1E+2" by str()
    slow_fills(world, partial="0.5", then="fill")
    world.limits(max_position_usd="99999")
    sid = world.strategy(symbols=[symbol], mode="paper", allocation_usd=allocation)
    world.pulse()
    world.advance(600)
    world.pulse(f"{DAY}T10:01")
    world.advance(600)
    world.pulse(f"{DAY}T10:02")
    trade_id = f"{sid}-{symbol}-{DAY}"
    held = trade(world, trade_id)
    assert (held["state"], held["quantity"], held["ordered_qty"]) == ("open", "100", "100")
    assert world.docs("orders")[f"{trade_id}-open"]["qty"] == "100"
    assert world.docs("signals")[trade_id]["quantity"] == "100"
    strings: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, str):
            strings.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    for doc in world.db.collection_group("shadowTradeHistory").stream():
        collect(doc.to_dict())
    for name in ("orders", "signals", "stats", "equity", "alpacaAccounts"):
        for doc in paths.user(world.db, world.uid).collection(name).stream():
            collect(doc.to_dict())
    assert strings and not [s for s in strings if EXPONENT.match(s)], json.dumps(strings)
    assert_books_agree(world)


# -- 8: no order leaves on an old decision --------------------------------------------------------


def test_an_entry_not_sent_in_its_session_is_cancelled_as_stale(world: World) -> None:
    symbol = world.acting()[0][0]
    sid = world.strategy(symbols=[symbol], mode="paper")
    world.fault(world.uid, {"kind": "http", "status": 500, "endpoints": ["submit_order"]})
    world.pulse(f"{DAY}T15:58")
    trade_id = f"{sid}-{symbol}-{DAY}"
    assert world.docs("orders")[f"{trade_id}-open"]["status"] == "pending"
    world.fault(world.uid, None)
    strategy_callables.set_strategy_status(  # no new decision tomorrow: only the old one
        world.services, auth(world.uid), {"id": sid, "status": "paused"}
    )
    sent = world.orders_at_alpaca()
    world.pulse(f"{DAY}T16:10")  # closed: nothing leaves
    assert world.orders_at_alpaca() == sent
    world.pulse("2026-11-24T09:31")  # the next session: the old decision is not sent
    order = world.docs("orders")[f"{trade_id}-open"]
    assert (order["status"], order["open"]) == ("canceled", False)
    assert "could not be sent during that trading session" in order["reason"]
    stale = trade(world, trade_id)
    assert (stale["state"], stale["quantity"]) == ("closed", "0")
    assert world.orders_at_alpaca() == sent
    assert_books_agree(world)
    ended = world.docs("notifications")[f"order-ended-{trade_id}-open"]
    assert ended["kind"] == "order_ended"
    assert "ended with nothing filled" in ended["message"]


def test_a_stale_entry_alpaca_has_after_a_lost_answer_is_followed(world: World) -> None:
    symbol = world.acting()[0][0]
    sid = world.strategy(symbols=[symbol], mode="paper")
    # the order reaches Alpaca, but its answer comes after the client gave up
    world.account(
        fault={"kind": "slow", "seconds": 2.5, "times": 1, "endpoints": ["submit_order"]},
        orders={"fill_delay_s": 0},
    )
    world.pulse(f"{DAY}T15:58")
    trade_id = f"{sid}-{symbol}-{DAY}"
    assert world.docs("orders")[f"{trade_id}-open"]["status"] == "pending"
    time.sleep(1)  # the stand-in places it once its slow answer is written
    world.pulse("2026-11-24T09:31")
    order = world.docs("orders")[f"{trade_id}-open"]
    assert (order["status"], order["open"]) == ("filled", False)
    assert trade(world, trade_id)["state"] == "open"
    assert assert_books_agree(world) != {}


# -- 9: long-only by default ----------------------------------------------------------------------


def test_a_sell_with_nothing_held_opens_nothing_unless_shorting_is_allowed(
    world: World,
) -> None:
    symbol = world.acting(sides=("SELL",))[0][0]
    long_only = world.strategy(symbols=[symbol], mode="paper")
    world.pulse()
    assert world.docs("shadowTradeHistory") == {}
    assert world.docs("strategies")[long_only]["last_decisions"] == {symbol: "SELL"}
    strategy_callables.delete_strategy(world.services, auth(world.uid), {"id": long_only})
    world.account(orders={"fill_delay_s": 0})
    short = world.strategy(symbols=[symbol], mode="paper", allow_short=True)
    world.pulse(f"{DAY}T10:01")
    opened = trade(world, f"{short}-{symbol}-{DAY}")
    assert (opened["side"], opened["state"]) == ("SELL", "open")
    assert assert_books_agree(world)[symbol] < 0


def test_shorting_is_refused_when_alpaca_says_the_account_cannot(world: World) -> None:
    world.account(orders={"shorting": False})
    callables.request_sync(world.services, auth(world.uid), {})
    assert world.doc("alpacaAccounts/snapshot")["shorting_enabled"] is False
    request = {"strategy": "momentum_20d", "symbols": ["AAPL"], "allocation_usd": "100"}
    error = error_of(
        strategy_callables.save_strategy,
        world.services,
        auth(world.uid),
        {**request, "mode": "paper", "allow_short": True},
    )
    assert error.code == Code.FAILED_PRECONDITION
    assert "cannot sell short" in error.message
    assert world.docs("strategies") == {}


# -- 10: an id Alpaca knows must be the same order ------------------------------------------------


def test_an_order_found_under_its_id_must_be_the_one_meant(world: World) -> None:
    symbol = world.acting()[0][0]
    sid = world.strategy(symbols=[symbol], mode="paper", start=False)
    order_id = f"{sid}-{symbol}-{DAY}-open"
    headers = {"APCA-API-KEY-ID": world.keys.key_id, "APCA-API-SECRET-KEY": "secret-key-1"}
    body = {
        "symbol": symbol,
        "qty": "1",
        "side": "sell",
        "type": "market",
        "time_in_force": "day",
        "client_order_id": order_id,
    }
    requests.post(f"{world.alpaca.url}/v2/orders", json=body, headers=headers, timeout=5)
    strategy_callables.set_strategy_status(
        world.services, auth(world.uid), {"id": sid, "status": "active"}
    )
    world.pulse()
    strategy = world.docs("strategies")[sid]
    assert (strategy["status"], strategy["last_error"]["code"]) == ("error", "ORDER_REJECTED")
    assert "different order under this order's id" in strategy["last_error"]["message"]
    assert trade(world, f"{sid}-{symbol}-{DAY}")["state"] == "closed"


# -- 11: the clock and shared prices use only switched-on credentials -----------------------------


def test_the_clock_is_read_only_with_the_keys_of_people_trading(world: World) -> None:
    off = world.open_account("aaa-off")  # listed first
    callables.set_trading_enabled(world.services, auth("aaa-off"), {"enabled": False})
    world.strategy(symbols=[world.acting()[0][0]])
    paths.pulse_state(world.db).delete()
    world.pulse()
    stats = requests.get(f"{world.alpaca.url}/_standin/stats", timeout=5).json()["by_key"]
    assert stats[off.key_id] == {"account": 1}  # when the keys were saved, never since
    assert stats[world.keys.key_id]["clock"] == 1


# -- 12: a sync a person asks for never acts on orders --------------------------------------------


def test_request_sync_never_sends_or_follows_an_order(world: World) -> None:
    symbol = world.acting()[0][0]
    sid = world.strategy(symbols=[symbol], mode="paper")
    world.fault(world.uid, {"kind": "http", "status": 500, "endpoints": ["submit_order"]})
    world.pulse()
    world.fault(world.uid, None)
    sent = world.orders_at_alpaca()
    callables.request_sync(world.services, auth(world.uid), {})
    assert world.orders_at_alpaca() == sent
    assert world.docs("orders")[f"{sid}-{symbol}-{DAY}-open"]["status"] == "pending"
    assert "lease" not in (paths.pulse_state(world.db).get().to_dict() or {})


# -- 13: shadow strategies' limits watch the shadow book ------------------------------------------


def test_shadow_losses_trip_the_limits_on_the_shadow_book(world: World) -> None:
    symbol = world.holding()
    sid = world.strategy(symbols=[symbol])
    price = price_of(world, symbol)
    trade_id = seed_position(world, sid, symbol, "BUY", str(price))
    world.limits(max_daily_loss_usd="10")
    world.pulse()  # the day's first run: the shadow book's start
    assert world.doc("status/trading")["enabled"] is True
    paths.shadow_trades(world.db, world.uid).document(trade_id).update(
        {"entry_price": str(price + 10)}  # a shadow loss of $30 today
    )
    paths.user(world.db, world.uid).update({"trades_version": 1000})
    world.pulse(f"{DAY}T10:01")
    switch = world.doc("status/trading")
    assert (switch["enabled"], switch["tripped_by"]) == (False, "max_daily_loss_usd")
    assert "shadow trades lost" in switch["reason"]
    assert world.doc("alpacaAccounts/snapshot")["equity"] == "100000.00"  # Alpaca lost nothing


# -- reconciliation -------------------------------------------------------------------------------


def test_a_difference_with_alpaca_is_recorded_and_blocks_entries_in_that_symbol(
    world: World,
) -> None:
    held = world.holding()
    bought = world.acting()[0][0]
    sid = world.strategy(symbols=[held, bought], mode="paper")
    seed_position(world, sid, held, "BUY", str(price_of(world, held)), mode="paper")
    world.account(holdings={held: 3, bought: 7}, orders={"fill_delay_s": 0})  # 7 by hand
    summary = world.pulse()
    assert summary.errors["POSITION_MISMATCH"] == 1
    record = world.doc("status/reconciliation")["mismatches"]
    assert list(record) == [bought]
    assert (record[bought]["broker_qty"], record[bought]["book_qty"]) == ("7", "0")
    since = record[bought]["since"]
    assert f"{sid}-{bought}-{DAY}" not in world.docs("shadowTradeHistory")  # blocked
    events = [e for e in world.docs("audit").values() if e["action"] == "position_mismatch"]
    assert [e["details"]["symbol"] for e in events] == [bought]
    world.pulse(f"{DAY}T10:01")  # still there: recorded once, since the first time
    assert world.doc("status/reconciliation")["mismatches"][bought]["since"] == since
    assert len([e for e in world.docs("audit").values() if e["action"] == "position_mismatch"]) == 1
    told = {k: v for k, v in world.docs("notifications").items() if k.startswith("mismatch-")}
    assert list(told) == [f"mismatch-{bought}-{DAY}"]  # once, however many runs see it
    assert told[f"mismatch-{bought}-{DAY}"]["message"] == (
        f"Your Alpaca account holds 7 {bought} but this site's trades hold 0: no new positions "
        f"are opened in {bought} until they agree again."
    )
    assert world.orders_at_alpaca() == 0  # never "repaired" by an order
    world.account(holdings={held: 3}, orders={"fill_delay_s": 0})  # the person sold them
    world.pulse(f"{DAY}T10:02")
    assert world.doc("status/reconciliation")["mismatches"] == {}
    assert world.doc("")["position_mismatches"] == 0
    assert trade(world, f"{sid}-{bought}-{DAY}")["state"] == "open"  # entries resume
    assert_books_agree(world)


def test_people_with_only_shadow_trades_cost_no_positions_request(world: World) -> None:
    world.strategy(symbols=[world.acting()[0][0]])
    world.pulse()
    world.pulse(f"{DAY}T10:01")
    stats = requests.get(f"{world.alpaca.url}/_standin/stats", timeout=5).json()["by_key"]
    assert "positions" not in stats[world.keys.key_id]
    assert not world.db.document(f"users/{world.uid}/status/reconciliation").get().exists
