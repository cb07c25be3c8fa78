"""Talk to the Firebase emulators over REST, as a web client would.

The Python server clients always act as the project owner and bypass security rules, so
anything that must go through the rules (a signed-in person reading their data) goes through
these helpers with that person's ID token.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from typing import Any

import requests

_SESSION = requests.Session()


def project() -> str:
    return os.environ.get("GCLOUD_PROJECT", "demo-agenttrader")


def _host(variable: str) -> str:
    host = os.environ.get(variable)
    if not host:
        raise RuntimeError(
            f"{variable} is not set: run this under `firebase emulators:exec` (see README.md)"
        )
    return f"http://{host}"


def firestore_url() -> str:
    return _host("FIRESTORE_EMULATOR_HOST")


def auth_url() -> str:
    return _host("FIREBASE_AUTH_EMULATOR_HOST")


def functions_url() -> str:
    return f"http://{os.environ.get('FUNCTIONS_EMULATOR_HOST', '127.0.0.1:5001')}"


def clear_firestore(database: str = "(default)") -> None:
    url = f"{firestore_url()}/emulator/v1/projects/{project()}/databases/{database}/documents"
    _SESSION.delete(url, timeout=30).raise_for_status()


QUIET_DATABASE = "quiet"
"""A second database in the Firestore emulator: the Functions emulator's Firestore triggers
watch only `(default)`, so a test or the bench that plays a trigger's part itself works here."""


def clear_auth() -> None:
    _SESSION.delete(
        f"{auth_url()}/emulator/v1/projects/{project()}/accounts", timeout=30
    ).raise_for_status()


@dataclass(frozen=True)
class Person:
    """A signed-up account in the Auth emulator and its current ID token."""

    uid: str
    email: str
    password: str
    id_token: str


def sign_up(email: str, password: str = "correct-horse-battery") -> Person:
    url = f"{auth_url()}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=local"
    answer = _SESSION.post(
        url, json={"email": email, "password": password, "returnSecureToken": True}, timeout=30
    )
    answer.raise_for_status()
    body = answer.json()
    return Person(body["localId"], email, password, body["idToken"])


def sign_in(person: Person) -> Person:
    """A fresh ID token (after custom claims change)."""
    url = f"{auth_url()}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=local"
    answer = _SESSION.post(
        url,
        json={"email": person.email, "password": person.password, "returnSecureToken": True},
        timeout=30,
    )
    answer.raise_for_status()
    return Person(person.uid, person.email, person.password, answer.json()["idToken"])


def set_claims(uid: str, claims: dict[str, Any]) -> None:
    url = f"{auth_url()}/identitytoolkit.googleapis.com/v1/projects/{project()}/accounts:update"
    answer = _SESSION.post(
        url,
        json={"localId": uid, "customAttributes": json.dumps(claims)},
        headers={"Authorization": "Bearer owner"},
        timeout=30,
    )
    answer.raise_for_status()


def confirm_email(uid: str) -> None:
    """Mark the person's email confirmed, as following the confirmation link does."""
    url = f"{auth_url()}/identitytoolkit.googleapis.com/v1/projects/{project()}/accounts:update"
    answer = _SESSION.post(
        url,
        json={"localId": uid, "emailVerified": True},
        headers={"Authorization": "Bearer owner"},
        timeout=30,
    )
    answer.raise_for_status()


def unsigned_token(uid: str, **claims: Any) -> str:
    """An ID token the emulators accept for `uid` (alg none), for rules tests."""
    now = int(time.time())
    payload = {
        "iss": f"https://securetoken.google.com/{project()}",
        "aud": project(),
        "iat": now,
        "exp": now + 3600,
        "auth_time": now,
        "sub": uid,
        "user_id": uid,
        "firebase": {"sign_in_provider": "password", "identities": {}},
        **claims,
    }

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


# -- Firestore through the rules ---------------------------------------------------------------


def _value(value: Any) -> dict[str, Any]:
    if value is None:
        return {"nullValue": None}
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        return {"integerValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, dict):
        return {"mapValue": {"fields": {k: _value(v) for k, v in value.items()}}}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_value(v) for v in value]}}
    raise TypeError(f"cannot encode {type(value).__name__}")


class FirestoreAs:
    """Firestore's REST API under the security rules, as whoever `token` says."""

    def __init__(self, token: str | None) -> None:
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._base = f"{firestore_url()}/v1/projects/{project()}/databases/(default)/documents"

    def get(self, path: str) -> requests.Response:
        return _SESSION.get(f"{self._base}/{path}", headers=self._headers, timeout=30)

    def list(self, collection: str) -> requests.Response:
        return _SESSION.get(f"{self._base}/{collection}", headers=self._headers, timeout=30)

    def write(
        self,
        path: str,
        fields: dict[str, Any],
        *,
        server_time: tuple[str, ...] = (),
        exists: bool | None = None,
        merge: bool = True,
    ) -> requests.Response:
        """One commit that writes `fields` to `path` (merged unless `merge` is False), puts the
        request time in `server_time` fields, and requires the document to exist or not."""
        name = f"projects/{project()}/databases/(default)/documents/{path}"
        write: dict[str, Any] = {
            "update": {"name": name, "fields": {k: _value(v) for k, v in fields.items()}},
        }
        if merge:
            write["updateMask"] = {"fieldPaths": list(fields)}
        if server_time:
            write["updateTransforms"] = [
                {"fieldPath": f, "setToServerValue": "REQUEST_TIME"} for f in server_time
            ]
        if exists is not None:
            write["currentDocument"] = {"exists": exists}
        return _SESSION.post(
            f"{self._base}:commit", json={"writes": [write]}, headers=self._headers, timeout=30
        )

    def query_group(self, collection_id: str) -> requests.Response:
        """A collection-group query across every user."""
        body = {
            "structuredQuery": {"from": [{"collectionId": collection_id, "allDescendants": True}]}
        }
        return _SESSION.post(f"{self._base}:runQuery", json=body, headers=self._headers, timeout=30)

    def delete(self, path: str) -> requests.Response:
        return _SESSION.delete(f"{self._base}/{path}", headers=self._headers, timeout=30)


# -- Callable functions ------------------------------------------------------------------------


def call(function: str, data: Any, token: str | None = None) -> requests.Response:
    """POST a callable through the Functions emulator, with an ID token if given."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    url = f"{functions_url()}/{project()}/us-central1/{function}"
    return _SESSION.post(url, json={"data": data}, headers=headers, timeout=120)


def run_scheduled(function: str) -> requests.Response:
    """Run a scheduled function once through the Functions emulator."""
    url = f"{functions_url()}/functions/projects/{project()}/triggers/us-central1-{function}-0"
    return _SESSION.post(url, json={}, timeout=300)
