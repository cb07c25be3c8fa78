"""Stops rest at Alpaca: a filled paper position's take-profit and stop-loss are orders at the
broker (an OCO), placed once, followed leg by leg, and cancelled before any other exit. Driven
through the pulse and the callables, against the emulators and the Alpaca stand-in (whose
resting orders fire along its price path between two runs)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests
from bot_world import NEW_YORK, World, price_of, seed_open_trade, trade
from calling import Code, auth, error_of

from agenttrader.api import keys_callables, position_callables, strategy_callables
from agenttrader.store import paths
from localdev.alpaca_standin import price_at

DAY = "2026-11-23"
CENT = Decimal("0.01")


def epoch(local: str) -> float:
    return datetime.fromisoformat(local).replace(tzinfo=NEW_YORK).timestamp()


def position(
    world: World,
    trade_id: str,
    symbol: str,
    entry: Decimal,
    *,
    stop: Decimal | None,
    take: Decimal | None,
    qty: str = "10",
    sid: str | None = None,
    orders: dict[str, Any] | None = None,
) -> None:
    """A filled paper position of `qty` at `entry`, held at Alpaca too, with its levels."""
    world.account(holdings={symbol: int(qty)}, orders={"fill_delay_s": 0, **(orders or {})})
    doc: dict[str, Any] = {
        "symbol": symbol, "side": "BUY", "quantity": qty, "filled_qty": qty,
        "entry_price": str(entry), "status": "OPEN", "state": "open", "mode": "paper",
        "strategy_id": sid, "entry_day": DAY, "created_at": datetime(2026, 11, 23, tzinfo=UTC),
        "take_profit_pct": None if take is None else str((take / entry - 1) * 100),
        "stop_loss_pct": None if stop is None else str((1 - stop / entry) * 100),
        "take_profit_price": None if take is None else str(take),
        "stop_loss_price": None if stop is None else str(stop),
        "fills": {f"{trade_id}-open": {"role": "entry", "qty": qty, "price": str(entry)}},
        "account_number": account_number(world), "paper": True,
    }  # fmt: skip
    seed_open_trade(world, trade_id, doc)


def rested(world: World, trade_id: str, symbol: str, stop: str, status: str) -> None:
    """The trade's stop written as the product writes a resting exit (`{trade}-rest-1`, with
    `status`), on its order and on the trade, as a run that then died left it."""
    order = {
        "kind": "resting", "symbol": symbol, "side": "SELL", "qty": "10",
        "take_profit_price": None, "stop_loss_price": stop, "status": status, "open": True,
        "trade_id": trade_id, "opening": False, "day": DAY, "paper": True,
        "account_number": account_number(world),
        "created_at": datetime(2026, 11, 23, 15, tzinfo=UTC),
    }  # fmt: skip
    world.db.document(f"users/{world.uid}/orders/{trade_id}-rest-1").set(order)
    resting = {
        "order_id": f"{trade_id}-rest-1",
        "qty": "10",
        "take_profit": None,
        "stop_loss": stop,
    }
    paths.shadow_trades(world.db, world.uid).document(trade_id).update(
        {"resting": resting, "resting_generation": 1}
    )
    paths.user(world.db, world.uid).set({"orders_pending": 1}, merge=True)


def account_number(world: World) -> str:
    return world.alpaca_account().account_number


def alpaca_orders(world: World, status: str = "all") -> list[dict[str, Any]]:
    answer = requests.get(
        f"{world.alpaca.url}/v2/orders",
        params={"status": status},
        headers={"APCA-API-KEY-ID": world.keys.key_id, "APCA-API-SECRET-KEY": "secret-key-1"},
        timeout=5,
    )
    return list(answer.json())


def first_minute_at_or_under(symbol: str, level: Decimal, after: str, until: str) -> float:
    start, end = int(epoch(after)), int(epoch(until))
    return next(t for t in range(start, end, 60) if price_at(symbol, t) <= level)


def test_a_filled_position_gets_one_oco_at_its_levels_in_cents(world: World) -> None:
    symbol = world.holding()
    price = price_of(world, symbol)
    stop, take = price * Decimal("0.9"), price * Decimal("1.2")
    position(world, "t-oco", symbol, price, stop=stop, take=take)
    world.pulse(f"{DAY}T10:01")
    held = trade(world, "t-oco")
    resting = held["resting"]
    assert resting["order_id"] == "t-oco-rest-1"
    assert (resting["stop_loss"], resting["take_profit"], resting["qty"]) == (
        str(stop.quantize(CENT)),
        str(take.quantize(CENT)),
        "10",
    )
    [oco] = alpaca_orders(world, "open")
    assert (oco["order_class"], oco["time_in_force"], oco["client_order_id"]) == (
        "oco",
        "gtc",
        "t-oco-rest-1",
    )
    assert Decimal(oco["limit_price"]) == take.quantize(CENT)
    assert Decimal(oco["legs"][0]["stop_price"]) == stop.quantize(CENT)
    order_ref = world.db.document(f"users/{world.uid}/orders/t-oco-rest-1")
    written = order_ref.get().update_time
    asked = world.alpaca.market.stats()["by_key"][world.keys.key_id]
    for minute in ("02", "03", "04"):  # later runs place nothing more
        world.pulse(f"{DAY}T10:{minute}")
    assert world.orders_at_alpaca() == 1
    assert len(alpaca_orders(world)) == 1
    # following it costs one list request a run, and no write while nothing changes
    after = world.alpaca.market.stats()["by_key"][world.keys.key_id]
    assert after.get("orders", 0) - asked.get("orders", 0) == 3 + 1  # + this test's own list
    assert after.get("order_by_client_id", 0) == asked.get("order_by_client_id", 0)
    assert order_ref.get().update_time == written


def test_the_stop_fires_at_alpaca_between_runs_while_the_product_is_down(world: World) -> None:
    symbol = world.holding()
    entry = price_at(symbol, epoch(f"{DAY}T10:01"))
    later = min(
        price_at(symbol, t)
        for t in range(int(epoch(f"{DAY}T10:05")), int(epoch(f"{DAY}T15:50")), 60)
    )
    stop = ((entry + later) / 2).quantize(CENT)  # not crossed when placed; crossed later
    assert later < stop < entry
    position(world, "t-stop", symbol, entry, stop=stop, take=None)
    world.pulse(f"{DAY}T10:01")
    assert trade(world, "t-stop")["resting"]["stop_loss"] == str(stop)
    fired = first_minute_at_or_under(symbol, stop, f"{DAY}T10:02", f"{DAY}T15:59")
    # no run for hours (a deploy, an outage): the stand-in's clock moves on alone
    world.pulse(f"{DAY}T15:58")
    closed = trade(world, "t-stop")
    assert closed["state"] == "closed"
    exit_price = price_at(symbol, fired)
    assert Decimal(closed["exit_price"]) == exit_price <= stop  # at its stop or worse
    assert Decimal(closed["realized_pnl"]) == (exit_price - entry) * 10
    assert closed["close_reason"].startswith("stop-loss: its exit resting at Alpaca filled")
    assert world.positions() == {}
    assert world.orders_at_alpaca() == 1  # the stop alone: no market order after it
    told = [n for n in world.docs("notifications").values() if n["kind"] == "exit_filled"]
    assert len(told) == 1 and symbol in told[0]["message"]


def test_a_close_while_the_oco_rests_sends_one_closing_order_after_the_legs_ended(
    world: World,
) -> None:
    symbol = world.holding()
    price = price_of(world, symbol)
    position(world, "t-close", symbol, price, stop=price / 2, take=price * 2)
    world.pulse(f"{DAY}T10:01")
    assert trade(world, "t-close")["resting"]["order_id"] == "t-close-rest-1"
    world.set(f"{DAY}T10:02")
    answer = position_callables.close_shadow_trade(
        world.services, auth(world.uid), {"trade_id": "t-close"}
    )
    assert answer["state"] in ("closing", "closed")
    world.pulse(f"{DAY}T10:03")
    closed = trade(world, "t-close")
    assert closed["state"] == "closed" and closed["close_reason"] == "closed by you"
    orders = {o["client_order_id"]: o for o in alpaca_orders(world)}
    assert orders["t-close-rest-1"]["status"] == "canceled"
    assert orders["t-close-rest-1"]["legs"][0]["status"] == "canceled"
    assert orders["t-close-close"]["status"] == "filled"
    assert world.orders_at_alpaca() == 2  # the OCO, then exactly one close
    assert world.positions() == {}
    assert world.docs("orders")["t-close-rest-1"]["open"] is False


def test_a_lost_answer_when_placing_the_oco_places_it_once(world: World) -> None:
    """The run wrote the resting exit `pending` and sent it; Alpaca took it but the answer was
    lost (the run died). The next run sends it again under the same id: still one OCO."""
    symbol = world.holding()
    price = price_of(world, symbol)
    position(world, "t-lost", symbol, price, stop=price / 2, take=None)
    stop = str((price / 2).quantize(CENT))
    rested(world, "t-lost", symbol, stop, "pending")
    requests.post(  # what Alpaca took before the answer was lost
        f"{world.alpaca.url}/v2/orders",
        json={"symbol": symbol, "qty": "10", "side": "sell", "type": "stop",
              "stop_price": stop, "time_in_force": "gtc", "client_order_id": "t-lost-rest-1"},
        headers={"APCA-API-KEY-ID": world.keys.key_id, "APCA-API-SECRET-KEY": "secret-key-1"},
        timeout=5,
    ).raise_for_status()  # fmt: skip
    world.pulse(f"{DAY}T10:01")
    world.pulse(f"{DAY}T10:02")
    assert len(alpaca_orders(world)) == 1
    assert world.docs("orders")["t-lost-rest-1"]["status"] == "new"
    assert trade(world, "t-lost")["resting"]["order_id"] == "t-lost-rest-1"


def test_new_levels_replace_the_resting_exit_and_one_cancelled_outside_is_placed_again(
    world: World,
) -> None:
    symbol = world.holding()
    price = price_of(world, symbol)
    sid = world.strategy(symbols=[symbol], mode="paper", stop_loss_pct="50", start=False)
    position(world, "t-move", symbol, price, stop=price / 2, take=None, sid=sid)
    world.pulse(f"{DAY}T10:01")
    strategy_callables.save_strategy(
        world.services,
        auth(world.uid),
        {"id": sid, "strategy": "momentum_20d", "symbols": [symbol], "allocation_usd": "1000",
         "mode": "paper", "stop_loss_pct": "40", "apply_to_open_trades": True},
    )  # fmt: skip
    world.pulse(f"{DAY}T10:02")
    moved = trade(world, "t-move")["resting"]
    assert moved["order_id"] == "t-move-rest-2"
    assert moved["stop_loss"] == str((price * Decimal("0.6")).quantize(CENT))
    states = {o["client_order_id"]: o["status"] for o in alpaca_orders(world)}
    assert states == {"t-move-rest-1": "canceled", "t-move-rest-2": "new"}

    working = next(o for o in alpaca_orders(world, "open"))
    requests.delete(  # the person cancels it in Alpaca's dashboard
        f"{world.alpaca.url}/v2/orders/{working['id']}",
        headers={"APCA-API-KEY-ID": world.keys.key_id, "APCA-API-SECRET-KEY": "secret-key-1"},
        timeout=5,
    ).raise_for_status()
    world.pulse(f"{DAY}T10:03")
    assert trade(world, "t-move")["resting"]["order_id"] == "t-move-rest-3"
    assert [o["client_order_id"] for o in alpaca_orders(world, "open")] == ["t-move-rest-3"]


@pytest.mark.parametrize("cancel", [True, False])
def test_removing_keys_asks_first_what_becomes_of_the_resting_exits(
    world: World, cancel: bool
) -> None:
    symbol = world.holding()
    price = price_of(world, symbol)
    position(world, "t-keys", symbol, price, stop=price / 2, take=None)
    world.pulse(f"{DAY}T10:01")
    who = auth(world.uid)
    asked = error_of(keys_callables.remove_alpaca_keys, world.services, who, {})
    assert asked.code == Code.FAILED_PRECONDITION
    assert asked.details == {"reason": "RESTING_EXITS", "symbols": [symbol]}
    assert f"1 of your exits rest at Alpaca ({symbol})" in asked.message
    answer = keys_callables.remove_alpaca_keys(world.services, who, {"cancel_resting": cancel})
    assert answer["removed"] is True
    [order] = alpaca_orders(world)
    if cancel:
        assert answer["resting_cancelled"] == [symbol] and order["status"] == "canceled"
        assert "cancelled by you" in trade(world, "t-keys")["resting_problem"]
    else:
        assert answer["resting_left_working"] == [symbol] and order["status"] == "new"


def test_deleting_the_account_asks_too_and_cancels_when_told(world: World) -> None:
    symbol = world.holding()
    price = price_of(world, symbol)
    position(world, "t-gone", symbol, price, stop=price / 2, take=None)
    world.pulse(f"{DAY}T10:01")
    who = auth(world.uid)
    asked = error_of(keys_callables.delete_my_account, world.services, who, {"confirm": True})
    assert asked.details == {"reason": "RESTING_EXITS", "symbols": [symbol]}
    assert world.doc("")  # nothing was deleted
    answer = keys_callables.delete_my_account(
        world.services, who, {"confirm": True, "cancel_resting": True}
    )
    assert answer["deleted"] is True and answer["resting_cancelled"] == [symbol]
    assert [o["status"] for o in alpaca_orders(world)] == ["canceled"]


def test_a_resting_exit_missing_at_alpaca_is_placed_again(world: World) -> None:
    symbol = world.holding()
    price = price_of(world, symbol)
    position(world, "t-miss", symbol, price, stop=price / 2, take=None)
    stop = str((price / 2).quantize(CENT))
    rested(world, "t-miss", symbol, stop, "new")  # Alpaca never saw it
    world.pulse(f"{DAY}T10:01")
    assert world.docs("orders")["t-miss-rest-1"]["reason"] == "missing at Alpaca"
    assert trade(world, "t-miss")["resting"]["order_id"] == "t-miss-rest-2"
    assert [o["client_order_id"] for o in alpaca_orders(world, "open")] == ["t-miss-rest-2"]


def test_a_leg_filled_in_part_then_ended_leaves_the_rest_held_and_closed_again(
    world: World,
) -> None:
    """Alpaca fills 5 of the stop's 10, then the rest of the order ends: the trade holds 5
    again, the next close sells exactly those 5, and the P&L counts both fills."""
    symbol = world.holding()
    entry = price_at(symbol, epoch(f"{DAY}T10:01"))
    minutes = range(int(epoch(f"{DAY}T10:05")), int(epoch(f"{DAY}T15:50")), 60)
    stop = ((entry + min(price_at(symbol, t) for t in minutes)) / 2).quantize(CENT)
    plan = {"rest_partial": "0.5", "then": "cancel"}
    position(world, "t-part", symbol, entry, stop=stop, take=None, orders=plan)
    world.pulse(f"{DAY}T10:01")
    world.pulse(f"{DAY}T15:58")  # the stop fired in part; the rest of it ended
    closed = trade(world, "t-part")
    assert closed["state"] == "closed"
    fills = closed["fills"]
    assert (fills["t-part-rest-1"]["qty"], fills["t-part-close"]["qty"]) == ("5", "5")
    exits = (
        Decimal(fills["t-part-rest-1"]["price"]) * 5 + Decimal(fills["t-part-close"]["price"]) * 5
    )
    assert Decimal(closed["realized_pnl"]) == (exits - entry * 10).quantize(CENT)
    assert world.positions() == {}
    assert world.orders_at_alpaca() == 2  # the stop, then one close of what was still held
