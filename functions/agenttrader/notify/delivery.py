"""Delivering a notification beyond the feed, each channel at most once.

A new notification (`users/{uid}/notifications/{event_id}`) starts a Firestore trigger that
`route`s it: one task a channel the person chose for its kind (their webhook, email), each
task named after the event and channel, so a trigger delivered twice enqueues once. The task
(`deliver`) makes one attempt and records it on the notification, as
`deliveries.{channel}`: `state`, `attempts`, `at` and, after a failure, the reason in words.

- webhook: the record is set to `sending` (with a precondition on the notification as read)
  before the request is made, so of two deliveries of one task only one sends. A failure
  (refused address, no answer within the attempt's deadline, an answer other than 2xx) is
  `failed` and the task is tried again by the queue, with exponential backoff; after
  `Senders.attempts` it is `gave_up`, the person's webhook is switched off (`webhook_off_at` on
  their settings, until they save them again) and the feed tells them. A `sending` record
  older than `SENDING_LEASE` is an attempt that ended without a word: it may have arrived,
  so it is never sent again (`uncertain`).
- email: a document in `mail` (the "Trigger Email from Firestore" extension's collection,
  named after the event) created in the commit that records `queued`; the extension sends it.
  Mail goes only to the address the person confirmed when they chose email (`email_to`), at
  most `mail_per_day` a day (counted in `status/mail`): the next one says the rest are in the
  feed, and the ones after it are `skipped` (the feed has them all).

Events the person did not choose, a channel since switched off or removed, are `skipped`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from firebase_functions import logger
from google.api_core import exceptions as gexc
from google.cloud import firestore

from agenttrader.bot import notices
from agenttrader.notify import message, webhook
from agenttrader.store import paths
from agenttrader.store.health import count_delivery
from agenttrader.store.optimistic import Contended, retried, unchanged_since

WEBHOOK = "webhook"
EMAIL = "email"
CHANNELS = (WEBHOOK, EMAIL)
MAX_ATTEMPTS = 10
"""Webhook attempts for one event before the webhook is switched off, by default (param
`NOTIFY_ATTEMPTS`; the queue's backoff spreads them over about a day)."""
SENDING_LEASE = timedelta(seconds=webhook.DEADLINE_S + 45)
"""Longer than an attempt can take (`webhook.DEADLINE_S`, resolution included), by a margin
for the records before and after it."""
MAIL_KEPT = timedelta(days=30)
"""How long a `mail` document is kept (`expires_at`, a TTL field)."""

SENDING, DELIVERED, FAILED = "sending", "delivered", "failed"
GAVE_UP, UNCERTAIN, SKIPPED, QUEUED, GONE = "gave_up", "uncertain", "skipped", "queued", "gone"
FINAL = (DELIVERED, GAVE_UP, UNCERTAIN, SKIPPED, QUEUED)

Snapshot = firestore.DocumentSnapshot[Any]
Enqueue = Callable[[str, str, str], None]
"""Enqueue the delivery of (uid, event id, channel); a second enqueue of the same is a no-op."""


class TryAgain(Exception):
    """This attempt did not deliver; the queue tries again later (the message says why)."""


@dataclass(frozen=True)
class Senders:
    """What a delivery works with beyond Firestore."""

    webhook_key: Callable[[], str]
    """The app key each person's signing secret derives from."""
    loopback_http: bool = False
    """Plain http to a loopback webhook (the local demo only)."""
    resolver: webhook.Resolver = webhook.resolve
    deadline_s: float = webhook.DEADLINE_S
    """The longest one webhook attempt takes."""
    mail_per_day: int = 20
    """The most mails one person is sent a day."""
    attempts: int = MAX_ATTEMPTS
    """Webhook attempts for one event before the webhook is switched off."""


def channels(settings: dict[str, Any], kind: str) -> list[str]:
    """Where a notification of `kind` goes beyond the feed, by the person's settings."""
    chosen = kind in (settings.get("events") or [])
    out = []
    if (
        chosen
        and kind != notices.WEBHOOK_OFF
        and settings.get("webhook_url")
        and not settings.get("webhook_off_at")
    ):
        out.append(WEBHOOK)
    if settings.get("email") is True and (chosen or kind == notices.WEBHOOK_OFF):
        out.append(EMAIL)
    return out


def route(
    db: firestore.Client,
    uid: str,
    event_id: str,
    notification: dict[str, Any],
    enqueue: Enqueue,
) -> list[str]:
    """The trigger's part: enqueue a delivery for each channel the person chose for the
    notification's kind."""
    settings = paths.notification_settings(db, uid).get().to_dict() or {}
    chosen = channels(settings, str(notification.get("kind")))
    for channel in chosen:
        enqueue(uid, event_id, channel)
    return chosen


def deliver(
    db: firestore.Client, senders: Senders, now: datetime, uid: str, event_id: str, channel: str
) -> str:
    """One attempt at delivering a notification on `channel`; returns the delivery's state,
    or raises `TryAgain` for the queue to try again. A claim that lost a race (the person
    marking it read, the other channel's record) is decided again on the notification as it
    is now."""
    try:
        return retried(lambda: _deliver(db, senders, now, uid, event_id, channel))
    except Contended:
        raise TryAgain("the notification kept changing") from None


def _deliver(
    db: firestore.Client, senders: Senders, now: datetime, uid: str, event_id: str, channel: str
) -> str:
    ref = paths.notifications(db, uid).document(event_id)
    snapshot = ref.get()
    if not snapshot.exists:
        return GONE  # the account was deleted meanwhile
    notification = snapshot.to_dict() or {}
    record = (notification.get("deliveries") or {}).get(channel) or {}
    if record.get("state") in FINAL:
        return str(record["state"])
    settings = paths.notification_settings(db, uid).get().to_dict() or {}
    if channel not in channels(settings, str(notification.get("kind"))):
        return _record(db, snapshot, channel, {"state": SKIPPED, "at": now})
    if channel == EMAIL:
        return _email(db, uid, snapshot, settings, now, senders.mail_per_day)
    return _webhook(db, senders, uid, snapshot, record, settings, now)


def _record(
    db: firestore.Client,
    snapshot: Snapshot,
    channel: str,
    fields: dict[str, Any],
    batch: firestore.WriteBatch | None = None,
    *,
    as_read: bool = False,
) -> str:
    """Record the delivery's state on the notification: its `deliveries.{channel}` alone, so
    channels never overwrite each other (`as_read`: only if the notification is still as
    read, else `LOST_RACE`)."""
    write = db.batch() if batch is None else batch
    write.update(
        snapshot.reference,
        {f"deliveries.{channel}": fields},
        **({"option": unchanged_since(db, snapshot)} if as_read else {}),
    )
    if batch is None:
        try:
            write.commit()
        except gexc.NotFound:
            return GONE  # the account was deleted meanwhile
    return str(fields["state"])


def _email(
    db: firestore.Client,
    uid: str,
    snapshot: Snapshot,
    settings: dict[str, Any],
    now: datetime,
    per_day: int,
) -> str:
    to = settings.get("email_to")
    if not isinstance(to, str) or "@" not in to:
        unconfirmed = {"state": SKIPPED, "at": now, "error": "no confirmed address"}
        return _record(db, snapshot, EMAIL, unconfirmed)
    counter = paths.mail_count(db, uid).get()
    day = now.date().isoformat()
    counted = counter.to_dict() or {} if counter.exists else {}
    sent = int(counted.get("sent") or 0) if counted.get("day") == day else 0
    batch = db.batch()
    count = {"day": day, "sent": sent + 1}
    if counter.exists:  # of two deliveries at once, each counts: the loser tries again
        batch.update(counter.reference, count, option=unchanged_since(db, counter))
    else:
        batch.create(counter.reference, count)
    if sent > per_day:  # the mail saying so went already: the feed has it
        over = {"state": SKIPPED, "at": now, "error": "over the daily mail limit; in the feed"}
        return _record(db, snapshot, EMAIL, over)
    if sent == per_day:
        mail = message.over_the_limit(to, per_day)
        mail_id = f"{uid}-{day}-over-the-limit"
    else:
        mail = message.mail_document(to, message.event(snapshot.id, snapshot.to_dict() or {}))
        mail_id = f"{uid}-{snapshot.id}"
    mail_ref = paths.mail(db).document(mail_id)
    batch.create(mail_ref, {**mail, "expires_at": now + MAIL_KEPT})
    said: dict[str, Any] = {"state": QUEUED, "at": now}
    if sent == per_day:
        said = {"state": SKIPPED, "at": now, "error": "over the daily mail limit; in the feed"}
    _record(db, snapshot, EMAIL, said, batch)
    try:
        batch.commit()
    except gexc.AlreadyExists:
        if mail_ref.get().exists:
            return str(said["state"])  # an earlier attempt queued it (and counted it)
        raise  # another delivery counted today's first mail: counted again, afresh
    except gexc.NotFound:
        return GONE
    return str(said["state"])


def _webhook(
    db: firestore.Client,
    senders: Senders,
    uid: str,
    snapshot: Snapshot,
    record: dict[str, Any],
    settings: dict[str, Any],
    now: datetime,
) -> str:
    attempts = int(record.get("attempts") or 0)
    if record.get("state") == SENDING:
        at = record.get("at")
        if isinstance(at, datetime) and now < at + SENDING_LEASE:
            raise TryAgain("another attempt is sending it")
        return _record(db, snapshot, WEBHOOK, {**record, "state": UNCERTAIN, "at": now})
    attempts += 1
    # the claim: of two deliveries of this task, one sends
    _record(
        db, snapshot, WEBHOOK, {"state": SENDING, "attempts": attempts, "at": now}, as_read=True
    )
    secret = webhook.signing_secret(senders.webhook_key(), uid, webhook.secret_version(settings))
    body = message.webhook_body(message.event(snapshot.id, snapshot.to_dict() or {}))
    error = webhook.attempt(  # why it was not delivered, in words (None: delivered)
        str(settings["webhook_url"]),
        body,
        secret,
        allow_loopback_http=senders.loopback_http,
        resolver=senders.resolver,
        deadline_s=senders.deadline_s,
    ).problem
    # this attempt holds the `sending` record: what it did is recorded whatever changed since
    # (the person marking the notification read)
    if error is None:
        delivered = {"state": DELIVERED, "attempts": attempts, "at": now}
        return _record(db, snapshot, WEBHOOK, delivered)
    age_s = _age_s(snapshot, now)
    if attempts < senders.attempts:
        failed = {"state": FAILED, "attempts": attempts, "at": now, "error": error}
        _record(db, snapshot, WEBHOOK, failed)
        logger.warn(
            "notify.webhook_failed", uid=uid, event_id=snapshot.id, attempts=attempts, age_s=age_s
        )
        count_delivery(db, now, FAILED)
        raise TryAgain(error)
    logger.warn("notify.gave_up", uid=uid, event_id=snapshot.id, attempts=attempts, age_s=age_s)
    count_delivery(db, now, GAVE_UP)
    batch = db.batch()
    gave_up = {"state": GAVE_UP, "attempts": attempts, "at": now, "error": error}
    _record(db, snapshot, WEBHOOK, gave_up, batch)
    batch.update(
        paths.notification_settings(db, uid),
        {"webhook_off_at": now, "webhook_off_reason": error},
    )
    notices.webhook_off(batch, db, uid, snapshot.id, attempts, now)
    batch.commit()
    return GAVE_UP


def _age_s(snapshot: Snapshot, now: datetime) -> float:
    """How long after its event an attempt is (the `deliveries-failing` alert's value)."""
    at = (snapshot.to_dict() or {}).get("at")
    return (now - at).total_seconds() if isinstance(at, datetime) else 0.0
