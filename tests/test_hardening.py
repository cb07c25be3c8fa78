"""Hardening for a site that holds brokerage credentials: an OAuth exchange that never follows a
redirect and refuses odd answers in words, the smallest scope, states that expire and go with
the account, strategy creates that cannot race past the limit, ASCII-only amounts, one live
secret version, and a deploy that never uploads a `.local` file."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from calling import Code, auth, error_of
from firebase_functions.https_fn import HttpsError
from google.cloud import firestore
from google.cloud.secretmanager_v1 import types
from operator_scripts import ROOT, run_script
from test_alpaca_connect import finish, start

from agenttrader.api import alpaca_connect, keys_callables, strategy_callables
from agenttrader.api.guard import Services, handled
from agenttrader.bot.settings import StrategyDoc
from agenttrader.broker.keystore import AlpacaKeys
from agenttrader.store import paths
from localdev.alpaca_standin import AlpacaServer
from localdev.secret_manager_standin import SecretManagerServer
from localdev.seed import register_alpaca_account

# -- the token endpoint answers oddly --------------------------------------------------------------


class TokenEndpoint:
    """A token endpoint on 127.0.0.1 that answers what the test tells it, and counts what
    reaches it (a second one stands for the host a redirect points to)."""

    def __init__(self) -> None:
        self.status = 200
        self.body: Any = {}
        self.headers: dict[str, str] = {}
        self.received: list[str] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                endpoint.received.append(self.rfile.read(length).decode())
                raw = json.dumps(endpoint.body).encode()
                self.send_response(endpoint.status)
                for key, value in endpoint.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/oauth/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoints() -> Iterator[tuple[TokenEndpoint, TokenEndpoint]]:
    first, elsewhere = TokenEndpoint(), TokenEndpoint()
    yield first, elsewhere
    first.stop()
    elsewhere.stop()


ODD_ANSWERS = [
    ("a JSON array", 200, ["access_token", "x" * 40]),
    ("a 7-character token", 200, {"access_token": "abcdefg", "token_type": "bearer"}),
    ("a 300-character scope", 200, {"access_token": "t" * 40, "scope": "s" * 300}),
    ("not a bearer token", 200, {"access_token": "t" * 40, "token_type": "mac"}),
    ("no JSON at all", 200, "<html>oops</html>"),
]


@pytest.mark.parametrize(("what", "status", "body"), ODD_ANSWERS, ids=[a[0] for a in ODD_ANSWERS])
def test_odd_token_answers_are_refused_in_words_and_store_nothing(
    connecting: Services,
    endpoints: tuple[TokenEndpoint, TokenEndpoint],
    secrets: SecretManagerServer,
    what: str,
    status: int,
    body: Any,
) -> None:
    endpoint, _ = endpoints
    endpoint.status, endpoint.body = status, body
    odd = replace(connecting, oauth=replace(connecting.oauth, token_url=endpoint.url))
    returned = start(odd, "alice")
    error = error_of(alpaca_connect.finish_alpaca_connect, odd, auth("alice"), returned)
    assert error.code == Code.FAILED_PRECONDITION, what
    assert "did not hold a usable token" in error.message
    assert secrets.store.calls["AddSecretVersion"] == 0


def test_a_redirect_from_the_token_endpoint_is_never_followed(
    connecting: Services,
    endpoints: tuple[TokenEndpoint, TokenEndpoint],
    secrets: SecretManagerServer,
) -> None:
    endpoint, elsewhere = endpoints
    endpoint.status, endpoint.headers = 307, {"Location": elsewhere.url}
    odd = replace(connecting, oauth=replace(connecting.oauth, token_url=endpoint.url))
    returned = start(odd, "alice")
    error = error_of(alpaca_connect.finish_alpaca_connect, odd, auth("alice"), returned)
    assert error.code == Code.FAILED_PRECONDITION
    assert "redirect" in error.message
    assert len(endpoint.received) == 1
    assert elsewhere.received == []  # the client secret went nowhere else
    assert secrets.store.calls["AddSecretVersion"] == 0


def test_the_smallest_scope_is_asked_and_what_is_granted_is_kept(
    connecting: Services, db: firestore.Client
) -> None:
    started = alpaca_connect.start_alpaca_connect(connecting, auth("alice"), {"paper": True})
    assert "scope=trading+data" in started["url"] or "scope=trading%20data" in started["url"]
    assert "account" not in started["url"]


def test_pending_states_expire_by_ttl_and_go_with_the_account(
    connecting: Services, db: firestore.Client
) -> None:
    overrides = json.loads((ROOT / "firestore.indexes.json").read_text())["fieldOverrides"]
    assert {"collectionGroup": "states", "fieldPath": "expires_at", "ttl": True} in [
        {k: o.get(k) for k in ("collectionGroup", "fieldPath", "ttl")} for o in overrides
    ]
    alpaca_connect.start_alpaca_connect(connecting, auth("alice"), {"paper": True})
    alpaca_connect.start_alpaca_connect(connecting, auth("bob"), {"paper": True})
    assert len(list(paths.oauth_states(db).stream())) == 2
    keys_callables.delete_my_account(connecting, auth("alice"), {"confirm": True})
    left = [(d.to_dict() or {}).get("uid") for d in paths.oauth_states(db).stream()]
    assert left == ["bob"]


# -- strategies: a count that cannot be raced, amounts in ASCII digits -----------------------------

REQUEST = {"strategy": "momentum_20d", "symbols": ["AAPL"], "allocation_usd": "100"}


@pytest.mark.parametrize("racers", [5, 10, 20])
def test_racing_creates_never_leave_more_than_ten(
    services: Services, db: firestore.Client, racers: int
) -> None:
    who = auth("alice")
    fast = replace(services, platform=replace(services.platform, now=lambda: datetime.now(UTC)))
    for _ in range(8):
        strategy_callables.save_strategy(fast, who, {**REQUEST, "mode": "shadow"})
    db.recursive_delete(paths.rate_limits(db, "alice"))  # a fresh rate-limit window

    def create(_: int) -> str:
        try:
            strategy_callables.save_strategy(fast, who, {**REQUEST, "mode": "shadow"})
            return "created"
        except Exception as error:  # the refusal is the point: counted below
            return type(error).__name__

    with ThreadPoolExecutor(racers) as pool:
        outcomes = list(pool.map(create, range(racers)))
    stored = list(paths.strategies(db, "alice").stream())
    assert len(stored) == 10, outcomes
    assert outcomes.count("created") == 2
    assert (paths.user(db, "alice").get().to_dict() or {})["strategies_count"] == 10


@pytest.mark.parametrize("amount", ["１０００", "١٠٠٠", "1٠0", "²⁰⁰"])
def test_amounts_take_ascii_digits_only(services: Services, amount: str) -> None:
    error = error_of(
        strategy_callables.save_strategy,
        services,
        auth("alice"),
        {**REQUEST, "mode": "shadow", "allocation_usd": amount},
    )
    assert error.code == Code.INVALID_ARGUMENT
    assert error.message.startswith("Allocation per position (USD): use an amount in dollars")


def test_amounts_are_stored_normalised(services: Services, db: firestore.Client) -> None:
    saved = strategy_callables.save_strategy(
        services,
        auth("alice"),
        {**REQUEST, "mode": "shadow", "allocation_usd": "0100", "take_profit_pct": "05.50"},
    )
    doc = paths.strategies(db, "alice").document(saved["id"]).get().to_dict() or {}
    assert (doc["allocation_usd"], doc["take_profit_pct"]) == ("100", "5.50")
    assert StrategyDoc.model_validate(doc).allocation_usd == 100


# -- one live secret version ----------------------------------------------------------------------


def test_five_key_saves_leave_one_enabled_version(
    services: Services, alpaca: AlpacaServer, secrets: SecretManagerServer
) -> None:
    for n in range(5):
        key_id = f"PKVERSION{n:03d}"
        register_alpaca_account(alpaca.url, key_id, "version-secret-1")
        keys_callables.save_alpaca_keys(
            services, auth("alice"), {"key_id": key_id, "secret_key": "version-secret-1"}
        )
    name = services.platform.keys.secret_name("alice")
    listed = secrets.store.list_secret_versions(types.ListSecretVersionsRequest(parent=name))
    states = {v.name.rsplit("/", 1)[1]: v.state.name for v in listed.versions}
    assert states == {"5": "ENABLED", "4": "DESTROYED", "3": "DESTROYED", "2": "DESTROYED",
                      "1": "DESTROYED"}  # fmt: skip
    services.platform.keys.forget("alice")
    loaded = services.platform.keys.load("alice", None)
    assert loaded is not None and loaded.key_id == "PKVERSION004"


def test_a_late_retire_of_an_overlapping_save_never_destroys_the_newer_version(
    services: Services, secrets: SecretManagerServer
) -> None:
    """Save A adds version 1, save B adds version 2, then A's retire runs late: version 2, the
    newest, stays enabled and loads."""
    store = services.platform.keys
    first = store.save("alice", AlpacaKeys(key_id="PKSAVEAAAA1", secret_key="version-secret-1"))
    second = store.save("alice", AlpacaKeys(key_id="PKSAVEBBBB1", secret_key="version-secret-1"))
    assert (first, second) == (1, 2)
    name = store.secret_name("alice")
    assert store.retire_older("alice", f"{name}/versions/{first}") == 0  # A's, late
    listed = secrets.store.list_secret_versions(types.ListSecretVersionsRequest(parent=name))
    assert {v.name.rsplit("/", 1)[1]: v.state.name for v in listed.versions} == {
        "1": "DESTROYED",
        "2": "ENABLED",
    }
    store.forget("alice")
    loaded = store.load("alice", None)
    assert loaded is not None and loaded.key_id == "PKSAVEBBBB1"


def test_overlapping_saves_and_a_connection_leave_the_newest_keys_shown_and_loading(
    connecting: Services, alpaca: AlpacaServer, secrets: SecretManagerServer, db: firestore.Client
) -> None:
    for n in range(4):
        register_alpaca_account(alpaca.url, f"PKRACE{n:05d}", "version-secret-1")
    returned = start(connecting, "alice")

    def save(n: int) -> None:
        request = {"key_id": f"PKRACE{n:05d}", "secret_key": "version-secret-1"}
        keys_callables.save_alpaca_keys(connecting, auth("alice"), request)

    with ThreadPoolExecutor(5) as pool:
        done = [pool.submit(save, n) for n in range(4)]
        done.append(pool.submit(finish, connecting, "alice", returned))
        for future in done:
            future.result()
    name = connecting.platform.keys.secret_name("alice")
    listed = secrets.store.list_secret_versions(types.ListSecretVersionsRequest(parent=name))
    states = {int(v.name.rsplit("/", 1)[1]): v.state.name for v in listed.versions}
    assert [n for n, state in states.items() if state == "ENABLED"] == [max(states)]
    connecting.platform.keys.forget("alice")
    loaded = connecting.platform.keys.load("alice", None)
    assert loaded is not None
    profile = paths.user(db, "alice").get().to_dict() or {}
    assert profile["keys_secret_version"] == max(states)
    assert profile["key_id_masked"] == loaded.masked_key_id()  # the page shows what loads


def test_keys_not_taken_by_secret_manager_change_nothing(
    services: Services, alpaca: AlpacaServer, secrets: SecretManagerServer, db: firestore.Client
) -> None:
    """Secret Manager unavailable while a person saves new keys: they are told to try again
    (UNAVAILABLE, in words, never INTERNAL), and the keys in use and the profile stay as
    they were."""
    for key_id in ("PKKEEPTHIS1", "PKNOTTAKEN1"):
        register_alpaca_account(alpaca.url, key_id, "version-secret-1")
    saved = {"key_id": "PKKEEPTHIS1", "secret_key": "version-secret-1"}
    keys_callables.save_alpaca_keys(services, auth("alice"), saved)
    profile = paths.user(db, "alice").get().to_dict()
    name = services.platform.keys.secret_name("alice")
    secrets.store.failing[name] = grpc.StatusCode.UNAVAILABLE
    new = {"key_id": "PKNOTTAKEN1", "secret_key": "version-secret-1"}
    with pytest.raises(HttpsError) as raised:  # as the deployed callable answers
        handled(
            "save_alpaca_keys",
            lambda: keys_callables.save_alpaca_keys(services, auth("alice"), new),
        )
    assert raised.value.code == Code.UNAVAILABLE
    assert (
        raised.value.message
        == "your keys could not be stored right now; nothing changed; try again"
    )
    assert raised.value.details == {"reason": "SECRET_UNAVAILABLE"}
    assert paths.user(db, "alice").get().to_dict() == profile
    secrets.store.failing.clear()
    services.platform.keys.forget("alice")
    loaded = services.platform.keys.load("alice", None)
    assert loaded is not None and loaded.key_id == "PKKEEPTHIS1"


# -- the deploy never uploads a .local file --------------------------------------------------------


def test_the_preflight_refuses_a_deploy_that_would_upload_a_local_file(tmp_path: Path) -> None:
    config = json.loads((ROOT / "firebase.json").read_text())
    assert "*.local" in config["functions"][0]["ignore"]
    config["functions"][0]["ignore"].remove("*.local")
    loose = tmp_path / "firebase.json"
    loose.write_text(json.dumps(config))
    local = ROOT / "functions" / "preflight-probe.local"
    local.write_text("NOT_FOR_THE_CLOUD=1\n")
    try:
        refused = run_script(
            "preflight.py", "--project", "agenttrader-preflight", "--firebase-json", str(loose)
        )
    finally:
        local.unlink()
    assert refused.returncode != 0
    assert "preflight: functions: functions/preflight-probe.local would be uploaded" in (
        refused.stdout
    )
