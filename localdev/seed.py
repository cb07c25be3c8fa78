"""Put users, keys and trades in place directly, for the demo and the tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import requests
from google.cloud import firestore

from agenttrader import paths
from agenttrader.keystore import AlpacaKeys, KeyStore


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
        profile["keys_version"] = 1
    paths.user(db, uid).set(profile)
    if trading is not None:
        paths.trading_status(db, uid).set({"enabled": trading, "updated_at": now})


def open_trade(
    db: firestore.Client,
    uid: str,
    trade_id: str,
    symbol: str,
    side: str,
    quantity: str,
    entry_price: str,
) -> None:
    paths.shadow_trades(db, uid).document(trade_id).set(
        {
            "symbol": symbol,
            "side": side,
            "quantity": quantity,
            "entry_price": entry_price,
            "status": "OPEN",
            "created_at": datetime.now(UTC),
        }
    )
