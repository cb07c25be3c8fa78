"""The audit trail: append-only records of security-relevant actions, written in the caller's
batch so a change and its record land together."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.cloud import firestore

from agenttrader.store import paths


def audit_event(
    writer: firestore.WriteBatch | firestore.Transaction,
    db: firestore.Client,
    uid: str,
    action: str,
    at: datetime,
    actor: str,
    details: dict[str, Any],
) -> None:
    """Append a security-relevant event to the user's audit trail (in the caller's batch)."""
    writer.set(
        paths.audit(db, uid).document(),
        {"action": action, "at": at, "actor": actor, "details": details},
    )
