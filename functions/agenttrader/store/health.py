"""Counters for the operators' health at a glance, an hour a document
(`ops/health/hours/{2026-12-03T16}`, kept two hours: `expires_at`, a TTL field)."""

from __future__ import annotations

from datetime import datetime, timedelta

from google.cloud import firestore

from agenttrader.store import paths

KEPT = timedelta(hours=2)


def hour_key(at: datetime) -> str:
    """The hour a counter belongs to: `2026-12-03T16` (UTC)."""
    return at.strftime("%Y-%m-%dT%H")


def count_delivery(db: firestore.Client, at: datetime, state: str) -> None:
    """Add one webhook attempt that did not deliver (`failed`, `gave_up`) to its hour."""
    paths.health_hour(db, hour_key(at)).set(
        {f"deliveries_{state}": firestore.Increment(1), "expires_at": at + KEPT}, merge=True
    )
