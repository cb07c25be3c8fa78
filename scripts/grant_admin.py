"""Give a person the `admin` custom claim (or take it away), with a record in their audit trail.

    functions/venv/bin/python scripts/grant_admin.py --email ops@example.com
    functions/venv/bin/python scripts/grant_admin.py --email ops@example.com --revoke

Runs against the project GCLOUD_PROJECT names, with Application Default Credentials (or the
Auth emulator when FIREBASE_AUTH_EMULATOR_HOST is set). Other custom claims are kept. The
person sees the change once their ID token refreshes (at the latest within an hour; signing out
and in again is immediate); a revoke ends their sessions at once (their refresh tokens are
revoked, and every admin call checks the account as it is now). Only a confirmed email is made
an admin. Exit status: 0 done (or already so), 1 no such person or an unconfirmed email, 2 bad
arguments.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime

import firebase_admin
from firebase_admin import auth

from agenttrader.core import clients
from agenttrader.store.audit import audit_event


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--email", required=True, help="the person's sign-in email")
    parser.add_argument("--revoke", action="store_true", help="remove the claim instead")
    args = parser.parse_args()
    project = clients.project_id()
    if not firebase_admin._apps:
        firebase_admin.initialize_app(options={"projectId": project})
    try:
        user = auth.get_user_by_email(args.email)
    except auth.UserNotFoundError:
        print(f"grant_admin: nobody signs in as {args.email} in {project}", file=sys.stderr)
        return 1
    claims = dict(user.custom_claims or {})
    wanted = not args.revoke
    if wanted and not user.email_verified:
        print(
            f"grant_admin: {args.email} is not confirmed (the person has not opened the "
            "confirmation email): anyone can sign up with an address; ask them to confirm it "
            "first",
            file=sys.stderr,
        )
        return 1
    if (claims.get("admin") is True) == wanted:
        print(f"{args.email} ({user.uid}) is {'already' if wanted else 'not'} an admin")
        return 0
    if wanted:
        claims["admin"] = True
    else:
        claims.pop("admin", None)
    auth.set_custom_user_claims(user.uid, claims or None)
    if not wanted:  # every session signed in as an admin ends now, not within the hour
        auth.revoke_refresh_tokens(user.uid)
    db = clients.firestore_client()
    batch = db.batch()
    audit_event(
        batch,
        db,
        user.uid,
        "admin_granted" if wanted else "admin_revoked",
        datetime.now(UTC),
        f"operator:{getpass.getuser()}",
        {"email": args.email, "by": "scripts/grant_admin.py"},
    )
    batch.commit()
    verb = "is now an admin" if wanted else "is no longer an admin"
    print(f"{args.email} ({user.uid}) {verb}; it takes effect when their ID token refreshes")
    print(f"audit: users/{user.uid}/audit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
