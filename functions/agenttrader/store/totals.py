"""A person's counts: their open trades (the profile's `open_trades`), and their closed-trade
totals (`stats/closed`): how many trades closed, how many won, and their realized P&L (all,
the shadow book's, and the live trades' apart), in whole cents. Each close adds itself with
increments in the commit that closes the trade (which has a precondition on the trade), so it
counts exactly once; the statistics read this one document instead of the person's history.

A person whose closed trades were written some other way (a migration, a seed, a product
version before this one) has no complete totals yet: they are counted once, from every closed
trade, in a transaction (so a close committing meanwhile makes it count again), and marked
`complete`. A profile without an open-trades count is counted once too, and written only if
no entry or close changed the profile meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from google.cloud import firestore

from agenttrader.core.money import cents, decimal
from agenttrader.store import paths, queries
from agenttrader.store.models import Writer, at_broker, open_trades_count
from agenttrader.store.optimistic import retried, unchanged_since


@dataclass(frozen=True)
class ClosedTotals:
    count: int = 0
    wins: int = 0
    realized: Decimal = Decimal(0)
    shadow: Decimal = Decimal(0)
    """The realized P&L of the closed shadow trades (the shadow book)."""
    live: Decimal = Decimal(0)
    """The realized P&L of the closed live trades (real money), kept apart."""


def _added_by(trade: dict[str, Any]) -> dict[str, int] | None:
    """What a closed trade adds to the totals; None for an entry that never filled (it closes
    without a realized P&L: no trade)."""
    if trade.get("realized_pnl") is None:
        return None
    pnl = int(cents(decimal(trade["realized_pnl"])) * 100)
    return {
        "count": 1,
        "wins": 1 if pnl > 0 else 0,
        "realized_cents": pnl,
        "shadow_cents": 0 if at_broker(trade.get("mode")) else pnl,
        "live_cents": pnl if trade.get("mode") == "live" else 0,
    }


def count_close(writer: Writer, db: firestore.Client, uid: str, doc: dict[str, Any]) -> None:
    """Add a trade that closes in `writer`'s commit (`doc` as written) to the totals."""
    added = _added_by(doc)
    if added is not None:
        increments = {k: firestore.Increment(v) for k, v in added.items()}
        writer.set(paths.closed_totals(db, uid), increments, merge=True)


def closed_totals(db: firestore.Client, uid: str) -> ClosedTotals:
    """The totals: one read, or (the first time for a person) one count of their history."""
    doc = paths.closed_totals(db, uid).get()
    data = doc.to_dict() or {}
    if not data.get("complete"):
        # a transactional wrapper per call: the wrapper keeps the attempt's state, so one
        # shared by threads (the pulse syncs people at once) would mix their attempts
        data = firestore.transactional(_count_history)(db.transaction(), db, uid)
    return ClosedTotals(
        count=int(data.get("count", 0)),
        wins=int(data.get("wins", 0)),
        realized=Decimal(int(data.get("realized_cents", 0))) / 100,
        shadow=Decimal(int(data.get("shadow_cents", 0))) / 100,
        live=Decimal(int(data.get("live_cents", 0))) / 100,
    )


def _count_history(
    transaction: firestore.Transaction, db: firestore.Client, uid: str
) -> dict[str, Any]:
    totals: dict[str, Any] = {
        "count": 0, "wins": 0, "realized_cents": 0, "shadow_cents": 0, "live_cents": 0
    }  # fmt: skip
    for snapshot in queries.closed_trades(db, uid).stream(transaction=transaction):
        for key, value in (_added_by(snapshot.to_dict() or {}) or {}).items():
            totals[key] += value
    totals["complete"] = True
    transaction.set(paths.closed_totals(db, uid), totals)
    return totals


def count_open_trades_once(db: firestore.Client, uid: str) -> int:
    """Count a person's open trades into their profile if it has no count to trust (a profile
    from before the count, a migration), and return the count. Written on the condition that
    the profile is as it was read before counting: every entry and close changes the profile in
    its commit, so one committing meanwhile makes it count again instead of being overwritten;
    a count already there is left to the writers."""

    def attempt() -> int:
        ref = paths.user(db, uid)
        profile = ref.get()
        known = open_trades_count(profile.to_dict())
        if known is not None:
            return known
        count = sum(1 for _ in queries.open_trades(db, uid).select([]).stream())
        if profile.exists:
            option = unchanged_since(db, profile)
            ref.update({"open_trades": count}, option=option)
        else:
            ref.create({"open_trades": count})
        return count

    return retried(attempt)
