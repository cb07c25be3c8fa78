"""A strategy replayed on daily bars with the live bot's own rules: its decision function
(`bot.strategies`), entry side and whole-share sizing (`bot.entries`), exit rule (take-profit,
stop-loss, the strategy turning against the position: `bot.exits`) and statistics formulas
(`bot.performance`). Pure: bars in, a result out.

The fill convention: each day, every symbol is decided on that day's close (its bars up to and
including the day, the bars before `start` as history); what it decides (an entry sized at
the close, or an exit) fills at the next day's open, moved against the trader by `slippage_bps`.
Money is kept at full precision (fills, cash, equity, P&L): rounding is for showing it.
A decision on the last day does not fill. Like the live bot, a strategy holds at most one
position per symbol and, having left one, may enter again from the next decision on.

The account starts with `allocation_usd` for each symbol (enough to hold every symbol at once),
in cash; equity is cash plus positions at each day's close (a short adds its sale to cash and
owes the shares). Buy-and-hold puts the same capital in the symbols in equal parts at the first
day's open (fractional shares, no slippage) and holds to the end. The account-level risk limits
(daily loss, drawdown, trades a day), which switch a person's trading off, are not simulated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from agenttrader.bot.entries import entry_quantity, entry_side
from agenttrader.bot.exits import exit_reason
from agenttrader.bot.lifecycle import levels_document
from agenttrader.bot.performance import Performance
from agenttrader.bot.protection import crossed, levels_of
from agenttrader.bot.settings import StrategyDoc
from agenttrader.bot.strategies import STRATEGIES, Decision
from agenttrader.broker.answers import Bar
from agenttrader.core.money import Side, percent, unrealized_pnl
from agenttrader.store.models import ShadowTrade

FILLS = (
    "decided on each day's close; filled at the next day's open, moved against the trader by "
    "the slippage"
)
"""The fill convention, stored with every backtest."""
BASIS_POINT = Decimal("0.0001")
DAYS_A_YEAR = Decimal("365.25")


@dataclass(frozen=True)
class Trade:
    """One round trip (or a position still open at the end: no exit)."""

    symbol: str
    side: Side
    quantity: Decimal
    entry_day: date
    entry_price: Decimal
    reason: str
    exit_day: date | None = None
    exit_price: Decimal | None = None
    exit_reason: str | None = None
    realized_pnl: Decimal | None = None


@dataclass(frozen=True)
class Statistics:
    """The figures a person compares: in percent, except the ratio and the counts."""

    total_return_pct: Decimal
    cagr_pct: Decimal
    max_drawdown_pct: Decimal
    sharpe_daily: Decimal | None
    """Mean daily return over its sample standard deviation, not annualised (as the live
    statistics): None with fewer than two returns or none that vary."""
    win_rate_pct: Decimal | None
    exposure_pct: Decimal
    """Days ending with a position held, over all days."""
    trades: int
    """Round trips closed."""
    final_equity: Decimal


@dataclass(frozen=True)
class Result:
    initial_equity: Decimal
    days: tuple[date, ...]
    equity: tuple[Decimal, ...]
    """The account's equity at each day's close."""
    buy_and_hold: tuple[Decimal, ...]
    trades: tuple[Trade, ...]
    statistics: Statistics
    buy_and_hold_statistics: Statistics


@dataclass
class _Order:
    symbol: str
    side: Side
    quantity: Decimal
    reason: str
    closes: bool


@dataclass
class _Book:
    cash: Decimal
    held: dict[str, tuple[ShadowTrade, Trade]] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)


def run(
    strategy: StrategyDoc,
    bars: Mapping[str, Sequence[Bar]],
    start: date,
    end: date,
    slippage_bps: Decimal = Decimal(0),
) -> Result:
    """Replay `strategy` over the trading days from `start` to `end` that any of its symbols
    has a bar for (`bars` by symbol, oldest first, history before `start` included)."""
    rule = STRATEGIES[strategy.strategy]
    slip = slippage_bps * BASIS_POINT
    by_day = {s: {b.t.date(): i for i, b in enumerate(bars.get(s, ()))} for s in strategy.symbols}
    days = sorted({d for index in by_day.values() for d in index if start <= d <= end})
    initial = strategy.allocation_usd * len(strategy.symbols)
    book = _Book(cash=initial)
    pending: list[_Order] = []
    last_close: dict[str, Decimal] = {}
    equity: list[Decimal] = []
    exposed = 0
    for day in days:
        waiting = []
        for order in pending:
            i = by_day[order.symbol].get(day)
            if i is None:
                waiting.append(order)  # no session for it today: it fills at its next open
            else:
                _fill(book, order, bars[order.symbol][i].o, slip, day, strategy)
        pending = waiting
        for symbol in strategy.symbols:
            i = by_day[symbol].get(day)
            if i is None:
                continue
            history = bars[symbol]
            close = history[i].c
            last_close[symbol] = close
            decision = rule.decide(list(history[max(0, i + 1 - rule.lookback_days) : i + 1]))
            decided = _decide(strategy, book, symbol, close, decision)
            if decided is not None and not any(p.symbol == symbol for p in pending):
                pending.append(decided)
        equity.append(_equity(book, last_close))
        exposed += 1 if book.held else 0
    book.trades.extend(trade for _, trade in book.held.values())
    hold = _buy_and_hold(strategy.symbols, bars, by_day, days, initial)
    closed = [t for t in book.trades if t.realized_pnl is not None]
    wins = sum(1 for t in closed if t.realized_pnl is not None and t.realized_pnl > 0)
    return Result(
        initial_equity=initial,
        days=tuple(days),
        equity=tuple(equity),
        buy_and_hold=tuple(hold),
        trades=tuple(sorted(book.trades, key=lambda t: (t.entry_day, t.symbol))),
        statistics=statistics(days, equity, initial, exposed, len(closed), wins),
        buy_and_hold_statistics=statistics(days, hold, initial, len(days) if hold else 0, 0, 0),
    )


def _decide(
    strategy: StrategyDoc, book: _Book, symbol: str, close: Decimal, decision: Decision
) -> _Order | None:
    """The live bot's choice for one symbol at a price: leave what is held, or enter."""
    held = book.held.get(symbol)
    if held is not None:
        take, stop = levels_of(held[0], {})
        why = crossed(held[0], close, take, stop) or exit_reason(held[0], decision)
        if not why:
            return None
        side: Side = "SELL" if held[0].side == "BUY" else "BUY"
        return _Order(symbol, side, held[0].quantity, why, closes=True)
    entering = entry_side(decision, strategy)
    if entering is None:
        return None
    quantity = entry_quantity(strategy.allocation_usd, close)
    if quantity < 1:
        return None
    return _Order(symbol, entering, quantity, decision.reason, closes=False)


def _fill(
    book: _Book,
    order: _Order,
    open_price: Decimal,
    slip: Decimal,
    day: date,
    strategy: StrategyDoc,
) -> None:
    # at full precision: the bar's price as Alpaca gives it, moved by the slippage
    price = open_price * (1 + slip if order.side == "BUY" else 1 - slip)
    flow = order.quantity * price
    book.cash += -flow if order.side == "BUY" else flow
    if order.closes:
        position, trade = book.held.pop(order.symbol)
        book.trades.append(
            replace(
                trade,
                exit_day=day,
                exit_price=price,
                exit_reason=order.reason,
                realized_pnl=unrealized_pnl(
                    position.side, position.entry_price, position.quantity, price
                ),
            )
        )
        return
    position = ShadowTrade(
        symbol=order.symbol,
        side=order.side,
        quantity=order.quantity,
        entry_price=price,
        status="OPEN",
        state="open",
        **levels_document(order.side, price, strategy.take_profit_pct, strategy.stop_loss_pct),
    )
    book.held[order.symbol] = (
        position,
        Trade(order.symbol, order.side, order.quantity, day, price, order.reason),
    )


def _equity(book: _Book, closes: Mapping[str, Decimal]) -> Decimal:
    value = book.cash
    for symbol, (position, _) in book.held.items():
        worth = position.quantity * closes[symbol]
        value += worth if position.side == "BUY" else -worth
    return value


def _buy_and_hold(
    symbols: Sequence[str],
    bars: Mapping[str, Sequence[Bar]],
    by_day: Mapping[str, Mapping[date, int]],
    days: Sequence[date],
    initial: Decimal,
) -> list[Decimal]:
    """Equal parts of `initial` in each symbol at its first open in the range, held."""
    part = initial / len(symbols)
    shares: dict[str, Decimal] = {}
    last: dict[str, Decimal] = {}
    curve = []
    for day in days:
        for symbol in symbols:
            i = by_day[symbol].get(day)
            if i is None:
                continue
            bar = bars[symbol][i]
            if symbol not in shares:
                shares[symbol] = part / bar.o
            last[symbol] = bar.c
        uninvested = part * (len(symbols) - len(shares))
        curve.append(uninvested + sum((shares[s] * last[s] for s in shares), Decimal(0)))
    return curve


def statistics(
    days: Sequence[date],
    equity: Sequence[Decimal],
    initial: Decimal,
    exposed_days: int,
    closed: int,
    wins: int,
) -> Statistics:
    """The figures of an equity curve, with the live statistics' drawdown, daily Sharpe and
    win rate (`bot.performance`)."""
    books = Performance()
    for day, value in zip(days, equity, strict=True):
        books = books.observe(day.isoformat(), value)
    books = replace(books.end_of_day(), trades_closed=closed, wins=wins)
    final = equity[-1] if equity else initial
    growth = final / initial
    years = Decimal((days[-1] - days[0]).days) / DAYS_A_YEAR if len(days) > 1 else Decimal(0)
    cagr = (growth ** (1 / years) - 1) * 100 if years > 0 and growth > 0 else Decimal(-100)
    return Statistics(
        total_return_pct=percent((growth - 1) * 100),
        cagr_pct=percent(cagr) if years > 0 else percent((growth - 1) * 100),
        max_drawdown_pct=books.max_drawdown_pct,
        sharpe_daily=books.sharpe_daily,
        win_rate_pct=books.win_rate,
        exposure_pct=percent(Decimal(exposed_days) / len(days) * 100) if days else Decimal(0),
        trades=closed,
        final_equity=final,
    )
