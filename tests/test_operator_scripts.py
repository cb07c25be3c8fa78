"""Operator commands run as an operator runs them: a subprocess with the venv's Python, against
the Auth and Firestore emulators."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import firebase_admin
import requests
from calling import Code, error_of
from firebase_admin import auth as admin_auth
from firebase_functions.https_fn import AuthData
from google.cloud import firestore
from operator_scripts import run_script

from agenttrader import runtime
from agenttrader.api import admin_callables
from agenttrader.api.guard import Services
from agenttrader.store import paths
from localdev import emulators


def claims_of(person: emulators.Person) -> dict[str, object]:
    url = f"{emulators.auth_url()}/identitytoolkit.googleapis.com/v1/accounts:lookup?key=local"
    fresh = emulators.sign_in(person)
    answer = requests.post(url, json={"idToken": fresh.id_token}, timeout=30)
    answer.raise_for_status()
    return dict(json.loads(answer.json()["users"][0].get("customAttributes") or "{}"))


def test_grant_admin_sets_and_revokes_the_claim_with_an_audit_record(
    db: firestore.Client,
) -> None:
    emulators.clear_auth()
    person = emulators.sign_up("ops@example.com")
    emulators.set_claims(person.uid, {"team": "blue"})
    unconfirmed = run_script("grant_admin.py", "--email", "ops@example.com")
    assert unconfirmed.returncode == 1
    assert "ops@example.com is not confirmed" in unconfirmed.stderr
    assert claims_of(person) == {"team": "blue"}
    emulators.confirm_email(person.uid)

    granted = run_script("grant_admin.py", "--email", "ops@example.com")
    assert granted.returncode == 0, granted.stderr
    assert "is now an admin" in granted.stdout
    assert claims_of(person) == {"team": "blue", "admin": True}
    again = run_script("grant_admin.py", "--email", "ops@example.com")
    assert (again.returncode, "already an admin" in again.stdout) == (0, True)

    revoked = run_script("grant_admin.py", "--email", "ops@example.com", "--revoke")
    assert revoked.returncode == 0, revoked.stderr
    assert claims_of(person) == {"team": "blue"}
    events = sorted(
        (d.to_dict() or {} for d in paths.audit(db, person.uid).stream()), key=lambda e: e["at"]
    )
    assert [e["action"] for e in events] == ["admin_granted", "admin_revoked"]
    assert all(e["actor"].startswith("operator:") for e in events)

    missing = run_script("grant_admin.py", "--email", "nobody@example.com")
    assert missing.returncode == 1
    assert "nobody signs in as nobody@example.com" in missing.stderr


def test_a_removed_or_disabled_admin_is_refused_at_once(services: Services) -> None:
    """Their ID token still says admin (it lives an hour); every admin call checks the account
    as it is now."""
    if not firebase_admin._apps:  # the Admin SDK as the functions start it, on the emulator
        firebase_admin.initialize_app(options={"projectId": emulators.project()})
    emulators.clear_auth()
    person = emulators.sign_up("ops2@example.com")
    emulators.confirm_email(person.uid)
    assert run_script("grant_admin.py", "--email", "ops2@example.com").returncode == 0
    checked = replace(services, admin_standing=runtime.admin_standing)
    token = AuthData(person.uid, {"admin": True, "auth_time": int(time.time())})
    assert admin_callables.admin_list_people(checked, token, {}) is not None

    time.sleep(1.1)  # a revoke counts from the next second
    assert run_script("grant_admin.py", "--email", "ops2@example.com", "--revoke").returncode == 0
    refused = error_of(admin_callables.admin_list_people, checked, token, {})
    assert refused.code == Code.PERMISSION_DENIED
    assert refused.message.startswith("you are no longer an administrator")

    emulators.set_claims(person.uid, {"admin": True})  # the claim back, but the sign-in revoked
    refused = error_of(admin_callables.admin_list_people, checked, token, {})
    assert refused.message.startswith("your sign-in was revoked: sign in again")
    fresh = AuthData(person.uid, {"admin": True, "auth_time": int(time.time()) + 1})
    assert admin_callables.admin_list_people(checked, fresh, {}) is not None

    admin_auth.update_user(person.uid, disabled=True)
    refused = error_of(admin_callables.admin_list_people, checked, fresh, {})
    assert refused.message.startswith("your account is disabled")
