"""`make deploy`'s preflight: everything that can be checked without the cloud, one line per
problem. The rules compile on the running Firestore emulator."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from operator_scripts import ROOT, run_script

PROJECT = "agenttrader-preflight"


def preflight(*args: str) -> subprocess.CompletedProcess[str]:
    return run_script("preflight.py", *args, timeout=180)


SITE_KEY = "6LcTestSiteKeyForThePreflight0000000000"


@pytest.fixture
def env_file() -> Iterator[Path]:
    path = ROOT / "functions" / f".env.{PROJECT}"
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture
def page_settings() -> Iterator[Path]:
    """The served page's App Check settings, as they were before the test."""
    path = ROOT / "web" / "dist" / "app-check.json"
    before = path.read_text()
    yield path
    path.write_text(before)


def test_a_demo_project_is_refused_in_one_line() -> None:
    refused = subprocess.run(
        ["make", "--no-print-directory", "deploy", "PROJECT=demo-x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert refused.returncode != 0
    lines = [line for line in refused.stdout.splitlines() if line.startswith("preflight:")]
    assert lines == [
        "preflight: project: demo-x is a demo- project, which exists only on the emulators; "
        "name your Firebase project: make deploy PROJECT=your-project-id"
    ]
    assert "Deploying" not in refused.stdout + refused.stderr


def test_a_ready_project_passes_every_check(env_file: Path, page_settings: Path) -> None:
    env_file.write_text(
        f"APP_CHECK_SITE_KEY={SITE_KEY}\nBACKUP_RETENTION_DAYS=30\nALERT_EMAIL=ops@example.com\n"
    )
    written = run_script("page_settings.py", "--project", PROJECT)
    assert written.returncode == 0, written.stderr
    assert json.loads(page_settings.read_text()) == {"siteKey": SITE_KEY}
    ready = preflight("--project", PROJECT)
    assert ready.returncode == 0, ready.stdout + ready.stderr
    assert ready.stdout.strip().splitlines() == [
        f"preflight: ready to deploy to {PROJECT} (project id, params, rules, functions, "
        "indexes and web client checked)",
        "preflight: then backups: point-in-time recovery on, a daily backup kept 30 days; "
        "alerts: 7 policies, sent to ops@example.com",
    ]


def test_each_problem_is_one_line(env_file: Path, tmp_path: Path) -> None:
    env_file.write_text(
        "SECRET_MANAGER_EMULATOR_HOST=127.0.0.1:9912\n"
        "PULSE_CONCURRENCY=lots\n"
        "ALPACA_API_BASE_URL=http://127.0.0.1:9911\n"
        "SIGNAL_BUYING_POWER_FRACTION=1.5\n"
        "NOTIFY_LOOPBACK_HTTP=true\n"
    )
    rules = tmp_path / "firestore.rules"
    rules.write_text((ROOT / "firestore.rules").read_text().replace("isAdmin()", "isAdmin(", 1))
    indexes = tmp_path / "firestore.indexes.json"
    indexes.write_text(
        '{"indexes": [{"collectionGroup": "signals", "queryScope": "COLLECTION", '
        '"fields": [{"fieldPath": "symbol", "order": "UP"}, {"fieldPath": "created_at"}]}]}'
    )
    found = preflight("--project", PROJECT, "--rules", str(rules), "--indexes", str(indexes))
    assert found.returncode == 1
    lines = found.stdout.splitlines()
    assert len(lines) == 9, lines
    text = "\n".join(lines)
    assert "ENFORCE_APP_CHECK is on but APP_CHECK_SITE_KEY is empty" in text
    assert "SECRET_MANAGER_EMULATOR_HOST is set in the deploy env files" in text
    assert "PULSE_CONCURRENCY='lots' is not a positive whole number" in text
    assert "ALPACA_API_BASE_URL=http://127.0.0.1:9911 is not a public https URL" in text
    assert "SIGNAL_BUYING_POWER_FRACTION='1.5' must be a number in (0, 1]" in text
    assert "NOTIFY_LOOPBACK_HTTP=true would let webhooks reach the functions' own loopback" in text
    assert "rules: firestore.rules does not compile: L" in text
    assert "order 'UP' is not valid" in text
    assert "needs fieldPath and one mode" in text


def test_the_deployed_page_talks_only_to_its_own_projects_hosts(
    env_file: Path, page_settings: Path
) -> None:
    env_file.write_text(f"APP_CHECK_SITE_KEY={SITE_KEY}\n")
    deploy_config = ROOT / "firebase.deploy.json"
    try:
        written = run_script("page_settings.py", "--project", PROJECT)
        assert written.returncode == 0, written.stderr
        deployed = json.loads(deploy_config.read_text())
    finally:
        deploy_config.unlink(missing_ok=True)
    emulated = json.loads((ROOT / "firebase.json").read_text())
    policy = policy_of(deployed)
    print(f"production Content-Security-Policy for {PROJECT}: {policy}")
    assert "127.0.0.1" not in policy and "*" not in policy
    connect = next(d for d in policy.split("; ") if d.startswith("connect-src "))
    assert f"https://us-central1-{PROJECT}.cloudfunctions.net" in connect.split()
    assert "http:" not in connect
    others = [d for d in policy.split("; ") if not d.startswith("connect-src")]
    assert others == [d for d in policy_of(emulated).split("; ") if not d.startswith("connect-src")]
    assert "http://127.0.0.1:*" in policy_of(emulated)  # the emulators keep theirs
    for part in ("firestore", "functions"):
        assert deployed[part] == emulated[part]
    assert deployed["hosting"]["public"] == emulated["hosting"]["public"]


def policy_of(config: dict[str, Any]) -> str:
    return next(
        header["value"]
        for rule in config["hosting"]["headers"]
        for header in rule["headers"]
        if header["key"] == "Content-Security-Policy"
    )


def test_a_page_without_the_site_key_is_refused(env_file: Path, page_settings: Path) -> None:
    env_file.write_text(f"APP_CHECK_SITE_KEY={SITE_KEY}\n")
    page_settings.write_text('{"siteKey": ""}\n')  # built, but not written for this project
    found = preflight("--project", PROJECT)
    assert found.returncode == 1
    assert found.stdout.splitlines() == [
        "preflight: web: web/dist/app-check.json does not hold APP_CHECK_SITE_KEY: run "
        f"scripts/page_settings.py --project {PROJECT} (make deploy does)"
    ]
    env_file.write_text("ENFORCE_APP_CHECK=false\n")  # switched off: no key needed
    assert preflight("--project", PROJECT).returncode == 0
