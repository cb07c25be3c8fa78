"""A person's statistics, equity curve and strategies' evaluation notes: kept by the instance,
written when something happened and otherwise at most every `BOOKS_EVERY`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

from agenttrader.bot.performance import Performance
from agenttrader.bot.person import Person
from agenttrader.bot.settings import StrategyDoc
from agenttrader.broker.answers import AccountSnapshot
from agenttrader.core.money import plain
from agenttrader.store import paths
from agenttrader.store.models import ShadowTrade, at_broker
from agenttrader.store.totals import closed_totals

BOOKS_EVERY = timedelta(minutes=15)
"""How often a person's equity point, statistics and strategies' evaluation notes are
written while nothing else changes (a write a minute per person is a bill of its own)."""


@dataclass
class Books:
    performance: Performance
    written_at: datetime | None = None
    """When they were last written (the statistics' `updated_at`); None: never."""
    notes: dict[str, dict[str, str]] = field(default_factory=dict)
    """Each running strategy's last evaluation, as written."""
    recounted: bool = False
    """The closed trades were counted again since the last write."""

    @property
    def peak_equity(self) -> Decimal | None:
        return self.performance.peak_equity


def stored_books(
    summary: firestore.DocumentSnapshot[Any], running: Sequence[tuple[str, StrategyDoc]]
) -> Books:
    """The books as last written: the statistics (`stats/summary`) and, from the strategies'
    documents, their last evaluations. An instance that starts from these writes only what
    changes, as one that wrote them would."""
    data = summary.to_dict() if summary.exists else None
    written_at = (data or {}).get("updated_at")
    return Books(
        Performance.from_document(data),
        written_at if isinstance(written_at, datetime) else None,
        {sid: dict(s.last_decisions) for sid, s in running if s.last_decisions is not None},
    )


def books_of(person: Person, running: Sequence[tuple[str, StrategyDoc]]) -> Books:
    kept = person.platform.memory.recall("books", person.memory_key)
    if isinstance(kept, Books):
        return kept
    books = stored_books(paths.stats_summary(person.db, person.uid).get(), running)
    person.platform.memory.keep("books", person.memory_key, books)
    return books


def _shadow_open(trades: list[tuple[str, ShadowTrade]]) -> Decimal:
    return sum(
        (
            t.unrealized_pnl
            for _, t in trades
            if not at_broker(t.mode) and t.unrealized_pnl is not None
        ),
        Decimal(0),
    )


def refresh(
    person: Person,
    books: Books,
    trades: list[tuple[str, ShadowTrade]],
    equity: Decimal,
    observe: bool = True,
) -> Books:
    """The books as of now: the closed-trade totals read again when the set of trades changed
    (one document), and (`observe`) the shadow book observed: its P&L is the realized P&L of its
    closed trades plus its open trades' marks (`trades`, as they were when marked)."""
    performance, recounted = books.performance, books.recounted
    if person.changed or performance.closed_version != person.trades_version:
        totals = closed_totals(person.db, person.uid)
        performance = performance.with_closed(totals, person.trades_version)
        recounted = True
    if observe and person.day:
        pnl = performance.shadow_realized + _shadow_open(trades)
        performance = performance.observe_shadow(person.day, pnl, equity)
    refreshed = replace(books, performance=performance, recounted=recounted)
    person.platform.memory.keep("books", person.memory_key, refreshed)
    return refreshed


def recount_closed(db: firestore.Client, uid: str, now: datetime) -> None:
    """The statistics' closed-trade figures brought up to date, whoever closed the trade (the
    person from the page, an order that filled for someone without running strategies)."""
    ref = paths.stats_summary(db, uid)
    doc = ref.get()
    performance = Performance.from_document(doc.to_dict() if doc.exists else None)
    ref.set(performance.with_closed(closed_totals(db, uid), None).document(now), merge=True)


def shadow_pnl(books: Books, trades: list[tuple[str, ShadowTrade]]) -> Decimal:
    """The shadow book's P&L now."""
    return books.performance.shadow_realized + _shadow_open(trades)


def write_books(
    person: Person,
    account: AccountSnapshot,
    trades: list[tuple[str, ShadowTrade]],
    books: Books,
    notes: dict[str, dict[str, str]],
) -> None:
    """Equity point, statistics and each strategy's last evaluation: when something happened,
    a new day began, the decisions changed, or `BOOKS_EVERY` passed."""
    if person.changed:
        books = refresh(person, books, trades, account.equity, observe=False)
    performance = books.performance
    written_at = books.written_at
    due = (
        person.changed
        or books.recounted
        or written_at is None
        or performance.point_day != person.day
        or notes != books.notes
        or not written_at <= person.now < written_at + BOOKS_EVERY
    )
    if not due:
        return
    db, uid, now = person.db, person.uid, person.now
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
        {"equity": plain(account.equity), "at": now},
    )
    for sid, decisions in notes.items():
        if books.notes.get(sid) != decisions or person.changed or written_at is None:
            batch.update(
                paths.strategies(db, uid).document(sid),
                {"last_evaluated_at": now, "last_decisions": decisions},
            )
    try:
        batch.commit()
    except gexc.NotFound:  # a strategy deleted meanwhile: the rest next run
        return
    person.platform.memory.keep("books", person.memory_key, Books(performance, now, notes))
