"""`run_backtest`: a strategy as a person would set it up, replayed on Alpaca's daily bars
(fetched with their keys) by the live rules (`backtest.engine`), stored at
`users/{uid}/backtests/{id}` (its trades in pages below it) and answered with its statistics
beside buy-and-hold; `delete_backtest` deletes one with its pages."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StrictBool, StrictInt, model_validator

from agenttrader.api.guard import Call, Code, DocumentId, Limit, StrictInput, endpoint, fail
from agenttrader.api.messages import FieldError
from agenttrader.api.strategy_callables import Money, Percent, Symbols
from agenttrader.backtest import engine
from agenttrader.backtest.document import backtest_document, page_id, shown, trade_pages
from agenttrader.bot.settings import StrategyDoc
from agenttrader.bot.strategies import registered
from agenttrader.store import paths
from agenttrader.store.audit import audit_event
from agenttrader.store.models import keys_version

MAX_YEARS = 5
WARM_UP = timedelta(days=45)
"""Calendar days of bars before `From` that give the strategy its history on the first day
(the longest lookback is 21 trading days)."""
BACKTEST_LIMIT = Limit(5, 60)


def _a_date(value: str) -> str:
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ValueError("use a date such as 2024-01-31") from None
    return value


Day = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"), AfterValidator(_a_date)]


class BacktestRequest(StrictInput):
    strategy: Annotated[str, Field(max_length=40), AfterValidator(registered)]
    symbols: Symbols
    allocation_usd: Money
    take_profit_pct: Percent | None = None
    stop_loss_pct: Percent | None = None
    allow_short: StrictBool = False
    start: Day
    end: Day
    slippage_bps: StrictInt = Field(default=0, ge=0, le=500)

    @model_validator(mode="after")
    def _range(self) -> BacktestRequest:
        start, end = date.fromisoformat(self.start), date.fromisoformat(self.end)
        if end <= start:
            raise FieldError("end", "choose a day after From")
        if end > _years_after(start, MAX_YEARS):
            raise FieldError(
                "start", f"a backtest covers at most {MAX_YEARS} years: move From or To"
            )
        return self

    def strategy_doc(self) -> StrategyDoc:
        """The strategy as the live bot would read it (shadow mode: no orders)."""
        return StrategyDoc.model_validate(
            {
                "strategy": self.strategy,
                "symbols": list(self.symbols),
                "allocation_usd": self.allocation_usd,
                "mode": "shadow",
                "status": "active",
                "take_profit_pct": self.take_profit_pct,
                "stop_loss_pct": self.stop_loss_pct,
                "allow_short": self.allow_short,
            }
        )


def _years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


@endpoint(BacktestRequest, BACKTEST_LIMIT)
def run_backtest(call: Call[BacktestRequest]) -> dict[str, Any]:
    """Replay a strategy over a range of days with the live rules; store and answer it."""
    request, db, uid, now = call.request, call.db, call.who.uid, call.now
    start, end = date.fromisoformat(request.start), date.fromisoformat(request.end)
    if start >= now.date():
        raise fail(Code.INVALID_ARGUMENT, "From: choose a day before today", "start")
    profile = paths.user(db, uid).get()
    keys = call.platform.keys.load(uid, keys_version(profile.to_dict()))
    if keys is None:
        raise fail(
            Code.FAILED_PRECONDITION,
            "save your Alpaca keys first: a backtest reads Alpaca's daily bars with them",
        )
    broker = call.platform.brokers(keys)
    try:
        bars = broker.daily_bars_many(
            list(request.symbols),
            datetime.combine(start, time(), tzinfo=UTC) - WARM_UP,
            datetime.combine(end, time(23, 59, 59), tzinfo=UTC),
        )
    finally:
        broker.close()
    for symbol in request.symbols:
        if not bars.get(symbol):
            raise fail(
                Code.INVALID_ARGUMENT, f"Symbols: Alpaca has no daily bars for {symbol}", "symbols"
            )
        if not any(start <= b.t.date() <= end for b in bars[symbol]):
            raise fail(
                Code.FAILED_PRECONDITION,
                f"Alpaca has no daily bars for {symbol} from {start} to {end}: choose other days",
            )
    result = engine.run(request.strategy_doc(), bars, start, end, Decimal(request.slippage_bps))
    ref = paths.backtests(db, uid).document()
    batch = db.batch()
    batch.set(ref, backtest_document(request.model_dump(), result, now))
    for page in trade_pages(result):
        batch.set(paths.backtest_trades(db, uid, ref.id).document(page_id(page["index"])), page)
    audit_event(
        batch,
        db,
        uid,
        "backtest_run",
        now,
        uid,
        {"backtest_id": ref.id, "strategy": request.strategy, "symbols": len(request.symbols)},
    )
    batch.commit()
    return {"id": ref.id, **shown(result)}


class BacktestId(StrictInput):
    backtest_id: DocumentId


@endpoint(BacktestId, Limit(30, 60))
def delete_backtest(call: Call[BacktestId]) -> dict[str, Any]:
    """Delete one of the caller's backtests and every page of its trades, in one commit."""
    db, uid, backtest_id = call.db, call.who.uid, call.request.backtest_id
    ref = paths.backtests(db, uid).document(backtest_id)
    if not ref.get(["trade_pages"]).exists:
        raise fail(Code.NOT_FOUND, "this backtest is already deleted", "backtest_id")
    batch = db.batch()
    for page in paths.backtest_trades(db, uid, backtest_id).list_documents():
        batch.delete(page)
    batch.delete(ref)
    audit_event(batch, db, uid, "backtest_deleted", call.now, uid, {"backtest_id": backtest_id})
    batch.commit()
    return {"backtest_id": backtest_id, "deleted": True}
