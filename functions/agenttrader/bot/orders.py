"""Orders at Alpaca (paper and live): written `pending` with the decision that makes them, sent
to Alpaca under their document id as `client_order_id` (Alpaca answers an id it has seen with
that order, never a second one), and followed until Alpaca says they are done. Each answer
moves the order's trade through its lifecycle (`lifecycle`): the trade is changed first, the
order closed after, so a crash in between is finished by the next run without changing the
trade twice. A live entry passes the live gate (`bot.live`) again just before it is sent.

Orders leave only from the pulse while the market is open; an entry still `pending` after its
trading session is cancelled as stale (unless Alpaca has it: then it is followed like any
other), never sent on an old decision at the next open."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from firebase_functions import logger
from google.cloud import firestore

from agenttrader.bot.lifecycle import ORDER_ENDED_UNFILLED, Change, Event, Fill, move
from agenttrader.bot.person import Person, StrategyFailure, trading_day
from agenttrader.broker.answers import OrderState
from agenttrader.broker.refusals import BrokerError
from agenttrader.core.errors import ErrorCode
from agenttrader.core.money import decimal, plain
from agenttrader.store import paths, queries
from agenttrader.store.models import Writer
from agenttrader.store.optimistic import LOST_RACE, unchanged_since


def new_order(
    writer: Writer,
    person: Person,
    order_id: str,
    symbol: str,
    side: str,
    quantity: Decimal,
    sid: str | None,
    trade_id: str,
    opening: bool,
    account: dict[str, Any],
) -> None:
    """The order, before it is sent (`pending`): written with the decision and the account
    it is for, so a crash between the two leaves an order the next run sends under the same
    client_order_id, to that account only."""
    db = person.db
    writer.create(
        paths.orders(db, person.uid).document(order_id),
        {
            **account,
            "symbol": symbol,
            "side": side,
            "qty": plain(quantity),
            "status": "pending",
            "open": True,
            "strategy_id": sid,
            "trade_id": trade_id,
            "opening": opening,
            "day": person.day or trading_day(person.now),
            "created_at": person.now,
        },
    )
    writer.set(paths.user(db, person.uid), {"orders_pending": firestore.Increment(1)}, merge=True)


def withdraw_unsent(
    writer: Writer,
    db: firestore.Client,
    uid: str,
    ref: firestore.DocumentReference,
    reason: str,
) -> None:
    """End an order that was never sent (in `writer`'s commit), with the reason."""
    writer.update(ref, {"status": "canceled", "open": False, "reason": reason})
    writer.set(paths.user(db, uid), {"orders_pending": firestore.Increment(-1)}, merge=True)


def submit(person: Person, order_id: str, order: dict[str, Any]) -> None:
    """Send the order (Alpaca answers a client_order_id it has seen with that order). A
    refusal ends the order and moves its trade (an entry: no position; a close: held again,
    tried again next run); an entry's refusal is also its strategy's failure. Nothing leaves
    when the session's close is less than a minute away: the order stays `pending` (a close
    is sent at the next open, an entry is decided again)."""
    if not person.may_send():
        logger.info("bot.order_held_for_open", uid=person.uid, order_id=order_id)
        return
    if not person.opens(order):
        logger.warn("bot.order_for_other_account", uid=person.uid, order_id=order_id)
        return  # stays pending: sent only with keys that open its account
    symbol, side, qty = str(order["symbol"]), str(order["side"]), decimal(order["qty"])
    opening = bool(order.get("opening"))
    if opening and not person.keys.paper:  # these keys open a live account: the gate again
        why = person.live_refusal(order)
        if why is not None:
            reason = f"cancelled before it was sent: {why}"
            _ended(person, order_id, order, "canceled", reason, Decimal(0), None)
            logger.warn("bot.live_entry_withdrawn", uid=person.uid, order_id=order_id)
            return
    try:
        state = person.broker.submit_order(symbol, side, qty, order_id)
    except BrokerError as error:
        if error.code != ErrorCode.ORDER_REJECTED:
            raise  # stays pending: the next run sends it again under the same id
        _ended(person, order_id, order, "rejected", error.message, Decimal(0), None)
        if opening:
            raise StrategyFailure(ErrorCode.ORDER_REJECTED, error.message) from None
        return
    record(person, order_id, order, state, submitted=True)


Unsent = list[tuple[str, dict[str, Any]]]
"""Entries decided but never confirmed sent (order id, order): sent only after the run has
checked again that entries are allowed (`send_entries`)."""


def follow_orders(person: Person) -> tuple[set[str], Unsent]:
    """Every paper order Alpaca may still change: send the closes never confirmed sent (while
    the market is open), ask about the others, record what they became. Returns the symbols
    that had an order working, and the entries never confirmed sent, for `send_entries`."""
    working = set()
    unsent: Unsent = []
    for doc in queries.open_orders(person.db, person.uid).stream():
        order = doc.to_dict() or {}
        if order.get("kind") == "resting":
            continue  # an exit resting at Alpaca (bot.resting): its shares are still held
        working.add(str(order.get("symbol")))
        if order.get("status") == "pending" and order.get("opening"):
            unsent.append((doc.id, order))
            continue
        try:
            follow(person, doc.id, order)
        except (BrokerError, StrategyFailure) as error:
            logger.warn("bot.order_not_followed", uid=person.uid, order_id=doc.id, code=error.code)
    return working, unsent


def follow(person: Person, order_id: str, order: dict[str, Any]) -> None:
    if not person.opens(order):
        return  # its account is not the one these keys open: asked about once they do
    if order.get("status") != "pending":
        record(person, order_id, order, person.broker.order(order_id))
        return
    if not person.may_send():
        return  # no order leaves while the market is closed, or in its last minute
    submit(person, order_id, order)


def send_entries(person: Person, unsent: Unsent, refusal: Callable[[dict[str, Any]], str]) -> None:
    """Send the entries never confirmed sent, each checked again first: one decided on an
    earlier day is stale, and one `refusal` says is no longer allowed (a switch, a limit, a
    difference, its strategy stopped) is cancelled with that reason; neither is ever sent. An
    entry Alpaca already has (its answer was lost) is followed instead."""
    for order_id, order in unsent:
        if not person.may_send():
            return
        try:
            if _day_of(order) != person.day:
                _stale(person, order_id, order)
                continue
            why = refusal(order)
            if why:
                _withdraw(person, order_id, order, f"cancelled before it was sent: {why}")
                continue
            submit(person, order_id, order)
        except (BrokerError, StrategyFailure) as error:
            logger.warn(
                "bot.order_not_followed", uid=person.uid, order_id=order_id, code=error.code
            )


def _day_of(order: dict[str, Any]) -> str:
    day = order.get("day")
    if isinstance(day, str):
        return day
    created = order.get("created_at")
    return trading_day(created) if isinstance(created, datetime) else ""


def _stale(person: Person, order_id: str, order: dict[str, Any]) -> None:
    """An entry never confirmed sent during its session is cancelled, never sent."""
    reason = (
        f"cancelled: the entry decided on {_day_of(order)} could not be sent during that "
        "trading session, and is not sent on an old decision"
    )
    _withdraw(person, order_id, order, reason)


def _withdraw(person: Person, order_id: str, order: dict[str, Any], reason: str) -> None:
    """An entry never confirmed sent: if Alpaca has it (the answer was lost), follow it;
    otherwise cancel it here, with the reason, never sending it."""
    found = person.broker.find_order(order_id)
    if found is not None:
        record(person, order_id, order, found, submitted=True)
        return
    _ended(person, order_id, order, "canceled", reason, Decimal(0), None)
    logger.warn("bot.order_withdrawn", uid=person.uid, order_id=order_id, reason=reason)


def record(
    person: Person,
    order_id: str,
    order: dict[str, Any],
    state: OrderState,
    submitted: bool = False,
) -> None:
    """Record what Alpaca says of an order (`submitted`: it has just been sent) and move its
    trade: fills as they come, then the end."""
    fields: dict[str, Any] = {"status": state.status, "alpaca_order_id": state.id}
    if submitted:
        fields["submitted_at"] = person.now
    if state.filled_avg_price is not None:
        fields["filled_avg_price"] = plain(state.filled_avg_price)
    fields["filled_qty"] = plain(state.filled_qty)
    if state.filled_at is not None:
        fields["filled_at"] = state.filled_at
    if not state.final:
        if state.filled_qty > 0:
            event = Event.ENTRY_FILLING if order.get("opening") else Event.EXIT_FILLING
            _move(person, order_id, order, Change(event, fill=_fill(order_id, order, state)))
        paths.orders(person.db, person.uid).document(order_id).set(fields, merge=True)
        return
    if state.status == "filled":
        event = Event.ENTRY_FILLED if order.get("opening") else Event.EXIT_FILLED
        _move(person, order_id, order, Change(event, fill=_fill(order_id, order, state)))
        finish(person, order_id, fields)
        return
    reason = f"order {state.status} by Alpaca"
    if state.status not in ORDER_ENDED_UNFILLED:
        logger.warn("bot.order_status_unknown", uid=person.uid, status=state.status)
    _ended(person, order_id, order, state.status, reason, state.filled_qty, state, fields)


def _fill(order_id: str, order: dict[str, Any], state: OrderState) -> tuple[str, Fill]:
    role = "entry" if order.get("opening") else "exit"
    return order_id, Fill(role, state.filled_qty, state.filled_avg_price)


def _ended(
    person: Person,
    order_id: str,
    order: dict[str, Any],
    status: str,
    reason: str,
    filled: Decimal,
    state: OrderState | None,
    fields: dict[str, Any] | None = None,
) -> None:
    """An order that ended without filling completely: its trade moves (an entry holds what
    filled, or nothing; a close leaves the position held, to be tried again), then the order
    is closed with its status and reason."""
    role = "entry" if order.get("opening") else "exit"
    fill = (order_id, Fill(role, filled, None if state is None else state.filled_avg_price))
    if order.get("opening"):
        event = Event.ENTRY_ENDED if filled > 0 else Event.ENTRY_UNFILLED
    else:
        event = Event.EXIT_FAILED
        reason = f"the closing order was {status}: {reason}"
    _move(person, order_id, order, Change(event, reason=reason, fill=fill))
    finish(person, order_id, {**(fields or {}), "status": status, "reason": reason})


def _move(person: Person, order_id: str, order: dict[str, Any], change: Change) -> None:
    trade_id = str(order.get("trade_id") or "")
    if trade_id and move(person.db, person.uid, trade_id, change, person.now) is not None:
        person.changed = True


def finish(person: Person, order_id: str, fields: dict[str, Any]) -> bool:
    """Record a final state once (precondition on the order as read); False if another run
    recorded it first."""
    db = person.db
    ref = paths.orders(db, person.uid).document(order_id)
    snapshot = ref.get()
    if not snapshot.exists or not (snapshot.to_dict() or {}).get("open"):
        return False
    batch = db.batch()
    batch.update(ref, {**fields, "open": False}, option=unchanged_since(db, snapshot))
    batch.set(paths.user(db, person.uid), {"orders_pending": firestore.Increment(-1)}, merge=True)
    try:
        batch.commit()
    except LOST_RACE:
        return False
    return True
