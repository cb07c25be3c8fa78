"""Calling the callables' plain core as a signed-in person would, and checking what changed."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from firebase_functions.https_fn import AuthData, FunctionsErrorCode, HttpsError
from firestore_state import all_documents
from google.cloud import firestore

from agenttrader.api import callables, keys_callables
from agenttrader.api.guard import Services
from agenttrader.broker.keystore import AlpacaKeys
from agenttrader.pulse.run import run_pulse
from localdev.alpaca_standin import AlpacaServer
from localdev.seed import register_alpaca_account

Code = FunctionsErrorCode
NOW = 1_790_000_000.0


def auth(uid: str, **claims: Any) -> AuthData:
    return AuthData(uid=uid, token={"email": f"{uid}@example.com", **claims})


def error_of(call: Any, *args: Any) -> HttpsError:
    with pytest.raises(HttpsError) as raised:
        call(*args)
    return raised.value


def data_of(db: firestore.Client) -> dict[str, Any]:
    """Everything but the rate limiter's counters: a refused call still counts as an attempt
    (so keys cannot be probed through us without limit) but changes nothing else."""
    return {k: v for k, v in all_documents(db).items() if not k.startswith("ops/rate_limits/")}


def ready_user(
    services: Services, alpaca: AlpacaServer, uid: str, cash: str = "10000", trading: bool = True
) -> AlpacaKeys:
    """Keys saved through the callable, trading switched on, one pulse run."""
    keys = register_alpaca_account(alpaca.url, f"PK{uid.upper():0<10}", "secret-key-1", cash=cash)
    keys_callables.save_alpaca_keys(
        services, auth(uid), {"key_id": keys.key_id, "secret_key": "secret-key-1"}
    )
    callables.set_trading_enabled(services, auth(uid), {"enabled": trading})
    run_pulse(services.platform)
    return keys


def freeze(alpaca: AlpacaServer, now: float = NOW) -> None:
    requests.post(f"{alpaca.url}/_standin/clock", json={"now": now}, timeout=5).raise_for_status()
