"""Read-decide-write without locks: a write that carries a precondition, retried on contention.

Server-side Firestore transactions lock what they read, so overlapping calls on one document
(a double click, two tabs) wait on each other and the losers fail after a few attempts. A write
with a precondition (`create`, or `last_update_time` of the version that was read) never waits:
at most one of the racing writers wins each round and the others read again and decide again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore

T = TypeVar("T")

ATTEMPTS = 40
"""Enough for dozens of overlapping writers to each win a round."""
LOST_RACE = (gexc.FailedPrecondition, gexc.Conflict, gexc.Aborted)
"""What Firestore answers a write whose precondition another writer broke."""


class Contended(Exception):
    """Other writers kept changing the document; nothing was written. Safe to try again."""


def unchanged_since(
    db: firestore.Client, snapshot: firestore.DocumentSnapshot[Any]
) -> firestore.WriteOption | None:
    """The precondition that `snapshot` is still the current version (None: it did not exist,
    so write with `create`)."""
    if not snapshot.exists:
        return None
    return db.write_option(last_update_time=snapshot.update_time)


def retried(attempt: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """Run `attempt` (read, decide, write with a precondition) until no other writer got in
    between; every round reads afresh, so each decision is made on the current document."""
    for n in range(attempts):
        try:
            return attempt()
        except LOST_RACE:
            time.sleep(random.uniform(0, min(0.25, 0.005 * 2**n)))
    raise Contended("the same data was being changed by other calls; try again")
