"""A backtest as stored at `users/{uid}/backtests/{id}` (read by its owner's page), its trades
in pages at `users/{uid}/backtests/{id}/trades/{page}`, and as the callable answers it. Money
and quantities are plain decimal strings at full precision, days ISO dates."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from agenttrader.backtest.engine import FILLS, Result, Statistics, Trade
from agenttrader.core.money import plain

TRADES_PER_PAGE = 250
"""Trades a page document keeps (about 90 KiB, well inside Firestore's 1 MiB a document). A
backtest's most (20 symbols, 5 years, a trade at least every other day: about 12,600) are 51
pages, written with the backtest in one commit."""


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
            "equity": [plain(v) for v in result.equity],
            "buy_and_hold": [plain(v) for v in result.buy_and_hold],
        },
        "trades_per_page": TRADES_PER_PAGE,
        "trade_pages": len(trade_pages(result)),
    }


def page_id(index: int) -> str:
    return f"{index:04d}"


def trade_pages(result: Result) -> list[dict[str, Any]]:
    """The trades, oldest first (by entry day, then symbol), `TRADES_PER_PAGE` a page: each
    page its `index`, the number of its `first` trade (from 0) and its `trades`."""
    trades = result.trades
    return [
        {
            "index": i,
            "first": start,
            "trades": [trade_document(t) for t in trades[start : start + TRADES_PER_PAGE]],
        }
        for i, start in enumerate(range(0, len(trades), TRADES_PER_PAGE))
    ]
