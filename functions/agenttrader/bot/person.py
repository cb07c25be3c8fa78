"""One person's run of the bot: what every step of it works with (the person, their broker,
the run's day and market), and how a strategy's step fails."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from google.cloud import firestore

from agenttrader.bot import live
from agenttrader.broker.alpaca import AlpacaBroker
from agenttrader.broker.answers import NEW_YORK, Bar
from agenttrader.broker.keystore import AlpacaKeys
from agenttrader.context.platform import Platform
from agenttrader.core.errors import AgentTraderError, ErrorCode
from agenttrader.store import paths

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
    account_id: str = ""
    """Alpaca's id of that account."""
    broker_held: dict[str, Decimal] = field(default_factory=dict)
    """What Alpaca holds (signed) of each symbol that differs from the book: exits in it are
    sized to this, never past zero."""

    closes_at: datetime | None = None
    """When this session closes; orders stop leaving `LAST_SEND` before."""
    consent: dict[str, Any] | None = None
    """The person's consent to live orders as read this run (`live_consent`)."""
    consent_read: bool = False

    def live_consent(self) -> dict[str, Any] | None:
        """Their consent to live orders (`settings/live`), read once a run, when first asked."""
        if not self.consent_read:
            doc = paths.live_settings(self.db, self.uid).get()
            self.consent, self.consent_read = (doc.to_dict() if doc.exists else None), True
        return self.consent

    def live_refusal(self, order: dict[str, Any] | None = None) -> str | None:
        """Why no live entry (`order`, when one is about to leave) may be sent now: the
        operator's switch, the person's consent, the account these keys open being the one
        they consented for and the one the order was decided for. None: it may."""
        why = live.refusal(self.platform.live_trading, self.live_consent(), self.account_id)
        if why is None and order is not None and order.get("account_id") != self.account_id:
            return OtherAccount(str(order.get("account_number") or ""), self.account_number).message
        return why

    def may_send(self) -> bool:
        """An order may leave now: the market is open and its close is not a minute away
        (asked at each send: a run that started at 15:59:05 stops sending)."""
        if not self.day:
            return False
        return self.closes_at is None or self.platform.now() < self.closes_at - LAST_SEND

    def exit_room(self, symbol: str, side: str) -> Decimal | None:
        """How much an exit of a `side` position in `symbol` may sell (or buy back) while the
        symbol differs from Alpaca's position: what Alpaca holds on that side, less what this
        run's exits took already; None while there is no difference."""
        held = self.broker_held.get(symbol)
        if held is None:
            return None
        on_side = held if side == "BUY" else -held
        return max(on_side, Decimal(0))

    def exited(self, symbol: str, quantity: Decimal) -> None:
        """An exit in a symbol that differs took `quantity` of what Alpaca holds."""
        held = self.broker_held.get(symbol)
        if held is not None:
            self.broker_held[symbol] = held - quantity if held > 0 else held + quantity

    def account_fields(self) -> dict[str, Any]:
        """What a trade or an order records of the account it is made in."""
        return {
            "account_id": self.account_id,
            "account_number": self.account_number,
            "paper": bool(self.keys.paper),
        }

    def opens(self, doc: dict[str, Any]) -> bool:
        """These keys open the Alpaca account the trade or order `doc` was made in (one from
        before they recorded it was made with paper keys: it belongs to a paper account)."""
        number = doc.get("account_number")
        if number:
            return bool(self.account_number) and number == self.account_number
        return bool(self.keys.paper)

    def other_account(self, doc: dict[str, Any]) -> OtherAccount:
        return OtherAccount(str(doc.get("account_number") or ""), self.account_number)

    @property
    def db(self) -> firestore.Client:
        return self.platform.db


def other_account_flag(held_in: str, keys_open: str, now: datetime) -> dict[str, Any]:
    """What a trade says while the keys saved open another account than the one holding it
    (`other_account`: shown on the page, in words)."""
    return {
        "held_in": held_in,
        "keys_open": keys_open,
        "message": OtherAccount(held_in, keys_open).message,
        "at": now,
    }


def last4(account_number: str) -> str:
    return account_number[-4:] if account_number else "?"


class OtherAccount(AgentTraderError):
    """The keys in use open another Alpaca account than the one a position is held in:
    nothing is sent, cancelled or replaced for it."""

    def __init__(self, held_in: str, keys_open: str) -> None:
        where = f"Alpaca account ending {last4(held_in)}" if held_in else "a paper account"
        super().__init__(
            ErrorCode.OTHER_ACCOUNT,
            f"this position is held in {where}, but the keys saved now open account ending "
            f"{last4(keys_open)}: save the keys of the account that holds it again, or mark "
            "the trade closed by hand if you closed it at Alpaca",
        )
        self.held_in = held_in
        self.keys_open = keys_open


class StrategyFailure(AgentTraderError):
    """A strategy cannot run; `retry`: a later run may succeed without the person."""

    def __init__(self, code: ErrorCode, message: str, retry: bool = False) -> None:
        super().__init__(code, message)
        self.retry = retry
