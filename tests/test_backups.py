"""Backups as the deploy sets them (scripts/backups.py, from what is set now) and one person's
documents restored from a restored database into the live one (scripts/restore_person.py)
between two Firestore emulator databases, never overwriting anything newer."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from operator_scripts import run_script

from agenttrader.core import clients
from agenttrader.store import paths
from localdev import emulators
from scripts.backups import plan
from scripts.restore_person import CREATE, KEEP, SAME, restore

ON = {"pointInTimeRecoveryEnablement": "POINT_IN_TIME_RECOVERY_ENABLED"}
OFF = {"pointInTimeRecoveryEnablement": "POINT_IN_TIME_RECOVERY_DISABLED"}
DAILY = {"name": "projects/p/databases/(default)/backupSchedules/s1", "dailyRecurrence": {}}


def test_a_new_project_gets_recovery_and_a_daily_backup() -> None:
    commands = [" ".join(c) for c in plan("p", OFF, [], pitr=True, days=14)]
    assert commands == [
        "gcloud firestore databases update --enable-pitr --project p --database (default)",
        "gcloud firestore backups schedules create --recurrence=daily --retention=14d "
        "--project p --database (default)",
    ]


def test_what_is_set_already_is_left_alone_and_a_new_retention_updated() -> None:
    kept = {**DAILY, "retention": f"{14 * 86400}s"}
    assert plan("p", ON, [kept], pitr=True, days=14) == []  # idempotent
    [update] = plan("p", ON, [kept], pitr=True, days=30)
    assert update[:5] == ["gcloud", "firestore", "backups", "schedules", "update"]
    assert "--backup-schedule=s1" in update and "--retention=30d" in update
    [off] = plan("p", ON, [kept], pitr=False, days=14)
    assert "--no-enable-pitr" in off


def test_the_backups_command_says_what_it_sets() -> None:
    result = run_script("backups.py", "--help")
    assert result.returncode == 0 and "point-in-time recovery" in result.stdout


def client(database: str) -> firestore.Client:
    return firestore.Client(
        project=clients.project_id(),
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        database=database,
    )


def test_one_persons_documents_come_back_and_nothing_newer_is_overwritten() -> None:
    emulators.clear_firestore(emulators.QUIET_DATABASE)
    emulators.clear_firestore()
    restored, live = client(emulators.QUIET_DATABASE), client("(default)")
    # the person as the backup kept them: a profile, a strategy, two trades, a notification
    for db in (restored, live):
        paths.user(db, "alice").set({"email": "alice@example.com", "keys_version": 2})
        paths.strategies(db, "alice").document("s1").set({"strategy": "momentum_20d"})
    paths.shadow_trades(restored, "alice").document("t1").set({"symbol": "AAPL", "quantity": "5"})
    paths.shadow_trades(restored, "alice").document("t2").set({"symbol": "MSFT", "quantity": "3"})
    paths.notifications(restored, "alice").document("n1").set({"message": "bought"})
    paths.user(restored, "bob").set({"email": "bob@example.com"})  # someone else: untouched
    time.sleep(0.05)
    as_of = datetime.now(UTC)
    time.sleep(0.05)
    # since the backup: t1 deleted by mistake, t2 changed, the strategy unchanged
    paths.shadow_trades(live, "alice").document("t2").set({"symbol": "MSFT", "quantity": "1"})

    dry = {s.path: s.action for s in restore(restored, live, "alice", as_of, apply=False)}
    assert dry == {
        "users/alice": SAME,
        "users/alice/strategies/s1": SAME,
        "users/alice/shadowTradeHistory/t1": CREATE,
        "users/alice/shadowTradeHistory/t2": KEEP,
        "users/alice/notifications/n1": CREATE,
    }
    assert not paths.shadow_trades(live, "alice").document("t1").get().exists  # a dry run

    restore(restored, live, "alice", as_of, apply=True)
    assert (paths.shadow_trades(live, "alice").document("t1").get().to_dict() or {}) == {
        "symbol": "AAPL",
        "quantity": "5",
    }
    kept = paths.shadow_trades(live, "alice").document("t2").get().to_dict() or {}
    assert kept["quantity"] == "1"  # newer here: kept
    assert paths.notifications(live, "alice").document("n1").get().exists
    assert not paths.user(live, "bob").get().exists
    again = restore(restored, live, "alice", as_of, apply=True)
    assert {s.action for s in again} <= {SAME, KEEP}  # a second run changes nothing
