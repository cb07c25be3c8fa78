"""Entering a position: one trade per strategy, symbol and trading day (the trade document
`{strategy}-{symbol}-{day}`, created, never overwritten, with its signal and, in paper mode,
its order), sized to whole shares of the allocation, within the risk limits."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

from firebase_functions import logger
from google.api_core import exceptions as gexc

from agenttrader.bot import risk
from agenttrader.bot.orders import new_order, submit
from agenttrader.bot.person import Person, Tripped
from agenttrader.bot.settings import BotConfig, StrategyDoc
from agenttrader.bot.signals import shadow_trade_document
from agenttrader.bot.strategies import Decision
from agenttrader.store import paths, queries
from agenttrader.store.models import count_open_trades


def entry_id(sid: str, symbol: str, day: str) -> str:
    """The trade (and signal) an entry is: one per strategy, symbol and trading day."""
    return f"{sid}-{symbol}-{day}"


def enter(
    person: Person,
    config: BotConfig,
    sid: str,
    strategy: StrategyDoc,
    symbol: str,
    price: Decimal,
    decision: Decision,
) -> None:
    db, uid, now = person.db, person.uid, person.now
    trade_id = entry_id(sid, symbol, person.day)
    entered: set[str] = person.platform.memory.recall("entered", person.memory_key) or set()
    if trade_id in entered:
        return  # entered (and maybe left) earlier today
    quantity = (strategy.allocation_usd / price).to_integral_value(rounding=ROUND_DOWN)
    if quantity < 1:
        return  # the allocation buys no whole share at this price: nothing to do
    notional = quantity * price
    if person.entries_today is None:
        counting: Any = queries.entries_on(db, uid, person.day).count()
        person.entries_today = int(counting.get()[0][0].value)
    breach = risk.before_entry(config.limits, symbol, notional, person.entries_today)
    if breach is not None:
        risk.trip(db, uid, breach, now, person.run_id)
        logger.warn("bot.risk_tripped", uid=uid, limit=breach.limit)
        raise Tripped()
    side = decision.action
    assert side != "HOLD"
    trade = {
        **shadow_trade_document(symbol, side, quantity, price, now, trade_id),
        "strategy_id": sid,
        "entry_day": person.day,
        "mode": strategy.mode,
        "reason": decision.reason,
    }
    batch = db.batch()
    batch.create(paths.shadow_trades(db, uid).document(trade_id), trade)
    batch.create(
        paths.signals(db, uid).document(trade_id),
        {
            "symbol": symbol,
            "action": side,
            "quantity": str(quantity),
            "price": str(price),
            "notional_usd": str(notional),
            "reason": decision.reason,
            "strategy_id": strategy.strategy,
            "user_strategy_id": sid,
            "status": "SHADOW_OPENED",
            "created_at": now,
        },
    )
    count_open_trades(batch, db, uid, +1)
    order_id = f"{trade_id}-open"
    if strategy.mode == "paper":
        new_order(batch, person, order_id, symbol, side, quantity, sid, trade_id)
    try:
        batch.commit()
        won = True
    except gexc.Conflict:
        won = False  # another run entered first: exactly one entry
    entered.add(trade_id)
    person.platform.memory.keep("entered", person.memory_key, entered)
    if not won:
        return
    person.entries_today += 1
    person.changed = True
    logger.info("bot.entered", uid=uid, strategy_id=sid, symbol=symbol, side=side)
    if strategy.mode == "paper":
        submit(person, order_id, symbol, side, quantity, trade_id, opening=True)
