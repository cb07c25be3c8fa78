"""Entering a position: one trade per strategy, symbol and trading day (the trade document
`{strategy}-{symbol}-{day}`, created, never overwritten, with its signal and, in paper mode,
its order), sized to whole shares of the allocation, within the risk limits.

Long-only unless the strategy opts into shorting (`allow_short`): a SELL with nothing held
opens nothing. No entry while the person's switch is off or a risk limit has tripped, and none
in a symbol whose position differs from Alpaca's (`reconcile`) until the difference is gone.
A paper entry is `opening` until its order fills; a shadow one is `open` at once."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

from firebase_functions import logger
from google.api_core import exceptions as gexc

from agenttrader.bot import live, notices, risk
from agenttrader.bot.lifecycle import State, levels_document
from agenttrader.bot.orders import new_order, submit
from agenttrader.bot.person import Person, StrategyFailure
from agenttrader.bot.settings import BotConfig, StrategyDoc
from agenttrader.bot.signals import shadow_trade_document
from agenttrader.bot.strategies import Decision
from agenttrader.broker.answers import AccountSnapshot
from agenttrader.core.errors import ErrorCode
from agenttrader.core.money import Side, plain
from agenttrader.store import paths, queries
from agenttrader.store.models import at_broker, count_open_trades


def entry_id(sid: str, symbol: str, day: str) -> str:
    """The trade (and signal) an entry is: one per strategy, symbol and trading day."""
    return f"{sid}-{symbol}-{day}"


def entry_side(decision: Decision, strategy: StrategyDoc) -> Side | None:
    """The side a decision enters on: BUY, or SELL when the strategy may short (long-only: a
    SELL with nothing held opens nothing); None for a HOLD."""
    if decision.action == "HOLD" or (decision.action == "SELL" and not strategy.allow_short):
        return None
    return decision.action


def entry_quantity(allocation: Decimal, price: Decimal) -> Decimal:
    """Whole shares of the allocation at `price` (0: it buys no whole share)."""
    return (allocation / price).to_integral_value(rounding=ROUND_DOWN)


def stop_entries(person: Person, breach: risk.Breach) -> None:
    """A limit is breached: the person's trading switches off (recorded, audited) and this run
    makes no more entries; exits and orders go on."""
    risk.trip(person.db, person.uid, breach, person.now, person.run_id)
    logger.warn("bot.risk_tripped", uid=person.uid, limit=breach.limit)
    person.entries_allowed = False


def entered_today(person: Person, trade_id: str) -> bool:
    """Whether today's entry of this strategy and symbol exists (and maybe closed already):
    remembered by the instance, else one read."""
    entered: set[str] = person.platform.memory.recall("entered", person.memory_key) or set()
    if trade_id in entered:
        return True
    if not paths.shadow_trades(person.db, person.uid).document(trade_id).get().exists:
        return False
    _remember(person, trade_id)
    return True


def _remember(person: Person, trade_id: str) -> None:
    entered: set[str] = person.platform.memory.recall("entered", person.memory_key) or set()
    person.platform.memory.keep("entered", person.memory_key, entered | {trade_id})


def _allocation(
    person: Person, strategy: StrategyDoc, trade_id: str, symbol: str, account: AccountSnapshot
) -> Decimal | None:
    """What an entry may commit: its strategy's allocation, or for a live one the share of
    it the first days allow; None: a live entry the gate holds back (the person is told)."""
    if strategy.mode != "live":
        return strategy.allocation_usd
    why = person.live_refusal() or live.day_trade_refusal(account)
    if why is not None:
        _skipped(person, trade_id, symbol, why)
        return None
    consent, percent = person.live_consent(), person.platform.live_first_days_percent
    return strategy.allocation_usd * live.allocation_share(consent, person.day, percent)


def _skipped(person: Person, trade_id: str, symbol: str, why: str) -> None:
    """A live entry held back by the gate: the person is told why, once a day."""
    if person.platform.memory.recall("skipped", f"{person.memory_key}/{trade_id}") == why:
        return
    batch = person.db.batch()
    notices.entry_skipped(batch, person.db, person.uid, trade_id, symbol, why, person.now)
    try:
        batch.commit()
    except gexc.Conflict:
        pass  # told already today
    person.platform.memory.keep("skipped", f"{person.memory_key}/{trade_id}", why)
    logger.info("bot.live_entry_skipped", uid=person.uid, trade_id=trade_id, why=why)


def enter(
    person: Person,
    config: BotConfig,
    sid: str,
    strategy: StrategyDoc,
    symbol: str,
    price: Decimal,
    decision: Decision,
    account: AccountSnapshot,
) -> None:
    """Open a position on the strategy's BUY (or, when it may short, SELL), unless nothing
    is due: already entered today, no whole share affordable, or entries stopped."""
    db, uid, now = person.db, person.uid, person.now
    side = entry_side(decision, strategy)
    closing = at_broker(strategy.mode) and not person.may_send()  # decided again at the open
    if side is None or not person.entries_allowed or symbol in person.mismatched or closing:
        return
    trade_id = entry_id(sid, symbol, person.day)
    if entered_today(person, trade_id):
        return  # entered (and maybe left) earlier today
    allocation = _allocation(person, strategy, trade_id, symbol, account)
    # none: a live entry the gate holds back (the person is told why); 0 shares: nothing to do
    quantity = Decimal(0) if allocation is None else entry_quantity(allocation, price)
    if quantity < 1:
        return
    if side == "SELL" and at_broker(strategy.mode) and account.shorting_enabled is False:
        raise StrategyFailure(
            ErrorCode.SHORTING_NOT_ALLOWED,
            "this strategy may sell short, but your Alpaca account cannot: switch shorting off "
            "for it, or enable shorting at Alpaca",
        )
    notional = quantity * price
    if person.entries_today is None:
        counting: Any = queries.entries_on(db, uid, person.day).count()
        person.entries_today = int(counting.get()[0][0].value)
    breach = risk.before_entry(config.limits, symbol, notional, person.entries_today)
    if breach is not None:
        stop_entries(person, breach)
        return
    paper = at_broker(strategy.mode)  # paper or live: an order at Alpaca
    trade = {
        **shadow_trade_document(symbol, side, quantity, price, now, trade_id),
        "strategy_id": sid,
        "entry_day": person.day,
        "mode": strategy.mode,
        "reason": decision.reason,
        "state": str(State.OPENING if paper else State.OPEN),
        "decision_price": plain(price),
        "ordered_qty": plain(quantity),
    }
    trade.update(levels_document(side, price, strategy.take_profit_pct, strategy.stop_loss_pct))
    if paper:  # its levels are priced from what its entry fills at
        trade.update(quantity="0", filled_qty="0", fills={})
        trade.update(take_profit_price=None, stop_loss_price=None, **person.account_fields())
    batch = db.batch()
    batch.create(paths.shadow_trades(db, uid).document(trade_id), trade)
    batch.create(
        paths.signals(db, uid).document(trade_id),
        {
            "symbol": symbol,
            "action": side,
            "quantity": plain(quantity),
            "price": plain(price),
            "notional_usd": plain(notional),
            "reason": decision.reason,
            "strategy_id": strategy.strategy,
            "user_strategy_id": sid,
            "status": "SHADOW_OPENED",
            "created_at": now,
        },
    )
    count_open_trades(batch, db, uid, +1)
    if not paper:  # a shadow entry is held at once; a paper one is told of when it fills
        notices.trade_moved(batch, db, uid, trade_id, trade, "entry_filled", decision.reason, now)
    order_id = f"{trade_id}-open"
    held_in = person.account_fields()
    order = {"symbol": symbol, "side": side, "qty": plain(quantity), "opening": True, **held_in}
    if paper:
        new_order(batch, person, order_id, symbol, side, quantity, sid, trade_id, True, held_in)
    try:
        batch.commit()
        won = True
    except gexc.Conflict:
        won = False  # another run entered first: exactly one entry
    _remember(person, trade_id)
    if not won:
        return
    person.entries_today += 1
    person.changed = True
    logger.info("bot.entered", uid=uid, strategy_id=sid, symbol=symbol, side=side)
    if paper:
        submit(person, order_id, {**order, "trade_id": trade_id})
