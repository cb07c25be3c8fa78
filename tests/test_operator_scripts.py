"""Operator commands run as an operator runs them: a subprocess with the venv's Python, against
the Auth and Firestore emulators."""

from __future__ import annotations

import json

import requests
from google.cloud import firestore
from operator_scripts import run_script

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
