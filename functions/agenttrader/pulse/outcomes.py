"""What a sync leaves behind besides the data: its outcome in the logs, the person's sync status
and error after a success or a failure, being told their syncs are failing, the day's summary."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from firebase_functions import logger
from google.api_core import exceptions as gexc
from google.cloud import firestore

from agenttrader.bot import notices
from agenttrader.broker.answers import NEW_YORK, AccountSnapshot
from agenttrader.context.platform import Platform
from agenttrader.core.errors import AgentTraderError, ErrorCode
from agenttrader.core.money import cents, plain
from agenttrader.pulse.people import UserRef
from agenttrader.store import paths, queries
from agenttrader.store.models import (
    set_sync_error,
)

LOGGED_OUTCOMES = ("failed", "deferred")
"""Outcomes logged one line per person; the others are counted in the run's summary (a line
per person per minute is a log bill of its own at thousands of people)."""


def log_outcome(run_id: str, uid: str, outcome: str, duration_ms: int, **extra: Any) -> None:
    if outcome not in LOGGED_OUTCOMES:
        return
    log = logger.warn if outcome == "failed" else logger.info
    log("pulse.user", run_id=run_id, uid=uid, outcome=outcome, duration_ms=duration_ms, **extra)


def describe(error: Exception) -> tuple[ErrorCode, str]:
    if isinstance(error, AgentTraderError):
        return error.code, error.message
    if isinstance(error, gexc.GoogleAPICallError):
        return ErrorCode.FIRESTORE_ERROR, f"Firestore: {error.message}"
    logger.error("pulse.user_crashed", error_type=type(error).__name__, error=str(error))
    return (
        ErrorCode.INTERNAL,
        "an internal error stopped this sync; it is logged and retried next pulse",
    )


def record_success(
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


def record_failure(platform: Platform, user: UserRef, run_id: str, code: str, message: str) -> None:
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


def daily_summary(
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
