"""Paper orders: written `pending` with the decision that makes them, sent to Alpaca under
their document id as `client_order_id` (Alpaca answers an id it has seen with that order, never
a second one), and followed until Alpaca says they are done; a trade follows its orders'
fills."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from firebase_functions import logger
from google.cloud import firestore

from agenttrader.bot.person import Person, StrategyFailure
from agenttrader.bot.positions import flatten
from agenttrader.broker.alpaca import BrokerError, OrderState
from agenttrader.core.errors import ErrorCode
from agenttrader.core.money import decimal
from agenttrader.store import paths, queries
from agenttrader.store.models import ShadowTrade
from agenttrader.store.optimistic import LOST_RACE, Contended, retried, unchanged_since


def new_order(
    batch: firestore.WriteBatch,
    person: Person,
    order_id: str,
    symbol: str,
    side: str,
    quantity: Decimal,
    sid: str,
    trade_id: str,
) -> None:
    """The order, before it is sent (`pending`): written with the decision, so a crash between
    the two leaves an order the next run sends under the same client_order_id."""
    db = person.db
    batch.create(
        paths.orders(db, person.uid).document(order_id),
        {
            "symbol": symbol,
            "side": side,
            "qty": str(quantity),
            "status": "pending",
            "open": True,
            "strategy_id": sid,
            "trade_id": trade_id,
            "opening": order_id.endswith("-open"),
            "created_at": person.now,
        },
    )
    batch.set(paths.user(db, person.uid), {"orders_pending": firestore.Increment(1)}, merge=True)


def submit(
    person: Person,
    order_id: str,
    symbol: str,
    side: str,
    quantity: Decimal,
    trade_id: str,
    opening: bool,
) -> None:
    """Send the order (Alpaca answers a client_order_id it has seen with that order)."""
    try:
        state = person.broker.submit_order(symbol, side, quantity, order_id)
    except BrokerError as error:
        if error.code != ErrorCode.ORDER_REJECTED:
            raise  # stays pending: the next run sends it again under the same id
        _finish_order(person, order_id, {"status": "rejected", "reason": error.message})
        if opening:
            flatten(person, trade_id, f"order rejected: {error.message}")
        raise StrategyFailure(ErrorCode.ORDER_REJECTED, error.message) from None
    _order_update(person, order_id, state, trade_id, opening, submitted=True)


def follow_orders(person: Person) -> None:
    """Every paper order Alpaca may still change: send the ones never confirmed sent, ask
    about the others, record what they became."""
    db = person.db
    for doc in queries.open_orders(db, person.uid).stream():
        order = doc.to_dict() or {}
        trade_id = str(order.get("trade_id", ""))
        opening = bool(order.get("opening"))
        try:
            if order.get("status") == "pending":
                submit(
                    person,
                    doc.id,
                    str(order["symbol"]),
                    str(order["side"]),
                    decimal(order["qty"]),
                    trade_id,
                    opening,
                )
            else:
                _order_update(person, doc.id, person.broker.order(doc.id), trade_id, opening)
        except (BrokerError, StrategyFailure) as error:
            logger.warn("bot.order_not_followed", uid=person.uid, order_id=doc.id, code=error.code)


def _order_update(
    person: Person,
    order_id: str,
    state: OrderState,
    trade_id: str,
    opening: bool,
    submitted: bool = False,
) -> None:
    """Record what Alpaca says of an order (`submitted`: it has just been sent)."""
    fields: dict[str, Any] = {"status": state.status, "alpaca_order_id": state.id}
    if submitted:
        fields["submitted_at"] = person.now
    if state.filled_avg_price is not None:
        fields["filled_avg_price"] = str(state.filled_avg_price)
        fields["filled_qty"] = str(state.filled_qty)
    if state.filled_at is not None:
        fields["filled_at"] = state.filled_at
    if not state.final:
        paths.orders(person.db, person.uid).document(order_id).set(fields, merge=True)
        return
    if not _finish_order(person, order_id, fields):
        return  # another run recorded it
    if state.status == "filled" and state.filled_avg_price is not None:
        _at_fill(person, trade_id, state.filled_avg_price, opening)
    elif opening:
        flatten(person, trade_id, f"order {state.status} by Alpaca")


def _at_fill(person: Person, trade_id: str, price: Decimal, opening: bool) -> None:
    """A paper trade follows its fills: its entry price becomes the entry order's fill, its
    exit price (and realized P&L) the exit order's. The set of trades changes version, so
    every instance prices it afresh and the statistics count it again."""
    db = person.db
    ref = paths.shadow_trades(db, person.uid).document(trade_id)

    def attempt() -> None:
        snapshot = ref.get()
        if not snapshot.exists:
            return
        stored = snapshot.to_dict() or {}
        trade = ShadowTrade.model_validate(stored)
        if opening and trade.status == "OPEN" and trade.entry_price != price:
            update = {"entry_price": str(price)}
        elif not opening and trade.status == "CLOSED" and stored.get("exit_price") != str(price):
            update = {"exit_price": str(price), "realized_pnl": str(trade.realized_pnl(price))}
        else:
            return
        batch = db.batch()
        batch.update(ref, update, option=unchanged_since(db, snapshot))
        batch.set(
            paths.user(db, person.uid), {"trades_version": firestore.Increment(1)}, merge=True
        )
        batch.commit()

    try:
        retried(attempt)
    except Contended:
        logger.warn("bot.fill_not_recorded", uid=person.uid, trade_id=trade_id)


def _finish_order(person: Person, order_id: str, fields: dict[str, Any]) -> bool:
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
