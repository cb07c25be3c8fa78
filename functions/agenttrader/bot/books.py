"""A person's statistics, equity curve and strategies' evaluation notes: kept by the instance,
written when something happened and otherwise at most every `BOOKS_EVERY`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal

from google.api_core import exceptions as gexc

from agenttrader.bot.performance import Performance
from agenttrader.bot.person import Person
from agenttrader.broker.alpaca import AccountSnapshot
from agenttrader.core.money import decimal
from agenttrader.store import paths, queries
from agenttrader.store.models import ShadowTrade

BOOKS_EVERY = timedelta(minutes=15)
"""How often a person's equity point, statistics and strategies' evaluation notes are
written while nothing else changes (a write a minute per person is a bill of its own)."""


@dataclass
class Books:
    performance: Performance
    written_at: float | None = None
    """When this instance last wrote them (monotonic); None: not since it started."""
    notes: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def peak_equity(self) -> Decimal | None:
        return self.performance.peak_equity


def books_of(person: Person) -> Books:
    kept = person.platform.memory.recall("books", person.memory_key)
    if isinstance(kept, Books):
        return kept
    doc = paths.stats_summary(person.db, person.uid).get()
    books = Books(Performance.from_document(doc.to_dict() if doc.exists else None))
    person.platform.memory.keep("books", person.memory_key, books)
    return books


def write_books(
    person: Person,
    account: AccountSnapshot,
    trades: list[tuple[str, ShadowTrade]],
    books: Books,
    notes: dict[str, dict[str, str]],
) -> None:
    """Equity point, statistics and each strategy's last evaluation: when something happened,
    a new day began, the decisions changed, or `BOOKS_EVERY` passed."""
    performance = books.performance
    due = (
        person.changed
        or books.written_at is None
        or performance.point_day != person.day
        or performance.closed_version != person.trades_version
        or notes != books.notes
        or time.monotonic() - books.written_at >= BOOKS_EVERY.total_seconds()
    )
    if not due:
        return
    db, uid, now = person.db, person.uid, person.now
    if person.changed or performance.closed_version != person.trades_version:
        realized = []
        for doc in queries.closed_trades(db, uid).stream():
            value = (doc.to_dict() or {}).get("realized_pnl")
            if value is not None:
                realized.append(decimal(value))
        performance = performance.with_closed(realized, person.trades_version)
    unrealized = sum(
        (t.unrealized_pnl for _, t in trades if t.unrealized_pnl is not None), Decimal(0)
    )
    performance = replace(
        performance.observe(person.day, account.equity), unrealized_pnl=unrealized
    )
    batch = db.batch()
    batch.set(paths.stats_summary(db, uid), performance.document(now))
    batch.set(
        paths.equity_points(db, uid).document(person.day),
        {"equity": str(account.equity), "at": now},
    )
    for sid, decisions in notes.items():
        if books.notes.get(sid) != decisions or person.changed or books.written_at is None:
            batch.update(
                paths.strategies(db, uid).document(sid),
                {"last_evaluated_at": now, "last_decisions": decisions},
            )
    try:
        batch.commit()
    except gexc.NotFound:  # a strategy deleted meanwhile: the rest next run
        return
    person.platform.memory.keep(
        "books", person.memory_key, Books(performance, time.monotonic(), notes)
    )
