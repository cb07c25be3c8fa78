"""Leaving a position: why it closes (take-profit, stop-loss, the strategy turning against it),
and the close itself: a shadow trade closes at once at the price; a paper trade moves to
`closing` with its closing order for the quantity held, in one commit with a precondition on
the trade as read (of racing exits one wins), and the order is sent while the market is open."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from firebase_functions import logger
from google.cloud import firestore

from agenttrader.bot.lifecycle import Change, Event, State, move, next_close_id, state_of
from agenttrader.bot.orders import new_order, submit
from agenttrader.bot.person import OtherAccount, Person, other_account_flag
from agenttrader.bot.resting import against, settle_before_exit
from agenttrader.bot.strategies import Decision
from agenttrader.core.errors import AgentTraderError, ErrorCode
from agenttrader.core.money import decimal, plain
from agenttrader.store import paths
from agenttrader.store.models import ShadowTrade, Writer, at_broker


def exit_reason(trade: ShadowTrade, decision: Decision) -> str | None:
    """Whether the strategy's own decision leaves the open position (its signal turning
    against it), or None while it stays open (or is not open: an entry still filling, a close
    already working). Take-profit and stop-loss are the trade's own (`protection`)."""
    if state_of(trade.model_dump()) is not State.OPEN or trade.quantity <= 0:
        return None
    if decision.action == against(trade.side):
        return f"strategy exit: {decision.reason}"
    return None


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
    same commit. Returns the trade as written, or None when it was not open (filling, closing,
    closed, or another run got there first).

    A paper trade's close goes only to the account that holds it: with keys that open another
    account nothing moves, the trade says so (`other_account`) and `OtherAccount` is raised.
    While its symbol differs from Alpaca's position (`person.broker_held`), the close is
    sized to what Alpaca holds on the trade's side, never past zero (nothing held there:
    `NothingHeld`, and nothing moves)."""
    ref = paths.shadow_trades(person.db, person.uid).document(trade_id)
    read = ref.get()
    before = read.to_dict() or {} if read.exists else {}
    paper = at_broker(before.get("mode"))  # paper or live: a closing order at Alpaca
    if paper and not person.opens(before):
        _flag_other_account(person, ref, before)
        raise person.other_account(before)
    if paper and before.get("resting"):  # its resting exit ends first, or it made the exit
        if not settle_before_exit(person, trade_id):
            return None
        before = ref.get().to_dict() or {}
    room = person.exit_room(str(before.get("symbol")), str(before.get("side"))) if paper else None
    sized: list[Decimal] = []

    def with_order(writer: Writer, doc: dict[str, Any]) -> None:
        if also is not None:
            also(writer, doc)
        if not at_broker(doc.get("mode")):
            return
        quantity = decimal(doc["quantity"]) if room is None else min(decimal(doc["quantity"]), room)
        sized[:] = [quantity]
        if quantity <= 0:
            raise NothingHeld(str(doc["symbol"]))
        new_order(
            writer,
            person,
            next_close_id(trade_id, doc),
            str(doc["symbol"]),
            against(str(doc["side"])),
            quantity,
            doc.get("strategy_id"),
            trade_id,
            opening=False,
            account=person.account_fields(),
        )

    # a trade from before trades recorded their account is in the one these keys open
    known = {} if not paper or before.get("account_number") else person.account_fields()
    change = Change(Event.EXIT, reason=reason, price=price, fields=known, also=with_order)
    trade = move(person.db, person.uid, trade_id, change, person.now)
    if trade is None:
        return None
    person.changed = True
    if sized and room is not None:
        person.exited(str(trade["symbol"]), sized[0])
    logger.info("bot.exited", uid=person.uid, trade_id=trade_id, reason=reason)
    if trade.get("state") == State.CLOSING and person.may_send():
        order = {
            "symbol": trade["symbol"],
            "side": against(str(trade["side"])),
            "qty": plain(sized[0]) if sized else trade["quantity"],
            "opening": False,
            "trade_id": trade_id,
            **person.account_fields(),
        }
        submit(person, str(trade["close_order_id"]), order)
    return trade


class NothingHeld(AgentTraderError):
    """Alpaca holds nothing on the trade's side of its symbol: no closing order is sent."""

    def __init__(self, symbol: str) -> None:
        super().__init__(
            ErrorCode.POSITION_MISMATCH,
            f"Alpaca holds no {symbol} on this position's side, so no closing order was sent: "
            "use Alpaca's quantity to set the book to what Alpaca holds",
        )


def _flag_other_account(
    person: Person, ref: firestore.DocumentReference, doc: dict[str, Any]
) -> None:
    """Say on the trade (once for these keys) that the keys open another account."""
    flag = doc.get("other_account") or {}
    if flag.get("keys_open") == person.account_number:
        return
    held_in = str(doc.get("account_number") or "")
    ref.update({"other_account": other_account_flag(held_in, person.account_number, person.now)})
    logger.warn("bot.other_account", uid=person.uid, trade_id=ref.id)


def exit_position(
    person: Person, held: tuple[str, ShadowTrade], price: Decimal, reason: str
) -> None:
    """A strategy's exit (its decision turning against the position). A position held in
    another account stays as it is, and says so."""
    try:
        close_position(person, person.db.document(held[0]).id, price, reason)
    except (OtherAccount, NothingHeld) as why:
        logger.warn("bot.exit_not_sent", uid=person.uid, trade=held[0], code=str(why.code))
