"""What a person does with what they hold: close one trade or all of them, through the same
close as the pulse's (`bot.exits`), only in the account that holds each position."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Annotated, Any

from firebase_functions import https_fn
from google.cloud import firestore
from pydantic import Field

from agenttrader.api.callables import SYMBOL_PATTERN
from agenttrader.api.guard import (
    Call,
    Code,
    DocumentId,
    Limit,
    StrictInput,
    endpoint,
    fail,
    stored,
)
from agenttrader.api.messages import label
from agenttrader.bot.books import recount_closed
from agenttrader.bot.exits import NothingHeld, close_position
from agenttrader.bot.lifecycle import Change, Event, Fill, State, move, state_of
from agenttrader.bot.orders import withdraw_unsent
from agenttrader.bot.person import OtherAccount, Person, trading_day
from agenttrader.broker.refusals import BrokerError
from agenttrader.core.money import decimal, plain
from agenttrader.pulse.cadence import PulseState
from agenttrader.store import paths, queries, switches
from agenttrader.store.audit import audit_event
from agenttrader.store.firestore_io import get_in_order
from agenttrader.store.models import (
    ShadowTrade,
    Writer,
    at_broker,
    keys_version,
)


class CloseTradeRequest(StrictInput):
    trade_id: DocumentId


@endpoint(CloseTradeRequest, Limit(20, 60))
def close_shadow_trade(call: Call[CloseTradeRequest]) -> dict[str, Any]:
    """Close one of the caller's open trades: a shadow trade at once at the latest price; a
    paper trade with a closing order at Alpaca (sent now while the market is open, otherwise
    at the next open), its exit price and P&L following the order's fill."""
    ref = paths.shadow_trades(call.db, call.who.uid).document(call.request.trade_id)
    trade = _open_trade(ref)
    with _closer(call) as (person, prices):
        answer = _close_one(call, person, ref.id, trade, prices([trade.symbol]))
    if answer["state"] == State.CLOSED:
        recount_closed(call.db, call.who.uid, call.now)
    return answer


class CloseAllRequest(StrictInput):
    account_last4: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{4}$")] | None = None
    """Asked again when live positions are among those closed: the last four characters of
    the live account's number, as the person consented with."""


@endpoint(CloseAllRequest, Limit(5, 60))
def close_all_positions(call: Call[CloseAllRequest]) -> dict[str, Any]:
    """Close every open trade of the caller's (shadow trades at once, paper and live trades
    through closing orders); trades still being opened or closed are left to their orders. With
    live positions among them, nothing is closed unless the caller typed the last four
    characters of each live account's number."""
    db, uid = call.db, call.who.uid
    trades = [(doc.id, stored(ShadowTrade, doc)) for doc in queries.open_trades(db, uid).stream()]
    _live_confirmed(trades, call.request.account_last4)
    closed, left = [], []
    with _closer(call) as (person, prices):
        price_of = prices(sorted({t.symbol for _, t in trades})) if trades else {}
        for trade_id, trade in trades:
            try:  # a trade still opening or closing is refused: left to its order
                closed.append(_close_one(call, person, trade_id, trade, price_of))
            except https_fn.HttpsError:
                left.append(trade_id)
    if any(c["state"] == State.CLOSED for c in closed):
        recount_closed(db, uid, call.now)
    return {"closed": closed, "left": left}


def _live_confirmed(trades: list[tuple[str, ShadowTrade]], typed: str | None) -> None:
    """Closing live positions is confirmed by the last four of their account's number."""
    accounts = {str(t.account_number or "") for _, t in trades if t.mode == "live"}
    if not accounts:
        return
    wanted = sorted(number[-4:].upper() for number in accounts)
    if typed is None or any(typed.upper() != last4 for last4 in wanted):
        field = label("account_last4")
        raise fail(
            Code.INVALID_ARGUMENT,
            f"{field}: closing real positions in your live account ending {', '.join(wanted)} "
            "needs the last four characters of its number, typed again; nothing was closed",
            "account_last4",
        )


@contextlib.contextmanager
def _closer(
    call: Call[Any],
) -> Iterator[tuple[Person, Callable[[list[str]], dict[str, Decimal]]]]:
    """The caller as the bot sees them (their keys, their broker, the market's state as the
    pulse last read Alpaca's clock, and the global switch), and a price look-up."""
    db, uid, now = call.db, call.who.uid, call.now
    profile, state_doc, halt = get_in_order(
        db, [paths.user(db, uid), paths.pulse_state(db), paths.global_trading(db)]
    )
    keys = call.platform.keys.load(uid, keys_version(profile.to_dict()))
    if keys is None:
        raise fail(Code.FAILED_PRECONDITION, "no Alpaca keys saved: a price is needed to close")
    clock = PulseState.from_document(state_doc.to_dict() if state_doc.exists else None)
    halted = switches.halts_everyone(halt.to_dict() if halt.exists else None)
    # an order leaves only while the market is open and nobody halted trading for everyone;
    # otherwise the pulse sends it once both are true again
    market_open = clock.is_open is True and clock.clock_is_current(now) and not halted
    broker = call.platform.brokers(keys)
    person = Person(
        call.platform,
        uid,
        uid,
        keys,
        broker,
        f"call-{uuid.uuid4().hex}",
        now,
        trading_day(now) if market_open else "",
        None,
        closes_at=clock.next_close if market_open else None,
        broker_held=recorded_differences(db, uid),
    )

    def prices(symbols: list[str]) -> dict[str, Decimal]:
        return broker.latest_prices(symbols)

    try:
        account = broker.account()  # which account the keys open
        person.account_number, person.account_id = account.account_number, account.account_id
        yield person, prices
    except BrokerError as error:
        raise fail(Code.UNAVAILABLE, f"Alpaca: {error.message}") from None
    finally:
        broker.close()


def _close_one(
    call: Call[Any],
    person: Person,
    trade_id: str,
    trade: ShadowTrade,
    prices: dict[str, Decimal],
) -> dict[str, Any]:
    price = prices.get(trade.symbol)
    if price is None:
        raise fail(Code.UNAVAILABLE, f"Alpaca has no recent trade for {trade.symbol}")
    if state_of(trade.model_dump()) is not State.OPEN:
        raise fail(
            Code.FAILED_PRECONDITION,
            f"your {trade.symbol} position is still being "
            f"{'opened' if trade.state == State.OPENING else 'closed'}; its order decides",
        )
    db, uid, now = call.db, call.who.uid, call.now

    def audited(writer: Writer, doc: dict[str, Any]) -> None:
        audit_event(writer, db, uid, "shadow_trade_closed", now, uid, {"trade_id": trade_id})

    try:
        written = close_position(person, trade_id, price, "closed by you", also=audited)
    except (OtherAccount, NothingHeld) as refused:
        raise fail(Code.FAILED_PRECONDITION, refused.message) from None
    if written is None:
        raise fail(Code.FAILED_PRECONDITION, f"trade {trade_id} is already closed")
    answer = {"trade_id": trade_id, "state": written.get("state")}
    if written.get("state") == State.CLOSED:
        answer.update(exit_price=written["exit_price"], realized_pnl=written["realized_pnl"])
    else:
        answer.update(order_id=written.get("close_order_id"), sent=bool(person.day))
    return answer


def _open_trade(
    ref: firestore.DocumentReference, snapshot: firestore.DocumentSnapshot[Any] | None = None
) -> ShadowTrade:
    """The open trade at `ref`, or NOT_FOUND / FAILED_PRECONDITION saying why not."""
    doc = snapshot if snapshot is not None else ref.get()
    if not doc.exists:
        raise fail(Code.NOT_FOUND, f"no shadow trade {ref.id}")
    trade = stored(ShadowTrade, doc)
    if trade.status != "OPEN":
        raise fail(Code.FAILED_PRECONDITION, f"shadow trade {ref.id} is already closed")
    return trade


def recorded_differences(db: firestore.Client, uid: str) -> dict[str, Decimal]:
    """What Alpaca held of each symbol in difference with the book, as last recorded."""
    doc = paths.reconciliation(db, uid).get()
    rows = (doc.to_dict() or {}).get("mismatches") or {} if doc.exists else {}
    return {symbol: decimal(row.get("broker_qty", "0")) for symbol, row in rows.items()}


# -- the book without an order --------------------------------------------------------------------


@endpoint(CloseTradeRequest, Limit(10, 60))
def mark_trade_closed(call: Call[CloseTradeRequest]) -> dict[str, Any]:
    """Close the book's record of a paper trade without sending any order: for a position the
    person closed at Alpaca themselves, or one held in an account their keys no longer open.
    Its closing order, if one waits unsent, is withdrawn; one Alpaca may be working is not
    (the person cancels it at Alpaca first). Audited."""
    db, uid, now = call.db, call.who.uid, call.now
    trade_id = call.request.trade_id
    ref = paths.shadow_trades(db, uid).document(trade_id)
    snapshot = ref.get()
    trade = _open_trade(ref, snapshot)
    if not at_broker(trade.mode):
        raise fail(Code.FAILED_PRECONDITION, "only a paper trade is closed by hand; close this one")
    doc = snapshot.to_dict() or {}
    waiting = doc.get("close_order_id")
    order_ref = paths.orders(db, uid).document(str(waiting)) if waiting else None
    order = order_ref.get().to_dict() or {} if order_ref is not None else {}
    if order.get("open") and order.get("status") != "pending":
        raise fail(
            Code.FAILED_PRECONDITION,
            f"a closing order for your {trade.symbol} position may be working at Alpaca: cancel "
            "it at Alpaca first, then mark the trade closed",
        )

    def audited(writer: Writer, _: dict[str, Any]) -> None:
        audit_event(writer, db, uid, "trade_marked_closed", now, uid, {"trade_id": trade_id})
        if order_ref is not None and order.get("open"):
            withdraw_unsent(writer, db, uid, order_ref, "withdrawn: the trade was closed by hand")

    change = Change(
        Event.CLOSED_BY_HAND, reason="marked closed by you, no order sent", also=audited
    )
    written = move(db, uid, trade_id, change, now)
    if written is None:
        raise fail(Code.FAILED_PRECONDITION, f"your {trade.symbol} trade is not open any more")
    recount_closed(db, uid, now)
    return {"trade_id": trade_id, "state": written.get("state")}


class SymbolRequest(StrictInput):
    symbol: str = Field(min_length=1, max_length=8, pattern=SYMBOL_PATTERN)


@endpoint(SymbolRequest, Limit(10, 60))
def use_alpaca_quantity(call: Call[SymbolRequest]) -> dict[str, Any]:
    """Set the book of a symbol that differs from Alpaca to what Alpaca holds, without any
    order: each open paper trade in it keeps what Alpaca still holds on its side (the oldest
    first) and the rest is taken out of the book at its entry price (no P&L is invented).
    Alpaca holding more than the book is refused: the product never adopts a position it did
    not open. Audited."""
    db, uid, now, symbol = call.db, call.who.uid, call.now, call.request.symbol
    with _closer(call) as (person, _):
        held = person.broker.positions().get(symbol, Decimal(0))
        stored_trades = [
            (doc.id, doc.to_dict() or {}) for doc in queries.open_trades(db, uid).stream()
        ]
        trades = [
            (trade_id, t)
            for trade_id, t in stored_trades
            if at_broker(t.get("mode")) and t.get("symbol") == symbol and person.opens(t)
        ]
    trades.sort(key=lambda t: str(t[1].get("created_at")))
    ours = sum(
        (decimal(t["quantity"]) * (1 if t["side"] == "BUY" else -1) for _, t in trades), Decimal(0)
    )
    if any(state_of(t) is not State.OPEN for _, t in trades):
        raise fail(Code.FAILED_PRECONDITION, f"an order for {symbol} is still working: wait for it")
    room = {"BUY": max(held, Decimal(0)), "SELL": max(-held, Decimal(0))}
    for side, alpaca in room.items():
        book = sum((decimal(t["quantity"]) for _, t in trades if t["side"] == side), Decimal(0))
        if alpaca > book:
            raise fail(
                Code.FAILED_PRECONDITION,
                f"Alpaca holds more {symbol} than the product's book; the product never takes "
                "over a position it did not open",
            )
    changed = []
    for trade_id, doc in trades:
        keep = min(decimal(doc["quantity"]), room[doc["side"]])
        room[doc["side"]] -= keep
        taken = decimal(doc["quantity"]) - keep
        if taken <= 0:
            continue
        fill = Fill("exit", taken, decimal(doc["entry_price"]))
        event = Event.BOOK_SET if keep > 0 else Event.BOOK_EMPTIED
        reason = f"set to Alpaca's quantity by you: {plain(taken)} taken out of the book"

        def audited(writer: Writer, _: dict[str, Any], tid: str = trade_id) -> None:
            audit_event(
                writer, db, uid, "book_set_to_alpaca", now, uid, {"trade_id": tid, "symbol": symbol}
            )

        fill_id = f"{trade_id}-set-{len(doc.get('fills') or {})}"
        change = Change(event, reason=reason, fill=(fill_id, fill), also=audited)
        if move(db, uid, trade_id, change, now) is not None:
            changed.append(trade_id)
    _forget_difference(db, uid, symbol)
    recount_closed(db, uid, now)
    return {"symbol": symbol, "alpaca_qty": plain(held), "book_qty": plain(ours), "trades": changed}


def _forget_difference(db: firestore.Client, uid: str, symbol: str) -> None:
    """The symbol's recorded difference is settled; the next run compares it afresh."""
    ref = paths.reconciliation(db, uid)
    if ref.get().exists:
        ref.update({f"mismatches.`{symbol}`": firestore.DELETE_FIELD})
