"""Operators' alerts as code (`monitoring/`): every policy and log-based metric is well formed
for the Monitoring and Logging APIs, and the product, driven into each condition against the
emulators and the stand-ins, writes the log entry the metric counts, with the fields it filters
on and extracts. The log filters are read by a small evaluator of the subset they use."""

from __future__ import annotations

import json
import re
from dataclasses import astuple
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from calling import auth
from firebase_functions import https_fn
from google.cloud import firestore
from operator_scripts import ROOT

from agenttrader.api import guard
from agenttrader.broker.keystore import KeyStore
from agenttrader.context.platform import Platform
from agenttrader.notify import delivery
from agenttrader.notify.delivery import Senders, TryAgain
from agenttrader.notify.webhook import signing_secret
from agenttrader.pulse.people import PulseSettings
from agenttrader.pulse.run import list_users, run_pulse, run_user_batch
from agenttrader.store import paths
from agenttrader.watch.backups import Backup, check_backups
from agenttrader.watch.health import Thresholds, last_hour
from localdev.alpaca_standin import AlpacaServer
from localdev.seed import register_alpaca_account, seed_user
from localdev.webhook_receiver import WebhookReceiver
from scripts.alerts import PARAMS, plan, render

MONITORING = ROOT / "monitoring"
METRICS = {p.stem: json.loads(p.read_text()) for p in (MONITORING / "metrics").glob("*.json")}
POLICIES = {p.stem: json.loads(p.read_text()) for p in (MONITORING / "policies").glob("*.json")}
SEVERITY = ["DEFAULT", "DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL", "ALERT"]
NOW = 1_790_000_000.0

# -- the files -----------------------------------------------------------------------------------

CLAUSE = re.compile(r"^(?P<path>[A-Za-z_.]+)\s*(?P<op>>=|<=|=|>|<)\s*(?P<value>.+)$")


def clauses(log_filter: str) -> list[tuple[str, str, Any]]:
    """`a.b="x" AND c>0 AND d=("y" OR "z")` as (path, operator, value) triples."""
    out = []
    for text in log_filter.split(" AND "):
        found = CLAUSE.match(text.strip())
        assert found, f"not in the subset the alerts use: {text!r}"
        value = found["value"]
        parsed: Any
        if value.startswith("("):
            parsed = {v.strip().strip('"') for v in value.strip("()").split(" OR ")}
        elif value.startswith('"'):
            parsed = value.strip('"')
        elif found["path"] == "severity":
            assert value in SEVERITY, value
            parsed = value
        else:
            parsed = float(value)
        out.append((found["path"], found["op"], parsed))
    return out


def matches(log_filter: str, entry: dict[str, Any]) -> bool:
    """Whether a structured log line (as the SDK's logger prints it: Cloud Logging keeps it as
    `jsonPayload`, its `severity` as the entry's) passes `log_filter`."""
    for path, op, wanted in clauses(log_filter):
        value = wanted
        if path == "severity":
            actual: Any = SEVERITY.index(entry.get("severity", "DEFAULT"))
            value = SEVERITY.index(wanted)
        else:
            assert path.startswith("jsonPayload."), path
            actual = entry.get(path.removeprefix("jsonPayload."))
        if actual is None:
            return False
        if isinstance(value, set):
            ok = op == "=" and actual in value
        elif op == "=":
            ok = actual == value
        else:
            ok = {">": actual > value, ">=": actual >= value, "<": actual < value,
                  "<=": actual <= value}[op]  # fmt: skip
        if not ok:
            return False
    return True


def test_every_metric_is_a_log_based_metric_the_logging_api_takes() -> None:
    assert len(METRICS) == 7
    for name, metric in METRICS.items():
        assert metric["name"] == name and re.fullmatch(r"[a-z_]+", name)
        assert metric["description"] and clauses(metric["filter"])
        descriptor = metric["metricDescriptor"]
        assert descriptor["metricKind"] == "DELTA"
        assert descriptor["valueType"] in ("INT64", "DISTRIBUTION")
        if descriptor["valueType"] == "DISTRIBUTION":
            assert re.fullmatch(r"EXTRACT\(jsonPayload\.[a-z_]+\)", metric["valueExtractor"])
            assert set(metric["bucketOptions"]) <= {"linearBuckets", "exponentialBuckets"}
        else:
            assert "valueExtractor" not in metric


ALIGNERS = {"ALIGN_SUM", "ALIGN_COUNT", "ALIGN_PERCENTILE_99", "ALIGN_PERCENTILE_50", "ALIGN_MAX"}
REDUCERS = {"REDUCE_SUM", "REDUCE_MAX", "REDUCE_COUNT"}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_policy_is_an_alert_policy_the_monitoring_api_takes(name: str) -> None:
    policy = render(POLICIES[name], {k: str(d) for k, (d, _) in PARAMS.items()}, "projects/p/x")
    assert policy["displayName"].startswith("AgentTrader: ")
    assert "${" not in json.dumps(policy)  # every placeholder has a value
    assert policy["combiner"] in ("OR", "AND")
    assert policy["severity"] in ("CRITICAL", "ERROR", "WARNING")
    assert policy["documentation"]["mimeType"] == "text/markdown"
    assert len(policy["documentation"]["content"]) > 80  # what to do, in words
    assert policy["notificationChannels"] == ["projects/p/x"]
    [condition] = policy["conditions"]
    assert condition["displayName"]
    kinds = {"conditionThreshold", "conditionAbsent"} & set(condition)
    assert len(kinds) == 1
    body = condition[kinds.pop()]
    found = re.fullmatch(
        r'metric\.type="logging\.googleapis\.com/user/([a-z_]+)" AND '
        r'resource\.type="cloud_run_revision"',
        body["filter"],
    )
    assert found and found[1] in METRICS
    assert re.fullmatch(r"\d+s", body["duration"])
    for aggregation in body["aggregations"]:
        assert re.fullmatch(r"\d+s", aggregation["alignmentPeriod"])
        assert aggregation["perSeriesAligner"] in ALIGNERS
        assert aggregation["crossSeriesReducer"] in REDUCERS
    if "comparison" in body:
        assert body["comparison"] in ("COMPARISON_GT", "COMPARISON_LT")
        assert isinstance(body["thresholdValue"], int | float)


def test_the_seven_conditions_are_there() -> None:
    assert set(POLICIES) == {
        "pulse-stalled", "syncs-failing", "pulse-deadline", "deliveries-failing",
        "sync-queue-backlog", "callable-internal", "backup-failed",
    }  # fmt: skip


# -- the product writes what they match ----------------------------------------------------------


def logged(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    out = capsys.readouterr()
    entries = []
    for line in (out.out + out.err).splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))
    return entries


def counted(metric: str, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries `metric` counts (and, for a distribution, that carry its value)."""
    found = [e for e in entries if matches(METRICS[metric]["filter"], e)]
    extractor = METRICS[metric].get("valueExtractor")
    if extractor:
        field = extractor.removeprefix("EXTRACT(jsonPayload.").removesuffix(")")
        assert all(isinstance(e.get(field), int | float) for e in found), found
    return found


def people(
    alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore, bad: int, good: int
) -> None:
    for i in range(good):
        keys = register_alpaca_account(alpaca.url, f"PKGOOD{i:06d}", "secret-key-1")
        seed_user(db, keystore, f"good{i}", keys=keys)
    for i in range(bad):
        keys = register_alpaca_account(alpaca.url, f"PKBAD{i:07d}", "secret-key-1")
        seed_user(
            db, keystore, f"bad{i}", keys=keys.model_copy(update={"key_id": f"PKGONE{i:06d}"})
        )


def freeze(alpaca: AlpacaServer) -> None:
    requests.post(f"{alpaca.url}/_standin/clock", json={"now": NOW}, timeout=5).raise_for_status()


def test_a_run_and_the_share_of_people_failing_are_logged(
    platform: Platform, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    freeze(alpaca)
    people(alpaca, db, keystore, bad=2, good=3)
    capsys.readouterr()
    run_pulse(platform)
    entries = logged(capsys)
    assert len(counted("agenttrader_pulse_runs", entries)) == 1
    [share] = counted("agenttrader_pulse_failed_share", entries)
    assert (share["attempted"], share["failed"], share["failed_share"]) == (5, 2, 0.4)
    assert share["failed_share"] > float(PARAMS["ALERT_FAILING_SHARE"][0])


def test_a_run_that_reaches_its_deadline_is_logged(
    platform: Platform, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    freeze(alpaca)
    people(alpaca, db, keystore, bad=0, good=2)
    capsys.readouterr()
    run_pulse(platform, PulseSettings(deadline_s=0))
    [hit] = counted("agenttrader_pulse_deadline", logged(capsys))
    assert hit["deferred"] == 2 and hit["severity"] == "WARNING"


def test_a_sync_task_that_waited_in_the_queue_says_how_long(
    platform: Platform, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    freeze(alpaca)
    people(alpaca, db, keystore, bad=0, good=1)
    enqueued = platform.now() - timedelta(minutes=5)
    paths.pulse_run(db, "r-late").set({"run_id": "r-late", "started_at": enqueued})  # fanned out
    capsys.readouterr()
    run_user_batch(
        platform,
        {
            "run_id": "r-late",
            "batch": 0,
            "users": [list(astuple(u)) for u in list_users(db)],
            "enqueued_at": enqueued.isoformat(),
        },
    )
    [started] = counted("agenttrader_sync_task_age", logged(capsys))
    assert started["age_s"] >= 300 > int(PARAMS["ALERT_SYNC_QUEUE_AGE_S"][0]) - 1


def test_a_webhook_still_failing_long_after_its_event_is_logged_with_its_age(
    db: firestore.Client, capsys: pytest.CaptureFixture[str]
) -> None:
    key = "an app key for the alerts"
    receiver = WebhookReceiver(signing_secret(key, "alice"))
    receiver.state.behaviour.status = 500
    try:
        at = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
        paths.notification_settings(db, "alice").set(
            {"events": ["entry_filled"], "webhook_url": receiver.url}
        )
        paths.notifications(db, "alice").document("e1").set(
            {"kind": "entry_filled", "message": "Your paper trade bought 1 AAPL.", "at": at}
        )
        senders = Senders(webhook_key=lambda: key, loopback_http=True, attempts=2)
        capsys.readouterr()
        with pytest.raises(TryAgain):
            delivery.deliver(db, senders, at + timedelta(hours=2), "alice", "e1", "webhook")
        assert (
            delivery.deliver(db, senders, at + timedelta(hours=3), "alice", "e1", "webhook")
            == "gave_up"
        )
        failures = counted("agenttrader_delivery_failures", logged(capsys))
        assert [round(e["age_s"]) for e in failures] == [7200, 10800]
        assert failures[-1]["age_s"] > int(PARAMS["ALERT_DELIVERY_AGE_S"][0])
        health = last_hour(db, at + timedelta(hours=3), Thresholds())
        assert (health["deliveries_failed"], health["deliveries_gave_up"]) == (1, 1)
    finally:
        receiver.stop()


def test_an_internal_answer_is_logged_as_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    with pytest.raises(https_fn.HttpsError) as raised:
        guard.handled("save_strategy", lambda: 1 / 0)
    assert raised.value.code == https_fn.FunctionsErrorCode.INTERNAL
    [crash] = counted("agenttrader_callable_internal", logged(capsys))
    assert crash["function"] == "save_strategy" and crash["error_type"] == "ZeroDivisionError"


def test_a_missing_backup_is_logged_as_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
    db = "projects/p/databases/(default)"
    capsys.readouterr()
    fresh = [Backup(db, "READY", now - timedelta(hours=5))]
    assert check_backups(lambda: fresh, "(default)", now) == "ok"
    assert counted("agenttrader_backup_failed", logged(capsys)) == []
    stale = [
        Backup(db, "READY", now - timedelta(hours=30)),
        Backup(db, "CREATING", now - timedelta(hours=2)),  # not finished
        Backup("projects/p/databases/other", "READY", now - timedelta(hours=1)),
    ]
    assert check_backups(lambda: stale, "(default)", now) == "missing"
    [missing] = counted("agenttrader_backup_failed", logged(capsys))
    assert missing["hours_since"] == 30.0
    assert check_backups(lambda: [], "(default)", now) == "missing"


def test_a_stalled_pulse_is_said_in_the_health_sentence(
    platform: Platform, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    freeze(alpaca)
    people(alpaca, db, keystore, bad=2, good=1)
    for _ in range(3):
        run_pulse(platform)
    now = platform.now()
    health = last_hour(db, now, Thresholds(failing_share=0.2))
    assert (health["runs"], health["synced"], health["failed"]) == (3, 3, 6)
    assert sum(health["failed_by_reason"].values()) == 6
    assert "67% of people's syncs failed in each of the last 3 runs" in health["sentence"]
    later = last_hour(db, now + timedelta(minutes=15), Thresholds(failing_share=0.2))
    assert "the pulse has not run for 15 minutes" in later["sentence"]
    assert last_hour(db, now, Thresholds(failing_share=0.9))["sentence"] == (
        "Nothing needs attention now."
    )


def test_the_operations_call_answers_the_last_hour(
    services: guard.Services, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    from agenttrader.api import admin_callables

    freeze(alpaca)
    people(alpaca, db, keystore, bad=0, good=1)
    run_pulse(services.platform)
    answer = admin_callables.admin_get_last_pulse(services, auth("ops", admin=True), {})
    assert answer["last_hour"]["runs"] == 1
    assert answer["last_hour"]["sentence"] == "Nothing needs attention now."
    assert answer["synced"] == 1  # the last run, as before


def test_the_deploy_creates_what_is_missing_and_updates_what_is_there() -> None:
    values = {name: default for name, (default, _) in PARAMS.items()}
    values["ALERT_EMAIL"] = "ops@example.com"
    fresh = plan("p", values, {"metrics": set(), "channel": None, "policies": {}})
    assert len(fresh) == 14
    assert [c[3] for c in fresh if c[1] == "logging"] == ["create"] * 7
    assert [c[4] for c in fresh if c[1] == "alpha"] == ["create"] * 7
    names = {json.loads(p.read_text())["displayName"]: f"projects/p/alertPolicies/{p.stem}"
             for p in (MONITORING / "policies").glob("*.json")}  # fmt: skip
    existing = {"metrics": set(METRICS), "channel": "projects/p/notificationChannels/1",
                "policies": names}  # fmt: skip
    again = plan("p", values, existing)
    assert [c[3] for c in again if c[1] == "logging"] == ["update"] * 7
    assert [c[4] for c in again if c[1] == "alpha"] == ["update"] * 7
    rendered = [
        json.loads(Path(c[-3].split("=", 1)[1]).read_text()) for c in again if c[1] == "alpha"
    ]
    assert all(p["notificationChannels"] == ["projects/p/notificationChannels/1"] for p in rendered)
    failing = next(p for p in rendered if "syncs failing" in p["displayName"])
    assert failing["conditions"][0]["conditionThreshold"]["thresholdValue"] == 0.2
