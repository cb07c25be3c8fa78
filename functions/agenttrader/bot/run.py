"""The bot's run for one person: their paper orders are followed (`orders`), their paper book
reconciled with Alpaca's positions (`reconcile`), then their active strategies decide and each
symbol either enters (`entries`) or exits (`exits`); every trade moves through one lifecycle
(`lifecycle`).

For each strategy and symbol: open a position when the strategy says BUY or SELL and none is
open for that strategy and symbol; close it on take-profit, stop-loss or the strategy's exit
(its decision turning against the position). Every step is idempotent by construction:

- an entry is the trade document `{strategy}-{symbol}-{day}`, created (never overwritten) with
  its signal and, in paper mode, its order: a second run, an overlapping run or a retried task
  finds it exists, so a strategy enters a symbol at most once a trading day;
- an exit is a write with a precondition on the trade as read: of racing exits one wins; it is
  considered only for a trade that is `open` (its entry filled), whatever the switches say:
  the person's switch and a risk trip stop entries, never the exits that protect a position;
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
from pydantic import ValidationError

from agenttrader.bot import risk
from agenttrader.bot.books import (
    Books,
    books_of,
    recount_closed,
    refresh,
    shadow_pnl,
    write_books,
)
from agenttrader.bot.entries import enter, stop_entries
from agenttrader.bot.exits import exit_position, exit_reason
from agenttrader.bot.orders import Unsent, follow_orders, send_entries
from agenttrader.bot.person import Market, Person, StrategyFailure, bars_since
from agenttrader.bot.protection import protect
from agenttrader.bot.reconcile import due as reconcile_due
from agenttrader.bot.reconcile import reconcile
from agenttrader.bot.resting import follow_resting, rest_exits
from agenttrader.bot.settings import BotConfig, StrategyDoc, bump_bot_version, load_bot_config
from agenttrader.bot.strategies import STRATEGIES
from agenttrader.broker.answers import AccountSnapshot, Bar
from agenttrader.broker.refusals import BrokerError
from agenttrader.context.platform import Platform
from agenttrader.core.errors import ErrorCode
from agenttrader.store import paths, queries
from agenttrader.store.firestore_io import fields_of
from agenttrader.store.models import ShadowTrade, at_broker, marked_to
from agenttrader.store.optimistic import LOST_RACE, unchanged_since


def known_config(platform: Platform, memory_key: str, version: int) -> BotConfig | None:
    """The person's settings as this instance read them for this version, if it did."""
    kept = platform.memory.recall("bot", memory_key)
    return kept if isinstance(kept, BotConfig) and kept.version == version else None


def config_of(platform: Platform, uid: str, memory_key: str, version: int) -> BotConfig:
    """The person's strategies and limits: as this instance read them for this version."""
    kept = known_config(platform, memory_key, version)
    if kept is not None:
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
    config: BotConfig | None,
    account: AccountSnapshot,
    trades: list[tuple[str, ShadowTrade]],
    prices: Mapping[str, Decimal],
    market: Market,
    orders_pending: int | None,
    recorded_mismatches: int = 0,
) -> list[str]:
    """One run of the person's bot while the market is open: follow their paper orders,
    reconcile their paper book with Alpaca's positions, check every open trade against its
    own exit levels (`protection`, whatever its strategy's state), check the limits, then
    each running strategy's exits (always) and entries (while `person.entries_allowed`).
    Returns the codes of what went wrong (a trip, a difference, a strategy's failure) for
    the run's summary. Raises only what is not a strategy's own."""
    problems: list[str] = []
    working: set[str] = set()
    unsent: Unsent = []
    if orders_pending:
        working, unsent = follow_orders(person)
        follow_resting(person)
    if person.changed:  # fills moved some: as they are now, marked to this run's prices
        trades = marked_to(open_trades(person.db, person.uid), prices)
    if reconcile_due(trades, orders_pending, recorded_mismatches):
        problems += _reconciled(person, trades, working, recorded_mismatches)
    strategies = dict(config.strategies) if config is not None else {}
    problems += protect(person, trades, prices, strategies)
    rest_exits(person, trades, prices)
    running = config.running if config is not None else []
    if config is None or not running:
        send_entries(person, unsent, lambda order: _refusal(person, order, set()))
        if person.changed:  # an order filled or ended: the statistics count it
            recount_closed(person.db, person.uid, person.now)
        return problems
    books = refresh(person, books_of(person, running), trades, account.equity)
    if person.entries_allowed:
        breach = risk.on_pulse(config.limits, account, books.peak_equity) or _shadow_breach(
            config, books, trades
        )
        if breach is not None:
            stop_entries(person, breach)
            problems.append(ErrorCode.RISK_LIMIT_TRIPPED)
    running_ids = {sid for sid, _ in running}
    send_entries(person, unsent, lambda order: _refusal(person, order, running_ids))
    bars = _bars_for(person, running, market)
    open_by_key = {(t.strategy_id, t.symbol): (path, t) for path, t in trades if t.strategy_id}
    notes: dict[str, dict[str, str]] = {}
    for sid, strategy in running:
        allowed = person.entries_allowed
        try:
            notes[sid] = _run_strategy(
                person, config, sid, strategy, bars, prices, open_by_key, account
            )
            if strategy.status == "error":
                _set_status(person, sid, "active", None)
        except (StrategyFailure, BrokerError) as failure:
            retry = failure.retry if isinstance(failure, StrategyFailure) else failure.may_pass
            _record_failure(person, sid, strategy, failure.code, failure.message, retry)
            problems.append(failure.code)
        if allowed and not person.entries_allowed:
            problems.append(ErrorCode.RISK_LIMIT_TRIPPED)  # an entry's limit tripped
    if person.changed and any(at_broker(s.mode) for _, s in running):
        # an entry that filled at once has its exit resting from this run, not the next
        rest_exits(person, marked_to(open_trades(person.db, person.uid), prices), prices)
    write_books(person, account, trades, books, notes)
    return problems


def _reconciled(
    person: Person, trades: list[tuple[str, ShadowTrade]], working: set[str], recorded: int
) -> list[str]:
    """Compare the paper book with Alpaca's positions; the codes of what went wrong (a
    failure to ask stays here: what is held is still protected after it)."""
    try:
        return [ErrorCode.POSITION_MISMATCH] if reconcile(person, trades, working, recorded) else []
    except BrokerError as error:
        logger.warn("bot.reconcile_failed", uid=person.uid, code=str(error.code))
        return [error.code]


def _refusal(person: Person, order: dict[str, Any], running: set[str]) -> str:
    """Why an entry decided earlier may no longer leave ("" when it may)."""
    if not person.entries_allowed:
        return "trading was switched off, or a risk limit tripped, after it was decided"
    if str(order.get("symbol")) in person.mismatched:
        return "the product's book and Alpaca's positions differ in this symbol"
    if order.get("strategy_id") not in running:
        return "its strategy no longer runs"
    return ""


def _shadow_breach(
    config: BotConfig, books: Books, trades: list[tuple[str, ShadowTrade]]
) -> risk.Breach | None:
    performance = books.performance
    if performance.shadow_base is None or performance.shadow_peak is None:
        return None
    return risk.on_shadow_book(
        config.limits,
        shadow_pnl(books, trades),
        performance.shadow_day_start or Decimal(0),
        performance.shadow_base,
        performance.shadow_peak,
    )


def open_trades(db: firestore.Client, uid: str) -> list[tuple[str, ShadowTrade]]:
    """A person's open trades (status OPEN: opening, open or closing), read now."""
    found = []
    for doc in queries.open_trades(db, uid).stream():
        try:
            found.append((doc.reference.path, ShadowTrade.model_validate(fields_of(doc))))
        except ValidationError as error:
            logger.warn(
                "pulse.trade_unreadable", uid=uid, trade_id=doc.id, errors=error.error_count()
            )
    return found


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
    account: AccountSnapshot,
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
    if strategy.mode == "live" and person.keys.paper:
        raise StrategyFailure(
            ErrorCode.KEYS_NOT_LIVE,
            "live mode trades only with the keys of a live account; these are paper keys "
            "(save your live account's keys, or use paper mode)",
        )
    if at_broker(strategy.mode) and not person.keys.may_trade:
        raise StrategyFailure(
            ErrorCode.TOKEN_SCOPE,
            f"Connect with Alpaca did not allow trading, which {strategy.mode} mode needs: "
            "connect again and allow trading, or use shadow mode",
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
            reason = exit_reason(held[1], decision)
            if reason:
                exit_position(person, held, price, reason)
        elif decision.action != "HOLD":
            enter(person, config, sid, strategy, symbol, price, decision, account)
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
