"""Run one pulse now against whatever the environment points to, and print its summary.

functions/venv/bin/python scripts/run_pulse.py
"""

from __future__ import annotations

import sys

from agenttrader import runtime
from agenttrader.pulse.people import OUTCOMES
from agenttrader.pulse.run import run_pulse


def main() -> int:
    summary = run_pulse(runtime.platform(), runtime.pulse_settings())
    print(
        f"pulse {summary.run_id}: mode={summary.mode} users={summary.users_total} "
        f"duration_ms={summary.duration_ms}"
    )
    for outcome in OUTCOMES:
        print(f"  {outcome:<20} {summary.counts.get(outcome, 0)}")
    for code, n in sorted(summary.errors.items()):
        print(f"  error {code:<14} {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
