"""Live trading, against the emulators and the stand-in's live accounts (a key id not starting
with PK opens one): a live strategy is saved and started only behind the operator's switch, the
person's consent for the account their keys open, their own limits and a stop-loss; its entries
pass that gate again before every send, go out whole shares of a share of the allocation in the
first days, never as a fourth day trade of a small account, and rest their exits at Alpaca as
paper ones do. Exits of what is held are never held back."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
import requests
from bot_world import World, price_of, trade
from calling import Code, auth, data_of, error_of

from agenttrader.api import (
    callables,
    keys_callables,
    live_callables,
    position_callables,
    strategy_callables,
)
from agenttrader.api.guard import Services
from agenttrader.bot import live
from agenttrader.broker.keystore import AlpacaKeys
from agenttrader.store import paths
from localdev.alpaca_standin import AlpacaServer

LIVE_KEY = "AKTRADER0001"
OTHER_LIVE_KEY = "AKTRADER0002"
SECRET = "live-secret-1"
DAY = "2026-11-23"


@pytest.fixture
def world(services: Services, alpaca: AlpacaServer) -> World:
    """A person on a deployment that offers live trading (all of the allocation from the
    first day unless a test says otherwise), with paper keys and trading on."""
    offered = replace(services.platform, live_trading=True, live_first_days_percent=100)
    return World(replace(services, platform=offered), alpaca)


def with_platform(world: World, **changes: Any) -> None:
    """The operator's params changed (a deploy): the same world, the platform anew."""
    world.platform = replace(world.platform, **changes)
    world.services = replace(world.services, platform=world.platform)


def live_account(world: World, key_id: str = LIVE_KEY, cash: str = "100000", **extra: Any) -> str:
    """The person's live account at the stand-in (orders fill at once), its keys saved in
    place of the paper ones; returns its number."""
    body = {"key_id": key_id, "secret_key": SECRET, "cash": cash,
            "orders": {"fill_delay_s": 0}, **extra}  # fmt: skip
    requests.post(f"{world.alpaca.url}/_standin/accounts", json=body, timeout=5)
    keys_callables.save_alpaca_keys(
        world.services, auth(world.uid), {"key_id": key_id, "secret_key": SECRET, "paper": False}
    )
    world.keys = AlpacaKeys(key_id=key_id, secret_key=SECRET, paper=False)
    number = world.alpaca_account().account_number
    assert number.isdigit()  # a live account's number
    return number


def consent(world: World, number: str) -> None:
    live_callables.allow_live_trading(
        world.services, auth(world.uid), {"account_last4": number[-4:]}
    )


def live_strategy(world: World, start: bool = True, **fields: Any) -> str:
    world.limits()
    request = {"mode": "live", "stop_loss_pct": "5", "take_profit_pct": "10", **fields}
    return world.strategy(start=start, **request)


def sent_to(world: World, key_id: str = LIVE_KEY) -> int:
    """Orders the stand-in's account for `key_id` received (entries, closes and resting)."""
    stats = requests.get(f"{world.alpaca.url}/_standin/stats", timeout=5).json()
    by_key = stats["by_key"].get(key_id, {})
    return int(by_key.get("submit_order", 0))


def held_at_alpaca(world: World, key_id: str = LIVE_KEY) -> list[dict[str, Any]]:
    """The orders working in the live account, as Alpaca lists them (an OCO with its legs)."""
    answer = requests.get(
        f"{world.alpaca.url}/v2/orders",
        params={"status": "open", "nested": "true"},
        headers={"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": SECRET},
        timeout=5,
    )
    answer.raise_for_status()
    return list(answer.json())


def feed(world: World, kind: str) -> list[str]:
    return [d["message"] for d in world.docs("notifications").values() if d["kind"] == kind]


# -- the refusals ---------------------------------------------------------------------------------


def test_every_refusal_of_a_live_strategy_says_why_and_changes_nothing(
    world: World, services: Services
) -> None:
    who = auth(world.uid)
    request = {"strategy": "momentum_20d", "symbols": ["AAPL"], "allocation_usd": "1000",
               "mode": "live", "stop_loss_pct": "5"}  # fmt: skip
    off = replace(services, platform=replace(world.platform, live_trading=False))

    def refused(svc: Services, body: dict[str, Any]) -> tuple[Code, str, Any]:
        before = data_of(world.db)
        error = error_of(strategy_callables.save_strategy, svc, who, body)
        assert data_of(world.db) == before  # nothing changed
        return error.code, error.message, error.details

    assert refused(off, request)[:2] == (Code.FAILED_PRECONDITION, live.OFF)
    no_stop = {k: v for k, v in request.items() if k != "stop_loss_pct"}
    code, message, details = refused(world.services, no_stop)
    assert (code, details) == (Code.INVALID_ARGUMENT, {"field": "stop_loss_pct"})
    assert message.startswith("Stop loss %: a live strategy needs one")
    code, message, _ = refused(world.services, request)  # no limits of their own yet
    assert code == Code.FAILED_PRECONDITION
    assert "Max position (USD) and Max daily loss (USD)" in message
    world.limits()
    code, message, _ = refused(world.services, request)  # paper keys
    assert code == Code.FAILED_PRECONDITION
    assert message.startswith("your saved keys open a paper account: a live strategy needs")
    number = live_account(world)
    assert refused(world.services, request)[:2] == (Code.FAILED_PRECONDITION, live.NOT_ALLOWED)
    consent(world, number)
    live_account(world, OTHER_LIVE_KEY)  # keys for another live account
    code, message, _ = refused(world.services, request)
    assert code == Code.FAILED_PRECONDITION
    assert message.startswith(f"you allowed live trading for the account ending {number[-4:]}")

    live_account(world)  # the consented account again: saved, paused until started
    sid = strategy_callables.save_strategy(world.services, who, request)["id"]
    live_callables.stop_live_trading(world.services, who, {})
    started = error_of(
        strategy_callables.set_strategy_status, world.services, who, {"id": sid, "status": "active"}
    )
    assert (started.code, started.message) == (Code.FAILED_PRECONDITION, live.NOT_ALLOWED)
    assert world.doc(f"strategies/{sid}")["status"] == "paused"
    # and a paper strategy with these live keys is refused, as before
    paper = error_of(
        strategy_callables.save_strategy, world.services, who, {**request, "mode": "paper"}
    )
    assert paper.code == Code.FAILED_PRECONDITION and "paper mode trades only with paper keys" in (
        paper.message
    )


# -- the live path --------------------------------------------------------------------------------


def test_a_live_entry_goes_out_with_its_stop_resting_at_alpaca_and_is_told_everywhere(
    world: World,
) -> None:
    number = live_account(world)
    consent(world, number)
    [(symbol, _)] = world.acting()
    live_strategy(world, symbols=[symbol])
    world.pulse()

    [(trade_id, entered)] = list(world.docs("shadowTradeHistory").items())
    price = Decimal(entered["entry_price"])
    assert entered["mode"] == "live" and entered["paper"] is False
    assert entered["account_number"] == number and entered["state"] == "open"
    assert entered["filled_qty"] == str(int(Decimal(1000) / price_of(world, symbol)))
    assert entered["resting"]["order_id"] == f"{trade_id}-rest-1"  # in the same run
    [oco] = held_at_alpaca(world)
    assert oco["order_class"] == "oco" and oco["symbol"] == symbol
    assert Decimal(oco["legs"][0]["stop_price"]) < price < Decimal(oco["limit_price"])
    assert sent_to(world) == 2  # the entry and its resting exit, in the live account only
    assert sent_to(world, f"PK{world.uid.upper():0<10}") == 0
    [told] = feed(world, "entry_filled")
    assert told.startswith(f"Your live trade bought {entered['filled_qty']} {symbol} at $")


def test_the_gate_is_asked_again_before_an_entry_decided_earlier_is_sent(world: World) -> None:
    number = live_account(world)
    consent(world, number)
    [(symbol, _)] = world.acting()
    live_strategy(world, symbols=[symbol])
    # Alpaca answers the entry with 500s: it stays pending, to be sent by the next run
    fault = {"kind": "http", "status": 500, "endpoints": ["submit_order"], "times": 5}
    requests.post(
        f"{world.alpaca.url}/_standin/accounts",
        json={"key_id": LIVE_KEY, "secret_key": SECRET, "cash": "100000",
              "orders": {"fill_delay_s": 0}, "fault": fault},
        timeout=5,
    ).raise_for_status()  # fmt: skip
    world.pulse()
    [(order_id, order)] = list(world.docs("orders").items())
    assert order["status"] == "pending" and order["paper"] is False
    live_callables.stop_live_trading(world.services, auth(world.uid), {})
    sent = sent_to(world)
    world.pulse("2026-11-23T10:01")
    withdrawn = world.docs("orders")[order_id]
    assert withdrawn["status"] == "canceled" and not withdrawn["open"]
    assert withdrawn["reason"] == f"cancelled before it was sent: {live.NOT_ALLOWED}"
    assert sent_to(world) == sent  # nothing more reached the live account
    assert trade(world, order["trade_id"])["status"] == "CLOSED"


def test_a_kill_switch_trip_or_the_operators_switch_off_stops_entries_never_the_resting_stop(
    world: World,
) -> None:
    number = live_account(world)
    consent(world, number)
    first, second = world.acting(2)
    live_strategy(world, symbols=[first[0], second[0]])
    world.limits(max_trades_per_day=1)  # the second entry of the day trips the limit
    world.pulse()
    [trade_id] = list(world.docs("shadowTradeHistory"))
    assert world.doc("status/trading")["enabled"] is False  # tripped
    [oco] = held_at_alpaca(world)
    sent = sent_to(world)
    world.pulse("2026-11-23T10:01")
    assert held_at_alpaca(world) == [oco] and sent_to(world) == sent  # it rests, untouched

    # trading on again, room for more entries, and the operator's switch off (a deploy)
    with_platform(world, live_trading=False)
    callables.set_trading_enabled(world.services, auth(world.uid), {"enabled": True})
    world.limits()
    world.pulse("2026-11-23T10:02")
    assert list(world.docs("shadowTradeHistory")) == [trade_id]
    assert held_at_alpaca(world) == [oco] and sent_to(world) == sent
    [skipped] = feed(world, "entry_skipped")
    assert skipped == f"Your live strategy did not open a position in {second[0]}: {live.OFF}."


def test_a_small_account_with_three_day_trades_makes_no_live_entry(world: World) -> None:
    number = live_account(world, cash="20000", daytrade_count=3)
    consent(world, number)
    [(symbol, _)] = world.acting()
    live_strategy(world, symbols=[symbol])
    world.pulse()
    assert world.docs("shadowTradeHistory") == {} and sent_to(world) == 0
    [skipped] = feed(world, "entry_skipped")
    assert skipped.startswith(f"Your live strategy did not open a position in {symbol}: your ")
    assert "has made 3 day trades in the last five trading days" in skipped
    world.pulse("2026-11-23T10:01")  # told once a day
    assert len(feed(world, "entry_skipped")) == 1


def test_the_first_five_trading_days_use_a_share_of_the_allocation(world: World) -> None:
    with_platform(world, live_first_days_percent=25)
    number = live_account(world)
    consent(world, number)  # Monday 2026-11-23
    [(symbol, _)] = world.acting()
    live_strategy(world, symbols=[symbol])
    world.pulse()
    [monday] = world.docs("shadowTradeHistory").values()
    assert monday["ordered_qty"] == str(int(Decimal(250) / Decimal(monday["decision_price"])))
    # the 23rd, 24th, 25th, 27th (the 26th is Thanksgiving) and 30th: then all of it
    assert live.allocation_share(world.doc("settings/live"), "2026-11-30", 25) == Decimal("0.25")
    assert live.allocation_share(world.doc("settings/live"), "2026-12-01", 25) == 1


# -- closing --------------------------------------------------------------------------------------


def test_close_all_of_a_live_account_asks_for_its_last_four_again(world: World) -> None:
    number = live_account(world)
    consent(world, number)
    [(symbol, _)] = world.acting()
    live_strategy(world, symbols=[symbol])
    world.pulse()
    sent = sent_to(world)
    who = auth(world.uid)
    for typed in ({}, {"account_last4": "0000" if number[-4:] != "0000" else "1111"}):
        before = data_of(world.db)
        refused = error_of(position_callables.close_all_positions, world.services, who, typed)
        assert (refused.code, refused.details) == (
            Code.INVALID_ARGUMENT,
            {"field": "account_last4"},
        )
        assert f"your live account ending {number[-4:]}" in refused.message
        assert data_of(world.db) == before and sent_to(world) == sent
    closed = position_callables.close_all_positions(
        world.services, who, {"account_last4": number[-4:]}
    )
    assert closed["left"] == [] and len(closed["closed"]) == 1
    assert sent_to(world) == sent + 1  # one closing order, after its resting exit ended
    world.pulse("2026-11-23T10:01")  # follows its fill
    [closed_trade] = world.docs("shadowTradeHistory").values()
    assert closed_trade["status"] == "CLOSED" and held_at_alpaca(world) == []
    # the live figure is kept apart: the statistics say what live trades realized
    summary = world.doc("stats/summary")
    assert Decimal(summary["live_realized"]) == Decimal(closed_trade["realized_pnl"]).quantize(
        Decimal("0.01")
    )
    assert Decimal(summary["shadow_realized"]) == 0


# -- no live order without all three --------------------------------------------------------------


@pytest.mark.parametrize(
    "missing", ["the param", "the consent", "a revoked consent", "the account"]
)
def test_no_code_path_sends_a_live_entry_without_the_param_the_consent_and_the_account(
    world: World, missing: str
) -> None:
    number = live_account(world)
    consent(world, number)
    [(symbol, _)] = world.acting()
    sid = live_strategy(world, symbols=[symbol])
    if missing == "the param":
        with_platform(world, live_trading=False)
    elif missing == "the consent":
        paths.live_settings(world.db, world.uid).delete()
    elif missing == "a revoked consent":
        live_callables.stop_live_trading(world.services, auth(world.uid), {})
    else:  # keys for another live account, without its own consent
        live_account(world, OTHER_LIVE_KEY)
    world.pulse()
    who = auth(world.uid)
    position_callables.close_all_positions(world.services, who, {})
    world.pulse("2026-11-23T10:01")
    assert sent_to(world) == 0 and sent_to(world, OTHER_LIVE_KEY) == 0
    assert world.docs("orders") == {} and world.docs("shadowTradeHistory") == {}
    assert world.doc(f"strategies/{sid}")["status"] == "active"  # held back, not failed
    assert len(feed(world, "entry_skipped")) == 1
