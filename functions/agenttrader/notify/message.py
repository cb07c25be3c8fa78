"""A notification as its channels carry it: the structured event, the webhook's JSON body
(with the plain sentence as `text` and `content`, the fields Slack and Discord show as a
message), and the `mail` document the "Trigger Email from Firestore" extension sends."""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Any

TITLES = {
    "entry_filled": "An entry filled",
    "exit_filled": "A position closed",
    "order_ended": "An order ended with nothing filled",
    "exit_failed": "A close was refused",
    "risk_tripped": "A risk limit switched trading off",
    "position_mismatch": "Your Alpaca account and AgentTrader disagree",
    "sync_failing": "Your account is not syncing",
    "daily_summary": "Your trading day",
    "webhook_off": "Your webhook was switched off",
    "test": "A test notification",
}
"""Each kind as an email's subject says it (the page's checkbox labels)."""

KEPT_OUT = ("read_at", "deliveries")
"""What the feed keeps about the person reading it, never sent anywhere."""


def event(event_id: str, notification: dict[str, Any]) -> dict[str, Any]:
    """The structured event: the notification's id, kind, sentence, time and figures."""
    fields = {k: v for k, v in notification.items() if k not in KEPT_OUT}
    return {"id": event_id, **{k: _plain(v) for k, v in sorted(fields.items())}}


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def webhook_body(structured: dict[str, Any]) -> bytes:
    text = str(structured.get("message", ""))
    return json.dumps({"text": text, "content": text, "event": structured}).encode()


def over_the_limit(to: str, per_day: int) -> dict[str, Any]:
    """The one mail that says today's other notifications are in the feed only."""
    text = (
        f"You were sent {per_day} notifications by mail today, the most in one day. The rest "
        "of today's are on your page, in Notifications; mail starts again tomorrow."
    )
    return {
        "to": to,
        "message": {
            "subject": "AgentTrader: the rest of today's notifications are on your page",
            "text": text,
            "html": f"<p>{html.escape(text)}</p>",
        },
    }


def mail_document(to: str, structured: dict[str, Any]) -> dict[str, Any]:
    """What the Trigger Email extension reads: `to` and `message` (`subject`, `text`, `html`)."""
    title = TITLES.get(str(structured.get("kind")), "A notification")
    text = str(structured.get("message", ""))
    return {
        "to": to,
        "message": {
            "subject": f"AgentTrader: {title}",
            "text": f"{text}\n\nYou chose to hear of this in your notification settings.",
            "html": f"<p>{html.escape(text)}</p>"
            "<p>You chose to hear of this in your notification settings.</p>",
        },
    }
