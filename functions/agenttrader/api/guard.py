"""The one shape of every callable: who is calling, is the input valid, are they within their
rate limit, and how failures reach the client. Handlers are declared with `endpoint`."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from firebase_functions import https_fn, logger
from google.api_core import exceptions as gexc
from google.cloud import firestore
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from agenttrader.api.messages import field_of, sentence
from agenttrader.context.platform import OAuthApp, Platform
from agenttrader.core.errors import AgentTraderError, callable_code
from agenttrader.store import paths
from agenttrader.store.optimistic import Contended, retried, unchanged_since

Code = https_fn.FunctionsErrorCode
Model = TypeVar("Model", bound=BaseModel)

MAX_PAYLOAD_BYTES = 4096


def fail(code: Code, message: str, field: str | None = None) -> https_fn.HttpsError:
    """A refusal: `message` is the sentence a person reads (fields named as the page labels
    them); `field` is the request field it is about, by its own name, for a program
    (`details.field`)."""
    return https_fn.HttpsError(code, message, None if field is None else {"field": field})


@dataclass(frozen=True)
class Caller:
    """The signed-in person making a call."""

    uid: str
    email: str | None
    admin: bool
    email_verified: bool = False
    """The sign-in provider confirmed the person owns `email` (the token's `email_verified`)."""


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
        email_verified=token.get("email_verified") is True,
    )


def from_the_page(app: https_fn.AppCheckData | None, enforced: bool) -> None:
    """UNAUTHENTICATED for a request that carries no valid App Check token while App Check is
    enforced. The SDK verifies the token (signature, project, expiry) before the handler runs
    and gives `app` only for a valid one; a script with a stolen ID token has none."""
    if enforced and app is None:
        raise fail(
            Code.UNAUTHENTICATED,
            "this request did not come from this site's page (App Check refused it): reload "
            "the page and try again",
        )


def admin(auth: https_fn.AuthData | None) -> Caller:
    who = caller(auth)
    if not who.admin:
        raise fail(Code.PERMISSION_DENIED, "this call is for administrators only")
    return who


class StrictInput(BaseModel):
    """The base of every callable's input model. Strict: at the trust boundary 1 is not true
    and "5" is not a number; unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, str_strip_whitespace=True)


def parse(model: type[Model], data: Any) -> Model:
    """Validate callable input; INVALID_ARGUMENT says, in a sentence, what is wrong with the
    first bad field, named as the page labels it."""
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
        first = dict(error.errors()[0])
        raise fail(Code.INVALID_ARGUMENT, sentence(first), field_of(first)) from None


def _not_reserved(value: str) -> str:
    if value.startswith("__") and value.endswith("__"):
        raise ValueError("ids of the form __...__ are reserved by Firestore")
    return value


DocumentId = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$"),
    AfterValidator(_not_reserved),
]
"""An id taken from a client that is valid as a Firestore document id."""


def stored(model: type[Model], snapshot: firestore.DocumentSnapshot[Any]) -> Model:
    """A stored document read through its model; FAILED_PRECONDITION names the document and
    the field when it does not parse (legacy data, a hand edit)."""
    try:
        return model.model_validate(snapshot.to_dict() or {})
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "document"
        raise fail(
            Code.FAILED_PRECONDITION,
            f"{snapshot.reference.path} cannot be read ({field}: {first['msg']}); "
            "it needs fixing before it can be used",
        ) from None


def not_deleted(db: firestore.Client, who: Caller, unfinished_ok: bool = False) -> None:
    """UNAUTHENTICATED for a token that outlived its account: an ID token stays valid for up to
    an hour after `delete_my_account`, and must not bring the account back. With
    `unfinished_ok`, a deletion that was interrupted may be run again to finish it."""
    record = paths.deleted_account(db, who.uid).get()
    if record.exists and not (unfinished_ok and (record.to_dict() or {}).get("state") != "deleted"):
        raise fail(
            Code.UNAUTHENTICATED, "this account was deleted; sign up again to use the product"
        )


@dataclass(frozen=True)
class Limit:
    """At most `calls` per `window_s` seconds, per user and action."""

    calls: int
    window_s: int


def _take(
    db: firestore.Client, ref: firestore.DocumentReference, limit: Limit, now: datetime
) -> bool:
    """One token from the window that opened with the first call in it; the write carries a
    precondition, so overlapping calls never wait on a lock and each is counted exactly once."""
    snapshot = ref.get()
    state = (snapshot.to_dict() or {}) if snapshot.exists else {}
    window_start = state.get("window_start")
    fresh = {"window_start": now, "count": 1}
    if window_start is None or window_start + timedelta(seconds=limit.window_s) <= now:
        if snapshot.exists:
            ref.update(fresh, option=unchanged_since(db, snapshot))
        else:
            ref.create(fresh)
        return True
    if int(state.get("count", 0)) >= limit.calls:
        return False
    ref.update({"count": int(state["count"]) + 1}, option=unchanged_since(db, snapshot))
    return True


def rate_limit(db: firestore.Client, uid: str, action: str, limit: Limit, now: datetime) -> None:
    """Count this call against the user's limit (state in Firestore: it holds across instances)."""
    ref = paths.rate_limit(db, uid, action)
    if not retried(lambda: _take(db, ref, limit, now)):
        raise fail(
            Code.RESOURCE_EXHAUSTED,
            f"{action} is limited to {limit.calls} calls per {limit.window_s} s; try again later",
        )


@dataclass(frozen=True)
class Services:
    """What the callables work with."""

    platform: Platform
    buying_power_fraction: Decimal
    """Largest share of buying power a single signal may commit."""
    delete_auth_user: Callable[[str], None]
    """Deletes a Firebase Auth user; succeeds when there is none."""
    snapshot_max_age: timedelta = timedelta(minutes=15)
    """A signal is refused when the last successful sync is older than this."""
    oauth: OAuthApp | None = None
    """The app for Connect with Alpaca; None: not offered."""
    webhook_key: Callable[[], str] | None = None
    """The app key each person's webhook signing secret derives from; None: no webhooks."""
    webhook_loopback_http: bool = False
    """Plain http to a loopback webhook (the local demo only)."""
    enqueue_revocation: Callable[[dict[str, Any], str], None] | None = None
    """Enqueue asking Alpaca again to revoke a token (data, task id); None: not retried."""
    admin_standing: Callable[[str, Mapping[str, Any]], str] | None = None
    """Why an admin's token no longer speaks for them ("" when it does): their account gone
    or disabled, the claim taken away, or their sign-in revoked since the token was made. An
    ID token lives an hour; an admin's call is checked against the account as it is now."""


@dataclass(frozen=True)
class Call(Generic[Model]):
    """One checked call: who made it, what they asked (parsed), when, and the clients."""

    who: Caller
    request: Model
    now: datetime
    services: Services

    @property
    def platform(self) -> Platform:
        return self.services.platform

    @property
    def db(self) -> firestore.Client:
        return self.services.platform.db


Handler = Callable[[Services, https_fn.AuthData | None, Any], dict[str, Any]]
"""A callable's plain core: what the deployed function, the tests and the demo call."""

LIMITS: dict[str, Limit] = {}
"""Every callable's rate limit, by the name its counter is kept under."""
INPUTS: dict[str, type[BaseModel]] = {}
"""Every callable's input model, by the callable's name."""


def endpoint(
    model: type[Model],
    limit: Limit,
    *,
    admin_only: bool = False,
    bucket: str | None = None,
    finishes_deletion: bool = False,
) -> Callable[[Callable[[Call[Model]], dict[str, Any]]], Handler]:
    """Declare a callable: its input model and rate limit (counted under `bucket`, by default
    its own name). The handler runs only for a signed-in caller (an admin, with `admin_only`)
    whose account is not deleted, on valid input, within the limit; bad input is refused before
    anything is counted or changed."""

    def declare(work: Callable[[Call[Model]], dict[str, Any]]) -> Handler:
        name = bucket or work.__name__
        LIMITS[name] = limit
        INPUTS[work.__name__] = model

        @functools.wraps(work)
        def handler(
            services: Services, auth: https_fn.AuthData | None, data: Any
        ) -> dict[str, Any]:
            who = admin(auth) if admin_only else caller(auth)
            if admin_only and services.admin_standing is not None:
                refused = services.admin_standing(who.uid, (auth.token if auth else None) or {})
                if refused:
                    raise fail(
                        Code.PERMISSION_DENIED, f"{refused}: this call is for administrators"
                    )
            db = services.platform.db
            not_deleted(db, who, unfinished_ok=finishes_deletion)
            request = parse(model, data)
            now = services.platform.now()
            rate_limit(db, who.uid, name, limit, now)
            return work(Call(who, request, now, services))

        return handler

    return declare


def handled(name: str, work: Callable[[], Any]) -> Any:
    """Run a callable's work: HttpsError passes through, every coded failure gets the code
    `errors.CALLABLE_CODES` gives it, contention is ABORTED (try again), and anything else is
    logged and becomes INTERNAL."""
    try:
        return work()
    except https_fn.HttpsError:
        raise
    except (Contended, gexc.Aborted):
        raise fail(
            Code.ABORTED, "your data was being changed by another call at the same time; try again"
        ) from None
    except AgentTraderError as error:
        logger.warn("callable.failed", function=name, code=error.code)
        # the sentence for the person; the code for whoever debugs, in the error's details
        raise https_fn.HttpsError(
            callable_code(error.code), error.message, {"reason": str(error.code)}
        ) from None
    except gexc.GoogleAPICallError as error:
        logger.error("callable.firestore_failed", function=name, error=str(error.message))
        raise fail(Code.UNAVAILABLE, "the database did not answer in time; try again") from None
    except Exception as error:
        logger.error(
            "callable.crashed", function=name, error_type=type(error).__name__, error=str(error)
        )
        raise fail(Code.INTERNAL, "something went wrong on our side; it has been logged") from None
