"""Migration of legacy layouts on the Firestore emulator and the Secret Manager stand-in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from firestore_state import all_documents
from google.cloud import firestore
from operator_scripts import run_script

from agenttrader import migration
from agenttrader.broker.keystore import AlpacaKeys, KeyStore
from agenttrader.context.platform import Platform
from agenttrader.migration import migrate, rollback
from agenttrader.pulse.run import run_pulse
from agenttrader.store import paths
from localdev.alpaca_standin import AlpacaServer
from localdev.seed import register_alpaca_account

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2025, 3, 1, 14, 30, tzinfo=UTC)
T1 = datetime(2025, 3, 1, 15, 0, tzinfo=UTC)


def seed_single_user(db: firestore.Client, trades: int = 3, signals: int = 2) -> None:
    db.document("alpacaAccounts/snapshot").set(
        {
            "equity": 10234.56,
            "cash": 5000.1,
            "buying_power": 20000,
            "status": "ACTIVE",
            "updated_at": T0,
        }
    )
    batch, n = db.batch(), 0
    for i in range(trades):
        batch.set(
            db.document(f"shadowTradeHistory/trade{i:05d}"),
            {
                "symbol": "aapl",
                "side": "buy" if i % 2 else "SELL",
                "qty": 1.5,
                "entry_price": 187.25,
                "status": "OPEN",
                "timestamp": T0,
            },
        )
        n += 1
        if n == 400:
            batch.commit()
            batch, n = db.batch(), 0
    for i in range(signals):
        batch.set(
            db.document(f"tradingSignals/sig{i:05d}"),
            {
                "ticker": "MSFT",
                "signal": "buy",
                "amount": 100.1,
                "createdAt": "2025-03-01T14:30:00Z",
            },
        )
        n += 1
        if n == 400:
            batch.commit()
            batch, n = db.batch(), 0
    batch.commit()
    db.document("tenants/acme/accounts/primary").set(
        {"equity": "1.00", "cash": "1.00", "buying_power": "2.00", "timestamp": T0}
    )


def seed_drafts(db: firestore.Client, uid: str) -> None:
    db.document(f"users/{uid}").set({"email": f"{uid}@example.com"})
    db.document(f"users/{uid}/data/snapshot").set(
        {"equity": "100.00", "cash": "50.00", "buying_power": "100.00", "updated_at": T0}
    )
    db.document(f"users/{uid}/tradingSignals/s1").set(
        {"symbol": "TSLA", "action": "SELL", "created_at": T0, "reason": "draft"}
    )
    db.document(f"users/{uid}/secrets/alpaca").set(
        {"key_id": f"PK{uid.upper():0<10}", "secret_key": "draft-secret-1", "paper": True}
    )


def test_dry_run_writes_nothing_and_says_what_it_would_do(
    db: firestore.Client, keystore: KeyStore
) -> None:
    seed_single_user(db)
    seed_drafts(db, "draftuser")
    before = all_documents(db, with_update_time=True)
    report = migrate(db, keystore, uid="owner")
    assert all_documents(db, with_update_time=True) == before
    assert report.counts["shadowTradeHistory"] == {"copy": 3}
    assert report.counts["tradingSignals"] == {"copy": 2}
    assert report.counts["users/*/tradingSignals"] == {"copy": 1}
    assert report.counts["keys (firestore)"] == {"copy": 1}
    assert keystore.load("draftuser", None) is None


def test_single_user_layout_moves_to_the_named_uid(
    db: firestore.Client, keystore: KeyStore
) -> None:
    seed_single_user(db)
    env = AlpacaKeys(key_id="PKENVKEY0001", secret_key="env-secret-1", paper=True)
    report = migrate(db, keystore, uid="owner", env_keys=env, apply=True)
    assert report.problems == [
        "tenants/acme/accounts/primary: name its owner with --tenant acme=UID"
    ]
    assert report.verify_ok
    trade = db.document("users/owner/shadowTradeHistory/trade00001").get().to_dict() or {}
    assert trade == {
        "symbol": "AAPL",
        "side": "BUY",
        "quantity": "1.5",
        "entry_price": "187.25",
        "status": "OPEN",
        "created_at": T0,
        "migrated_from": "shadowTradeHistory/trade00001",
    }
    signal_doc = db.document("users/owner/signals/sig00000").get().to_dict() or {}
    assert (signal_doc["symbol"], signal_doc["action"], signal_doc["notional_usd"]) == (
        "MSFT",
        "BUY",
        "100.1",
    )
    snapshot = db.document("users/owner/alpacaAccounts/snapshot").get().to_dict() or {}
    assert (snapshot["equity"], snapshot["cash"]) == ("10234.56", "5000.1")
    stored = keystore.load("owner", None)
    assert stored is not None and stored.key_id == "PKENVKEY0001"
    assert (paths.user(db, "owner").get().to_dict() or {})["keys_version"] == 1
    assert db.document("shadowTradeHistory/trade00001").get().exists  # legacy kept
    tenant = migrate(db, keystore, uid="owner", tenants={"acme": "acmeowner"}, apply=True)
    assert tenant.counts["tenants/*/accounts/primary"] == {"copy": 1}
    assert (paths.account_snapshot(db, "acmeowner").get().to_dict() or {})["buying_power"] == "2.00"


def test_drafts_move_keys_into_secret_manager_and_the_pulse_uses_them(
    db: firestore.Client, keystore: KeyStore, platform: Platform, alpaca: AlpacaServer
) -> None:
    seed_drafts(db, "draftuser")
    register_alpaca_account(alpaca.url, "PKDRAFTUSER0", "draft-secret-1", cash="4321")
    paths.trading_status(db, "draftuser").set({"enabled": True, "updated_at": T0})
    report = migrate(db, keystore, apply=True)
    assert report.problems == []
    assert report.counts["keys (firestore)"] == {"moved": 1}
    assert not db.document("users/draftuser/secrets/alpaca").get().exists
    assert (
        keystore.load("draftuser", None) or AlpacaKeys(key_id="x" * 8, secret_key="y" * 8)
    ).key_id == "PKDRAFTUSER0"
    assert db.document("users/draftuser/signals/s1").get().to_dict()["reason"] == "draft"  # type: ignore[index]
    assert run_pulse(platform).counts["synced"] == 1
    assert (paths.account_snapshot(db, "draftuser").get().to_dict() or {})["cash"] == "4321.00"


def test_second_run_changes_nothing(db: firestore.Client, keystore: KeyStore) -> None:
    seed_single_user(db)
    seed_drafts(db, "draftuser")
    migrate(db, keystore, uid="owner", tenants={"acme": "acmeowner"}, apply=True)
    after_first = all_documents(db, with_update_time=True)
    report = migrate(db, keystore, uid="owner", tenants={"acme": "acmeowner"}, apply=True)
    assert all_documents(db, with_update_time=True) == after_first
    assert {outcome for counts in report.counts.values() for outcome in counts} <= {"unchanged"}
    assert report.verify_ok


def test_conflicts_are_reported_and_only_overwritten_when_asked(
    db: firestore.Client, keystore: KeyStore
) -> None:
    seed_single_user(db, trades=2, signals=0)
    db.document("users/owner/shadowTradeHistory/trade00000").set({"symbol": "KEEP"})
    report = migrate(db, keystore, uid="owner", apply=True)
    assert report.counts["shadowTradeHistory"] == {"conflict": 1, "copy": 1}
    assert db.document("users/owner/shadowTradeHistory/trade00000").get().to_dict() == {
        "symbol": "KEEP"
    }
    assert any("trade00000" in p for p in report.problems)
    assert not report.verify_ok

    before = all_documents(db, with_update_time=True)
    failed = migrate(db, keystore, uid="owner", apply=True, on_conflict="fail")
    assert all_documents(db, with_update_time=True) == before
    assert "nothing written" in failed.problems[-1]

    fixed = migrate(db, keystore, uid="owner", apply=True, on_conflict="overwrite")
    assert fixed.counts["shadowTradeHistory"] == {"overwrite": 1, "unchanged": 1}
    assert (db.document("users/owner/shadowTradeHistory/trade00000").get().to_dict() or {})[
        "symbol"
    ] == "AAPL"


def test_malformed_documents_are_reported_one_by_one_and_the_rest_moves(
    db: firestore.Client, keystore: KeyStore
) -> None:
    seed_single_user(db, trades=3, signals=1)
    db.document("shadowTradeHistory/bad-missing").set({"symbol": "AAPL", "status": "OPEN"})
    db.document("shadowTradeHistory/bad-type").set(
        {
            "symbol": "AAPL",
            "side": "BUY",
            "quantity": "lots",
            "entry_price": 1,
            "status": "OPEN",
            "created_at": T0,
        }
    )
    db.document("tradingSignals/bad-time").set(
        {"symbol": "AAPL", "action": "BUY", "created_at": "yesterday"}
    )
    db.document("users/u9/secrets/alpaca").set({"key_id": "short"})
    db.document("users/u8/secrets/alpaca").set({"secretKey": "only-the-secret-half"})
    report = migrate(
        db, keystore, uid="owner", tenants={"acme": "acme"}, apply=True, delete_legacy=True
    )
    assert report.counts["shadowTradeHistory"]["malformed"] == 2
    assert report.counts["shadowTradeHistory"]["copy"] == 3
    assert report.counts["tradingSignals"] == {"copy": 1, "malformed": 1, "legacy deleted": 1}
    assert report.counts["keys (firestore)"] == {"malformed": 2}
    problems = "\n".join(report.problems)
    assert "shadowTradeHistory/bad-missing: side" in problems
    assert "shadowTradeHistory/bad-type: quantity" in problems
    assert "tradingSignals/bad-time" in problems
    assert "users/u9/secrets/alpaca: key_id" in problems
    assert "users/u8/secrets/alpaca: key_id missing" in problems  # named, not "  is not valid"
    assert report.verify_ok
    # malformed sources stay where they are; migrated ones were deleted after the verify
    assert db.document("shadowTradeHistory/bad-type").get().exists
    assert db.document("users/u9/secrets/alpaca").get().exists
    assert not db.document("shadowTradeHistory/trade00000").get().exists


def test_global_data_without_an_owner_is_not_guessed(
    db: firestore.Client, keystore: KeyStore
) -> None:
    seed_single_user(db, trades=1, signals=0)
    report = migrate(db, keystore, apply=True)
    assert report.counts["unmapped"] == {"needs --uid": 2, "needs --tenant": 1}
    assert not list(db.collection("users").list_documents())


def test_thousands_of_documents_count_and_digest_match(
    db: firestore.Client, keystore: KeyStore
) -> None:
    seed_single_user(db, trades=2500, signals=1500)
    for uid in ("d1", "d2", "d3"):
        seed_drafts(db, uid)
    report = migrate(db, keystore, uid="owner", tenants={"acme": "acmeowner"}, apply=True)
    assert report.problems == []
    n, digest, m, actual = report.verified["shadowTradeHistory"]
    assert (n, m) == (2500, 2500) and digest == actual
    assert report.verified["tradingSignals"][0] == 1500
    assert report.verify_ok
    assert db.collection("users/owner/shadowTradeHistory").count().get()[0][0].value == 2500


def test_killed_half_way_the_next_run_finishes_without_duplicates(
    db: firestore.Client, keystore: KeyStore
) -> None:
    total = 6000
    seed_single_user(db, trades=total, signals=0)
    target = db.collection("users/owner/shadowTradeHistory")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "migrate.py"), "--uid", "owner", "--apply"],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    copied = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        copied = target.count().get()[0][0].value
        if copied > 0:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the migration finished before it could be killed"
    assert 0 < copied < total
    report = migrate(db, keystore, uid="owner", apply=True)
    assert report.counts["shadowTradeHistory"]["unchanged"] >= copied
    assert sum(report.counts["shadowTradeHistory"].values()) == total
    assert report.verify_ok
    assert target.count().get()[0][0].value == total


def test_rollback_removes_only_copies_whose_source_is_kept(
    db: firestore.Client, keystore: KeyStore
) -> None:
    seed_single_user(db, trades=2, signals=1)
    db.document("users/owner/shadowTradeHistory/mine").set({"symbol": "OWN"})
    migrate(db, keystore, uid="owner", apply=True)
    report = rollback(db, "owner")
    assert report.counts["shadowTradeHistory"] == {"copy removed": 2}
    assert not db.document("users/owner/shadowTradeHistory/trade00000").get().exists
    assert db.document("users/owner/shadowTradeHistory/mine").get().exists
    assert db.document("shadowTradeHistory/trade00000").get().exists


# -- what the outside probe found ----------------------------------------------------------------


def test_keys_saved_since_are_a_conflict_not_replaced_by_stale_ones(
    db: firestore.Client, keystore: KeyStore
) -> None:
    seed_drafts(db, "draftuser")  # legacy copy: PKDRAFTUSER0 / draft-secret-1
    current = AlpacaKeys(key_id="PKNEWERKEYS1", secret_key="newer-secret-1", paper=True)
    keystore.save("draftuser", current)
    paths.user(db, "draftuser").set({"keys_version": 3}, merge=True)

    planned = migrate(db, keystore)
    assert planned.counts["keys (firestore)"] == {"conflict": 1}
    report = migrate(db, keystore, apply=True)
    assert report.counts["keys (firestore)"] == {"conflict": 1}
    assert any("alpaca-keys-draftuser already holds other keys" in p for p in report.problems)
    keystore.forget("draftuser")
    assert (keystore.load("draftuser", None) or current).key_id == "PKNEWERKEYS1"
    assert db.document("users/draftuser/secrets/alpaca").get().exists  # legacy copy left
    assert (paths.user(db, "draftuser").get().to_dict() or {})["keys_version"] == 3

    before = all_documents(db, with_update_time=True)
    failed = migrate(db, keystore, apply=True, on_conflict="fail")
    assert "nothing written" in failed.problems[-1]
    assert all_documents(db, with_update_time=True) == before

    overwritten = migrate(db, keystore, apply=True, on_conflict="overwrite")
    assert overwritten.counts["keys (firestore)"] == {"moved": 1}
    keystore.forget("draftuser")
    assert (keystore.load("draftuser", None) or current).key_id == "PKDRAFTUSER0"
    assert not db.document("users/draftuser/secrets/alpaca").get().exists
    assert (paths.user(db, "draftuser").get().to_dict() or {})["keys_version"] == 4


def test_environment_keys_do_not_replace_keys_saved_since(
    db: firestore.Client, keystore: KeyStore
) -> None:
    keystore.save("owner", AlpacaKeys(key_id="PKNEWERKEYS1", secret_key="newer-secret-1"))
    env = AlpacaKeys(key_id="PKENVKEY0001", secret_key="env-secret-1", paper=True)
    report = migrate(db, keystore, uid="owner", env_keys=env, apply=True)
    assert report.counts["keys (environment)"] == {"conflict": 1}
    keystore.forget("owner")
    assert (keystore.load("owner", None) or env).key_id == "PKNEWERKEYS1"


def migrate_script(*args: str) -> subprocess.CompletedProcess[str]:
    return run_script("migrate.py", *args)


def test_the_readme_example_finishes_when_one_account_is_in_both_layouts(
    db: firestore.Client, keystore: KeyStore
) -> None:
    """The README's own commands, on the data it describes: the bot wrote the same account to
    alpacaAccounts/snapshot and to tenants/acme/accounts/primary, the tenant copy later."""
    seed_single_user(db, trades=2, signals=1)
    db.document("tenants/acme/accounts/primary").set(
        {"equity": "10300.00", "cash": "5000.10", "buying_power": "20000", "timestamp": T1}
    )
    os.environ["APCA_API_KEY_ID"], os.environ["APCA_API_SECRET_KEY"] = (
        "PKENVKEY0001",
        "env-1-secret",
    )
    try:
        common = ["--uid", "OWNER", "--tenant", "acme=OWNER", "--keys-from-env"]
        dry = migrate_script(*common)
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert "superseded" in dry.stdout
        applied = migrate_script(*common, "--apply")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "verified: every migrated source has an equal target" in applied.stdout
        snapshot = paths.account_snapshot(db, "OWNER").get().to_dict() or {}
        assert (snapshot["equity"], snapshot["migrated_from"]) == (
            "10300.00",
            "tenants/acme/accounts/primary",
        )
        again = migrate_script(*common, "--apply")
        assert again.returncode == 0, again.stdout
        cleaned = migrate_script(
            "--uid", "OWNER", "--tenant", "acme=OWNER", "--apply", "--delete-legacy"
        )
        assert cleaned.returncode == 0, cleaned.stdout
        assert not db.document("alpacaAccounts/snapshot").get().exists
        assert not db.document("tenants/acme/accounts/primary").get().exists
        after = migrate_script(*common, "--apply")
        assert after.returncode == 0, after.stdout
    finally:
        del os.environ["APCA_API_KEY_ID"], os.environ["APCA_API_SECRET_KEY"]


def test_identical_accounts_merge_and_a_preferred_family_wins(
    db: firestore.Client, keystore: KeyStore
) -> None:
    seed_single_user(db, trades=0, signals=0)
    same = {"equity": "10234.56", "cash": "5000.1", "buying_power": "20000", "timestamp": T0}
    db.document("alpacaAccounts/snapshot").set({**same, "status": "ACTIVE"})
    db.document("tenants/acme/accounts/primary").set({**same, "status": "ACTIVE"})
    merged = migrate(db, keystore, uid="owner", tenants={"acme": "owner"}, apply=True)
    assert merged.problems == [] and merged.verify_ok
    assert sum(c["merged"] for c in merged.counts.values()) == 1

    db.document("tenants/acme/accounts/primary").set({**same, "equity": "1.00"})
    paths.account_snapshot(db, "owner").delete()
    chosen = migrate(
        db,
        keystore,
        uid="owner",
        tenants={"acme": "owner"},
        apply=True,
        prefer="tenants/*/accounts/primary",
    )
    assert chosen.problems == [] and chosen.verify_ok
    assert chosen.counts["alpacaAccounts/snapshot"] == {"superseded": 1}
    assert (paths.account_snapshot(db, "owner").get().to_dict() or {})["equity"] == "1.00"


def test_open_trades_keep_their_marks_and_other_fields(
    db: firestore.Client, keystore: KeyStore
) -> None:
    db.document("shadowTradeHistory/t1").set(
        {
            "ticker": "aapl",
            "side": "BUY",
            "qty": 2,
            "entryPrice": 100.5,
            "status": "OPEN",
            "timestamp": T0,
            "currentPrice": 110.25,
            "unrealizedPnl": 19.5,
            "pnl_percent": "9.7015",
            "lastPricedAt": T1,
            "note": "from the bot",
            "tags": ["swing"],
            "api_key": "PKLEAKED0000",
        }
    )
    report = migrate(db, keystore, uid="owner", apply=True)
    assert report.problems == [] and report.verify_ok
    trade = db.document("users/owner/shadowTradeHistory/t1").get().to_dict() or {}
    assert trade == {
        "symbol": "AAPL",
        "side": "BUY",
        "quantity": "2",
        "entry_price": "100.5",
        "status": "OPEN",
        "created_at": T0,
        "current_price": "110.25",
        "unrealized_pnl": "19.5",
        "pnl_percent": "9.7015",
        "last_priced_at": T1,
        "note": "from the bot",
        "tags": ["swing"],
        "migrated_from": "shadowTradeHistory/t1",
    }


def test_a_malformed_field_is_named_as_the_source_wrote_it(
    db: firestore.Client, keystore: KeyStore
) -> None:
    db.document("alpacaAccounts/snapshot").set({"equity": "N/A", "cash": 1, "buying_power": 1})
    db.document("shadowTradeHistory/t1").set(
        {"ticker": "AAPL", "side": "BUY", "qty": "abc", "entry_price": 1, "timestamp": T0}
    )
    db.document("shadowTradeHistory/t2").set(
        {
            "symbol": "AAPL",
            "side": "BUY",
            "quantity": 1,
            "entry_price": 1,
            "timestamp": T0,
            "currentPrice": "N/A",
        }
    )
    db.document("tradingSignals/s1").set({"symbol": "AAPL", "action": "BUY", "createdAt": "soon"})
    report = migrate(db, keystore, uid="owner")
    problems = "\n".join(report.problems)
    assert "alpacaAccounts/snapshot: equity: not a number: 'N/A'" in problems
    assert "shadowTradeHistory/t1: quantity (qty):" in problems
    assert "shadowTradeHistory/t2: current_price (currentPrice): not a number: 'N/A'" in problems
    assert "tradingSignals/s1: created_at (createdAt): not a timestamp: 'soon'" in problems


# -- the migration never replaces what was written since it decided -------------------------------


def test_a_snapshot_written_after_the_plan_is_not_replaced(
    db: firestore.Client, keystore: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan decided to copy the legacy snapshot; the pulse wrote a newer one before the
    copy landed: the newer one stays, the rest moves, the run says so."""
    seed_single_user(db, trades=2, signals=1)
    decide = migration._decide

    def then_the_pulse_writes(*args: Any, **kwargs: Any) -> Any:
        decided = decide(*args, **kwargs)
        db.document("users/owner/alpacaAccounts/snapshot").set({"equity": "99999.00"})
        return decided

    monkeypatch.setattr(migration, "_decide", then_the_pulse_writes)
    report = migrate(db, keystore, uid="owner", apply=True)
    snapshot = db.document("users/owner/alpacaAccounts/snapshot").get().to_dict() or {}
    assert snapshot == {"equity": "99999.00"}
    assert report.counts["alpacaAccounts/snapshot"]["changed since planned"] == 1
    assert any("was written since the plan read it" in p for p in report.problems)
    assert db.document("users/owner/shadowTradeHistory/trade00000").get().exists  # the rest


def test_an_overwrite_is_only_of_the_target_as_the_plan_read_it(
    db: firestore.Client, keystore: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_single_user(db, trades=1, signals=0)
    target = db.document("users/owner/shadowTradeHistory/trade00000")
    target.set({"symbol": "AAPL", "status": "OPEN", "note": "older"})
    decide = migration._decide

    def then_the_bot_closes_it(*args: Any, **kwargs: Any) -> Any:
        decided = decide(*args, **kwargs)
        target.set({"symbol": "AAPL", "status": "CLOSED", "note": "closed by the bot"})
        return decided

    monkeypatch.setattr(migration, "_decide", then_the_bot_closes_it)
    report = migrate(db, keystore, uid="owner", apply=True, on_conflict="overwrite")
    assert (target.get().to_dict() or {})["status"] == "CLOSED"
    assert report.counts["shadowTradeHistory"]["changed since planned"] == 1
    monkeypatch.undo()  # planned afresh, the overwrite the operator asked for is exact
    again = migrate(db, keystore, uid="owner", apply=True, on_conflict="overwrite")
    assert again.counts["shadowTradeHistory"]["overwrite"] == 1
    assert "note" not in (target.get().to_dict() or {})


def test_keys_the_person_saves_after_the_plan_stay(
    db: firestore.Client, keystore: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_drafts(db, "draftuser")
    key_decision = migration._key_decision

    def then_the_person_saves(*args: Any, **kwargs: Any) -> Any:
        planned = key_decision(*args, **kwargs)
        keystore.save("draftuser", AlpacaKeys(key_id="PKTHEIRS0001", secret_key="theirs-secret-1"))
        return planned

    monkeypatch.setattr(migration, "_key_decision", then_the_person_saves)
    report = migrate(db, keystore, apply=True)
    assert report.counts["keys (firestore)"] == {"changed since planned": 1}
    keystore.forget("draftuser")
    kept = keystore.load("draftuser", None)
    assert kept is not None and kept.key_id == "PKTHEIRS0001"
    assert db.document("users/draftuser/secrets/alpaca").get().exists  # legacy copy left


def test_rollback_keeps_a_copy_the_bot_changed_since(
    db: firestore.Client, keystore: KeyStore
) -> None:
    seed_single_user(db, trades=2, signals=0)
    migrate(db, keystore, uid="owner", apply=True)
    closed = db.document("users/owner/shadowTradeHistory/trade00001")
    closed.update({"status": "CLOSED", "exit_price": "190"})  # the bot closed it
    report = rollback(db, "owner")
    assert report.counts["shadowTradeHistory"] == {"copy removed": 1, "changed since migrated": 1}
    assert closed.get().exists
    assert not db.document("users/owner/shadowTradeHistory/trade00000").get().exists
    assert any("trade00001 changed since it was migrated: kept" in p for p in report.problems)
