"""The callable functions' work. Each is declared with `guard.endpoint` (its input model and
rate limit), gets a checked `Call`, and writes its audit event in the same commit as its
changes. `main.py` exposes them; the tests call them directly as (services, auth, data).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from firebase_functions import https_fn, logger
from google.api_core import exceptions as gexc
from google.cloud import firestore
from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    StrictBool,
    field_validator,
)

from agenttrader.api.guard import (
    LIMITS,
    Call,
    Code,
    DocumentId,
    Limit,
    Services,
    StrictInput,
    endpoint,
    fail,
    stored,
)
from agenttrader.bot import signals
from agenttrader.bot.books import recount_closed
from agenttrader.bot.exits import close_position
from agenttrader.bot.lifecycle import State, state_of
from agenttrader.bot.person import Person, trading_day
from agenttrader.bot.settings import read_limits
from agenttrader.bot.strategies import DEFAULT_STRATEGY, STRATEGIES, registered
from agenttrader.broker.alpaca import BrokerError
from agenttrader.broker.keystore import AlpacaKeys, KeyStoreError
from agenttrader.broker.oauth import revoke_token
from agenttrader.core.errors import ErrorCode
from agenttrader.pulse import sync
from agenttrader.pulse.cadence import PulseState
from agenttrader.store import paths, queries, switches
from agenttrader.store.audit import audit_event
from agenttrader.store.firestore_io import get_in_order
from agenttrader.store.models import (
    ShadowTrade,
    StoredSnapshot,
    Writer,
    count_open_trades,
    keys_version,
    open_trades_count,
)
from agenttrader.store.optimistic import retried, unchanged_since
from agenttrader.store.totals import count_open_trades_once

__all__ = ["LIMITS", "Services"]

SYMBOL_PATTERN = r"^[A-Z]{1,5}(\.[A-Z]{1,2})?$"
ADMIN_LIMIT = Limit(60, 60)
"""Shared by every admin callable, counted under `admin`."""


class SignalRequest(StrictInput):
    symbol: str = Field(min_length=1, max_length=8, pattern=SYMBOL_PATTERN)
    strategy: Annotated[str, Field(max_length=40), AfterValidator(registered)] = DEFAULT_STRATEGY
    open_shadow_trade: StrictBool = False


class KeysRequest(StrictInput):
    key_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    secret_key: str = Field(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_\-+/=]+$")
    paper: StrictBool = True


class Empty(StrictInput):
    pass


class TradingRequest(StrictInput):
    enabled: StrictBool


class CloseTradeRequest(StrictInput):
    trade_id: DocumentId


class DeleteAccountRequest(StrictInput):
    confirm: StrictBool
    """Must be the JSON value true: 1, 1.0 and "true" are not a confirmation."""

    @field_validator("confirm")
    @classmethod
    def _confirmed(cls, value: bool) -> bool:
        if value is not True:
            raise ValueError("must be true to delete your account")
        return value


class GlobalTradingRequest(StrictInput):
    enabled: StrictBool
    reason: str = Field(default="", max_length=500)


class UserTradingOffRequest(StrictInput):
    uid: DocumentId
    reason: str = Field(default="", max_length=500)


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
    person = sync.user_ref(uid, profile.to_dict() if profile.exists else None, profile.create_time)
    if person.keys_version is None:
        raise fail(Code.FAILED_PRECONDITION, "no Alpaca keys saved: save them first")
    settings = sync.PulseSettings()
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


# -- keys --------------------------------------------------------------------------------------


@endpoint(KeysRequest, Limit(5, 300))
def save_alpaca_keys(call: Call[KeysRequest]) -> dict[str, Any]:
    """Check keys with Alpaca, store them as a new secret version, bump `keys_version`."""
    request, uid = call.request, call.who.uid
    keys = AlpacaKeys(
        key_id=request.key_id, secret_key=SecretStr(request.secret_key), paper=request.paper
    )
    keep_keys(
        call,
        keys,
        Code.INVALID_ARGUMENT,
        "Alpaca refused these keys: check the key id and secret",
    )
    new_version = retried(lambda: provision_keys(call, keys))
    logger.info("keys.saved", uid=uid, keys_version=new_version)
    return {"key_id": keys.masked_key_id(), "paper": keys.paper, "keys_version": new_version}


def keep_keys(call: Call[Any], keys: AlpacaKeys, refused: Code, message: str) -> None:
    """Check a credential with Alpaca (`refused` with `message` when Alpaca refuses it), then
    store it as a new version of the caller's secret."""
    broker = call.platform.brokers(keys)
    try:
        broker.account()
    except BrokerError as error:
        if error.code == ErrorCode.ALPACA_UNAUTHORIZED:
            raise fail(refused, message) from None
        raise
    finally:
        broker.close()
    call.platform.keys.save(call.who.uid, keys)


def provision_keys(call: Call[Any], keys: AlpacaKeys) -> int:
    """Bump keys_version (creating the profile, with trading off, on first use) and audit it,
    in one commit that fails if another call changed the profile in between."""
    db, uid, now = call.db, call.who.uid, call.now
    user_ref = paths.user(db, uid)
    snapshot = user_ref.get()
    version = (keys_version(snapshot.to_dict()) or 0) + 1
    update: dict[str, Any] = {
        "keys_version": version,
        "keys_updated_at": now,
        **keys.shown(),  # what the page shows of the keys: never the key itself
    }
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


@endpoint(Empty, Limit(5, 300))
def remove_alpaca_keys(call: Call[Empty]) -> dict[str, Any]:
    """Delete the caller's secret (after asking Alpaca to revoke a Connect with Alpaca token
    in it); the pulse stops syncing them."""
    db, uid, now = call.db, call.who.uid, call.now
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
    return {"removed": removed, "connection_revoked": revoked}


def _forget_keys(call: Call[Any]) -> tuple[bool, bool | None]:
    """Delete the caller's secret. When it holds a Connect with Alpaca token, Alpaca is asked to
    revoke it first (while the product still holds it, so a failure can be told and tried
    again by removing again). Returns whether there was a secret, and whether Alpaca revoked
    the token (None: there was no token, as with pasted keys; False: the person must end the
    app's access in Alpaca's dashboard)."""
    uid, app = call.who.uid, call.services.oauth
    try:
        keys = call.platform.keys.load(uid, None)
    except KeyStoreError:
        keys = None  # unreadable: deleting it is still what was asked
    revoked: bool | None = None
    if keys is not None and keys.oauth_token is not None:
        revoked = (
            app is not None
            and bool(app.revoke_url)
            and revoke_token(
                app.revoke_url,
                app.client_id,
                app.client_secret(),
                keys.oauth_token.get_secret_value(),
            )
        )
    return call.platform.keys.delete(uid), revoked


# -- switches and trades -----------------------------------------------------------------------


@endpoint(TradingRequest, Limit(20, 60))
def set_trading_enabled(call: Call[TradingRequest]) -> dict[str, Any]:
    """The caller's own kill-switch."""
    db, uid, now, enabled = call.db, call.who.uid, call.now, call.request.enabled
    _ensure_profile(db, uid, call.who.email, now)
    batch = db.batch()
    switches.set_trading(batch, db, uid, enabled, now)
    audit_event(batch, db, uid, "trading_switched", now, uid, {"enabled": enabled})
    batch.commit()
    return {"enabled": enabled}


def _ensure_profile(db: firestore.Client, uid: str, email: str | None, now: datetime) -> None:
    """Create `users/{uid}` unless it exists (a blind create: overlapping calls never wait)."""
    try:
        paths.user(db, uid).create({"email": email, "created_at": now})
    except gexc.Conflict:
        pass


@endpoint(CloseTradeRequest, Limit(20, 60))
def close_shadow_trade(call: Call[CloseTradeRequest]) -> dict[str, Any]:
    """Close one of the caller's open trades: a shadow trade at once at the latest price; a
    paper trade with a closing order at Alpaca (sent now while the market is open, otherwise
    at the next open), its exit price and P&L following the order's fill."""
    ref = paths.shadow_trades(call.db, call.who.uid).document(call.request.trade_id)
    trade = _open_trade(ref)
    with _closer(call) as (person, prices):
        answer = _close_one(call, person, ref.id, trade, prices([trade.symbol]))
    if answer["state"] == State.CLOSED:
        recount_closed(call.db, call.who.uid, call.now)
    return answer


@endpoint(Empty, Limit(5, 60))
def close_all_positions(call: Call[Empty]) -> dict[str, Any]:
    """Close every open trade of the caller's (shadow trades at once, paper trades through
    closing orders); trades still being opened or closed are left to their orders."""
    db, uid = call.db, call.who.uid
    trades = [(doc.id, stored(ShadowTrade, doc)) for doc in queries.open_trades(db, uid).stream()]
    closed, left = [], []
    with _closer(call) as (person, prices):
        price_of = prices(sorted({t.symbol for _, t in trades})) if trades else {}
        for trade_id, trade in trades:
            try:  # a trade still opening or closing is refused: left to its order
                closed.append(_close_one(call, person, trade_id, trade, price_of))
            except https_fn.HttpsError:
                left.append(trade_id)
    if any(c["state"] == State.CLOSED for c in closed):
        recount_closed(db, uid, call.now)
    return {"closed": closed, "left": left}


@contextlib.contextmanager
def _closer(
    call: Call[Any],
) -> Iterator[tuple[Person, Callable[[list[str]], dict[str, Decimal]]]]:
    """The caller as the bot sees them (their keys, their broker, the market's state as the
    pulse last read Alpaca's clock, and the global switch), and a price look-up."""
    db, uid, now = call.db, call.who.uid, call.now
    profile, state_doc, halt = get_in_order(
        db, [paths.user(db, uid), paths.pulse_state(db), paths.global_trading(db)]
    )
    keys = call.platform.keys.load(uid, keys_version(profile.to_dict()))
    if keys is None:
        raise fail(Code.FAILED_PRECONDITION, "no Alpaca keys saved: a price is needed to close")
    clock = PulseState.from_document(state_doc.to_dict() if state_doc.exists else None)
    halted = switches.halts_everyone(halt.to_dict() if halt.exists else None)
    # an order leaves only while the market is open and nobody halted trading for everyone;
    # otherwise the pulse sends it once both are true again
    market_open = clock.is_open is True and clock.clock_is_current(now) and not halted
    broker = call.platform.brokers(keys)
    person = Person(
        call.platform,
        uid,
        uid,
        keys,
        broker,
        f"call-{uuid.uuid4().hex}",
        now,
        trading_day(now) if market_open else "",
        None,
    )

    def prices(symbols: list[str]) -> dict[str, Decimal]:
        return broker.latest_prices(symbols)

    try:
        yield person, prices
    except BrokerError as error:
        raise fail(Code.UNAVAILABLE, f"Alpaca: {error.message}") from None
    finally:
        broker.close()


def _close_one(
    call: Call[Any],
    person: Person,
    trade_id: str,
    trade: ShadowTrade,
    prices: dict[str, Decimal],
) -> dict[str, Any]:
    price = prices.get(trade.symbol)
    if price is None:
        raise fail(Code.UNAVAILABLE, f"Alpaca has no recent trade for {trade.symbol}")
    if state_of(trade.model_dump()) is not State.OPEN:
        raise fail(
            Code.FAILED_PRECONDITION,
            f"your {trade.symbol} position is still being "
            f"{'opened' if trade.state == State.OPENING else 'closed'}; its order decides",
        )
    db, uid, now = call.db, call.who.uid, call.now

    def audited(writer: Writer, doc: dict[str, Any]) -> None:
        audit_event(writer, db, uid, "shadow_trade_closed", now, uid, {"trade_id": trade_id})

    written = close_position(person, trade_id, price, "closed by you", also=audited)
    if written is None:
        raise fail(Code.FAILED_PRECONDITION, f"trade {trade_id} is already closed")
    answer = {"trade_id": trade_id, "state": written.get("state")}
    if written.get("state") == State.CLOSED:
        answer.update(exit_price=written["exit_price"], realized_pnl=written["realized_pnl"])
    else:
        answer.update(order_id=written.get("close_order_id"), sent=bool(person.day))
    return answer


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


@endpoint(DeleteAccountRequest, Limit(3, 300), finishes_deletion=True)
def delete_my_account(call: Call[DeleteAccountRequest]) -> dict[str, Any]:
    """Delete the caller's secret, every document under `users/{uid}` and the Auth user."""
    db, uid, now = call.db, call.who.uid, call.now
    record = paths.deleted_account(db, uid)
    # first: from here on every other call with this person's token is refused
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
    }


# -- administrators ----------------------------------------------------------------------------


@endpoint(GlobalTradingRequest, ADMIN_LIMIT, admin_only=True, bucket="admin")
def admin_set_global_trading(call: Call[GlobalTradingRequest]) -> dict[str, Any]:
    """Switch trading on or off for everyone (`ops/trading`)."""
    enabled = call.request.enabled
    switches.set_global_trading(call.db, enabled, call.now, call.who.uid, call.request.reason)
    logger.warn("ops.global_trading", enabled=enabled, by=call.who.uid)
    return {"enabled": enabled}


@endpoint(Empty, ADMIN_LIMIT, admin_only=True, bucket="admin")
def admin_get_last_pulse(call: Call[Empty]) -> dict[str, Any]:
    """The last pulse's summary (`ops/last_pulse`)."""
    doc = paths.last_pulse(call.db).get()
    if not doc.exists:
        raise fail(Code.NOT_FOUND, "no pulse has run yet")
    return {
        k: v.isoformat() if isinstance(v, datetime) else v for k, v in (doc.to_dict() or {}).items()
    }


@endpoint(UserTradingOffRequest, ADMIN_LIMIT, admin_only=True, bucket="admin")
def admin_disable_user_trading(call: Call[UserTradingOffRequest]) -> dict[str, Any]:
    """Switch one person's trading off, with the reason in their audit trail."""
    db, now, uid = call.db, call.now, call.request.uid
    if not paths.user(db, uid).get().exists:
        raise fail(Code.NOT_FOUND, f"no user {uid}")
    batch = db.batch()
    switches.set_trading(batch, db, uid, False, now)
    audit_event(
        batch,
        db,
        uid,
        "trading_switched",
        now,
        call.who.uid,
        {"enabled": False, "reason": call.request.reason},
    )
    batch.commit()
    return {"uid": uid, "enabled": False}


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
