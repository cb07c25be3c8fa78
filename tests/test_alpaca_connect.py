"""Connect with Alpaca on the emulators: the OAuth flow against the Alpaca stand-in's authorize
page and token endpoint, each refusal, and the token kept out of every answer, log and document."""

from __future__ import annotations

import hashlib
import html
import json
import re
import socket
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from calling import Code, auth, error_of
from firestore_state import all_documents
from google.cloud import firestore
from oauth_app import REDIRECT

from agenttrader.api import alpaca_connect, callables, keys_callables
from agenttrader.api.guard import Services
from agenttrader.api.revocation import NotYet, pending_secret, run_revocation
from agenttrader.broker.keystore import KeyStore
from agenttrader.pulse.run import run_pulse
from agenttrader.store import paths
from localdev.alpaca_standin import AlpacaServer
from localdev.seed import register_alpaca_account


def approve(url: str) -> dict[str, str]:
    """What the person's browser does on Alpaca's page: open it, press Approve, follow back."""
    page = requests.get(url, timeout=5)
    assert page.status_code == 200
    assert "Approve" in page.text
    fields = {
        name: html.unescape(value)
        for name, value in re.findall(r'name="([^"]+)" value="([^"]*)"', page.text)
    }
    form_url = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}/oauth/authorize"
    answer = requests.post(form_url, data=fields, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    back = urlsplit(answer.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == REDIRECT
    return {k: v[0] for k, v in parse_qs(back.query).items()}


def start(services: Services, uid: str, paper: bool = True) -> dict[str, str]:
    started = alpaca_connect.start_alpaca_connect(services, auth(uid), {"paper": paper})
    assert started["expires_in_s"] == 600
    return approve(started["url"])


def finish(services: Services, uid: str, returned: dict[str, str]) -> dict[str, Any]:
    return alpaca_connect.finish_alpaca_connect(services, auth(uid), returned)


def stored_for(db: firestore.Client, keystore: KeyStore, uid: str) -> tuple[Any, Any]:
    return paths.user(db, uid).get().to_dict(), keystore.load(uid, None)


def test_a_person_connects_and_the_pulse_uses_the_token(
    connecting: Services, db: firestore.Client, keystore: KeyStore, capsys: Any
) -> None:
    returned = start(connecting, "alice")
    result = finish(connecting, "alice", returned)
    assert result == {
        "connected": True,
        "key_id": "connected with Alpaca",
        "paper": True,
        "keys_version": 1,
        "trades_in_other_account": [],
        "replaced_connection_revoked": None,
    }
    keys = keystore.load("alice", 1)
    assert keys is not None and keys.is_oauth and keys.paper
    assert keys.scope == "trading data"
    token = keys.oauth_token.get_secret_value() if keys.oauth_token else ""
    assert json.loads(keys.payload()) == {
        "oauth_token": token,
        "paper": True,
        "scope": "trading data",
    }
    profile = paths.user(db, "alice").get().to_dict() or {}
    assert profile["key_id_masked"] == "connected with Alpaca"
    assert profile["keys_version"] == 1
    audit = [d.to_dict() or {} for d in paths.audit(db, "alice").stream()]
    assert [a["action"] for a in audit] == ["keys_saved"]

    callables.set_trading_enabled(connecting, auth("alice"), {"enabled": True})
    assert run_pulse(connecting.platform).counts["synced"] == 1
    assert paths.account_snapshot(db, "alice").get().exists
    signal = callables.generate_trading_signal(connecting, auth("alice"), {"symbol": "AAPL"})
    assert signal["action"] in ("BUY", "SELL", "HOLD")

    assert token not in json.dumps(result)
    assert token not in json.dumps(all_documents(db), default=str)
    assert token not in capsys.readouterr().out
    # the state is kept only as its hash, and is used up
    assert list(db.collection("ops").document("oauth").collection("states").stream()) == []


def test_a_revoked_token_is_alpaca_unauthorized_like_bad_keys(
    connecting: Services, db: firestore.Client, keystore: KeyStore, alpaca: AlpacaServer
) -> None:
    finish(connecting, "alice", start(connecting, "alice"))
    callables.set_trading_enabled(connecting, auth("alice"), {"enabled": True})
    keys = keystore.load("alice", 1)
    assert keys is not None and keys.oauth_token is not None
    requests.post(
        f"{alpaca.url}/_standin/revoke",
        json={"token": keys.oauth_token.get_secret_value()},
        timeout=5,
    )
    summary = run_pulse(connecting.platform)
    assert summary.errors["ALPACA_UNAUTHORIZED"] == 1
    error = paths.last_sync_error(db, "alice").get().to_dict() or {}
    assert error["code"] == "ALPACA_UNAUTHORIZED"


def test_only_the_hash_of_a_pending_state_is_stored(
    connecting: Services, db: firestore.Client
) -> None:
    started = alpaca_connect.start_alpaca_connect(connecting, auth("alice"), {})
    state = parse_qs(urlsplit(started["url"]).query)["state"][0]
    docs = {k: v for k, v in all_documents(db).items() if not k.startswith("ops/rate_limits/")}
    assert list(docs) == [f"ops/oauth/states/{hashlib.sha256(state.encode()).hexdigest()}"]
    assert state not in json.dumps(docs, default=str)


def _nothing_stored(db: firestore.Client, keystore: KeyStore, uid: str) -> None:
    assert not paths.user(db, uid).get().exists
    assert keystore.load(uid, None) is None


def test_a_replayed_state_is_refused(
    connecting: Services, db: firestore.Client, keystore: KeyStore
) -> None:
    returned = start(connecting, "alice")
    finish(connecting, "alice", returned)
    again = approve(
        alpaca_connect.start_alpaca_connect(connecting, auth("alice"), {})["url"]
    )  # a fresh code, the old state
    error = error_of(
        alpaca_connect.finish_alpaca_connect,
        connecting,
        auth("alice"),
        {"code": again["code"], "state": returned["state"]},
    )
    assert error.code == Code.FAILED_PRECONDITION
    assert "already used" in error.message
    assert (paths.user(db, "alice").get().to_dict() or {})["keys_version"] == 1


def test_a_state_from_another_person_is_refused_and_stays_theirs(
    connecting: Services, db: firestore.Client, keystore: KeyStore
) -> None:
    returned = start(connecting, "alice")
    error = error_of(alpaca_connect.finish_alpaca_connect, connecting, auth("mallory"), returned)
    assert error.code == Code.PERMISSION_DENIED
    assert "someone else" in error.message
    _nothing_stored(db, keystore, "mallory")
    assert finish(connecting, "alice", returned)["connected"] is True


def test_an_expired_state_is_refused(
    connecting: Services, db: firestore.Client, keystore: KeyStore
) -> None:
    returned = start(connecting, "alice")
    later = connecting.platform.now() + timedelta(minutes=10, seconds=1)
    late = replace(connecting, platform=replace(connecting.platform, now=lambda: later))
    error = error_of(alpaca_connect.finish_alpaca_connect, late, auth("alice"), returned)
    assert error.code == Code.FAILED_PRECONDITION
    assert "expired" in error.message
    _nothing_stored(db, keystore, "alice")


def test_a_reused_code_is_refused(
    connecting: Services, db: firestore.Client, keystore: KeyStore
) -> None:
    returned = start(connecting, "alice")
    finish(connecting, "alice", returned)
    started = alpaca_connect.start_alpaca_connect(connecting, auth("bob"), {})
    state = parse_qs(urlsplit(started["url"]).query)["state"][0]
    error = error_of(
        alpaca_connect.finish_alpaca_connect,
        connecting,
        auth("bob"),
        {"code": returned["code"], "state": state},
    )
    assert error.code == Code.FAILED_PRECONDITION
    assert "code is unknown or was used" in error.message
    _nothing_stored(db, keystore, "bob")


def test_a_wrong_redirect_url_is_refused(
    connecting: Services, db: firestore.Client, keystore: KeyStore
) -> None:
    returned = start(connecting, "alice")
    assert connecting.oauth is not None
    elsewhere = replace(
        connecting, oauth=replace(connecting.oauth, redirect_url="https://evil.example/")
    )
    error = error_of(alpaca_connect.finish_alpaca_connect, elsewhere, auth("alice"), returned)
    assert error.code == Code.FAILED_PRECONDITION
    assert "redirect_uri does not match" in error.message
    _nothing_stored(db, keystore, "alice")


def test_a_wrong_client_secret_is_refused(
    connecting: Services, db: firestore.Client, keystore: KeyStore
) -> None:
    returned = start(connecting, "alice")
    assert connecting.oauth is not None
    wrong = replace(connecting, oauth=replace(connecting.oauth, client_secret=lambda: "guess"))
    error = error_of(alpaca_connect.finish_alpaca_connect, wrong, auth("alice"), returned)
    assert error.code == Code.FAILED_PRECONDITION
    _nothing_stored(db, keystore, "alice")


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"code": "abc", "state": "x" * 40},
        {"code": "a" * 20, "state": "short"},
        {"code": "a" * 20, "state": "x" * 40, "extra": 1},
        {"code": 12345678, "state": "x" * 40},
    ],
)
def test_malformed_finishes_are_invalid_argument(
    connecting: Services, db: firestore.Client, data: dict[str, Any]
) -> None:
    error = error_of(alpaca_connect.finish_alpaca_connect, connecting, auth("alice"), data)
    assert error.code == Code.INVALID_ARGUMENT
    assert all_documents(db).keys() <= {"ops/rate_limits/alice/finish_alpaca_connect"}


def test_without_an_app_connect_is_not_offered(services: Services) -> None:
    error = error_of(alpaca_connect.start_alpaca_connect, services, auth("alice"), {})
    assert error.code == Code.FAILED_PRECONDITION
    assert "not set up" in error.message


# -- ending a connection -------------------------------------------------------------------------


def connected_token(services: Services, keystore: KeyStore, uid: str) -> str:
    finish(services, uid, start(services, uid))
    keys = keystore.load(uid, None)
    assert keys is not None and keys.oauth_token is not None
    return keys.oauth_token.get_secret_value()


def alpaca_knows(alpaca: AlpacaServer, token: str) -> bool:
    answer = requests.get(
        f"{alpaca.url}/v2/account", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert answer.status_code in (200, 401)
    return answer.status_code == 200


def removal_audited(db: firestore.Client, uid: str) -> dict[str, Any]:
    audit = [d.to_dict() or {} for d in paths.audit(db, uid).stream()]
    removed = [a for a in audit if a["action"] == "keys_removed"]
    assert len(removed) == 1
    return dict(removed[0]["details"])


def test_removing_a_connection_revokes_its_token_at_alpaca(
    connecting: Services, db: firestore.Client, keystore: KeyStore, alpaca: AlpacaServer
) -> None:
    token = connected_token(connecting, keystore, "alice")
    assert alpaca_knows(alpaca, token)
    result = keys_callables.remove_alpaca_keys(connecting, auth("alice"), {})
    assert result == {"removed": True, "connection_revoked": True}
    assert not alpaca_knows(alpaca, token)
    assert keystore.load("alice", None) is None
    assert removal_audited(db, "alice") == {"had_keys": True, "connection_revoked": True}


def test_deleting_the_account_revokes_its_token_at_alpaca(
    connecting: Services, db: firestore.Client, keystore: KeyStore, alpaca: AlpacaServer
) -> None:
    token = connected_token(connecting, keystore, "alice")
    result = keys_callables.delete_my_account(connecting, auth("alice"), {"confirm": True})
    assert result["secret_removed"] is True and result["connection_revoked"] is True
    assert not alpaca_knows(alpaca, token)
    record = paths.deleted_account(db, "alice").get().to_dict() or {}
    assert record["state"] == "deleted" and record["connection_revoked"] is True


@pytest.mark.parametrize("where", ["unreachable", "refused"])
def test_a_revocation_alpaca_does_not_confirm_is_said_and_the_keys_still_go(
    connecting: Services,
    db: firestore.Client,
    keystore: KeyStore,
    alpaca: AlpacaServer,
    where: str,
) -> None:
    token = connected_token(connecting, keystore, "alice")
    assert connecting.oauth is not None
    if where == "unreachable":
        with socket.socket() as probe:  # a port nothing listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        app = replace(connecting.oauth, revoke_url=f"http://127.0.0.1:{port}/oauth/revoke")
    else:  # Alpaca refuses the app's credentials (401 invalid_client)
        app = replace(connecting.oauth, client_secret=lambda: "not-the-app-secret")
    queued: list[tuple[dict[str, Any], str]] = []
    failing = replace(connecting, oauth=app, enqueue_revocation=lambda d, i: queued.append((d, i)))
    result = keys_callables.remove_alpaca_keys(failing, auth("alice"), {})
    assert result == {"removed": True, "connection_revoked": False}
    assert keystore.load("alice", None) is None  # the person's keys go at once
    assert alpaca_knows(alpaca, token)  # still live at Alpaca: asked again until it is not
    assert removal_audited(db, "alice") == {"had_keys": True, "connection_revoked": False}
    [(task, task_id)] = queued
    assert task == {"uid": "alice", "secret": task_id} and task_id == pending_secret("alice", token)
    kept = keystore.load_named(task_id)
    assert kept is not None and kept.oauth_token is not None
    assert kept.oauth_token.get_secret_value() == token  # outside the person's keys

    with pytest.raises(NotYet):  # the queue's next try: Alpaca still does not confirm
        run_revocation(keystore, app, task)
    assert alpaca_knows(alpaca, token)
    assert run_revocation(keystore, connecting.oauth, task) == "revoked"  # Alpaca is back
    assert not alpaca_knows(alpaca, token)
    assert keystore.load_named(task_id) is None  # the kept token is gone too
    assert run_revocation(keystore, connecting.oauth, task) == "gone"  # a repeated task


def test_a_connection_replaced_by_pasted_keys_or_a_new_connection_is_revoked(
    connecting: Services, keystore: KeyStore, alpaca: AlpacaServer
) -> None:
    first = connected_token(connecting, keystore, "alice")
    second = connected_token(connecting, keystore, "alice")  # connected again: a new token
    assert second != first
    assert not alpaca_knows(alpaca, first) and alpaca_knows(alpaca, second)
    register_alpaca_account(alpaca.url, "PKPASTED001", "pasted-secret-1")
    saved = keys_callables.save_alpaca_keys(
        connecting, auth("alice"), {"key_id": "PKPASTED001", "secret_key": "pasted-secret-1"}
    )
    assert saved["replaced_connection_revoked"] is True
    assert not alpaca_knows(alpaca, second)
    again = keys_callables.save_alpaca_keys(
        connecting, auth("alice"), {"key_id": "PKPASTED001", "secret_key": "pasted-secret-1"}
    )
    assert again["replaced_connection_revoked"] is None  # pasted keys: nothing to revoke
