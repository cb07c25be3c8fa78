"""Every Firestore query the product and its web client run, built in one place so a test can
prove `firestore.indexes.json` covers each one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from google.cloud import firestore

from agenttrader.store import paths

Query = firestore.Query


def open_trades(db: firestore.Client, uid: str) -> Query:
    """The pulse: a user's open shadow trades (unordered, so none is ever left out)."""
    return paths.shadow_trades(db, uid).where(filter=firestore.FieldFilter("status", "==", "OPEN"))


def open_trades_of_strategy(db: firestore.Client, uid: str, strategy_id: str) -> Query:
    """A strategy's open trades (equalities only: no composite index)."""
    return open_trades(db, uid).where(
        filter=firestore.FieldFilter("strategy_id", "==", strategy_id)
    )


def everyones_open_trades(db: firestore.Client) -> Query:
    """A new instance's first run: every person's open trades, in one collection-group query
    (its index: `firestore.indexes.json` `fieldOverrides`)."""
    return db.collection_group("shadowTradeHistory").where(
        filter=firestore.FieldFilter("status", "==", "OPEN")
    )


STRATEGY_STATUSES = ["active", "paused", "error"]
"""Every status a strategy has (`bot.settings.Status`): the filter only selects the index."""


def everyones_strategies(db: firestore.Client) -> Query:
    """A new instance's first run: every person's strategies, in one collection-group query."""
    return db.collection_group("strategies").where(
        filter=firestore.FieldFilter("status", "in", STRATEGY_STATUSES)
    )


def open_trades_newest_first(db: firestore.Client, uid: str) -> Query:
    """Web client: the open-positions list."""
    return open_trades(db, uid).order_by("created_at", direction=firestore.Query.DESCENDING)


def recent_signals(db: firestore.Client, uid: str, limit: int = 50) -> Query:
    """Web client: the signal feed."""
    return (
        paths.signals(db, uid)
        .order_by("created_at", direction=firestore.Query.DESCENDING)
        .limit(limit)
    )


def signals_for_symbol(db: firestore.Client, uid: str, symbol: str, limit: int = 50) -> Query:
    """Web client: one symbol's signal history."""
    return (
        paths.signals(db, uid)
        .where(filter=firestore.FieldFilter("symbol", "==", symbol))
        .order_by("created_at", direction=firestore.Query.DESCENDING)
        .limit(limit)
    )


def recent_audit(db: firestore.Client, uid: str, limit: int = 100) -> Query:
    """Web client: the account's security log."""
    return paths.audit(db, uid).order_by("at", direction=firestore.Query.DESCENDING).limit(limit)


def closed_trades(db: firestore.Client, uid: str) -> Query:
    """Statistics: every closed trade (read only when the set of trades changed)."""
    return paths.shadow_trades(db, uid).where(
        filter=firestore.FieldFilter("status", "==", "CLOSED")
    )


def closed_trades_newest_first(db: firestore.Client, uid: str, limit: int = 21) -> Query:
    """Web client: the Trade history region (a page and one more, to know if there is a next)
    and the trades export (pages of 500)."""
    return (
        closed_trades(db, uid)
        .order_by("closed_at", direction=firestore.Query.DESCENDING)
        .limit(limit)
    )


def signals_newest_first(db: firestore.Client, uid: str, limit: int = 500) -> Query:
    """Web client: the signals export, a page at a time."""
    return (
        paths.signals(db, uid)
        .order_by("created_at", direction=firestore.Query.DESCENDING)
        .limit(limit)
    )


def equity_curve(db: firestore.Client, uid: str) -> Query:
    """Web client: the Performance chart, one point a trading day."""
    return paths.equity_points(db, uid).order_by("at")


def notifications_newest_first(db: firestore.Client, uid: str, limit: int = 30) -> Query:
    """Web client: the Notifications region."""
    return (
        paths.notifications(db, uid)
        .order_by("at", direction=firestore.Query.DESCENDING)
        .limit(limit)
    )


def notifications_between(db: firestore.Client, uid: str, start: datetime, end: datetime) -> Query:
    """A trading day's summary: the notifications of that day."""
    return (
        paths.notifications(db, uid)
        .where(filter=firestore.FieldFilter("at", ">=", start))
        .where(filter=firestore.FieldFilter("at", "<", end))
    )


def entries_on(db: firestore.Client, uid: str, day: str) -> Query:
    """Risk limits: the strategies' entries of one trading day (counted, not read)."""
    return paths.shadow_trades(db, uid).where(filter=firestore.FieldFilter("entry_day", "==", day))


def open_orders(db: firestore.Client, uid: str) -> Query:
    """The pulse: paper orders Alpaca may still change."""
    return paths.orders(db, uid).where(filter=firestore.FieldFilter("open", "==", True))


def people_by_email(db: firestore.Client, prefix: str = "", after: str = "") -> Query:
    """Operations: people ordered by email, those whose email starts with `prefix`, from
    after `after`."""
    query = paths.users(db).order_by("email")
    if prefix:
        query = query.where(filter=firestore.FieldFilter("email", ">=", prefix)).where(
            filter=firestore.FieldFilter("email", "<", prefix + "\uf8ff")
        )
    if after:
        query = query.start_after({"email": after})
    return query


def oauth_states_of(db: firestore.Client, uid: str) -> Query:
    """Account deletion: the person's pending Connect with Alpaca states."""
    return paths.oauth_states(db).where(filter=firestore.FieldFilter("uid", "==", uid))


def strategies_newest_first(db: firestore.Client, uid: str) -> Query:
    """Web client: the strategies list."""
    return paths.strategies(db, uid).order_by("created_at", direction=firestore.Query.DESCENDING)


ALL: dict[str, Callable[[firestore.Client], Query]] = {
    "open_trades": lambda db: open_trades(db, "uid"),
    "open_trades_newest_first": lambda db: open_trades_newest_first(db, "uid"),
    "recent_signals": lambda db: recent_signals(db, "uid"),
    "signals_for_symbol": lambda db: signals_for_symbol(db, "uid", "AAPL"),
    "recent_audit": lambda db: recent_audit(db, "uid"),
    "closed_trades": lambda db: closed_trades(db, "uid"),
    "closed_trades_newest_first": lambda db: closed_trades_newest_first(db, "uid"),
    "signals_newest_first": lambda db: signals_newest_first(db, "uid"),
    "equity_curve": lambda db: equity_curve(db, "uid"),
    "notifications_newest_first": lambda db: notifications_newest_first(db, "uid"),
    "entries_on": lambda db: entries_on(db, "uid", "2026-11-23"),
    "notifications_between": lambda db: notifications_between(
        db, "uid", datetime(2026, 11, 23, 5, tzinfo=UTC), datetime(2026, 11, 24, 5, tzinfo=UTC)
    ),
    "open_orders": lambda db: open_orders(db, "uid"),
    "strategies_newest_first": lambda db: strategies_newest_first(db, "uid"),
    "oauth_states_of": lambda db: oauth_states_of(db, "uid"),
    "people_by_email": lambda db: people_by_email(db, "al", "alice@example.com"),
    "everyones_open_trades": everyones_open_trades,
    "everyones_strategies": everyones_strategies,
}
