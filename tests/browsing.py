"""Where the page is served and how Chromium is started, for the browser tests and their
fixtures (`conftest.py`: `browser`, `site`, `page`)."""

from __future__ import annotations

from pathlib import Path

SITE = "http://127.0.0.1:5000"
SHOTS = Path(__file__).resolve().parents[1] / "test-output" / "screenshots"
PASSWORD = "correct-horse-battery"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
