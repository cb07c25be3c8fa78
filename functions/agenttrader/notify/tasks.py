"""The delivery queue's side of a notification: the trigger's enqueue (a task a channel, named
after the event so it is enqueued once) and the task's one attempt, which asks the queue to try
again, with its backoff, when the attempt did not deliver."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from firebase_functions import https_fn, logger

from agenttrader.core import config
from agenttrader.notify.delivery import CHANNELS, Senders, TryAgain, deliver

DELIVERY_QUEUE = "delivernotification"
"""The task queue (and task function) that delivers a notification on one channel."""

QUEUE_ATTEMPTS = 100
"""The queue's own cap on a task's attempts: a backstop for an attempt that crashes. A webhook
gives up by itself after `NOTIFY_ATTEMPTS` failures (its last attempt answers the queue 2xx),
so no schedule a deployment chooses reaches this cap."""

RETRY: dict[str, Any] = {
    "max_attempts": QUEUE_ATTEMPTS,
    "min_backoff_seconds": config.NOTIFY_RETRY_FIRST_S,
    "max_backoff_seconds": config.NOTIFY_RETRY_MAX_S,
    "max_doublings": config.NOTIFY_RETRY_DOUBLINGS,
}
"""The queue's retries, as params. By default after 5, 10, 20, 40, 80, 160 and 320 minutes,
then every 6 hours: `NOTIFY_ATTEMPTS` (10) attempts span about a day. The emulated project
waits seconds instead (`functions/.env.demo-agenttrader`)."""


def waits(first_s: int, doublings: int, max_s: int, attempts: int) -> list[int]:
    """The seconds the queue waits before each retry of a task that keeps failing (Cloud
    Tasks' documented backoff: the wait doubles from `first_s` `doublings` times, then grows
    by the last doubled step, capped at `max_s`), for `attempts` attempts in all."""
    out = []
    for n in range(1, attempts):
        doubled = 2 ** min(n - 1, doublings)
        linear = max(0, n - doublings - 1) * 2**doublings
        out.append(min(max_s, (doubled + linear) * first_s))
    return out


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
