"""Connect with Alpaca tokens are revoked until Alpaca confirms it: when a person removes their
connection, deletes their account, or replaces the token with pasted keys or a new connection.

The product asks Alpaca at once. When Alpaca does not confirm (unreachable, a 5xx, the app's
credentials refused), the token is kept in a secret of its own (`alpaca-keys-revoke-...`,
outside the person's keys, which are gone or replaced) and a task (`revoketoken`) asks again
with the queue's backoff until Alpaca confirms, then deletes that secret. The person's own keys
never wait for it."""

from __future__ import annotations

import hashlib
from typing import Any

from firebase_functions import logger
from pydantic import SecretStr

from agenttrader.api.guard import Services
from agenttrader.broker.keystore import AlpacaKeys, KeyStore
from agenttrader.broker.oauth import revoke_token
from agenttrader.context.platform import OAuthApp

REVOKE_QUEUE = "revoketoken"
"""The task queue (and task function) that asks Alpaca again to revoke a token."""
PENDING_PREFIX = "alpaca-keys-revoke-"
"""Secrets holding a token Alpaca has not confirmed revoked (under the keys' own prefix, so
only the accounts that may touch people's keys can)."""
RETRY = {
    "max_attempts": 40,
    "min_backoff_seconds": 60,
    "max_backoff_seconds": 6 * 3600,
    "max_doublings": 8,
}
"""Every minute at first, then doubling to every 6 hours: about a week of asking."""


class NotYet(Exception):
    """Alpaca did not confirm this time; the queue asks again."""


def pending_secret(uid: str, token: str) -> str:
    """The secret a token waiting for its revocation is kept in: one per token."""
    return PENDING_PREFIX + hashlib.sha256(f"{uid}:{token}".encode()).hexdigest()[:40]


def ask(app: OAuthApp | None, token: str) -> bool:
    """Whether Alpaca confirmed the token revoked now."""
    if app is None or not app.revoke_url:
        return False
    return revoke_token(app.revoke_url, app.client_id, app.client_secret(), token)


def revoke(services: Services, uid: str, keys: AlpacaKeys) -> bool | None:
    """Revoke the Connect with Alpaca token in `keys` (None: there is none, as with pasted
    keys): True when Alpaca confirmed it now; False when it did not, and the token is then
    kept and asked again by the task queue until it does."""
    if keys.oauth_token is None:
        return None
    token = keys.oauth_token.get_secret_value()
    if ask(services.oauth, token):
        return True
    if services.enqueue_revocation is None:
        logger.warn("alpaca.revoke_not_retried", uid=uid)  # no queue: said to the person
        return False
    secret = pending_secret(uid, token)
    services.platform.keys.save_named(
        secret, AlpacaKeys(oauth_token=SecretStr(token), paper=keys.paper, scope=keys.scope)
    )
    services.enqueue_revocation({"uid": uid, "secret": secret}, secret)
    logger.warn("alpaca.revoke_pending", uid=uid)
    return False


def run_revocation(keys: KeyStore, app: OAuthApp | None, data: Any) -> str:
    """One task: ask Alpaca again; `NotYet` for the queue to retry."""
    secret = data.get("secret") if isinstance(data, dict) else None
    if not isinstance(secret, str) or not secret.startswith(PENDING_PREFIX):
        logger.error("alpaca.revoke_bad_task", data=str(data)[:200])
        return "bad task"  # never retried
    held = keys.load_named(secret)
    if held is None or held.oauth_token is None:
        return "gone"  # revoked and deleted by an earlier attempt
    if not ask(app, held.oauth_token.get_secret_value()):
        raise NotYet("Alpaca did not confirm the revocation; asked again later")
    keys.delete_named(secret)
    logger.info("alpaca.revoked_after_all", uid=str(data.get("uid")))
    return "revoked"
