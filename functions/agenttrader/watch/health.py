"""The last hour at a glance, for the Operations region (`admin_get_last_pulse`): the pulse's
runs, people synced and failed by reason, runs that reached their deadline, webhook deliveries
that failed or were given up, and one sentence saying whether anything needs attention now, by
the thresholds the alert policies use (`monitoring/policies`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from google.cloud import firestore

from agenttrader.store import paths
from agenttrader.store.firestore_io import get_in_order
from agenttrader.store.health import hour_key

HOUR = timedelta(hours=1)
STALLED = timedelta(minutes=10)
"""No run for this long is the `pulse-stalled` alert."""
FAILING_RUNS = 3
"""Runs in a row over the failing share make the `syncs-failing` alert."""


@dataclass(frozen=True)
class Thresholds:
    failing_share: float = 0.2
    """The share of a run's people failing that, `FAILING_RUNS` runs in a row, alerts."""


def last_hour(db: firestore.Client, now: datetime, thresholds: Thresholds) -> dict[str, Any]:
    since = now - HOUR
    runs = [
        doc.to_dict() or {}
        for doc in paths.pulse_runs(db)
        .where(filter=firestore.FieldFilter("started_at", ">=", since))
        .order_by("started_at")
        .stream()
    ]
    synced = sum(int(r.get("synced") or 0) for r in runs)
    failed = sum(int(r.get("failed") or 0) for r in runs)
    by_reason: Counter[str] = Counter()
    for r in runs:
        by_reason.update({k: int(v) for k, v in (r.get("errors_by_code") or {}).items()})
    deadline_hits = sum(1 for r in runs if int(r.get("deferred") or 0) > 0)
    deliveries: Counter[str] = Counter()
    hours = [paths.health_hour(db, key) for key in sorted({hour_key(since), hour_key(now)})]
    for snapshot in get_in_order(db, hours):  # one round trip for both hours
        doc = snapshot.to_dict() or {}
        deliveries.update({k: int(doc.get(f"deliveries_{k}") or 0) for k in ("failed", "gave_up")})
    last_run = runs[-1].get("started_at") if runs else None  # they come oldest first
    attention = _attention(runs, now, last_run, deadline_hits, deliveries, thresholds)
    return {
        "runs": len(runs),
        "synced": synced,
        "failed": failed,
        "failed_by_reason": dict(by_reason),
        "deadline_hits": deadline_hits,
        "deliveries_failed": deliveries["failed"],
        "deliveries_gave_up": deliveries["gave_up"],
        "attention": attention,
        "sentence": (
            "Needs attention now: " + "; ".join(attention) + "."
            if attention
            else "Nothing needs attention now."
        ),
    }


def _share(run: dict[str, Any]) -> float:
    tried = int(run.get("synced") or 0) + int(run.get("failed") or 0)
    return int(run.get("failed") or 0) / tried if tried else 0.0


def _attention(
    runs: list[dict[str, Any]],
    now: datetime,
    last_run: datetime | None,
    deadline_hits: int,
    deliveries: Counter[str],
    thresholds: Thresholds,
) -> list[str]:
    said = []
    if last_run is None or now - last_run > STALLED:
        ago = (
            "in the last hour"
            if last_run is None
            else f"for {int((now - last_run).total_seconds() // 60)} minutes"
        )
        said.append(f"the pulse has not run {ago}")
    recent = [r for r in runs if int(r.get("synced") or 0) + int(r.get("failed") or 0) > 0]
    tail = recent[-FAILING_RUNS:]
    if len(tail) == FAILING_RUNS and all(_share(r) > thresholds.failing_share for r in tail):
        worst = max(_share(r) for r in tail)
        said.append(
            f"up to {worst:.0%} of people's syncs failed in each of the last {FAILING_RUNS} "
            f"runs (the alert is above {thresholds.failing_share:.0%})"
        )
    if deadline_hits:
        said.append(f"{deadline_hits} run{'s' if deadline_hits > 1 else ''} reached the deadline")
    if deliveries["gave_up"]:
        many = "s" if deliveries["gave_up"] > 1 else ""
        said.append(f"{deliveries['gave_up']} webhook{many} switched off for failing")
    return said
