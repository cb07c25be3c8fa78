"""firestore.indexes.json covers every query the product and its web client run, and each of
those queries runs on the emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.cloud import firestore

from agenttrader.store import queries

ROOT = Path(__file__).resolve().parents[1]


def needed_index(query: firestore.Query) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    """The composite index a query needs, or None when single-field indexes serve it.

    Equality filters first (ascending), then the order-by fields with their direction.
    Firestore serves one equality filter or one order-by alone from its automatic indexes.
    """
    equalities = [f.field.field_path for f in query._field_filters if f.op == 5]  # EQUAL
    # a range (>= and < on one field) is one field of the index
    others = list(dict.fromkeys(f.field.field_path for f in query._field_filters if f.op != 5))
    orders = [
        (o.field.field_path, "DESCENDING" if o.direction == 2 else "ASCENDING")
        for o in query._orders
    ]
    fields = [(f, "ASCENDING") for f in equalities] + [(f, "ASCENDING") for f in others]
    fields += [o for o in orders if o[0] not in {f for f, _ in fields}]
    if len(fields) <= 1 or (not orders and not others):
        return None
    return query._parent.id, tuple(fields)


def declared() -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    spec: dict[str, Any] = json.loads((ROOT / "firestore.indexes.json").read_text())
    return {
        (i["collectionGroup"], tuple((f["fieldPath"], f["order"]) for f in i["fields"]))
        for i in spec["indexes"]
        if i["queryScope"] == "COLLECTION"
    }


@pytest.mark.parametrize("name", list(queries.ALL))
def test_each_query_is_covered_and_runs(db: firestore.Client, name: str) -> None:
    query = queries.ALL[name](db)
    index = needed_index(query)
    if index is not None:
        assert index in declared(), f"{name} needs {index}; add it to firestore.indexes.json"
    list(query.stream())


def collection_group_fields() -> set[tuple[str, str]]:
    """The fields whose single-field index is enabled for collection-group queries (Firestore
    keeps none by default)."""
    spec: dict[str, Any] = json.loads((ROOT / "firestore.indexes.json").read_text())
    return {
        (o["collectionGroup"], o["fieldPath"])
        for o in spec.get("fieldOverrides", [])
        if any(i.get("queryScope") == "COLLECTION_GROUP" for i in o["indexes"])
    }


def test_each_collection_group_query_has_its_index(db: firestore.Client) -> None:
    grouped = [(n, b(db)) for n, b in queries.ALL.items() if b(db)._all_descendants]
    assert {n for n, _ in grouped} == {"everyones_open_trades", "everyones_strategies"}
    for name, query in grouped:
        for f in query._field_filters:
            assert (query._parent.id, f.field.field_path) in collection_group_fields(), name


def test_an_override_keeps_the_automatic_collection_indexes() -> None:
    """An override replaces the automatic indexes of its field: the ones queries on a single
    collection use are declared again beside the collection-group one."""
    spec: dict[str, Any] = json.loads((ROOT / "firestore.indexes.json").read_text())
    for o in spec["fieldOverrides"]:
        if o["indexes"]:
            scopes = {
                (i.get("order") or i.get("arrayConfig"), i["queryScope"]) for i in o["indexes"]
            }
            assert {("ASCENDING", "COLLECTION"), ("DESCENDING", "COLLECTION")} <= scopes


def test_no_index_is_declared_that_no_query_needs(db: firestore.Client) -> None:
    used = {needed_index(build(db)) for build in queries.ALL.values()}
    assert declared() <= used
