"""Exits that rest at Alpaca: each filled paper position's take-profit and stop-loss are orders
at the broker, so they fire at their price between runs and while the product is down.

For the whole shares a paper trade holds, the pulse places one resting exit, good until
cancelled: an OCO (take-profit limit, stop-loss stop) when both levels are set, else a stop or
a limit, at the trade's levels in whole cents. Its `client_order_id` is `{trade}-rest-{n}`
(`n` the trade's `resting_generation`), written `pending` on the order and the trade before it
is sent, so a retry, an overlapping run or a lost answer never places two. The trade records
it (`resting`), or why there is none (`resting_problem`: a fractional quantity, a level
already crossed, Alpaca's refusal), in which case the pulse's own check of the levels
(`protection`) is what protects it, as it is for shadow trades.

A leg's fill is the trade's exit (`resting_filling`, `resting_filled`, P&L from the fill; the
other leg ends by Alpaca's OCO rule). A resting exit that ends with nothing filled (cancelled
at Alpaca, expired) is placed again by the next run; one whose levels or quantity no longer
match the trade's is cancelled and placed anew. Every other exit (a person's Close, a
strategy's exit) first cancels it and learns what filled (`settle_before_exit`): never two
working exits for one position, never a close that a leg already made."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from firebase_functions import logger
from google.cloud import firestore

from agenttrader.bot.lifecycle import Change, Event, Fill, State, move, state_of
from agenttrader.bot.notices import CLOSE_TRIES
from agenttrader.bot.orders import finish
from agenttrader.bot.person import Person, trading_day
from agenttrader.broker.answers import OrderState
from agenttrader.broker.refusals import BrokerError
from agenttrader.core.errors import ErrorCode
from agenttrader.core.money import decimal, plain
from agenttrader.store import paths, queries
from agenttrader.store.models import ShadowTrade, at_broker
from agenttrader.store.optimistic import LOST_RACE, unchanged_since

CENT = Decimal("0.01")
RESTING = "resting"
"""An order's `kind` when it is a resting exit."""


def levels_in_cents(trade: ShadowTrade) -> tuple[Decimal | None, Decimal | None]:
    """The trade's (take-profit, stop-loss) as Alpaca takes prices: whole cents."""

    def cents(price: Decimal | None) -> Decimal | None:
        return None if price is None else price.quantize(CENT, ROUND_HALF_EVEN)

    return cents(trade.take_profit_price), cents(trade.stop_loss_price)


def against(side: str) -> str:
    """The side that closes a position of `side`."""
    return "SELL" if side == "BUY" else "BUY"


# -- following ------------------------------------------------------------------------------------


def follow_resting(person: Person) -> None:
    """Every resting exit Alpaca may still change: send one never confirmed sent (same id),
    and learn what the others did: one request lists every working order; only one that left
    the list (a leg filled, it was cancelled or expired) is asked about on its own."""
    mine = [
        (doc.id, doc.to_dict() or {})
        for doc in queries.open_orders(person.db, person.uid).stream()
        if (doc.to_dict() or {}).get("kind") == RESTING
    ]
    mine = [(order_id, order) for order_id, order in mine if person.opens(order)]
    if not mine:
        return
    try:
        working = person.broker.open_orders()
    except BrokerError as error:
        logger.warn("bot.resting_not_followed", uid=person.uid, code=error.code)
        return
    for order_id, order in mine:
        try:
            if order.get("status") == "pending":
                if person.may_send():
                    _send(person, order_id, order)
                continue
            state = working.get(order_id) or person.broker.find_order(order_id)
            if state is None:  # Alpaca has no such order: placed again
                finish(person, order_id, {"status": "canceled", "reason": "missing at Alpaca"})
                _forget(person, str(order.get("trade_id")), order_id, "missing at Alpaca")
                continue
            record_resting(person, order_id, order, state)
        except BrokerError as error:
            logger.warn("bot.resting_not_followed", uid=person.uid, order=order_id, code=error.code)


def record_resting(person: Person, order_id: str, order: dict[str, Any], state: OrderState) -> None:
    """What Alpaca says of a resting exit: a leg's fill moves the trade (the whole of it
    closes it); once every leg ended, the order is closed, and if nothing filled the trade
    forgets it (placed again by the next run)."""
    legs = state.group
    filled = sum((leg.filled_qty for leg in legs), Decimal(0))
    trade_id = str(order.get("trade_id") or "")
    if filled > 0:
        leg = next(leg for leg in legs if leg.filled_qty > 0)
        what = "stop-loss" if leg.type == "stop" else "take-profit"
        price = leg.filled_avg_price or Decimal(0)
        reason = f"{what}: its exit resting at Alpaca filled at ${plain(price)}"
        done = filled >= decimal(order.get("qty", "0"))
        event = Event.RESTING_FILLED if done else Event.RESTING_FILLING
        fill = (order_id, Fill("exit", filled, leg.filled_avg_price))
        change = Change(event, reason=reason, fill=fill)
        if move(person.db, person.uid, trade_id, change, person.now):
            person.changed = True
        if state.all_final and not done:  # the rest ended unfilled: held again, closed again
            reason = f"{reason}; {plain(filled)} filled and the rest was {state.status}"
            failed = Change(Event.EXIT_FAILED, reason=reason, fill=fill)
            if move(person.db, person.uid, trade_id, failed, person.now):
                person.changed = True
            _forget(person, trade_id, order_id, "")
    fields = {"status": state.status, "alpaca_order_id": state.id, "filled_qty": plain(filled)}
    if not state.all_final:
        if any(order.get(k) != v for k, v in fields.items()):  # written only when it changed
            paths.orders(person.db, person.uid).document(order_id).set(fields, merge=True)
        return
    if finish(person, order_id, fields) and filled == 0:
        _forget(person, trade_id, order_id, f"its exit resting at Alpaca ended {state.status}")


def _forget(
    person: Person,
    trade_id: str,
    order_id: str,
    why: str,
    refused: dict[str, Any] | None = None,
) -> None:
    """The trade no longer has this resting exit (only if it is still the one it records)."""
    ref = paths.shadow_trades(person.db, person.uid).document(trade_id)
    snapshot = ref.get()
    doc = snapshot.to_dict() or {} if snapshot.exists else {}
    if (doc.get("resting") or {}).get("order_id") != order_id:
        return
    try:
        ref.update(
            {
                "resting": firestore.DELETE_FIELD,
                "resting_problem": why or firestore.DELETE_FIELD,
                "resting_refused": refused or firestore.DELETE_FIELD,
            },
            option=unchanged_since(person.db, snapshot),
        )
    except LOST_RACE:
        logger.info("bot.resting_forget_raced", uid=person.uid, trade_id=trade_id)
        return
    person.changed = True  # the run reads its trades again: the exit is placed anew


# -- placing --------------------------------------------------------------------------------------


def rest_exits(
    person: Person, trades: list[tuple[str, ShadowTrade]], prices: Mapping[str, Decimal]
) -> None:
    """Give every open paper trade with levels its resting exit (one that no longer matches
    the trade is replaced); each trade on its own, a failure recorded and the next tried."""
    if not person.may_send():
        return
    for path, trade in trades:
        if not at_broker(trade.mode) or state_of(trade.model_dump()) is not State.OPEN:
            continue
        try:
            _rest(person, person.db.document(path).id, trade, prices.get(trade.symbol))
        except BrokerError as error:
            logger.warn("bot.resting_not_placed", uid=person.uid, trade=path, code=error.code)


def _rest(person: Person, trade_id: str, trade: ShadowTrade, price: Decimal | None) -> None:
    take, stop = levels_in_cents(trade)
    if (take is None and stop is None) or trade.quantity <= 0:
        return
    if not person.opens(trade.model_dump()):
        return  # held in another account: nothing is placed there with these keys
    if trade.symbol in person.mismatched:
        return  # the book and Alpaca differ: nothing rests on a quantity in doubt
    if trade.last_close_error is not None and trade.close_attempts < CLOSE_TRIES:
        return  # its close is being tried again: that is its exit
    resting = trade.resting or {}
    wanted = {"qty": plain(trade.quantity), "take_profit": _text(take), "stop_loss": _text(stop)}
    if trade.resting_refused == wanted:
        return  # Alpaca refused exactly this: asked again only once something changes
    if resting:
        if all(resting.get(k) == v for k, v in wanted.items()):
            return  # it rests as it should
        if not settle_before_exit(person, trade_id):  # levels or quantity changed: anew
            return
    if trade.quantity != trade.quantity.to_integral_value():
        _problem(person, trade_id, "a fractional quantity cannot rest at Alpaca")
        return
    long = trade.side == "BUY"
    if price is not None and (
        (stop is not None and (price <= stop if long else price >= stop))
        or (take is not None and (price >= take if long else price <= take))
    ):
        return  # a level is already crossed: the pulse's check closes it now
    _place(person, trade_id, trade, wanted)


def _text(price: Decimal | None) -> str | None:
    return None if price is None else plain(price)


def _problem(person: Person, trade_id: str, why: str) -> None:
    ref = paths.shadow_trades(person.db, person.uid).document(trade_id)
    ref.update({"resting_problem": why})


def _place(person: Person, trade_id: str, trade: ShadowTrade, wanted: dict[str, Any]) -> None:
    """Write the resting exit `pending` on its order and on the trade (one commit, on the
    trade as read), then send it."""
    db = person.db
    ref = paths.shadow_trades(db, person.uid).document(trade_id)
    snapshot = ref.get()
    doc = snapshot.to_dict() or {}
    if (doc.get("resting") or {}) or state_of(doc) is not State.OPEN:
        return  # another run placed it, or the trade moved
    generation = int(doc.get("resting_generation") or 0) + 1
    order_id = f"{trade_id}-rest-{generation}"
    order = {
        **person.account_fields(),
        "kind": RESTING,
        "symbol": trade.symbol,
        "side": against(trade.side),
        "qty": wanted["qty"],
        "take_profit_price": wanted["take_profit"],
        "stop_loss_price": wanted["stop_loss"],
        "status": "pending",
        "open": True,
        "strategy_id": trade.strategy_id,
        "trade_id": trade_id,
        "opening": False,
        "day": person.day or trading_day(person.now),
        "created_at": person.now,
    }
    batch = db.batch()
    batch.update(
        ref,
        {
            "resting": {"order_id": order_id, **wanted, "since": person.now},
            "resting_generation": generation,
            "resting_problem": firestore.DELETE_FIELD,
        },
        option=unchanged_since(db, snapshot),
    )
    batch.create(paths.orders(db, person.uid).document(order_id), order)
    batch.set(paths.user(db, person.uid), {"orders_pending": firestore.Increment(1)}, merge=True)
    try:
        batch.commit()
    except LOST_RACE:
        return  # another run got there first
    _send(person, order_id, order)


def _send(person: Person, order_id: str, order: dict[str, Any]) -> None:
    """Send a resting exit under its id (a lost answer: Alpaca answers with the one it has);
    a refusal ends it, and the trade says why nothing rests."""
    take, stop = order.get("take_profit_price"), order.get("stop_loss_price")
    try:
        state = person.broker.submit_resting_exit(
            str(order["symbol"]),
            str(order["side"]),
            decimal(order["qty"]),
            None if take is None else decimal(take),
            None if stop is None else decimal(stop),
            order_id,
        )
    except BrokerError as error:
        if error.code != ErrorCode.ORDER_REJECTED:
            raise  # stays pending: sent again under the same id
        finish(person, order_id, {"status": "rejected", "reason": error.message})
        refused = {k: order.get(f"{k}_price") for k in ("take_profit", "stop_loss")}
        _forget(
            person,
            str(order["trade_id"]),
            order_id,
            f"Alpaca refused its resting exit: {error.message}",
            refused={"qty": order.get("qty"), **refused},
        )
        return
    paths.orders(person.db, person.uid).document(order_id).set(
        {"submitted_at": person.now}, merge=True
    )
    record_resting(person, order_id, order, state)


# -- every other exit goes through it first -------------------------------------------------------


def settle_before_exit(person: Person, trade_id: str) -> bool:
    """Before any other exit of a trade: cancel its resting exit and learn what it did.
    Returns True when nothing rests any more and the trade is still open (the exit may go),
    False when a leg closed it or Alpaca has not ended the order yet (nothing else is sent)."""
    ref = paths.shadow_trades(person.db, person.uid).document(trade_id)
    doc = ref.get().to_dict() or {}
    resting = doc.get("resting") or {}
    order_id = resting.get("order_id")
    if not order_id:
        return state_of(doc) is State.OPEN
    order_ref = paths.orders(person.db, person.uid).document(str(order_id))
    order = order_ref.get().to_dict() or {}
    state = person.broker.find_order(str(order_id))
    if state is None:  # never reached Alpaca: withdrawn here
        finish(person, str(order_id), {"status": "canceled", "reason": "never sent; replaced"})
        _forget(person, trade_id, str(order_id), "")
    else:
        if not state.all_final:
            person.broker.cancel_order(state.id)
            state = person.broker.order(str(order_id))
        record_resting(person, str(order_id), order, state)
        if not state.all_final:
            logger.warn("bot.resting_not_ended", uid=person.uid, trade_id=trade_id)
            return False
    after = ref.get().to_dict() or {}
    return state_of(after) is State.OPEN and not after.get("resting")
