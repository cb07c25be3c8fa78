"""The callables that set up the bot: a person's strategies and risk limits. Each change bumps
`bot_version` in the profile (so the pulse reads them again) and is audited, in one commit."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from google.cloud import firestore
from pydantic import AfterValidator, Field, StrictBool, StrictInt, field_validator

from agenttrader.api.callables import SYMBOL_PATTERN
from agenttrader.api.guard import (
    Call,
    Code,
    DocumentId,
    Limit,
    StrictInput,
    endpoint,
    fail,
)
from agenttrader.api.live_callables import live_keys_refusal
from agenttrader.api.messages import label
from agenttrader.bot import live
from agenttrader.bot.lifecycle import relevelled
from agenttrader.bot.settings import (
    MAX_SYMBOLS,
    RiskLimits,
    bump_bot_version,
    read_limits,
)
from agenttrader.bot.strategies import registered
from agenttrader.core.money import plain
from agenttrader.store import paths, queries
from agenttrader.store.audit import audit_event
from agenttrader.store.firestore_io import get_in_order
from agenttrader.store.models import at_broker
from agenttrader.store.optimistic import retried, unchanged_since

MAX_STRATEGIES = 10
"""Strategies one person may keep."""


def _positive(value: str) -> str:
    if Decimal(value) <= 0:
        raise ValueError("must be more than 0")
    return value


def _normalised(value: str) -> str:
    """As stored: a plain decimal without leading zeros ("0100" is "100")."""
    return plain(Decimal(value))


# ASCII digits only ([0-9], not \d, which takes any script's digits: "１０００", "١٠٠٠")
Money = Annotated[
    str,
    Field(pattern=r"^[0-9]{1,9}(\.[0-9]{1,2})?$"),
    AfterValidator(_positive),
    AfterValidator(_normalised),
]
"""An amount in dollars as a decimal string ("2500", "2500.50")."""
Percent = Annotated[
    str,
    Field(pattern=r"^[0-9]{1,3}(\.[0-9]{1,4})?$"),
    AfterValidator(_positive),
    AfterValidator(_normalised),
]
"""A percentage as a decimal string ("5", "2.5")."""
Symbol = Annotated[str, Field(pattern=SYMBOL_PATTERN)]


def _distinct(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise ValueError("a symbol is listed twice")
    return value


Symbols = Annotated[
    list[Symbol], Field(min_length=1, max_length=MAX_SYMBOLS), AfterValidator(_distinct)
]
"""The symbols a strategy trades: 1 to 20, each once."""


class StrategyRequest(StrictInput):
    id: DocumentId | None = None
    """The strategy to change; none: create one."""
    strategy: Annotated[str, Field(max_length=40), AfterValidator(registered)]
    symbols: Symbols
    allocation_usd: Money
    mode: Literal["shadow", "paper", "live"]
    take_profit_pct: Percent | None = None
    stop_loss_pct: Percent | None = None
    allow_short: StrictBool = False
    """Long-only unless on: a SELL with nothing held then opens a short position."""
    apply_to_open_trades: StrictBool = False
    """A change of take-profit or stop-loss also gives the strategy's open trades the new
    levels (from each one's own entry); otherwise they keep those they entered with."""


class StatusRequest(StrictInput):
    id: DocumentId
    status: Literal["active", "paused"]


class StrategyId(StrictInput):
    id: DocumentId


class RiskRequest(StrictInput):
    max_position_usd: Money
    max_daily_loss_usd: Money
    max_drawdown_pct: Percent
    max_trades_per_day: StrictInt = Field(ge=1, le=1000)

    @field_validator("max_drawdown_pct")
    @classmethod
    def _at_most_100(cls, value: str) -> str:
        if Decimal(value) > 100:
            raise ValueError("must be at most 100")
        return value


STRATEGY_LIMIT = Limit(20, 60)


@endpoint(StrategyRequest, STRATEGY_LIMIT)
def save_strategy(call: Call[StrategyRequest]) -> dict[str, Any]:
    """Create a strategy (paused until started) or change one; a strategy in error becomes
    paused, its error cleared, for the person to start again."""
    request, db, uid = call.request, call.db, call.who.uid
    profile, risk_doc, account = get_in_order(
        db,
        [paths.user(db, uid), paths.risk_settings(db, uid), paths.account_snapshot(db, uid)],
    )
    limits = read_limits(risk_doc)
    if Decimal(request.allocation_usd) > limits.max_position_usd:
        raise fail(
            Code.FAILED_PRECONDITION,
            f"{label('allocation_usd')}: ${request.allocation_usd} is over your "
            f"{label('max_position_usd')} of ${limits.max_position_usd} (Risk limits)",
            "allocation_usd",
        )
    if request.mode == "live":
        _live_allowed(call, profile, risk_doc, request.stop_loss_pct)
    _paper_needs_paper_keys(request.mode, profile)
    if request.allow_short and at_broker(request.mode) and account.exists:
        if (account.to_dict() or {}).get("shorting_enabled") is False:
            raise fail(
                Code.FAILED_PRECONDITION,
                "your Alpaca account cannot sell short: save this strategy without shorting, "
                "or enable shorting at Alpaca first",
            )
    fields: dict[str, Any] = {
        "strategy": request.strategy,
        "symbols": list(request.symbols),
        "allocation_usd": request.allocation_usd,
        "mode": request.mode,
        "take_profit_pct": request.take_profit_pct,
        "stop_loss_pct": request.stop_loss_pct,
        "allow_short": request.allow_short,
        "updated_at": call.now,
    }
    collection = paths.strategies(db, uid)
    if request.id is None:
        ref = collection.document()
        doc = {**fields, "status": "paused", "created_at": call.now}

        def create() -> dict[str, Any]:
            # the count and the create commit together, with a precondition on the profile
            # as read: of racing creates, each round one wins and the others count again
            profile_ref = paths.user(db, uid)
            snapshot = profile_ref.get()
            count = (snapshot.to_dict() or {}).get("strategies_count")
            if not isinstance(count, int) or count < 0:
                count = len(list(collection.limit(MAX_STRATEGIES + 1).select([]).stream()))
            if count >= MAX_STRATEGIES:
                raise fail(
                    Code.FAILED_PRECONDITION,
                    f"you have {MAX_STRATEGIES} strategies, the most one person may keep: "
                    "delete one first",
                )
            batch = db.batch()
            if snapshot.exists:
                batch.update(
                    profile_ref,
                    {"strategies_count": count + 1},
                    option=unchanged_since(db, snapshot),
                )
            else:
                batch.create(profile_ref, {"strategies_count": count + 1})
            batch.create(ref, doc)
            _changed(batch, call, "strategy_saved", {"strategy_id": ref.id, "created": True})
            batch.commit()
            return {"id": ref.id, **_shown(doc)}

        return retried(create)
    ref = collection.document(request.id)

    def attempt() -> dict[str, Any]:
        snapshot = _existing(ref)
        current = snapshot.to_dict() or {}
        update = dict(fields)
        if current.get("status") == "error":
            update.update(status="paused", last_error=firestore.DELETE_FIELD)
        batch = db.batch()
        batch.update(ref, update, option=unchanged_since(db, snapshot))
        relevelled = _relevel(batch, call, ref.id) if request.apply_to_open_trades else []
        details = {"strategy_id": ref.id, "created": False, "open_trades_relevelled": relevelled}
        _changed(batch, call, "strategy_saved", details)
        batch.commit()
        status = "paused" if current.get("status") == "error" else current.get("status")
        return {"id": ref.id, **_shown({**fields, "status": status}), "relevelled": relevelled}

    return retried(attempt)


@endpoint(StatusRequest, STRATEGY_LIMIT)
def set_strategy_status(call: Call[StatusRequest]) -> dict[str, Any]:
    """Start (`active`) or pause a strategy. An active strategy runs while both switches are
    on and the market is open, and resumes by itself after any restart."""
    db, uid, status = call.db, call.who.uid, call.request.status
    ref = paths.strategies(db, uid).document(call.request.id)

    def attempt() -> dict[str, Any]:
        snapshot = _existing(ref)
        current = snapshot.to_dict() or {}
        if status == "active" and current.get("mode") == "paper":
            _paper_needs_paper_keys("paper", paths.user(db, uid).get())
        if status == "active" and current.get("mode") == "live":
            profile, risk_doc = get_in_order(
                db, [paths.user(db, uid), paths.risk_settings(db, uid)]
            )
            _live_allowed(call, profile, risk_doc, current.get("stop_loss_pct"))
        batch = db.batch()
        batch.update(
            ref,
            {"status": status, "updated_at": call.now, "last_error": firestore.DELETE_FIELD},
            option=unchanged_since(db, snapshot),
        )
        _changed(batch, call, "strategy_status", {"strategy_id": ref.id, "status": status})
        batch.commit()
        return {"id": ref.id, "status": status}

    return retried(attempt)


@endpoint(StrategyId, STRATEGY_LIMIT)
def delete_strategy(call: Call[StrategyId]) -> dict[str, Any]:
    """Delete a strategy. Positions it opened stay open (close them from Open trades)."""
    db, uid = call.db, call.who.uid
    ref = paths.strategies(db, uid).document(call.request.id)

    def attempt() -> dict[str, Any]:
        snapshot = _existing(ref)
        profile_ref = paths.user(db, uid)
        profile = profile_ref.get()
        batch = db.batch()
        batch.delete(ref, option=unchanged_since(db, snapshot))
        count = (profile.to_dict() or {}).get("strategies_count")
        if isinstance(count, int) and count > 0:  # the count the creates check, kept true
            batch.update(
                profile_ref, {"strategies_count": count - 1}, option=unchanged_since(db, profile)
            )
        _changed(batch, call, "strategy_deleted", {"strategy_id": ref.id})
        batch.commit()
        return {"id": ref.id, "deleted": True}

    return retried(attempt)


@endpoint(RiskRequest, Limit(10, 60))
def save_risk_limits(call: Call[RiskRequest]) -> dict[str, Any]:
    """Set the person's risk limits (`settings/risk`)."""
    db, uid = call.db, call.who.uid
    limits = RiskLimits.model_validate(call.request.model_dump())
    batch = db.batch()
    batch.set(paths.risk_settings(db, uid), {**limits.document(), "updated_at": call.now})
    _changed(batch, call, "risk_limits_saved", limits.document())
    batch.commit()
    return limits.document()


def _relevel(batch: firestore.WriteBatch, call: Call[StrategyRequest], sid: str) -> list[str]:
    """Give the strategy's open trades its new levels, each from its own exact entry, in the
    strategy's batch (each trade as read: a fill in between makes the save try again)."""
    db, uid, request = call.db, call.who.uid, call.request
    take = None if request.take_profit_pct is None else Decimal(request.take_profit_pct)
    stop = None if request.stop_loss_pct is None else Decimal(request.stop_loss_pct)
    changed = []
    for snapshot in queries.open_trades_of_strategy(db, uid, sid).stream():
        fields = relevelled(snapshot.to_dict() or {}, take, stop)
        batch.update(snapshot.reference, fields, option=unchanged_since(db, snapshot))
        changed.append(snapshot.id)
    if changed:  # the pulse reads the trades again (it keeps them by this version)
        batch.set(paths.user(db, uid), {"trades_version": firestore.Increment(1)}, merge=True)
    return sorted(changed)


def _existing(ref: firestore.DocumentReference) -> firestore.DocumentSnapshot[Any]:
    snapshot = ref.get()
    if not snapshot.exists:
        raise fail(Code.NOT_FOUND, f"no strategy {ref.id}")
    return snapshot


def _live_allowed(
    call: Call[Any],
    profile: firestore.DocumentSnapshot[Any],
    risk_doc: firestore.DocumentSnapshot[Any],
    stop_loss_pct: str | None,
) -> None:
    """A live strategy is saved or started only when all of it holds: the operator offers
    live trading, the strategy has a stop-loss, the person has set their own max position and
    max daily loss, their saved keys open a live account and may trade (as the profile
    recorded when they were saved, from Alpaca's answer), and they consented to live orders
    in that account. The pulse asks again before every live entry, with the account as Alpaca
    answers then."""
    if not call.platform.live_trading:
        raise fail(Code.FAILED_PRECONDITION, live.OFF)
    if stop_loss_pct is None:
        raise fail(
            Code.INVALID_ARGUMENT,
            f"{label('stop_loss_pct')}: a live strategy needs one, so that each position it "
            "opens has a stop resting at Alpaca",
            "stop_loss_pct",
        )
    risk = risk_doc.to_dict() or {} if risk_doc.exists else {}
    if not (risk.get("max_position_usd") and risk.get("max_daily_loss_usd")):
        raise fail(
            Code.FAILED_PRECONDITION,
            f"a live strategy needs your own {label('max_position_usd')} and "
            f"{label('max_daily_loss_usd')}: save them under Risk limits first",
        )
    saved = profile.to_dict() or {} if profile.exists else {}
    why = live_keys_refusal(saved, "a live strategy")
    if why is None and not saved.get("keys_account_id"):  # keys stored before it was recorded
        why = (
            "save your live account's keys again (or connect with Alpaca again): this site "
            "has not recorded which account they open"
        )
    if why is None:
        consent = paths.live_settings(call.db, call.who.uid).get().to_dict()
        why = live.refusal(True, consent, str(saved.get("keys_account_id") or ""))
    if why is not None:
        raise fail(Code.FAILED_PRECONDITION, why)


def _paper_needs_paper_keys(mode: str, profile: firestore.DocumentSnapshot[Any]) -> None:
    if mode == "paper" and (profile.to_dict() or {}).get("keys_paper") is False:
        raise fail(
            Code.FAILED_PRECONDITION,
            "paper mode trades only with paper keys, and yours are live keys: save paper keys "
            "or use shadow mode",
        )


def _changed(
    batch: firestore.WriteBatch, call: Call[Any], action: str, details: dict[str, Any]
) -> None:
    bump_bot_version(batch, call.db, call.who.uid)
    audit_event(batch, call.db, call.who.uid, action, call.now, call.who.uid, details)


def _shown(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("created_at", "updated_at")}
