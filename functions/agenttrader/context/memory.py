"""What one instance remembers between runs of the pulse, so unchanged data costs nothing."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from agenttrader.store.models import ShadowTrade


@dataclass(frozen=True)
class RememberedTrades:
    """A person's open trades as last read or priced, for one version of their set."""

    version: int
    trades: tuple[tuple[str, ShadowTrade], ...]
    """(document path, trade) pairs."""


MAX_AGE_S = 1800.0
"""An entry older than this is read again: the memory bounds its own staleness (a snapshot
deleted behind the pulse's back is rewritten within this time)."""


class PulseMemory:
    """Per person (keyed by uid and their profile's creation, so a profile made anew is a new
    person): a digest of their snapshot as this instance last wrote or read it, and their
    open trades for the set's version (`trades_version` in the profile, bumped whenever a trade
    opens or closes). An unchanged account then costs neither a read nor a write, and an
    unchanged set of trades no query. A miss reads once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshots: dict[str, tuple[float, str]] = {}
        self._trades: dict[str, tuple[float, RememberedTrades]] = {}
        self._notes: dict[tuple[str, str], tuple[float, Any]] = {}

    def snapshot(self, key: str) -> str | None:
        with self._lock:
            found = self._snapshots.get(key)
        return found[1] if found and time.monotonic() - found[0] < MAX_AGE_S else None

    def remember(self, key: str, digest: str) -> None:
        with self._lock:
            self._snapshots[key] = (time.monotonic(), digest)

    def trades(self, key: str, version: int | None) -> RememberedTrades | None:
        if version is None:
            return None
        with self._lock:
            found = self._trades.get(key)
        if found is None or time.monotonic() - found[0] >= MAX_AGE_S:
            return None
        return found[1] if found[1].version == version else None

    def remember_trades(
        self, key: str, version: int | None, trades: list[tuple[str, ShadowTrade]]
    ) -> None:
        if version is None:
            return
        with self._lock:
            self._trades[key] = (time.monotonic(), RememberedTrades(version, tuple(trades)))

    def recall(self, kind: str, key: str) -> Any:
        """What was kept of `kind` (a person's bot settings, statistics, ...) for `key`, or
        None when nothing was or it is older than MAX_AGE_S."""
        with self._lock:
            found = self._notes.get((kind, key))
        return found[1] if found and time.monotonic() - found[0] < MAX_AGE_S else None

    def keep(self, kind: str, key: str, value: Any) -> None:
        with self._lock:
            self._notes[(kind, key)] = (time.monotonic(), value)
