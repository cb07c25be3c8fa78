"""Delivering notifications beyond the feed: by webhook (signed, retried, at most once, given up
and switched off after `MAX_ATTEMPTS`) and by email (a `mail` document in the shape the
"Trigger Email from Firestore" extension reads), on the Firestore emulator with a local
webhook receiver. The first tests play the trigger's and the queue's parts themselves (with
the emulator's triggers off); the last goes through the Functions and Tasks emulators."""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import firebase_admin
import pytest
from firebase_functions import https_fn
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from test_functions_emulator import wait_for

from agenttrader import runtime
from agenttrader.bot import notices
from agenttrader.core import clients, config
from agenttrader.notify import delivery, tasks, webhook
from agenttrader.notify.delivery import (
    MAX_ATTEMPTS,
    SENDING_LEASE,
    Senders,
    TryAgain,
    deliver,
    route,
)
from agenttrader.notify.webhook import signing_secret
from agenttrader.store import paths
from localdev import emulators, webhook_signing_key
from localdev.webhook_receiver import WebhookReceiver

UID = "alice"
KEY = "an app key for these tests"
NOW = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
ALL = list(notices.KINDS)


@pytest.fixture
def quiet() -> firestore.Client:
    """A Firestore database no trigger watches: the test routes and delivers itself."""
    emulators.clear_firestore(emulators.QUIET_DATABASE)
    return firestore.Client(
        project=clients.project_id(),
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        database=emulators.QUIET_DATABASE,
    )


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    served = WebhookReceiver(signing_secret(KEY, UID))
    yield served
    served.stop()


@pytest.fixture
def ready(quiet: firestore.Client, receiver: WebhookReceiver) -> firestore.Client:
    """Alice hears of every event by webhook (the receiver), and an event has happened."""
    set_up(quiet, receiver.url)
    an_event(quiet)
    return quiet


def senders() -> Senders:
    return Senders(webhook_key=lambda: KEY, loopback_http=True)


def set_up(
    db: firestore.Client,
    url: str | None,
    *,
    events: list[str] = ALL,
    email: bool = False,
    address: str | None = "alice@example.com",
) -> None:
    paths.user(db, UID).set({"email": address} if address else {"created_at": NOW})
    confirmed = {"email_to": address} if email and address else {}  # as the callable saves it
    paths.notification_settings(db, UID).set(
        {"events": events, "webhook_url": url, "email": email, **confirmed}
    )


def an_event(db: firestore.Client, event_id: str = "entry-filled-t1", kind: str = "") -> None:
    batch = db.batch()
    notices.notify(
        batch,
        db,
        UID,
        event_id,
        kind or notices.ENTRY_FILLED,
        "Your paper trade bought 10 AAPL at $150.00.",
        NOW,
        quantity="10",
        price="150.00",
        symbol="AAPL",
    )
    batch.commit()


def record(db: firestore.Client, channel: str, event_id: str = "entry-filled-t1") -> dict[str, Any]:
    doc = paths.notifications(db, UID).document(event_id).get().to_dict() or {}
    return dict((doc.get("deliveries") or {}).get(channel) or {})


def attempt(db: firestore.Client, channel: str = "webhook", minutes: float = 0) -> str:
    return deliver(db, senders(), NOW + timedelta(minutes=minutes), UID, "entry-filled-t1", channel)


def test_each_chosen_channel_is_routed_and_nothing_else(quiet: firestore.Client) -> None:
    db = quiet
    routed: list[tuple[str, str, str]] = []

    def enqueue(uid: str, event_id: str, channel: str) -> None:
        routed.append((uid, event_id, channel))

    set_up(db, "https://hooks.example.com/x", events=["exit_filled"], email=True)
    assert route(db, UID, "entry-filled-t1", {"kind": "entry_filled"}, enqueue) == []
    assert route(db, UID, "exit-filled-t1", {"kind": "exit_filled"}, enqueue) == [
        "webhook",
        "email",
    ]
    # their webhook switched off for failing: it is not told it was, by itself
    assert route(db, UID, "webhook-off-x", {"kind": "webhook_off"}, enqueue) == ["email"]
    paths.notification_settings(db, UID).update({"webhook_off_at": NOW})
    assert route(db, UID, "exit-filled-t2", {"kind": "exit_filled"}, enqueue) == ["email"]
    assert routed == [
        (UID, "exit-filled-t1", "webhook"),
        (UID, "exit-filled-t1", "email"),
        (UID, "webhook-off-x", "email"),
        (UID, "exit-filled-t2", "email"),
    ]
    # a task a channel, named after the event: a trigger run twice enqueues it once
    names = {tasks.task_id(*r) for r in routed}
    assert len(names) == 4
    assert all(name.isalnum() for name in names)


def test_a_webhook_gets_the_event_signed_and_only_once(
    ready: firestore.Client, receiver: WebhookReceiver
) -> None:
    db = ready
    assert attempt(db) == "delivered"
    assert attempt(db, minutes=1) == "delivered"  # a second delivery of the task sends nothing
    assert len(receiver.state.received) == 1
    got = receiver.state.received[0]
    assert got.signature_valid
    text = "Your paper trade bought 10 AAPL at $150.00."
    assert (got.body["text"], got.body["content"]) == (text, text)
    assert got.body["event"] == {
        "id": "entry-filled-t1",
        "kind": "entry_filled",
        "message": text,
        "at": NOW.isoformat(),
        "quantity": "10",
        "price": "150.00",
        "symbol": "AAPL",
    }
    assert record(db, "webhook") == {"state": "delivered", "attempts": 1, "at": NOW}


def test_both_channels_and_a_read_mark_at_once_each_get_their_way(
    quiet: firestore.Client, receiver: WebhookReceiver
) -> None:
    """The two channels' tasks and the person marking the feed read, all at once on each of
    several notifications: every delivery is made once and every record kept."""
    db = quiet
    set_up(db, receiver.url, email=True)
    events = [f"entry-filled-t{n}" for n in range(6)]
    for event_id in events:
        an_event(db, event_id)

    def read(event_id: str) -> str:
        paths.notifications(db, UID).document(event_id).update({"read_at": NOW})
        return "read"

    with ThreadPoolExecutor(6) as pool:
        jobs = [
            job
            for event_id in events
            for job in (
                pool.submit(deliver, db, senders(), NOW, UID, event_id, "webhook"),
                pool.submit(deliver, db, senders(), NOW, UID, event_id, "email"),
                pool.submit(read, event_id),
            )
        ]
        assert sorted(job.result() for job in jobs) == sorted(
            ["delivered", "queued", "read"] * len(events)
        )
    assert sorted(r.body["event"]["id"] for r in receiver.state.received) == sorted(events)
    assert len(list(paths.mail(db).stream())) == len(events)
    for event_id in events:
        doc = paths.notifications(db, UID).document(event_id).get().to_dict() or {}
        assert doc["read_at"] is not None
        assert doc["deliveries"]["webhook"]["state"] == "delivered"
        assert doc["deliveries"]["email"]["state"] == "queued"


def test_a_failing_webhook_is_tried_again_until_it_takes_it(
    ready: firestore.Client, receiver: WebhookReceiver
) -> None:
    db = ready
    receiver.state.behaviour.status = 500
    with pytest.raises(TryAgain, match="did not take"):
        attempt(db)
    assert record(db, "webhook")["state"] == "failed"
    assert record(db, "webhook")["error"] == (
        "your webhook answered that it did not take the notification"
    )
    receiver.state.behaviour.status = 204
    assert attempt(db, minutes=5) == "delivered"
    assert record(db, "webhook")["attempts"] == 2
    assert len(receiver.state.received) == 2


def test_a_webhook_that_keeps_failing_is_switched_off_and_the_person_told(
    ready: firestore.Client, receiver: WebhookReceiver
) -> None:
    db = ready
    receiver.state.behaviour.status = 503
    for n in range(1, MAX_ATTEMPTS):
        with pytest.raises(TryAgain):
            attempt(db, minutes=n * 60)
        assert record(db, "webhook")["attempts"] == n
    assert attempt(db, minutes=MAX_ATTEMPTS * 60) == "gave_up"
    assert len(receiver.state.received) == MAX_ATTEMPTS
    assert attempt(db, minutes=MAX_ATTEMPTS * 61) == "gave_up"  # never an eleventh
    assert len(receiver.state.received) == MAX_ATTEMPTS

    settings = paths.notification_settings(db, UID).get().to_dict() or {}
    assert settings["webhook_off_at"] is not None
    told = paths.notifications(db, UID).document("webhook-off-entry-filled-t1").get().to_dict()
    assert told is not None
    assert told["kind"] == notices.WEBHOOK_OFF
    assert told["message"].startswith("Your webhook was switched off")

    an_event(db, "exit-filled-t1", notices.EXIT_FILLED)  # a later event: not sent at all
    assert deliver(db, senders(), NOW, UID, "exit-filled-t1", "webhook") == "skipped"
    assert len(receiver.state.received) == MAX_ATTEMPTS


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        ({"redirect_to": "https://hooks.example.com/"}, "a redirect, which is never followed"),
        ({"delay_s": 6.0}, "could not be reached, or did not answer in time"),
    ],
)
def test_a_redirect_or_a_silent_receiver_is_a_failure_in_words(
    ready: firestore.Client, receiver: WebhookReceiver, behaviour: dict[str, Any], error: str
) -> None:
    db = ready
    for name, value in behaviour.items():
        setattr(receiver.state.behaviour, name, value)
    with pytest.raises(TryAgain, match=error):
        attempt(db)
    assert error in record(db, "webhook")["error"]


def test_a_receiver_that_drips_its_answer_is_a_failure_not_an_uncertain_send(
    ready: firestore.Client, receiver: WebhookReceiver
) -> None:
    """One byte every 0.2 s: each read is quick, the whole never ends. The attempt ends at its
    deadline and records a failure the queue tries again, well inside the sending lease."""
    db = ready
    receiver.state.behaviour.drip_s = 0.2
    quick = Senders(webhook_key=lambda: KEY, loopback_http=True, deadline_s=1.5)
    started = time.monotonic()
    with pytest.raises(TryAgain, match="did not answer in time"):
        deliver(db, quick, NOW, UID, "entry-filled-t1", "webhook")
    assert time.monotonic() - started < 3
    assert record(db, "webhook")["state"] == "failed"
    assert SENDING_LEASE.total_seconds() > webhook.DEADLINE_S + 30


def test_a_malformed_address_at_delivery_is_a_refusal_that_counts(quiet: firestore.Client) -> None:
    """Saved before addresses were checked this closely: refused in words, counted toward
    switching the webhook off, never an error that leaves the attempt `sending`."""
    db = quiet
    set_up(db, "https://hooks.example.com:99999/x")
    an_event(db)
    with pytest.raises(TryAgain, match="not sent: "):
        attempt(db)
    failed = record(db, "webhook")
    assert (failed["state"], failed["attempts"]) == ("failed", 1)


def test_an_address_that_turned_private_is_never_sent_to(quiet: firestore.Client) -> None:
    """The URL was public when saved; its name now resolves to a private address."""
    db = quiet
    set_up(db, "https://hooks.example.com/x")
    an_event(db)
    turned = Senders(webhook_key=lambda: KEY, resolver=lambda host, port: ["10.0.0.7"])
    with pytest.raises(TryAgain, match="public internet address"):
        deliver(db, turned, NOW, UID, "entry-filled-t1", "webhook")
    assert record(db, "webhook")["state"] == "failed"


def test_an_attempt_that_ended_mid_send_is_never_sent_again(
    ready: firestore.Client, receiver: WebhookReceiver
) -> None:
    db = ready
    sending = {"state": "sending", "attempts": 1, "at": NOW}
    paths.notifications(db, UID).document("entry-filled-t1").update({"deliveries.webhook": sending})
    with pytest.raises(TryAgain, match="another attempt"):
        attempt(db, minutes=0.5)  # that attempt may still be running
    assert attempt(db, minutes=5) == "uncertain"  # it ended without a word: it may have arrived
    assert receiver.state.received == []


def test_an_event_not_chosen_is_skipped(quiet: firestore.Client, receiver: WebhookReceiver) -> None:
    db = quiet
    set_up(db, receiver.url, events=["exit_filled"], email=True)
    an_event(db)
    assert attempt(db) == "skipped"
    assert attempt(db, "email") == "skipped"
    assert receiver.state.received == []
    assert list(paths.mail(db).stream()) == []


def test_email_is_a_mail_document_the_extension_sends_once(quiet: firestore.Client) -> None:
    db = quiet
    set_up(db, None, email=True)
    an_event(db)
    assert attempt(db, "email") == "queued"
    assert attempt(db, "email", minutes=1) == "queued"
    mails = [doc.to_dict() or {} for doc in paths.mail(db).stream()]
    assert len(mails) == 1
    mail = mails[0]
    assert mail["to"] == "alice@example.com"
    assert mail["message"]["subject"] == "AgentTrader: An entry filled"
    assert mail["message"]["text"].startswith("Your paper trade bought 10 AAPL at $150.00.")
    assert "<p>Your paper trade bought 10 AAPL at $150.00.</p>" in mail["message"]["html"]
    assert mail["expires_at"] == NOW + delivery.MAIL_KEPT
    assert record(db, "email") == {"state": "queued", "at": NOW}


def test_no_confirmed_address_is_skipped_in_words(quiet: firestore.Client) -> None:
    db = quiet
    set_up(db, None, email=True, address=None)
    an_event(db)
    assert attempt(db, "email") == "skipped"
    assert record(db, "email")["error"] == "no confirmed address"
    assert list(paths.mail(db).stream()) == []


def test_mail_never_goes_to_the_profiles_address_unconfirmed(quiet: firestore.Client) -> None:
    """Email chosen before addresses were confirmed: the profile's address (anyone could
    have signed up with it) is never written to."""
    db = quiet
    set_up(db, None, email=True)
    paths.notification_settings(db, UID).update({"email_to": firestore.DELETE_FIELD})
    an_event(db)
    assert attempt(db, "email") == "skipped"
    assert list(paths.mail(db).stream()) == []


def test_mail_stops_at_the_daily_limit_and_says_so_once(quiet: firestore.Client) -> None:
    db = quiet
    set_up(db, None, email=True)
    capped = Senders(webhook_key=lambda: KEY, mail_per_day=2)
    states = []
    for n in range(5):
        an_event(db, f"entry-filled-t{n}")
        states.append(deliver(db, capped, NOW, UID, f"entry-filled-t{n}", "email"))
    assert states == ["queued", "queued", "skipped", "skipped", "skipped"]
    assert deliver(db, capped, NOW, UID, "entry-filled-t1", "email") == "queued"  # not twice
    mails = {doc.id: doc.to_dict() or {} for doc in paths.mail(db).stream()}
    day = NOW.date().isoformat()
    assert sorted(mails) == [
        f"{UID}-{day}-over-the-limit",
        f"{UID}-entry-filled-t0",
        f"{UID}-entry-filled-t1",
    ]
    assert (
        "the rest of today's notifications are on your page"
        in (mails[f"{UID}-{day}-over-the-limit"]["message"]["subject"])
    )
    assert record(db, "email", "entry-filled-t4")["error"].startswith("over the daily mail limit")
    feed = {doc.id for doc in paths.notifications(db, UID).stream()}
    assert {f"entry-filled-t{n}" for n in range(5)} <= feed  # the feed has them all
    tomorrow = NOW + timedelta(days=1)
    an_event(db, "entry-filled-t9")
    assert deliver(db, capped, tomorrow, UID, "entry-filled-t9", "email") == "queued"


def test_the_queue_spreads_the_attempts_over_about_a_day() -> None:
    """The deployed defaults: the first retry after 5 minutes, the tenth attempt about a day
    after the first, and the queue's own cap never reached before the webhook gives up."""
    assert config.NOTIFY_ATTEMPTS.default == MAX_ATTEMPTS
    spread = tasks.waits(
        config.NOTIFY_RETRY_FIRST_S.default,
        config.NOTIFY_RETRY_DOUBLINGS.default,
        config.NOTIFY_RETRY_MAX_S.default,
        config.NOTIFY_ATTEMPTS.default,
    )
    assert spread[:3] == [300, 600, 1200]
    assert 20 * 3600 <= sum(spread) <= 26 * 3600
    assert tasks.QUEUE_ATTEMPTS > config.NOTIFY_ATTEMPTS.default + 2
    assert tasks.RETRY["min_backoff_seconds"] is config.NOTIFY_RETRY_FIRST_S


def test_a_notification_reaches_the_webhook_and_email_through_the_emulators(
    db: firestore.Client,
) -> None:
    """The trigger on a new notification, the task queue and the task function, as deployed:
    the receiver gets the event once even when its task is enqueued again."""
    assert os.environ.get("CLOUD_TASKS_EMULATOR_HOST"), "the tasks emulator must be running"
    if not firebase_admin._apps:
        firebase_admin.initialize_app(options={"projectId": os.environ["GCLOUD_PROJECT"]})
    served = WebhookReceiver(signing_secret(webhook_signing_key(), UID))
    try:
        set_up(db, served.url, email=True)
        an_event(db)
        wait_for(lambda: record(db, "webhook").get("state") == "delivered")
        wait_for(lambda: record(db, "email").get("state") == "queued")
        # the same task again, by another name: the record stops a second send
        enqueue = tasks.enqueue_delivery(runtime.delivery_queue())
        runtime.delivery_queue()(
            {"uid": UID, "event_id": "entry-filled-t1", "channel": "webhook"}, "again" + "0" * 10
        )
        enqueue(UID, "entry-filled-t1", "webhook")  # and under its own name again
        time.sleep(3)
        assert len(served.state.received) == 1
        assert served.state.received[0].signature_valid
        assert served.state.received[0].body["event"]["id"] == "entry-filled-t1"
        assert len(list(paths.mail(db).stream())) == 1
    finally:
        served.stop()


EMULATED_ENV = Path(__file__).resolve().parents[1] / "functions" / ".env.demo-agenttrader"
GIVE_UP = f"entry-filled-give-up-{uuid.uuid4().hex[:8]}"
"""An event of this run's own: the queue keeps a task's name after it ends."""


def test_a_webhook_that_keeps_failing_gives_up_through_the_trigger_and_the_queue(
    db: firestore.Client,
) -> None:
    """The emulated project's schedule is seconds (`functions/.env.demo-agenttrader`): a
    receiver that always answers 500 gets `NOTIFY_ATTEMPTS` attempts, each after the queue's
    wait, then the webhook is switched off, the feed says so, and nothing more is sent."""
    assert os.environ.get("CLOUD_TASKS_EMULATOR_HOST"), "the tasks emulator must be running"
    emulated = dict(
        line.split("=", 1)
        for line in EMULATED_ENV.read_text().splitlines()
        if line.startswith("NOTIFY_")
    )  # what the Functions emulator runs with
    attempts = int(emulated["NOTIFY_ATTEMPTS"])
    schedule = tasks.waits(
        int(emulated["NOTIFY_RETRY_FIRST_S"]),
        int(emulated["NOTIFY_RETRY_DOUBLINGS"]),
        int(emulated["NOTIFY_RETRY_MAX_S"]),
        attempts,
    )
    served = WebhookReceiver(signing_secret(webhook_signing_key(), UID))
    served.state.behaviour.status = 500
    try:
        set_up(db, served.url)
        an_event(db, GIVE_UP)
        wait_for(
            lambda: record(db, "webhook", GIVE_UP).get("state") == "gave_up", 60 + sum(schedule)
        )
        final = record(db, "webhook", GIVE_UP)
        assert final["attempts"] == attempts
        assert final["error"].startswith("your webhook answered that it did not take")
        assert len(served.state.received) == attempts
        gaps = [b.at - a.at for a, b in itertools.pairwise(served.state.received)]
        assert all(gap >= wait - 0.5 for gap, wait in zip(gaps, schedule, strict=True)), gaps
        settings = paths.notification_settings(db, UID).get().to_dict() or {}
        assert settings["webhook_off_at"] is not None
        feed = paths.notifications(db, UID).document(f"webhook-off-{GIVE_UP}").get()
        assert (feed.to_dict() or {})["kind"] == notices.WEBHOOK_OFF
        time.sleep(max(schedule) + 2)  # a retry would have come by now
        assert len(served.state.received) == attempts
        print(f"webhook attempts {attempts}, gaps {[round(g, 1) for g in gaps]} s")
    finally:
        served.stop()


@pytest.mark.parametrize(
    "data",
    [
        None,
        {"uid": UID, "event_id": "entry-filled-t1"},
        {"uid": UID, "event_id": "entry-filled-t1", "channel": "deliveries.sms"},
        {"uid": "", "event_id": "entry-filled-t1", "channel": "webhook"},
    ],
)
def test_a_malformed_task_is_dropped_and_changes_nothing(
    ready: firestore.Client, receiver: WebhookReceiver, data: Any
) -> None:
    before = paths.notifications(ready, UID).document("entry-filled-t1").get().to_dict()
    assert tasks.run_delivery(ready, senders(), NOW, data) == "bad task"
    assert paths.notifications(ready, UID).document("entry-filled-t1").get().to_dict() == before
    assert receiver.state.received == []


def test_an_attempt_to_repeat_asks_the_queue_to_try_again(
    ready: firestore.Client, receiver: WebhookReceiver
) -> None:
    """The task function answers UNAVAILABLE (503), never INTERNAL, so the queue retries."""
    receiver.state.behaviour.status = 500
    task = {"uid": UID, "event_id": "entry-filled-t1", "channel": "webhook"}
    with pytest.raises(https_fn.HttpsError) as raised:
        tasks.run_delivery(ready, senders(), NOW, task)
    assert raised.value.code == https_fn.FunctionsErrorCode.UNAVAILABLE
    receiver.state.behaviour.status = 200
    assert tasks.run_delivery(ready, senders(), NOW, task) == "delivered"
