"""The daily check that a backup of the database finished (`backupcheck`): `backup.missing`
(an error, which the `backup-failed` alert matches) when the newest finished backup is older
than `BACKUP_MAX_AGE`, else `backup.ok`. Backups are taken by Firestore's own daily schedule,
which `make deploy` sets (scripts/backups.py); nothing else tells anyone that one failed."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from firebase_functions import logger

BACKUP_MAX_AGE = timedelta(hours=26)
"""A day between two daily backups, and two hours for one to finish."""


@dataclass(frozen=True)
class Backup:
    """One of Firestore's backups, as its admin API lists it."""

    database: str
    """`projects/{project}/databases/{id}`."""
    state: str
    """`CREATING`, `READY` or `NOT_AVAILABLE`."""
    snapshot_time: datetime | None


Lister = Callable[[], Iterable[Backup]]


def check_backups(list_backups: Lister, database: str, now: datetime) -> str:
    """Log whether `database` has a backup that finished within `BACKUP_MAX_AGE`."""
    finished = [
        b.snapshot_time
        for b in list_backups()
        if b.database.rsplit("/", 1)[-1] == database and b.state == "READY" and b.snapshot_time
    ]
    newest = max(finished, default=None)
    if newest is None or now - newest > BACKUP_MAX_AGE:
        logger.error(
            "backup.missing",
            database=database,
            newest=newest.isoformat() if newest else None,
            hours_since=round((now - newest).total_seconds() / 3600, 1) if newest else None,
        )
        return "missing"
    logger.info("backup.ok", database=database, newest=newest.isoformat())
    return "ok"


def firestore_backups(project: str) -> Lister:
    """The project's backups in every location, from Firestore's admin API."""

    def listed() -> Iterable[Backup]:
        from google.cloud import firestore_admin_v1
        from google.cloud.firestore_admin_v1.types import Backup as Listed

        client = firestore_admin_v1.FirestoreAdminClient()
        answer = client.list_backups(parent=f"projects/{project}/locations/-")
        return [
            Backup(
                b.database,
                Listed.State(b.state).name,
                b.snapshot_time if b.snapshot_time else None,
            )
            for b in answer.backups
        ]

    return listed
