"""A position's lifecycle, written once: the states a trade moves through, the events that move
it, and the one function (`move`) that makes each change with a precondition on the trade as
read, so of racing changes one wins and a repeated event changes nothing.

A paper trade follows its orders (freqtrade's habit): its quantity, entry price, exit price and
realized P&L are recomputed from the fills recorded on it (`fills`, by order id), never kept as a
separate truth. A shadow trade has no orders: it is `open` from its entry and `closed` at once.

    state     event            next      what changes
    opening   entry_filling    opening   the quantity is what has filled so far
    opening   entry_filled     open      quantity and entry price from the entry's fills
    opening   entry_ended      open      cancelled, expired or rejected after a partial fill:
                                         the part that filled is held
    opening   entry_unfilled   closed    cancelled, expired, rejected or stale with nothing
                                         filled: no position, no P&L, outside the statistics
    open      exit             closing   paper: a closing order for the quantity held
    open      shadow_exit      closed    shadow (an `exit` of a shadow trade): closed at the
                                         price of the decision
    closing   exit_filling     closing   the quantity held shrinks as the close fills
    closing   exit_filled      closed    exit price and realized P&L from both legs' fills
    closing   exit_failed      open      the close was rejected, cancelled or expired: held
                                         again with the reason, tried again by the next run
    open      closed_by_hand   closed    the person marked it closed (no order; they closed it
    closing                              at Alpaca, or its account is not the keys' any more)
    open      book_set         open      set to Alpaca's quantity: the part Alpaca no longer
                                         holds leaves the book at the entry price (no P&L)
    open      book_emptied     closed    the same, when Alpaca holds none of it
    open      resting_filling  closing   a leg of its exit resting at Alpaca filled in part:
    closing                              what is held shrinks
    open      resting_filled   closed    a leg of its resting exit filled (the other ended by
    closing                              Alpaca's OCO rule): exit price and P&L from its fill

A close's events move the trade only when they come from the closing order it waits for
(`close_order_id`), or for a resting exit's legs from the resting order it records
(`resting.order_id`); an answer about an earlier close is recorded on that order alone.

Exits are considered only for `open` trades; `status` stays `OPEN` until the trade is `closed`
(the page, the pulse and the statistics read it). A document written before states existed is
`open` while `OPEN` and `closed` once `CLOSED`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from firebase_functions import logger
from google.cloud import firestore

from agenttrader.bot import notices
from agenttrader.core.money import cents, decimal, plain, unrealized_pnl
from agenttrader.store import paths
from agenttrader.store.models import ShadowTrade, Writer, at_broker, count_open_trades
from agenttrader.store.optimistic import Contended, retried, unchanged_since
from agenttrader.store.totals import count_close


class State(StrEnum):
    OPENING = "opening"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"
    ERROR = "error"


class Event(StrEnum):
    ENTRY_FILLING = "entry_filling"
    ENTRY_FILLED = "entry_filled"
    ENTRY_ENDED = "entry_ended"
    ENTRY_UNFILLED = "entry_unfilled"
    EXIT = "exit"
    SHADOW_EXIT = "shadow_exit"
    EXIT_FILLING = "exit_filling"
    EXIT_FILLED = "exit_filled"
    EXIT_FAILED = "exit_failed"
    CLOSED_BY_HAND = "closed_by_hand"
    BOOK_SET = "book_set"
    BOOK_EMPTIED = "book_emptied"
    RESTING_FILLING = "resting_filling"
    RESTING_FILLED = "resting_filled"


TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.OPENING, Event.ENTRY_FILLING): State.OPENING,
    (State.OPENING, Event.ENTRY_FILLED): State.OPEN,
    (State.OPENING, Event.ENTRY_ENDED): State.OPEN,
    (State.OPENING, Event.ENTRY_UNFILLED): State.CLOSED,
    (State.OPEN, Event.EXIT): State.CLOSING,  # paper
    (State.OPEN, Event.SHADOW_EXIT): State.CLOSED,  # an EXIT of a shadow trade
    (State.CLOSING, Event.EXIT_FILLING): State.CLOSING,
    (State.CLOSING, Event.EXIT_FILLED): State.CLOSED,
    (State.CLOSING, Event.EXIT_FAILED): State.OPEN,
    (State.OPEN, Event.CLOSED_BY_HAND): State.CLOSED,
    (State.CLOSING, Event.CLOSED_BY_HAND): State.CLOSED,  # its close never left
    (State.OPEN, Event.BOOK_SET): State.OPEN,
    (State.OPEN, Event.BOOK_EMPTIED): State.CLOSED,
    (State.OPEN, Event.RESTING_FILLING): State.CLOSING,
    (State.CLOSING, Event.RESTING_FILLING): State.CLOSING,
    (State.OPEN, Event.RESTING_FILLED): State.CLOSED,
    (State.CLOSING, Event.RESTING_FILLED): State.CLOSED,
}
"""Every change a trade may make; any other (state, event) is ignored (a repeated or late
event), which is what makes following an order twice harmless."""

ORDER_ENDED_UNFILLED = ("canceled", "expired", "rejected", "done_for_day")


def state_of(doc: dict[str, Any]) -> State:
    """A trade's state (documents from before states existed: by their status)."""
    stored = doc.get("state")
    if isinstance(stored, str) and stored in set(State):
        return State(stored)
    return State.CLOSED if doc.get("status") == "CLOSED" else State.OPEN


def holds(doc: dict[str, Any]) -> bool:
    """The product counts this trade as a position (its status is OPEN)."""
    return state_of(doc) in (State.OPENING, State.OPEN, State.CLOSING)


@dataclass(frozen=True)
class Fill:
    """What one order has filled so far, as Alpaca reports it."""

    role: str
    """`entry` or `exit`."""
    qty: Decimal
    price: Decimal | None
    """The average fill price (None while nothing has filled)."""

    def document(self) -> dict[str, str]:
        return {
            "role": self.role,
            "qty": plain(self.qty),
            "price": "" if self.price is None else plain(self.price),
        }


def fills_of(doc: dict[str, Any]) -> dict[str, Fill]:
    fills = {}
    for order_id, raw in (doc.get("fills") or {}).items():
        price = raw.get("price") or None
        fills[order_id] = Fill(
            str(raw.get("role")), decimal(raw.get("qty", "0")), decimal(price) if price else None
        )
    return fills


@dataclass(frozen=True)
class Figures:
    """A paper trade's figures, from its fills."""

    entry_qty: Decimal
    entry_price: Decimal | None
    exit_qty: Decimal
    exit_price: Decimal | None
    realized_pnl: Decimal

    @property
    def held(self) -> Decimal:
        return self.entry_qty - self.exit_qty


def figures(side: str, fills: dict[str, Fill]) -> Figures:
    """Quantity and prices of both legs (exact averages), and the realized P&L of what has
    been closed, computed from the exact averages and rounded to the cent only at the end."""
    entries = [f for f in fills.values() if f.role == "entry" and f.qty > 0]
    exits = [f for f in fills.values() if f.role == "exit" and f.qty > 0]
    entry_qty = sum((f.qty for f in entries), Decimal(0))
    exit_qty = sum((f.qty for f in exits), Decimal(0))
    entry_price = _average(entries, entry_qty)
    exit_price = _average(exits, exit_qty)
    realized = Decimal(0)
    if entry_price is not None:
        for f in exits:
            assert f.price is not None
            realized += unrealized_pnl(
                "BUY" if side == "BUY" else "SELL", entry_price, f.qty, f.price
            )
    return Figures(entry_qty, entry_price, exit_qty, exit_price, cents(realized))


SHOWN_PRICE = Decimal("0.0001")
"""A stored average price is rounded to this for people to read; every figure computed from
it (P&L, exit levels) uses the exact average."""


def _average(fills: list[Fill], qty: Decimal) -> Decimal | None:
    if qty == 0:
        return None
    total = sum((f.qty * (f.price or Decimal(0)) for f in fills), Decimal(0))
    return total / qty


def _shown(price: Decimal) -> str:
    return plain(price.quantize(SHOWN_PRICE).normalize())


def _with_figures(doc: dict[str, Any], fills: dict[str, Fill]) -> dict[str, Any]:
    """The stored fields a paper trade's fills decide: what is held, the averages, the P&L,
    and the exit levels from the entry's exact average."""
    side = str(doc.get("side"))
    numbers = figures(side, fills)
    fields: dict[str, Any] = {
        "fills": {order_id: f.document() for order_id, f in fills.items()},
        "quantity": plain(numbers.held),
        "filled_qty": plain(numbers.entry_qty),
    }
    if numbers.entry_price is not None:
        fields["entry_price"] = _shown(numbers.entry_price)
        fields.update(
            level_prices(
                side,
                numbers.entry_price,
                _percent(doc.get("take_profit_pct")),
                _percent(doc.get("stop_loss_pct")),
            )
        )
    if numbers.exit_price is not None:
        fields["exit_price"] = _shown(numbers.exit_price)
        fields["realized_pnl"] = plain(numbers.realized_pnl)
    return fields


def _percent(value: Any) -> Decimal | None:
    return None if value in (None, "") else decimal(value)


def level_prices(
    side: str, entry: Decimal, take_profit_pct: Decimal | None, stop_loss_pct: Decimal | None
) -> dict[str, str | None]:
    """The take-profit and stop-loss prices of a position entered at `entry`, exact (None: that
    level is not set). A long position's target is above its entry and its stop below; a
    short's the other way round."""
    up = 1 if side == "BUY" else -1
    take = None if take_profit_pct is None else entry * (1 + up * take_profit_pct / 100)
    stop = None if stop_loss_pct is None else entry * (1 - up * stop_loss_pct / 100)
    return {
        "take_profit_price": None if take is None else plain(take.normalize()),
        "stop_loss_price": None if stop is None else plain(stop.normalize()),
    }


@dataclass
class Change:
    """One event for one trade."""

    event: Event
    reason: str = ""
    fill: tuple[str, Fill] | None = None
    """An order's fills so far (order id, fill)."""
    price: Decimal | None = None
    """An exit's price: a shadow trade closes at it."""
    fields: dict[str, Any] | None = None
    """Anything else the change writes on the trade."""
    also: Callable[[Writer, dict[str, Any]], None] | None = None
    """What commits with it (a paper exit's closing order), given the trade as read."""


def move(
    db: firestore.Client, uid: str, trade_id: str, change: Change, now: datetime
) -> dict[str, Any] | None:
    """Apply `change` to the trade if the table allows it from its current state: one commit
    with a precondition on the trade as read, retried on contention. Returns the trade as
    written, or None when the event does not apply (unknown trade, another state, nothing new)."""
    ref = paths.shadow_trades(db, uid).document(trade_id)

    def attempt() -> dict[str, Any] | None:
        snapshot = ref.get()
        if not snapshot.exists:
            return None
        doc = snapshot.to_dict() or {}
        before = state_of(doc)
        event = change.event
        if event is Event.EXIT and not at_broker(doc.get("mode")):
            event = Event.SHADOW_EXIT  # a shadow trade has no order to wait for
        after = TRANSITIONS.get((before, event))
        if after is None or not _awaited(doc, event, change):
            return None
        update = _update(trade_id, doc, before, after, event, change, now)
        if update is None:
            return None
        batch = db.batch()
        batch.update(ref, update, option=unchanged_since(db, snapshot))
        if after is State.CLOSED:
            count_open_trades(batch, db, uid, -1)
            count_close(batch, db, uid, {**doc, **update})
        else:
            batch.set(paths.user(db, uid), {"trades_version": firestore.Increment(1)}, merge=True)
        if change.also is not None:
            change.also(batch, doc)
        notices.trade_moved(
            batch, db, uid, trade_id, {**doc, **update}, str(event), change.reason, now
        )
        batch.commit()
        logger.info(
            "bot.trade_moved",
            uid=uid,
            trade_id=trade_id,
            event=str(event),
            state=str(after),
        )
        return {**doc, **update}

    try:
        return retried(attempt)
    except Contended:
        logger.warn("bot.trade_not_moved", uid=uid, trade_id=trade_id, event=str(change.event))
        return None


EXIT_EVENTS = (Event.EXIT_FILLING, Event.EXIT_FILLED, Event.EXIT_FAILED)


def _awaited(doc: dict[str, Any], event: Event, change: Change) -> bool:
    """An order's event moves the trade only when it is the order the trade waits for: a
    close's events only from its current closing order (a late answer about an earlier close
    is recorded on that order alone)."""
    if event in (Event.RESTING_FILLING, Event.RESTING_FILLED):
        return (
            change.fill is not None
            and (doc.get("resting") or {}).get("order_id") == (change.fill[0])
        )
    if event not in EXIT_EVENTS or change.fill is None:
        return True
    waiting = doc.get("close_order_id")
    return not waiting or waiting == change.fill[0]


def levels_document(
    side: str, entry: Decimal, take_profit_pct: Decimal | None, stop_loss_pct: Decimal | None
) -> dict[str, Any]:
    """What a trade stores of its exits: the percentages it was entered with and, once its
    entry price is known, the prices they make."""
    return {
        "take_profit_pct": None if take_profit_pct is None else plain(take_profit_pct),
        "stop_loss_pct": None if stop_loss_pct is None else plain(stop_loss_pct),
        **level_prices(side, entry, take_profit_pct, stop_loss_pct),
    }


def exact_entry(doc: dict[str, Any]) -> Decimal | None:
    """What the trade's entry filled at, exactly: from its fills (paper), else its entry price
    (shadow); None before anything filled."""
    fills = fills_of(doc)
    if fills:
        return figures(str(doc.get("side")), fills).entry_price
    entry = doc.get("entry_price")
    return None if entry in (None, "") else decimal(entry)


def relevelled(
    doc: dict[str, Any], take_profit_pct: Decimal | None, stop_loss_pct: Decimal | None
) -> dict[str, Any]:
    """The fields that give a trade new exit levels: the percentages, and the prices they make
    from its exact entry once it has one."""
    entry = exact_entry(doc)
    if entry is None:
        return {
            "take_profit_pct": None if take_profit_pct is None else plain(take_profit_pct),
            "stop_loss_pct": None if stop_loss_pct is None else plain(stop_loss_pct),
        }
    return levels_document(str(doc.get("side")), entry, take_profit_pct, stop_loss_pct)


def next_close_id(trade_id: str, doc: dict[str, Any]) -> str:
    """The closing order's id (its client_order_id) for the trade's next close: `-close`, then
    `-close-2`, ... after a close that failed (Alpaca never takes an id twice)."""
    attempts = doc.get("close_attempts")
    n = attempts if isinstance(attempts, int) else 0
    return f"{trade_id}-close" if n == 0 else f"{trade_id}-close-{n + 1}"


def _update(
    trade_id: str,
    doc: dict[str, Any],
    before: State,
    after: State,
    event: Event,
    change: Change,
    now: datetime,
) -> dict[str, Any] | None:
    """The fields that make the change; None when it would change nothing."""
    update: dict[str, Any] = {"state": str(after), **(change.fields or {})}
    if change.fill is not None:
        fills = fills_of(doc)
        if "fills" not in doc and decimal(doc.get("quantity", "0")) > 0:
            # a paper trade from before fills were kept: its entry as it was recorded
            fills["entry"] = Fill("entry", decimal(doc["quantity"]), decimal(doc["entry_price"]))
        order_id, fill = change.fill
        if fills.get(order_id) == fill and before is after:
            return None  # this fill is recorded already
        fills[order_id] = fill
        update.update(_with_figures(doc, fills))
    if event is Event.EXIT:
        attempts = doc.get("close_attempts")
        update["close_order_id"] = next_close_id(trade_id, doc)
        update["close_attempts"] = (attempts if isinstance(attempts, int) else 0) + 1
    if event is Event.SHADOW_EXIT:  # exit price and exact P&L as the stored trade computes them
        assert change.price is not None
        update.update(ShadowTrade.model_validate(doc).closed(change.price, now))
    if event is Event.ENTRY_UNFILLED:
        update.update(quantity="0", filled_qty="0")
    if event is Event.EXIT_FAILED:
        update["last_close_error"] = {"reason": change.reason, "at": now}
    elif event in (Event.EXIT, Event.SHADOW_EXIT, Event.CLOSED_BY_HAND, Event.BOOK_EMPTIED):
        update["close_reason"] = change.reason
        update["last_close_error"] = firestore.DELETE_FIELD
    elif event in (Event.RESTING_FILLING, Event.RESTING_FILLED):
        assert change.fill is not None
        update.update(close_order_id=change.fill[0], close_reason=change.reason)
    elif change.reason:
        update["state_reason"] = change.reason
    if after is State.CLOSED:
        update.update(status="CLOSED", closed_at=now)
        if event is Event.ENTRY_UNFILLED:
            update["close_reason"] = change.reason
    update["state_changed_at"] = now
    return update
