"""The callables' plain core on the Firestore emulator with both stand-ins."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from calling import NOW, Code, auth, data_of, error_of, freeze, ready_user
from firestore_state import all_documents
from google.cloud import firestore

from agenttrader.api import admin_callables, callables, keys_callables, position_callables
from agenttrader.api.guard import Services
from agenttrader.api.messages import label
from agenttrader.broker.keystore import KeyStore
from agenttrader.pulse.run import run_pulse
from agenttrader.store import paths
from localdev.alpaca_standin import AlpacaServer, price_at
from localdev.secret_manager_standin import SecretManagerServer
from localdev.seed import open_trade, register_alpaca_account

# -- every callable: authentication and input ---------------------------------------------------

ALL = [
    (callables.generate_trading_signal, {"symbol": "AAPL"}),
    (keys_callables.save_alpaca_keys, {"key_id": "PKABCDEFGH", "secret_key": "secret-key-1"}),
    (keys_callables.remove_alpaca_keys, {}),
    (callables.set_trading_enabled, {"enabled": True}),
    (position_callables.close_shadow_trade, {"trade_id": "t1"}),
    (keys_callables.delete_my_account, {"confirm": True}),
    (admin_callables.admin_set_global_trading, {"enabled": False}),
    (admin_callables.admin_get_last_pulse, {}),
    (admin_callables.admin_disable_user_trading, {"uid": "someone"}),
    (callables.request_sync, {}),
]


@pytest.mark.parametrize(("call", "data"), ALL, ids=[c.__name__ for c, _ in ALL])
def test_every_callable_needs_a_signed_in_caller(services: Services, call: Any, data: Any) -> None:
    assert error_of(call, services, None, data).code == Code.UNAUTHENTICATED


@pytest.mark.parametrize(("call", "data"), ALL, ids=[c.__name__ for c, _ in ALL])
def test_unknown_fields_and_huge_payloads_are_refused(
    services: Services, db: firestore.Client, call: Any, data: Any
) -> None:
    who = auth("alice", admin=True)
    unknown = error_of(call, services, who, {**data, "surprise": 1})
    assert unknown.code == Code.INVALID_ARGUMENT
    assert "surprise" in unknown.message
    huge = error_of(call, services, who, {**data, "padding": "x" * 10_000})
    assert huge.code == Code.INVALID_ARGUMENT
    assert "limit" in huge.message
    assert error_of(call, services, who, ["not", "an", "object"]).code == Code.INVALID_ARGUMENT
    assert all_documents(db) == {}


BAD_SIGNALS = [
    ({}, "symbol"),
    ({"symbol": None}, "symbol"),
    ({"symbol": 42}, "symbol"),
    ({"symbol": "../../users/bob"}, "symbol"),
    ({"symbol": "users/bob/secrets"}, "symbol"),
    ({"symbol": "ÄPPLE"}, "symbol"),
    ({"symbol": "AAPL\u0000"}, "symbol"),
    ({"symbol": "A" * 500}, "symbol"),
    ({"symbol": "aapl; drop"}, "symbol"),
    ({"symbol": "AAPL", "strategy": "yolo"}, "strategy"),
    ({"symbol": "AAPL", "open_shadow_trade": "yes"}, "open_shadow_trade"),
]


@pytest.mark.parametrize(("data", "field"), BAD_SIGNALS)
def test_bad_signal_input_names_the_field_and_changes_nothing(
    services: Services, db: firestore.Client, secrets: SecretManagerServer, data: Any, field: str
) -> None:
    error = error_of(callables.generate_trading_signal, services, auth("alice"), data)
    assert error.code == Code.INVALID_ARGUMENT
    assert error.message.startswith(label(field))
    assert all_documents(db) == {}
    assert secrets.store.calls["AccessSecretVersion"] == 0


BAD_KEYS = [
    ({"key_id": "PKABCDEFGH"}, "secret_key"),
    ({"key_id": 12345678, "secret_key": "secret-key-1"}, "key_id"),
    ({"key_id": "PK", "secret_key": "secret-key-1"}, "key_id"),
    ({"key_id": "PK/../../x", "secret_key": "secret-key-1"}, "key_id"),
    ({"key_id": "PKABCDEFGH", "secret_key": "s" * 4000}, "secret_key"),
    ({"key_id": "PKABCDEFGH", "secret_key": "secret-key-1", "paper": "false"}, "paper"),
    ({"key_id": "PKABCDEFGH", "secret_key": "🔑🔑🔑🔑🔑🔑🔑🔑"}, "secret_key"),
]


@pytest.mark.parametrize(("data", "field"), BAD_KEYS)
def test_bad_keys_input_changes_nothing(
    services: Services, db: firestore.Client, secrets: SecretManagerServer, data: Any, field: str
) -> None:
    error = error_of(keys_callables.save_alpaca_keys, services, auth("alice"), data)
    assert error.code == Code.INVALID_ARGUMENT
    assert error.message.startswith(label(field))
    assert all_documents(db) == {}
    assert secrets.store.calls["CreateSecret"] == 0


def test_numbers_that_are_not_numbers_are_refused(services: Services, db: firestore.Client) -> None:
    for enabled in (float("nan"), -1, 0, 1, "true", None):
        error = error_of(
            callables.set_trading_enabled, services, auth("alice"), {"enabled": enabled}
        )
        assert error.code == Code.INVALID_ARGUMENT
    assert all_documents(db) == {}


# -- keys -----------------------------------------------------------------------------------------


def test_save_keys_checks_them_stores_them_and_returns_only_a_mask(
    services: Services, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    register_alpaca_account(alpaca.url, "PKALICE12345", "secret-key-1")
    result = keys_callables.save_alpaca_keys(
        services, auth("alice"), {"key_id": "PKALICE12345", "secret_key": "secret-key-1"}
    )
    assert result == {
        "key_id": "PKAL****2345",
        "paper": True,
        "keys_version": 1,
        "trades_in_other_account": [],
        "replaced_connection_revoked": None,
    }
    assert "secret-key-1" not in repr(result)
    stored = keystore.load("alice", 1)
    assert stored is not None
    assert stored.secret_key.get_secret_value() == "secret-key-1"
    user = paths.user(db, "alice").get().to_dict() or {}
    assert user["keys_version"] == 1
    assert user["email"] == "alice@example.com"
    assert (paths.trading_status(db, "alice").get().to_dict() or {})["enabled"] is False
    everything = repr(all_documents(db))
    assert "secret-key-1" not in everything
    events = [d.to_dict() for d in paths.audit(db, "alice").stream()]
    assert [e["action"] for e in events] == ["keys_saved"]
    again = keys_callables.save_alpaca_keys(
        services, auth("alice"), {"key_id": "PKALICE12345", "secret_key": "secret-key-1"}
    )
    assert again["keys_version"] == 2


def test_keys_alpaca_refuses_are_not_stored(
    services: Services, db: firestore.Client, secrets: SecretManagerServer
) -> None:
    error = error_of(
        keys_callables.save_alpaca_keys,
        services,
        auth("alice"),
        {"key_id": "PKNOTREAL123", "secret_key": "secret-key-1"},
    )
    assert error.code == Code.INVALID_ARGUMENT
    assert "refused" in error.message
    assert data_of(db) == {}
    assert secrets.store.calls["CreateSecret"] == 0


def test_remove_keys_deletes_the_secret_and_the_pulse_sees_it(
    services: Services, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    ready_user(services, alpaca, "alice")
    assert keys_callables.remove_alpaca_keys(services, auth("alice"), {}) == {
        "removed": True,
        "connection_revoked": None,  # pasted keys: nothing at Alpaca to revoke
    }
    assert keystore.load("alice", 99) is None
    assert (paths.user(db, "alice").get().to_dict() or {})["keys_version"] == 2
    summary = run_pulse(services.platform)
    assert summary.counts["skipped_no_keys"] == 1
    assert keys_callables.remove_alpaca_keys(services, auth("alice"), {}) == {
        "removed": False,
        "connection_revoked": None,
    }


# -- signals --------------------------------------------------------------------------------------


def test_signal_is_written_sized_to_buying_power_and_audited(
    services: Services, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    freeze(alpaca)
    ready_user(services, alpaca, "alice", cash="10000")
    result = callables.generate_trading_signal(
        services, auth("alice"), {"symbol": "AAPL", "strategy": "momentum_20d"}
    )
    stored = paths.signals(db, "alice").document(result["id"]).get().to_dict() or {}
    assert stored["symbol"] == "AAPL"
    assert stored["action"] in {"BUY", "SELL", "HOLD"}
    assert stored["strategy_id"] == "momentum_20d"
    assert stored["reason"]
    price = price_at("AAPL", NOW)
    assert Decimal(stored["price"]) == price
    if stored["action"] != "HOLD":
        # buying power 20,000 (2x margin on 10,000 cash), 10%: at most 2,000
        assert Decimal(stored["notional_usd"]) <= Decimal(2000)
        assert Decimal(stored["notional_usd"]) == (Decimal(stored["quantity"]) * price).quantize(
            Decimal("0.01")
        )
    events = [d.to_dict() or {} for d in paths.audit(db, "alice").stream()]
    assert "signal_generated" in {e["action"] for e in events}


def test_signal_refused_without_a_fresh_snapshot_or_when_switched_off(
    services: Services, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    register_alpaca_account(alpaca.url, "PKALICE00000", "secret-key-1")
    keys_callables.save_alpaca_keys(
        services, auth("alice"), {"key_id": "PKALICE00000", "secret_key": "secret-key-1"}
    )
    error = error_of(callables.generate_trading_signal, services, auth("alice"), {"symbol": "AAPL"})
    assert error.code == Code.FAILED_PRECONDITION
    assert "switched off" in error.message
    callables.set_trading_enabled(services, auth("alice"), {"enabled": True})
    error = error_of(callables.generate_trading_signal, services, auth("alice"), {"symbol": "AAPL"})
    assert error.code == Code.FAILED_PRECONDITION
    assert "snapshot" in error.message
    run_pulse(services.platform)
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    paths.sync_status(db, "alice").update({"last_success_at": long_ago})
    # healthy, and the last run (which wrote nothing for her: nothing changed) was just now
    assert callables.generate_trading_signal(services, auth("alice"), {"symbol": "AAPL"})
    paths.freshness(db).update({"finished_at": long_ago})  # no run since
    error = error_of(callables.generate_trading_signal, services, auth("alice"), {"symbol": "AAPL"})
    assert "stale" in error.message
    paths.freshness(db).update({"finished_at": datetime.now(UTC)})
    paths.sync_status(db, "alice").update({"consecutive_failures": 3})  # runs fail for her
    error = error_of(callables.generate_trading_signal, services, auth("alice"), {"symbol": "AAPL"})
    assert "stale" in error.message
    assert len(list(paths.signals(db, "alice").stream())) == 1


def test_global_kill_switch_blocks_signals(
    services: Services, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    ready_user(services, alpaca, "alice")
    admin_callables.admin_set_global_trading(services, auth("ops", admin=True), {"enabled": False})
    error = error_of(callables.generate_trading_signal, services, auth("alice"), {"symbol": "AAPL"})
    assert error.code == Code.FAILED_PRECONDITION
    assert "halted" in error.message
    assert list(paths.signals(db, "alice").stream()) == []


def test_signal_can_open_a_shadow_trade_and_closing_it_realizes_exact_pnl(
    services: Services, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    freeze(alpaca)
    ready_user(services, alpaca, "alice", cash="50000")
    opened = None
    for symbol in ("AAPL", "MSFT", "NVDA", "TSLA", "AMD", "META", "GOOG", "AMZN", "IBM", "ORCL"):
        result = callables.generate_trading_signal(
            services,
            auth("alice"),
            {"symbol": symbol, "strategy": "mean_reversion_20d", "open_shadow_trade": True},
        )
        if result["shadow_trade_id"]:
            opened = result
            break
        result = callables.generate_trading_signal(
            services, auth("alice"), {"symbol": symbol, "open_shadow_trade": True}
        )
        if result["shadow_trade_id"]:
            opened = result
            break
    assert opened is not None, "no symbol gave a BUY or SELL"
    trade_ref = paths.shadow_trades(db, "alice").document(opened["shadow_trade_id"])
    trade = trade_ref.get().to_dict() or {}
    assert trade["status"] == "OPEN"
    assert trade["side"] == opened["action"]
    freeze(alpaca, NOW + 3600)
    closed = position_callables.close_shadow_trade(
        services, auth("alice"), {"trade_id": opened["shadow_trade_id"]}
    )
    exit_price = price_at(opened["symbol"], NOW + 3600)
    entry, qty = Decimal(trade["entry_price"]), Decimal(trade["quantity"])
    move = exit_price - entry if trade["side"] == "BUY" else entry - exit_price
    assert closed["realized_pnl"] == str((move * qty).quantize(Decimal("0.01")))
    stored = trade_ref.get().to_dict() or {}
    assert stored["status"] == "CLOSED"
    assert stored["exit_price"] == str(exit_price)
    again = error_of(
        position_callables.close_shadow_trade,
        services,
        auth("alice"),
        {"trade_id": opened["shadow_trade_id"]},
    )
    assert again.code == Code.FAILED_PRECONDITION
    missing = error_of(
        position_callables.close_shadow_trade, services, auth("alice"), {"trade_id": "nope"}
    )
    assert missing.code == Code.NOT_FOUND


def test_one_user_cannot_close_another_users_trade(
    services: Services, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    ready_user(services, alpaca, "alice")
    ready_user(services, alpaca, "mallory")
    open_trade(db, "alice", "t1", "AAPL", "BUY", "1", "100")
    error = error_of(
        position_callables.close_shadow_trade, services, auth("mallory"), {"trade_id": "t1"}
    )
    assert error.code == Code.NOT_FOUND
    assert (paths.shadow_trades(db, "alice").document("t1").get().to_dict() or {})[
        "status"
    ] == "OPEN"


# -- rate limits, account deletion, admin ---------------------------------------------------------


def test_rate_limit_holds_and_says_the_limit(services: Services, db: firestore.Client) -> None:
    for _ in range(20):
        callables.set_trading_enabled(services, auth("alice"), {"enabled": True})
    error = error_of(callables.set_trading_enabled, services, auth("alice"), {"enabled": False})
    assert error.code == Code.RESOURCE_EXHAUSTED
    assert "20 calls per 60 s" in error.message
    assert (paths.trading_status(db, "alice").get().to_dict() or {})["enabled"] is True
    # another user is not affected
    callables.set_trading_enabled(services, auth("bob"), {"enabled": True})


def test_delete_my_account_removes_everything_and_the_token_is_dead_after(
    services: Services, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    ready_user(services, alpaca, "alice")
    ready_user(services, alpaca, "bob")
    open_trade(db, "alice", "t1", "AAPL", "BUY", "1", "100")
    bob_before = {k: v for k, v in all_documents(db).items() if k.startswith("users/bob")}
    result = keys_callables.delete_my_account(services, auth("alice"), {"confirm": True})
    assert result["deleted"] is True
    assert result["secret_removed"] is True
    assert keystore.load("alice", None) is None
    remaining = all_documents(db)
    assert not [p for p in remaining if p.startswith("users/alice")]
    assert {k: v for k, v in remaining.items() if k.startswith("users/bob")} == bob_before
    assert keystore.load("bob", 1) is not None
    again = error_of(keys_callables.delete_my_account, services, auth("alice"), {"confirm": True})
    assert again.code == Code.UNAUTHENTICATED
    refused = error_of(keys_callables.delete_my_account, services, auth("bob"), {"confirm": False})
    assert refused.code == Code.INVALID_ARGUMENT


def test_admin_callables_need_the_claim(
    services: Services, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    ready_user(services, alpaca, "alice")
    for call, data in ALL[-4:-1]:
        assert error_of(call, services, auth("alice"), data).code == Code.PERMISSION_DENIED
    ops = auth("ops", admin=True)
    summary = admin_callables.admin_get_last_pulse(services, ops, {})
    assert summary["synced"] == 1
    assert (
        admin_callables.admin_disable_user_trading(services, ops, {"uid": "alice"})["enabled"]
        is False
    )
    assert (paths.trading_status(db, "alice").get().to_dict() or {})["enabled"] is False
    missing = error_of(admin_callables.admin_disable_user_trading, services, ops, {"uid": "nobody"})
    assert missing.code == Code.NOT_FOUND
    admin_callables.admin_set_global_trading(services, ops, {"enabled": False, "reason": "drill"})
    stored = paths.global_trading(db).get().to_dict() or {}
    assert (stored["enabled"], stored["updated_by"]) == (False, "ops")
    assert run_pulse(services.platform).halted


def test_request_sync_syncs_the_caller_now_or_says_why_not(
    services: Services, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    refused = error_of(callables.request_sync, services, auth("alice"), {})
    assert (refused.code, "switched off" in refused.message) == (Code.FAILED_PRECONDITION, True)
    callables.set_trading_enabled(services, auth("alice"), {"enabled": True})
    refused = error_of(callables.request_sync, services, auth("alice"), {})
    assert (refused.code, "no Alpaca keys" in refused.message) == (Code.FAILED_PRECONDITION, True)
    register_alpaca_account(alpaca.url, "PKALICE00000", "secret-key-1", cash="4321")
    keys_callables.save_alpaca_keys(
        services, auth("alice"), {"key_id": "PKALICE00000", "secret_key": "secret-key-1"}
    )
    assert not paths.account_snapshot(db, "alice").get().exists
    assert callables.request_sync(services, auth("alice"), {}) == {"outcome": "synced"}
    assert (paths.account_snapshot(db, "alice").get().to_dict() or {})["cash"] == "4321.00"
    register_alpaca_account(
        alpaca.url, "PKALICE00000", "secret-key-1", fault={"kind": "http", "status": 401}
    )
    later = datetime.now(UTC) + timedelta(seconds=61)  # a new minute of the rate limit
    services = replace(services, platform=replace(services.platform, now=lambda: later))
    failed = error_of(callables.request_sync, services, auth("alice"), {})
    assert failed.code == Code.FAILED_PRECONDITION
    assert "refused these API keys" in failed.message
    assert "ALPACA_UNAUTHORIZED" not in failed.message  # the code is for the logs, not the sentence
    assert (paths.last_sync_error(db, "alice").get().to_dict() or {})["code"] == (
        "ALPACA_UNAUTHORIZED"
    )
    codes = [error_of(callables.request_sync, services, auth("alice"), {}).code for _ in "abc"]
    assert codes == [Code.FAILED_PRECONDITION] * 2 + [Code.RESOURCE_EXHAUSTED]  # three a minute


def test_statistics_add_each_close_without_reading_the_history_again(
    services: Services, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    """Closed trades from before (a migration) are counted once; from then on each close adds
    itself, in the commit that closes it, and nothing reads the history again."""
    freeze(alpaca)
    ready_user(services, alpaca, "alice")
    history = paths.shadow_trades(db, "alice")
    for i, pnl in enumerate(["12.50", "-2.25", "0.00"]):
        history.document(f"old{i}").set(
            {
                "symbol": "AAPL",
                "side": "BUY",
                "quantity": "1",
                "entry_price": "100",
                "status": "CLOSED",
                "realized_pnl": pnl,
                "created_at": datetime.now(UTC),
            }
        )
    for trade_id in ("t1", "t2"):
        open_trade(db, "alice", trade_id, "AAPL", "BUY", "2", "100")
    first = position_callables.close_shadow_trade(services, auth("alice"), {"trade_id": "t1"})
    stats = paths.stats_summary(db, "alice").get().to_dict() or {}
    gain = Decimal(first["realized_pnl"])
    assert stats["trades_closed"] == 4
    assert Decimal(stats["realized_pnl"]) == Decimal("10.25") + gain
    totals = paths.closed_totals(db, "alice").get().to_dict() or {}
    assert totals["complete"] is True and totals["count"] == 4

    # the history changes behind the product's back: a re-read would see it, an increment not
    history.document("old0").update({"realized_pnl": "1000.00"})
    second = position_callables.close_shadow_trade(services, auth("alice"), {"trade_id": "t2"})
    stats = paths.stats_summary(db, "alice").get().to_dict() or {}
    assert stats["trades_closed"] == 5
    assert Decimal(stats["realized_pnl"]) == Decimal("10.25") + gain + Decimal(
        second["realized_pnl"]
    )
    wins = 1 + (gain > 0) + (Decimal(second["realized_pnl"]) > 0)
    assert stats["win_rate"] == str((Decimal(wins) / 5 * 100).quantize(Decimal("0.0001")))
    # a second close of the same trade is refused and counts nothing
    assert (
        error_of(
            position_callables.close_shadow_trade, services, auth("alice"), {"trade_id": "t2"}
        ).code
        == Code.FAILED_PRECONDITION
    )
    assert (paths.closed_totals(db, "alice").get().to_dict() or {})["count"] == 5
