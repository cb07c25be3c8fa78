"""What every callable does before and after its work: who is calling, is the input valid,
are they within their rate limit, and how failures reach the client."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from firebase_functions import https_fn, logger
from google.cloud import firestore
from pydantic import BaseModel, ValidationError

from agenttrader import paths
from agenttrader.broker import BrokerError
from agenttrader.keystore import KeyStoreError

Code = https_fn.FunctionsErrorCode
Model = TypeVar("Model", bound=BaseModel)

MAX_PAYLOAD_BYTES = 4096


def fail(code: Code, message: str) -> https_fn.HttpsError:
    return https_fn.HttpsError(code, message)


@dataclass(frozen=True)
class Caller:
    """The signed-in person making a call."""

    uid: str
    email: str | None
    admin: bool


def caller(auth: https_fn.AuthData | None) -> Caller:
    """The signed-in caller, or UNAUTHENTICATED."""
    if auth is None or not auth.uid:
        raise fail(Code.UNAUTHENTICATED, "sign in first: this call needs a Firebase ID token")
    token: Mapping[str, Any] = auth.token or {}
    email = token.get("email")
    return Caller(
        uid=auth.uid,
        email=email if isinstance(email, str) else None,
        admin=token.get("admin") is True,
    )


def admin(auth: https_fn.AuthData | None) -> Caller:
    who = caller(auth)
    if not who.admin:
        raise fail(Code.PERMISSION_DENIED, "this call is for administrators only")
    return who


def parse(model: type[Model], data: Any) -> Model:
    """Validate callable input; INVALID_ARGUMENT names the first bad field."""
    try:
        size = len(json.dumps(data, ensure_ascii=False).encode())
    except (TypeError, ValueError):
        raise fail(Code.INVALID_ARGUMENT, "the request is not valid JSON data") from None
    if size > MAX_PAYLOAD_BYTES:
        raise fail(
            Code.INVALID_ARGUMENT, f"the request is {size} bytes; the limit is {MAX_PAYLOAD_BYTES}"
        )
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise fail(Code.INVALID_ARGUMENT, "the request data must be an object")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "request"
        raise fail(Code.INVALID_ARGUMENT, f"{field}: {first['msg']}") from None


@dataclass(frozen=True)
class Limit:
    """At most `calls` per `window_s` seconds, per user and action."""

    calls: int
    window_s: int


@firestore.transactional
def _take(
    transaction: firestore.Transaction,
    ref: firestore.DocumentReference,
    limit: Limit,
    now: datetime,
) -> bool:
    snapshot = ref.get(transaction=transaction)
    state = (snapshot.to_dict() or {}) if snapshot.exists else {}
    window_start = state.get("window_start")
    if window_start is None or window_start + timedelta(seconds=limit.window_s) <= now:
        transaction.set(ref, {"window_start": now, "count": 1})
        return True
    if int(state.get("count", 0)) >= limit.calls:
        return False
    transaction.update(ref, {"count": firestore.Increment(1)})
    return True


def rate_limit(db: firestore.Client, uid: str, action: str, limit: Limit, now: datetime) -> None:
    """Count this call against the user's limit (state in Firestore: it holds across instances)."""
    if not _take(db.transaction(), paths.rate_limit(db, uid, action), limit, now):
        raise fail(
            Code.RESOURCE_EXHAUSTED,
            f"{action} is limited to {limit.calls} calls per {limit.window_s} s; try again later",
        )


def audit_event(
    writer: firestore.WriteBatch | firestore.Transaction,
    db: firestore.Client,
    uid: str,
    action: str,
    at: datetime,
    actor: str,
    details: dict[str, Any],
) -> None:
    """Append a security-relevant event to the user's audit trail (in the caller's batch)."""
    writer.set(
        paths.audit(db, uid).document(),
        {"action": action, "at": at, "actor": actor, "details": details},
    )


def from_broker(error: BrokerError) -> https_fn.HttpsError:
    codes = {
        "ALPACA_UNAUTHORIZED": Code.FAILED_PRECONDITION,
        "ALPACA_RATE_LIMITED": Code.RESOURCE_EXHAUSTED,
        "ALPACA_TIMEOUT": Code.DEADLINE_EXCEEDED,
    }
    return fail(codes.get(error.code, Code.UNAVAILABLE), f"{error.message} [{error.code}]")


def handled(name: str, work: Callable[[], Any]) -> Any:
    """Run a callable's work: HttpsError passes through, known faults get their code,
    anything else is logged and becomes INTERNAL."""
    try:
        return work()
    except https_fn.HttpsError:
        raise
    except BrokerError as error:
        raise from_broker(error) from None
    except KeyStoreError as error:
        logger.error("callable.keystore_failed", function=name, code=error.code)
        raise fail(Code.UNAVAILABLE, "your keys could not be read right now; try again") from None
    except Exception as error:
        logger.error(
            "callable.crashed", function=name, error_type=type(error).__name__, error=str(error)
        )
        raise fail(Code.INTERNAL, "something went wrong on our side; it has been logged") from None
