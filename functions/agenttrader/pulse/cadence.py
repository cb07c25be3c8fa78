"""When the pulse syncs people: every minute while the US equity market is open, every
`CLOSED_EVERY` while it is closed (prices do not move then, accounts rarely do), and once at
each open and close. The market's state comes from Alpaca's clock, which knows the holidays
and daylight saving; it is asked at most once per run, and only when the stored clock has
passed its next transition.

The state lives in one document, `ops/pulse_state`, with the run-level lease that keeps two
runs from syncing at once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from agenttrader.broker.answers import MarketClock

CLOSED_EVERY = timedelta(minutes=10)
"""How often people are synced while the market is closed."""
CLOCK_MAX_AGE = timedelta(hours=12)
"""A stored clock older than this is asked again even before its next transition."""
JITTER = timedelta(seconds=5)
"""The scheduler's ticks are not exact: a sync due in under this is due now."""


@dataclass(frozen=True)
class PulseState:
    """`ops/pulse_state`: the market clock as last read, the last sync, and the lease."""

    is_open: bool | None = None
    next_open: datetime | None = None
    next_close: datetime | None = None
    clock_at: datetime | None = None
    last_sync_at: datetime | None = None
    lease_run_id: str | None = None
    lease_until: datetime | None = None
    session_day: str | None = None
    """The last trading day a run saw open: once closed, the day people are sent the
    summary of."""

    @classmethod
    def from_document(cls, doc: dict[str, Any] | None) -> PulseState:
        doc = doc or {}
        clock = doc.get("clock") or {}
        lease = doc.get("lease") or {}
        return cls(
            is_open=clock.get("is_open"),
            next_open=clock.get("next_open"),
            next_close=clock.get("next_close"),
            clock_at=clock.get("at"),
            last_sync_at=doc.get("last_sync_at"),
            lease_run_id=lease.get("run_id"),
            lease_until=lease.get("until"),
            session_day=doc.get("session_day"),
        )

    def clock_document(self) -> dict[str, Any]:
        return {
            "is_open": self.is_open,
            "next_open": self.next_open,
            "next_close": self.next_close,
            "at": self.clock_at,
        }

    def with_clock(self, clock: MarketClock, now: datetime) -> PulseState:
        return replace(
            self,
            is_open=clock.is_open,
            next_open=clock.next_open,
            next_close=clock.next_close,
            clock_at=now,
        )

    def clock_is_current(self, now: datetime) -> bool:
        """The stored clock still tells the truth: read recently, no transition since."""
        if self.is_open is None or self.clock_at is None or now - self.clock_at > CLOCK_MAX_AGE:
            return False
        transition = self.next_close if self.is_open else self.next_open
        return transition is not None and now < transition

    def lease_held_by_another(self, run_id: str, now: datetime) -> bool:
        return (
            self.lease_run_id not in (None, run_id)
            and self.lease_until is not None
            and self.lease_until > now
        )


def sync_due(state: PulseState, now: datetime, clock_just_read: bool) -> bool:
    """Whether this run syncs people (with a current clock in `state`)."""
    if state.is_open or clock_just_read or state.last_sync_at is None:
        return True
    return now - state.last_sync_at >= CLOSED_EVERY - JITTER
