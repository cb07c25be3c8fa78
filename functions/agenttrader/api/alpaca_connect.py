"""Connect with Alpaca: a person links their account through Alpaca's OAuth instead of pasting
keys. `start_alpaca_connect` gives the authorize URL with a fresh `state`; Alpaca sends them
back to the web client with a code, which `finish_alpaca_connect` exchanges for a token, kept
in their secret like keys (`keys_version` bumped, audited).

The state is single-use, bound to the caller, valid for `STATE_TTL`, and stored only as its
SHA-256 (`ops/oauth/states/{hash}`): a leaked database holds nothing that finishes a connect.
The token is never returned, logged or written to Firestore.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import requests
from firebase_functions import logger
from pydantic import Field, SecretStr, StrictBool

from agenttrader.api.guard import Call, Code, Limit, StrictInput, endpoint, fail
from agenttrader.api.keys_callables import (
    current_keys,
    held_elsewhere,
    keep_keys,
    provision_keys,
    revoke_replaced,
)
from agenttrader.broker.keystore import AlpacaKeys
from agenttrader.context.platform import OAuthApp
from agenttrader.store import paths
from agenttrader.store.optimistic import retried, unchanged_since

STATE_TTL = timedelta(minutes=10)
SCOPE = "trading data"
"""The least the product uses: orders, positions and the account (`trading`) and market data
(`data`); never `account:write`."""
TOKEN_LENGTH = (16, 512)
"""What a usable access token's length is taken to be (the secret holds at most 512)."""


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


class StartRequest(StrictInput):
    paper: StrictBool = True


class FinishRequest(StrictInput):
    code: str = Field(min_length=8, max_length=512, pattern=r"^[A-Za-z0-9._~-]+$")
    state: str = Field(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")


def _app(call: Call[Any]) -> OAuthApp:
    app = call.services.oauth
    if app is None or not app.configured:
        raise fail(
            Code.FAILED_PRECONDITION,
            "Connect with Alpaca is not set up for this site: save API keys instead",
        )
    return app


@endpoint(StartRequest, Limit(10, 300))
def start_alpaca_connect(call: Call[StartRequest]) -> dict[str, Any]:
    """A fresh single-use state for the caller and the Alpaca page to approve the app on."""
    app = _app(call)
    state = secrets.token_urlsafe(32)
    paths.oauth_state(call.db, _hash(state)).create(
        {
            "uid": call.who.uid,
            "paper": call.request.paper,
            "created_at": call.now,
            "expires_at": call.now + STATE_TTL,
        }
    )
    query = urlencode(
        {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": app.redirect_url,
            "state": state,
            "scope": SCOPE,
            "env": "paper" if call.request.paper else "live",
        }
    )
    return {"url": f"{app.authorize_url}?{query}", "expires_in_s": int(STATE_TTL.total_seconds())}


@endpoint(FinishRequest, Limit(10, 300))
def finish_alpaca_connect(call: Call[FinishRequest]) -> dict[str, Any]:
    """Check the state (used up here, whatever follows), exchange the code for a token, check
    the token with Alpaca, and keep it in the caller's secret."""
    app = _app(call)
    paper = _use_state(call)
    token, scope = _exchange(app, call.request.code)
    keys = AlpacaKeys(oauth_token=SecretStr(token), paper=paper, scope=scope)
    before = current_keys(call)
    account, secret_version = keep_keys(
        call,
        keys,
        Code.FAILED_PRECONDITION,
        "Alpaca did not accept the connection it just gave: connect again",
    )
    version = retried(lambda: provision_keys(call, keys, secret_version, account))
    logger.info("alpaca.connected", uid=call.who.uid, keys_version=version, paper=paper)
    return {
        "connected": True,
        "key_id": keys.masked_key_id(),
        "paper": paper,
        "keys_version": version,
        "trades_in_other_account": held_elsewhere(call, account.account_number),
        "replaced_connection_revoked": revoke_replaced(call, before, keys),
    }


def _use_state(call: Call[FinishRequest]) -> bool:
    """The state's `paper` choice, once: of two finishes with one state, one gets it."""
    ref = paths.oauth_state(call.db, _hash(call.request.state))

    def attempt() -> bool:
        snapshot = ref.get()
        if not snapshot.exists:
            raise fail(
                Code.FAILED_PRECONDITION,
                "this Connect with Alpaca link was already used or never issued: start again",
            )
        state = snapshot.to_dict() or {}
        if state.get("uid") != call.who.uid:
            raise fail(
                Code.PERMISSION_DENIED,
                "this Connect with Alpaca link was started by someone else: start again from "
                "your own page",
            )
        ref.delete(option=unchanged_since(call.db, snapshot))
        if state["expires_at"] <= call.now:
            raise fail(
                Code.FAILED_PRECONDITION,
                "this Connect with Alpaca link expired (they last 10 minutes): start again",
            )
        return bool(state.get("paper", True))

    return retried(attempt)


def _exchange(app: OAuthApp, code: str) -> tuple[str, str | None]:
    """The code exchanged at Alpaca's token endpoint for a token and the scope Alpaca granted
    (None when it did not say). The form (with the client secret) goes to that URL only: a
    redirect is a failed exchange, never followed. Any answer but the documented JSON object
    with a well-formed bearer token is refused in words (FAILED_PRECONDITION)."""
    try:
        answer = requests.post(
            app.token_url,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": app.client_id,
                "client_secret": app.client_secret(),
                "redirect_uri": app.redirect_url,
            },
            timeout=10,
            allow_redirects=False,
        )
    except requests.RequestException:
        raise fail(Code.UNAVAILABLE, "Alpaca could not be reached to finish connecting") from None
    if answer.is_redirect or 300 <= answer.status_code < 400:
        logger.warn("alpaca.connect_redirected", status=answer.status_code)
        raise fail(
            Code.FAILED_PRECONDITION,
            "Alpaca's token endpoint answered with a redirect, which is not followed (the "
            "app's secret goes nowhere else): connect again later",
        )
    try:
        body: Any = answer.json()
    except ValueError:
        body = None
    said: dict[str, Any] = body if isinstance(body, dict) else {}
    if answer.status_code != 200:
        reason = said.get("error_description") or said.get("error") or f"HTTP {answer.status_code}"
        logger.warn("alpaca.connect_refused", status=answer.status_code, error=said.get("error"))
        raise fail(
            Code.FAILED_PRECONDITION,
            f"Alpaca did not accept this approval ({str(reason)[:200]}): connect again",
        )
    token, scope = said.get("access_token"), said.get("scope")
    kind = said.get("token_type", "bearer")  # Alpaca's answer may leave the type out
    if (
        not isinstance(token, str)
        or not TOKEN_LENGTH[0] <= len(token) <= TOKEN_LENGTH[1]
        or not token.isprintable()
        or not isinstance(kind, str)
        or kind.lower() != "bearer"
        or (scope is not None and (not isinstance(scope, str) or len(scope) > 200))
    ):
        logger.warn("alpaca.connect_malformed", status=answer.status_code)
        raise fail(
            Code.FAILED_PRECONDITION,
            "Alpaca's answer did not hold a usable token, so nothing was saved: connect again",
        )
    return token, scope or None
