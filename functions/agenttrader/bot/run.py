"""The bot's run for one person: their active strategies decide, each symbol either enters
(`entries`) or exits (`exits`), and their paper orders are followed (`orders`).

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

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from firebase_functions import logger
from google.cloud import firestore

from agenttrader.bot import risk
from agenttrader.bot.books import books_of, write_books
from agenttrader.bot.entries import enter
from agenttrader.bot.exits import exit_position, exit_reason
from agenttrader.bot.orders import follow_orders
from agenttrader.bot.person import Market, Person, StrategyFailure, Tripped, bars_since
from agenttrader.bot.settings import BotConfig, StrategyDoc, bump_bot_version, load_bot_config
from agenttrader.bot.strategies import STRATEGIES
from agenttrader.broker.alpaca import AccountSnapshot, Bar, BrokerError
from agenttrader.context.platform import Platform
from agenttrader.core.errors import ErrorCode
from agenttrader.store import paths
from agenttrader.store.models import ShadowTrade
from agenttrader.store.optimistic import LOST_RACE, unchanged_since


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
    books = books_of(person)
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
    write_books(person, account, trades, books, notes)
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
                exit_position(person, sid, strategy, held, price, reason)
        elif decision.action != "HOLD":
            enter(person, config, sid, strategy, symbol, price, decision)
    return decisions


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
