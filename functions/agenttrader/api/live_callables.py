"""Live trading's consent: the person's, for one live Alpaca account (the gate that checks it
before every live entry is `bot.live`).

`allow_live_trading` records, at `users/{uid}/settings/live`, that the person allows this
product to place real orders in the live account their saved keys open, once they have typed
the last four characters of its number as Alpaca gives it (read with their keys at the moment
they consent). `stop_live_trading` revokes it in one call. Both are audited. The operator
decides first: while `LIVE_TRADING` is off, no consent is taken. Consent is for one account
(`account_id`): keys for another account need it again."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from agenttrader.api.callables import Empty
from agenttrader.api.guard import Call, Code, Limit, StrictInput, endpoint, fail
from agenttrader.api.messages import label
from agenttrader.bot import live
from agenttrader.broker.answers import AccountSnapshot
from agenttrader.store import paths
from agenttrader.store.audit import audit_event
from agenttrader.store.models import keys_version

LIVE_LIMIT = Limit(10, 60)


class ConsentRequest(StrictInput):
    account_last4: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{4}$")]


def live_keys_refusal(profile: dict[str, Any], what: str) -> str | None:
    """Why the saved keys, as the profile shows them, cannot serve `what` (live trading, a
    live strategy): none saved, paper keys, or a connection that did not allow trading."""
    if profile.get("keys_paper") is None:
        return f"save the keys of your live Alpaca account first: {what} needs them"
    if profile["keys_paper"]:
        return (
            f"your saved keys open a paper account: {what} needs the keys of your live Alpaca "
            "account (untick Paper account when you save them)"
        )
    if profile.get("keys_may_trade") is False:
        return (
            f"Connect with Alpaca did not allow trading, which {what} needs: connect again and "
            "allow trading"
        )
    return None


def live_account(call: Call[Any], what: str) -> AccountSnapshot:
    """The live account the caller's saved keys open, read from Alpaca with them now (`what`:
    the thing that needs it, for the refusals). Refused while the operator has not switched
    live trading on, and for no keys, paper keys or a connection that did not allow trading."""
    if not call.platform.live_trading:
        raise fail(Code.FAILED_PRECONDITION, live.OFF)
    profile = paths.user(call.db, call.who.uid).get().to_dict() or {}
    keys = call.platform.keys.load(call.who.uid, keys_version(profile))
    if keys is None:
        raise fail(Code.FAILED_PRECONDITION, str(live_keys_refusal({}, what)))
    why = live_keys_refusal({"keys_paper": keys.paper, "keys_may_trade": keys.may_trade}, what)
    if why is not None:
        raise fail(Code.FAILED_PRECONDITION, why)
    broker = call.platform.brokers(keys)
    try:
        return broker.account()
    finally:
        broker.close()


@endpoint(ConsentRequest, LIVE_LIMIT)
def allow_live_trading(call: Call[ConsentRequest]) -> dict[str, Any]:
    """Record the person's consent to live orders in the live account their keys open (the
    first consent's time is kept: a person's first days of live trading count from it)."""
    db, uid, now = call.db, call.who.uid, call.now
    account = live_account(call, "live trading")
    number = account.account_number or ""
    if call.request.account_last4.upper() != number[-4:].upper():
        raise fail(
            Code.INVALID_ARGUMENT,
            f"{label('account_last4')}: these are not the last four of the live account your "
            "keys open; copy them from your Alpaca dashboard",
            "account_last4",
        )
    before = paths.live_settings(db, uid).get().to_dict() or {}
    consent = {
        "account_id": account.account_id,
        "account_number_last4": number[-4:],
        "consented_at": now,
        "first_consented_at": before.get("first_consented_at") or now,
        "first_days_percent": call.platform.live_first_days_percent,
        "revoked_at": None,
    }
    batch = db.batch()
    batch.set(paths.live_settings(db, uid), consent)
    audit_event(batch, db, uid, "live_consent_given", now, uid, {"account_last4": number[-4:]})
    batch.commit()
    return {"account_number_last4": number[-4:], "consented_at": now.isoformat()}


@endpoint(Empty, LIVE_LIMIT)
def stop_live_trading(call: Call[Empty]) -> dict[str, Any]:
    """Revoke the consent: no new live entry from now on (stops resting at Alpaca stay)."""
    db, uid, now = call.db, call.who.uid, call.now
    ref = paths.live_settings(db, uid)
    held = ref.get()
    if not held.exists or (held.to_dict() or {}).get("revoked_at") is not None:
        return {"revoked": False}  # nothing to revoke: the same answer however often asked
    batch = db.batch()
    batch.update(
        ref, {"revoked_at": now}, option=db.write_option(last_update_time=held.update_time)
    )
    audit_event(batch, db, uid, "live_consent_revoked", now, uid, {})
    batch.commit()
    return {"revoked": True}
