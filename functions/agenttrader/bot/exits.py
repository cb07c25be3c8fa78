"""Leaving a position: why it closes (take-profit, stop-loss, the strategy turning against it),
and the close with its paper order, written with a precondition on the trade as read."""

from __future__ import annotations

from decimal import Decimal

from firebase_functions import logger
from google.cloud import firestore

from agenttrader.bot.orders import new_order, submit
from agenttrader.bot.person import Person
from agenttrader.bot.positions import against, close
from agenttrader.bot.settings import StrategyDoc
from agenttrader.bot.strategies import Decision
from agenttrader.store.models import ShadowTrade


def exit_reason(
    trade: ShadowTrade, price: Decimal, decision: Decision, strategy: StrategyDoc
) -> str | None:
    """Why an open position closes at `price`, or None while it stays open."""
    marks = trade.priced(price)
    pnl_pct = Decimal(marks["pnl_percent"])
    if strategy.take_profit_pct is not None and pnl_pct >= strategy.take_profit_pct:
        return f"take-profit: {pnl_pct}% reached +{strategy.take_profit_pct}%"
    if strategy.stop_loss_pct is not None and pnl_pct <= -strategy.stop_loss_pct:
        return f"stop-loss: {pnl_pct}% reached -{strategy.stop_loss_pct}%"
    against = "SELL" if trade.side == "BUY" else "BUY"
    if decision.action == against:
        return f"strategy exit: {decision.reason}"
    return None


def exit_position(
    person: Person,
    sid: str,
    strategy: StrategyDoc,
    held: tuple[str, ShadowTrade],
    price: Decimal,
    reason: str,
) -> None:
    ref = person.db.document(held[0])
    order_id = f"{ref.id}-close"

    def with_order(batch: firestore.WriteBatch, trade: ShadowTrade) -> None:
        if strategy.mode == "paper":
            new_order(
                batch, person, order_id, trade.symbol, against(trade), trade.quantity, sid, ref.id
            )

    trade = close(person, ref, price, reason, with_order)
    if trade is None:
        return
    logger.info("bot.exited", uid=person.uid, strategy_id=sid, symbol=trade.symbol, reason=reason)
    if strategy.mode == "paper":
        submit(
            person, order_id, trade.symbol, against(trade), trade.quantity, ref.id, opening=False
        )
