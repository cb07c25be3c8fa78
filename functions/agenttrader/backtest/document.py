"""A backtest as stored at `users/{uid}/backtests/{id}` (read by its owner's page) and as the
callable answers it. Money and quantities are plain decimal strings, days ISO dates."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from agenttrader.backtest.engine import FILLS, Result, Statistics, Trade
from agenttrader.core.money import cents, plain

MAX_TRADES_STORED = 2000
"""The most trades one document keeps (the first ones, oldest first), well inside Firestore's
1 MiB a document; `trades_total` counts them all."""


def _value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return plain(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def statistics_document(stats: Statistics) -> dict[str, Any]:
    return {name: _value(value) for name, value in asdict(stats).items()}


def trade_document(trade: Trade) -> dict[str, Any]:
    return {name: _value(value) for name, value in asdict(trade).items()}


def shown(result: Result) -> dict[str, Any]:
    """What the callable answers besides the id: both sets of statistics and the counts."""
    return {
        "statistics": statistics_document(result.statistics),
        "buy_and_hold": statistics_document(result.buy_and_hold_statistics),
        "initial_equity": plain(result.initial_equity),
        "days": len(result.days),
        "trades_total": len(result.trades),
    }


def backtest_document(parameters: dict[str, Any], result: Result, now: datetime) -> dict[str, Any]:
    return {
        "parameters": parameters,
        "fills": FILLS,
        "created_at": now,
        **shown(result),
        "curve": {
            "days": [d.isoformat() for d in result.days],
            "equity": [plain(cents(v)) for v in result.equity],
            "buy_and_hold": [plain(cents(v)) for v in result.buy_and_hold],
        },
        "trades": [trade_document(t) for t in result.trades[:MAX_TRADES_STORED]],
    }
