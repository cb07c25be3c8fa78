"""End to end as a web client: the Auth emulator for sign-in, callables through the Functions
emulator, and Firestore reads under the security rules with the person's own ID token."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from firestore_state import all_documents
from google.cloud import firestore

from agenttrader.bot.settings import DEFAULT_LIMITS
from agenttrader.broker.keystore import KeyStore
from agenttrader.store import paths
from localdev import emulators
from localdev.alpaca_standin import AlpacaServer
from localdev.secret_manager_standin import SecretManagerServer
from localdev.seed import register_alpaca_account


def call(name: str, data: Any, person: emulators.Person | None) -> dict[str, Any]:
    answer = emulators.call(name, data, person.id_token if person else None)
    body: dict[str, Any] = answer.json()
    return body


def result(name: str, data: Any, person: emulators.Person) -> Any:
    body = call(name, data, person)
    assert "result" in body, body
    return body["result"]


def error(name: str, data: Any, person: emulators.Person | None) -> tuple[str, str]:
    body = call(name, data, person)
    assert "error" in body, body
    return body["error"]["status"], body["error"]["message"]


@pytest.fixture
def people(
    db: firestore.Client, alpaca: AlpacaServer, secrets: SecretManagerServer
) -> dict[str, emulators.Person]:
    emulators.clear_auth()
    found = {}
    for name in ("alice", "bob"):
        person = emulators.sign_up(f"{name}@example.com")
        keys = register_alpaca_account(alpaca.url, f"PKWEB{name.upper():0<7}", f"web-secret-{name}")
        saved = result(
            "save_alpaca_keys",
            {"key_id": keys.key_id, "secret_key": f"web-secret-{name}", "paper": True},
            person,
        )
        assert saved["key_id"].startswith("PKWE") and "*" in saved["key_id"]
        result("set_trading_enabled", {"enabled": True}, person)
        found[name] = person
    assert emulators.run_scheduled("pulse").status_code == 200
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        refs = [paths.account_snapshot(db, p.uid) for p in found.values()]
        if all(doc.exists for doc in db.get_all(refs)):
            break
        time.sleep(0.5)
    return found


def test_no_token_is_unauthenticated_on_the_wire() -> None:
    for name in (
        "generate_trading_signal",
        "save_alpaca_keys",
        "delete_my_account",
        "admin_get_last_pulse",
    ):
        status, _ = error(name, {}, None)
        assert status == "UNAUTHENTICATED"
    bad_token = requests.post(
        f"{emulators.functions_url()}/{emulators.project()}/us-central1/set_trading_enabled",
        json={"data": {"enabled": True}},
        headers={"Authorization": "Bearer not-a-token"},
        timeout=60,
    )
    assert bad_token.json()["error"]["status"] == "UNAUTHENTICATED"


def test_two_people_each_see_only_their_own(
    people: dict[str, emulators.Person], db: firestore.Client
) -> None:
    alice, bob = people["alice"], people["bob"]
    signal = result("generate_trading_signal", {"symbol": "AAPL"}, alice)
    assert signal["symbol"] == "AAPL"
    result("generate_trading_signal", {"symbol": "MSFT"}, bob)

    as_alice = emulators.FirestoreAs(alice.id_token)
    as_bob = emulators.FirestoreAs(bob.id_token)
    own = as_alice.get(f"users/{alice.uid}/signals/{signal['id']}")
    assert own.status_code == 200
    assert own.json()["fields"]["symbol"]["stringValue"] == "AAPL"
    assert as_alice.list(f"users/{alice.uid}/signals").status_code == 200
    assert as_alice.get(f"users/{alice.uid}/alpacaAccounts/snapshot").status_code == 200
    assert as_bob.get(f"users/{alice.uid}/signals/{signal['id']}").status_code == 403
    assert as_bob.list(f"users/{alice.uid}/signals").status_code == 403
    assert as_bob.get(f"users/{alice.uid}/alpacaAccounts/snapshot").status_code == 403
    assert as_bob.get(f"users/{alice.uid}/audit/x").status_code == 403
    hijack = as_bob.write(
        f"users/{alice.uid}/status/trading", {"enabled": False}, server_time=("updated_at",)
    )
    assert hijack.status_code == 403
    assert (paths.trading_status(db, alice.uid).get().to_dict() or {})["enabled"] is True
    # nobody reads keys back: not through Firestore, not through a callable's answer
    assert "web-secret" not in repr([d.to_dict() for d in paths.audit(db, alice.uid).stream()])


BAD = [  # (callable, data, the field the refusal names for a program; None: the whole request)
    ("generate_trading_signal", {}, "symbol"),
    ("generate_trading_signal", {"symbol": ["AAPL"]}, "symbol"),
    ("generate_trading_signal", {"symbol": "../bob"}, "symbol"),
    ("generate_trading_signal", {"symbol": "ＡＡＰＬ"}, "symbol"),
    ("generate_trading_signal", {"symbol": "AAPL", "open_shadow_trade": 1}, "open_shadow_trade"),
    ("generate_trading_signal", {"symbol": "AAPL", "x": "y" * 20_000}, None),
    ("set_trading_enabled", {"enabled": "NaN"}, "enabled"),
    ("set_trading_enabled", {"enabled": None}, "enabled"),
    ("close_shadow_trade", {"trade_id": "../../../ops/trading"}, "trade_id"),
    ("close_shadow_trade", {"trade_id": -1}, "trade_id"),
    ("save_alpaca_keys", {"key_id": "PKWEBALICE", "secret_key": -1.5}, "secret_key"),
    ("delete_my_account", {"confirm": "yes"}, "confirm"),
    (
        "save_strategy",
        {"strategy": "momentum_20d", "symbols": ["AAPL"], "mode": "shadow"},
        "allocation_usd",
    ),
    (
        "save_strategy",
        {"strategy": "x", "symbols": ["AAPL"], "allocation_usd": "1", "mode": "shadow"},
        "strategy",
    ),
    ("set_strategy_status", {"id": "s1", "status": "running"}, "status"),
    ("delete_strategy", {"id": "__s__"}, "id"),
    ("save_risk_limits", {"max_position_usd": "1"}, "max_daily_loss_usd"),
]


def test_bad_input_on_the_wire_changes_nothing(
    people: dict[str, emulators.Person], db: firestore.Client, secrets: SecretManagerServer
) -> None:
    alice = people["alice"]

    def state() -> dict[str, Any]:
        docs: dict[str, Any] = {}
        for collection in paths.user(db, alice.uid).collections():
            for doc in collection.stream():
                docs[doc.reference.path] = doc.to_dict()
        docs["user"] = paths.user(db, alice.uid).get().to_dict()
        return docs

    before = state()
    secret_calls = dict(secrets.store.calls)
    for name, data, field in BAD:
        refused = call(name, data, alice)["error"]
        assert refused["status"] == "INVALID_ARGUMENT", (name, data, refused)
        assert (refused.get("details") or {}).get("field") == field, (name, data, refused)
    assert state() == before
    writes = {"CreateSecret", "AddSecretVersion", "DeleteSecret"}
    assert {k: v for k, v in secrets.store.calls.items() if k in writes} == {
        k: v for k, v in secret_calls.items() if k in writes
    }


def test_delete_my_account_through_the_emulators(
    people: dict[str, emulators.Person], db: firestore.Client
) -> None:
    alice, bob = people["alice"], people["bob"]
    deleted = result("delete_my_account", {"confirm": True}, alice)
    assert deleted["secret_removed"] is True
    assert not paths.user(db, alice.uid).get().exists
    assert list(paths.user(db, alice.uid).collections()) == []
    with pytest.raises(requests.HTTPError):
        emulators.sign_in(alice)
    assert paths.account_snapshot(db, bob.uid).get().exists


def test_admin_claim_through_the_auth_emulator(people: dict[str, emulators.Person]) -> None:
    alice = people["alice"]
    status, _ = error("admin_get_last_pulse", {}, alice)
    assert status == "PERMISSION_DENIED"
    emulators.set_claims(alice.uid, {"admin": True})
    admin = emulators.sign_in(alice)
    summary = result("admin_get_last_pulse", {}, admin)
    assert summary["users_total"] == 2
    assert emulators.FirestoreAs(admin.id_token).get("ops/last_pulse").status_code == 200


def test_a_strategy_and_risk_limits_through_the_emulators(
    people: dict[str, emulators.Person], db: firestore.Client
) -> None:
    alice, bob = people["alice"], people["bob"]
    request = {"strategy": "momentum_20d", "symbols": ["AAPL", "MSFT"], "allocation_usd": "500"}
    saved = result("save_strategy", {**request, "mode": "paper"}, alice)
    assert saved["status"] == "paused"
    assert result("set_strategy_status", {"id": saved["id"], "status": "active"}, alice) == {
        "id": saved["id"],
        "status": "active",
    }
    assert error("set_strategy_status", {"id": saved["id"], "status": "paused"}, bob)[0] == (
        "NOT_FOUND"
    )
    limits = {
        "max_position_usd": "400",
        "max_daily_loss_usd": "100",
        "max_drawdown_pct": "5",
        "max_trades_per_day": 3,
    }
    assert result("save_risk_limits", limits, alice) == limits
    body = call("save_strategy", {**request, "mode": "shadow"}, alice)
    assert body["error"]["status"] == "FAILED_PRECONDITION"
    assert body["error"]["message"] == (
        "Allocation per position (USD): $500 is over your Max position (USD) of $400 (Risk limits)"
    )
    assert body["error"]["details"] == {"field": "allocation_usd"}  # for a program
    stored = paths.strategies(db, alice.uid).document(saved["id"]).get().to_dict() or {}
    assert (stored["status"], stored["mode"], stored["symbols"]) == (
        "active",
        "paper",
        ["AAPL", "MSFT"],
    )


def test_the_page_shows_the_products_default_risk_limits() -> None:
    source = (Path(__file__).resolve().parents[1] / "web" / "src" / "strategies.js").read_text()
    block = re.search(r"DEFAULT_LIMITS = \{(.*?)\};", source, re.S)
    assert block is not None
    shown = dict(re.findall(r'(\w+): "?([\d.]+)"?', block.group(1)))
    assert shown == {k: str(v) for k, v in DEFAULT_LIMITS.document().items()}


def test_connect_with_alpaca_through_the_emulators(
    people: dict[str, emulators.Person], db: firestore.Client, keystore: KeyStore
) -> None:
    """The whole flow: the callables through the Functions emulator (its client secret from
    functions/.secret.local), Alpaca's page and token endpoint at the stand-in."""
    from test_alpaca_connect import approve

    carol = emulators.sign_up("carol-connect@example.com")
    started = result("start_alpaca_connect", {"paper": True}, carol)
    returned = approve(started["url"])
    finished = result("finish_alpaca_connect", returned, carol)
    assert finished["connected"] is True
    assert (finished["paper"], finished["keys_version"]) == (True, 1)
    profile = paths.user(db, carol.uid).get().to_dict() or {}
    assert profile["key_id_masked"] == "connected with Alpaca"
    status, message = error("finish_alpaca_connect", returned, carol)
    assert status == "FAILED_PRECONDITION"
    assert "already used" in message
    mallory = people["bob"]
    other = approve(result("start_alpaca_connect", {}, carol)["url"])
    assert error("finish_alpaca_connect", other, mallory)[0] == "PERMISSION_DENIED"
    keys = keystore.load(carol.uid, None)
    assert keys is not None and keys.oauth_token is not None
    token = keys.oauth_token.get_secret_value()
    assert token not in json.dumps(all_documents(db), default=str)
    assert token not in json.dumps(finished)
