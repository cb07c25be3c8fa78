"""The pulse: every person's Alpaca snapshot and shadow-trade P&L, one person's failure
isolated, at a cost that follows the market.

`run_pulse` is the whole job; the scheduler, the operator script, the task queue, the tests and
the benchmark all call it (or `sync_users`, its per-batch half) with their own clients. The
scheduled run follows `cadence` (every minute while the market is open, every few minutes while
it is closed). A run writes for a person only what changed: their snapshot when the account
changed, a trade's marks when its price moved, their sync status when it turns healthy or
fails. Freshness is written once per run, at `ops/freshness`.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, astuple, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from firebase_functions import logger
from google.api_core import exceptions as gexc
from google.cloud import firestore

from agenttrader.bot.person import trading_day
from agenttrader.broker.calendar import calendar_clock
from agenttrader.context.platform import Platform
from agenttrader.pulse.cadence import PulseState, sync_due
from agenttrader.pulse.people import OUTCOMES, PulseSettings, UserRef, holds_something, user_ref
from agenttrader.pulse.shared import some_switched_on, with_platform_keys, with_someones_keys
from agenttrader.pulse.sync import sync_users
from agenttrader.store import paths
from agenttrader.store.firestore_io import chunks, fields_of, get_in_order
from agenttrader.store.optimistic import Contended, retried, unchanged_since
from agenttrader.store.switches import halts_everyone

Enqueue = Callable[[dict[str, Any]], None]


@dataclass
class PulseSummary:
    """What one run did, as stored at `ops/last_pulse`."""

    run_id: str
    mode: str
    started_at: datetime
    finished_at: datetime | None = None
    duration_ms: int = 0
    users_total: int = 0
    halted: bool = False
    market_open: bool | None = None
    tasks_enqueued: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def document(self) -> dict[str, Any]:
        doc = asdict(self)
        doc.pop("counts")
        doc.pop("errors")
        doc.update({outcome: self.counts.get(outcome, 0) for outcome in OUTCOMES})
        doc["errors_by_code"] = dict(self.errors)
        return doc


def list_users(db: firestore.Client) -> list[UserRef]:
    """Every person, with only the fields the pulse needs."""
    fields = [
        "keys_version",
        "open_trades",
        "sync_state",
        "trades_version",
        "bot_version",
        "orders_pending",
        "position_mismatches",
        "key_id_masked",
        "failing_since",
        "failing_told",
        "summary_day",
    ]
    return [
        user_ref(doc.id, fields_of(doc), doc.create_time)
        for doc in paths.users(db).select(fields).stream()
    ]


def run_pulse(
    platform: Platform,
    settings: PulseSettings | None = None,
    enqueue: Enqueue | None = None,
    *,
    cadence: bool = False,
) -> PulseSummary:
    """Sync every person once, in this instance or through the task queue; record the run.
    With `cadence` (the scheduled run) a run syncs only when the market's cadence says so and
    otherwise reads two documents and writes nothing."""
    settings = settings or PulseSettings()
    started = time.monotonic()
    summary = PulseSummary(run_id=uuid.uuid4().hex, mode="in_process", started_at=platform.now())
    db = platform.db
    state_ref = paths.pulse_state(db)
    state_doc, switch_doc = get_in_order(db, [state_ref, paths.global_trading(db)])
    state = PulseState.from_document(state_doc.to_dict() if state_doc.exists else None)
    now = summary.started_at
    if halts_everyone(switch_doc.to_dict() if switch_doc.exists else None):
        summary.halted, summary.mode = True, "halted"
        summary.finished_at = platform.now()
        logger.warn("pulse.halted", run_id=summary.run_id)
        _record(db, summary, started)
        return summary
    clock_current = state.clock_is_current(now)
    if cadence and clock_current and not sync_due(state, now, clock_just_read=False):
        summary.mode, summary.market_open = "idle", state.is_open
        logger.info("pulse.idle", market_open=state.is_open)
        return summary  # nothing written: the market is closed and the last sync is recent
    users = list_users(db)
    summary.users_total = len(users)
    clock_read = False
    # strategies trade, and stops protect what people hold, only while the market is open
    trades = any(u.bot_version is not None or holds_something(u) for u in users)
    if (cadence or trades) and not clock_current:
        state, clock_read = _read_clock(platform, users, state, now, settings.clock_keys_secret)
    elif not clock_current:
        state = replace(state, is_open=None)  # unknown: price the trades as if open
    summary.market_open = state.is_open
    if cadence and not sync_due(state, now, clock_read):
        summary.mode = "idle"
        if clock_read:
            state_ref.set({"clock": state.clock_document()}, merge=True)
        return summary
    lease_s = settings.deadline_s if _fans_out(users, settings, enqueue) else settings.lease_s
    if not _take_lease(db, state_ref, summary.run_id, now, lease_s):
        summary.mode = "overlap"
        summary.counts["skipped_in_progress"] = len(users)
        summary.finished_at = platform.now()
        summary.duration_ms = _ms_since(started)
        # in the history only: ops/last_pulse keeps the run that holds the lease
        paths.pulse_run(db, summary.run_id).set(summary.document())
        logger.warn("pulse.overlap", run_id=summary.run_id)
        return summary
    closed = state.is_open is False
    day, summary_day, closes_at = session = _days(state, now)
    if enqueue is not None and _fans_out(users, settings, enqueue):
        _fan_out(platform, users, summary, settings, enqueue, started, (closed, *session))
    else:
        counts, errors = sync_users(
            platform,
            users,
            summary.run_id,
            started + settings.deadline_s,
            settings,
            market_closed=closed,
            trading_day=day,
            closes_at=closes_at,
            summary_day=summary_day,
            everyone=True,
        )
        summary.counts.update(counts)
        summary.errors.update(errors)
        summary.finished_at = platform.now()
        _record(db, summary, started)
    _finish(platform, state, summary, now, day)
    return summary


def _days(state: PulseState, now: datetime) -> tuple[str | None, str | None, datetime | None]:
    """The trading day and when its session closes while the market is open; once it has
    closed, the day it last was (whose summary is due)."""
    if state.is_open is True and state.clock_at is not None:
        return trading_day(now), None, state.next_close
    return None, state.session_day if state.is_open is False else None, None


def _finish(
    platform: Platform, state: PulseState, summary: PulseSummary, now: datetime, day: str | None
) -> None:
    """Record the sync in `ops/pulse_state` (releasing an in-process lease, and the trading
    day when the market is open) and the freshness every person reads, in one commit: the
    run's only writes that are not for someone."""
    db = platform.db
    end: dict[str, Any] = {"last_sync_at": now, "clock": state.clock_document()}
    if day is not None:
        end["session_day"] = day
    if summary.mode == "in_process":
        end["lease"] = firestore.DELETE_FIELD
    batch = db.batch()
    batch.set(paths.pulse_state(db), end, merge=True)
    batch.set(
        paths.freshness(db),
        {
            "finished_at": summary.finished_at or platform.now(),
            "run_id": summary.run_id,
            "market_open": state.is_open,
        },
    )
    batch.commit()


def _fans_out(users: list[UserRef], settings: PulseSettings, enqueue: Enqueue | None) -> bool:
    return enqueue is not None and len(users) > settings.fanout_threshold


CLOCK_TRIES = 3
"""People whose keys the clock is asked with before a run goes on without it."""


def _read_clock(
    platform: Platform,
    users: list[UserRef],
    state: PulseState,
    now: datetime,
    platform_secret: str = "",
) -> tuple[PulseState, bool]:
    """Ask Alpaca's clock once: with the operator's own key pair when they set one
    (`platform_secret`), else with the keys of people being synced: those switched on first,
    then those who hold something (whose stops need the clock whatever their switch).
    Without an answer, the NYSE calendar tells the session (`calendar_clock`) until its next
    transition, when Alpaca is asked again."""
    clock = with_platform_keys(platform, platform_secret, lambda b: b.clock(), "clock")
    if clock is None:
        askers = some_switched_on(platform, users, CLOCK_TRIES)
        if len(askers) < CLOCK_TRIES:
            chosen = {u.uid for u in askers}
            askers += [u for u in users if holds_something(u) and u.uid not in chosen]
        clock = with_someones_keys(platform, askers, CLOCK_TRIES, lambda b: b.clock(), "clock")
    if clock is None:
        logger.warn("pulse.clock_from_calendar")
        return state.with_clock(calendar_clock(now), now), True
    return state.with_clock(clock, now), True


def _take_lease(
    db: firestore.Client,
    ref: firestore.DocumentReference,
    run_id: str,
    now: datetime,
    lease_s: float,
) -> bool:
    """One run syncs at a time: the lease in `ops/pulse_state`, taken with a precondition."""
    lease = {"lease": {"run_id": run_id, "until": now + timedelta(seconds=lease_s)}}

    def attempt() -> bool:
        snapshot = ref.get()
        state = PulseState.from_document(snapshot.to_dict() if snapshot.exists else None)
        if state.lease_held_by_another(run_id, now):
            return False
        if snapshot.exists:
            ref.update(lease, option=unchanged_since(db, snapshot))
        else:
            ref.create(lease)
        return True

    try:
        return retried(attempt)
    except Contended:
        return False


def _fan_out(
    platform: Platform,
    users: list[UserRef],
    summary: PulseSummary,
    settings: PulseSettings,
    enqueue: Enqueue,
    started: float,
    session: tuple[bool, str | None, str | None, datetime | None],
) -> None:
    """Enqueue the run's people in batches; `session`: whether the market is closed, the
    trading day, the day whose summary is due and when the session closes."""
    closed, day, summary_day, closes_at = session
    db = platform.db
    summary.mode = "fanout"
    batches = list(chunks(users, settings.fanout_batch))
    summary.tasks_enqueued = len(batches)
    # recorded before the first task runs, so every task finds the run to add its counts to
    _record(db, summary, started)
    deadline = summary.started_at + timedelta(seconds=settings.deadline_s)
    for number, batch in enumerate(batches):
        enqueue(
            {
                "run_id": summary.run_id,
                "batch": number,
                "deadline": deadline.isoformat(),
                "enqueued_at": platform.now().isoformat(),
                "market_closed": closed,
                "trading_day": day,
                "closes_at": None if closes_at is None else closes_at.isoformat(),
                "summary_day": summary_day,
                "users": [list(astuple(u)) for u in batch],
            }
        )
    summary.finished_at = platform.now()
    finished = {"finished_at": summary.finished_at, "enqueue_ms": _ms_since(started)}
    _update_if_run(db, paths.last_pulse(db), summary.run_id, finished)
    paths.pulse_run(db, summary.run_id).update(finished)
    logger.info("pulse.fanned_out", run_id=summary.run_id, tasks=len(batches))


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _record(db: firestore.Client, summary: PulseSummary, started: float) -> None:
    """Write the run to ops/last_pulse and the pulse history, and log it."""
    summary.duration_ms = _ms_since(started)
    doc = summary.document()
    record = db.batch()
    record.set(paths.last_pulse(db), doc)
    record.set(paths.pulse_run(db, summary.run_id), doc)
    record.commit()
    attempted = summary.counts.get("synced", 0) + summary.counts.get("failed", 0)
    logger.info(
        "pulse.recorded",
        **{k: v for k, v in doc.items() if not isinstance(v, datetime)},
        attempted=attempted,
        # the share of the people it tried that failed: the `syncs-failing` alert's value
        failed_share=round(summary.counts.get("failed", 0) / attempted, 4) if attempted else 0.0,
    )
    _deadline_reached(summary.run_id, summary.counts)


def _deadline_reached(run_id: str, counts: Counter[str]) -> None:
    """Log a run (or a fanned-out task) that left people for the next run: the
    `pulse-deadline` alert."""
    if counts.get("deferred", 0):
        logger.warn("pulse.deadline_reached", run_id=run_id, deferred=counts["deferred"])


def run_user_batch(
    platform: Platform, payload: dict[str, Any], settings: PulseSettings | None = None
) -> Counter[str]:
    """One fan-out task: sync its people and add their outcomes to the run's record, once.
    The task queue delivers a task at least once (again after a dispatch deadline or a lost
    answer, while the first delivery may still be running), so the first delivery claims the
    run's slice and every later one returns at once: each person is synced once per run. A
    slice whose task died after claiming it is synced by the next run, as is anyone a run's
    deadline left out."""
    settings = settings or PulseSettings()
    run_id = str(payload["run_id"])
    number = payload.get("batch")
    if number is not None and not _claim(platform, run_id, int(number)):
        logger.info("pulse.batch_already_claimed", run_id=run_id, batch=number)
        return Counter()
    if payload.get("enqueued_at"):  # how long it waited: the `sync-queue-backlog` alert
        waited = platform.now() - datetime.fromisoformat(payload["enqueued_at"])
        logger.info(
            "pulse.batch_started", run_id=run_id, batch=number, age_s=waited.total_seconds()
        )
    users = [UserRef(str(row[0]), *row[1:]) for row in payload["users"]]
    budget = settings.deadline_s
    if payload.get("deadline"):
        left = (datetime.fromisoformat(payload["deadline"]) - platform.now()).total_seconds()
        budget = max(0.0, min(budget, left))
    counts, errors = sync_users(
        platform,
        users,
        run_id,
        time.monotonic() + budget,
        settings,
        market_closed=bool(payload.get("market_closed")),
        trading_day=payload.get("trading_day"),
        closes_at=_time(payload.get("closes_at")),
        summary_day=payload.get("summary_day"),
    )
    db = platform.db
    increments: dict[str, Any] = {k: firestore.Increment(v) for k, v in counts.items()}
    increments.update(
        {f"errors_by_code.{code}": firestore.Increment(n) for code, n in errors.items()}
    )
    increments["finished_at"] = platform.now()
    paths.pulse_run(db, run_id).update(increments)
    _update_if_run(db, paths.last_pulse(db), run_id, increments)
    _deadline_reached(run_id, counts)
    return counts


CLAIMS_KEPT = timedelta(days=1)
"""How long a slice's claim is kept (`expires_at`, a TTL field): long after any redelivery."""


def _claim(platform: Platform, run_id: str, number: int) -> bool:
    """Claim slice `number` of run `run_id`; False when a delivery claimed it before."""
    now = platform.now()
    try:
        paths.pulse_batch(platform.db, run_id, number).create(
            {"claimed_at": now, "expires_at": now + CLAIMS_KEPT}
        )
    except gexc.AlreadyExists:
        return False
    return True


def _update_if_run(
    db: firestore.Client, ref: firestore.DocumentReference, run_id: str, fields: dict[str, Any]
) -> None:
    """Add a task's outcome to `ref` if it still describes run `run_id` (a newer run may have
    replaced it). Lock-free: overlapping tasks each win a round, where the losers of a locking
    transaction would fail their task and have it retried, counting its people twice."""

    def attempt() -> None:
        snapshot = ref.get()
        if snapshot.exists and (snapshot.to_dict() or {}).get("run_id") == run_id:
            ref.update(fields, option=unchanged_since(db, snapshot))

    try:
        retried(attempt)
    except Contended:
        logger.warn("pulse.summary_not_updated", run_id=run_id, ref=ref.path)
