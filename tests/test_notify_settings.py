"""A person's notification settings, their webhook signing secret, and the test notification
sent to their webhook (the local receiver checks its signature)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from calling import Code, auth, data_of, error_of
from google.cloud import firestore

from agenttrader.api.guard import Services
from agenttrader.api.notify_callables import (
    rotate_webhook_secret,
    save_notification_settings,
    send_test_notification,
)
from agenttrader.notify.webhook import signing_secret
from agenttrader.store import paths
from localdev.webhook_receiver import Behaviour, WebhookReceiver

APP_KEY = "test-app-key"
EVENTS = ["entry_filled", "exit_filled", "risk_tripped"]


@pytest.fixture
def notifying(services: Services) -> Services:
    """The services as deployed (no plain http) with the app's signing key."""
    return replace(services, webhook_key=lambda: APP_KEY, webhook_loopback_http=False)


@pytest.fixture
def demo(notifying: Services) -> Services:
    """As the local demo runs them: plain http to a loopback receiver allowed."""
    return replace(notifying, webhook_loopback_http=True)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver(signing_secret(APP_KEY, "alice"))
    yield running
    running.stop()


def test_settings_are_saved_and_the_signing_secret_shown(
    notifying: Services, db: firestore.Client
) -> None:
    request = {"events": EVENTS, "webhook_url": "https://hooks.example.com/x", "email": True}
    answer = save_notification_settings(notifying, auth("alice", email_verified=True), request)
    assert answer == {**request, "signing_secret": signing_secret(APP_KEY, "alice")}
    stored = paths.notification_settings(db, "alice").get().to_dict() or {}
    assert {k: stored[k] for k in request} == request
    assert stored["email_to"] == "alice@example.com"  # the confirmed address, as it was
    audit = [d.to_dict() or {} for d in paths.audit(db, "alice").stream()]
    assert [a["action"] for a in audit] == ["notification_settings_saved"]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"webhook_url": "http://hooks.example.com/x"}, "Webhook URL: a webhook URL must start"),
        ({"webhook_url": "https://169.254.169.254/latest"}, "public internet address"),
        ({"webhook_url": "https://[::ffff:10.0.0.1]/x"}, "public internet address"),
        ({"webhook_url": "https://user:pw@hooks.example.com/x"}, "no user name or password"),
        ({"events": ["entry_filled", "everything"]}, "Events"),
        ({"events": ["entry_filled", "entry_filled"]}, "listed twice"),
        ({"email": "yes"}, "Email me"),
    ],
)
def test_bad_settings_are_refused_and_change_nothing(
    notifying: Services, db: firestore.Client, change: dict[str, Any], says: str
) -> None:
    before = data_of(db)
    request = {"events": EVENTS, "webhook_url": "https://hooks.example.com/x", **change}
    error = error_of(save_notification_settings, notifying, auth("alice"), request)
    assert error.code == Code.INVALID_ARGUMENT
    assert says in error.message
    assert data_of(db) == before


def test_email_is_offered_only_to_a_confirmed_address(
    notifying: Services, db: firestore.Client
) -> None:
    before = data_of(db)
    request = {"events": EVENTS, "email": True}
    for unconfirmed in (auth("alice"), auth("alice", email_verified=False)):
        error = error_of(save_notification_settings, notifying, unconfirmed, request)
        assert error.code == Code.FAILED_PRECONDITION
        assert error.message.startswith("Email me: confirm your email address first")
    assert data_of(db) == before
    save_notification_settings(notifying, auth("alice", email_verified=True), request)
    save_notification_settings(notifying, auth("alice"), {"events": EVENTS})  # email off
    stored = paths.notification_settings(db, "alice").get().to_dict() or {}
    assert stored["email"] is False and "email_to" not in stored


def test_a_rotated_secret_replaces_the_old_one(notifying: Services, db: firestore.Client) -> None:
    first = save_notification_settings(notifying, auth("alice"), {"events": EVENTS})
    rotated = rotate_webhook_secret(notifying, auth("alice"), {})
    assert rotated["signing_secret"] == signing_secret(APP_KEY, "alice", 1)
    assert rotated["signing_secret"] != first["signing_secret"]
    again = save_notification_settings(notifying, auth("alice"), {"events": EVENTS})
    assert again["signing_secret"] == rotated["signing_secret"]  # saving keeps the rotation


def test_a_test_notification_reaches_the_webhook_signed(
    demo: Services, receiver: WebhookReceiver, db: firestore.Client
) -> None:
    save_notification_settings(demo, auth("alice"), {"events": EVENTS, "webhook_url": receiver.url})
    assert send_test_notification(demo, auth("alice"), {}) == {"delivered": True, "status": 200}
    [got] = receiver.state.received
    assert got.signature_valid
    assert got.body["text"] == got.body["content"]  # what Slack and Discord show
    assert got.body["event"]["kind"] == "test"
    # after a rotation the receiver's old secret no longer verifies
    rotate_webhook_secret(demo, auth("alice"), {})
    send_test_notification(demo, auth("alice"), {})
    assert [r.signature_valid for r in receiver.state.received] == [True, False]


def test_a_failed_test_notification_says_why_in_words(
    demo: Services, notifying: Services, receiver: WebhookReceiver
) -> None:
    error = error_of(send_test_notification, demo, auth("alice"), {})
    assert (error.code, error.message) == (
        Code.FAILED_PRECONDITION,
        "add a Webhook URL and save it first",
    )
    save_notification_settings(demo, auth("alice"), {"events": [], "webhook_url": receiver.url})
    receiver.state.behaviour = Behaviour(status=500)
    error = error_of(send_test_notification, demo, auth("alice"), {})
    assert error.code == Code.FAILED_PRECONDITION and "did not take" in error.message
    receiver.state.behaviour = Behaviour(redirect_to="https://elsewhere.example.com/")
    error = error_of(send_test_notification, demo, auth("alice"), {})
    assert "redirect" in error.message
    # 3 tests a minute: bob's settings show the rest
    save_notification_settings(demo, auth("bob"), {"events": [], "webhook_url": receiver.url})
    # deployed, plain http to loopback is refused even if it was saved in a demo
    error = error_of(send_test_notification, notifying, auth("bob"), {})
    assert error.code == Code.FAILED_PRECONDITION and "https" in error.message
    receiver.stop()
    error = error_of(send_test_notification, demo, auth("bob"), {})
    assert error.code == Code.UNAVAILABLE and "could not be reached" in error.message
    assert len(receiver.state.received) == 2  # the 500 and the redirect; nothing after
    assert all(json.dumps(r.body) for r in receiver.state.received)
    error_of(send_test_notification, demo, auth("bob"), {})  # the third this minute
    error = error_of(send_test_notification, demo, auth("bob"), {})
    assert error.code == Code.RESOURCE_EXHAUSTED


def test_webhooks_need_the_apps_key(services: Services) -> None:
    error = error_of(save_notification_settings, services, auth("alice"), {"events": EVENTS})
    assert error.code == Code.FAILED_PRECONDITION
