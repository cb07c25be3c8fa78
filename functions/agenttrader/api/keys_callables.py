"""The person's Alpaca keys and their account: save keys (checked with Alpaca first), remove
them, and delete everything the product holds of them."""

from __future__ import annotations

from typing import Any

from firebase_functions import https_fn, logger
from google.cloud import firestore
from pydantic import (
    Field,
    SecretStr,
    StrictBool,
    field_validator,
)

from agenttrader.api import revocation
from agenttrader.api.guard import (
    Call,
    Code,
    Limit,
    StrictInput,
    endpoint,
    fail,
)
from agenttrader.bot.person import other_account_flag
from agenttrader.broker.answers import AccountSnapshot
from agenttrader.broker.keystore import AlpacaKeys, KeyStoreError
from agenttrader.broker.refusals import BrokerError
from agenttrader.core.errors import ErrorCode
from agenttrader.store import paths, queries, switches
from agenttrader.store.audit import audit_event
from agenttrader.store.models import (
    at_broker,
    keys_version,
)
from agenttrader.store.optimistic import retried, unchanged_since


class KeysRequest(StrictInput):
    key_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    secret_key: str = Field(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_\-+/=]+$")
    paper: StrictBool = True


class RemoveKeysRequest(StrictInput):
    cancel_resting: StrictBool | None = None
    """What becomes of the exits resting at Alpaca for the person's positions: cancelled there
    (true) or left working (false); asked when there are any and nothing was said."""


class DeleteAccountRequest(StrictInput):
    confirm: StrictBool
    """Must be the JSON value true: 1, 1.0 and "true" are not a confirmation."""
    cancel_resting: StrictBool | None = None

    @field_validator("confirm")
    @classmethod
    def _confirmed(cls, value: bool) -> bool:
        if value is not True:
            raise ValueError("must be true to delete your account")
        return value


# -- keys --------------------------------------------------------------------------------------


@endpoint(KeysRequest, Limit(5, 300))
def save_alpaca_keys(call: Call[KeysRequest]) -> dict[str, Any]:
    """Check keys with Alpaca, store them as a new secret version, bump `keys_version`."""
    request, uid = call.request, call.who.uid
    keys = AlpacaKeys(
        key_id=request.key_id, secret_key=SecretStr(request.secret_key), paper=request.paper
    )
    before = current_keys(call)
    account, secret_version = keep_keys(
        call,
        keys,
        Code.INVALID_ARGUMENT,
        "Alpaca refused these keys: check the Key ID and the Secret key",
        "key_id",
    )
    new_version = retried(lambda: provision_keys(call, keys, secret_version, account))
    logger.info("keys.saved", uid=uid, keys_version=new_version)
    return {
        "key_id": keys.masked_key_id(),
        "paper": keys.paper,
        "keys_version": new_version,
        "trades_in_other_account": held_elsewhere(call, account.account_number),
        "replaced_connection_revoked": revoke_replaced(call, before, keys),
    }


def held_elsewhere(call: Call[Any], account_number: str) -> list[dict[str, str]]:
    """The caller's open paper trades held in another account than `account_number`, the one
    the keys just saved open: nothing is sent for them with these keys. Each says so at once
    (`other_account`, shown on the page), and a trade in this account stops saying it."""
    found = []
    batch, writes = call.db.batch(), 0
    for doc in queries.open_trades(call.db, call.who.uid).stream():
        trade = doc.to_dict() or {}
        held_in = str(trade.get("account_number") or "")
        if at_broker(trade.get("mode")) and held_in and held_in != account_number:
            found.append(
                {
                    "trade_id": doc.id,
                    "symbol": str(trade.get("symbol")),
                    "account_last4": held_in[-4:],
                }
            )
            flag = other_account_flag(held_in, account_number, call.now)
            batch.update(doc.reference, {"other_account": flag})
            writes += 1
        elif trade.get("other_account"):
            batch.update(doc.reference, {"other_account": firestore.DELETE_FIELD})
            writes += 1
    if writes:
        batch.commit()
    return found


def keep_keys(
    call: Call[Any], keys: AlpacaKeys, refused: Code, message: str, field: str | None = None
) -> tuple[AccountSnapshot, int]:
    """Check a credential with Alpaca (`refused` with `message`, about `field`, when Alpaca
    refuses it), then store it as a new version of the caller's secret. Returns the account
    the keys open and the secret version they are."""
    broker = call.platform.brokers(keys)
    try:
        account = broker.account()
    except BrokerError as error:
        if error.code == ErrorCode.ALPACA_UNAUTHORIZED:
            raise fail(refused, message, field) from None
        raise
    finally:
        broker.close()
    return account, call.platform.keys.save(call.who.uid, keys)


def keys_account(keys: AlpacaKeys, account: AccountSnapshot) -> dict[str, Any]:
    """What the profile records of the account saved keys open: its id, and whether they may
    trade (a Connect with Alpaca token without the `trading` scope may not)."""
    return {"keys_account_id": account.account_id, "keys_may_trade": keys.may_trade}


def provision_keys(
    call: Call[Any], keys: AlpacaKeys, secret_version: int, account: AccountSnapshot
) -> int:
    """Bump keys_version (creating the profile, with trading off, on first use) and audit it,
    in one commit that fails if another call changed the profile in between. What the profile
    shows of the keys follows the newest secret version: a save that overlapped this one and
    stored a newer version keeps what it wrote. It also records the account they open (as
    Alpaca answered) and whether they may trade, so that a live strategy is checked against
    them without reading the keys."""
    db, uid, now = call.db, call.who.uid, call.now
    user_ref = paths.user(db, uid)
    snapshot = user_ref.get()
    stored = snapshot.to_dict() or {}
    version = (keys_version(stored) or 0) + 1
    update: dict[str, Any] = {"keys_version": version}
    shown_version = stored.get("keys_secret_version")
    if not isinstance(shown_version, int) or shown_version < secret_version:
        update.update(
            keys_updated_at=now,
            keys_secret_version=secret_version,
            **keys.shown(),  # what the page shows of the keys: never the key itself
            **keys_account(keys, account),
        )
    batch = db.batch()
    if snapshot.exists:
        batch.update(user_ref, update, option=unchanged_since(db, snapshot))
    else:
        batch.create(user_ref, {**update, "email": call.who.email, "created_at": now})
        switches.set_trading(batch, db, uid, False, now)
    audit_event(
        batch,
        db,
        uid,
        "keys_saved",
        now,
        uid,
        {"key_id": keys.masked_key_id(), "paper": keys.paper, "keys_version": version},
    )
    batch.commit()
    return version


@endpoint(RemoveKeysRequest, Limit(5, 300))
def remove_alpaca_keys(call: Call[RemoveKeysRequest]) -> dict[str, Any]:
    """Delete the caller's secret (after asking Alpaca to revoke a Connect with Alpaca token
    in it); the pulse stops syncing them. Exits resting at Alpaca are cancelled there or left
    working, as the person says (asked first)."""
    db, uid, now = call.db, call.who.uid, call.now
    resting = settle_resting(call, call.request.cancel_resting, "removing your keys")
    removed, revoked = _forget_keys(call)
    batch = db.batch()
    user_ref = paths.user(db, uid)
    if user_ref.get().exists:
        batch.update(
            user_ref,
            {
                "keys_version": firestore.Increment(1),
                "keys_updated_at": now,
                "key_id_masked": firestore.DELETE_FIELD,
                "keys_paper": firestore.DELETE_FIELD,
                "keys_account_id": firestore.DELETE_FIELD,
                "keys_may_trade": firestore.DELETE_FIELD,
            },
        )
    audit_event(
        batch,
        db,
        uid,
        "keys_removed",
        now,
        uid,
        {"had_keys": removed, "connection_revoked": revoked},
    )
    batch.commit()
    logger.info("keys.removed", uid=uid, had_keys=removed, connection_revoked=revoked)
    return {"removed": removed, "connection_revoked": revoked, **resting}


RESTING_EXITS = "RESTING_EXITS"
"""The refusal's reason when exits rest at Alpaca and the person has not said what becomes of
them (the page asks, then calls again with `cancel_resting`)."""


def settle_resting(call: Call[Any], cancel: bool | None, doing: str) -> dict[str, Any]:
    """The person's exits resting at Alpaca, before their keys go: asked about first (a
    FAILED_PRECONDITION naming them), then cancelled there or left working as they said."""
    working = [
        (doc.reference, doc.to_dict() or {})
        for doc in queries.open_orders(call.db, call.who.uid).stream()
        if (doc.to_dict() or {}).get("kind") == "resting"
    ]
    if not working:
        return {}
    symbols = sorted({str(order.get("symbol")) for _, order in working})
    if cancel is None:
        raise https_fn.HttpsError(
            Code.FAILED_PRECONDITION,
            f"{len(working)} of your exits rest at Alpaca ({', '.join(symbols)}): say whether "
            "to cancel them there first; left working, they go on protecting what you hold",
            {"reason": RESTING_EXITS, "symbols": symbols},
        )
    if not cancel:
        return {"resting_left_working": symbols}
    keys = current_keys(call)
    if keys is None:
        raise fail(Code.FAILED_PRECONDITION, "your keys cannot be read: nothing was cancelled")
    broker = call.platform.brokers(keys)
    try:
        for ref, order in working:
            found = broker.find_order(ref.id)
            if found is not None and not found.all_final:
                broker.cancel_order(found.id)
            why = f"cancelled by you, {doing}"
            batch = call.db.batch()
            batch.update(ref, {"status": "canceled", "open": False, "reason": why})
            batch.set(
                paths.user(call.db, call.who.uid),
                {"orders_pending": firestore.Increment(-1)},
                merge=True,
            )
            trade = paths.shadow_trades(call.db, call.who.uid).document(str(order["trade_id"]))
            batch.update(trade, {"resting": firestore.DELETE_FIELD, "resting_problem": why})
            batch.commit()
    except BrokerError as error:
        raise fail(Code.UNAVAILABLE, f"Alpaca: {error.message}; nothing else changed") from None
    finally:
        broker.close()
    return {"resting_cancelled": symbols}


def _forget_keys(call: Call[Any]) -> tuple[bool, bool | None]:
    """Delete the caller's secret. When it holds a Connect with Alpaca token, Alpaca is asked to
    revoke it first; a revocation Alpaca does not confirm is kept and asked again until it is
    (`revocation`). Returns whether there was a secret, and whether Alpaca confirmed the
    revocation now (None: there was no token, as with pasted keys)."""
    uid = call.who.uid
    keys = current_keys(call)
    revoked = revocation.revoke(call.services, uid, keys) if keys is not None else None
    return call.platform.keys.delete(uid), revoked


def current_keys(call: Call[Any]) -> AlpacaKeys | None:
    """The caller's keys as stored now (None: none, or unreadable)."""
    try:
        return call.platform.keys.load(call.who.uid, None)
    except KeyStoreError:
        return None  # unreadable: what is asked (removing, replacing) goes on


def revoke_replaced(call: Call[Any], before: AlpacaKeys | None, now: AlpacaKeys) -> bool | None:
    """A Connect with Alpaca token replaced by other keys or another connection is revoked
    (None: nothing was replaced that needs it)."""
    if before is None or before.oauth_token is None:
        return None
    if now.oauth_token is not None and (
        now.oauth_token.get_secret_value() == before.oauth_token.get_secret_value()
    ):
        return None
    return revocation.revoke(call.services, call.who.uid, before)


# -- the account ---------------------------------------------------------------------------------


@endpoint(DeleteAccountRequest, Limit(3, 300), finishes_deletion=True)
def delete_my_account(call: Call[DeleteAccountRequest]) -> dict[str, Any]:
    """Delete the caller's secret, every document under `users/{uid}` and the Auth user."""
    db, uid, now = call.db, call.who.uid, call.now
    record = paths.deleted_account(db, uid)
    # first: from here on every other call with this person's token is refused
    resting = settle_resting(call, call.request.cancel_resting, "deleting your account")
    record.set({"state": "deleting", "requested_at": now}, merge=True)
    secret_removed, revoked = _forget_keys(call)
    deleted = db.recursive_delete(paths.user(db, uid))
    for pending in queries.oauth_states_of(db, uid).stream():  # Connect with Alpaca, unused
        pending.reference.delete()
    call.services.delete_auth_user(uid)
    db.recursive_delete(paths.rate_limits(db, uid))
    record.set(
        {
            "state": "deleted",
            "deleted_at": now,
            "documents_deleted": deleted,
            "secret_removed": secret_removed,
            "connection_revoked": revoked,
        },
        merge=True,
    )
    logger.info("account.deleted", uid=uid, documents_deleted=deleted)
    return {
        "deleted": True,
        "documents_deleted": deleted,
        "secret_removed": secret_removed,
        "connection_revoked": revoked,
        **resting,
    }
