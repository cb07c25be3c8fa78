"""What the pulse and the callables both work with: the clients, the clock, and what an
instance remembers between runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from google.cloud import firestore

from agenttrader.broker.alpaca import BrokerFactory
from agenttrader.broker.keystore import KeyStore
from agenttrader.context.memory import PulseMemory

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Platform:
    """The clients the product works with; the runtime, the tests and the bench each build one."""

    db: firestore.Client
    keys: KeyStore
    brokers: BrokerFactory
    now: Clock
    memory: PulseMemory = field(default_factory=PulseMemory)
    """What this instance remembers between pulses (one per instance in production)."""
    live_trading: bool = False
    """The operator offers live trading (param `LIVE_TRADING`): only then is a person's consent
    taken, or a live entry sent."""
    live_first_days_percent: int = 100
    """The share of a live strategy's allocation its entries use in the person's first five
    trading days of live trading (param `LIVE_FIRST_DAYS_PERCENT`)."""


@dataclass(frozen=True)
class OAuthApp:
    """The app as registered with Alpaca for Connect with Alpaca. `client_secret` is read only
    when a code is exchanged or a token revoked (a secret param in production)."""

    client_id: str
    client_secret: Callable[[], str]
    redirect_url: str
    authorize_url: str
    token_url: str
    revoke_url: str = ""
    """Where a token is revoked when a person removes it (empty: not offered)."""

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.redirect_url)
