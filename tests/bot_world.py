"""A person with paper keys and trading on, on the emulators and the Alpaca stand-in, whose
clock and the pulse's move together: the world the bot's tests run in."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import requests
from calling import auth

from agenttrader.api import callables, keys_callables, strategy_callables
from agenttrader.api.guard import Services
from agenttrader.bot.strategies import STRATEGIES
from agenttrader.broker.alpaca import AlpacaBroker
from agenttrader.broker.answers import AccountSnapshot
from agenttrader.broker.keystore import AlpacaKeys
from agenttrader.context.platform import Platform
from agenttrader.pulse.run import PulseSummary, run_pulse
from agenttrader.store import paths
from agenttrader.store.models import count_open_trades
from localdev.alpaca_standin import AlpacaServer
from localdev.seed import register_alpaca_account

NEW_YORK = ZoneInfo("America/New_York")
SYMBOLS = [
    "AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META", "GOOGL", "AMD", "NFLX", "INTC",
    "ORCL", "CRM", "QCOM", "TXN", "KO", "JPM", "PYPL", "IBM", "PEP", "DIS",
]  # fmt: skip
MONDAY = "2026-11-23T10:00"
"""A Monday the market is open."""


class World:
    """One person with paper keys and trading on; the stand-in's clock and the pulse's move
    together."""

    def __init__(self, services: Services, alpaca: AlpacaServer, uid: str = "trader") -> None:
        self.alpaca = alpaca
        self.uid = uid
        self.at = datetime.fromisoformat(MONDAY).replace(tzinfo=NEW_YORK)
        self.set(MONDAY)
        self.platform: Platform = replace(services.platform, now=lambda: self.at.astimezone(UTC))
        self.services = replace(services, platform=self.platform)
        self.db = self.platform.db
        self.keys = self.open_account(uid)

    def open_account(self, uid: str, cash: str = "100000", **extra: Any) -> AlpacaKeys:
        key_id = f"PK{uid.upper():0<10}"
        keys = register_alpaca_account(self.alpaca.url, key_id, "secret-key-1", cash=cash)
        if extra:
            body = {"key_id": key_id, "secret_key": "secret-key-1", "cash": cash, **extra}
            requests.post(f"{self.alpaca.url}/_standin/accounts", json=body, timeout=5)
        keys_callables.save_alpaca_keys(
            self.services, auth(uid), {"key_id": key_id, "secret_key": "secret-key-1"}
        )
        callables.set_trading_enabled(self.services, auth(uid), {"enabled": True})
        return keys

    def set(self, local: str) -> None:
        self.at = datetime.fromisoformat(local).replace(tzinfo=NEW_YORK)
        requests.post(
            f"{self.alpaca.url}/_standin/clock", json={"now": self.at.timestamp()}, timeout=5
        ).raise_for_status()

    def pulse(self, local: str | None = None) -> PulseSummary:
        if local:
            self.set(local)
        return run_pulse(self.platform)

    def limits(self, **changes: Any) -> None:
        """The person's risk limits through the callable: the defaults with `changes`."""
        limits = {
            "max_position_usd": "10000",
            "max_daily_loss_usd": "2000",
            "max_drawdown_pct": "20",
            "max_trades_per_day": 10,
            **changes,
        }
        strategy_callables.save_risk_limits(self.services, auth(self.uid), limits)

    def strategy(self, uid: str | None = None, start: bool = True, **fields: Any) -> str:
        who = auth(uid or self.uid)
        request = {"strategy": "momentum_20d", "allocation_usd": "1000", "mode": "shadow"}
        saved = strategy_callables.save_strategy(self.services, who, {**request, **fields})
        if start:
            strategy_callables.set_strategy_status(
                self.services, who, {"id": saved["id"], "status": "active"}
            )
        return str(saved["id"])

    def acting(
        self, count: int = 1, strategy: str = "momentum_20d", sides: tuple[str, ...] = ("BUY",)
    ) -> list[tuple[str, str]]:
        """Symbols the strategy gives one of `sides` for now (BUY: what a long-only strategy
        enters on), with the action."""
        broker = AlpacaBroker(self.keys, trading_url=self.alpaca.url, data_url=self.alpaca.url)
        rule = STRATEGIES[strategy]
        found = []
        try:
            for symbol in SYMBOLS:
                action = rule.decide(broker.daily_bars(symbol, rule.lookback_days)).action
                if action in sides:
                    found.append((symbol, action))
        finally:
            broker.close()
        assert len(found) >= count, f"only {found} act at {self.at}"
        return found[:count]

    def holding(self, strategy: str = "momentum_20d") -> str:
        """A symbol the strategy holds on now."""
        broker = AlpacaBroker(self.keys, trading_url=self.alpaca.url, data_url=self.alpaca.url)
        rule = STRATEGIES[strategy]
        try:
            for symbol in SYMBOLS:
                if rule.decide(broker.daily_bars(symbol, rule.lookback_days)).action == "HOLD":
                    return symbol
        finally:
            broker.close()
        raise AssertionError("every symbol acts")

    def docs(self, collection: str, uid: str | None = None) -> dict[str, dict[str, Any]]:
        ref = paths.user(self.db, uid or self.uid).collection(collection)
        return {d.id: d.to_dict() or {} for d in ref.stream()}

    def doc(self, path: str) -> dict[str, Any]:
        full = f"users/{self.uid}/{path}" if path else f"users/{self.uid}"
        return self.db.document(full).get().to_dict() or {}

    def orders_at_alpaca(self) -> int:
        stats = requests.get(f"{self.alpaca.url}/_standin/stats", timeout=5).json()
        return sum(by.get("submit_order", 0) for by in stats["by_key"].values())

    def account(self, cash: str = "100000", **extra: Any) -> None:
        """The person's account at the stand-in made anew, with `extra` (holdings, an orders
        plan, a fault, ...)."""
        body = {"key_id": self.keys.key_id, "secret_key": "secret-key-1", "cash": cash, **extra}
        requests.post(f"{self.alpaca.url}/_standin/accounts", json=body, timeout=5)

    def advance(self, seconds: float) -> None:
        """The person's orders at the stand-in act as if `seconds` passed."""
        body = {"key_id": self.keys.key_id, "seconds": seconds}
        requests.post(f"{self.alpaca.url}/_standin/advance", json=body, timeout=5)

    def alpaca_account(self) -> AccountSnapshot:
        """The Alpaca account the person's keys open."""
        broker = AlpacaBroker(self.keys, trading_url=self.alpaca.url, data_url=self.alpaca.url)
        try:
            return broker.account()
        finally:
            broker.close()

    def positions(self) -> dict[str, Decimal]:
        """What the stand-in's account holds, signed, by symbol."""
        broker = AlpacaBroker(self.keys, trading_url=self.alpaca.url, data_url=self.alpaca.url)
        try:
            return broker.positions()
        finally:
            broker.close()

    def book(self) -> dict[str, Decimal]:
        """What the product's paper trades hold, signed, by symbol."""
        held: dict[str, Decimal] = {}
        for t in self.docs("shadowTradeHistory").values():
            if t.get("mode") == "paper" and t["status"] == "OPEN":
                signed = Decimal(t["quantity"]) * (1 if t["side"] == "BUY" else -1)
                held[t["symbol"]] = held.get(t["symbol"], Decimal(0)) + signed
        return {s: q for s, q in held.items() if q}

    def fault(self, uid: str, fault: dict[str, Any] | None, cash: str = "100000") -> None:
        body = {
            "key_id": f"PK{uid.upper():0<10}",
            "secret_key": "secret-key-1",
            "cash": cash,
            "fault": fault,
        }
        requests.post(f"{self.alpaca.url}/_standin/accounts", json=body, timeout=5)


def seed_open_trade(world: World, trade_id: str, doc: dict[str, Any]) -> None:
    """An open trade stored as an entry leaves it: the trade and the profile's count of open
    trades, in one commit."""
    batch = world.db.batch()
    batch.set(paths.shadow_trades(world.db, world.uid).document(trade_id), doc)
    count_open_trades(batch, world.db, world.uid, +1)
    batch.commit()


def seed_position(
    world: World, sid: str, symbol: str, side: str, entry: str, mode: str = "shadow"
) -> str:
    """A position the strategy opened on the Friday before: 3 shares at `entry` (a paper one
    is held at the stand-in too)."""
    trade_id = f"{sid}-{symbol}-2026-11-20"
    trade: dict[str, Any] = {
        "symbol": symbol,
        "side": side,
        "quantity": "3",
        "entry_price": entry,
        "status": "OPEN",
        "strategy_id": sid,
        "entry_day": "2026-11-20",
        "created_at": datetime(2026, 11, 20, tzinfo=UTC),
        "mode": mode,
        "state": "open",
    }
    if mode == "paper":
        trade["fills"] = {f"{trade_id}-open": {"role": "entry", "qty": "3", "price": entry}}
        world.account(holdings={symbol: 3 if side == "BUY" else -3})
    seed_open_trade(world, trade_id, trade)
    return trade_id


def price_of(world: World, symbol: str) -> Decimal:
    """The stand-in's latest price of `symbol` now."""
    broker = AlpacaBroker(world.keys, trading_url=world.alpaca.url, data_url=world.alpaca.url)
    try:
        return broker.latest_prices([symbol])[symbol]
    finally:
        broker.close()


def trade(world: World, trade_id: str) -> dict[str, Any]:
    """The person's trade `trade_id` as stored."""
    return world.docs("shadowTradeHistory")[trade_id]
