"""Backtests: the live rules replayed on the stand-in's years of daily bars, checked against an
independent engine (backtesting.py) and independent formulas (empyrical), and the callable
that runs, stores and answers them."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import empyrical
import pandas as pd
import pytest
import requests
from backtesting import Backtest
from backtesting import Strategy as OracleStrategy
from calling import Code, auth, data_of, error_of, ready_user
from google.cloud import firestore

from agenttrader.api import keys_callables
from agenttrader.api.backtest_callables import WARM_UP, delete_backtest, run_backtest
from agenttrader.api.guard import Services
from agenttrader.api.portfolio_callables import portfolio_history
from agenttrader.backtest import engine
from agenttrader.bot.settings import StrategyDoc
from agenttrader.broker.alpaca import AlpacaBroker
from agenttrader.broker.answers import Bar
from agenttrader.store import paths
from localdev.alpaca_standin import AlpacaServer
from localdev.seed import register_alpaca_account

START, END = date(2022, 1, 3), date(2024, 12, 31)
ALLOCATION = Decimal(10_000)


def history(alpaca: AlpacaServer, symbols: list[str], start: date, end: date) -> dict[str, Any]:
    keys = register_alpaca_account(alpaca.url, "PKBACKTEST01", "secret-key-1")
    broker = AlpacaBroker(keys, trading_url=alpaca.url, data_url=alpaca.url)
    try:
        return broker.daily_bars_many(
            symbols,
            datetime(start.year, start.month, start.day, tzinfo=UTC) - WARM_UP,
            datetime(end.year, end.month, end.day, 23, 59, tzinfo=UTC),
        )
    finally:
        broker.close()


def momentum(**rules: Any) -> StrategyDoc:
    return StrategyDoc.model_validate(
        {
            "strategy": "momentum_20d",
            "symbols": rules.pop("symbols", ["AAPL"]),
            "allocation_usd": str(ALLOCATION),
            "mode": "shadow",
            "status": "active",
            **rules,
        }
    )


class Momentum(OracleStrategy):  # type: ignore[misc]
    """The momentum rule written again for backtesting.py, in floats: buy after a rise of 3%
    or more over 20 days, leave on a fall of 3% or more, at +take_profit% or -stop_loss%
    (on the close), long only, whole shares of the allocation at the close."""

    start = START
    take_profit = 6.0
    stop_loss = 4.0

    def init(self) -> None:
        pass  # no indicators: the rule reads the closes itself

    def next(self) -> None:
        if self.data.index[-1].date() < self.start:
            return
        closes = self.data.Close
        if len(closes) < 21:
            return
        change = (closes[-1] - closes[-21]) / closes[-21] * 100
        if self.position:
            trade = self.trades[0]
            pnl_pct = (closes[-1] - trade.entry_price) / trade.entry_price * 100
            if pnl_pct >= self.take_profit or pnl_pct <= -self.stop_loss or change <= -3:
                self.position.close()
        elif change >= 3:
            self.buy(size=int(float(ALLOCATION) // closes[-1]))


def frame(bars: list[Bar]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Open": [float(b.o) for b in bars],
            "High": [float(b.h) for b in bars],
            "Low": [float(b.low) for b in bars],
            "Close": [float(b.c) for b in bars],
            "Volume": [b.v for b in bars],
        },
        index=pd.DatetimeIndex([b.t.replace(tzinfo=None) for b in bars]),
    )


@pytest.mark.parametrize("symbol", ["AAPL", "NVDA", "MSFT"])
# a position still open at the end is compared open, as the product leaves it
@pytest.mark.filterwarnings("ignore:Some trades remain open")
def test_the_same_rule_in_backtesting_py_makes_the_same_trades_and_equity(
    alpaca: AlpacaServer, symbol: str
) -> None:
    bars = history(alpaca, [symbol], START, END)[symbol]
    ours = engine.run(
        momentum(symbols=[symbol], take_profit_pct="6", stop_loss_pct="4"),
        {symbol: bars},
        START,
        END,
    )
    cash = 1_000_000  # the oracle refuses an order its cash cannot cover: never here
    oracle = Backtest(frame(bars), Momentum, cash=cash, commission=0, finalize_trades=False).run()

    closed = [t for t in ours.trades if t.exit_day is not None]
    theirs = oracle._trades
    assert len(closed) >= 5, "too few trades to compare"
    assert [(t.entry_day, t.entry_price, t.exit_day, t.exit_price, t.quantity) for t in closed] == [
        (
            row.EntryTime.date(),
            Decimal(repr(float(row.EntryPrice))),
            row.ExitTime.date(),
            Decimal(repr(float(row.ExitPrice))),
            Decimal(int(row.Size)),
        )
        for row in theirs.itertuples()
    ]
    # the same P&L (ours exact, theirs in floats): both start from their own cash (ours: the
    # allocation)
    for t, row in zip(closed, theirs.itertuples(), strict=True):
        assert t.realized_pnl == pytest.approx(Decimal(repr(float(row.PnL))), abs=Decimal("1e-6"))
    ours_pnl = ours.statistics.final_equity - ours.initial_equity
    theirs_pnl = Decimal(repr(float(oracle["Equity Final [$]"]) - cash))
    assert ours_pnl == pytest.approx(theirs_pnl, abs=Decimal("1e-6"))


def test_a_backtests_money_is_kept_whole_and_its_curve_is_its_trades_replayed(
    alpaca: AlpacaServer,
) -> None:
    """With slippage the fills are not whole cents; the stored curve is exactly what replaying
    the trades at those fills gives, every day, with nothing rounded on the way."""
    symbol = "AAPL"
    bars = history(alpaca, [symbol], START, END)[symbol]
    result = engine.run(
        momentum(symbols=[symbol], take_profit_pct="6", stop_loss_pct="4"),
        {symbol: bars},
        START,
        END,
        Decimal(7),
    )
    fills = [p for t in result.trades for p in (t.entry_price, t.exit_price) if p is not None]
    assert any(p != p.quantize(Decimal("0.01")) for p in fills)  # finer than a cent
    closes = {b.t.date(): b.c for b in bars}
    cash, held, last = result.initial_equity, Decimal(0), Decimal(0)
    curve = []
    for day in result.days:
        for t in result.trades:
            if t.exit_day == day:
                cash, held = cash + t.quantity * (t.exit_price or 0), held - t.quantity
            if t.entry_day == day:
                cash, held = cash - t.quantity * t.entry_price, held + t.quantity
        last = closes.get(day, last)
        curve.append(cash + held * last)
    assert list(result.equity) == curve
    assert result.statistics.final_equity == curve[-1]
    for t in result.trades:
        if t.exit_price is not None:
            assert t.realized_pnl == (t.exit_price - t.entry_price) * t.quantity


def test_sharpe_and_drawdown_are_empyricals_on_the_same_curve(alpaca: AlpacaServer) -> None:
    symbols = ["AAPL", "MSFT", "NVDA", "AMZN"]
    result = engine.run(momentum(symbols=symbols), history(alpaca, symbols, START, END), START, END)
    curve = pd.Series([float(v) for v in result.equity])
    # empyrical's curve starts at the first return; the day before is the first peak too
    returns = pd.concat([pd.Series([0.0]), curve.pct_change().dropna()], ignore_index=True)
    stats = result.statistics
    assert stats.sharpe_daily is not None
    expected_sharpe = empyrical.sharpe_ratio(returns.iloc[1:], risk_free=0, annualization=1)
    assert float(stats.sharpe_daily) == pytest.approx(expected_sharpe, abs=0.00005)
    expected_drawdown = -empyrical.max_drawdown(returns) * 100
    assert float(stats.max_drawdown_pct) == pytest.approx(expected_drawdown, abs=0.00005)
    assert expected_drawdown > 0
    hold = pd.Series([float(v) for v in result.buy_and_hold])
    assert float(result.buy_and_hold_statistics.total_return_pct) == pytest.approx(
        (hold.iloc[-1] / float(result.initial_equity) - 1) * 100, abs=0.00005
    )
    years = (result.days[-1] - result.days[0]).days / 365.25
    assert float(stats.cagr_pct) == pytest.approx(
        ((float(stats.final_equity) / float(result.initial_equity)) ** (1 / years) - 1) * 100,
        abs=0.001,
    )


def test_the_split_is_adjusted_away_and_raw_bars_show_it(alpaca: AlpacaServer) -> None:
    """NVDA split 10-for-1 on 2024-06-10 at the stand-in: adjusted bars (what the bot and the
    backtests read) move as usual; raw ones fall by 90%."""
    around = history(alpaca, ["NVDA"], date(2024, 6, 3), date(2024, 6, 14))["NVDA"]
    before = next(b for b in around if b.t.date() == date(2024, 6, 7))
    after = next(b for b in around if b.t.date() == date(2024, 6, 10))
    assert abs(after.o / before.c - 1) < Decimal("0.1")
    raw = requests.get(
        f"{alpaca.url}/v2/stocks/NVDA/bars",
        params={"timeframe": "1Day", "start": "2024-06-07", "end": "2024-06-10", "limit": 10},
        headers={"APCA-API-KEY-ID": "PKBACKTEST01", "APCA-API-SECRET-KEY": "secret-key-1"},
        timeout=10,
    ).json()["bars"]
    assert [b["t"][:10] for b in raw] == ["2024-06-07", "2024-06-10"]
    assert raw[0]["c"] == pytest.approx(float(before.c) * 10, rel=1e-9)
    assert raw[1]["o"] == pytest.approx(float(after.o), rel=1e-9)


def test_a_backtest_is_stored_for_its_owner_and_answered(
    services: Services, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    ready_user(services, alpaca, "alice")
    request = {
        "strategy": "momentum_20d",
        "symbols": ["AAPL", "NVDA"],
        "allocation_usd": "5000",
        "take_profit_pct": "8",
        "stop_loss_pct": "5",
        "start": "2024-01-02",
        "end": "2024-12-31",
    }
    answer = run_backtest(services, auth("alice"), request)
    stored = paths.backtests(db, "alice").document(answer["id"]).get().to_dict() or {}
    assert stored["parameters"] == {**request, "allow_short": False, "slippage_bps": 0}
    assert stored["statistics"] == answer["statistics"]
    assert stored["buy_and_hold"] == answer["buy_and_hold"]
    days = stored["curve"]["days"]
    assert days[0] == "2024-01-02" and days[-1] == "2024-12-31"
    assert len(days) == len(stored["curve"]["equity"]) == len(stored["curve"]["buy_and_hold"])
    assert stored["initial_equity"] == "10000"
    trades = stored_trades(db, "alice", answer["id"])
    assert trades and answer["trades_total"] == stored["trades_total"] == len(trades)
    for trade in trades:
        assert trade["symbol"] in ("AAPL", "NVDA")
        assert "E" not in trade["quantity"] and "E" not in trade["entry_price"]
        if trade["exit_day"] is not None:
            assert trade["entry_day"] < trade["exit_day"]
    # the split inside the range is adjusted: holding NVDA through it lost no 90%
    assert Decimal(stored["buy_and_hold"]["final_equity"]) > Decimal(5000)
    audit = [d.to_dict() for d in paths.audit(db, "alice").stream()]
    assert any(
        a["action"] == "backtest_run" and a["details"]["backtest_id"] == answer["id"] for a in audit
    )


def stored_trades(db: firestore.Client, uid: str, backtest_id: str) -> list[dict[str, Any]]:
    """Every page of a stored backtest's trades, in page order."""
    pages = [d.to_dict() or {} for d in paths.backtest_trades(db, uid, backtest_id).stream()]
    assert [p["index"] for p in pages] == list(range(len(pages)))
    return [t for p in pages for t in p["trades"]]


LONG = [
    "AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META", "GOOG", "AMD", "NFLX", "INTC",
    "ORCL", "CRM", "ADBE", "QCOM", "TXN", "AVGO", "CSCO", "IBM", "PEP", "KO",
]  # fmt: skip
"""The README's five-year backtest: 20 symbols, over 2,000 trades."""


def test_every_trade_of_a_long_backtest_is_kept_in_order_and_deleted_with_it(
    services: Services, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    ready_user(services, alpaca, "alice")
    request = {
        "strategy": "momentum_20d",
        "symbols": LONG,
        "allocation_usd": "5000",
        "take_profit_pct": "8",
        "stop_loss_pct": "5",
        "start": "2021-11-01",
        "end": "2026-10-30",
    }
    answer = run_backtest(services, auth("alice"), request)
    stored = paths.backtests(db, "alice").document(answer["id"]).get().to_dict() or {}
    trades = stored_trades(db, "alice", answer["id"])
    assert answer["trades_total"] == stored["trades_total"] == len(trades) > 2000
    assert stored["trade_pages"] == -(-len(trades) // stored["trades_per_page"])
    # the engine's own list, oldest first, every one
    bars = history(alpaca, LONG, date(2021, 11, 1), date(2026, 10, 30))
    ran = engine.run(
        momentum(symbols=LONG, allocation_usd="5000", take_profit_pct="8", stop_loss_pct="5"),
        bars,
        date(2021, 11, 1),
        date(2026, 10, 30),
    )
    assert [(t["entry_day"], t["symbol"], t["quantity"]) for t in trades] == [
        (t.entry_day.isoformat(), t.symbol, str(t.quantity)) for t in ran.trades
    ]
    closed = sum(1 for t in trades if t["exit_day"] is not None)
    assert closed == stored["statistics"]["trades"]

    assert error_of(delete_backtest, services, auth("bob"), {"backtest_id": answer["id"]}).code == (
        Code.NOT_FOUND
    )  # another person's id finds nothing of theirs
    assert delete_backtest(services, auth("alice"), {"backtest_id": answer["id"]}) == {
        "backtest_id": answer["id"],
        "deleted": True,
    }
    assert not paths.backtests(db, "alice").document(answer["id"]).get().exists
    assert list(paths.backtest_trades(db, "alice", answer["id"]).stream()) == []
    again = error_of(delete_backtest, services, auth("alice"), {"backtest_id": answer["id"]})
    assert again.code == Code.NOT_FOUND


@pytest.mark.parametrize(
    ("change", "code", "says"),
    [
        ({"symbols": ["AAPL", "ZZZZ"]}, Code.INVALID_ARGUMENT, "ZZZZ"),
        ({"start": "2025-12-27", "end": "2025-12-28"}, Code.FAILED_PRECONDITION, "AAPL"),
        ({"start": "2019-01-02", "end": "2024-06-30"}, Code.INVALID_ARGUMENT, "5 years"),
        ({"start": "2024-06-30", "end": "2024-01-02"}, Code.INVALID_ARGUMENT, "after From"),
        ({"start": "2024-02-30"}, Code.INVALID_ARGUMENT, "From"),
        ({"slippage_bps": 501}, Code.INVALID_ARGUMENT, "Slippage"),
        ({"start": "2099-01-02", "end": "2099-02-02"}, Code.INVALID_ARGUMENT, "before today"),
    ],
)
def test_a_bad_backtest_is_refused_and_changes_nothing(
    services: Services,
    alpaca: AlpacaServer,
    db: firestore.Client,
    change: dict[str, Any],
    code: Any,
    says: str,
) -> None:
    ready_user(services, alpaca, "alice")
    before = data_of(db)
    request = {
        "strategy": "momentum_20d",
        "symbols": ["AAPL"],
        "allocation_usd": "5000",
        "start": "2024-01-02",
        "end": "2024-06-28",
        **change,
    }
    error = error_of(run_backtest, services, auth("alice"), request)
    assert error.code == code
    assert says in error.message
    assert data_of(db) == before


def test_a_backtest_needs_keys(services: Services, db: firestore.Client) -> None:
    request = {
        "strategy": "momentum_20d",
        "symbols": ["AAPL"],
        "allocation_usd": "5000",
        "start": "2024-01-02",
        "end": "2024-06-28",
    }
    error = error_of(run_backtest, services, auth("bob"), request)
    assert error.code == Code.FAILED_PRECONDITION
    assert "keys" in error.message
    assert list(paths.backtests(db, "bob").stream()) == []


def test_alpacas_history_fills_the_days_before_the_products_own(
    services: Services, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    ready_user(services, alpaca, "alice")  # paper keys
    whole = portfolio_history(services, auth("alice"), {})
    days = whole["days"]
    assert 240 <= len(days) <= 260  # a year of trading days
    assert days == sorted(days) and days[-1] < datetime.now(UTC).date().isoformat()
    assert all(date.fromisoformat(d).weekday() < 5 for d in days)
    assert all(re.fullmatch(r"[0-9]+\.[0-9]{1,2}", e) for e in whole["equity"])
    # from the first day the product recorded, its own points are the record
    paths.equity_points(db, "alice").document(days[100]).set(
        {"equity": "1", "at": datetime.fromisoformat(f"{days[100]}T21:00:00+00:00")}
    )
    assert portfolio_history(services, auth("alice"), {}) == {
        "days": days[:100],
        "equity": whole["equity"][:100],
    }


def test_alpacas_history_is_for_paper_accounts(
    services: Services, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    register_alpaca_account(alpaca.url, "PKLIVE000002", "secret-key-1")
    keys_callables.save_alpaca_keys(
        services,
        auth("carol"),
        {"key_id": "PKLIVE000002", "secret_key": "secret-key-1", "paper": False},
    )
    error = error_of(portfolio_history, services, auth("carol"), {})
    assert error.code == Code.FAILED_PRECONDITION
    assert "paper" in error.message
