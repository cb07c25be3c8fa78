"""Documents as the product stores them, and their conversions.

Money, prices and quantities are stored as decimal strings ("1234.50") so no reader ever sees a
binary float; booleans, counts and timestamps are native Firestore values.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from google.cloud import firestore
from pydantic import BaseModel, ConfigDict, Field, field_validator

from agenttrader.broker.answers import MONEY_FIELDS, AccountSnapshot
from agenttrader.core.money import cents, decimal, percent, plain, pnl_percent, unrealized_pnl
from agenttrader.store import paths

Writer = firestore.WriteBatch | firestore.Transaction


def keys_version(profile: Mapping[str, Any] | None) -> int | None:
    """The version of a user's saved keys from their profile; None when they never saved any."""
    version = (profile or {}).get("keys_version")
    return version if isinstance(version, int) else None


DEPRECATED_FIELDS = ("pattern_day_trader", "daytrade_count")
"""Account fields Alpaca has deprecated: stored when sent; only a live entry looks at them
(bot.live: a missing count holds a small account's live entries back)."""

BROKER_MODES = ("paper", "live")
"""The modes whose trades are orders in an Alpaca account (the others are shadow trades)."""


def at_broker(mode: object) -> bool:
    """A trade or strategy of this mode holds, orders and rests at Alpaca."""
    return mode in BROKER_MODES


def open_trades_count(profile: Mapping[str, Any] | None) -> int | None:
    """The profile's count of open trades; None when it has none to trust (never counted, or
    a count gone wrong), which the next look at the person's trades counts afresh."""
    count = (profile or {}).get("open_trades")
    return count if isinstance(count, int) and count >= 0 else None


def count_open_trades(writer: Writer, db: firestore.Client, uid: str, delta: int) -> None:
    """Keep the profile's count of open shadow trades (which spares the pulse a query for a
    person with none) and the version of their set of open trades (which lets an instance
    reuse the trades it read) in the same commit as the trade that opens or closes."""
    writer.set(
        paths.user(db, uid),
        {"open_trades": firestore.Increment(delta), "trades_version": firestore.Increment(1)},
        merge=True,
    )


def set_sync_error(
    writer: Writer,
    db: firestore.Client,
    uid: str,
    code: str,
    message: str,
    at: datetime,
    run_id: str,
) -> None:
    """What the person sees of the last thing that stopped their sync
    (`status/last_sync_error`); the next healthy sync deletes it."""
    writer.set(
        paths.last_sync_error(db, uid),
        {"message": message, "code": code, "at": at, "run_id": run_id},
    )


def snapshot_document(account: AccountSnapshot) -> dict[str, Any]:
    """The stored form of an account snapshot, without its sync time."""
    doc: dict[str, Any] = {name: plain(cents(getattr(account, name))) for name in MONEY_FIELDS}
    doc.update(
        account_number=account.account_number,
        account_id=account.account_id,
        status=account.status,
        currency=account.currency,
        trading_blocked=account.trading_blocked,
        account_blocked=account.account_blocked,
    )
    if account.shorting_enabled is not None:
        doc["shorting_enabled"] = account.shorting_enabled
    for deprecated in DEPRECATED_FIELDS:  # only while Alpaca still sends them
        if getattr(account, deprecated) is not None:
            doc[deprecated] = getattr(account, deprecated)
    return doc


class StoredSnapshot(BaseModel):
    """An account snapshot read back from Firestore."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    buying_power: Decimal
    equity: Decimal
    cash: Decimal
    trading_blocked: bool = False
    account_blocked: bool = False
    synced_at: datetime | None = None

    @field_validator("buying_power", "equity", "cash", mode="before")
    @classmethod
    def _exact(cls, value: Any) -> Decimal:
        return decimal(value)


class ShadowTrade(BaseModel):
    """A shadow trade read back from Firestore."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    symbol: str = Field(min_length=1, max_length=12)
    side: Literal["BUY", "SELL"]
    quantity: Decimal = Field(ge=0)
    """What is held: for a paper trade, what has filled (0 while its entry has not, 0 again
    once it is closed); what was traded is `filled_qty`."""
    filled_qty: Decimal | None = None
    """What a paper trade's entry filled, kept when it closes (None for a shadow trade, whose
    `quantity` never changes)."""
    entry_price: Decimal = Field(gt=0)
    status: Literal["OPEN", "CLOSED"]
    state: str | None = None
    """Its place in the lifecycle (`opening`, `open`, `closing`, `closed`; see bot.lifecycle);
    None for documents written before states existed."""
    mode: str | None = None
    """`paper` or `live` for a trade with orders at Alpaca (`at_broker`); anything else is a
    shadow trade."""
    current_price: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    pnl_percent: Decimal | None = None
    strategy_id: str | None = None
    """The person's strategy that opened it (None: opened by hand from a signal)."""
    take_profit_pct: Decimal | None = None
    stop_loss_pct: Decimal | None = None
    """The exit levels it entered with, in percent of its entry (copied from its strategy)."""
    take_profit_price: Decimal | None = None
    stop_loss_price: Decimal | None = None
    """The prices those levels make from what its entry filled at (see bot.protection)."""
    account_number: str | None = None
    """The Alpaca account it was made in (None: from before trades recorded it)."""
    account_id: str | None = None
    close_reason: str | None = None
    close_attempts: int = 0
    """Closing orders sent for it so far (see bot.protection: a refused close is sent again)."""
    last_close_error: dict[str, Any] | None = None
    """Why its last close failed, while it is held again after it."""
    resting: dict[str, Any] | None = None
    """Its exit resting at Alpaca (see bot.resting): order id, levels in cents, quantity."""
    resting_problem: str | None = None
    """Why no exit rests at Alpaca for it (the pulse's check of its levels still protects it)."""
    resting_refused: dict[str, Any] | None = None
    """The resting exit Alpaca refused (quantity, levels): not asked again until they change."""

    @field_validator(
        "quantity",
        "filled_qty",
        "entry_price",
        "current_price",
        "unrealized_pnl",
        "pnl_percent",
        "take_profit_pct",
        "stop_loss_pct",
        "take_profit_price",
        "stop_loss_price",
        mode="before",
    )
    @classmethod
    def _exact(cls, value: Any) -> Decimal | None:
        return None if value is None else decimal(value)

    def priced(self, price: Decimal) -> dict[str, Any]:
        """The fields that mark this trade to `price`, in stored form."""
        pnl = unrealized_pnl(self.side, self.entry_price, self.quantity, price)
        return {
            "current_price": plain(price),
            "unrealized_pnl": plain(cents(pnl)),
            "pnl_percent": plain(percent(pnl_percent(pnl, self.entry_price, self.quantity))),
        }

    @staticmethod
    def marks(priced: dict[str, Any]) -> dict[str, Decimal]:
        """The stored marks (`priced`'s strings) as the model's Decimal fields."""
        return {k: decimal(v) for k, v in priced.items()}

    def realized_pnl(self, price: Decimal) -> Decimal:
        """Exact P&L of closing at `price`, to the cent."""
        return cents(unrealized_pnl(self.side, self.entry_price, self.quantity, price))

    def closed(self, price: Decimal, now: datetime) -> dict[str, Any]:
        """The fields that close this trade at `price`, in stored form."""
        return {
            "status": "CLOSED",
            "exit_price": plain(price),
            "realized_pnl": plain(self.realized_pnl(price)),
            "closed_at": now,
        }

    def is_priced_at(self, price: Decimal) -> bool:
        stored = {
            "current_price": None if self.current_price is None else plain(self.current_price),
            "unrealized_pnl": None if self.unrealized_pnl is None else plain(self.unrealized_pnl),
            "pnl_percent": None if self.pnl_percent is None else plain(self.pnl_percent),
        }
        return stored == self.priced(price)


def marked_to(
    trades: list[tuple[str, ShadowTrade]], prices: Mapping[str, Decimal]
) -> list[tuple[str, ShadowTrade]]:
    """The open trades marked to `prices` (a trade without a price keeps its marks): what
    the limits, the books and the statistics read of open P&L, never a trade's figures as
    stored when it opened."""
    return [
        (path, trade)
        if price is None or trade.is_priced_at(price)
        else (path, trade.model_copy(update=ShadowTrade.marks(trade.priced(price))))
        for path, trade in trades
        for price in [prices.get(trade.symbol)]
    ]
