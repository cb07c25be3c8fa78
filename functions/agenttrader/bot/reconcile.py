"""Reconciliation: the product's paper book against Alpaca's positions, every open-market run,
for every person with paper positions, paper orders still working or a difference on record
(one `GET /v2/positions` each; none for people with only shadow trades).

A symbol's book quantity is the sum of what its paper trades hold (BUY positive, SELL
negative); Alpaca's is the position's signed quantity. A symbol with an order still working is
not compared (a fill may land between the two reads); a difference recorded in it before
stands until it can be. A difference is recorded at
`users/{uid}/status/reconciliation` (symbol, broker quantity, book quantity, since when),
audited once (`position_mismatch`), shown on the page, and blocks new entries in that symbol
until it is gone. The product never sends an order to "repair" one: a person decides."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from firebase_functions import logger

from agenttrader.bot import notices
from agenttrader.bot.lifecycle import holds
from agenttrader.bot.person import Person
from agenttrader.core.money import decimal, plain
from agenttrader.store import paths
from agenttrader.store.audit import audit_event
from agenttrader.store.models import ShadowTrade, at_broker


def paper_book(trades: list[tuple[str, ShadowTrade]]) -> dict[str, Decimal]:
    """What the product's paper trades hold, signed, by symbol."""
    book: dict[str, Decimal] = {}
    for _, trade in trades:
        if not at_broker(trade.mode) or not holds(trade.model_dump()):
            continue
        signed = trade.quantity if trade.side == "BUY" else -trade.quantity
        book[trade.symbol] = book.get(trade.symbol, Decimal(0)) + signed
    return book


def due(trades: list[tuple[str, ShadowTrade]], orders_pending: int | None, recorded: int) -> bool:
    """Whether this person is compared this run."""
    return bool(orders_pending) or recorded > 0 or any(at_broker(t.mode) for _, t in trades)


def reconcile(
    person: Person,
    trades: list[tuple[str, ShadowTrade]],
    working: set[str],
    recorded: int,
) -> dict[str, dict[str, Any]]:
    """Compare, record what changed, and return the differences by symbol (their symbols
    also go to `person.mismatched`, and what Alpaca holds of them to `person.broker_held`)."""
    broker = person.broker.positions()
    # only the trades of the account these keys open are compared with its positions
    book = paper_book([(path, t) for path, t in trades if person.opens(t.model_dump())])
    before: dict[str, dict[str, Any]] = {}
    if recorded:
        doc = paths.reconciliation(person.db, person.uid).get()
        before = (doc.to_dict() or {}).get("mismatches") or {} if doc.exists else {}
    found: dict[str, tuple[Decimal, Decimal]] = {}
    for symbol in sorted(book.keys() | broker.keys()):
        theirs, ours = broker.get(symbol, Decimal(0)), book.get(symbol, Decimal(0))
        if symbol in working:  # not compared now; what was recorded stands
            row = before.get(symbol)
            if row:
                found[symbol] = (decimal(row.get("broker_qty", "0")), ours)
        elif theirs != ours:
            found[symbol] = (theirs, ours)
    person.mismatched |= found.keys()
    person.broker_held.update({symbol: theirs for symbol, (theirs, _) in found.items()})
    if not found and recorded == 0:
        return {}
    return _record(person, found, before)


def _record(
    person: Person, found: dict[str, tuple[Decimal, Decimal]], before: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    db, uid, now = person.db, person.uid, person.now
    ref = paths.reconciliation(db, uid)
    now_differs: dict[str, dict[str, Any]] = {}
    for symbol, (theirs, ours) in found.items():
        since = (before.get(symbol) or {}).get("since")
        now_differs[symbol] = {
            "symbol": symbol,
            "broker_qty": plain(theirs),
            "book_qty": plain(ours),
            "since": since if isinstance(since, datetime) else now,
        }
    if _same(before, now_differs):
        return now_differs
    batch = db.batch()
    batch.set(ref, {"mismatches": now_differs, "checked_at": now, "run_id": person.run_id})
    batch.set(paths.user(db, uid), {"position_mismatches": len(now_differs)}, merge=True)
    for symbol in now_differs.keys() - before.keys():
        row = now_differs[symbol]
        audit_event(
            batch,
            db,
            uid,
            "position_mismatch",
            now,
            "pulse",
            {"symbol": symbol, "broker_qty": row["broker_qty"], "book_qty": row["book_qty"]},
        )
        notices.position_mismatch(
            batch, db, uid, symbol, row["broker_qty"], row["book_qty"], person.day, now
        )
        logger.warn("bot.position_mismatch", uid=uid, symbol=symbol)
    batch.commit()
    return now_differs


def _same(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> bool:
    def key(rows: dict[str, dict[str, Any]]) -> set[tuple[str, str, str]]:
        return {(s, str(r.get("broker_qty")), str(r.get("book_qty"))) for s, r in rows.items()}

    return key(before) == key(after)
