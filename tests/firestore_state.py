"""Read the whole emulator database back, to assert what a call did or did not change."""

from __future__ import annotations

from typing import Any

from google.cloud import firestore


def all_documents(db: firestore.Client, *, with_update_time: bool = False) -> dict[str, Any]:
    """Every document by path: its data, or (data, update time) to catch rewrites too."""
    found: dict[str, Any] = {}

    def walk(collection: Any) -> None:
        for ref in collection.list_documents():
            doc = ref.get()
            if doc.exists:
                found[ref.path] = (
                    (doc.to_dict(), doc.update_time) if with_update_time else doc.to_dict()
                )
            for sub in ref.collections():
                walk(sub)

    for collection in db.collections():
        walk(collection)
    return found
