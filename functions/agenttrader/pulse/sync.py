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
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from firebase_functions import logger
from google.api_core import exceptions as gexc
from google.cloud import firestore

from agenttrader.bot import notices
from agenttrader.bot.person import Market, Person, bars_since
from agenttrader.bot.run import config_of, open_trades, symbols_known, trade_for
from agenttrader.bot.settings import bot_version
from agenttrader.broker.alpaca import NEW_YORK, AccountSnapshot, AlpacaBroker
from agenttrader.broker.keystore import AlpacaKeys
from agenttrader.context.platform import Platform
from agenttrader.core.errors import AgentTraderError, ErrorCode
from agenttrader.core.money import cents, plain
from agenttrader.pulse.prime import prime
from agenttrader.store import paths, queries
from agenttrader.store.firestore_io import chunks, fields_of, get_by_path
from agenttrader.store.models import (
    ShadowTrade,
    keys_version,
    marked_to,
    open_trades_count,
    set_sync_error,
    snapshot_document,
)
from agenttrader.store.switches import trading_enabled
from agenttrader.store.totals import count_open_trades_once

OUTCOMES = (
    "synced",
    "skipped_disabled",
    "skipped_no_keys",
    "skipped_in_progress",
    "deferred",
    "failed",
)


@dataclass(frozen=True)
class PulseSettings:
    """Limits of one pulse."""

    concurrency: int = 32
    """Users synced at once by this instance."""
    deadline_s: float = 50.0
    """No user is started after this many seconds; the schedule is every 60 s."""
    lease_s: float = 120.0
    """How long a run's lease outlives a run that may have died (fan-out runs hold it only
    until their deadline, so the next minute's run can start)."""
    user_timeout_s: float = 25.0
    """A user whose sync takes longer fails with SYNC_TIMEOUT and writes nothing."""
    fanout_threshold: int = 2000
    """Above this many users, fan out through the task queue (when one is given)."""
    fanout_batch: int = 100
    """Users per task when fanning out."""


@dataclass(frozen=True)
class UserRef:
    """A person to sync, as their profile lists them."""

    uid: str
    keys_version: int | None
    open_trades: int | None = None
    """Their open shadow trades (None: not counted yet, so look)."""
    sync_state: str | None = None
    """`ok` or `failing` as last recorded; None before their first sync."""
    trades_version: int | None = None
    """The version of their set of open trades; None: read them every time."""
    generation: str = ""
    """When their profile was created: what an instance remembers of them is for this one."""
    bot_version: int | None = None
    """The version of their strategies and risk limits; None: they never set any up."""
    orders_pending: int | None = None
    """Their paper orders Alpaca may still change."""
    position_mismatches: int = 0
    """Differences between their paper book and Alpaca's positions on record."""
    keys_shown: bool = True
    """Their profile shows their keys (`key_id_masked`); False: written at their next sync."""
    failing_since: float | None = None
    """When their syncs began failing (Unix seconds), while they do."""
    failing_told: bool = False
    """They were told their syncs are failing (`notices.sync_failing`), this failing spell."""
    summary_day: str | None = None
    """The last trading day they were sent the summary of."""

    @property
    def memory_key(self) -> str:
        return f"{self.uid}@{self.generation}"


def user_ref(uid: str, profile: Mapping[str, Any] | None, created: Any = None) -> UserRef:
    """A person as their profile lists them (`created`: the profile's creation time)."""
    data = profile or {}
    version = data.get("trades_version")
    pending = data.get("orders_pending")
    mismatches = data.get("position_mismatches")
    since, summary = data.get("failing_since"), data.get("summary_day")
    return UserRef(
        uid,
        keys_version(data),
        open_trades_count(data),
        data.get("sync_state"),
        version if isinstance(version, int) else None,
        "" if created is None else str(created),
        bot_version(data),
        pending if isinstance(pending, int) else None,
        mismatches if isinstance(mismatches, int) else 0,
        bool(data.get("key_id_masked")),
        since.timestamp() if isinstance(since, datetime) else None,
        bool(data.get("failing_told")),
        summary if isinstance(summary, str) else None,
    )


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
            _log_outcome(run_id, user.uid, "skipped_no_keys", 0)
        else:
            with_keys.append(user)
    enabled = trading_enabled(db, [u.uid for u in with_keys])
    todo = []
    for user in with_keys:
        if enabled.get(user.uid) or holds_something(user):
            todo.append(user)
        else:
            counts["skipped_disabled"] += 1
            _log_outcome(run_id, user.uid, "skipped_disabled", 0)
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
    shared = {} if market_closed else _shared_prices(platform, switched_on, todo, market)
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


PRICE_CHUNK = 200
"""Symbols per latest-trades request."""
PRICE_TRIES = 3
"""People whose keys the shared price request is tried with."""


def holds_something(user: UserRef) -> bool:
    """Open trades or orders working (or not counted yet): synced whatever their switch."""
    return (user.open_trades or 0) > 0 or bool(user.orders_pending)


def _shared_prices(
    platform: Platform, askers: list[UserRef], users: list[UserRef], market: Market
) -> dict[str, Decimal]:
    """Market data is the same for every account: the latest price of every symbol this
    instance knows `users` hold or their strategies trade, and (while the strategies trade)
    those symbols' daily bars into `market`, in a few requests for the whole run instead of
    some per person, asked with the keys of one of `askers` (people whose trading is on).
    Whatever it lacks (a person this instance has not seen, a failed request), each person's
    sync asks for itself."""
    symbols: set[str] = set()
    traded: set[str] = set()
    for user in users:
        remembered = platform.memory.trades(user.memory_key, user.trades_version)
        if remembered is not None:
            symbols.update(trade.symbol for _, trade in remembered.trades)
        if market.day is not None and user.bot_version is not None:
            traded.update(symbols_known(platform, user.memory_key))
    symbols |= traded
    if not symbols:
        return {}

    def latest(broker: AlpacaBroker) -> dict[str, Decimal]:
        prices: dict[str, Decimal] = {}
        for chunk in chunks(sorted(symbols), PRICE_CHUNK):
            prices.update(broker.latest_prices(chunk))
        if traded:
            since = bars_since(platform.now())
            for chunk in chunks(sorted(traded), PRICE_CHUNK):
                market.bars.update(broker.daily_bars_many(chunk, since))
            market.bars.update({s: [] for s in traded - market.bars.keys()})  # not listed
        return prices

    return with_someones_keys(platform, askers, PRICE_TRIES, latest, "shared_prices") or {}


T = TypeVar("T")


def with_someones_keys(
    platform: Platform,
    users: list[UserRef],
    tries: int,
    ask: Callable[[AlpacaBroker], T],
    what: str,
) -> T | None:
    """Ask Alpaca something that is the same for every account (the market clock, prices)
    with the keys of the first of `users` they work for, trying at most `tries` people;
    None when nobody's keys gave an answer. `users` are people being synced with their
    trading switched on: nobody else's credentials are used for what is not theirs."""
    for user in [u for u in users if u.keys_version is not None][:tries]:
        try:
            keys = platform.keys.load(user.uid, user.keys_version)
            if keys is None:
                continue
            broker = platform.brokers(keys)
            try:
                return ask(broker)
            finally:
                broker.close()
        except AgentTraderError as error:
            logger.warn(f"pulse.{what}_unavailable", code=error.code, uid=user.uid)
    return None


def some_switched_on(
    platform: Platform, users: list[UserRef], want: int, chunk: int = 10, most: int = 50
) -> list[UserRef]:
    """Up to `want` of `users` with keys whose trading is switched on, reading their switches
    a few at a time (at most `most` reads): whose keys may ask what is everyone's."""
    found: list[UserRef] = []
    candidates = [u for u in users if u.keys_version is not None][:most]
    for part in chunks(candidates, chunk):
        enabled = trading_enabled(platform.db, [u.uid for u in part])
        found += [u for u in part if enabled.get(u.uid)]
        if len(found) >= want:
            break
    return found[:want]


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


LOGGED_OUTCOMES = ("failed", "deferred")
"""Outcomes logged one line per person; the others are counted in the run's summary (a line
per person per minute is a log bill of its own at thousands of people)."""


def _log_outcome(run_id: str, uid: str, outcome: str, duration_ms: int, **extra: Any) -> None:
    if outcome not in LOGGED_OUTCOMES:
        return
    log = logger.warn if outcome == "failed" else logger.info
    log("pulse.user", run_id=run_id, uid=uid, outcome=outcome, duration_ms=duration_ms, **extra)


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
        _log_outcome(run_id, user.uid, "deferred", 0)
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
        code, message = _describe(error)
        _record_failure(platform, user, run_id, code, message)
        outcome, codes = "failed", [code]
    _log_outcome(
        run_id,
        user.uid,
        outcome,
        int((time.monotonic() - started) * 1000),
        **({"code": code} if code else {}),
    )
    return outcome, codes


def _describe(error: Exception) -> tuple[ErrorCode, str]:
    if isinstance(error, AgentTraderError):
        return error.code, error.message
    if isinstance(error, gexc.GoogleAPICallError):
        return ErrorCode.FIRESTORE_ERROR, f"Firestore: {error.message}"
    logger.error("pulse.user_crashed", error_type=type(error).__name__, error=str(error))
    return (
        ErrorCode.INTERNAL,
        "an internal error stopped this sync; it is logged and retried next pulse",
    )


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
    writes += _record_success(batch, db, user, run_id, now, keep_trip=not entries)
    day = scope.summary_day
    if day and (user.summary_day or "") < day:
        writes += _daily_summary(batch, db, uid, day, account, now)
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


def _record_success(
    batch: firestore.WriteBatch,
    db: firestore.Client,
    user: UserRef,
    run_id: str,
    now: datetime,
    keep_trip: bool = False,
) -> int:
    """What a success changes beyond the data: the sync status, the error and the profile's
    sync state, only when the person was not already healthy. With `keep_trip` (their switch
    is off) a risk trip's error stays until they switch back on. Returns the number of writes
    added."""
    uid = user.uid
    if user.sync_state == "ok" or (keep_trip and user.sync_state == "tripped"):
        return 0
    batch.set(
        paths.sync_status(db, uid),
        {
            "last_success_at": now,
            "last_attempt_at": now,
            "consecutive_failures": 0,
            "last_run_id": run_id,
            "last_error_code": firestore.DELETE_FIELD,
            "lease": firestore.DELETE_FIELD,
        },
        merge=True,
    )
    batch.delete(paths.last_sync_error(db, uid))
    batch.set(
        paths.user(db, uid),
        {
            "sync_state": "ok",
            "failing_since": firestore.DELETE_FIELD,
            "failing_told": firestore.DELETE_FIELD,
        },
        merge=True,
    )
    return 3


def _trades_of(platform: Platform, user: UserRef) -> list[tuple[str, ShadowTrade]]:
    """The person's open trades: as this instance last saw them if their set has not changed
    since (same `trades_version`), else read."""
    remembered = platform.memory.trades(user.memory_key, user.trades_version)
    if remembered is not None:
        return list(remembered.trades)
    return open_trades(platform.db, user.uid)


def _record_failure(
    platform: Platform, user: UserRef, run_id: str, code: str, message: str
) -> None:
    db = platform.db
    uid = user.uid
    now = platform.now()
    batch = db.batch()
    set_sync_error(batch, db, uid, code, message, now, run_id)
    batch.set(
        paths.sync_status(db, uid),
        {
            "last_attempt_at": now,
            "consecutive_failures": firestore.Increment(1),
            "last_error_code": code,
            "lease": firestore.DELETE_FIELD,
        },
        merge=True,
    )
    profile = _failing_profile(batch, db, user, code, message, now)
    if profile:
        batch.set(paths.user(db, uid), profile, merge=True)
    try:
        batch.commit()
    except gexc.GoogleAPICallError as error:
        logger.error("pulse.failure_not_recorded", uid=uid, code=code, error=error.message)


def _failing_profile(
    batch: firestore.WriteBatch,
    db: firestore.Client,
    user: UserRef,
    code: str,
    message: str,
    now: datetime,
) -> dict[str, Any]:
    """What a failure changes on the profile: the state and when the failing began, and once
    they have failed for `notices.FAILING_TOLD_AFTER`, the person told (in `batch`)."""
    if user.sync_state != "failing" or user.failing_since is None:
        return {"sync_state": "failing", "failing_since": now, "failing_told": False}
    since = datetime.fromtimestamp(user.failing_since, UTC)
    if user.failing_told or now - since < notices.FAILING_TOLD_AFTER:
        return {}
    notices.sync_failing(batch, db, user.uid, code, message, since, now)
    return {"failing_told": True}


def _daily_summary(
    batch: firestore.WriteBatch,
    db: firestore.Client,
    uid: str,
    day: str,
    account: AccountSnapshot,
    now: datetime,
) -> int:
    """The summary of trading day `day` (equity, the day's P&L by Alpaca's `last_equity`, the
    trades opened and closed as the day's notifications told them), and the profile's record
    that it was sent, in `batch`. Returns the number of writes added."""
    start = datetime.fromisoformat(day).replace(tzinfo=NEW_YORK)
    told = Counter(
        (doc.to_dict() or {}).get("kind")
        for doc in queries.notifications_between(db, uid, start, start + timedelta(days=1))
        .select(["kind"])
        .stream()
    )
    notices.daily_summary(
        batch,
        db,
        uid,
        day,
        plain(cents(account.equity)),
        plain(cents(account.equity - account.last_equity)),
        told[notices.ENTRY_FILLED],
        told[notices.EXIT_FILLED],
        now,
    )
    batch.set(paths.user(db, uid), {"summary_day": day}, merge=True)
    return 2
