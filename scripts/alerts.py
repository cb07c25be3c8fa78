"""Create or update the operators' alerts in Cloud Monitoring from `monitoring/`: the log-based
metrics (`monitoring/metrics/*.json`, Logging's LogMetric), an email notification channel for
`ALERT_EMAIL`, and the alert policies (`monitoring/policies/*.json`, Monitoring's AlertPolicy)
with the thresholds the params say; `make deploy` runs it. Idempotent: what exists (by name,
by display name) is updated, the rest created. Without `--apply` it prints what it would run.

    functions/venv/bin/python scripts/alerts.py --project my-firebase-project [--apply]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from agenttrader.core import config
from scripts.preflight import ROOT, carry_out, deploy_step_args, env_files
from scripts.preflight import gcloud_json as gcloud

MONITORING = ROOT / "monitoring"
PARAMS: dict[str, tuple[str, str]] = {
    name: (str(getattr(config, name).default), str(getattr(config, name).description))
    for name in (
        "ALERT_EMAIL",
        "ALERT_FAILING_SHARE",
        "ALERT_DELIVERY_AGE_S",
        "ALERT_SYNC_QUEUE_AGE_S",
    )
}
"""Each param a policy reads: (default, what it is)."""
CHANNEL = "AgentTrader operators"


def render(policy: dict[str, Any], values: dict[str, str], channel: str | None) -> dict[str, Any]:
    """`policy` with its placeholders filled: `"${NAME}"` alone becomes the param's number,
    inside text its value; `${CHANNEL}` the notification channel (none: no channel)."""

    def fill(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value if v != "${CHANNEL}" or channel]
        if not isinstance(value, str):
            return value
        if value == "${CHANNEL}":
            return channel
        if value.startswith("${") and value.endswith("}") and value[2:-1] in values:
            number = float(values[value[2:-1]])
            return int(number) if number.is_integer() else number
        for name, text in values.items():
            value = value.replace("${" + name + "}", text)
        return value

    return fill(policy)


def plan(project: str, values: dict[str, str], existing: dict[str, Any]) -> list[list[str]]:
    """The gcloud commands that make the project's metrics and policies these, from what
    exists (`existing`: `metrics` names, the notification `channel`'s name or None, `policies`
    by display name). The rendered policies are written to a temporary directory."""
    out = Path(tempfile.mkdtemp(prefix="agenttrader-alerts-"))
    base = ["--project", project]
    commands = []
    for path in sorted((MONITORING / "metrics").glob("*.json")):
        metric = json.loads(path.read_text())
        verb = "update" if metric["name"] in existing["metrics"] else "create"
        commands.append(["gcloud", "logging", "metrics", verb, metric["name"],
                         f"--config-from-file={path}", *base])  # fmt: skip
    channel = existing.get("channel")
    for path in sorted((MONITORING / "policies").glob("*.json")):
        policy = render(json.loads(path.read_text()), values, channel)
        rendered = out / path.name
        rendered.write_text(json.dumps(policy, indent=2))
        name = existing["policies"].get(policy["displayName"])
        if name:
            commands.append(["gcloud", "alpha", "monitoring", "policies", "update", name,
                             f"--policy-from-file={rendered}", *base])  # fmt: skip
        else:
            commands.append(["gcloud", "alpha", "monitoring", "policies", "create",
                             f"--policy-from-file={rendered}", *base])  # fmt: skip
    return commands


def main() -> int:
    args = deploy_step_args(__doc__)
    files = env_files(args.project)
    values = {name: files.get(name, default) for name, (default, _) in PARAMS.items()}
    base = ["--project", args.project]
    channels = gcloud("beta", "monitoring", "channels", "list", *base) or []
    existing = {
        "metrics": {
            m["name"].rsplit("/", 1)[-1] for m in gcloud("logging", "metrics", "list", *base) or []
        },
        "channel": next((c["name"] for c in channels if c.get("displayName") == CHANNEL), None),
        "policies": {
            p["displayName"]: p["name"]
            for p in gcloud("alpha", "monitoring", "policies", "list", *base) or []
        },
    }
    if not values["ALERT_EMAIL"]:
        print("alerts: ALERT_EMAIL is not set: the policies are made, but they tell nobody")
    elif not existing["channel"]:
        create = [
            "beta",
            "monitoring",
            "channels",
            "create",
            f"--display-name={CHANNEL}",
            "--type=email",
            f"--channel-labels=email_address={values['ALERT_EMAIL']}",
            *base,
        ]
        print("  gcloud " + " ".join(create))
        existing["channel"] = gcloud(*create)["name"] if args.apply else "(the new channel)"
    carry_out(plan(args.project, values, existing), args.apply)
    return 0


if __name__ == "__main__":
    sys.exit(main())
