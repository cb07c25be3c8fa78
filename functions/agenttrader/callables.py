"""The callable functions' work, as plain functions of (services, auth, data).

Each one: checks the caller, validates input (before anything is counted or changed), takes a
rate-limit token, does its work, and writes an audit event in the same commit as its changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any, TypeVar

from firebase_functions import https_fn, logger
from google.api_core import exceptions as gexc
from google.cloud import firestore
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictBool, field_validator

from agenttrader import paths
from agenttrader.broker import BrokerError
from agenttrader.guard import (
    Caller,
    Code,
    DocumentId,
    Limit,
    admin,
    audit_event,
    caller,
    fail,
    not_deleted,
    parse,
    rate_limit,
    stored,
)
from agenttrader.keystore import AlpacaKeys
from agenttrader.models import ShadowTrade, StoredSnapshot, keys_version
from agenttrader.money import cents, unrealized_pnl
from agenttrader.optimistic import retried, unchanged_since
from agenttrader.pulse import Platform, trading_halted
from agenttrader.strategies import DEFAULT_STRATEGY, STRATEGIES, Decision

InputModel = TypeVar("InputModel", bound=BaseModel)

SYMBOL_PATTERN = r"^[A-Z]{1,5}(\.[A-Z]{1,2})?$"
MIN_NOTIONAL = Decimal(1)
QUANTITY_STEP = Decimal("0.0001")

LIMITS = {
    "generate_trading_signal": Limit(10, 60),
    "save_alpaca_keys": Limit(5, 300),
    "remove_alpaca_keys": Limit(5, 300),
    "set_trading_enabled": Limit(20, 60),
    "close_shadow_trade": Limit(20, 60),
    "delete_my_account": Limit(3, 300),
    "admin": Limit(60, 60),
}


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


class _Input(BaseModel):
    # strict: at the trust boundary 1 is not true and "5" is not a number
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, str_strip_whitespace=True)


class SignalRequest(_Input):
    symbol: str = Field(min_length=1, max_length=8, pattern=SYMBOL_PATTERN)
    strategy: str = Field(default=DEFAULT_STRATEGY, max_length=40)
    open_shadow_trade: StrictBool = False

    @field_validator("strategy")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in STRATEGIES:
            raise ValueError(f"unknown strategy; choose one of {sorted(STRATEGIES)}")
        return value


class KeysRequest(_Input):
    key_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    secret_key: str = Field(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_\-+/=]+$")
    paper: StrictBool = True


class Empty(_Input):
    pass


class TradingRequest(_Input):
    enabled: StrictBool


class CloseTradeRequest(_Input):
    trade_id: DocumentId


class DeleteAccountRequest(_Input):
    confirm: StrictBool
    """Must be the JSON value true: 1, 1.0 and "true" are not a confirmation."""

    @field_validator("confirm")
    @classmethod
    def _confirmed(cls, value: bool) -> bool:
        if value is not True:
            raise ValueError("must be true to delete your account")
        return value


class GlobalTradingRequest(_Input):
    enabled: StrictBool
    reason: str = Field(default="", max_length=500)


class UserTradingOffRequest(_Input):
    uid: DocumentId
    reason: str = Field(default="", max_length=500)


def _begin(
    services: Services, who: Caller, model: type[InputModel], data: Any, action: str
) -> tuple[InputModel, datetime]:
    """Validate the input (nothing counted or changed when it is bad), then take a rate-limit
    token for the caller."""
    not_deleted(services.platform.db, who, unfinished_ok=action == "delete_my_account")
    request = parse(model, data)
    now = services.platform.now()
    rate_limit(services.platform.db, who.uid, action, LIMITS[action], now)
    return request, now


# -- signals -----------------------------------------------------------------------------------


def generate_trading_signal(
    services: Services, auth: https_fn.AuthData | None, data: Any
) -> dict[str, Any]:
    who = caller(auth)
    request, now = _begin(services, who, SignalRequest, data, "generate_trading_signal")
    uid = who.uid
    platform = services.platform
    db = platform.db
    snapshot, keys = _signal_inputs(services, uid, now)
    strategy = STRATEGIES[request.strategy]
    broker = platform.brokers(keys)
    try:
        bars = broker.daily_bars(request.symbol, strategy.lookback_days)
        price = broker.latest_prices([request.symbol]).get(request.symbol)
    finally:
        broker.close()
    if price is None or price <= 0:
        raise fail(Code.NOT_FOUND, f"Alpaca has no recent trade for {request.symbol}")
    action, reason, quantity, notional = _sized(
        strategy.decide(bars), snapshot, price, services.buying_power_fraction
    )
    signal_ref = paths.signals(db, uid).document()
    signal = {
        "symbol": request.symbol,
        "action": action,
        "notional_usd": str(notional),
        "quantity": str(quantity),
        "price": str(price),
        "reason": reason,
        "strategy_id": strategy.id,
        "buying_power": str(snapshot.buying_power),
        "status": "SHADOW_OPENED" if request.open_shadow_trade and action != "HOLD" else "NEW",
        "created_at": now,
    }
    batch = db.batch()
    batch.set(signal_ref, signal)
    trade_id = None
    if signal["status"] == "SHADOW_OPENED":
        trade_ref = paths.shadow_trades(db, uid).document(signal_ref.id)
        trade_id = trade_ref.id
        batch.set(
            trade_ref,
            {
                "symbol": request.symbol,
                "side": action,
                "quantity": str(quantity),
                "entry_price": str(price),
                "status": "OPEN",
                "signal_id": signal_ref.id,
                "created_at": now,
            },
        )
    audit_event(
        batch,
        db,
        uid,
        "signal_generated",
        now,
        uid,
        {"signal_id": signal_ref.id, "symbol": request.symbol, "action": action},
    )
    batch.commit()
    logger.info("signal.generated", uid=uid, symbol=request.symbol, action=action)
    return {
        "id": signal_ref.id,
        **{k: v for k, v in signal.items() if k != "created_at"},
        "created_at": now.isoformat(),
        "shadow_trade_id": trade_id,
    }


def _signal_inputs(
    services: Services, uid: str, now: datetime
) -> tuple[StoredSnapshot, AlpacaKeys]:
    """The snapshot and keys a signal needs, or FAILED_PRECONDITION saying what is missing."""
    platform = services.platform
    db = platform.db
    if trading_halted(db):
        raise fail(Code.FAILED_PRECONDITION, "trading is halted for everyone by the operators")
    user_doc, trading_doc, sync_doc, snapshot_doc = _get_in_order(
        db,
        [
            paths.user(db, uid),
            paths.trading_status(db, uid),
            paths.sync_status(db, uid),
            paths.account_snapshot(db, uid),
        ],
    )
    if not (trading_doc.exists and (trading_doc.to_dict() or {}).get("enabled") is True):
        raise fail(Code.FAILED_PRECONDITION, "trading is switched off for your account")
    if not snapshot_doc.exists:
        raise fail(
            Code.FAILED_PRECONDITION,
            "no Alpaca account snapshot yet: save your keys and wait for the next sync "
            "(status/last_sync_error says why a sync failed)",
        )
    last_success = (sync_doc.to_dict() or {}).get("last_success_at") if sync_doc.exists else None
    if last_success is None or now - last_success > services.snapshot_max_age:
        raise fail(
            Code.FAILED_PRECONDITION,
            "your Alpaca account snapshot is stale: check status/last_sync_error and your keys",
        )
    snapshot = stored(StoredSnapshot, snapshot_doc)
    keys = platform.keys.load(uid, keys_version(user_doc.to_dict()))
    if keys is None:
        raise fail(Code.FAILED_PRECONDITION, "no Alpaca keys saved: save them first")
    return snapshot, keys


def _sized(
    decision: Decision, snapshot: StoredSnapshot, price: Decimal, fraction: Decimal
) -> tuple[str, str, Decimal, Decimal]:
    """(action, reason, quantity, notional): a BUY or SELL sized to at most `fraction` of
    buying power, or turned into HOLD with the reason when it cannot be afforded."""
    action, reason = decision.action, decision.reason
    if action == "HOLD":
        return action, reason, Decimal(0), Decimal(0)
    if snapshot.trading_blocked or snapshot.account_blocked:
        return (
            "HOLD",
            f"{reason}; but your Alpaca account is blocked from trading",
            Decimal(0),
            Decimal(0),
        )
    budget = cents(snapshot.buying_power * fraction)
    quantity = (budget / price).quantize(QUANTITY_STEP, rounding=ROUND_DOWN)
    if budget < MIN_NOTIONAL or quantity <= 0:
        return (
            "HOLD",
            f"{reason}; but {float(fraction * 100):g}% of buying power ({snapshot.buying_power}) "
            f"cannot buy any of it at {price}",
            Decimal(0),
            Decimal(0),
        )
    return action, reason, quantity, cents(quantity * price)


def _get_in_order(db: firestore.Client, refs: list[Any]) -> list[Any]:
    """get_all answers in any order; return snapshots in the order asked."""
    by_path = {doc.reference.path: doc for doc in db.get_all(refs)}
    return [by_path[ref.path] for ref in refs]


# -- keys --------------------------------------------------------------------------------------


def save_alpaca_keys(
    services: Services, auth: https_fn.AuthData | None, data: Any
) -> dict[str, Any]:
    who = caller(auth)
    request, now = _begin(services, who, KeysRequest, data, "save_alpaca_keys")
    uid = who.uid
    platform = services.platform
    db = platform.db
    keys = AlpacaKeys(
        key_id=request.key_id, secret_key=SecretStr(request.secret_key), paper=request.paper
    )
    broker = platform.brokers(keys)
    try:
        broker.account()
    except BrokerError as error:
        if error.code == "ALPACA_UNAUTHORIZED":
            raise fail(
                Code.INVALID_ARGUMENT, "Alpaca refused these keys: check the key id and secret"
            ) from None
        raise
    finally:
        broker.close()
    platform.keys.save(uid, keys)
    new_version = retried(lambda: _provision_and_bump(db, uid, who.email, now, keys))
    logger.info("keys.saved", uid=uid, keys_version=new_version)
    return {"key_id": keys.masked_key_id(), "paper": keys.paper, "keys_version": new_version}


def _provision_and_bump(
    db: firestore.Client, uid: str, email: str | None, now: datetime, keys: AlpacaKeys
) -> int:
    """Bump keys_version (creating the profile, with trading off, on first use) and audit it,
    in one commit that fails if another call changed the profile in between."""
    user_ref = paths.user(db, uid)
    snapshot = user_ref.get()
    version = (keys_version(snapshot.to_dict()) or 0) + 1
    update: dict[str, Any] = {"keys_version": version, "keys_updated_at": now}
    batch = db.batch()
    if snapshot.exists:
        batch.update(user_ref, update, option=unchanged_since(db, snapshot))
    else:
        batch.create(user_ref, {**update, "email": email, "created_at": now})
        batch.set(paths.trading_status(db, uid), {"enabled": False, "updated_at": now}, merge=True)
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


def remove_alpaca_keys(
    services: Services, auth: https_fn.AuthData | None, data: Any
) -> dict[str, Any]:
    who = caller(auth)
    request, now = _begin(services, who, Empty, data, "remove_alpaca_keys")
    uid = who.uid
    platform = services.platform
    db = platform.db
    removed = platform.keys.delete(uid)
    batch = db.batch()
    user_ref = paths.user(db, uid)
    if user_ref.get().exists:
        batch.update(user_ref, {"keys_version": firestore.Increment(1), "keys_updated_at": now})
    audit_event(batch, db, uid, "keys_removed", now, uid, {"had_keys": removed})
    batch.commit()
    logger.info("keys.removed", uid=uid, had_keys=removed)
    return {"removed": removed}


# -- switches and trades -----------------------------------------------------------------------


def set_trading_enabled(
    services: Services, auth: https_fn.AuthData | None, data: Any
) -> dict[str, Any]:
    who = caller(auth)
    request, now = _begin(services, who, TradingRequest, data, "set_trading_enabled")
    uid = who.uid
    db = services.platform.db
    _ensure_profile(db, uid, who.email, now)
    batch = db.batch()
    batch.set(paths.trading_status(db, uid), {"enabled": request.enabled, "updated_at": now})
    audit_event(batch, db, uid, "trading_switched", now, uid, {"enabled": request.enabled})
    batch.commit()
    return {"enabled": request.enabled}


def _ensure_profile(db: firestore.Client, uid: str, email: str | None, now: datetime) -> None:
    """Create `users/{uid}` unless it exists (a blind create: overlapping calls never wait)."""
    try:
        paths.user(db, uid).create({"email": email, "created_at": now})
    except gexc.Conflict:
        pass


def close_shadow_trade(
    services: Services, auth: https_fn.AuthData | None, data: Any
) -> dict[str, Any]:
    who = caller(auth)
    request, now = _begin(services, who, CloseTradeRequest, data, "close_shadow_trade")
    uid = who.uid
    platform = services.platform
    db = platform.db
    ref = paths.shadow_trades(db, uid).document(request.trade_id)
    trade = _open_trade(ref)
    keys = platform.keys.load(uid, keys_version(paths.user(db, uid).get().to_dict()))
    if keys is None:
        raise fail(Code.FAILED_PRECONDITION, "no Alpaca keys saved: a price is needed to close")
    broker = platform.brokers(keys)
    try:
        price = broker.latest_prices([trade.symbol]).get(trade.symbol)
    finally:
        broker.close()
    if price is None:
        raise fail(Code.UNAVAILABLE, f"Alpaca has no recent trade for {trade.symbol}")
    realized = retried(lambda: _close(db, ref, uid, now, price))
    return {"trade_id": request.trade_id, "exit_price": str(price), "realized_pnl": str(realized)}


def _open_trade(
    ref: firestore.DocumentReference, snapshot: firestore.DocumentSnapshot[Any] | None = None
) -> ShadowTrade:
    """The open trade at `ref`, or NOT_FOUND / FAILED_PRECONDITION saying why not."""
    doc = snapshot if snapshot is not None else ref.get()
    if not doc.exists:
        raise fail(Code.NOT_FOUND, f"no shadow trade {ref.id}")
    trade = stored(ShadowTrade, doc)
    if trade.status != "OPEN":
        raise fail(Code.FAILED_PRECONDITION, f"shadow trade {ref.id} is already closed")
    return trade


def _close(
    db: firestore.Client,
    ref: firestore.DocumentReference,
    uid: str,
    now: datetime,
    price: Decimal,
) -> Decimal:
    """Close the trade at `price` and audit it, unless it changed since it was read: of
    overlapping closes exactly one wins, the others find it closed."""
    snapshot = ref.get()
    trade = _open_trade(ref, snapshot)
    realized = cents(unrealized_pnl(trade.side, trade.entry_price, trade.quantity, price))
    batch = db.batch()
    batch.update(
        ref,
        {
            "status": "CLOSED",
            "exit_price": str(price),
            "realized_pnl": str(realized),
            "closed_at": now,
        },
        option=unchanged_since(db, snapshot),
    )
    audit_event(
        batch,
        db,
        uid,
        "shadow_trade_closed",
        now,
        uid,
        {"trade_id": ref.id, "exit_price": str(price), "realized_pnl": str(realized)},
    )
    batch.commit()
    return realized


def delete_my_account(
    services: Services, auth: https_fn.AuthData | None, data: Any
) -> dict[str, Any]:
    who = caller(auth)
    request, now = _begin(services, who, DeleteAccountRequest, data, "delete_my_account")
    uid = who.uid
    platform = services.platform
    db = platform.db
    record = paths.deleted_account(db, uid)
    # first: from here on every other call with this person's token is refused
    record.set({"state": "deleting", "requested_at": now}, merge=True)
    secret_removed = platform.keys.delete(uid)
    deleted = db.recursive_delete(paths.user(db, uid))
    services.delete_auth_user(uid)
    db.recursive_delete(paths.rate_limits(db, uid))
    record.set(
        {
            "state": "deleted",
            "deleted_at": now,
            "documents_deleted": deleted,
            "secret_removed": secret_removed,
        },
        merge=True,
    )
    logger.info("account.deleted", uid=uid, documents_deleted=deleted)
    return {"deleted": True, "documents_deleted": deleted, "secret_removed": secret_removed}


# -- administrators ----------------------------------------------------------------------------


def admin_set_global_trading(
    services: Services, auth: https_fn.AuthData | None, data: Any
) -> dict[str, Any]:
    who = admin(auth)
    request, now = _begin(services, who, GlobalTradingRequest, data, "admin")
    db = services.platform.db
    paths.global_trading(db).set(
        {
            "enabled": request.enabled,
            "updated_at": now,
            "updated_by": who.uid,
            "reason": request.reason,
        }
    )
    logger.warn("ops.global_trading", enabled=request.enabled, by=who.uid)
    return {"enabled": request.enabled}


def admin_get_last_pulse(
    services: Services, auth: https_fn.AuthData | None, data: Any
) -> dict[str, Any]:
    who = admin(auth)
    request, now = _begin(services, who, Empty, data, "admin")
    db = services.platform.db
    doc = paths.last_pulse(db).get()
    if not doc.exists:
        raise fail(Code.NOT_FOUND, "no pulse has run yet")
    return {
        k: v.isoformat() if isinstance(v, datetime) else v for k, v in (doc.to_dict() or {}).items()
    }


def admin_disable_user_trading(
    services: Services, auth: https_fn.AuthData | None, data: Any
) -> dict[str, Any]:
    who = admin(auth)
    request, now = _begin(services, who, UserTradingOffRequest, data, "admin")
    db = services.platform.db
    if not paths.user(db, request.uid).get().exists:
        raise fail(Code.NOT_FOUND, f"no user {request.uid}")
    batch = db.batch()
    batch.set(paths.trading_status(db, request.uid), {"enabled": False, "updated_at": now})
    audit_event(
        batch,
        db,
        request.uid,
        "trading_switched",
        now,
        who.uid,
        {"enabled": False, "reason": request.reason},
    )
    batch.commit()
    return {"uid": request.uid, "enabled": False}
