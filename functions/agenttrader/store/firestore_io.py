"""Reading many documents at once: in chunks the API accepts, answered by path or in order, and
their data read without copying it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

from google.cloud import firestore

T = TypeVar("T")

READ_CHUNK = 300
"""Documents per batched read."""


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """`items` in consecutive lists of at most `size`."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def get_by_path(
    db: firestore.Client, refs: Sequence[firestore.DocumentReference]
) -> dict[str, firestore.DocumentSnapshot[Any]]:
    """Every document in `refs` (existing or not), by path, in batched reads."""
    found: dict[str, firestore.DocumentSnapshot[Any]] = {}
    for chunk in chunks(refs, READ_CHUNK):
        found.update({doc.reference.path: doc for doc in db.get_all(chunk)})
    return found


def get_in_order(
    db: firestore.Client, refs: Sequence[firestore.DocumentReference]
) -> list[firestore.DocumentSnapshot[Any]]:
    """get_all answers in any order; these are in the order asked."""
    by_path = get_by_path(db, refs)
    return [by_path[ref.path] for ref in refs]


def fields_of(doc: firestore.DocumentSnapshot[Any]) -> Mapping[str, Any]:
    """A document's data, to read and not to change (empty when it does not exist): what
    `to_dict` gives, without the deep copy it makes of every document, which was a fifth of
    the time a new instance spent learning everyone's open trades."""
    if not doc.exists:
        return {}
    data = getattr(doc, "_data", None)  # the snapshot's own data, which `to_dict` copies
    return data if isinstance(data, dict) else (doc.to_dict() or {})
