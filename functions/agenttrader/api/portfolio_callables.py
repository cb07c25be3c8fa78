"""`portfolio_history`: for a paper account, the daily equity Alpaca recorded before the product
kept the person's own (`equity/{day}`), for the Performance chart. Read-only."""

from __future__ import annotations

from typing import Any

from agenttrader.api.callables import Empty
from agenttrader.api.guard import Call, Code, Limit, endpoint, fail
from agenttrader.core.money import plain
from agenttrader.store import paths, queries
from agenttrader.store.models import keys_version

HISTORY_PERIOD = "1A"
"""How far back Alpaca is asked: a year."""


@endpoint(Empty, Limit(10, 60))
def portfolio_history(call: Call[Empty]) -> dict[str, Any]:
    """Alpaca's daily equity of the person's paper account over the last year, before the
    first day the product recorded; empty when the product's own record covers it all."""
    db, uid = call.db, call.who.uid
    profile = paths.user(db, uid).get().to_dict() or {}
    if profile.get("keys_paper") is not True:
        raise fail(
            Code.FAILED_PRECONDITION,
            "Alpaca's account history is shown for paper accounts: save paper keys to see it",
        )
    keys = call.platform.keys.load(uid, keys_version(profile))
    if keys is None:
        raise fail(Code.FAILED_PRECONDITION, "no Alpaca keys saved: save them first")
    first = [doc.id for doc in queries.equity_curve(db, uid).limit(1).stream()]
    broker = call.platform.brokers(keys)
    try:
        points = broker.portfolio_history(HISTORY_PERIOD)
    finally:
        broker.close()
    before = [(day, equity) for day, equity in points if not first or day.isoformat() < first[0]]
    return {
        "days": [day.isoformat() for day, _ in before],
        "equity": [plain(equity) for _, equity in before],
    }
