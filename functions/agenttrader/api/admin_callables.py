"""The administrators' callables (a custom claim `admin: true`): the switch for everyone, the
last pulse, one person's switch, and the people list of the Operations view."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from firebase_functions import logger
from pydantic import (
    Field,
    StrictBool,
)

from agenttrader.api.callables import Empty
from agenttrader.api.guard import (
    Call,
    Code,
    DocumentId,
    Limit,
    StrictInput,
    endpoint,
    fail,
)
from agenttrader.core import config
from agenttrader.store import paths, queries, switches
from agenttrader.store.audit import audit_event
from agenttrader.store.firestore_io import get_in_order
from agenttrader.watch.health import Thresholds, last_hour

ADMIN_LIMIT = Limit(60, 60)
"""Shared by every admin callable, counted under `admin`."""


class GlobalTradingRequest(StrictInput):
    enabled: StrictBool
    reason: str = Field(default="", max_length=500)


class UserTradingOffRequest(StrictInput):
    uid: DocumentId
    reason: str = Field(default="", max_length=500)


@endpoint(GlobalTradingRequest, ADMIN_LIMIT, admin_only=True, bucket="admin")
def admin_set_global_trading(call: Call[GlobalTradingRequest]) -> dict[str, Any]:
    """Switch trading on or off for everyone (`ops/trading`)."""
    enabled = call.request.enabled
    switches.set_global_trading(call.db, enabled, call.now, call.who.uid, call.request.reason)
    logger.warn("ops.global_trading", enabled=enabled, by=call.who.uid)
    return {"enabled": enabled}


@endpoint(Empty, ADMIN_LIMIT, admin_only=True, bucket="admin")
def admin_get_last_pulse(call: Call[Empty]) -> dict[str, Any]:
    """The last pulse's summary (`ops/last_pulse`) and the last hour at a glance
    (`last_hour`, by the alerts' thresholds)."""
    doc = paths.last_pulse(call.db).get()
    if not doc.exists:
        raise fail(Code.NOT_FOUND, "no pulse has run yet")
    thresholds = Thresholds(failing_share=float(config.ALERT_FAILING_SHARE.value))
    return {
        **{
            k: v.isoformat() if isinstance(v, datetime) else v
            for k, v in (doc.to_dict() or {}).items()
        },
        "last_hour": last_hour(call.db, call.now, thresholds),
    }


@endpoint(UserTradingOffRequest, ADMIN_LIMIT, admin_only=True, bucket="admin")
def admin_disable_user_trading(call: Call[UserTradingOffRequest]) -> dict[str, Any]:
    """Switch one person's trading off and lock it (`locked_by`, `reason`): they cannot switch
    it back on; only an administrator lifts the lock. The reason is in their audit trail and
    on their page."""
    db, now, uid = call.db, call.now, call.request.uid
    if not paths.user(db, uid).get().exists:
        raise fail(Code.NOT_FOUND, f"no user {uid}")
    reason = call.request.reason
    batch = db.batch()
    switches.set_trading(batch, db, uid, False, now, locked_by=call.who.uid, reason=reason)
    audit_event(
        batch,
        db,
        uid,
        "trading_switched",
        now,
        call.who.uid,
        {"enabled": False, "reason": reason, "locked": True},
    )
    batch.commit()
    return {"uid": uid, "enabled": False, "locked": True}


@endpoint(UserTradingOffRequest, ADMIN_LIMIT, admin_only=True, bucket="admin")
def admin_unlock_user_trading(call: Call[UserTradingOffRequest]) -> dict[str, Any]:
    """Lift an administrator's lock on one person's switch: their trading stays off until they
    switch it on themselves."""
    db, now, uid = call.db, call.now, call.request.uid
    if not paths.user(db, uid).get().exists:
        raise fail(Code.NOT_FOUND, f"no user {uid}")
    batch = db.batch()
    switches.set_trading(batch, db, uid, False, now, updated_by=call.who.uid)
    audit_event(
        batch,
        db,
        uid,
        "trading_unlocked",
        now,
        call.who.uid,
        {"reason": call.request.reason},
    )
    batch.commit()
    return {"uid": uid, "enabled": False, "locked": False}


class PeopleRequest(StrictInput):
    search: str = Field(default="", max_length=200)
    """Only people whose email starts with this."""
    after: str = Field(default="", max_length=400)
    """The page after the one that ended with this email (the last answer's `next`)."""


PEOPLE_PAGE = 25


@endpoint(PeopleRequest, ADMIN_LIMIT, admin_only=True, bucket="admin")
def admin_list_people(call: Call[PeopleRequest]) -> dict[str, Any]:
    """A page of people by email, for the Operations view: email, user id, sync state,
    trading on or off, and the last sync error's message. Admins only."""
    db, request = call.db, call.request
    profiles = list(
        queries.people_by_email(db, request.search, request.after).limit(PEOPLE_PAGE + 1).stream()
    )
    more = len(profiles) > PEOPLE_PAGE
    profiles = profiles[:PEOPLE_PAGE]
    uids = [doc.id for doc in profiles]
    refs = [paths.trading_status(db, uid) for uid in uids]
    refs += [paths.last_sync_error(db, uid) for uid in uids]
    found = get_in_order(db, refs) if refs else []
    switch_docs, error_docs = found[: len(uids)], found[len(uids) :]
    people = []
    for doc, switch, error in zip(profiles, switch_docs, error_docs, strict=True):
        profile = doc.to_dict() or {}
        people.append(
            {
                "uid": doc.id,
                "email": profile.get("email"),
                "sync_state": profile.get("sync_state") or "never synced",
                "trading": switches.switch_is_on(switch.to_dict() if switch.exists else None),
                "last_error": (error.to_dict() or {}).get("message") if error.exists else None,
            }
        )
    next_after = (profiles[-1].to_dict() or {}).get("email") if more else None
    return {"people": people, "next": next_after}
