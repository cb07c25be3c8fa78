"""The people a run syncs, as their profiles list them, and the run's limits and outcomes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agenttrader.bot.settings import bot_version
from agenttrader.store.models import (
    keys_version,
    open_trades_count,
)

OUTCOMES = (
    "synced",
    "skipped_disabled",
    "skipped_no_keys",
    "skipped_in_progress",
    "deferred",
    "failed",
)


@dataclass(frozen=True)
class PulseSettings:
    """Limits of one pulse."""

    concurrency: int = 32
    """Users synced at once by this instance."""
    deadline_s: float = 50.0
    """No user is started after this many seconds; the schedule is every 60 s."""
    lease_s: float = 120.0
    """How long a run's lease outlives a run that may have died (fan-out runs hold it only
    until their deadline, so the next minute's run can start)."""
    user_timeout_s: float = 25.0
    """A user whose sync takes longer fails with SYNC_TIMEOUT and writes nothing."""
    fanout_threshold: int = 2000
    """Above this many users, fan out through the task queue (when one is given)."""
    fanout_batch: int = 100
    """Users per task when fanning out."""
    clock_keys_secret: str = ""
    """The secret holding the operator's own key pair the market clock is read with first
    (empty: people's keys, then the NYSE calendar)."""


@dataclass(frozen=True)
class UserRef:
    """A person to sync, as their profile lists them."""

    uid: str
    keys_version: int | None
    open_trades: int | None = None
    """Their open shadow trades (None: not counted yet, so look)."""
    sync_state: str | None = None
    """`ok` or `failing` as last recorded; None before their first sync."""
    trades_version: int | None = None
    """The version of their set of open trades; None: read them every time."""
    generation: str = ""
    """When their profile was created: what an instance remembers of them is for this one."""
    bot_version: int | None = None
    """The version of their strategies and risk limits; None: they never set any up."""
    orders_pending: int | None = None
    """Their paper orders Alpaca may still change."""
    position_mismatches: int = 0
    """Differences between their paper book and Alpaca's positions on record."""
    keys_shown: bool = True
    """Their profile shows their keys (`key_id_masked`); False: written at their next sync."""
    failing_since: float | None = None
    """When their syncs began failing (Unix seconds), while they do."""
    failing_told: bool = False
    """They were told their syncs are failing (`notices.sync_failing`), this failing spell."""
    summary_day: str | None = None
    """The last trading day they were sent the summary of."""

    @property
    def memory_key(self) -> str:
        return f"{self.uid}@{self.generation}"


def user_ref(uid: str, profile: Mapping[str, Any] | None, created: Any = None) -> UserRef:
    """A person as their profile lists them (`created`: the profile's creation time)."""
    data = profile or {}
    version = data.get("trades_version")
    pending = data.get("orders_pending")
    mismatches = data.get("position_mismatches")
    since, summary = data.get("failing_since"), data.get("summary_day")
    return UserRef(
        uid,
        keys_version(data),
        open_trades_count(data),
        data.get("sync_state"),
        version if isinstance(version, int) else None,
        "" if created is None else str(created),
        bot_version(data),
        pending if isinstance(pending, int) else None,
        mismatches if isinstance(mismatches, int) else 0,
        bool(data.get("key_id_masked")),
        since.timestamp() if isinstance(since, datetime) else None,
        bool(data.get("failing_told")),
        summary if isinstance(summary, str) else None,
    )


def holds_something(user: UserRef) -> bool:
    """Open trades or orders working (or not counted yet): synced whatever their switch."""
    return (user.open_trades or 0) > 0 or bool(user.orders_pending)
