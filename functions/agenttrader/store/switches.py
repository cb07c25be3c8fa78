"""Both kill-switches, read and written here only, so the rule is written once: a person's
`users/{uid}/status/trading` and everyone's `ops/trading`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from google.cloud import firestore

from agenttrader.store import paths
from agenttrader.store.firestore_io import fields_of
from agenttrader.store.models import Writer


def switch_is_on(data: Mapping[str, Any] | None) -> bool:
    """A person's switch: a missing document (None) is off, and only `enabled: true` is on."""
    return data is not None and data.get("enabled") is True


def lock_of(data: Mapping[str, Any] | None) -> str | None:
    """An administrator's lock on a person's switch: its reason ("" when none was given), or
    None when the switch is not locked."""
    if data is None or not data.get("locked_by"):
        return None
    return str(data.get("reason") or "")


def halts_everyone(data: dict[str, Any] | None) -> bool:
    """The global switch `ops/trading`: missing (None) means on; only `enabled: false` halts."""
    return data is not None and data.get("enabled") is False


def trading_enabled(db: firestore.Client, uids: list[str]) -> dict[str, bool]:
    """Each person's switch, read in one batched request."""
    if not uids:
        return {}
    refs = [paths.trading_status(db, uid) for uid in uids]
    return {  # only the field the rule reads
        doc.reference.parent.parent.id: switch_is_on(fields_of(doc) if doc.exists else None)
        for doc in db.get_all(refs, field_paths=["enabled"])
    }


def switch_document(enabled: bool, now: datetime, **extra: Any) -> dict[str, Any]:
    """The stored form of a switch: `{enabled, updated_at}` plus who or what changed it."""
    return {"enabled": enabled, "updated_at": now, **extra}


def set_trading(
    writer: Writer, db: firestore.Client, uid: str, enabled: bool, now: datetime, **extra: Any
) -> None:
    """Write a person's switch in the caller's batch or transaction."""
    writer.set(paths.trading_status(db, uid), switch_document(enabled, now, **extra))


def set_global_trading(
    db: firestore.Client, enabled: bool, now: datetime, by: str, reason: str = ""
) -> None:
    """The global switch, and in the same commit what every person's page shows of it
    (`ops/status`: halted or not, the reason; never who)."""
    batch = db.batch()
    batch.set(paths.global_trading(db), switch_document(enabled, now, updated_by=by, reason=reason))
    batch.set(
        paths.platform_status(db),
        {"halted": not enabled, "reason": "" if enabled else reason, "updated_at": now},
    )
    batch.commit()
