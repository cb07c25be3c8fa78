"""Migrate legacy data into the canonical layout (dry run unless --apply).

    functions/venv/bin/python scripts/migrate.py --uid UID              # what would happen
    functions/venv/bin/python scripts/migrate.py --uid UID --apply      # do it, then verify
    functions/venv/bin/python scripts/migrate.py --uid UID --apply --delete-legacy
    functions/venv/bin/python scripts/migrate.py --uid UID --rollback   # remove migrated copies

--uid names the owner of the single-user bot's global data (alpacaAccounts/snapshot,
tradingSignals, shadowTradeHistory, and the APCA_API_KEY_ID / APCA_API_SECRET_KEY keys with
--keys-from-env). Per-user draft data (users/{uid}/data/snapshot, users/{uid}/tradingSignals,
users/{uid}/secrets/alpaca) goes to its own user. Safe to run again; killed half way, the next
run finishes the job. Exit status: 0 done and verified, 1 conflicts, malformed documents or a
failed verification (see the report), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import os
import sys

from pydantic import SecretStr, ValidationError

from agenttrader import runtime
from agenttrader.broker.keystore import AlpacaKeys
from agenttrader.core import clients
from agenttrader.migration import FAMILIES, Report, migrate, rollback


def env_keys(live: bool) -> AlpacaKeys | None:
    key_id, secret = os.environ.get("APCA_API_KEY_ID"), os.environ.get("APCA_API_SECRET_KEY")
    if not key_id and not secret:
        return None
    try:
        return AlpacaKeys(key_id=key_id or "", secret_key=SecretStr(secret or ""), paper=not live)
    except ValidationError:
        raise SystemExit(
            "migrate: APCA_API_KEY_ID / APCA_API_SECRET_KEY are not valid keys"
        ) from None


def print_report(report: Report, applied: bool) -> None:
    print("source family                 " + ("outcome" if applied else "plan (dry run)"))
    for family, counts in sorted(report.counts.items()):
        print(f"  {family:<28} " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    if report.profiles_created:
        print(f"  user profiles created: {report.profiles_created}")
    for family, (n_expected, d_expected, n_actual, d_actual) in sorted(report.verified.items()):
        ok = "ok" if (n_expected, d_expected) == (n_actual, d_actual) else "MISMATCH"
        print(
            f"verify {family:<28} sources={n_expected} digest={d_expected} "
            f"targets={n_actual} digest={d_actual} {ok}"
        )
    for note in report.notes:
        print(f"  - {note}")
    for problem in report.problems:
        print(f"  ! {problem}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--uid", help="owner of the single-user bot's data and env keys")
    parser.add_argument(
        "--tenant",
        action="append",
        default=[],
        metavar="TENANT=UID",
        help="owner of tenants/TENANT/accounts/primary (default: --uid)",
    )
    parser.add_argument(
        "--keys-from-env",
        action="store_true",
        help="move APCA_API_KEY_ID / APCA_API_SECRET_KEY to --uid's secret",
    )
    parser.add_argument(
        "--live", action="store_true", help="the environment keys are live, not paper"
    )
    parser.add_argument("--apply", action="store_true", help="write (default: dry run)")
    parser.add_argument("--on-conflict", choices=["skip", "overwrite", "fail"], default="skip")
    parser.add_argument(
        "--prefer",
        default="newest",
        choices=["newest", *FAMILIES],
        help="when several legacy documents map to one target (the bot's alpacaAccounts/snapshot "
        "and a tenants/*/accounts/primary for the same account): the newest wins (default), or "
        "the named source family, e.g. 'tenants/*/accounts/primary'",
    )
    parser.add_argument(
        "--delete-legacy",
        action="store_true",
        help="after a successful verify, delete the migrated legacy documents",
    )
    parser.add_argument(
        "--rollback",
        action="store_true",
        help="remove migrated copies whose legacy source still exists",
    )
    args = parser.parse_args()
    try:
        tenants = dict(t.split("=", 1) for t in args.tenant)
    except ValueError:
        parser.error("--tenant takes TENANT=UID")
    db = clients.firestore_client()
    if args.rollback:
        print_report(rollback(db, args.uid, tenants), applied=True)
        return 0
    report = migrate(
        db,
        runtime.keystore(),
        uid=args.uid,
        tenants=tenants,
        env_keys=env_keys(args.live) if args.keys_from_env else None,
        apply=args.apply,
        on_conflict=args.on_conflict,
        delete_legacy=args.delete_legacy,
        prefer=args.prefer,
    )
    print_report(report, applied=args.apply)
    if args.apply:
        print(
            "verified: every migrated source has an equal target"
            if report.verify_ok
            else "verification FAILED: see above"
        )
    return 0 if not report.problems and report.verify_ok else 1


if __name__ == "__main__":
    sys.exit(main())
