"""What one instance remembers between runs of the pulse, so unchanged data costs nothing."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from agenttrader.models import ShadowTrade


@dataclass(frozen=True)
class RememberedTrades:
    """A person's open trades as last read or priced, for one version of their set."""

    version: int
    trades: tuple[tuple[str, ShadowTrade], ...]
    """(document path, trade) pairs."""


class PulseMemory:
    """Per person: a digest of their snapshot as this instance last wrote or read it, and their
    open trades for the set's version (`trades_version` in the profile, bumped whenever a trade
    opens or closes). An unchanged account then costs neither a read nor a write, and an
    unchanged set of trades no query. A miss reads once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshots: dict[str, str] = {}
        self._trades: dict[str, RememberedTrades] = {}

    def snapshot(self, uid: str) -> str | None:
        with self._lock:
            return self._snapshots.get(uid)

    def remember(self, uid: str, digest: str) -> None:
        with self._lock:
            self._snapshots[uid] = digest

    def trades(self, uid: str, version: int | None) -> RememberedTrades | None:
        if version is None:
            return None
        with self._lock:
            found = self._trades.get(uid)
        return found if found is not None and found.version == version else None

    def remember_trades(
        self, uid: str, version: int | None, trades: list[tuple[str, ShadowTrade]]
    ) -> None:
        if version is None:
            return
        with self._lock:
            self._trades[uid] = RememberedTrades(version, tuple(trades))
