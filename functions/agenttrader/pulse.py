"""The pulse: every user's Alpaca snapshot and shadow-trade P&L, one user's failure isolated.

`run_pulse` is the whole job; the scheduler, the operator script, the task queue, the tests and
the benchmark all call it (or `sync_users`, its per-batch half) with their own clients.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from firebase_functions import logger
from google.api_core import exceptions as gexc
from google.cloud import firestore
from pydantic import ValidationError

from agenttrader import paths, queries
from agenttrader.context import Platform, trading_enabled, trading_halted
from agenttrader.errors import AgentTraderError, ErrorCode
from agenttrader.firestore_io import chunks
from agenttrader.models import ShadowTrade, keys_version, snapshot_document

Enqueue = Callable[[dict[str, Any]], None]

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
    """How long a user stays claimed by a run that may have died."""
    user_timeout_s: float = 25.0
    """A user whose sync takes longer fails with SYNC_TIMEOUT and writes nothing."""
    fanout_threshold: int = 2000
    """Above this many users, fan out through the task queue (when one is given)."""
    fanout_batch: int = 100
    """Users per task when fanning out."""


@dataclass(frozen=True)
class UserRef:
    """A user to sync and the version of their keys."""

    uid: str
    keys_version: int | None


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


class _LeaseHeld(Exception):
    pass


class SyncTimeout(AgentTraderError):
    """One user's sync ran past its time budget."""

    def __init__(self) -> None:
        super().__init__(
            ErrorCode.SYNC_TIMEOUT, "the sync took longer than its time budget; nothing was written"
        )


def list_users(db: firestore.Client) -> list[UserRef]:
    """Every user, with only the field the pulse needs."""
    found = []
    for doc in paths.users(db).select(["keys_version"]).stream():
        found.append(UserRef(doc.id, keys_version(doc.to_dict())))
    return found


def run_pulse(
    platform: Platform,
    settings: PulseSettings = PulseSettings(),
    enqueue: Enqueue | None = None,
) -> PulseSummary:
    """Sync every user once, in this instance or through the task queue; record the run."""
    started = time.monotonic()
    summary = PulseSummary(run_id=uuid.uuid4().hex, mode="in_process", started_at=platform.now())
    db = platform.db
    users = list_users(db)
    summary.users_total = len(users)
    if trading_halted(db):
        summary.halted = True
        summary.mode = "halted"
        logger.warn("pulse.halted", run_id=summary.run_id, users_total=len(users))
    elif enqueue is not None and len(users) > settings.fanout_threshold:
        summary.mode = "fanout"
        batches = list(chunks(users, settings.fanout_batch))
        summary.tasks_enqueued = len(batches)
        # recorded before the first task runs, so every task finds the run to add its counts to
        _record(db, summary, started)
        deadline = summary.started_at + timedelta(seconds=settings.lease_s)
        for batch in batches:
            enqueue(
                {
                    "run_id": summary.run_id,
                    "deadline": deadline.isoformat(),
                    "users": [[u.uid, u.keys_version] for u in batch],
                }
            )
        finished = {"finished_at": platform.now(), "enqueue_ms": _ms_since(started)}
        _update_if_run(db, paths.last_pulse(db), summary.run_id, finished)
        paths.pulse_run(db, summary.run_id).update(finished)
        logger.info("pulse.fanned_out", run_id=summary.run_id, tasks=len(batches))
        return summary
    else:
        counts, errors = sync_users(
            platform, users, summary.run_id, started + settings.deadline_s, settings
        )
        summary.counts.update(counts)
        summary.errors.update(errors)
    summary.finished_at = platform.now()
    _record(db, summary, started)
    return summary


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
    logger.info(
        "pulse.recorded",
        **{k: v for k, v in doc.items() if not isinstance(v, datetime)},
    )


def run_user_batch(
    platform: Platform, payload: dict[str, Any], settings: PulseSettings = PulseSettings()
) -> Counter[str]:
    """One fan-out task: sync its users and add their outcomes to the run's record."""
    run_id = str(payload["run_id"])
    users = [UserRef(str(uid), version) for uid, version in payload["users"]]
    budget = settings.deadline_s
    if payload.get("deadline"):
        left = (datetime.fromisoformat(payload["deadline"]) - platform.now()).total_seconds()
        budget = max(0.0, min(budget, left))
    counts, errors = sync_users(platform, users, run_id, time.monotonic() + budget, settings)
    db = platform.db
    increments: dict[str, Any] = {k: firestore.Increment(v) for k, v in counts.items()}
    increments.update(
        {f"errors_by_code.{code}": firestore.Increment(n) for code, n in errors.items()}
    )
    increments["finished_at"] = platform.now()
    paths.pulse_run(db, run_id).update(increments)
    _update_if_run(db, paths.last_pulse(db), run_id, increments)
    return counts


@firestore.transactional
def _update_if_run_tx(
    transaction: firestore.Transaction,
    ref: firestore.DocumentReference,
    run_id: str,
    fields: dict[str, Any],
) -> None:
    snapshot = ref.get(transaction=transaction)
    if snapshot.exists and (snapshot.to_dict() or {}).get("run_id") == run_id:
        transaction.update(ref, fields)


def _update_if_run(
    db: firestore.Client, ref: firestore.DocumentReference, run_id: str, fields: dict[str, Any]
) -> None:
    _update_if_run_tx(db.transaction(), ref, run_id, fields)


def sync_users(
    platform: Platform,
    users: list[UserRef],
    run_id: str,
    deadline: float,
    settings: PulseSettings,
) -> tuple[Counter[str], Counter[str]]:
    """Sync these users with bounded concurrency; returns outcome counts and error codes."""
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
        if enabled.get(user.uid):
            todo.append(user)
        else:
            counts["skipped_disabled"] += 1
            _log_outcome(run_id, user.uid, "skipped_disabled", 0)
    if not todo:
        return counts, errors
    workers = max(1, min(settings.concurrency, len(todo)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pulse") as pool:
        results = pool.map(
            lambda user: sync_one_user(platform, user, run_id, deadline, settings), todo
        )
        for outcome, code in results:
            counts[outcome] += 1
            if code:
                errors[code] += 1
    return counts, errors


def _log_outcome(run_id: str, uid: str, outcome: str, duration_ms: int, **extra: Any) -> None:
    log = logger.warn if outcome == "failed" else logger.info
    log("pulse.user", run_id=run_id, uid=uid, outcome=outcome, duration_ms=duration_ms, **extra)


@firestore.transactional
def _claim(
    transaction: firestore.Transaction,
    sync_ref: firestore.DocumentReference,
    snapshot_ref: firestore.DocumentReference,
    run_id: str,
    now: datetime,
    lease_s: float,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Take the user's lease unless another live run holds it; return sync and snapshot docs."""
    docs = {d.reference.path: d for d in transaction.get_all([sync_ref, snapshot_ref])}
    sync_doc = docs[sync_ref.path]
    sync = (sync_doc.to_dict() or {}) if sync_doc.exists else {}
    lease = sync.get("lease") or {}
    if lease.get("run_id") not in (None, run_id) and lease.get("until") and lease["until"] > now:
        raise _LeaseHeld()
    transaction.set(
        sync_ref,
        {"lease": {"run_id": run_id, "until": now + timedelta(seconds=lease_s)}},
        merge=True,
    )
    snapshot_doc = docs[snapshot_ref.path]
    return sync, (snapshot_doc.to_dict() if snapshot_doc.exists else None)


def sync_one_user(
    platform: Platform, user: UserRef, run_id: str, deadline: float, settings: PulseSettings
) -> tuple[str, str | None]:
    """Sync one user; never raises. Returns (outcome, error code or None)."""
    started = time.monotonic()
    if started > deadline:
        _log_outcome(run_id, user.uid, "deferred", 0)
        return "deferred", None
    db = platform.db
    uid = user.uid
    sync_ref = paths.sync_status(db, uid)
    try:
        sync, previous_snapshot = _claim(
            db.transaction(),
            sync_ref,
            paths.account_snapshot(db, uid),
            run_id,
            platform.now(),
            settings.lease_s,
        )
    except _LeaseHeld:
        _log_outcome(run_id, uid, "skipped_in_progress", 0)
        return "skipped_in_progress", None
    except gexc.GoogleAPICallError as error:
        _log_outcome(run_id, uid, "failed", 0, code=ErrorCode.FIRESTORE_ERROR, error=error.message)
        return "failed", ErrorCode.FIRESTORE_ERROR
    code: ErrorCode | None = None
    try:
        budget_end = started + settings.user_timeout_s
        outcome = _sync_claimed(platform, user, run_id, sync, previous_snapshot, budget_end)
    except Exception as error:  # one user's failure must never stop the others
        code, message = _describe(error)
        _record_failure(platform, uid, run_id, code, message)
        outcome = "failed"
    _log_outcome(
        run_id,
        uid,
        outcome,
        int((time.monotonic() - started) * 1000),
        **({"code": code} if code else {}),
    )
    return outcome, code


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


def _sync_claimed(
    platform: Platform,
    user: UserRef,
    run_id: str,
    sync: dict[str, Any],
    previous_snapshot: dict[str, Any] | None,
    budget_end: float,
) -> str:
    db = platform.db
    uid = user.uid
    keys = platform.keys.load(uid, user.keys_version)
    if keys is None:
        paths.sync_status(db, uid).update({"lease": firestore.DELETE_FIELD})
        return "skipped_no_keys"
    broker = platform.brokers(keys)
    try:
        account = broker.account()
        trades = _open_trades(db, uid)
        prices = broker.latest_prices(sorted({t.symbol for _, t in trades}))
    finally:
        broker.close()
    if time.monotonic() > budget_end:
        raise SyncTimeout()
    now = platform.now()
    batch = db.batch()
    snapshot = snapshot_document(account)
    if (
        previous_snapshot is None
        or {k: v for k, v in previous_snapshot.items() if k != "synced_at"} != snapshot
    ):
        batch.set(paths.account_snapshot(db, uid), {**snapshot, "synced_at": now})
    for ref, trade in trades:
        price = prices.get(trade.symbol)
        if price is None or trade.is_priced_at(price):
            continue
        batch.update(ref, {**trade.priced(price), "last_priced_at": now})
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
    if sync.get("consecutive_failures") or sync.get("last_error_code"):
        batch.delete(paths.last_sync_error(db, uid))
    batch.commit()
    return "synced"


def _open_trades(
    db: firestore.Client, uid: str
) -> list[tuple[firestore.DocumentReference, ShadowTrade]]:
    trades = []
    for doc in queries.open_trades(db, uid).stream():
        try:
            trades.append((doc.reference, ShadowTrade.model_validate(doc.to_dict())))
        except ValidationError as error:
            logger.warn(
                "pulse.trade_unreadable", uid=uid, trade_id=doc.id, errors=error.error_count()
            )
    return trades


def _record_failure(platform: Platform, uid: str, run_id: str, code: str, message: str) -> None:
    db = platform.db
    now = platform.now()
    batch = db.batch()
    batch.set(
        paths.last_sync_error(db, uid),
        {"message": message, "code": code, "at": now, "run_id": run_id},
    )
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
    try:
        batch.commit()
    except gexc.GoogleAPICallError as error:
        logger.error("pulse.failure_not_recorded", uid=uid, code=code, error=error.message)
