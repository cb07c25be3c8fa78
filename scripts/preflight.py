"""Check what can be checked before `firebase deploy`, without touching the cloud; `make deploy`
runs it first. Prints one line per problem and exits 1, or says it is ready and exits 0.

    functions/venv/bin/python scripts/preflight.py --project my-firebase-project

Checks: the project id is a real one (not `demo-`); every param has a valid value in the files
`firebase deploy` reads (functions/.env, functions/.env.<project>) or a default, and none points
at a local stand-in; the security rules compile (on the Firestore emulator, started for the
check when none is running); the functions load; the indexes file is valid; the web client is
built, with an App Check site key when App Check is enforced.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import requests
from firebase_functions import params

from agenttrader.core import config

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ROOT / "functions"
PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
LOCAL = re.compile(r"(127\.0\.0\.1|localhost|0\.0\.0\.0)")
EMULATOR_ONLY = (
    "SECRET_MANAGER_EMULATOR_HOST",
    "FIRESTORE_EMULATOR_HOST",
    "FIREBASE_AUTH_EMULATOR_HOST",
    "CLOUD_TASKS_EMULATOR_HOST",
)
EXPECTED_FUNCTIONS = {
    "pulse",
    "syncuserbatch",
    "generate_trading_signal",
    "save_alpaca_keys",
    "remove_alpaca_keys",
    "set_trading_enabled",
    "close_shadow_trade",
    "close_all_positions",
    "delete_my_account",
    "admin_set_global_trading",
    "admin_get_last_pulse",
    "admin_disable_user_trading",
    "admin_list_people",
    "request_sync",
}
INDEX_ORDERS = {"ASCENDING", "DESCENDING"}
Check = Callable[[], list[str]]


def check_project(project: str) -> list[str]:
    if project.startswith("demo-"):
        return [
            f"project: {project} is a demo- project, which exists only on the emulators; "
            "name your Firebase project: make deploy PROJECT=your-project-id"
        ]
    if not PROJECT_ID.match(project):
        return [f"project: {project!r} is not a Firebase project id (6-30 of a-z, 0-9, -)"]
    return []


def gcloud_json(*args: str) -> Any:
    """What a gcloud command answers, as JSON (the deploy's reads of what is set now)."""
    out = subprocess.run(
        ["gcloud", *args, "--format=json"], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout or "null")


def deploy_step_args(doc: str | None) -> argparse.Namespace:
    """`--project` and `--apply` for a deploy step (its description: `doc`'s first paragraph)."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--project", required=True)
    parser.add_argument("--apply", action="store_true")
    return parser.parse_args()


def carry_out(commands: list[list[str]], apply: bool) -> None:
    """Print each gcloud command of a deploy step; run it only with `apply`."""
    for command in commands:
        print("  " + " ".join(command))
        if apply:
            subprocess.run(command, check=True)


def env_files(project: str) -> dict[str, str]:
    """What `firebase deploy` reads for params: functions/.env, then .env.<project>."""
    values: dict[str, str] = {}
    for name in (".env", f".env.{project}"):
        path = FUNCTIONS / name
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip() and not line.lstrip().startswith("#") and "=" in line:
                    key, _, value = line.partition("=")
                    values[key.strip()] = value.strip().strip('"')
    return values


def declared_params() -> list[params.Param[object]]:
    return [v for v in vars(config).values() if isinstance(v, params.Param)]


def check_params(project: str) -> list[str]:
    problems = []
    values = env_files(project)
    where = f"functions/.env.{project}"
    for name in EMULATOR_ONLY:
        if name in values:
            problems.append(
                f"param: {name} is set in the deploy env files; it is for emulators only"
            )
    if values.get(config.NOTIFY_LOOPBACK_HTTP.name, "").strip().lower() in ("true", "1", "yes"):
        problems.append(
            f"param: {config.NOTIFY_LOOPBACK_HTTP.name}=true would let webhooks reach the "
            "functions' own loopback; it is for the local demo only: remove it from "
            f"{where}"
        )
    for param in declared_params():
        if isinstance(param, params.SecretParam):
            continue  # in Secret Manager (firebase functions:secrets:set), never in env files
        value = values.get(param.name)
        if value is None:
            if getattr(param, "default", None) is None:
                problems.append(f"param: {param.name} has no value: set it in {where}")
            continue
        problem = _bad_value(param, value)
        if problem:
            problems.append(f"param: {problem}")
    return problems


def _bad_value(param: params.Param[object], value: str) -> str | None:
    """What is wrong with a param's value, or None."""
    if isinstance(param, params.IntParam):
        if not re.fullmatch(r"[0-9]+", value) or int(value) < 1:
            return f"{param.name}={value!r} is not a positive whole number"
    elif isinstance(param, params.BoolParam):
        if value not in ("true", "false"):
            return f"{param.name}={value!r} must be true or false"
    elif param.name.endswith("_URL") and value:
        if not value.startswith("https://") or LOCAL.search(value):
            return f"{param.name}={value} is not a public https URL"
    elif param.name == "SIGNAL_BUYING_POWER_FRACTION":
        try:
            ok = Decimal(0) < Decimal(value) <= Decimal(1)
        except InvalidOperation:
            ok = False
        if not ok:
            return f"{param.name}={value!r} must be a number in (0, 1]"
    return None


def check_rules(rules: Path) -> list[str]:
    host = os.environ.get("FIRESTORE_EMULATOR_HOST")
    if not host:
        return _rules_on_a_fresh_emulator(rules)
    answer = requests.put(
        f"http://{host}/emulator/v1/projects/demo-preflight:securityRules",
        json={"rules": {"files": [{"name": rules.name, "content": rules.read_text()}]}},
        timeout=30,
    )
    if answer.status_code == 200:
        return []
    try:
        message = answer.json()["error"]["message"]
    except (ValueError, KeyError):
        message = answer.text
    return [
        f"rules: {rules.name} does not compile: " + "; ".join(message.splitlines()[1:] or [message])
    ]


def _rules_on_a_fresh_emulator(rules: Path) -> list[str]:
    """Start a Firestore emulator (demo project, nothing left running) just for this check."""
    checked = subprocess.run(
        [
            str(ROOT / "dev" / "emulators.sh"),
            "firestore",
            f"python {Path(__file__).resolve()} --rules-only {rules.resolve()}",
        ],
        env={**os.environ, "PROJECT": "demo-preflight", "EMULATOR_LOG_NOTE": "0"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    found = [
        line.removeprefix("preflight: ")
        for line in checked.stdout.splitlines()
        if line.startswith("preflight: rules")
    ]
    if checked.returncode not in (0, 1) or (checked.returncode == 1 and not found):
        errors = [line for line in checked.stderr.splitlines() if line.startswith("Error: ")]
        why = errors[-1].removeprefix("Error: ") if errors else "see its log"
        log = checked.stdout.strip().rsplit(": ", 1)[-1]
        return [f"rules: the Firestore emulator to compile them on did not start: {why} ({log})"]
    return found


def check_functions(project: str) -> list[str]:
    probe = (
        "import json, main; print(json.dumps(sorted(n for n, f in vars(main).items() "
        "if hasattr(f, '__firebase_endpoint__'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=FUNCTIONS,
        env={**os.environ, "GCLOUD_PROJECT": project},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if loaded.returncode != 0:
        last = (loaded.stderr.strip().splitlines() or ["no output"])[-1]
        return [f"functions: main.py does not load: {last}"]
    missing = EXPECTED_FUNCTIONS - set(json.loads(loaded.stdout.strip().splitlines()[-1]))
    return [f"functions: not declared in main.py: {', '.join(sorted(missing))}"] if missing else []


def check_indexes(indexes: Path) -> list[str]:
    try:
        data = json.loads(indexes.read_text())
    except ValueError as error:
        return [f"indexes: {indexes.name} is not valid JSON: {error}"]
    problems = []
    if not isinstance(data.get("indexes"), list) or not isinstance(
        data.get("fieldOverrides", []), list
    ):
        return [f"indexes: {indexes.name} needs an 'indexes' list (and 'fieldOverrides' a list)"]
    for i, index in enumerate(data["indexes"]):
        fields = index.get("fields")
        if not isinstance(index.get("collectionGroup"), str) or index.get("queryScope") not in (
            "COLLECTION",
            "COLLECTION_GROUP",
        ):
            problems.append(f"indexes: index {i} needs collectionGroup and a queryScope")
        elif not isinstance(fields, list) or len(fields) < 2:
            problems.append(f"indexes: index {i} needs at least two fields")
        else:
            for field in fields:
                modes = [k for k in ("order", "arrayConfig", "vectorConfig") if k in field]
                if "fieldPath" not in field or len(modes) != 1:
                    problems.append(
                        f"indexes: index {i} field {field} needs fieldPath and one mode"
                    )
                elif "order" in field and field["order"] not in INDEX_ORDERS:
                    problems.append(f"indexes: index {i} order {field['order']!r} is not valid")
    return problems


def check_upload(firebase_json: Path) -> list[str]:
    """What `firebase deploy` would upload from the functions folder (its `ignore` list
    applied): never a `.local` file (local secrets and emulator-only settings)."""
    config = json.loads(firebase_json.read_text())
    functions = config.get("functions") or []
    codebases = functions if isinstance(functions, list) else [functions]
    problems = []
    for codebase in codebases:
        source = ROOT / codebase.get("source", "functions")
        ignore = list(codebase.get("ignore") or [])

        def ignored(name: str, ignore: list[str] = ignore) -> bool:
            return any(fnmatch.fnmatch(name, pattern) for pattern in ignore)

        for folder, dirs, files in os.walk(source):
            dirs[:] = sorted(d for d in dirs if not ignored(d))  # not walked, not uploaded
            for name in sorted(files):
                if name.endswith(".local") and not ignored(name):
                    relative = (Path(folder) / name).relative_to(source)
                    problems.append(
                        f"functions: {source.name}/{relative} would be uploaded by the deploy; "
                        'add "*.local" to the functions "ignore" list in firebase.json'
                    )
    return problems


def check_web(project: str) -> list[str]:
    """The page is built, and its App Check settings agree with the functions': with App Check
    enforced, a page without a site key would have every call refused."""
    dist = ROOT / "web" / "dist"
    if not (dist / "index.html").exists():
        return ["web: web/dist is not built (make bootstrap builds it)"]
    values = env_files(project)
    key = values.get(config.APP_CHECK_SITE_KEY.name, "")
    enforced = values.get(config.ENFORCE_APP_CHECK.name, "true") != "false"
    if enforced and not key:
        return [
            f"app check: ENFORCE_APP_CHECK is on but APP_CHECK_SITE_KEY is empty, so every "
            f"call from the page would be refused: set the reCAPTCHA Enterprise site key in "
            f"functions/.env.{project} (README: App Check), or ENFORCE_APP_CHECK=false"
        ]
    try:
        written = json.loads((dist / "app-check.json").read_text()).get("siteKey", "")
    except (OSError, ValueError):
        written = None
    if written != key:
        return [
            "web: web/dist/app-check.json does not hold APP_CHECK_SITE_KEY: run "
            f"scripts/page_settings.py --project {project} (make deploy does)"
        ]
    return []


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--project")
    parser.add_argument("--rules-only", type=Path, metavar="RULES", help=argparse.SUPPRESS)
    parser.add_argument("--rules", type=Path, default=ROOT / "firestore.rules")
    parser.add_argument("--indexes", type=Path, default=ROOT / "firestore.indexes.json")
    parser.add_argument("--firebase-json", type=Path, default=ROOT / "firebase.json")
    args = parser.parse_args()
    if args.rules_only:
        problems = check_rules(args.rules_only)
        for problem in problems:
            print(f"preflight: {problem}")
        return 1 if problems else 0
    if not args.project:
        parser.error("--project is required")
    problems = check_project(args.project)
    if not problems:
        for check in (
            lambda: check_params(args.project),
            lambda: check_rules(args.rules),
            lambda: check_functions(args.project),
            lambda: check_indexes(args.indexes),
            lambda: check_upload(args.firebase_json),
            lambda: check_web(args.project),
        ):
            problems += check()
    for problem in problems:
        print(f"preflight: {problem}")
    if problems:
        return 1
    print(
        f"preflight: ready to deploy to {args.project} (project id, params, rules, functions, "
        "indexes and web client checked)"
    )
    print(f"preflight: {operations_report(args.project)}")
    return 0


def operations_report(project: str) -> str:
    """What the deploy sets for the operators after `firebase deploy`: backups and alerts."""
    values = env_files(project)

    def param(p: Any) -> str:
        return str(values.get(p.name, p.default))

    pitr = param(config.BACKUP_PITR).lower() in ("true", "1", "yes")
    email = param(config.ALERT_EMAIL) or "nobody yet (set ALERT_EMAIL)"
    return (
        f"then backups: point-in-time recovery {'on' if pitr else 'off'}, a daily backup kept "
        f"{param(config.BACKUP_RETENTION_DAYS)} days; alerts: 7 policies, sent to {email}"
    )


if __name__ == "__main__":
    sys.exit(main())
