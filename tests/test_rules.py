"""firestore.rules on the Firestore emulator: every path x every kind of caller x every operation.

Requests go through the REST API with unsigned ID tokens, so the rules are enforced (the
Python server clients act as owner and would bypass them).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from google.cloud import firestore

from localdev import emulators

ROOT = Path(__file__).resolve().parents[1]
OWNER, OTHER, ADMIN = "alice", "bob", "operator"
ROLES = {
    "owner": emulators.unsigned_token(OWNER),
    "other": emulators.unsigned_token(OTHER),
    "anonymous": None,
    "admin": emulators.unsigned_token(ADMIN, admin=True),
}
OPERATIONS = ("get", "list", "create", "update", "delete")

# path -> the (role, operation) pairs allowed; everything else must be denied.
OWNER_READS = {("owner", "get")}
OWNER_LISTS = {("owner", "get"), ("owner", "list")}
ADMIN_READS = {("admin", "get"), ("admin", "list")}
MATRIX: dict[str, set[tuple[str, str]]] = {
    f"users/{OWNER}": OWNER_READS,
    f"users/{OWNER}/status/trading": OWNER_READS,
    f"users/{OWNER}/status/sync": OWNER_READS,
    f"users/{OWNER}/status/last_sync_error": OWNER_READS,
    f"users/{OWNER}/status/reconciliation": OWNER_READS,
    f"users/{OWNER}/status/marks": OWNER_READS,
    f"users/{OWNER}/status/other": set(),
    f"users/{OWNER}/alpacaAccounts/snapshot": OWNER_READS,
    f"users/{OWNER}/alpacaAccounts/other": set(),
    f"users/{OWNER}/shadowTradeHistory/t1": OWNER_LISTS,
    f"users/{OWNER}/signals/s1": OWNER_LISTS,
    f"users/{OWNER}/audit/e1": OWNER_LISTS,
    f"users/{OWNER}/strategies/st1": OWNER_LISTS,
    f"users/{OWNER}/backtests/b1": OWNER_LISTS,
    f"users/{OWNER}/backtests/b1/trades/0000": OWNER_LISTS,
    f"users/{OWNER}/backtests/b1/other/x": set(),
    f"users/{OWNER}/notifications/n1": OWNER_LISTS | {("owner", "update")},
    f"users/{OWNER}/settings/notifications": OWNER_READS,
    f"users/{OWNER}/settings/risk": OWNER_READS,
    f"users/{OWNER}/settings/live": OWNER_READS,
    f"users/{OWNER}/settings/other": set(),
    f"users/{OWNER}/orders/o1": OWNER_LISTS,
    f"users/{OWNER}/stats/summary": OWNER_READS,
    f"users/{OWNER}/stats/closed": set(),
    f"users/{OWNER}/stats/other": set(),
    f"users/{OWNER}/equity/2026-11-23": OWNER_LISTS,
    f"users/{OWNER}/secrets/alpaca": set(),
    f"users/{OWNER}/unknown/x": set(),
    f"users/{OWNER}/data/snapshot": ADMIN_READS,
    f"users/{OWNER}/tradingSignals/s1": ADMIN_READS,
    "ops/trading": {("admin", "get")},
    "ops/last_pulse": {("admin", "get")},
    "ops/freshness": {("owner", "get"), ("other", "get"), ("admin", "get")},
    "ops/status": {("owner", "get"), ("other", "get"), ("admin", "get")},
    "ops/pulse_state": set(),
    "ops/pulse/runs/r1": set(),
    "ops/pulse/runs/r1/batches/0": set(),
    "ops/oauth/states/h1": set(),
    f"mail/{OWNER}-n1": set(),
    f"ops/rate_limits/{OWNER}/save_alpaca_keys": set(),
    "alpacaAccounts/snapshot": ADMIN_READS,
    "tradingSignals/s1": ADMIN_READS,
    "shadowTradeHistory/t1": ADMIN_READS,
    "tenants/acme/accounts/primary": ADMIN_READS,
    "unknown/doc": set(),
}


def seed_everything(db: firestore.Client) -> None:
    now = datetime.now(UTC)
    for path in MATRIX:
        db.document(path).set({"seeded": True, "enabled": True, "updated_at": now})


def attempt(role: str, operation: str, path: str) -> int:
    client = emulators.FirestoreAs(ROLES[role])
    if operation == "get":
        return client.get(path).status_code
    if operation == "list":
        return client.list(path.rsplit("/", 1)[0]).status_code
    if operation == "delete":
        return client.delete(path).status_code
    if path.endswith("status/trading"):  # the one valid shape for each writable document
        fields: dict[str, Any] = {"enabled": False}
        server_time: tuple[str, ...] = ("updated_at",)
    elif "/notifications/" in path:
        fields, server_time = {}, ("read_at",)
    else:
        fields, server_time = {"seeded": False}, ()
    if operation == "create":
        emulators.FirestoreAs("owner").delete(path)
        return client.write(
            path, fields, server_time=server_time, exists=False, merge=False
        ).status_code
    return client.write(path, fields, server_time=server_time, exists=True).status_code


@pytest.mark.parametrize("path", list(MATRIX))
def test_rules_matrix(db: firestore.Client, path: str) -> None:
    seed_everything(db)
    wrong = []
    for role in ROLES:
        for operation in OPERATIONS:
            status = attempt(role, operation, path)
            allowed = (role, operation) in MATRIX[path]
            if (status == 200) != allowed or status not in (200, 403):
                wrong.append(
                    f"{role} {operation}: HTTP {status}, expected {'allow' if allowed else 'deny'}"
                )
            if operation == "create" and status != 200:
                db.document(path).set(
                    {"seeded": True, "enabled": True, "updated_at": datetime.now(UTC)}
                )
    assert wrong == []


KILL_SWITCH = f"users/{OWNER}/status/trading"


@pytest.mark.parametrize(
    ("fields", "server_time"),
    [
        ({"enabled": True}, ("updated_at",)),  # the shape the page once wrote
        ({"enabled": True, "extra": 1}, ("updated_at",)),
        ({"enabled": True}, ()),
    ],
)
def test_the_kill_switch_is_never_written_by_its_owner(
    db: firestore.Client, fields: dict[str, Any], server_time: tuple[str, ...]
) -> None:
    locked = {"enabled": False, "updated_at": datetime.now(UTC), "locked_by": "ops"}
    db.document(KILL_SWITCH).set({**locked, "reason": "under review"})
    owner = emulators.FirestoreAs(ROLES["owner"])
    for merge in (False, True):
        written = owner.write(KILL_SWITCH, fields, server_time=server_time, merge=merge)
        assert written.status_code == 403
    assert owner.delete(KILL_SWITCH).status_code == 403
    assert db.document(KILL_SWITCH).get().to_dict() == {**locked, "reason": "under review"}


def test_a_deleted_accounts_open_page_cannot_bring_its_switch_back(db: firestore.Client) -> None:
    """The account was deleted (no profile, no switch) while its page, still signed in, holds a
    token for up to an hour: it cannot create the switch, or anything else under the uid."""
    db.document(KILL_SWITCH).delete()
    db.document(f"users/{OWNER}").delete()
    owner = emulators.FirestoreAs(ROLES["owner"])
    for fields in ({"enabled": True}, {"enabled": False}):
        made = owner.write(KILL_SWITCH, fields, server_time=("updated_at",), exists=False)
        assert made.status_code == 403
    made = owner.write(f"users/{OWNER}", {"display_name": "back"}, exists=False, merge=False)
    assert made.status_code == 403
    assert not db.document(KILL_SWITCH).get().exists
    assert not db.document(f"users/{OWNER}").get().exists


NOTIFICATION = f"users/{OWNER}/notifications/n1"


@pytest.mark.parametrize(
    ("fields", "server_time"),
    [
        ({"message": "changed"}, ("read_at",)),  # anything beside read_at
        ({"read_at": "2026-11-23T00:00:00Z"}, ()),  # a time the client chose
        ({"kind": "entry_filled"}, ()),
    ],
)
def test_a_notification_takes_only_the_time_it_was_read(
    db: firestore.Client, fields: dict[str, Any], server_time: tuple[str, ...]
) -> None:
    db.document(NOTIFICATION).set(
        {"kind": "risk_tripped", "message": "m", "at": datetime.now(UTC), "read_at": None}
    )
    owner = emulators.FirestoreAs(ROLES["owner"])
    assert (
        owner.write(NOTIFICATION, fields, server_time=server_time, exists=True).status_code == 403
    )
    assert owner.write(NOTIFICATION, {}, server_time=("read_at",), exists=True).status_code == 200
    assert (db.document(NOTIFICATION).get().to_dict() or {})["message"] == "m"


@pytest.mark.parametrize(
    ("fields", "allowed"),
    [
        ({"display_name": "Alice A."}, True),
        ({"timezone": "Europe/Paris"}, True),
        ({"display_name": "x" * 101}, False),
        ({"display_name": 7}, False),
        ({"keys_version": 99}, False),
        ({"admin": True}, False),
        ({"email": "mallory@example.com"}, False),
        ({"display_name": "ok", "role": "admin"}, False),
    ],
)
def test_profile_updates_only_touch_allowed_fields(
    db: firestore.Client, fields: dict[str, Any], allowed: bool
) -> None:
    db.document(f"users/{OWNER}").set({"email": "alice@example.com", "keys_version": 1})
    owner = emulators.FirestoreAs(ROLES["owner"])
    status = owner.write(f"users/{OWNER}", fields, exists=True).status_code
    assert status == (200 if allowed else 403)
    other = emulators.FirestoreAs(ROLES["other"])
    assert other.write(f"users/{OWNER}", {"display_name": "hijack"}, exists=True).status_code == 403


@pytest.mark.parametrize(
    "collection",
    [
        "shadowTradeHistory",
        "signals",
        "audit",
        "status",
        "secrets",
        "strategies",
        "orders",
        "equity",
        "stats",
        "settings",
    ],
)
def test_no_collection_group_reads_across_users(db: firestore.Client, collection: str) -> None:
    seed_everything(db)
    for role, token in ROLES.items():
        answer = emulators.FirestoreAs(token).query_group(collection)
        assert answer.status_code == 403, (role, answer.text[:200])


def test_every_rule_is_exercised(db: firestore.Client) -> None:
    """Runs last (file order): the emulator's coverage report shows each allow evaluated."""
    seed_everything(db)
    for path in MATRIX:
        for role in ROLES:
            attempt(role, "get", path)
            attempt(role, "update", path)
    base = f"{emulators.firestore_url()}/emulator/v1/projects/{emulators.project()}:ruleCoverage"
    report = requests.get(base, timeout=30).json()
    print(f"\nrules coverage report: {base}.html")
    rules_source = (ROOT / "firestore.rules").read_text().splitlines()
    allow_lines = {i + 1 for i, line in enumerate(rules_source) if re.match(r"\s*allow ", line)}
    # each top-level node is one rule expression; evaluated ones carry the values they took
    evaluated = {
        int(node["sourcePosition"]["line"]) for node in report["report"] if node.get("values")
    }
    for line in sorted(allow_lines):
        status = "exercised" if line in evaluated else "NOT EXERCISED"
        print(f"  line {line:3d} {status:13s} {rules_source[line - 1].strip()}")
    assert allow_lines <= evaluated
