"""A person's notification settings (`settings/notifications`: which events, their webhook,
email on or off), their webhook signing secret (shown, and rotated, never stored: it derives
from the app's key and their uid), and a test notification sent to their webhook now."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from google.cloud import firestore
from pydantic import AfterValidator, Field, StrictBool

from agenttrader.api.callables import Empty
from agenttrader.api.guard import Call, Code, Limit, StrictInput, endpoint, fail
from agenttrader.bot.notices import KINDS
from agenttrader.notify import message, webhook
from agenttrader.store import paths
from agenttrader.store.audit import audit_event
from agenttrader.store.optimistic import retried, unchanged_since

Kind = Literal[
    "entry_filled",
    "exit_filled",
    "order_ended",
    "exit_failed",
    "risk_tripped",
    "position_mismatch",
    "sync_failing",
    "daily_summary",
]
assert set(Kind.__args__) == set(KINDS)  # type: ignore[attr-defined]


def _distinct(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise ValueError("an event is listed twice")
    return value


class SettingsRequest(StrictInput):
    events: Annotated[list[Kind], Field(max_length=len(KINDS)), AfterValidator(_distinct)]
    webhook_url: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
    email: StrictBool = False


def _secret(call: Call[Any], version: int) -> str:
    if call.services.webhook_key is None:
        raise fail(Code.FAILED_PRECONDITION, "webhooks are not set up on this deployment")
    return webhook.signing_secret(call.services.webhook_key(), call.who.uid, version)


@endpoint(SettingsRequest, Limit(10, 60))
def save_notification_settings(call: Call[SettingsRequest]) -> dict[str, Any]:
    """Save which events the person hears of and where; answers their signing secret."""
    request, db, uid = call.request, call.db, call.who.uid
    ref = paths.notification_settings(db, uid)
    _secret(call, 0)  # refused before anything changes when webhooks are not set up
    if request.webhook_url is not None:
        try:
            webhook.check_url(
                request.webhook_url, allow_loopback_http=call.services.webhook_loopback_http
            )
        except webhook.Refused as refused:
            raise fail(Code.INVALID_ARGUMENT, f"Webhook URL: {refused}", "webhook_url") from None
    if request.email and not (call.who.email_verified and call.who.email):
        raise fail(
            Code.FAILED_PRECONDITION,
            "Email me: confirm your email address first, with the link in the confirmation "
            "email, then save again",
        )
    fields = {
        "events": list(request.events),
        "webhook_url": request.webhook_url,
        "email": request.email,
        # mail goes only to the address the person proved is theirs, as it was when they chose
        "email_to": call.who.email if request.email else firestore.DELETE_FIELD,
        "updated_at": call.now,
        # saved again: a webhook switched off for failing is on again
        "webhook_off_at": firestore.DELETE_FIELD,
        "webhook_off_reason": firestore.DELETE_FIELD,
    }
    snapshot = ref.get()
    batch = db.batch()
    batch.set(ref, fields, merge=True)
    audit_event(
        batch,
        db,
        uid,
        "notification_settings_saved",
        call.now,
        uid,
        {"events": len(request.events), "webhook": request.webhook_url is not None},
    )
    batch.commit()
    version = webhook.secret_version(snapshot.to_dict() or {})
    return {
        "events": fields["events"],
        "webhook_url": request.webhook_url,
        "email": request.email,
        "signing_secret": _secret(call, version),
    }


@endpoint(Empty, Limit(5, 60))
def rotate_webhook_secret(call: Call[Empty]) -> dict[str, Any]:
    """A new signing secret: the old one stops verifying at once."""
    db, uid = call.db, call.who.uid
    ref = paths.notification_settings(db, uid)
    _secret(call, 0)  # refused before anything changes when webhooks are not set up

    def attempt() -> int:
        snapshot = ref.get()
        version = webhook.secret_version(snapshot.to_dict() or {}) + 1
        batch = db.batch()
        if snapshot.exists:
            batch.update(
                ref, {"webhook_secret_version": version}, option=unchanged_since(db, snapshot)
            )
        else:
            batch.create(ref, {"webhook_secret_version": version, "events": [], "email": False})
        audit_event(batch, db, uid, "webhook_secret_rotated", call.now, uid, {})
        batch.commit()
        return version

    return {"signing_secret": _secret(call, retried(attempt))}


@endpoint(Empty, Limit(3, 60))
def send_test_notification(call: Call[Empty]) -> dict[str, Any]:
    """Send a test notification to the person's webhook now; answers the receiver's status."""
    db, uid = call.db, call.who.uid
    settings = paths.notification_settings(db, uid).get().to_dict() or {}
    url = settings.get("webhook_url")
    if not isinstance(url, str) or not url:
        raise fail(Code.FAILED_PRECONDITION, "add a Webhook URL and save it first")
    text = "This is a test notification from AgentTrader: your webhook works."
    body = message.webhook_body(
        message.event("test", {"kind": "test", "message": text, "at": call.now})
    )
    sent = webhook.attempt(
        url,
        body,
        _secret(call, webhook.secret_version(settings)),
        allow_loopback_http=call.services.webhook_loopback_http,
    )
    if sent.status is not None:  # the receiver answered: recorded, whatever it said
        batch = db.batch()
        audit_event(
            batch, db, uid, "test_notification_sent", call.now, uid, {"status": sent.status}
        )
        batch.commit()
    if sent.problem is not None:
        code = Code.UNAVAILABLE if sent.unreachable else Code.FAILED_PRECONDITION
        raise fail(code, f"{sent.problem}: {sent.advice}" if sent.advice else sent.problem)
    return {"delivered": True, "status": sent.status}
