"""Risk limits: checked before every entry that is due (position size, trades per day) and on
every pulse (today's loss, drawdown from the peak), on two books: the Alpaca account (what
paper strategies and anything else in it do) and the shadow book (shadow trades, which Alpaca
never sees). A breach switches the person's trading off, which stops entries, never the exits
that protect what they hold; it says why where they look and is audited. Only they (or an
admin) switch it back on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from google.cloud import firestore

from agenttrader.bot import notices
from agenttrader.bot.settings import RiskLimits
from agenttrader.broker.answers import AccountSnapshot
from agenttrader.core.errors import ErrorCode
from agenttrader.core.money import cents, percent
from agenttrader.store import paths, switches
from agenttrader.store.audit import audit_event
from agenttrader.store.models import set_sync_error


@dataclass(frozen=True)
class Breach:
    limit: str
    """The field of `settings/risk` that was breached."""
    reason: str


def on_pulse(limits: RiskLimits, account: AccountSnapshot, peak: Decimal | None) -> Breach | None:
    loss = cents(account.last_equity - account.equity)
    if loss > limits.max_daily_loss_usd:
        return Breach(
            "max_daily_loss_usd",
            f"today's loss ${loss} (equity ${cents(account.equity)} against yesterday's close "
            f"${cents(account.last_equity)}) is over your limit ${limits.max_daily_loss_usd}",
        )
    if peak is not None and peak > 0 and account.equity < peak:
        drawdown = percent((peak - account.equity) / peak * 100)
        if drawdown > limits.max_drawdown_pct:
            return Breach(
                "max_drawdown_pct",
                f"equity ${cents(account.equity)} is {drawdown}% below its peak ${cents(peak)}; "
                f"your limit is {limits.max_drawdown_pct}%",
            )
    return None


def on_shadow_book(
    limits: RiskLimits, pnl: Decimal, day_start: Decimal, base: Decimal, peak: Decimal
) -> Breach | None:
    """The shadow book: today's loss is its P&L at the day's first run minus its P&L now; its
    equity is `base` (the account's equity when it was first watched) plus its P&L."""
    loss = cents(day_start - pnl)
    if loss > limits.max_daily_loss_usd:
        return Breach(
            "max_daily_loss_usd",
            f"your shadow trades lost ${loss} today, over your limit ${limits.max_daily_loss_usd}",
        )
    equity = base + pnl
    if peak > 0 and equity < peak:
        drawdown = percent((peak - equity) / peak * 100)
        if drawdown > limits.max_drawdown_pct:
            return Breach(
                "max_drawdown_pct",
                f"your shadow book (${cents(equity)}) is {drawdown}% below its peak "
                f"${cents(peak)}; your limit is {limits.max_drawdown_pct}%",
            )
    return None


def before_entry(
    limits: RiskLimits, symbol: str, notional: Decimal, entries_today: int
) -> Breach | None:
    if notional > limits.max_position_usd:
        return Breach(
            "max_position_usd",
            f"an entry in {symbol} of ${cents(notional)} is over your position limit "
            f"${limits.max_position_usd}",
        )
    if entries_today >= limits.max_trades_per_day:
        return Breach(
            "max_trades_per_day",
            f"{entries_today} entries today already reach your limit of "
            f"{limits.max_trades_per_day} a day (next: {symbol})",
        )
    return None


def trip(db: firestore.Client, uid: str, breach: Breach, now: datetime, run_id: str) -> None:
    """Switch the person's trading off with the limit and the reason, show it as their sync
    error, and audit it: one commit."""
    batch = db.batch()
    switches.set_trading(batch, db, uid, False, now, tripped_by=breach.limit, reason=breach.reason)
    set_sync_error(
        batch,
        db,
        uid,
        ErrorCode.RISK_LIMIT_TRIPPED,
        f"trading switched off: {breach.reason}",
        now,
        run_id,
    )
    # not healthy: the next successful sync (once they switch back on) clears the error
    batch.set(paths.user(db, uid), {"sync_state": "tripped"}, merge=True)
    audit_event(
        batch,
        db,
        uid,
        "risk_limit_tripped",
        now,
        "pulse",
        {"limit": breach.limit, "reason": breach.reason, "run_id": run_id},
    )
    notices.risk_tripped(batch, db, uid, breach.limit, breach.reason, run_id, now)
    batch.commit()
