"""A person's statistics (`stats/summary`) and their equity curve (`equity/{day}`), kept
exactly and incrementally, so a refresh reads no history beyond the closed trades it has not
counted yet. Pure: no clients, no clock.

- realized P&L: the sum of `realized_pnl` over closed trades; unrealized: over open ones;
- win rate: closed trades with `realized_pnl > 0`, over trades closed, in percent;
- drawdown at a point: `(peak - equity) / peak * 100`, peak the highest equity seen up to it;
  `max_drawdown_pct` the largest of these;
- daily return of day d: `equity_d / equity_(d-1) - 1` over consecutive points, counted once
  the day is over; `sharpe_daily`: their mean over their sample standard deviation (n - 1),
  not annualised; none before two returns or when they do not vary.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from agenttrader.core.money import cents, decimal, percent, plain
from agenttrader.store.totals import ClosedTotals

RATIO_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class Performance:
    """`stats/summary`: the published figures and the running sums they come from."""

    realized_pnl: Decimal = Decimal(0)
    unrealized_pnl: Decimal = Decimal(0)
    trades_closed: int = 0
    wins: int = 0
    closed_version: int | None = None
    """The `trades_version` the closed-trade figures were counted at."""
    peak_equity: Decimal | None = None
    max_drawdown_pct: Decimal = Decimal(0)
    point_day: str | None = None
    """The latest equity point's day and equity (today's, while the day lasts)."""
    point_equity: Decimal | None = None
    previous_close: Decimal | None = None
    """The equity of the point before it (the last finished day)."""
    returns_n: int = 0
    returns_sum: Decimal = Decimal(0)
    returns_sumsq: Decimal = Decimal(0)
    shadow_realized: Decimal = Decimal(0)
    """The shadow book (shadow trades, which Alpaca never sees): realized P&L of its closed
    trades; its equity is `shadow_base` plus its P&L, `shadow_base` the account's equity when
    the book was first watched."""
    shadow_base: Decimal | None = None
    shadow_peak: Decimal | None = None
    shadow_day: str | None = None
    shadow_day_start: Decimal | None = None
    live_realized: Decimal = Decimal(0)
    """What the closed live trades realized (real money): shown apart from the rest."""
    """The shadow book's P&L at the first run of `shadow_day`."""

    @property
    def win_rate(self) -> Decimal | None:
        if not self.trades_closed:
            return None
        return percent(Decimal(self.wins) / self.trades_closed * 100)

    @property
    def sharpe_daily(self) -> Decimal | None:
        n = self.returns_n
        if n < 2:
            return None
        mean = self.returns_sum / n
        variance = (self.returns_sumsq - self.returns_sum * self.returns_sum / n) / (n - 1)
        if variance <= 0:
            return None
        return (mean / variance.sqrt()).quantize(RATIO_PLACES)

    def observe(self, day: str, equity: Decimal) -> Performance:
        """Today's equity: moves today's point, or closes the last day's and starts a new one
        (folding the finished day's return into the sums), and updates peak and drawdown."""
        state = self
        if state.point_day is not None and day > state.point_day:
            state = state.end_of_day()
        peak = equity if state.peak_equity is None else max(state.peak_equity, equity)
        drawdown = percent((peak - equity) / peak * 100) if peak > 0 else Decimal(0)
        return replace(
            state,
            point_day=day,
            point_equity=equity,
            peak_equity=peak,
            max_drawdown_pct=max(state.max_drawdown_pct, drawdown),
        )

    def end_of_day(self) -> Performance:
        """The latest point as a finished day: its return (over the day before) folded into
        the sums, and it becomes the previous close."""
        finished = self.point_equity
        if not finished:
            return self
        state = self
        if state.previous_close:
            r = finished / state.previous_close - 1
            state = replace(
                state,
                returns_n=state.returns_n + 1,
                returns_sum=state.returns_sum + r,
                returns_sumsq=state.returns_sumsq + r * r,
            )
        return replace(state, previous_close=finished)

    def observe_shadow(self, day: str, pnl: Decimal, account_equity: Decimal) -> Performance:
        """The shadow book's P&L now: fixes its base the first time, its P&L at the day's
        first run, and its peak."""
        base = account_equity if self.shadow_base is None else self.shadow_base
        start = self.shadow_day_start if self.shadow_day == day else pnl
        equity = base + pnl
        peak = equity if self.shadow_peak is None else max(self.shadow_peak, equity)
        return replace(
            self, shadow_base=base, shadow_peak=peak, shadow_day=day, shadow_day_start=start
        )

    def with_closed(self, totals: ClosedTotals, version: int | None) -> Performance:
        return replace(
            self,
            shadow_realized=cents(totals.shadow),
            live_realized=cents(totals.live),
            realized_pnl=cents(totals.realized),
            trades_closed=totals.count,
            wins=totals.wins,
            closed_version=version,
        )

    def document(self, now: datetime) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for name, value in asdict(self).items():
            doc[name] = plain(value) if isinstance(value, Decimal) else value
        win_rate, sharpe = self.win_rate, self.sharpe_daily
        doc.update(
            realized_pnl=plain(cents(self.realized_pnl)),
            unrealized_pnl=plain(cents(self.unrealized_pnl)),
            win_rate=None if win_rate is None else plain(win_rate),
            sharpe_daily=None if sharpe is None else plain(sharpe),
            updated_at=now,
        )
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any] | None) -> Performance:
        if not doc:
            return cls()
        fields: dict[str, Any] = {}
        for name, default in asdict(cls()).items():
            value = doc.get(name, default)
            if isinstance(default, Decimal) or name in (
                "peak_equity",
                "point_equity",
                "previous_close",
                "shadow_base",
                "shadow_peak",
                "shadow_day_start",
            ):
                value = None if value is None else decimal(value)
            fields[name] = value
        return cls(**fields)
