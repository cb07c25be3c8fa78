"""dev/emulators.sh, which `make test`, `make demo` and `make bench` run everything through: it
leaves nothing running (on success, failure or Ctrl-C) and keeps the emulators' chatter out of
the output. A `firebase` that forks workers the way the Functions emulator does stands in for
the real one (whose ports the running test session holds)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FAKE_FIREBASE = """#!/usr/bin/env bash
# like `firebase emulators:exec`: chatter on stdout, workers forked (one of them orphaned to
# init, as functions-framework's are), then the command; Ctrl-C ends it
echo "i  emulators: Starting emulators: $4"
echo '>  {"severity": "INFO", "message": "a function log line"}'
for i in 1 2; do (exec -a "$MARKER-worker" sleep 300) & done
( (exec -a "$MARKER-orphan" sleep 300) & )
trap 'echo "i  emulators: Shutting down"; exit 130' INT
bash -c "${@: -1}" &
wait $!
"""


@pytest.fixture
def fake(tmp_path: Path) -> tuple[dict[str, str], str]:
    marker = f"fakeworker{uuid.uuid4().hex[:8]}"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    firebase = bin_dir / "firebase"
    firebase.write_text(FAKE_FIREBASE)
    firebase.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "MARKER": marker}
    return env, marker


def left_running(marker: str) -> list[str]:
    found = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True, check=False)
    return [line for line in found.stdout.splitlines() if "pgrep" not in line]


def run(env: dict[str, str], command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "dev" / "emulators.sh"), "auth,firestore", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_success_prints_only_the_commands_output_and_leaves_nothing(
    fake: tuple[dict[str, str], str],
) -> None:
    env, marker = fake
    done = run(env, "echo the story; sleep 0.5")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "the story"
    assert lines[-1].startswith("emulator and function logs: ")
    assert len(lines) == 2  # no emulator chatter, no function log line
    log = Path(lines[-1].split(": ", 1)[1])
    assert "a function log line" in log.read_text()
    assert left_running(marker) == []


def test_failure_keeps_the_status_shows_the_log_and_leaves_nothing(
    fake: tuple[dict[str, str], str],
) -> None:
    env, marker = fake
    failed = run(env, "echo partial story; exit 3")
    assert failed.returncode == 3
    assert "partial story" in failed.stdout
    assert "Starting emulators" in failed.stderr  # the log's tail, at once
    assert left_running(marker) == []


def test_ctrl_c_stops_everything(fake: tuple[dict[str, str], str]) -> None:
    env, marker = fake
    wrapper = subprocess.Popen(
        [str(ROOT / "dev" / "emulators.sh"), "auth", "echo serving; sleep 120"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while len(left_running(marker)) < 3:
        assert time.monotonic() < deadline, "the fake emulators never started"
        time.sleep(0.1)
    wrapper.send_signal(signal.SIGINT)
    out, _ = wrapper.communicate(timeout=30)
    assert wrapper.returncode == 130
    assert "serving" in out
    assert left_running(marker) == []
