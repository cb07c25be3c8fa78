"""Signals: a strategy's decision sized to what the account can afford, and the documents a
signal and the shadow trade it opens are stored as. Pure: no clients, no clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from agenttrader.bot.strategies import Action, Decision
from agenttrader.core.money import Side, cents, percent, plain
from agenttrader.store.models import StoredSnapshot

MIN_NOTIONAL = Decimal(1)
"""No signal commits less than a dollar."""
QUANTITY_STEP = Decimal("0.0001")
"""Alpaca's smallest fractional share."""


@dataclass(frozen=True)
class Sized:
    """A decision with its size: BUY/SELL with quantity and notional, or HOLD with zeros."""

    action: Action
    reason: str
    quantity: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)


def size(
    decision: Decision,
    snapshot: StoredSnapshot,
    price: Decimal,
    fraction: Decimal,
    max_position: Decimal | None = None,
) -> Sized:
    """A BUY or SELL sized to at most `fraction` of buying power and at most the person's
    position limit (`max_position`), or HOLD with the reason when it cannot be afforded or the
    account may not trade."""
    if decision.action == "HOLD":
        return Sized("HOLD", decision.reason)
    if snapshot.trading_blocked or snapshot.account_blocked:
        return Sized("HOLD", f"{decision.reason}; but your Alpaca account is blocked from trading")
    budget = cents(snapshot.buying_power * fraction)
    if max_position is not None and budget > max_position:
        budget = max_position
    quantity = (budget / price).quantize(QUANTITY_STEP, rounding=ROUND_DOWN)
    if budget < MIN_NOTIONAL or quantity <= 0:
        return Sized(
            "HOLD",
            f"{decision.reason}; but {float(fraction * 100):g}% of buying power "
            f"({snapshot.buying_power}) cannot buy any of it at {price}",
        )
    return Sized(decision.action, decision.reason, quantity, cents(quantity * price))


def opens_trade(sized: Sized, wanted: bool) -> bool:
    """A signal opens a shadow trade when the person asked for one and it is not a HOLD."""
    return wanted and sized.action != "HOLD"


def signal_document(
    symbol: str,
    sized: Sized,
    price: Decimal,
    strategy_id: str,
    buying_power: Decimal,
    opened_trade: bool,
    now: datetime,
) -> dict[str, Any]:
    """The stored form of `users/{uid}/signals/{id}` (immutable once written)."""
    return {
        "symbol": symbol,
        "action": sized.action,
        "notional_usd": plain(sized.notional),
        "quantity": plain(sized.quantity),
        "price": plain(price),
        "reason": sized.reason,
        "strategy_id": strategy_id,
        "buying_power": plain(buying_power),
        "status": "SHADOW_OPENED" if opened_trade else "NEW",
        "created_at": now,
    }


def shadow_trade_document(
    symbol: str,
    side: Side,
    quantity: Decimal,
    entry_price: Decimal,
    now: datetime,
    signal_id: str | None = None,
) -> dict[str, Any]:
    """The stored form of a newly opened `users/{uid}/shadowTradeHistory/{id}`, priced at its
    entry (P&L 0.00) until the pulse moves it."""
    doc: dict[str, Any] = {
        "symbol": symbol,
        "side": side,
        "quantity": plain(quantity),
        "entry_price": plain(entry_price),
        "status": "OPEN",
        "created_at": now,
        # priced at its entry the moment it opens; the pulse moves it from there
        "current_price": plain(entry_price),
        "unrealized_pnl": plain(cents(Decimal(0))),
        "pnl_percent": plain(percent(Decimal(0))),
        "last_priced_at": now,
    }
    if signal_id is not None:
        doc["signal_id"] = signal_id
    return doc
