"""Put users, keys and trades in place directly, for the demo and the tests."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import requests
from google.cloud import firestore

from agenttrader.bot.signals import shadow_trade_document
from agenttrader.broker.keystore import AlpacaKeys, KeyStore
from agenttrader.core.money import Side
from agenttrader.store import paths, switches
from agenttrader.store.models import count_open_trades


def register_alpaca_account(
    alpaca_url: str,
    key_id: str,
    secret_key: str,
    *,
    cash: str = "100000",
    holdings: dict[str, int] | None = None,
    fault: dict[str, Any] | None = None,
) -> AlpacaKeys:
    """Open a simulated account at the Alpaca stand-in; returns its keys."""
    body = {
        "key_id": key_id,
        "secret_key": secret_key,
        "cash": cash,
        "holdings": holdings or {},
        "fault": fault,
    }
    requests.post(f"{alpaca_url}/_standin/accounts", json=body, timeout=10).raise_for_status()
    return AlpacaKeys(key_id=key_id, secret_key=secret_key, paper=True)


def seed_user(
    db: firestore.Client,
    keystore: KeyStore,
    uid: str,
    *,
    keys: AlpacaKeys | None = None,
    trading: bool | None = True,
    email: str | None = None,
) -> None:
    """A user document, their keys in Secret Manager and their kill-switch (None: no doc)."""
    now = datetime.now(UTC)
    profile: dict[str, Any] = {"email": email or f"{uid}@example.com", "created_at": now}
    if keys is not None:
        keystore.save(uid, keys)
        profile.update(keys_version=1, **keys.shown())
    paths.user(db, uid).set(profile)
    if trading is not None:
        paths.trading_status(db, uid).set(switches.switch_document(trading, now))


def open_trade(
    db: firestore.Client,
    uid: str,
    trade_id: str,
    symbol: str,
    side: Side,
    quantity: str,
    entry_price: str,
) -> None:
    """An open shadow trade as a signal would have opened it. Quantity and price are taken as
    written, so a test can store one that does not parse."""
    doc = shadow_trade_document(symbol, side, Decimal(1), Decimal(1), datetime.now(UTC))
    batch = db.batch()
    batch.set(
        paths.shadow_trades(db, uid).document(trade_id),
        {**doc, "quantity": quantity, "entry_price": entry_price},
    )
    if paths.user(db, uid).get().exists:
        count_open_trades(batch, db, uid, +1)
    batch.commit()
