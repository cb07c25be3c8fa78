"""What is the same for every account (the market clock, prices, daily bars), asked once a run
with the keys of someone being synced, never per person."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TypeVar

from firebase_functions import logger

from agenttrader.bot.person import Market, bars_since
from agenttrader.bot.run import symbols_known
from agenttrader.broker.alpaca import AlpacaBroker
from agenttrader.broker.keystore import AlpacaKeys
from agenttrader.context.platform import Platform
from agenttrader.core.errors import AgentTraderError
from agenttrader.pulse.people import UserRef
from agenttrader.store.firestore_io import chunks
from agenttrader.store.switches import trading_enabled

PRICE_CHUNK = 200
"""Symbols per latest-trades request."""
PRICE_TRIES = 3
"""People whose keys the shared price request is tried with."""


def shared_prices(
    platform: Platform, askers: list[UserRef], users: list[UserRef], market: Market
) -> dict[str, Decimal]:
    """Market data is the same for every account: the latest price of every symbol this
    instance knows `users` hold or their strategies trade, and (while the strategies trade)
    those symbols' daily bars into `market`, in a few requests for the whole run instead of
    some per person, asked with the keys of one of `askers` (people whose trading is on).
    Whatever it lacks (a person this instance has not seen, a failed request), each person's
    sync asks for itself."""
    symbols: set[str] = set()
    traded: set[str] = set()
    for user in users:
        remembered = platform.memory.trades(user.memory_key, user.trades_version)
        if remembered is not None:
            symbols.update(trade.symbol for _, trade in remembered.trades)
        if market.day is not None and user.bot_version is not None:
            traded.update(symbols_known(platform, user.memory_key))
    symbols |= traded
    if not symbols:
        return {}

    def latest(broker: AlpacaBroker) -> dict[str, Decimal]:
        prices: dict[str, Decimal] = {}
        for chunk in chunks(sorted(symbols), PRICE_CHUNK):
            prices.update(broker.latest_prices(chunk))
        if traded:
            since = bars_since(platform.now())
            for chunk in chunks(sorted(traded), PRICE_CHUNK):
                market.bars.update(broker.daily_bars_many(chunk, since))
            market.bars.update({s: [] for s in traded - market.bars.keys()})  # not listed
        return prices

    return with_someones_keys(platform, askers, PRICE_TRIES, latest, "shared_prices") or {}


T = TypeVar("T")


def with_someones_keys(
    platform: Platform,
    users: list[UserRef],
    tries: int,
    ask: Callable[[AlpacaBroker], T],
    what: str,
) -> T | None:
    """Ask Alpaca something that is the same for every account (the market clock, prices)
    with the keys of the first of `users` they work for, trying at most `tries` people;
    None when nobody's keys gave an answer. `users` are people being synced with their
    trading switched on: nobody else's credentials are used for what is not theirs."""
    for user in [u for u in users if u.keys_version is not None][:tries]:
        try:
            keys = platform.keys.load(user.uid, user.keys_version)
            if keys is None:
                continue
            return _asked(platform, keys, ask)
        except AgentTraderError as error:
            logger.warn(f"pulse.{what}_unavailable", code=error.code, uid=user.uid)
    return None


def with_platform_keys(
    platform: Platform, secret_id: str, ask: Callable[[AlpacaBroker], T], what: str
) -> T | None:
    """Ask Alpaca with the operator's own key pair kept in `secret_id`; None when none is set
    or it gave no answer (logged: the operator's key pair is theirs to fix)."""
    if not secret_id:
        return None
    try:
        keys = platform.keys.load_named(secret_id)
        if keys is None:
            logger.warn("pulse.platform_keys_missing", secret=secret_id)
            return None
        return _asked(platform, keys, ask)
    except AgentTraderError as error:
        logger.warn(f"pulse.platform_{what}_unavailable", code=error.code, secret=secret_id)
    return None


def _asked(platform: Platform, keys: AlpacaKeys, ask: Callable[[AlpacaBroker], T]) -> T:
    """`ask` Alpaca with `keys`, the connection closed after."""
    broker = platform.brokers(keys)
    try:
        return ask(broker)
    finally:
        broker.close()


def some_switched_on(
    platform: Platform, users: list[UserRef], want: int, chunk: int = 10, most: int = 50
) -> list[UserRef]:
    """Up to `want` of `users` with keys whose trading is switched on, reading their switches
    a few at a time (at most `most` reads): whose keys may ask what is everyone's."""
    found: list[UserRef] = []
    candidates = [u for u in users if u.keys_version is not None][:most]
    for part in chunks(candidates, chunk):
        enabled = trading_enabled(platform.db, [u.uid for u in part])
        found += [u for u in part if enabled.get(u.uid)]
        if len(found) >= want:
            break
    return found[:want]
