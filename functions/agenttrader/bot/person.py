"""One person's run of the bot: what every step of it works with (the person, their broker,
the run's day and market), and how a strategy's step fails."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from google.cloud import firestore

from agenttrader.broker.alpaca import NEW_YORK, AlpacaBroker, Bar
from agenttrader.broker.keystore import AlpacaKeys
from agenttrader.context.platform import Platform
from agenttrader.core.errors import AgentTraderError, ErrorCode

BARS_SINCE = timedelta(days=45)
"""Calendar days of daily bars asked for: more than the longest lookback in trading days."""


def trading_day(now: datetime) -> str:
    """The New York date: the trading day while the market is open."""
    return now.astimezone(NEW_YORK).date().isoformat()


def bars_since(now: datetime) -> datetime:
    return now - BARS_SINCE


@dataclass
class Market:
    """What the pulse knows of the market for this run, shared by everyone it syncs."""

    day: str | None
    """The trading day while the market is open by Alpaca's clock; None: no entries, no exits."""
    bars: dict[str, list[Bar]] = field(default_factory=dict)
    """Daily bars by symbol, asked once for every symbol this instance knows is traded."""


@dataclass
class Person:
    """One person's run of the bot."""

    platform: Platform
    uid: str
    memory_key: str
    keys: AlpacaKeys
    broker: AlpacaBroker
    run_id: str
    now: datetime
    day: str
    """The trading day while the market is open; "" while it is closed (no order leaves)."""
    trades_version: int | None
    entries_today: int | None = None
    changed: bool = False
    """An entry, an exit or a fill happened: the books are written this run."""
    entries_allowed: bool = True
    """False while the person's switch is off or a risk limit tripped: exits and orders go
    on (take-profit and stop-loss protect what they hold), entries do not."""
    mismatched: set[str] = field(default_factory=set)
    """Symbols whose position differs from Alpaca's: no entry in them this run."""

    @property
    def db(self) -> firestore.Client:
        return self.platform.db


class StrategyFailure(AgentTraderError):
    """A strategy cannot run; `retry`: a later run may succeed without the person."""

    def __init__(self, code: ErrorCode, message: str, retry: bool = False) -> None:
        super().__init__(code, message)
        self.retry = retry
