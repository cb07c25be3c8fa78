"""Turn on the Firestore database's point-in-time recovery and its daily backup schedule, with
the retention the params say; `make deploy` runs it. Idempotent: it reads what is set first
and changes only what differs. Without `--apply` it prints what it would run.

    functions/venv/bin/python scripts/backups.py --project my-firebase-project [--apply]

Params (functions/.env.<project>): BACKUP_PITR (true: 7 days of point-in-time recovery),
BACKUP_RETENTION_DAYS (14: how long each daily backup is kept, at most 98).
"""

from __future__ import annotations

import sys
from typing import Any

from agenttrader.core import config
from scripts.preflight import carry_out, deploy_step_args, env_files, gcloud_json

DATABASE = "(default)"


def wanted(project: str) -> tuple[bool, int]:
    """Point-in-time recovery on or off, and a daily backup's retention in days."""
    values = env_files(project)
    pitr = values.get(config.BACKUP_PITR.name, str(config.BACKUP_PITR.default)).lower()
    days = int(values.get(config.BACKUP_RETENTION_DAYS.name, config.BACKUP_RETENTION_DAYS.default))
    if not 1 <= days <= 98:
        raise SystemExit(f"BACKUP_RETENTION_DAYS is {days}: a daily backup is kept 1 to 98 days")
    return pitr in ("true", "1", "yes"), days


def plan(
    project: str, database: dict[str, Any], schedules: list[dict[str, Any]], pitr: bool, days: int
) -> list[list[str]]:
    """The gcloud commands that bring the database to what is wanted, from what is set now
    (`gcloud firestore databases describe` and `... backups schedules list`, as JSON)."""
    base = ["--project", project, "--database", DATABASE]
    commands = []
    enabled = database.get("pointInTimeRecoveryEnablement") == "POINT_IN_TIME_RECOVERY_ENABLED"
    if enabled != pitr:
        flag = "--enable-pitr" if pitr else "--no-enable-pitr"
        commands.append(["gcloud", "firestore", "databases", "update", flag, *base])
    retention = f"{days * 86400}s"
    daily = [s for s in schedules if "dailyRecurrence" in s]
    if not daily:
        commands.append(
            ["gcloud", "firestore", "backups", "schedules", "create", "--recurrence=daily",
             f"--retention={days}d", *base]
        )  # fmt: skip
    elif daily[0].get("retention") != retention:
        schedule = str(daily[0]["name"]).rsplit("/", 1)[-1]
        commands.append(
            ["gcloud", "firestore", "backups", "schedules", "update",
             f"--backup-schedule={schedule}", f"--retention={days}d", *base]
        )  # fmt: skip
    return commands


def main() -> int:
    args = deploy_step_args(__doc__)
    pitr, days = wanted(args.project)
    scope = ["--project", args.project, "--database", DATABASE]
    database = gcloud_json("firestore", "databases", "describe", *scope) or {}
    schedules = gcloud_json("firestore", "backups", "schedules", "list", *scope) or []
    commands = plan(args.project, database, schedules, pitr, days)
    print(
        f"backups: point-in-time recovery {'on' if pitr else 'off'}, a daily backup kept "
        f"{days} days; {len(commands) or 'nothing'} to change"
    )
    carry_out(commands, args.apply)
    return 0


if __name__ == "__main__":
    sys.exit(main())
