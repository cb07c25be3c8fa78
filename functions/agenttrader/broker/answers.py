"""What Alpaca answers, as the product keeps it: the account, daily bars, the market clock and
an order's state, each checked as it is read (money exact, never a float)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agenttrader.core.money import decimal

MONEY_FIELDS = (
    "equity",
    "cash",
    "buying_power",
    "portfolio_value",
    "last_equity",
    "long_market_value",
    "short_market_value",
)
"""The account's amounts of money, kept exactly."""


class AccountSnapshot(BaseModel):
    """The account fields the product keeps, as Alpaca reports them."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    account_id: str = Field(default="", validation_alias="id")
    """Alpaca's id of the account (its number is what people read)."""
    account_number: str
    status: str
    currency: str
    equity: Decimal
    cash: Decimal
    buying_power: Decimal
    portfolio_value: Decimal
    last_equity: Decimal
    long_market_value: Decimal = Decimal(0)
    short_market_value: Decimal = Decimal(0)
    trading_blocked: bool
    account_blocked: bool = False
    shorting_enabled: bool | None = None
    """Whether the account may sell short (None: Alpaca did not say)."""
    # Deprecated by Alpaca: kept in the snapshot when present, never used in a decision.
    pattern_day_trader: bool | None = None
    daytrade_count: int | None = None

    @field_validator(*MONEY_FIELDS, mode="before")
    @classmethod
    def _exact(cls, value: Any) -> Decimal:
        return decimal(value)


NEW_YORK = ZoneInfo("America/New_York")
"""The market's time zone: trading days are New York dates."""
ADJUSTED = "all"
"""Daily bars as Alpaca adjusts them for splits and dividends: a split is not a crash to a
strategy, live or in a backtest."""


class Bar(BaseModel):
    """One OHLCV bar."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    t: datetime
    o: Decimal
    h: Decimal
    low: Decimal
    c: Decimal
    v: int

    @classmethod
    def from_alpaca(cls, raw: dict[str, Any]) -> Bar:
        return cls(
            t=raw["t"],
            o=decimal(raw["o"]),
            h=decimal(raw["h"]),
            low=decimal(raw["l"]),
            c=decimal(raw["c"]),
            v=int(raw["v"]),
        )


class MarketClock(BaseModel):
    """Alpaca's market clock: whether the US equity market is open, and its next open and
    close (holidays and daylight saving are Alpaca's to get right)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    is_open: bool
    next_open: datetime
    next_close: datetime


class OrderState(BaseModel):
    """An order as Alpaca reports it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    client_order_id: str
    symbol: str
    side: str
    status: str
    """new, accepted, partially_filled, filled, canceled, expired, rejected, ..."""
    qty: Decimal | None = None
    filled_qty: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    filled_at: datetime | None = None
    type: str = "market"
    stop_price: Decimal | None = None
    limit_price: Decimal | None = None
    legs: list[OrderState] = Field(default_factory=list)
    """An OCO's other leg(s), under the parent Alpaca answers with."""

    @field_validator("qty", "filled_qty", "filled_avg_price", "stop_price", "limit_price",
                     mode="before")  # fmt: skip
    @classmethod
    def _exact(cls, value: Any) -> Decimal | None:
        return None if value is None else decimal(value)

    @field_validator("legs", mode="before")
    @classmethod
    def _no_legs(cls, value: Any) -> Any:
        return [] if value is None else value

    @property
    def group(self) -> list[OrderState]:
        """The order and its legs."""
        return [self, *self.legs]

    @property
    def all_final(self) -> bool:
        """Alpaca will change neither the order nor any of its legs again."""
        return all(o.final for o in self.group)

    @property
    def final(self) -> bool:
        """Alpaca will not change this order again."""
        return self.status in FINAL_ORDER_STATES


FINAL_ORDER_STATES = ("filled", "canceled", "expired", "rejected", "done_for_day")
