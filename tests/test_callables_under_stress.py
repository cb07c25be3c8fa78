"""The callables as a hostile or clumsy client meets them: overlapping calls, lax types, ids
Firestore reserves, unreadable stored documents, and a token that outlives its account."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from calling import Code, auth, data_of, error_of, ready_user
from firebase_functions.https_fn import HttpsError
from firestore_state import all_documents
from google.cloud import firestore

from agenttrader.api import admin_callables, callables, keys_callables, position_callables
from agenttrader.api.guard import LIMITS, Services
from agenttrader.api.messages import label
from agenttrader.broker.keystore import KeyStore
from agenttrader.store import paths
from localdev import emulators
from localdev.alpaca_standin import AlpacaServer
from localdev.seed import open_trade, register_alpaca_account

OVERLAP = 10


def overlapping(call: Callable[[], Any], times: int = OVERLAP) -> list[Any]:
    """Run `call` `times` at once; each result is the answer or the HttpsError it raised."""

    def one(_: int) -> Any:
        try:
            return call()
        except HttpsError as error:
            return error

    with ThreadPoolExecutor(max_workers=times) as pool:
        return list(pool.map(one, range(times)))


def codes(results: list[Any]) -> Counter[str]:
    return Counter(r.code.name if isinstance(r, HttpsError) else "OK" for r in results)


def frozen(services: Services) -> Services:
    """The same services with a clock that stands still: no rate-limit window can roll over
    while a test counts."""
    at = datetime.now(UTC)
    return replace(services, platform=replace(services.platform, now=lambda: at))


# -- 1. contention is never INTERNAL ---------------------------------------------------------------


def test_overlapping_admin_reads_all_succeed(
    services: Services, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    ready_user(services, alpaca, "alice")
    ops = auth("ops", admin=True)
    results = overlapping(lambda: admin_callables.admin_get_last_pulse(services, ops, {}))
    assert codes(results) == {"OK": OVERLAP}
    counter = paths.rate_limit(db, "ops", "admin").get().to_dict() or {}
    assert counter["count"] == OVERLAP


def test_overlapping_closes_close_once_and_the_others_hear_why(
    services: Services, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    ready_user(services, alpaca, "alice")
    open_trade(db, "alice", "t1", "AAPL", "BUY", "2", "100")
    results = overlapping(
        lambda: position_callables.close_shadow_trade(services, auth("alice"), {"trade_id": "t1"})
    )
    assert codes(results) == {"OK": 1, "FAILED_PRECONDITION": OVERLAP - 1}
    for refused in (r for r in results if isinstance(r, HttpsError)):
        assert "already closed" in refused.message
    (won,) = (r for r in results if not isinstance(r, HttpsError))
    trade = paths.shadow_trades(db, "alice").document("t1").get().to_dict() or {}
    assert (trade["status"], trade["realized_pnl"]) == ("CLOSED", won["realized_pnl"])
    closed = [
        e.to_dict()
        for e in paths.audit(db, "alice").stream()
        if (e.to_dict() or {})["action"] == "shadow_trade_closed"
    ]
    assert len(closed) == 1


def test_the_rate_limiter_counts_overlapping_calls_exactly(
    services: Services, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    ready_user(services, alpaca, "alice")
    still = frozen(services)
    limit = LIMITS["set_trading_enabled"].calls  # ready_user already spent one
    results = overlapping(
        lambda: callables.set_trading_enabled(still, auth("alice"), {"enabled": True}),
        times=limit + 4,
    )
    assert codes(results) == {"OK": limit - 1, "RESOURCE_EXHAUSTED": 5}
    switched = [
        e
        for e in paths.audit(db, "alice").stream()
        if (e.to_dict() or {})["action"] == "trading_switched"
    ]
    assert len(switched) == limit


def test_overlapping_key_saves_each_get_their_own_version(
    services: Services, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    register_alpaca_account(alpaca.url, "PKALICE12345", "secret-key-1")
    data = {"key_id": "PKALICE12345", "secret_key": "secret-key-1"}
    results = overlapping(lambda: keys_callables.save_alpaca_keys(services, auth("alice"), data), 5)
    assert codes(results) == {"OK": 5}
    assert sorted(r["keys_version"] for r in results) == [1, 2, 3, 4, 5]
    assert (paths.user(db, "alice").get().to_dict() or {})["keys_version"] == 5


# -- 2. strict types at the trust boundary ---------------------------------------------------------

LAX = [
    (keys_callables.delete_my_account, {"confirm": 1}, "confirm"),
    (keys_callables.delete_my_account, {"confirm": 1.0}, "confirm"),
    (keys_callables.delete_my_account, {"confirm": "true"}, "confirm"),
    (callables.set_trading_enabled, {"enabled": 1.0}, "enabled"),
    (callables.set_trading_enabled, {"enabled": "false"}, "enabled"),
    (
        keys_callables.save_alpaca_keys,
        {"key_id": "PKALICE12345", "secret_key": "secret-key-1", "paper": 1},
        "paper",
    ),
    (callables.generate_trading_signal, {"symbol": "AAPL", "open_shadow_trade": 1.0}, "open"),
    (admin_callables.admin_set_global_trading, {"enabled": 0}, "enabled"),
]


@pytest.mark.parametrize(
    ("call", "data", "field"), LAX, ids=[f"{c.__name__}-{d}" for c, d, _ in LAX]
)
def test_lax_values_are_refused_and_change_nothing(
    services: Services, alpaca: AlpacaServer, db: firestore.Client, call: Any, data: Any, field: str
) -> None:
    ready_user(services, alpaca, "alice")
    before = data_of(db)
    refused = error_of(call, services, auth("alice", admin=True), data)
    assert refused.code == Code.INVALID_ARGUMENT
    assert refused.message.startswith(label(field))
    assert data_of(db) == before


# -- 3. ids Firestore reserves, documents that do not parse -------------------------------------


@pytest.mark.parametrize("bad", ["__x__", "__name__", "____"])
def test_reserved_ids_are_refused_naming_the_field(
    services: Services, db: firestore.Client, bad: str
) -> None:
    closing = error_of(
        position_callables.close_shadow_trade, services, auth("alice"), {"trade_id": bad}
    )
    assert closing.code == Code.INVALID_ARGUMENT
    assert closing.message.startswith("Trade:")
    ops = auth("ops", admin=True)
    disabling = error_of(admin_callables.admin_disable_user_trading, services, ops, {"uid": bad})
    assert disabling.code == Code.INVALID_ARGUMENT
    assert disabling.message.startswith("User ID:")
    assert data_of(db) == {}


def test_an_unreadable_trade_is_a_precondition_naming_the_document(
    services: Services, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    ready_user(services, alpaca, "alice")
    open_trade(db, "alice", "legacy1", "AAPL", "BUY", "abc", "100")
    before = data_of(db)
    refused = error_of(
        position_callables.close_shadow_trade, services, auth("alice"), {"trade_id": "legacy1"}
    )
    assert refused.code == Code.FAILED_PRECONDITION
    assert "users/alice/shadowTradeHistory/legacy1" in refused.message
    assert "quantity" in refused.message
    assert data_of(db) == before


def test_an_unreadable_snapshot_is_a_precondition_naming_the_document(
    services: Services, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    ready_user(services, alpaca, "alice")
    paths.account_snapshot(db, "alice").update({"buying_power": "lots"})
    refused = error_of(
        callables.generate_trading_signal, services, auth("alice"), {"symbol": "AAPL"}
    )
    assert refused.code == Code.FAILED_PRECONDITION
    assert "users/alice/alpacaAccounts/snapshot" in refused.message
    assert "buying_power" in refused.message


# -- 4. a token that outlives its account ----------------------------------------------------------

AFTER_DELETION = [
    (keys_callables.save_alpaca_keys, {"key_id": "PKALICE00000", "secret_key": "secret-key-1"}),
    (callables.set_trading_enabled, {"enabled": True}),
    (keys_callables.remove_alpaca_keys, {}),
    (callables.generate_trading_signal, {"symbol": "AAPL"}),
    (position_callables.close_shadow_trade, {"trade_id": "t1"}),
    (keys_callables.delete_my_account, {"confirm": True}),
    (admin_callables.admin_get_last_pulse, {}),
]


def test_calls_after_deletion_are_refused_and_bring_nothing_back(
    services: Services, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    ready_user(services, alpaca, "alice")
    ready_user(services, alpaca, "bob")
    keys_callables.delete_my_account(services, auth("alice"), {"confirm": True})
    alice_left = {p for p in all_documents(db) if "alice" in p}
    assert alice_left == {"ops/accounts/deleted/alice"}
    for call, data in AFTER_DELETION:
        assert error_of(call, services, auth("alice", admin=True), data).code == (
            Code.UNAUTHENTICATED
        ), call.__name__
    assert {p for p in all_documents(db) if "alice" in p} == alice_left
    keystore.forget("alice")
    assert keystore.load("alice", None) is None


def test_an_interrupted_deletion_finishes_when_asked_again(
    services: Services, alpaca: AlpacaServer, db: firestore.Client, keystore: KeyStore
) -> None:
    ready_user(services, alpaca, "alice")
    paths.deleted_account(db, "alice").set({"state": "deleting", "requested_at": datetime.now(UTC)})
    refused = error_of(callables.set_trading_enabled, services, auth("alice"), {"enabled": True})
    assert refused.code == Code.UNAUTHENTICATED
    finished = keys_callables.delete_my_account(services, auth("alice"), {"confirm": True})
    assert finished["secret_removed"] is True
    assert {p for p in all_documents(db) if "alice" in p} == {"ops/accounts/deleted/alice"}


# -- the same, over the wire -----------------------------------------------------------------------


def test_over_the_wire_overlap_and_a_dead_token(
    db: firestore.Client, alpaca: AlpacaServer, secrets: Any
) -> None:
    emulators.clear_auth()
    ops = emulators.sign_up("ops@example.com")
    emulators.set_claims(ops.uid, {"admin": True})
    ops = emulators.sign_in(ops)
    with ThreadPoolExecutor(max_workers=OVERLAP) as pool:
        answers = list(
            pool.map(
                lambda _: emulators.call("admin_get_last_pulse", {}, ops.id_token).json(),
                range(OVERLAP),
            )
        )
    statuses = Counter(a["error"]["status"] if "error" in a else "OK" for a in answers)
    assert "INTERNAL" not in statuses
    assert statuses == {"NOT_FOUND": OVERLAP}  # no pulse has run: the honest answer, ten times

    alice = emulators.sign_up("alice@example.com")
    register_alpaca_account(alpaca.url, "PKWIREALICE1", "secret-key-1")
    saved = emulators.call(
        "save_alpaca_keys", {"key_id": "PKWIREALICE1", "secret_key": "secret-key-1"}, alice.id_token
    ).json()
    assert "result" in saved, saved
    deleted = emulators.call("delete_my_account", {"confirm": True}, alice.id_token).json()
    assert deleted["result"]["deleted"] is True
    for name, data in (
        ("save_alpaca_keys", {"key_id": "PKWIREALICE1", "secret_key": "secret-key-1"}),
        ("set_trading_enabled", {"enabled": True}),
    ):
        answer = emulators.call(name, data, alice.id_token).json()
        assert answer["error"]["status"] == "UNAUTHENTICATED", answer
    assert {p for p in all_documents(db) if alice.uid in p} == {f"ops/accounts/deleted/{alice.uid}"}
