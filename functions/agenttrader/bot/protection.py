"""Protection of what a person holds: each open trade carries its own exit levels, and every
open-market run checks every open trade against them, whatever became of the strategy that
opened it (active, paused, in error, deleted, or none: a trade opened by hand).

A trade's levels are prices: the take-profit and the stop-loss, computed at full precision from
what its entry filled at (a shadow trade: its entry price) and the percentages copied from its
strategy when it entered (`take_profit_pct`, `stop_loss_pct` on the trade). A trade from before
trades carried them takes its strategy's percentages while that strategy exists.

A close that Alpaca refused or let expire, whoever asked for it (a level, the strategy, the
person's Close), is sent again by the next runs, a new order at a time, `CLOSE_TRIES` at most.

The check runs before any strategy does, one trade at a time: a refused or failed close of one
trade is recorded and the next is still checked. The strategy's own exit (its signal turning
against the position) stays with the strategy, while it runs."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from firebase_functions import logger

from agenttrader.bot.exits import close_position
from agenttrader.bot.lifecycle import SHOWN_PRICE, State, level_prices, state_of
from agenttrader.bot.notices import CLOSE_TRIES
from agenttrader.bot.person import Person
from agenttrader.bot.settings import StrategyDoc
from agenttrader.core.errors import AgentTraderError
from agenttrader.core.money import decimal, plain
from agenttrader.store.models import ShadowTrade


def levels_of(
    trade: ShadowTrade, strategies: Mapping[str, StrategyDoc]
) -> tuple[Decimal | None, Decimal | None]:
    """The trade's (take-profit, stop-loss) prices: its own, or for a trade from before trades
    carried them, from its strategy's percentages while that strategy exists."""
    if trade.take_profit_pct is not None or trade.stop_loss_pct is not None:
        return trade.take_profit_price, trade.stop_loss_price
    strategy = strategies.get(trade.strategy_id or "")
    if strategy is None:
        return None, None
    found = level_prices(
        trade.side, trade.entry_price, strategy.take_profit_pct, strategy.stop_loss_pct
    )
    take, stop = found["take_profit_price"], found["stop_loss_price"]
    return (None if take is None else decimal(take)), (None if stop is None else decimal(stop))


def crossed(trade: ShadowTrade, price: Decimal, take: Decimal | None, stop: Decimal | None) -> str:
    """Why the trade closes at `price` by its levels ("" while it stays open)."""
    long = trade.side == "BUY"
    if stop is not None and (price <= stop if long else price >= stop):
        return f"stop-loss: ${plain(price)} reached the stop at ${shown(stop)}"
    if take is not None and (price >= take if long else price <= take):
        return f"take-profit: ${plain(price)} reached the target at ${shown(take)}"
    return ""


def shown(price: Decimal) -> str:
    """A level as people read it (it is compared at full precision)."""
    return plain(price.quantize(SHOWN_PRICE).normalize())


def _close_again(trade: ShadowTrade) -> str:
    """A close that was refused or expired (whoever asked for it) is sent again, a new order
    at a time, until `CLOSE_TRIES` were sent; then the person decides (they were told)."""
    if trade.last_close_error is None or trade.close_attempts >= CLOSE_TRIES:
        return ""
    return trade.close_reason or "closing again after a refused close"


def protect(
    person: Person,
    trades: list[tuple[str, ShadowTrade]],
    prices: Mapping[str, Decimal],
    strategies: Mapping[str, StrategyDoc],
) -> list[str]:
    """Close every open trade whose price has reached one of its levels. Returns the codes of
    the closes that failed (each failure stays with its trade: the others are still checked).
    A trade it closes stays in the run's list as read: any later exit of it changes nothing,
    and its strategy does not enter the symbol again in this run."""
    problems: list[str] = []
    for path, trade in trades:
        if state_of(trade.model_dump()) is not State.OPEN or trade.quantity <= 0:
            continue
        if trade.resting:
            continue  # its levels rest at Alpaca, which fills them at their price
        price = prices.get(trade.symbol)
        if price is None:
            continue
        take, stop = levels_of(trade, strategies)
        reason = crossed(trade, price, take, stop) or _close_again(trade)
        if not reason:
            continue
        try:
            close_position(person, person.db.document(path).id, price, reason)
        except AgentTraderError as failure:  # refused, another account, nothing held, ...
            logger.warn("bot.protection_failed", uid=person.uid, trade=path, code=str(failure.code))
            problems.append(failure.code)
    return problems
