"""The delivery queue's side of a notification: the trigger's enqueue (a task a channel, named
after the event so it is enqueued once) and the task's one attempt, which asks the queue to try
again, with its backoff, when the attempt did not deliver."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from firebase_functions import https_fn, logger

from agenttrader.notify.delivery import CHANNELS, MAX_ATTEMPTS, Senders, TryAgain, deliver

DELIVERY_QUEUE = "delivernotification"
"""The task queue (and task function) that delivers a notification on one channel."""

RETRY = {
    "max_attempts": MAX_ATTEMPTS + 2,
    "min_backoff_seconds": 300,
    "max_backoff_seconds": 6 * 3600,
    "max_doublings": 5,
}
"""The queue's retries, after 5, 10, 20, 40, 80, 160 and 320 minutes, then every 6 hours:
`MAX_ATTEMPTS` attempts span about a day (and two more for attempts that found another one
sending)."""

TaskEnqueue = Callable[[dict[str, Any], str], None]
"""Enqueue a task's data under a task id; a task already enqueued under it is left as it is."""


def task_id(uid: str, event_id: str, channel: str) -> str:
    """The task's name: one task per event and channel (letters and digits only)."""
    return hashlib.sha256(f"{uid}/{event_id}/{channel}".encode()).hexdigest()


def enqueue_delivery(enqueue: TaskEnqueue) -> Callable[[str, str, str], None]:
    def one(uid: str, event_id: str, channel: str) -> None:
        enqueue(
            {"uid": uid, "event_id": event_id, "channel": channel},
            task_id(uid, event_id, channel),
        )

    return one


def run_delivery(db: Any, senders: Senders, now: datetime, data: Any) -> str:
    """One attempt from a task's data; an attempt to repeat is answered UNAVAILABLE, which the
    queue retries with its backoff."""
    if (
        not isinstance(data, dict)
        or not all(isinstance(data.get(k), str) and data.get(k) for k in ("uid", "event_id"))
        or data.get("channel") not in CHANNELS
    ):
        logger.error("notify.bad_task", data=str(data)[:200])
        return "bad task"  # never retried: no attempt would do better
    uid, event_id, channel = data["uid"], data["event_id"], data["channel"]
    try:
        state = deliver(db, senders, now, uid, event_id, channel)
    except TryAgain as again:
        logger.warn("notify.try_again", uid=uid, event_id=event_id, channel=channel, why=str(again))
        raise https_fn.HttpsError(https_fn.FunctionsErrorCode.UNAVAILABLE, str(again)) from None
    logger.info("notify.delivery", uid=uid, event_id=event_id, channel=channel, state=state)
    return state
