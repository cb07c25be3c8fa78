"""What the bot tells a person, as one notification per event at
`users/{uid}/notifications/{event_id}` (the in-page feed). The id is derived from the event (the
trade and what happened to it, the run that tripped a limit), and each notification is written
in the same commit as the change it reports: a retried or overlapping run, which cannot make
the change twice, cannot notify twice either.

A notification: `kind`, `message` (one plain sentence), `at`, `read_at` (None until the person
marks it read; the rules let them set that field only) and the figures it is about.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from google.cloud import firestore

from agenttrader.core.money import decimal
from agenttrader.store import paths
from agenttrader.store.models import Writer, at_broker

ENTRY_FILLED = "entry_filled"
EXIT_FILLED = "exit_filled"
ORDER_ENDED = "order_ended"
EXIT_FAILED = "exit_failed"
RISK_TRIPPED = "risk_tripped"
POSITION_MISMATCH = "position_mismatch"
SYNC_FAILING = "sync_failing"
DAILY_SUMMARY = "daily_summary"
KINDS = (
    ENTRY_FILLED,
    EXIT_FILLED,
    ORDER_ENDED,
    EXIT_FAILED,
    RISK_TRIPPED,
    POSITION_MISMATCH,
    SYNC_FAILING,
    DAILY_SUMMARY,
)
"""The events a person chooses to hear of by webhook and email (the feed shows every one)."""
ENTRY_SKIPPED = "entry_skipped"
"""A live entry the gate held back (bot.live): in the feed, once a strategy, symbol and day."""
WEBHOOK_OFF = "webhook_off"
"""Their webhook was switched off: in the feed and by email, never to the webhook itself."""

FAILING_TOLD_AFTER = timedelta(minutes=15)
"""Syncs failing this long are a notification (once, until a sync works again)."""

LIMIT_NAMES = {
    "max_position_usd": "max position",
    "max_daily_loss_usd": "max daily loss",
    "max_drawdown_pct": "max drawdown",
    "max_trades_per_day": "max trades per day",
}
"""The risk limits as the page names them."""


def notify(
    writer: Writer,
    db: firestore.Client,
    uid: str,
    event_id: str,
    kind: str,
    message: str,
    at: datetime,
    **figures: Any,
) -> None:
    """Add the notification of one event to `writer`'s commit."""
    ref = paths.notifications(db, uid).document(event_id)
    writer.set(ref, _notification(kind, message, at, figures))


def _notification(kind: str, message: str, at: datetime, figures: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "message": message, "at": at, "read_at": None, **figures}


def money(value: Any) -> str:
    """ "-1234.5" -> "-$1,234.50" for a sentence."""
    amount = decimal(value)
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.2f}"


def _bought(side: str, closing: bool = False) -> str:
    buys = side == "BUY"
    if closing:
        buys = not buys
    return "bought" if buys else "sold"


def trade_moved(
    writer: Writer,
    db: firestore.Client,
    uid: str,
    trade_id: str,
    trade: dict[str, Any],
    event: str,
    reason: str,
    at: datetime,
) -> None:
    """The notification of a trade's change (`trade` as written), if it is one a person hears
    about: an entry or an exit filled, an order that ended with nothing done, a close that
    failed."""
    symbol, side = str(trade.get("symbol")), str(trade.get("side"))
    mode = str(trade.get("mode")) if at_broker(trade.get("mode")) else "shadow"
    about = {"trade_id": trade_id, "symbol": symbol, "mode": mode}
    if event in ("entry_filled", "entry_ended"):
        quantity, price = trade.get("quantity"), trade.get("entry_price")
        notify(
            writer,
            db,
            uid,
            f"entry-filled-{trade_id}",
            ENTRY_FILLED,
            f"Your {mode} trade {_bought(side)} {quantity} {symbol} at {money(price)}.",
            at,
            quantity=quantity,
            price=price,
            **about,
        )
    elif event in ("exit_filled", "shadow_exit", "resting_filled"):
        pnl = trade.get("realized_pnl")
        # a paper trade holds 0 once closed: what closed is what its entry filled
        closed = trade.get("filled_qty") if at_broker(mode) else trade.get("quantity")
        message = (
            f"Your {mode} trade {_bought(side, closing=True)} {closed} {symbol} at "
            f"{money(trade.get('exit_price'))}, closing the position: realized P&L {money(pnl)}."
        )
        notify(
            writer,
            db,
            uid,
            f"exit-filled-{trade_id}",
            EXIT_FILLED,
            f"{message} Why: {reason}." if reason else message,
            at,
            quantity=closed,
            price=trade.get("exit_price"),
            realized_pnl=pnl,
            **about,
        )
    elif event == "entry_unfilled":
        notify(
            writer,
            db,
            uid,
            f"order-ended-{trade_id}-open",
            ORDER_ENDED,
            f"Your order to {'buy' if side == 'BUY' else 'sell'} {trade.get('ordered_qty')} "
            f"{symbol} ended with nothing filled: {reason}",
            at,
            **about,
        )
    elif event == "exit_failed":
        _close_failed(writer, db, uid, trade_id, trade, reason, at, about)


CLOSE_TRIES = 5
"""How many closing orders a trade's close is sent as (a refused or expired one is sent again
by the next runs, a new one at a time) before the product stops and asks the person."""


def _close_failed(
    writer: Writer,
    db: firestore.Client,
    uid: str,
    trade_id: str,
    trade: dict[str, Any],
    reason: str,
    at: datetime,
    about: dict[str, Any],
) -> None:
    """A person hears of a failing close twice at most: when it first fails, and when the
    product stops trying."""
    attempt = trade.get("close_attempts") or 1
    symbol = about["symbol"]
    if attempt == 1:
        message = (
            f"Closing your {symbol} position failed: {reason}. It is tried again at the next "
            f"runs while the market is open, up to {CLOSE_TRIES} times."
        )
        notify(writer, db, uid, f"exit-failed-{trade_id}-1", EXIT_FAILED, message, at, **about)
    elif attempt >= CLOSE_TRIES:
        message = (
            f"Closing your {symbol} position failed {attempt} times, and the product has "
            f"stopped trying: {reason}. Close it at Alpaca yourself and then mark the trade "
            "closed, or press Close to try again."
        )
        notify(
            writer, db, uid, f"exit-failed-{trade_id}-{attempt}", EXIT_FAILED, message, at, **about
        )


def risk_tripped(
    writer: Writer,
    db: firestore.Client,
    uid: str,
    limit: str,
    reason: str,
    run_id: str,
    at: datetime,
) -> None:
    name = LIMIT_NAMES.get(limit, "risk")
    notify(
        writer,
        db,
        uid,
        f"risk-tripped-{run_id}",
        RISK_TRIPPED,
        f"Your {name} limit switched your trading off: {reason}. Positions you hold keep their "
        "exits; switch Trading enabled back on when you are ready.",
        at,
        limit=limit,
    )


def position_mismatch(
    writer: Writer,
    db: firestore.Client,
    uid: str,
    symbol: str,
    broker_qty: str,
    book_qty: str,
    day: str,
    at: datetime,
) -> None:
    """A new difference between what Alpaca holds and what the person's paper trades hold
    (one a symbol and trading day)."""
    notify(
        writer,
        db,
        uid,
        f"mismatch-{symbol}-{day}",
        POSITION_MISMATCH,
        f"Your Alpaca account holds {broker_qty} {symbol} but this site's trades hold "
        f"{book_qty}: no new positions are opened in {symbol} until they agree again.",
        at,
        symbol=symbol,
        broker_qty=broker_qty,
        book_qty=book_qty,
    )


def sync_failing(
    writer: Writer,
    db: firestore.Client,
    uid: str,
    code: str,
    reason: str,
    since: datetime,
    at: datetime,
) -> None:
    """Their syncs have failed since `since`, `FAILING_TOLD_AFTER` or more (one a failing
    spell: the id is the spell's start)."""
    minutes = int((at - since).total_seconds() // 60)
    notify(
        writer,
        db,
        uid,
        f"sync-failing-{int(since.timestamp())}",
        SYNC_FAILING,
        f"Your account has not synced for {minutes} minutes: {reason.rstrip('.')}. Nothing "
        "is traded for you until it syncs again.",
        at,
        code=code,
        failing_since=since,
    )


def daily_summary(
    writer: Writer,
    db: firestore.Client,
    uid: str,
    day: str,
    equity: Any,
    day_pnl: Any,
    opened: int,
    closed: int,
    at: datetime,
) -> None:
    """The trading day `day` after its close (one a day)."""
    trades = f"{_count(opened, 'trade')} opened and {closed} closed"
    notify(
        writer,
        db,
        uid,
        f"daily-summary-{day}",
        DAILY_SUMMARY,
        f"Your day, {day}: equity {money(equity)}, the day's P&L {money(day_pnl)}, {trades}.",
        at,
        day=day,
        equity=equity,
        day_pnl=day_pnl,
        trades_opened=opened,
        trades_closed=closed,
    )


def webhook_off(
    writer: Writer, db: firestore.Client, uid: str, event_id: str, attempts: int, at: datetime
) -> None:
    """Their webhook failed `attempts` times for one event and was switched off."""
    notify(
        writer,
        db,
        uid,
        f"webhook-off-{event_id}",
        WEBHOOK_OFF,
        f"Your webhook was switched off: it did not take a notification in {attempts} tries. "
        "Check it, then save your notification settings to switch it on again.",
        at,
        about=event_id,
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def entry_skipped(
    writer: Writer, db: firestore.Client, uid: str, trade_id: str, symbol: str, why: str,
    at: datetime,
) -> None:  # fmt: skip
    """A live entry was not made, and why: created once for each strategy, symbol and trading
    day (a later run's create fails the commit; one already read stays read)."""
    message = f"Your live strategy did not open a position in {symbol}: {why}."
    figures = {"trade_id": trade_id, "symbol": symbol, "mode": "live"}
    ref = paths.notifications(db, uid).document(f"entry-skipped-{trade_id}")
    writer.create(ref, _notification(ENTRY_SKIPPED, message, at, figures))
