"""The package's layers (pyproject's import-linter contracts) hold, and a breach is caught."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

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


def test_a_lower_layer_importing_a_higher_one_is_refused(tmp_path: Path) -> None:
    functions = copy_of_package(tmp_path)
    money = functions / "agenttrader" / "core" / "money.py"
    money.write_text(money.read_text() + "\nfrom agenttrader.api import guard  # noqa\n")
    result = lint_imports(functions, tmp_path)
    assert result.returncode != 0
    assert "the package's layers import only downwards BROKEN" in result.stdout
    assert "agenttrader.core.money -> agenttrader.api.guard" in result.stdout


def test_the_bot_keeps_its_order_within(tmp_path: Path) -> None:
    functions = copy_of_package(tmp_path)
    orders = functions / "agenttrader" / "bot" / "orders.py"
    orders.write_text(orders.read_text() + "\nfrom agenttrader.bot import entries  # noqa\n")
    result = lint_imports(functions, tmp_path)
    assert result.returncode != 0
    assert "agenttrader.bot.orders -> agenttrader.bot.entries" in result.stdout
