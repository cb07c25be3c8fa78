"""Live trading's gate: whether a live entry may be sent now, asked where a live strategy is
saved or started (`api.strategy_callables`) and by the pulse before every live entry it
decides and again before it sends one (`bot.entries`, `bot.orders`).

A live entry needs all three: the operator's `LIVE_TRADING`, the person's consent (not
revoked), and the account the keys open now being the one they consented for. Exits of what a
live position holds (its resting stop, a strategy's exit, the person's Close) need only that
the keys open the account holding it: no switch, revocation or limit ever holds a stop back.

Two more checks size or skip a live entry: the first five trading days of a person's live
trading use a share of the allocation (param `LIVE_FIRST_DAYS_PERCENT`), and an account under
Alpaca's pattern-day-trader threshold makes no entry that could be its fourth day trade in
five days (an entry may be stopped out the same day)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from agenttrader.broker.answers import NEW_YORK, AccountSnapshot
from agenttrader.broker.calendar import sessions_between

OFF = "this deployment does not offer live trading (its operator has not switched it on)"
NOT_ALLOWED = (
    "you have not allowed live trading: allow it in Settings, under Live trading, for the live "
    "account your keys open"
)
FIRST_DAYS = 5
"""Trading days, from the first consent, whose live entries use a share of the allocation."""
PDT_EQUITY = Decimal(25000)
"""Alpaca's pattern-day-trader threshold: accounts under it may make 3 day trades in 5 days."""
DAY_TRADES_ALLOWED = 3


def refusal(offered: bool, consent: Mapping[str, Any] | None, account_id: str) -> str | None:
    """Why no live entry may be sent in account `account_id` now; None: it may."""
    if not offered:
        return OFF
    if not consent or consent.get("revoked_at") is not None:
        return NOT_ALLOWED
    if not account_id or consent.get("account_id") != account_id:
        last4 = str(consent.get("account_number_last4") or "")
        return (
            f"you allowed live trading for the account ending {last4}, and your keys now open "
            "another: allow it again in Settings, under Live trading, for this one"
        )
    return None


def day_trade_refusal(account: AccountSnapshot) -> str | None:
    """Why a live entry in this account could force a fourth day trade in five days; None
    when it cannot (the account is over the threshold, or has day trades to spare)."""
    if account.equity >= PDT_EQUITY:
        return None
    count = account.daytrade_count
    if count is None:
        return (
            "your live account is under $25,000 and Alpaca did not say how many day trades it "
            "made this week, so no new live position is opened that could be a day trade"
        )
    if count >= DAY_TRADES_ALLOWED or account.pattern_day_trader:
        return (
            f"your live account is under $25,000 and has made {count} day trades in the last "
            "five trading days: a new position closed today would be one more than Alpaca "
            "allows, so none is opened until the count falls"
        )
    return None


def allocation_share(consent: Mapping[str, Any] | None, day: str, percent: int) -> Decimal:
    """The share of a live strategy's allocation an entry on trading day `day` uses: `percent`
    in the first `FIRST_DAYS` trading days since the first consent, else all of it."""
    first = (consent or {}).get("first_consented_at")
    if not isinstance(first, datetime) or not day:
        return Decimal(1)
    since = first.astimezone(NEW_YORK).date().isoformat()
    if sessions_between(since, day) > FIRST_DAYS:
        return Decimal(1)
    return Decimal(max(1, min(percent, 100))) / 100
