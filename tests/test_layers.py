"""The package's layers (pyproject's import-linter contracts) hold, and a breach is caught."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(functions: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    """import-linter on the package under `functions`, with the repository's contracts."""
    env = {**os.environ, "PYTHONPATH": str(functions)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=cache,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_tree_keeps_its_layers(tmp_path: Path) -> None:
    result = lint_imports(ROOT / "functions", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def copy_of_package(tmp_path: Path) -> Path:
    functions = tmp_path / "functions"
    shutil.copytree(
        ROOT / "functions" / "agenttrader",
        functions / "agenttrader",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return functions


BREACHES = [
    (
        "core/money.py",
        "from agenttrader.api import guard",
        "agenttrader.core.money -> agenttrader.api.guard",
        "the package's layers import only downwards BROKEN",
    ),
    (
        "bot/orders.py",
        "from agenttrader.bot import entries",
        "agenttrader.bot.orders -> agenttrader.bot.entries",
        "BROKEN",  # the bot's contract (its name wraps in the report)
    ),
]


@pytest.mark.parametrize(
    ("module", "upward", "reported", "broken"),
    BREACHES,
    ids=["a lower layer", "within the bot"],
)
def test_an_import_that_runs_back_up_is_refused(
    tmp_path: Path, module: str, upward: str, reported: str, broken: str
) -> None:
    functions = copy_of_package(tmp_path)
    source = functions / "agenttrader" / module
    source.write_text(source.read_text() + f"\n{upward}  # noqa\n")
    result = lint_imports(functions, tmp_path)
    assert result.returncode != 0
    assert broken in result.stdout
    assert reported in result.stdout
