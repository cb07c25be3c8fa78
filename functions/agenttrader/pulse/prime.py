"""What a new instance must learn before its first run can be fast: everyone's open trades and
strategies, read for the whole population in two collection-group queries and one batch of
reads, instead of a query or two per person. With them known, the run's shared requests (the
latest prices and the daily bars of every symbol held or traded) cover everyone, so no person
asks Alpaca for market data of their own.

Only for a run that syncs the whole population in one instance (a fan-out task syncs a slice,
and a collection-group query would read everyone's documents for it), and only when enough
people are unknown to be worth it; whatever is not learned here each sync reads for itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Protocol

from firebase_functions import logger
from google.cloud import firestore
from pydantic import BaseModel, ValidationError

from agenttrader.bot.books import stored_books
from agenttrader.bot.run import known_config
from agenttrader.bot.settings import StrategyDoc, bot_config
from agenttrader.context.platform import Platform
from agenttrader.store import paths, queries
from agenttrader.store.firestore_io import fields_of, get_by_path
from agenttrader.store.models import ShadowTrade

PRIME_MIN = 50
"""Fewer unknown people than this are read one by one, as they are synced."""


class Listed(Protocol):
    """A person as the pulse lists them (`sync.UserRef`)."""

    @property
    def uid(self) -> str: ...
    @property
    def memory_key(self) -> str: ...
    @property
    def open_trades(self) -> int | None: ...
    @property
    def trades_version(self) -> int | None: ...
    @property
    def bot_version(self) -> int | None: ...


def prime(platform: Platform, users: Sequence[Listed], trades: bool, bots: bool) -> int:
    """Learn the open trades (`trades`: they will be priced) and the bot settings (`bots`: the
    strategies trade) of every person in `users` this instance does not know. Returns how
    many people were learned."""
    memory = platform.memory
    need_trades = {
        u.uid: u
        for u in users
        if trades
        and u.open_trades != 0
        and u.trades_version is not None
        and memory.trades(u.memory_key, u.trades_version) is None
    }
    need_bots = {
        u.uid: u
        for u in users
        if bots
        and u.bot_version is not None
        and known_config(platform, u.memory_key, u.bot_version) is None
    }
    if len(need_trades) + len(need_bots) < PRIME_MIN:
        return 0
    if need_trades:
        _learn_trades(platform, need_trades)
    if need_bots:
        _learn_bots(platform, need_bots)
    logger.info("pulse.primed", trades=len(need_trades), bots=len(need_bots))
    return len(need_trades.keys() | need_bots.keys())


def _fields(model: type[BaseModel]) -> list[str]:
    """Only what the model reads (timestamps and the like are most of a document's decoding,
    and the models ignore them): what each person's own read would give it, for less."""
    return list(model.model_fields)


def _learn_trades(platform: Platform, users: dict[str, Listed]) -> None:
    found: dict[str, list[tuple[str, ShadowTrade]]] = defaultdict(list)
    for doc in queries.everyones_open_trades(platform.db).select(_fields(ShadowTrade)).stream():
        uid = doc.reference.parent.parent.id if doc.reference.parent.parent else ""
        if uid not in users:
            continue
        try:
            found[uid].append((doc.reference.path, ShadowTrade.model_validate(fields_of(doc))))
        except ValidationError:
            found.pop(uid, None)  # left for their own sync, which reads and logs it
            users = {k: v for k, v in users.items() if k != uid}
    for uid, user in users.items():
        platform.memory.remember_trades(user.memory_key, user.trades_version, found[uid])


def _learn_bots(platform: Platform, users: dict[str, Listed]) -> None:
    """Their strategies (a document without a status, which no query by status finds, is one
    that would not parse anyway: it never runs), their risk limits and their books as last
    written (so a new instance rewrites none that did not change), in batched reads."""
    db = platform.db
    strategies: dict[str, list[firestore.DocumentSnapshot[Any]]] = defaultdict(list)
    for doc in queries.everyones_strategies(db).select(_fields(StrategyDoc)).stream():
        uid = doc.reference.parent.parent.id if doc.reference.parent.parent else ""
        if uid in users:
            strategies[uid].append(doc)
    memory = platform.memory
    unbooked = [uid for uid, u in users.items() if memory.recall("books", u.memory_key) is None]
    found = get_by_path(
        db,
        [paths.risk_settings(db, uid) for uid in users]
        + [paths.stats_summary(db, uid) for uid in unbooked],
    )
    for uid, user in users.items():
        if user.bot_version is not None:
            limits_doc = found[paths.risk_settings(db, uid).path]
            config = bot_config(user.bot_version, strategies[uid], limits_doc)
            memory.keep("bot", user.memory_key, config)
            summary = found.get(paths.stats_summary(db, uid).path)
            if summary is not None:
                memory.keep("books", user.memory_key, stored_books(summary, config.running))
