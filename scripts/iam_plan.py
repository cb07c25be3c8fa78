"""The service accounts the functions run as, and what each may do (agenttrader/core/iam.py),
as the gcloud commands that set them up on a project; `make deploy` applies them.

    functions/venv/bin/python scripts/iam_plan.py --project P --number N            # print
    functions/venv/bin/python scripts/iam_plan.py --project P --number N --apply    # run them
    functions/venv/bin/python scripts/iam_plan.py --project P --check-policy policy.json

Every command is idempotent: an account or role that exists is kept (a role's permissions are
set again), a binding that exists is not added twice. `--check-policy` reads a project's IAM
policy (`gcloud projects get-iam-policy P --format=json`; fetched when no file is given) and
refuses a grant that lets any account read every secret of the project: `secretmanager.admin`
or an unconditioned `secretAccessor` (the old README's project-wide grant). Exit status: 0 done,
1 a command failed or the policy is refused, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from agenttrader.core import config, iam

WIDE_SECRET_ROLES = ("roles/secretmanager.admin", iam.SECRET_READER)
"""Roles that read every secret when granted on the whole project without a condition."""


def commands(project: str, number: str, clock_secret: str = "") -> list[list[str]]:
    """The plan: accounts, custom roles, then every grant."""
    plan: list[list[str]] = []
    for account, description in iam.ACCOUNTS.items():
        plan.append(
            ["gcloud", "iam", "service-accounts", "create", account, f"--project={project}",
             f"--display-name={account}", f"--description={description}"]
        )  # fmt: skip
    for role, permissions in (
        (iam.KEEPER_ROLE, iam.KEEPER_PERMISSIONS),
        (iam.CREATOR_ROLE, iam.CREATOR_PERMISSIONS),
    ):
        plan.append(
            ["gcloud", "iam", "roles", "create", role, f"--project={project}",
             f"--permissions={','.join(permissions)}", "--stage=GA"]
        )  # fmt: skip
    for grant in iam.grants(
        number,
        oauth_secret=config.ALPACA_OAUTH_CLIENT_SECRET.name,
        webhook_secret=config.WEBHOOK_SIGNING_KEY.name,
        clock_secret=clock_secret,
    ):
        plan.append(_binding(project, grant))
    return plan


def _binding(project: str, grant: iam.Grant) -> list[str]:
    member = f"--member=serviceAccount:{iam.email(grant.account, project)}"
    role = f"--role={grant.role.format(project=project)}"
    if grant.secret:
        return ["gcloud", "secrets", "add-iam-policy-binding", grant.secret,
                f"--project={project}", member, role]  # fmt: skip
    if grant.on_self:
        account = iam.email(grant.account, project)
        return ["gcloud", "iam", "service-accounts", "add-iam-policy-binding", account,
                f"--project={project}", member, role]  # fmt: skip
    command = ["gcloud", "projects", "add-iam-policy-binding", project, member, role]
    if grant.prefix:
        command.append(
            f'--condition=expression=resource.name.startsWith("{grant.prefix}"),'
            f"title=only {iam.KEYS_PREFIX}*"
        )
    else:
        command.append("--condition=None")
    return command


def refused(policy: dict[str, Any]) -> list[str]:
    """What in a project's IAM policy lets an account read every secret (one line each)."""
    found = []
    for binding in policy.get("bindings") or []:
        if binding.get("role") in WIDE_SECRET_ROLES and not binding.get("condition"):
            for member in binding.get("members") or []:
                found.append(
                    f"iam: {member} has {binding['role']} on the whole project: it can read "
                    "every person's keys; remove it (the functions run as their own accounts)"
                )
    return found


def _apply(plan: list[list[str]]) -> int:
    for command in plan:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode == 0:
            print(f"iam: {shlex.join(command[:4])}: done")
            continue
        if "already exists" in done.stderr.lower() and command[3] == "create":
            if command[2] == "roles":  # kept, its permissions set again
                update = ["gcloud", "iam", "roles", "update", *command[4:-1]]
                again = subprocess.run(update, capture_output=True, text=True, check=False)
                if again.returncode != 0:
                    print(f"iam: {shlex.join(update)}: {again.stderr.strip()}", file=sys.stderr)
                    return 1
            print(f"iam: {command[4]} exists: kept")
            continue
        print(f"iam: {shlex.join(command)}: {done.stderr.strip()}", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--project", required=True)
    parser.add_argument("--number", help="the project's number (gcloud projects describe)")
    parser.add_argument("--clock-secret", default="", help="ALPACA_CLOCK_KEYS_SECRET, if set")
    parser.add_argument("--apply", action="store_true")
    parser.add_argument("--check-policy", nargs="?", const="-", type=str, metavar="FILE")
    args = parser.parse_args()
    if args.check_policy is not None:
        if args.check_policy == "-":
            fetched = subprocess.run(
                ["gcloud", "projects", "get-iam-policy", args.project, "--format=json"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if fetched.returncode != 0:
                print(f"iam: the policy could not be read: {fetched.stderr.strip()}")
                return 1
            policy = json.loads(fetched.stdout)
        else:
            policy = json.loads(Path(args.check_policy).read_text())
        problems = refused(policy)
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    if not args.number:
        parser.error("--number is required to plan or apply")
    plan = commands(args.project, args.number, args.clock_secret)
    if args.apply:
        return _apply(plan)
    for command in plan:
        print(shlex.join(command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
