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
    closes_at: datetime | None = None
    """When the session closes (from the clock or the calendar); None: not known."""


LAST_SEND = timedelta(minutes=1)
"""No order is sent when the session's close is less than this away: a day market order that
reached Alpaca after the close would wait for the next open and fill on an old decision."""


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
    account_number: str = ""
    """The Alpaca account these keys open (from this run's snapshot)."""

    closes_at: datetime | None = None
    """When this session closes; orders stop leaving `LAST_SEND` before."""

    def may_send(self) -> bool:
        """An order may leave now: the market is open and its close is not a minute away
        (asked at each send: a run that started at 15:59:05 stops sending)."""
        if not self.day:
            return False
        return self.closes_at is None or self.platform.now() < self.closes_at - LAST_SEND

    def account_fields(self) -> dict[str, object]:
        """What a trade or an order records of the account it is made in."""
        return {"account_number": self.account_number, "paper": bool(self.keys.paper)}

    @property
    def db(self) -> firestore.Client:
        return self.platform.db


class StrategyFailure(AgentTraderError):
    """A strategy cannot run; `retry`: a later run may succeed without the person."""

    def __init__(self, code: ErrorCode, message: str, retry: bool = False) -> None:
        super().__init__(code, message)
        self.retry = retry
