"""App Check on the deployed callables: each request goes through the real Cloud Functions
wrapper `main.py` declares (the SDK's token checks, then the product's) with a real emulator ID
token. App Check has no emulator, so its one outside part, Google's key set
(`firebaseappcheck.googleapis.com/v1/jwks`), is served locally with a key made here; the
Admin SDK verifies every token against it exactly as it would against Google's."""

from __future__ import annotations

import importlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

import firebase_admin
import flask
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from firebase_admin import app_check, credentials
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from jwt.algorithms import RSAAlgorithm

from agenttrader import runtime
from agenttrader.api.guard import Services
from agenttrader.store import paths
from localdev import emulators

PROJECT_NUMBER = "123456789012"
WEB_APP = f"1:{PROJECT_NUMBER}:web:0a1b2c3d4e5f"


class _NoCredentials(credentials.Base):
    """The Admin SDK's credential for a test process without Google credentials: the
    emulators and the local key set need none."""

    def get_credential(self) -> AnonymousCredentials:
        return AnonymousCredentials()


class KeySet:
    """App Check's public key set, as Google serves it, for a key made here."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        body = json.dumps({"keys": [{**jwk, "kid": "local-1", "alg": "RS256", "use": "sig"}]})

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/jwks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(
        self,
        project: str,
        key: rsa.RSAPrivateKey | None = None,
        expires_in_s: int = 3600,
    ) -> str:
        """An App Check token as App Check mints one for the web app of `project`."""
        now = int(time.time())
        claims = {
            "iss": f"https://firebaseappcheck.googleapis.com/{PROJECT_NUMBER}",
            "sub": WEB_APP,
            "aud": [f"projects/{PROJECT_NUMBER}", f"projects/{project}"],
            "iat": now - 60,
            "exp": now + expires_in_s,
        }
        headers = {"kid": "local-1", "typ": "JWT"}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers=headers)


@pytest.fixture
def keyset() -> Iterator[KeySet]:
    keys = KeySet()
    yield keys
    keys.server.shutdown()


@pytest.fixture
def deployed(
    monkeypatch: pytest.MonkeyPatch, services: Services, keyset: KeySet
) -> Iterator[ModuleType]:
    """`main` as Cloud Functions loads it, on a default Admin SDK app whose App Check verifier
    fetches the key set above, with the test's services behind every callable."""
    previous = firebase_admin._apps.get("[DEFAULT]")
    if previous is not None:
        firebase_admin.delete_app(previous)
    monkeypatch.setattr(app_check._AppCheckService, "_JWKS_URL", keyset.url)
    app = firebase_admin.initialize_app(_NoCredentials(), {"projectId": emulators.project()})
    with monkeypatch.context() as loading:
        loading.setattr(firebase_admin, "initialize_app", lambda *a, **k: app)
        main = importlib.import_module("main")
    monkeypatch.setattr(runtime, "services", lambda: services)
    yield main
    firebase_admin.delete_app(app)
    if previous is not None:
        firebase_admin.initialize_app(previous.credential, {"projectId": previous.project_id})


def post(main: ModuleType, name: str, data: dict[str, Any], **headers: str) -> tuple[int, Any]:
    """One callable request through the function `main` declares: status and JSON body."""
    context = flask.Flask("callable").test_request_context(
        "/", method="POST", json={"data": data}, headers=headers
    )
    with context:
        answer = getattr(main, name)(flask.request)
    return answer.status_code, answer.get_json()


def signed_in(email: str) -> tuple[str, dict[str, str]]:
    person = emulators.sign_up(email)
    return person.uid, {"Authorization": f"Bearer {person.id_token}"}


def test_a_call_without_an_app_check_token_is_refused_and_changes_nothing(
    deployed: ModuleType, db: firestore.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENFORCE_APP_CHECK", raising=False)  # on unless switched off
    emulators.clear_auth()
    uid, token = signed_in("script@example.com")
    status, body = post(deployed, "set_trading_enabled", {"enabled": True}, **token)
    assert status == 401
    assert body["error"]["status"] == "UNAUTHENTICATED"
    assert "App Check" in body["error"]["message"]
    assert not paths.trading_status(db, uid).get().exists
    assert list(paths.rate_limits(db, uid).stream()) == []


@pytest.mark.parametrize("forged", ["another key", "another project", "expired", "garbage"])
def test_a_token_app_check_did_not_issue_for_this_project_is_refused(
    deployed: ModuleType, db: firestore.Client, keyset: KeySet, forged: str
) -> None:
    emulators.clear_auth()
    uid, token = signed_in("forger@example.com")
    project = emulators.project()
    app_token = {
        "another key": lambda: keyset.token(
            project, rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ),
        "another project": lambda: keyset.token("someone-elses-project"),
        "expired": lambda: keyset.token(project, expires_in_s=-120),
        "garbage": lambda: "not.a.token",
    }[forged]()
    status, body = post(
        deployed,
        "set_trading_enabled",
        {"enabled": True},
        **token,
        **{"X-Firebase-AppCheck": app_token},
    )
    assert (status, body["error"]["status"]) == (401, "UNAUTHENTICATED")
    assert "App Check" in body["error"]["message"]
    assert not paths.trading_status(db, uid).get().exists


def test_a_call_from_the_page_with_its_app_check_token_goes_through(
    deployed: ModuleType, db: firestore.Client, keyset: KeySet
) -> None:
    emulators.clear_auth()
    uid, token = signed_in("page@example.com")
    app_token = keyset.token(emulators.project())
    status, body = post(
        deployed,
        "set_trading_enabled",
        {"enabled": True},
        **token,
        **{"X-Firebase-AppCheck": app_token},
    )
    assert (status, body) == (200, {"result": {"enabled": True}})
    assert (paths.trading_status(db, uid).get().to_dict() or {})["enabled"] is True
    # App Check proves the page, not the person: a valid App Check token without sign-in
    status, body = post(
        deployed, "set_trading_enabled", {"enabled": True}, **{"X-Firebase-AppCheck": app_token}
    )
    assert (status, body["error"]["status"]) == (401, "UNAUTHENTICATED")
    assert "sign in" in body["error"]["message"]


def test_an_operator_can_switch_app_check_off(
    deployed: ModuleType, db: firestore.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENFORCE_APP_CHECK", "false")
    emulators.clear_auth()
    uid, token = signed_in("off@example.com")
    status, body = post(deployed, "set_trading_enabled", {"enabled": True}, **token)
    assert (status, body) == (200, {"result": {"enabled": True}})
    assert (paths.trading_status(db, uid).get().to_dict() or {})["enabled"] is True
