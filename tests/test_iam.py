"""Least privilege: the service accounts the functions run as, read from what the deploy would
apply. Only the key readers and the key keeper get any role on people's `alpaca-keys-*`
secrets; every function names its account; the old project-wide grant is refused."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from operator_scripts import ROOT, run_script

from agenttrader.core import iam

PROJECT, NUMBER = "agenttrader-sample", "123456789012"
KEYS = f"projects/{NUMBER}/secrets/alpaca-keys-"


def plan(*extra: str) -> list[list[str]]:
    printed = run_script("iam_plan.py", "--project", PROJECT, "--number", NUMBER, *extra)
    assert printed.returncode == 0, printed.stderr
    return [shlex.split(line) for line in printed.stdout.splitlines()]


def flag(command: list[str], name: str) -> str:
    found = [part.split("=", 1)[1] for part in command if part.startswith(f"--{name}=")]
    return found[0] if found else ""


def member(command: list[str]) -> str:
    return flag(command, "member").removeprefix("serviceAccount:").split("@")[0]


def reaches_keys(command: list[str]) -> bool:
    """Whether the binding gives a role on people's key secrets (a project-wide secret role
    reaches them all, conditioned or not)."""
    role = flag(command, "role")
    secret_role = "secretmanager" in role or iam.KEEPER_ROLE in role
    if command[1] == "secrets":
        return command[3].startswith(iam.KEYS_PREFIX)
    return command[1] == "projects" and secret_role and iam.CREATOR_ROLE not in role


def test_only_the_key_readers_and_the_keeper_reach_peoples_keys() -> None:
    commands = plan("--clock-secret", "alpaca-clock-keys")
    bindings = [c for c in commands if "add-iam-policy-binding" in c]
    reaching = [c for c in bindings if reaches_keys(c)]
    assert {member(c) for c in reaching} == {iam.KEY_READER, iam.KEY_KEEPER}
    for command in reaching:  # each only on alpaca-keys-*, by its condition
        assert f'resource.name.startsWith("{KEYS}")' in flag(command, "condition"), command
    reader = [flag(c, "role") for c in reaching if member(c) == iam.KEY_READER]
    assert reader == ["roles/secretmanager.secretAccessor"]  # read only
    outside = [c for c in bindings if member(c) in (iam.OUTSIDE, iam.APP)]
    assert all("secretmanager" not in flag(c, "role") or c[1] == "secrets" for c in outside)
    secrets = {(c[3], member(c)) for c in bindings if c[1] == "secrets"}
    assert secrets == {
        ("ALPACA_OAUTH_CLIENT_SECRET", iam.KEY_KEEPER),
        ("WEBHOOK_SIGNING_KEY", iam.OUTSIDE),
        ("alpaca-clock-keys", iam.KEY_READER),
    }
    creator = [c for c in bindings if iam.CREATOR_ROLE in flag(c, "role")]
    assert [member(c) for c in creator] == [iam.KEY_KEEPER]
    roles = {c[4]: flag(c, "permissions") for c in commands if c[1:4] == ["iam", "roles", "create"]}
    assert roles[iam.CREATOR_ROLE] == "secretmanager.secrets.create"  # creates, reads nothing
    assert "secretmanager.versions.destroy" in roles[iam.KEEPER_ROLE]
    created = [c[4] for c in commands if c[1:4] == ["iam", "service-accounts", "create"]]
    assert sorted(created) == sorted(iam.ACCOUNTS)


def test_every_deployed_function_names_its_account() -> None:
    main = (ROOT / "functions" / "main.py").read_text()
    manifest = run_script("list_functions.py")
    assert manifest.returncode == 0, manifest.stderr
    deployed: dict[str, Any] = json.loads(manifest.stdout)
    assert set(deployed) == set(iam.FUNCTIONS), "main.py and iam.FUNCTIONS list the same"
    for name, account in deployed.items():
        assert account == f"{iam.FUNCTIONS[name]}@", name
    assert "service_account" in main


def test_the_old_project_wide_grant_is_refused(tmp_path: Path) -> None:
    compute = f"serviceAccount:{NUMBER}-compute@developer.gserviceaccount.com"
    old = {
        "bindings": [
            {"role": "roles/secretmanager.admin", "members": [compute]},
            {"role": "roles/datastore.user", "members": [compute]},
            {
                "role": "roles/secretmanager.secretAccessor",
                "members": [f"serviceAccount:{iam.email(iam.KEY_READER, PROJECT)}"],
                "condition": {"expression": f'resource.name.startsWith("{KEYS}")'},
            },
        ]
    }
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(old))
    checked = run_script("iam_plan.py", "--project", PROJECT, "--check-policy", str(policy))
    assert checked.returncode == 1
    assert checked.stdout.splitlines() == [
        f"iam: {compute} has roles/secretmanager.admin on the whole project: it can read every "
        "person's keys; remove it (the functions run as their own accounts)"
    ]
    old["bindings"] = old["bindings"][1:]
    policy.write_text(json.dumps(old))
    clean = run_script("iam_plan.py", "--project", PROJECT, "--check-policy", str(policy))
    assert (clean.returncode, clean.stdout) == (0, "")
