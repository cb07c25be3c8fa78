"""Signal strategies: rules that turn recent daily bars into BUY, SELL or HOLD with a reason.

Add one by writing a class with `id`, `lookback_days` and `decide`, and listing it in
`STRATEGIES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol

from agenttrader.broker.answers import Bar
from agenttrader.core.money import percent

Action = Literal["BUY", "SELL", "HOLD"]


@dataclass(frozen=True)
class Decision:
    """What a strategy concluded and why."""

    action: Action
    """BUY, SELL or HOLD."""
    reason: str
    """One sentence a person can read."""


class Strategy(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def lookback_days(self) -> int: ...

    def decide(self, bars: list[Bar]) -> Decision: ...


@dataclass(frozen=True)
class Momentum:
    """Follow the trend: buy after a strong rise over the lookback, sell after a strong fall."""

    id: str = "momentum_20d"
    lookback_days: int = 21
    threshold_pct: Decimal = Decimal(3)

    def decide(self, bars: list[Bar]) -> Decision:
        if len(bars) < self.lookback_days:
            return Decision("HOLD", f"not enough history: {len(bars)} of {self.lookback_days} days")
        first, last = bars[-self.lookback_days].c, bars[-1].c
        change = percent((last - first) / first * 100)
        span = f"{self.lookback_days - 1}-day change {change}%"
        if change >= self.threshold_pct:
            return Decision("BUY", f"{span} is at or above +{self.threshold_pct}%: momentum up")
        if change <= -self.threshold_pct:
            return Decision("SELL", f"{span} is at or below -{self.threshold_pct}%: momentum down")
        return Decision("HOLD", f"{span} is within ±{self.threshold_pct}%: no clear trend")


@dataclass(frozen=True)
class MeanReversion:
    """Fade extremes: buy well below the recent average, sell well above it (z-score)."""

    id: str = "mean_reversion_20d"
    lookback_days: int = 20
    z_threshold: Decimal = Decimal("1.5")

    def decide(self, bars: list[Bar]) -> Decision:
        if len(bars) < self.lookback_days:
            return Decision("HOLD", f"not enough history: {len(bars)} of {self.lookback_days} days")
        closes = [b.c for b in bars[-self.lookback_days :]]
        mean = sum(closes, Decimal(0)) / len(closes)
        variance = sum(((c - mean) ** 2 for c in closes), Decimal(0)) / len(closes)
        std = variance.sqrt()
        if std == 0:
            return Decision("HOLD", "prices did not move over the lookback")
        z = ((closes[-1] - mean) / std).quantize(Decimal("0.01"))
        where = f"close is {z} standard deviations from its {self.lookback_days}-day mean"
        if z <= -self.z_threshold:
            return Decision("BUY", f"{where}: stretched low, expect reversion up")
        if z >= self.z_threshold:
            return Decision("SELL", f"{where}: stretched high, expect reversion down")
        return Decision("HOLD", f"{where}: within ±{self.z_threshold}")


STRATEGIES: dict[str, Strategy] = {s.id: s for s in (Momentum(), MeanReversion())}
DEFAULT_STRATEGY = Momentum.id


def registered(value: str) -> str:
    """A strategy id a caller gave, if it is in the registry."""
    if value not in STRATEGIES:
        raise ValueError("choose one of the strategies the page lists")
    return value
