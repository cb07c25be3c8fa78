"""One person's sync, and a batch of them: read their Alpaca account (and, while the market is
open, price their open trades), write only what changed, and record a failure where they can
see it. The pulse runs batches of these; a person can ask for their own through a callable.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from agenttrader.bot.person import Market, Person
from agenttrader.bot.run import config_of, open_trades, trade_for
from agenttrader.broker.alpaca import AlpacaBroker
from agenttrader.broker.keystore import AlpacaKeys
from agenttrader.context.platform import Platform
from agenttrader.core.errors import AgentTraderError, ErrorCode
from agenttrader.pulse.outcomes import (
    daily_summary,
    describe,
    log_outcome,
    record_failure,
    record_success,
)
from agenttrader.pulse.people import PulseSettings, UserRef, holds_something
from agenttrader.pulse.prime import prime
from agenttrader.pulse.shared import shared_prices
from agenttrader.store import paths
from agenttrader.store.firestore_io import fields_of, get_by_path
from agenttrader.store.models import (
    ShadowTrade,
    marked_to,
    snapshot_document,
)
from agenttrader.store.switches import trading_enabled
from agenttrader.store.totals import count_open_trades_once


def _digest(doc: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


class SyncTimeout(AgentTraderError):
    """One person's sync ran past its time budget."""

    def __init__(self) -> None:
        super().__init__(
            ErrorCode.SYNC_TIMEOUT, "the sync took longer than its time budget; nothing was written"
        )


def sync_users(
    platform: Platform,
    users: list[UserRef],
    run_id: str,
    deadline: float,
    settings: PulseSettings,
    *,
    market_closed: bool = False,
    trading_day: str | None = None,
    closes_at: datetime | None = None,
    summary_day: str | None = None,
    everyone: bool = False,
) -> tuple[Counter[str], Counter[str]]:
    """Sync these people with bounded concurrency; returns outcome counts and error codes.
    With `trading_day` (the market is open by Alpaca's clock) their strategies trade too, and
    their orders leave until a minute before `closes_at` (the session's close).
    A person whose switch is off is still synced while they hold something (open trades or
    orders working): their exits and orders go on, their entries do not. With `everyone`
    (these are the whole population), what this instance does not know of them yet is read
    for all of them at once first (`prime`). With `summary_day` (the market has closed since
    that trading day) each person is sent that day's summary, once."""
    db = platform.db
    counts: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    with_keys = []
    for user in users:
        if user.keys_version is None:
            counts["skipped_no_keys"] += 1
            log_outcome(run_id, user.uid, "skipped_no_keys", 0)
        else:
            with_keys.append(user)
    enabled = trading_enabled(db, [u.uid for u in with_keys])
    todo = []
    for user in with_keys:
        if enabled.get(user.uid) or holds_something(user):
            todo.append(user)
        else:
            counts["skipped_disabled"] += 1
            log_outcome(run_id, user.uid, "skipped_disabled", 0)
    if not todo:
        return counts, errors
    # a new order each run: when a run reaches its deadline, it is never the same people left
    random.Random(run_id).shuffle(todo)
    market = Market(trading_day, closes_at=closes_at)
    workers = _workers(max(1, settings.concurrency))
    # what this instance does not know of them, read at once by the sync threads (which wait
    # for nothing else yet): their stored snapshots beside what `prime` reads, and their keys
    recalled = workers.submit(_recall_snapshots, platform, todo)
    workers.submit(platform.keys.prefetch, [(u.uid, u.keys_version) for u in todo])
    if everyone and not market_closed:
        prime(platform, todo, trades=True, bots=trading_day is not None)
    recalled.result()
    switched_on = [u for u in todo if enabled.get(u.uid)]
    shared = {} if market_closed else shared_prices(platform, switched_on, todo, market)
    results = workers.map(
        lambda user: sync_one_user(
            platform,
            user,
            run_id,
            deadline,
            settings,
            market_closed,
            shared,
            market,
            entries=bool(enabled.get(user.uid)),
            summary_day=summary_day,
        ),
        todo,
    )
    for outcome, codes in results:
        counts[outcome] += 1
        errors.update(codes)
    return counts, errors


@functools.cache
def _workers(size: int) -> ThreadPoolExecutor:
    """The instance's pool of sync threads, kept between runs (starting dozens of threads a
    minute is time a run does not have)."""
    return ThreadPoolExecutor(max_workers=size, thread_name_prefix="pulse")


def _recall_snapshots(platform: Platform, users: list[UserRef]) -> None:
    """Read the stored snapshot of each person this instance has not seen, in batched reads."""
    memory = platform.memory
    unknown = {u.uid: u for u in users if memory.snapshot(u.memory_key) is None}
    if not unknown:
        return
    db = platform.db
    for doc in get_by_path(db, [paths.account_snapshot(db, uid) for uid in unknown]).values():
        if doc.exists:
            stored = {k: v for k, v in fields_of(doc).items() if k != "synced_at"}
            memory.remember(unknown[doc.reference.parent.parent.id].memory_key, _digest(stored))


def sync_one_user(
    platform: Platform,
    user: UserRef,
    run_id: str,
    deadline: float,
    settings: PulseSettings,
    market_closed: bool = False,
    shared_prices: Mapping[str, Decimal] | None = None,
    market: Market | None = None,
    *,
    entries: bool = True,
    bot: bool = True,
    summary_day: str | None = None,
) -> tuple[str, list[str]]:
    """Sync one person (and, with an open `market`, run their bot: entries only when
    `entries`, their switch being on); never raises. Without `bot` (a sync the person asked
    for) only the account and the marks: no order is sent, followed or cancelled. Returns the
    outcome and the codes of what went wrong (the sync's failure, or a trip or a strategy's
    failure next to a successful sync)."""
    started = time.monotonic()
    if started > deadline:
        log_outcome(run_id, user.uid, "deferred", 0)
        return "deferred", []
    code: ErrorCode | None = None
    codes: list[str] = []
    try:
        scope = SyncScope(
            run_id,
            started + settings.user_timeout_s,
            market_closed,
            shared_prices or {},
            market or Market(None),
            entries,
            bot,
            summary_day,
        )
        outcome, codes = _sync(platform, user, scope)
    except Exception as error:  # one person's failure must never stop the others
        code, message = describe(error)
        record_failure(platform, user, run_id, code, message)
        outcome, codes = "failed", [code]
    log_outcome(
        run_id,
        user.uid,
        outcome,
        int((time.monotonic() - started) * 1000),
        **({"code": code} if code else {}),
    )
    return outcome, codes


@dataclass(frozen=True)
class SyncScope:
    """What one person's sync may do in this run."""

    run_id: str
    budget_end: float
    """Monotonic time past which the sync fails with SYNC_TIMEOUT and writes nothing."""
    market_closed: bool
    shared_prices: Mapping[str, Decimal]
    market: Market
    entries: bool
    """Their switch is on: the bot may enter (exits and orders go on regardless)."""
    bot: bool
    """The bot runs at all (not in a sync the person asked for)."""
    summary_day: str | None = None
    """A trading day that has closed: its summary is sent to whoever was not sent it yet."""


def _marks_of(marked: list[tuple[str, ShadowTrade]]) -> dict[str, dict[str, Any]]:
    """`status/marks`'s `trades`: each open trade's current price, unrealized P&L and P&L %,
    by trade id. The page shows these over a trade's own figures (which are as of when it
    opened)."""
    return {
        path.rsplit("/", 1)[1]: trade.priced(trade.current_price)
        for path, trade in marked
        if trade.current_price is not None
    }


def _sync(platform: Platform, user: UserRef, scope: SyncScope) -> tuple[str, list[str]]:
    """Read the account (and, while the market is open, price the open trades); write only
    what changed, in one commit; then run the person's bot."""
    keys = platform.keys.load(user.uid, user.keys_version)
    if keys is None:
        return "skipped_no_keys", []
    broker = platform.brokers(keys)
    try:
        return _sync_with(platform, user, keys, broker, scope)
    finally:
        broker.close()


def _sync_with(
    platform: Platform,
    user: UserRef,
    keys: AlpacaKeys,
    broker: AlpacaBroker,
    scope: SyncScope,
) -> tuple[str, list[str]]:
    db = platform.db
    run_id, market, entries, bot = scope.run_id, scope.market, scope.entries, scope.bot
    shared_prices = scope.shared_prices
    uid = user.uid
    look_at_trades = not scope.market_closed and user.open_trades != 0
    memory = platform.memory
    trading = bot and market.day is not None and user.bot_version is not None
    config = (
        config_of(platform, uid, user.memory_key, user.bot_version)
        if trading and user.bot_version is not None
        else None
    )
    traded = {s for _, st in config.running for s in st.symbols} if config else set()
    account = broker.account()
    trades = _trades_of(platform, user) if look_at_trades else []
    symbols = {t.symbol for _, t in trades} | traded
    prices = {s: shared_prices[s] for s in symbols if s in shared_prices}
    prices.update(broker.latest_prices(sorted(symbols - prices.keys())))
    if time.monotonic() > scope.budget_end:
        raise SyncTimeout()
    now = platform.now()
    batch = db.batch()
    writes = 0
    snapshot = snapshot_document(account)
    digest = _digest(snapshot)
    if memory.snapshot(user.memory_key) != digest:
        batch.set(paths.account_snapshot(db, uid), {**snapshot, "synced_at": now})
        writes += 1
    marked = marked_to(trades, prices)
    marks = _marks_of(marked)
    if trades and memory.recall("marks", user.memory_key) != marks:
        # one write for all of a person's trades, however many moved
        batch.set(paths.marks(db, uid), {"trades": marks, "priced_at": now})
        writes += 1
    writes += record_success(batch, db, user, run_id, now, keep_trip=not entries)
    day = scope.summary_day
    if day and (user.summary_day or "") < day:
        writes += daily_summary(batch, db, uid, day, account, now)
    if not user.keys_shown:  # keys stored before profiles showed them (a migration, a seed)
        batch.set(paths.user(db, uid), keys.shown(), merge=True)
        writes += 1
    if writes:
        batch.commit()
    if look_at_trades and user.open_trades is None:
        count_open_trades_once(db, uid)  # before any entry: each entry adds to a count
    memory.remember(user.memory_key, digest)
    if trades:
        memory.keep("marks", user.memory_key, marks)
    if look_at_trades:
        memory.remember_trades(user.memory_key, user.trades_version, marked)
    codes: list[str] = []
    if (
        bot
        and market.day is not None
        and (config is not None or user.orders_pending or user.position_mismatches or marked)
    ):
        person = Person(
            platform,
            uid,
            user.memory_key,
            keys,
            broker,
            run_id,
            now,
            market.day,
            user.trades_version,
            entries_allowed=entries,
            account_number=account.account_number,
            account_id=account.account_id,
            closes_at=market.closes_at,
        )
        codes = trade_for(
            person,
            config,
            account,
            marked,
            prices,
            market,
            user.orders_pending,
            user.position_mismatches,
        )
    return "synced", codes


def _trades_of(platform: Platform, user: UserRef) -> list[tuple[str, ShadowTrade]]:
    """The person's open trades: as this instance last saw them if their set has not changed
    since (same `trades_version`), else read."""
    remembered = platform.memory.trades(user.memory_key, user.trades_version)
    if remembered is not None:
        return list(remembered.trades)
    return open_trades(platform.db, user.uid)
