"""A position's record (the trade document) closed once: with a precondition on the trade as
read, so of racing closes one wins."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from google.cloud import firestore
from pydantic import ValidationError

from agenttrader.bot.person import Person, StrategyFailure
from agenttrader.core.errors import ErrorCode
from agenttrader.store import paths
from agenttrader.store.models import ShadowTrade, count_open_trades
from agenttrader.store.optimistic import LOST_RACE, unchanged_since


def against(trade: ShadowTrade) -> str:
    """The side that closes `trade`."""
    return "SELL" if trade.side == "BUY" else "BUY"


def close(
    person: Person,
    ref: firestore.DocumentReference,
    price: Decimal | None,
    reason: str,
    also: Callable[[firestore.WriteBatch, ShadowTrade], None] | None = None,
) -> ShadowTrade | None:
    """Close the open trade at `ref` at `price` (None: its entry price, no P&L) with the
    reason, and whatever `also` adds, in one commit with a precondition on the trade as read.
    Returns the trade, or None when it is gone, closed already, or another run closed it
    first: of racing closes one wins."""
    db = person.db
    snapshot = ref.get()
    if not snapshot.exists:
        return None
    try:
        trade = ShadowTrade.model_validate(snapshot.to_dict() or {})
    except ValidationError:
        raise StrategyFailure(ErrorCode.INTERNAL, f"{ref.path} cannot be read") from None
    if trade.status != "OPEN":
        return None  # closed by another run or by the person
    at = trade.entry_price if price is None else price
    batch = db.batch()
    batch.update(
        ref,
        {**trade.closed(at, person.now), "close_reason": reason},
        option=unchanged_since(db, snapshot),
    )
    count_open_trades(batch, db, person.uid, -1)
    if also is not None:
        also(batch, trade)
    try:
        batch.commit()
    except LOST_RACE:
        return None
    person.changed = True
    return trade


def flatten(person: Person, trade_id: str, reason: str) -> None:
    """An entry whose order never filled: close its trade at its entry price (no P&L)."""
    close(person, paths.shadow_trades(person.db, person.uid).document(trade_id), None, reason)
