"""A person's strategies and risk limits as stored, and the version that tells the pulse when
to read them again (`bot_version` in the profile, bumped by every change to either)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from google.cloud import firestore
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agenttrader.core.money import decimal, plain
from agenttrader.store import paths
from agenttrader.store.firestore_io import fields_of
from agenttrader.store.models import Writer

Mode = Literal["shadow", "paper", "live"]
Status = Literal["active", "paused", "error"]
MAX_SYMBOLS = 20


class StrategyDoc(BaseModel):
    """`users/{uid}/strategies/{id}` as the pulse reads it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    strategy: str
    symbols: list[str] = Field(min_length=1, max_length=MAX_SYMBOLS)
    allocation_usd: Decimal = Field(gt=0)
    mode: Mode
    status: Status
    take_profit_pct: Decimal | None = None
    stop_loss_pct: Decimal | None = None
    allow_short: bool = False
    """A SELL with nothing held opens a short position only when this is on (long-only by
    default)."""
    last_error: dict[str, Any] | None = None
    last_decisions: dict[str, str] | None = None
    """Its last evaluation as the statistics' writer left it: each symbol's decision."""

    @field_validator("allocation_usd", "take_profit_pct", "stop_loss_pct", mode="before")
    @classmethod
    def _exact(cls, value: Any) -> Decimal | None:
        return None if value is None else decimal(value)

    @property
    def runs(self) -> bool:
        """Evaluated by the pulse: active, or in error from a fault that may pass (a 500, a
        timeout), which it recovers from by itself."""
        if self.status == "active":
            return True
        return self.status == "error" and bool((self.last_error or {}).get("retry"))


class RiskLimits(BaseModel):
    """`users/{uid}/settings/risk`; a missing document (or field) means these defaults."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    max_position_usd: Decimal = Decimal("10000")
    """The most one entry may commit (quantity × price)."""
    max_daily_loss_usd: Decimal = Decimal("2000")
    """Today's loss (yesterday's closing equity minus equity now) that switches trading off."""
    max_drawdown_pct: Decimal = Decimal("20")
    """Fall from the peak of the equity points, in percent, that switches trading off."""
    max_trades_per_day: int = 10
    """Entries the strategies may make in one trading day."""

    @field_validator("max_position_usd", "max_daily_loss_usd", "max_drawdown_pct", mode="before")
    @classmethod
    def _exact(cls, value: Any) -> Decimal:
        return decimal(value)

    def document(self) -> dict[str, Any]:
        return {
            "max_position_usd": plain(self.max_position_usd),
            "max_daily_loss_usd": plain(self.max_daily_loss_usd),
            "max_drawdown_pct": plain(self.max_drawdown_pct),
            "max_trades_per_day": self.max_trades_per_day,
        }


DEFAULT_LIMITS = RiskLimits()


@dataclass(frozen=True)
class BotConfig:
    """Everything a person set up for the bot, for one `bot_version`."""

    version: int
    strategies: tuple[tuple[str, StrategyDoc], ...]
    limits: RiskLimits
    unreadable: tuple[str, ...] = ()
    """Strategy ids whose documents do not parse (skipped, logged)."""

    @property
    def running(self) -> list[tuple[str, StrategyDoc]]:
        return [(sid, s) for sid, s in self.strategies if s.runs]


def bot_version(profile: Mapping[str, Any] | None) -> int | None:
    version = (profile or {}).get("bot_version")
    return version if isinstance(version, int) else None


def bump_bot_version(writer: Writer, db: firestore.Client, uid: str) -> None:
    """In the same commit as any change to a strategy or the risk limits."""
    writer.set(paths.user(db, uid), {"bot_version": firestore.Increment(1)}, merge=True)


def read_limits(doc: firestore.DocumentSnapshot[Any]) -> RiskLimits:
    if not doc.exists:
        return DEFAULT_LIMITS
    try:
        return RiskLimits.model_validate(fields_of(doc))
    except ValidationError:
        return DEFAULT_LIMITS


def bot_config(
    version: int,
    strategy_docs: Iterable[firestore.DocumentSnapshot[Any]],
    limits_doc: firestore.DocumentSnapshot[Any],
) -> BotConfig:
    """A person's settings from their strategy documents and their risk limits document."""
    strategies = []
    unreadable = []
    for doc in strategy_docs:
        try:
            strategies.append((doc.id, StrategyDoc.model_validate(fields_of(doc))))
        except ValidationError:
            unreadable.append(doc.id)
    return BotConfig(version, tuple(sorted(strategies)), read_limits(limits_doc), tuple(unreadable))


def load_bot_config(db: firestore.Client, uid: str, version: int) -> BotConfig:
    """Read a person's strategies and limits (one query and one read)."""
    return bot_config(
        version, paths.strategies(db, uid).stream(), paths.risk_settings(db, uid).get()
    )
