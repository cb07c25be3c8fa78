"""Leaving a position: why it closes (take-profit, stop-loss, the strategy turning against it),
and the close itself: a shadow trade closes at once at the price; a paper trade moves to
`closing` with its closing order for the quantity held, in one commit with a precondition on
the trade as read (of racing exits one wins), and the order is sent while the market is open."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from firebase_functions import logger

from agenttrader.bot.lifecycle import Change, Event, State, move, next_close_id, state_of
from agenttrader.bot.orders import new_order, submit
from agenttrader.bot.person import Person
from agenttrader.bot.strategies import Decision
from agenttrader.core.money import decimal
from agenttrader.store.models import ShadowTrade, Writer


def exit_reason(trade: ShadowTrade, decision: Decision) -> str | None:
    """Whether the strategy's own decision leaves the open position (its signal turning
    against it), or None while it stays open (or is not open: an entry still filling, a close
    already working). Take-profit and stop-loss are the trade's own (`protection`)."""
    if state_of(trade.model_dump()) is not State.OPEN or trade.quantity <= 0:
        return None
    if decision.action == against(trade.side):
        return f"strategy exit: {decision.reason}"
    return None


def against(side: str) -> str:
    """The side that closes a position of `side`."""
    return "SELL" if side == "BUY" else "BUY"


def close_position(
    person: Person,
    trade_id: str,
    price: Decimal,
    reason: str,
    also: Callable[[Writer, dict[str, Any]], None] | None = None,
) -> dict[str, Any] | None:
    """Leave the open trade `trade_id`: a shadow trade is closed at `price`; a paper trade
    becomes `closing` with its closing order, which is sent now while the market is open
    (`person.may_send`) and otherwise by the pulse's first run once it opens. `also` adds to the
    same commit. Returns the trade as written, or None
    when it was not open (filling, closing, closed, or another run got there first)."""

    def with_order(writer: Writer, doc: dict[str, Any]) -> None:
        if also is not None:
            also(writer, doc)
        if doc.get("mode") == "paper":
            new_order(
                writer,
                person,
                next_close_id(trade_id, doc),
                str(doc["symbol"]),
                against(str(doc["side"])),
                decimal(doc["quantity"]),
                doc.get("strategy_id"),
                trade_id,
                opening=False,
            )

    change = Change(Event.EXIT, reason=reason, price=price, also=with_order)
    trade = move(person.db, person.uid, trade_id, change, person.now)
    if trade is None:
        return None
    person.changed = True
    logger.info("bot.exited", uid=person.uid, trade_id=trade_id, reason=reason)
    if trade.get("state") == State.CLOSING and person.may_send():
        order = {
            "symbol": trade["symbol"],
            "side": against(str(trade["side"])),
            "qty": trade["quantity"],
            "opening": False,
            "trade_id": trade_id,
        }
        submit(person, str(trade["close_order_id"]), order)
    return trade


def exit_position(
    person: Person, held: tuple[str, ShadowTrade], price: Decimal, reason: str
) -> None:
    """A strategy's exit (take-profit, stop-loss or its decision)."""
    close_position(person, person.db.document(held[0]).id, price, reason)
