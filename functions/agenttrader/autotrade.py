"""The bot: a person's active strategies run by the pulse while the market is open.

For each strategy and symbol: open a position when the strategy says BUY or SELL and none is
open for that strategy and symbol; close it on take-profit, stop-loss or the strategy's exit
(its decision turning against the position). Every step is idempotent by construction:

- an entry is the trade document `{strategy}-{symbol}-{day}`, created (never overwritten) with
  its signal and, in paper mode, its order: a second run, an overlapping run or a retried task
  finds it exists, so a strategy enters a symbol at most once a trading day;
- an exit is a write with a precondition on the trade as read: of racing exits one wins;
- a paper order's document id is the `client_order_id` sent to Alpaca, and an order Alpaca
  has seen under that id is never placed again.

Risk limits are checked on every run and before every entry (`risk`); statistics and the
equity curve are refreshed at most every `BOOKS_EVERY` (`performance`). A strategy's failure
stays with that strategy (`status: error`, `last_error`); a fault that may pass (a 500, a
timeout) is retried by the next run, which sets it `active` again once it works.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from firebase_functions import logger
from google.api_core import exceptions as gexc
from google.cloud import firestore
from pydantic import ValidationError

from agenttrader import paths, queries, risk
from agenttrader.broker import AccountSnapshot, AlpacaBroker, Bar, BrokerError, OrderState
from agenttrader.context import Platform
from agenttrader.errors import AgentTraderError, ErrorCode
from agenttrader.keystore import AlpacaKeys
from agenttrader.models import ShadowTrade, count_open_trades
from agenttrader.money import decimal
from agenttrader.optimistic import LOST_RACE, Contended, retried, unchanged_since
from agenttrader.performance import Performance
from agenttrader.signals import shadow_trade_document
from agenttrader.strategies import STRATEGIES, Decision
from agenttrader.strategy_settings import BotConfig, StrategyDoc, bump_bot_version, load_bot_config

NEW_YORK = ZoneInfo("America/New_York")
BARS_SINCE = timedelta(days=45)
"""Calendar days of daily bars asked for: more than the longest lookback in trading days."""
BOOKS_EVERY = timedelta(minutes=15)
"""How often a person's equity point, statistics and strategies' evaluation notes are
written while nothing else changes (a write a minute per person is a bill of its own)."""


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
    trades_version: int | None
    entries_today: int | None = None
    changed: bool = False
    """An entry or an exit happened: the books are written this run."""

    @property
    def db(self) -> firestore.Client:
        return self.platform.db


class StrategyFailure(AgentTraderError):
    """A strategy cannot run; `retry`: a later run may succeed without the person."""

    def __init__(self, code: ErrorCode, message: str, retry: bool = False) -> None:
        super().__init__(code, message)
        self.retry = retry


class Tripped(Exception):
    """A risk limit switched the person's trading off: nothing more this run."""


def config_of(platform: Platform, uid: str, memory_key: str, version: int) -> BotConfig:
    """The person's strategies and limits: as this instance read them for this version."""
    kept = platform.memory.recall("bot", memory_key)
    if isinstance(kept, BotConfig) and kept.version == version:
        return kept
    config = load_bot_config(platform.db, uid, version)
    for sid in config.unreadable:
        logger.warn("bot.strategy_unreadable", uid=uid, strategy_id=sid)
    platform.memory.keep("bot", memory_key, config)
    return config


def symbols_known(platform: Platform, memory_key: str) -> set[str]:
    """The symbols of a person's running strategies, as this instance last read them."""
    kept = platform.memory.recall("bot", memory_key)
    if not isinstance(kept, BotConfig):
        return set()
    return {symbol for _, s in kept.running for symbol in s.symbols}


def trade_for(
    person: Person,
    config: BotConfig,
    account: AccountSnapshot,
    trades: list[tuple[str, ShadowTrade]],
    prices: Mapping[str, Decimal],
    market: Market,
    orders_pending: bool,
) -> list[str]:
    """Run the person's strategies once; returns the codes of what went wrong (a trip, a
    strategy's failure), for the run's summary. Raises only what is not a strategy's own."""
    problems: list[str] = []
    if orders_pending:
        follow_orders(person)
    running = config.running
    if not running:
        return problems
    books = _books(person)
    breach = risk.on_pulse(config.limits, account, books.peak_equity)
    if breach is not None:
        risk.trip(person.db, person.uid, breach, person.now, person.run_id)
        logger.warn("bot.risk_tripped", uid=person.uid, limit=breach.limit)
        return [ErrorCode.RISK_LIMIT_TRIPPED]
    bars = _bars_for(person, running, market)
    open_by_key = {(t.strategy_id, t.symbol): (path, t) for path, t in trades if t.strategy_id}
    notes: dict[str, dict[str, str]] = {}
    try:
        for sid, strategy in running:
            try:
                notes[sid] = _run_strategy(person, config, sid, strategy, bars, prices, open_by_key)
                if strategy.status == "error":
                    _set_status(person, sid, "active", None)
            except (StrategyFailure, BrokerError) as failure:
                retry = failure.retry if isinstance(failure, StrategyFailure) else failure.may_pass
                _record_failure(person, sid, strategy, failure.code, failure.message, retry)
                problems.append(failure.code)
    except Tripped:
        return [*problems, ErrorCode.RISK_LIMIT_TRIPPED]
    _write_books(person, account, trades, books, notes)
    return problems


def _bars_for(
    person: Person, running: list[tuple[str, StrategyDoc]], market: Market
) -> dict[str, list[Bar] | BrokerError]:
    """Bars of every symbol the person's strategies trade: shared by the run, the rest in one
    request with their keys (a failure stays with the strategies that need those symbols)."""
    wanted = {symbol for _, s in running for symbol in s.symbols}
    found: dict[str, list[Bar] | BrokerError] = {
        s: market.bars[s] for s in wanted if s in market.bars
    }
    missing = sorted(wanted - found.keys())
    if missing:
        try:
            fetched = person.broker.daily_bars_many(missing, bars_since(person.now))
            found.update({s: fetched.get(s, []) for s in missing})
        except BrokerError as error:
            found.update(dict.fromkeys(missing, error))
    return found


def _run_strategy(
    person: Person,
    config: BotConfig,
    sid: str,
    strategy: StrategyDoc,
    bars: Mapping[str, list[Bar] | BrokerError],
    prices: Mapping[str, Decimal],
    open_by_key: dict[tuple[str, str], tuple[str, ShadowTrade]],
) -> dict[str, str]:
    rule = STRATEGIES.get(strategy.strategy)
    if rule is None:
        raise StrategyFailure(
            ErrorCode.SYMBOL_UNKNOWN, f"no strategy named {strategy.strategy} any more"
        )
    if strategy.mode == "paper" and not person.keys.paper:
        raise StrategyFailure(
            ErrorCode.KEYS_NOT_PAPER,
            "paper mode trades only with paper keys; these are live keys (save paper keys, or "
            "use shadow mode)",
        )
    decisions: dict[str, str] = {}
    for symbol in strategy.symbols:
        history = bars.get(symbol)
        if isinstance(history, BrokerError):
            raise history
        price = prices.get(symbol)
        if not history or price is None:
            raise StrategyFailure(
                ErrorCode.NO_BARS,
                f"Alpaca has no daily bars or trades for {symbol}: is it a listed US stock?",
            )
        decision = rule.decide(history)
        decisions[symbol] = decision.action
        held = open_by_key.get((sid, symbol))
        if held is not None:
            reason = exit_reason(held[1], price, decision, strategy)
            if reason:
                _exit(person, sid, strategy, held, price, reason)
        elif decision.action != "HOLD":
            _enter(person, config, sid, strategy, symbol, price, decision)
    return decisions


def exit_reason(
    trade: ShadowTrade, price: Decimal, decision: Decision, strategy: StrategyDoc
) -> str | None:
    """Why an open position closes at `price`, or None while it stays open."""
    marks = trade.priced(price)
    pnl_pct = Decimal(marks["pnl_percent"])
    if strategy.take_profit_pct is not None and pnl_pct >= strategy.take_profit_pct:
        return f"take-profit: {pnl_pct}% reached +{strategy.take_profit_pct}%"
    if strategy.stop_loss_pct is not None and pnl_pct <= -strategy.stop_loss_pct:
        return f"stop-loss: {pnl_pct}% reached -{strategy.stop_loss_pct}%"
    against = "SELL" if trade.side == "BUY" else "BUY"
    if decision.action == against:
        return f"strategy exit: {decision.reason}"
    return None


def entry_id(sid: str, symbol: str, day: str) -> str:
    """The trade (and signal) an entry is: one per strategy, symbol and trading day."""
    return f"{sid}-{symbol}-{day}"


def _enter(
    person: Person,
    config: BotConfig,
    sid: str,
    strategy: StrategyDoc,
    symbol: str,
    price: Decimal,
    decision: Decision,
) -> None:
    db, uid, now = person.db, person.uid, person.now
    trade_id = entry_id(sid, symbol, person.day)
    entered: set[str] = person.platform.memory.recall("entered", person.memory_key) or set()
    if trade_id in entered:
        return  # entered (and maybe left) earlier today
    quantity = (strategy.allocation_usd / price).to_integral_value(rounding=ROUND_DOWN)
    if quantity < 1:
        return  # the allocation buys no whole share at this price: nothing to do
    notional = quantity * price
    if person.entries_today is None:
        counting: Any = queries.entries_on(db, uid, person.day).count()
        person.entries_today = int(counting.get()[0][0].value)
    breach = risk.before_entry(config.limits, symbol, notional, person.entries_today)
    if breach is not None:
        risk.trip(db, uid, breach, now, person.run_id)
        logger.warn("bot.risk_tripped", uid=uid, limit=breach.limit)
        raise Tripped()
    side = decision.action
    assert side != "HOLD"
    trade = {
        **shadow_trade_document(symbol, side, quantity, price, now, trade_id),
        "strategy_id": sid,
        "entry_day": person.day,
        "mode": strategy.mode,
        "reason": decision.reason,
    }
    batch = db.batch()
    batch.create(paths.shadow_trades(db, uid).document(trade_id), trade)
    batch.create(
        paths.signals(db, uid).document(trade_id),
        {
            "symbol": symbol,
            "action": side,
            "quantity": str(quantity),
            "price": str(price),
            "notional_usd": str(notional),
            "reason": decision.reason,
            "strategy_id": strategy.strategy,
            "user_strategy_id": sid,
            "status": "SHADOW_OPENED",
            "created_at": now,
        },
    )
    count_open_trades(batch, db, uid, +1)
    order_id = f"{trade_id}-open"
    if strategy.mode == "paper":
        _new_order(batch, person, order_id, symbol, side, quantity, sid, trade_id)
    try:
        batch.commit()
        won = True
    except gexc.Conflict:
        won = False  # another run entered first: exactly one entry
    entered.add(trade_id)
    person.platform.memory.keep("entered", person.memory_key, entered)
    if not won:
        return
    person.entries_today += 1
    person.changed = True
    logger.info("bot.entered", uid=uid, strategy_id=sid, symbol=symbol, side=side)
    if strategy.mode == "paper":
        _submit(person, order_id, symbol, side, quantity, trade_id, opening=True)


def _exit(
    person: Person,
    sid: str,
    strategy: StrategyDoc,
    held: tuple[str, ShadowTrade],
    price: Decimal,
    reason: str,
) -> None:
    ref = person.db.document(held[0])
    order_id = f"{ref.id}-close"

    def with_order(batch: firestore.WriteBatch, trade: ShadowTrade) -> None:
        if strategy.mode == "paper":
            _new_order(
                batch, person, order_id, trade.symbol, _against(trade), trade.quantity, sid, ref.id
            )

    trade = _close(person, ref, price, reason, with_order)
    if trade is None:
        return
    logger.info("bot.exited", uid=person.uid, strategy_id=sid, symbol=trade.symbol, reason=reason)
    if strategy.mode == "paper":
        _submit(
            person, order_id, trade.symbol, _against(trade), trade.quantity, ref.id, opening=False
        )


def _against(trade: ShadowTrade) -> str:
    """The side that closes `trade`."""
    return "SELL" if trade.side == "BUY" else "BUY"


def _close(
    person: Person,
    ref: firestore.DocumentReference,
    price: Decimal | None,
    reason: str,
    also: Callable[[firestore.WriteBatch, ShadowTrade], None] | None = None,
) -> ShadowTrade | None:
    """Close the open trade at `ref` at `price` (None: its entry price, no P&L) with the
    reason, and whatever `also` adds, in one commit with a precondition on the trade as read.
    Returns the trade, or None when it is gone, closed already, or another run closed it
    first: of racing closes one wins."""
    db = person.db
    snapshot = ref.get()
    if not snapshot.exists:
        return None
    try:
        trade = ShadowTrade.model_validate(snapshot.to_dict() or {})
    except ValidationError:
        raise StrategyFailure(ErrorCode.INTERNAL, f"{ref.path} cannot be read") from None
    if trade.status != "OPEN":
        return None  # closed by another run or by the person
    at = trade.entry_price if price is None else price
    batch = db.batch()
    batch.update(
        ref,
        {**trade.closed(at, person.now), "close_reason": reason},
        option=unchanged_since(db, snapshot),
    )
    count_open_trades(batch, db, person.uid, -1)
    if also is not None:
        also(batch, trade)
    try:
        batch.commit()
    except LOST_RACE:
        return None
    person.changed = True
    return trade


# -- paper orders --------------------------------------------------------------------------------


def _new_order(
    batch: firestore.WriteBatch,
    person: Person,
    order_id: str,
    symbol: str,
    side: str,
    quantity: Decimal,
    sid: str,
    trade_id: str,
) -> None:
    """The order, before it is sent (`pending`): written with the decision, so a crash between
    the two leaves an order the next run sends under the same client_order_id."""
    db = person.db
    batch.create(
        paths.orders(db, person.uid).document(order_id),
        {
            "symbol": symbol,
            "side": side,
            "qty": str(quantity),
            "status": "pending",
            "open": True,
            "strategy_id": sid,
            "trade_id": trade_id,
            "opening": order_id.endswith("-open"),
            "created_at": person.now,
        },
    )
    batch.set(paths.user(db, person.uid), {"orders_pending": firestore.Increment(1)}, merge=True)


def _submit(
    person: Person,
    order_id: str,
    symbol: str,
    side: str,
    quantity: Decimal,
    trade_id: str,
    opening: bool,
) -> None:
    """Send the order (Alpaca answers a client_order_id it has seen with that order)."""
    try:
        state = person.broker.submit_order(symbol, side, quantity, order_id)
    except BrokerError as error:
        if error.code != ErrorCode.ORDER_REJECTED:
            raise  # stays pending: the next run sends it again under the same id
        _finish_order(person, order_id, {"status": "rejected", "reason": error.message})
        if opening:
            _flatten(person, trade_id, f"order rejected: {error.message}")
        raise StrategyFailure(ErrorCode.ORDER_REJECTED, error.message) from None
    _order_update(person, order_id, state, trade_id, opening, submitted=True)


def follow_orders(person: Person) -> None:
    """Every paper order Alpaca may still change: send the ones never confirmed sent, ask
    about the others, record what they became."""
    db = person.db
    for doc in queries.open_orders(db, person.uid).stream():
        order = doc.to_dict() or {}
        trade_id = str(order.get("trade_id", ""))
        opening = bool(order.get("opening"))
        try:
            if order.get("status") == "pending":
                _submit(
                    person,
                    doc.id,
                    str(order["symbol"]),
                    str(order["side"]),
                    decimal(order["qty"]),
                    trade_id,
                    opening,
                )
            else:
                _order_update(person, doc.id, person.broker.order(doc.id), trade_id, opening)
        except (BrokerError, StrategyFailure) as error:
            logger.warn("bot.order_not_followed", uid=person.uid, order_id=doc.id, code=error.code)


def _order_update(
    person: Person,
    order_id: str,
    state: OrderState,
    trade_id: str,
    opening: bool,
    submitted: bool = False,
) -> None:
    """Record what Alpaca says of an order (`submitted`: it has just been sent)."""
    fields: dict[str, Any] = {"status": state.status, "alpaca_order_id": state.id}
    if submitted:
        fields["submitted_at"] = person.now
    if state.filled_avg_price is not None:
        fields["filled_avg_price"] = str(state.filled_avg_price)
        fields["filled_qty"] = str(state.filled_qty)
    if state.filled_at is not None:
        fields["filled_at"] = state.filled_at
    if not state.final:
        paths.orders(person.db, person.uid).document(order_id).set(fields, merge=True)
        return
    if not _finish_order(person, order_id, fields):
        return  # another run recorded it
    if state.status == "filled" and state.filled_avg_price is not None:
        _at_fill(person, trade_id, state.filled_avg_price, opening)
    elif opening:
        _flatten(person, trade_id, f"order {state.status} by Alpaca")


def _at_fill(person: Person, trade_id: str, price: Decimal, opening: bool) -> None:
    """A paper trade follows its fills: its entry price becomes the entry order's fill, its
    exit price (and realized P&L) the exit order's. The set of trades changes version, so
    every instance prices it afresh and the statistics count it again."""
    db = person.db
    ref = paths.shadow_trades(db, person.uid).document(trade_id)

    def attempt() -> None:
        snapshot = ref.get()
        if not snapshot.exists:
            return
        stored = snapshot.to_dict() or {}
        trade = ShadowTrade.model_validate(stored)
        if opening and trade.status == "OPEN" and trade.entry_price != price:
            update = {"entry_price": str(price)}
        elif not opening and trade.status == "CLOSED" and stored.get("exit_price") != str(price):
            update = {"exit_price": str(price), "realized_pnl": str(trade.realized_pnl(price))}
        else:
            return
        batch = db.batch()
        batch.update(ref, update, option=unchanged_since(db, snapshot))
        batch.set(
            paths.user(db, person.uid), {"trades_version": firestore.Increment(1)}, merge=True
        )
        batch.commit()

    try:
        retried(attempt)
    except Contended:
        logger.warn("bot.fill_not_recorded", uid=person.uid, trade_id=trade_id)


def _finish_order(person: Person, order_id: str, fields: dict[str, Any]) -> bool:
    """Record a final state once (precondition on the order as read); False if another run
    recorded it first."""
    db = person.db
    ref = paths.orders(db, person.uid).document(order_id)
    snapshot = ref.get()
    if not snapshot.exists or not (snapshot.to_dict() or {}).get("open"):
        return False
    batch = db.batch()
    batch.update(ref, {**fields, "open": False}, option=unchanged_since(db, snapshot))
    batch.set(paths.user(db, person.uid), {"orders_pending": firestore.Increment(-1)}, merge=True)
    try:
        batch.commit()
    except LOST_RACE:
        return False
    return True


def _flatten(person: Person, trade_id: str, reason: str) -> None:
    """An entry whose order never filled: close its trade at its entry price (no P&L)."""
    _close(person, paths.shadow_trades(person.db, person.uid).document(trade_id), None, reason)


# -- a strategy's state ----------------------------------------------------------------------------


def _record_failure(
    person: Person,
    sid: str,
    strategy: StrategyDoc,
    code: str,
    message: str,
    retry: bool,
) -> None:
    known = strategy.last_error or {}
    if strategy.status == "error" and known.get("code") == code and known.get("retry") == retry:
        return  # already says so: no write a minute
    logger.warn("bot.strategy_failed", uid=person.uid, strategy_id=sid, code=code)
    _set_status(
        person,
        sid,
        "error",
        {"code": code, "message": message, "at": person.now, "retry": retry},
    )


def _set_status(person: Person, sid: str, status: str, error: dict[str, Any] | None) -> None:
    """The pulse's change of a strategy's status, unless the person changed it in between
    (they paused or deleted it: theirs wins)."""
    db = person.db
    ref = paths.strategies(db, person.uid).document(sid)
    snapshot = ref.get()
    if not snapshot.exists or (snapshot.to_dict() or {}).get("status") not in ("active", "error"):
        return
    batch = db.batch()
    batch.update(
        ref,
        {"status": status, "last_error": error if error else firestore.DELETE_FIELD},
        option=unchanged_since(db, snapshot),
    )
    bump_bot_version(batch, db, person.uid)
    try:
        batch.commit()
    except LOST_RACE:
        pass


# -- statistics, the equity curve and evaluation notes -----------------------------------------


@dataclass
class Books:
    performance: Performance
    written_at: float | None = None
    """When this instance last wrote them (monotonic); None: not since it started."""
    notes: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def peak_equity(self) -> Decimal | None:
        return self.performance.peak_equity


def _books(person: Person) -> Books:
    kept = person.platform.memory.recall("books", person.memory_key)
    if isinstance(kept, Books):
        return kept
    doc = paths.stats_summary(person.db, person.uid).get()
    books = Books(Performance.from_document(doc.to_dict() if doc.exists else None))
    person.platform.memory.keep("books", person.memory_key, books)
    return books


def _write_books(
    person: Person,
    account: AccountSnapshot,
    trades: list[tuple[str, ShadowTrade]],
    books: Books,
    notes: dict[str, dict[str, str]],
) -> None:
    """Equity point, statistics and each strategy's last evaluation: when something happened,
    a new day began, the decisions changed, or `BOOKS_EVERY` passed."""
    performance = books.performance
    due = (
        person.changed
        or books.written_at is None
        or performance.point_day != person.day
        or performance.closed_version != person.trades_version
        or notes != books.notes
        or time.monotonic() - books.written_at >= BOOKS_EVERY.total_seconds()
    )
    if not due:
        return
    db, uid, now = person.db, person.uid, person.now
    if person.changed or performance.closed_version != person.trades_version:
        realized = []
        for doc in queries.closed_trades(db, uid).stream():
            value = (doc.to_dict() or {}).get("realized_pnl")
            if value is not None:
                realized.append(decimal(value))
        performance = performance.with_closed(realized, person.trades_version)
    unrealized = sum(
        (t.unrealized_pnl for _, t in trades if t.unrealized_pnl is not None), Decimal(0)
    )
    performance = replace(
        performance.observe(person.day, account.equity), unrealized_pnl=unrealized
    )
    batch = db.batch()
    batch.set(paths.stats_summary(db, uid), performance.document(now))
    batch.set(
        paths.equity_points(db, uid).document(person.day),
        {"equity": str(account.equity), "at": now},
    )
    for sid, decisions in notes.items():
        if books.notes.get(sid) != decisions or person.changed or books.written_at is None:
            batch.update(
                paths.strategies(db, uid).document(sid),
                {"last_evaluated_at": now, "last_decisions": decisions},
            )
    try:
        batch.commit()
    except gexc.NotFound:  # a strategy deleted meanwhile: the rest next run
        return
    person.platform.memory.keep(
        "books", person.memory_key, Books(performance, time.monotonic(), notes)
    )
