"""The callable functions' work. Each is declared with `guard.endpoint` (its input model and
rate limit), gets a checked `Call`, and writes its audit event in the same commit as its
changes. `main.py` exposes them; the tests call them directly as (services, auth, data).
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from firebase_functions import logger
from google.api_core import exceptions as gexc
from google.cloud import firestore
from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
)

from agenttrader.api.guard import (
    LIMITS,
    Call,
    Code,
    Limit,
    Services,
    StrictInput,
    endpoint,
    fail,
    stored,
)
from agenttrader.bot import signals
from agenttrader.bot.settings import read_limits
from agenttrader.bot.strategies import DEFAULT_STRATEGY, STRATEGIES, registered
from agenttrader.broker.keystore import AlpacaKeys
from agenttrader.core.errors import ErrorCode
from agenttrader.pulse import people, sync
from agenttrader.store import paths, switches
from agenttrader.store.audit import audit_event
from agenttrader.store.firestore_io import get_in_order
from agenttrader.store.models import (
    StoredSnapshot,
    count_open_trades,
    keys_version,
    open_trades_count,
)
from agenttrader.store.totals import count_open_trades_once

__all__ = ["LIMITS", "Services"]

SYMBOL_PATTERN = r"^[A-Z]{1,5}(\.[A-Z]{1,2})?$"


class SignalRequest(StrictInput):
    symbol: str = Field(min_length=1, max_length=8, pattern=SYMBOL_PATTERN)
    strategy: Annotated[str, Field(max_length=40), AfterValidator(registered)] = DEFAULT_STRATEGY
    open_shadow_trade: StrictBool = False


class Empty(StrictInput):
    pass


class TradingRequest(StrictInput):
    enabled: StrictBool


# -- signals -----------------------------------------------------------------------------------


@endpoint(SignalRequest, Limit(10, 60))
def generate_trading_signal(call: Call[SignalRequest]) -> dict[str, Any]:
    """Run a strategy on one symbol, size it to buying power, store it (and its shadow trade)."""
    request, now, db, uid = call.request, call.now, call.db, call.who.uid
    snapshot, keys, max_position, counted = _signal_inputs(call)
    strategy = STRATEGIES[request.strategy]
    broker = call.platform.brokers(keys)
    try:
        bars = broker.daily_bars(request.symbol, strategy.lookback_days)
        price = broker.latest_prices([request.symbol]).get(request.symbol)
    finally:
        broker.close()
    if price is None or price <= 0:
        raise fail(Code.NOT_FOUND, f"Alpaca has no recent trade for {request.symbol}")
    sized = signals.size(
        strategy.decide(bars), snapshot, price, call.services.buying_power_fraction, max_position
    )
    opened = signals.opens_trade(sized, request.open_shadow_trade)
    signal_ref = paths.signals(db, uid).document()
    signal = signals.signal_document(
        request.symbol, sized, price, strategy.id, snapshot.buying_power, opened, now
    )
    batch = db.batch()
    batch.set(signal_ref, signal)
    trade_id = None
    if opened and sized.action != "HOLD":
        if not counted:
            count_open_trades_once(db, uid)  # the entry adds to a count, so count first
        trade_id = signal_ref.id
        batch.set(
            paths.shadow_trades(db, uid).document(trade_id),
            signals.shadow_trade_document(
                request.symbol, sized.action, sized.quantity, price, now, signal_ref.id
            ),
        )
        count_open_trades(batch, db, uid, +1)
    audit_event(
        batch,
        db,
        uid,
        "signal_generated",
        now,
        uid,
        {"signal_id": signal_ref.id, "symbol": request.symbol, "action": sized.action},
    )
    batch.commit()
    logger.info("signal.generated", uid=uid, symbol=request.symbol, action=sized.action)
    return {
        "id": signal_ref.id,
        **{k: v for k, v in signal.items() if k != "created_at"},
        "created_at": now.isoformat(),
        "shadow_trade_id": trade_id,
    }


def _signal_inputs(
    call: Call[SignalRequest],
) -> tuple[StoredSnapshot, AlpacaKeys, Decimal, bool]:
    """The snapshot, keys and position limit a signal needs, and whether the person's open
    trades are counted in their profile; or FAILED_PRECONDITION saying what is missing."""
    db, uid = call.db, call.who.uid
    user_doc, sync_doc, snapshot_doc, freshness_doc, risk_doc = _trading_allowed(
        db,
        uid,
        paths.user(db, uid),
        paths.sync_status(db, uid),
        paths.account_snapshot(db, uid),
        paths.freshness(db),
        paths.risk_settings(db, uid),
    )
    if not snapshot_doc.exists:
        raise fail(
            Code.FAILED_PRECONDITION,
            "no Alpaca account snapshot yet: save your keys and wait for the next sync "
            "(Sync status says why a sync failed)",
        )
    if not _fresh(sync_doc.to_dict() if sync_doc.exists else None, freshness_doc, call):
        raise fail(
            Code.FAILED_PRECONDITION,
            "your Alpaca account data is stale: check Sync status and your keys",
        )
    snapshot = stored(StoredSnapshot, snapshot_doc)
    profile = user_doc.to_dict() or {}
    keys = call.platform.keys.load(uid, keys_version(profile))
    if keys is None:
        raise fail(Code.FAILED_PRECONDITION, "no Alpaca keys saved: save them first")
    counted = open_trades_count(profile) is not None
    return snapshot, keys, read_limits(risk_doc).max_position_usd, counted


def _trading_allowed(
    db: firestore.Client, uid: str, *also: firestore.DocumentReference
) -> list[firestore.DocumentSnapshot[Any]]:
    """FAILED_PRECONDITION unless both switches let the person trade; in the same batched
    read, the documents `also` names, in order."""
    halt, switch, *found = get_in_order(
        db, [paths.global_trading(db), paths.trading_status(db, uid), *also]
    )
    if switches.halts_everyone(halt.to_dict() if halt.exists else None):
        raise fail(Code.FAILED_PRECONDITION, "trading is halted for everyone by the operators")
    if not switches.switch_is_on(switch.to_dict() if switch.exists else None):
        raise fail(Code.FAILED_PRECONDITION, "trading is switched off for your account")
    return found


def _fresh(
    sync: dict[str, Any] | None, freshness: firestore.DocumentSnapshot[Any], call: Call[Any]
) -> bool:
    """The person's data is recent: their own last success, or, while their sync is healthy,
    the last run (which writes nothing for a person whose data did not change)."""
    if not sync or sync.get("last_success_at") is None:
        return False
    synced_at: datetime = sync["last_success_at"]
    healthy = not sync.get("consecutive_failures") and not sync.get("last_error_code")
    run_at = (freshness.to_dict() or {}).get("finished_at") if freshness.exists else None
    if healthy and run_at is not None:
        synced_at = max(synced_at, run_at)
    return call.now - synced_at <= call.services.snapshot_max_age


# -- sync ------------------------------------------------------------------------------------------


@endpoint(Empty, Limit(3, 60))
def request_sync(call: Call[Empty]) -> dict[str, Any]:
    """Sync the caller's account and their trades' marks now, whatever the market's cadence.
    No order is sent, followed or cancelled here: that is the pulse's, under its lease."""
    db, uid = call.db, call.who.uid
    (profile,) = _trading_allowed(db, uid, paths.user(db, uid))
    person = people.user_ref(
        uid, profile.to_dict() if profile.exists else None, profile.create_time
    )
    if person.keys_version is None:
        raise fail(Code.FAILED_PRECONDITION, "no Alpaca keys saved: save them first")
    settings = people.PulseSettings()
    outcome, codes = sync.sync_one_user(
        call.platform,
        person,
        f"request-{uuid.uuid4().hex}",
        time.monotonic() + settings.deadline_s,
        settings,
        bot=False,  # orders are the pulse's, under its lease
    )
    if outcome == "failed":
        code = codes[0] if codes else None
        error = paths.last_sync_error(db, uid).get().to_dict() or {}
        raise fail(
            Code.FAILED_PRECONDITION if code == ErrorCode.ALPACA_UNAUTHORIZED else Code.UNAVAILABLE,
            str(error.get("message", "the sync failed; it is tried again at the next pulse")),
        )
    return {"outcome": outcome}


# -- switches and trades -----------------------------------------------------------------------


@endpoint(TradingRequest, Limit(20, 60))
def set_trading_enabled(call: Call[TradingRequest]) -> dict[str, Any]:
    """The caller's own kill-switch, changed only here (the rules let nobody write it). The
    person switches back on after their own switch-off or a risk trip; an administrator's
    switch-off is a lock (`locked_by`, `reason`) only an administrator lifts."""
    db, uid, now, enabled = call.db, call.who.uid, call.now, call.request.enabled
    _ensure_profile(db, uid, call.who.email, now)
    ref = paths.trading_status(db, uid)
    current = ref.get()
    lock = switches.lock_of(current.to_dict() if current.exists else None)
    if lock is not None:
        if not enabled:
            return {"enabled": False}  # off already, and it stays locked
        raise fail(
            Code.FAILED_PRECONDITION,
            f"an administrator switched your trading off{': ' + lock if lock else ''}. Only an "
            "administrator can switch it back on",
        )
    batch = db.batch()
    switches.set_trading(batch, db, uid, enabled, now, updated_by=uid)
    audit_event(batch, db, uid, "trading_switched", now, uid, {"enabled": enabled})
    batch.commit()
    return {"enabled": enabled}


def _ensure_profile(db: firestore.Client, uid: str, email: str | None, now: datetime) -> None:
    """Create `users/{uid}` unless it exists (a blind create: overlapping calls never wait)."""
    try:
        paths.user(db, uid).create({"email": email, "created_at": now})
    except gexc.Conflict:
        pass
