"""Restore one person's documents (`users/{uid}` and everything under it) from a database
restored from a backup or a point in time into the live one, refusing to overwrite anything
newer: a live document written after the restore point (`--as-of`: the backup's snapshot time,
or the point in time) is kept as it is; one missing is created. A dry run (the default)
prints what it would do; `--apply` does it.

    functions/venv/bin/python scripts/restore_person.py --project P --from-database restored \
        --as-of 2026-12-03T04:00:00Z --uid UID [--to-database "(default)"] [--apply]

Restoring a whole database (README, "Backups and restores") is `gcloud firestore databases
restore` to a new database id; this copies one person's part of it back.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore

CREATE, REPLACE, KEEP, SAME = "create", "replace", "keep: newer here", "same"


@dataclass(frozen=True)
class Step:
    path: str
    action: str


def documents(db: firestore.Client, ref: firestore.DocumentReference) -> Iterator[Any]:
    """`ref` (when it exists) and every document below it, depth first."""
    snapshot = ref.get()
    if snapshot.exists:
        yield snapshot
    for collection in ref.collections():
        for child in collection.list_documents():
            yield from documents(db, child)


def restore(
    source: firestore.Client, target: firestore.Client, uid: str, as_of: datetime, apply: bool
) -> list[Step]:
    """Copy `uid`'s documents from `source` (restored as of `as_of`) into `target`."""
    steps = []
    for restored in documents(source, source.collection("users").document(uid)):
        path = restored.reference.path
        live = target.document(path).get()
        if not live.exists:
            action = CREATE
        elif live.update_time > as_of:
            action = KEEP
        elif live.to_dict() == restored.to_dict():
            action = SAME
        else:
            action = REPLACE
        if apply and action == CREATE:
            try:
                target.document(path).create(restored.to_dict() or {})
            except gexc.AlreadyExists:  # written meanwhile: newer than the copy
                action = KEEP
        elif apply and action == REPLACE:
            target.document(path).set(
                restored.to_dict() or {},
                option=target.write_option(last_update_time=live.update_time),
            )
        steps.append(Step(path, action))
    return steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", required=True)
    parser.add_argument("--from-database", required=True)
    parser.add_argument("--to-database", default="(default)")
    parser.add_argument("--uid", required=True)
    parser.add_argument(
        "--as-of", required=True, type=datetime.fromisoformat, help="the restore point (ISO 8601)"
    )
    parser.add_argument("--apply", action="store_true")
    args = parser.parse_args()
    if args.from_database == args.to_database:
        raise SystemExit("--from-database and --to-database must differ")
    source = firestore.Client(project=args.project, database=args.from_database)
    target = firestore.Client(project=args.project, database=args.to_database)
    as_of = args.as_of if args.as_of.tzinfo else args.as_of.replace(tzinfo=UTC)
    steps = restore(source, target, args.uid, as_of, args.apply)
    for step in steps:
        print(f"  {step.action:18s} {step.path}")
    done = "restored" if args.apply else "would restore (a dry run: --apply to do it)"
    created = sum(1 for s in steps if s.action in (CREATE, REPLACE))
    kept = sum(1 for s in steps if s.action == KEEP)
    print(f"{done}: {created} documents of {len(steps)}; {kept} kept, newer here")
    return 0


if __name__ == "__main__":
    sys.exit(main())
