"""A local Alpaca: the trading and market-data HTTP endpoints the product uses.

One simulated account per key pair, deterministic prices that move over time, and faults
chosen per key (401/403, 429 with Retry-After, 500, slow answers, hangs, malformed bodies).
alpaca-trade-api's `REST` talks to it when its base URLs point here.

Control endpoints (not part of Alpaca) live under `/_standin/`:
  POST /_standin/accounts  {key_id, secret_key, cash?, holdings?, fault?, status?,
                            deprecated_fields? (false: no pattern_day_trader/daytrade_count),
                            daytrade_count?}
  POST /_standin/reset     forget every account, fault and counter
  POST /_standin/clock     {"now": <epoch seconds> | null}  freeze or release the clock
  POST /_standin/latency   {"seconds": 0.1}  added to every Alpaca answer
  POST /_standin/fill_delay {"seconds": 1}  how long an accepted order waits to fill
  POST /_standin/advance   {key_id, seconds}  that account's orders act as if `seconds` passed
  GET  /_standin/stats     request counts per key and per endpoint
The market clock (/v2/clock) follows localdev/market_calendar.py and the stand-in's clock.
Daily bars are one per trading day of that calendar, as far back as asked (years of them),
with a 10-for-1 split of NVDA on 2024-06-10 that `adjustment` (raw, split, dividend, all)
shows or adjusts away; other timeframes are every interval, round the clock.
Orders (POST /v2/orders, GET /v2/orders/{id}, GET /v2/orders:by_client_order_id) are accepted,
then filled at the stand-in's price once the fill delay has passed (real time); an order the
account cannot afford is refused with 403 "insufficient buying power", a symbol the stand-in
does not list (any starting with ZZ) with 422, a reused client_order_id with 422. Symbols
starting with ZZ have no trades and no bars either. Fills move the account's positions (long
and short, with their average entry price: GET /v2/positions): a sale of what the account does
not hold opens a short (unless the account may not sell short); as at Alpaca, an order that
would turn a position round (sell 10 of 5 held) is refused with 403 "insufficient qty".
Resting orders, as exits rest at Alpaca: `stop` and `limit` orders and `order_class: "oco"`
(its parent the take-profit limit, its `legs` the stop), `day` or `gtc`, prices in whole cents
(a sub-penny price is 422). They work (`new`) until the price path sets them off, watched minute
by minute through the sessions since the last request (so a stop fires between two runs, and
fills at the minute's price: at its stop or worse on a gap), and an OCO's other leg is then
cancelled. DELETE /v2/orders/{id} cancels a working order (an OCO with its legs; one that ended
is 422), GET /v2/orders?status=open lists the working ones, and the shares a resting order
holds are not available to another sale (`qty_available`; 403 "insufficient qty").
Paper and live accounts live side by side: a key id starting with PK opens a paper account
(number PA...), any other a live one (digits only), so a person may hold both.
An account's `orders` plan changes how its orders go: {"fill_delay_s": s (instead of the
market's), "partial": "0.5" (fill that share first, status partially_filled), "then":
"cancel" | "fill" (what the rest does after another delay), "reject_closes": n (refuse the
next n orders that reduce a position, 403 "insufficient qty available"), "refuse":
{"message": m, "times": n} (refuse the next n orders with 403 and Alpaca's message m, as for
pattern day trading or a wash trade), "shorting": false (the account may not sell short),
"rest_partial": "0.5" (a resting leg set off fills that share first; with "then": "cancel"
the rest of it is cancelled at the next request)}.
An account may be given a fixed `last_equity` (yesterday's close) to simulate a day's loss.
OAuth, as Alpaca offers it to apps: GET /oauth/authorize shows a page with an `Approve` button
that sends the person back to the app's redirect URL with a single-use code; POST /oauth/token
exchanges the code (checking client id, client secret and redirect URL) for a token, which the
trading and data endpoints accept as `Authorization: Bearer`, for an account of its own.
POST /oauth/revoke takes a token back (RFC 7009: token, client id and secret, form-encoded; 200
whether or not it was live), after which it is refused with 401 like any unknown credential.
  POST /_standin/oauth_client  {client_id, client_secret}  register an app (kept by reset)
  POST /_standin/revoke        {token}  revoke a token
A fault is {"kind": "http", "status": 429|500|403|..., "retry_after"?: s, "times"?: n,
"endpoints"?: ["account", "latest_trades", "bars", ...]} or {"kind": "slow", "seconds": s, ...},
{"kind": "hang", ...} (answers after 120 s) or {"kind": "malformed", ...}. "times" limits how
many requests fault; without it every request does.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import math
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from localdev.market_calendar import NEW_YORK, epoch_clock, is_trading_day, session

CENT = Decimal("0.01")
SYMBOL = re.compile(r"^[A-Z]{1,5}(\.[A-Z])?$")
HANG_SECONDS = 120.0
UNLISTED = "ZZ"
"""Symbols that start with this are well-formed but not listed: no trades, no bars, no orders."""


def listed(symbol: str) -> bool:
    return SYMBOL.match(symbol) is not None and not symbol.startswith(UNLISTED)


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


@functools.cache
def _shape(symbol: str) -> tuple[float, float]:
    """A symbol's base price and phase, from its name."""
    h = _digest(symbol)
    return 20 + (h % 48_000) / 100, (h >> 20) % 1000 / 1000 * 2 * math.pi


def price_at(symbol: str, epoch_s: float) -> Decimal:
    """Simulated last-trade price of `symbol` at a moment: a daily trend plus an intraday wave."""
    base, phase = _shape(symbol)
    days = epoch_s / 86_400
    trend = 0.08 * math.sin(2 * math.pi * days / 23 + phase)
    wave = 0.005 * math.sin(2 * math.pi * epoch_s / 1_800 + phase)
    return Decimal(repr(base * (1 + trend + wave))).quantize(CENT, ROUND_HALF_EVEN)


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat().replace("+00:00", "Z")


WATCHED_DAYS = 40
"""How far back a resting order's price path is looked at, at most."""


def _session_minutes(after: float, until: float) -> list[float]:
    """Each minute in (after, until] that falls in a trading session, and `until` itself when
    it does: the moments a resting order is checked at."""
    after = max(after, until - WATCHED_DAYS * 86_400)
    minutes = []
    day = datetime.fromtimestamp(after, NEW_YORK).date()
    last = datetime.fromtimestamp(until, NEW_YORK).date()
    while day <= last:
        if is_trading_day(day):
            opens, closes = (t.timestamp() for t in session(day))
            t = max(opens, (after // 60 + 1) * 60)
            while t < closes and t <= until:
                minutes.append(t)
                t += 60
            if opens <= until < closes and (not minutes or minutes[-1] != until):
                if until > after:
                    minutes.append(until)
        day += timedelta(days=1)
    return minutes


def _close_after(epoch_s: float) -> float:
    """The close of the session an order placed at `epoch_s` belongs to."""
    day = datetime.fromtimestamp(epoch_s, NEW_YORK).date()
    while not is_trading_day(day) or session(day)[1].timestamp() <= epoch_s:
        day += timedelta(days=1)
    return session(day)[1].timestamp()


@dataclass
class Fault:
    kind: str
    status: int = 500
    retry_after: float | None = None
    seconds: float = 0.0
    times: int | None = None
    endpoints: list[str] | None = None

    def applies(self, endpoint: str) -> bool:
        if self.endpoints is not None and endpoint not in self.endpoints:
            return False
        return self.times is None or self.times > 0


@dataclass
class Order:
    id: str
    client_order_id: str
    symbol: str
    side: str
    qty: Decimal
    submitted_at: float
    fills_at: float
    """Real (monotonic) time at which it fills."""
    status: str = "accepted"
    filled_avg_price: Decimal | None = None
    filled_at: float | None = None
    filled_qty: Decimal = Decimal(0)
    type: str = "market"
    time_in_force: str = "day"
    stop_price: Decimal | None = None
    limit_price: Decimal | None = None
    order_class: str = "simple"
    legs: list[Order] = field(default_factory=list)
    """An OCO's other leg (the stop), under its parent (the take-profit limit)."""
    watched_from: float = 0.0
    """A resting order watches the price path from here (the stand-in's time)."""
    canceled_at: float | None = None

    @property
    def resting(self) -> bool:
        return self.type in ("stop", "limit")

    @property
    def working(self) -> bool:
        return self.status in ("new", "accepted", "partially_filled")

    def triggered(self, price: Decimal) -> bool:
        """Whether `price` sets this resting order off: a sell stop at or under its stop, a
        sell limit at or over its limit (a buy's the other way round)."""
        selling = self.side == "sell"
        if self.type == "stop" and self.stop_price is not None:
            return price <= self.stop_price if selling else price >= self.stop_price
        if self.type == "limit" and self.limit_price is not None:
            return price >= self.limit_price if selling else price <= self.limit_price
        return False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "symbol": self.symbol,
            "asset_class": "us_equity",
            "side": self.side,
            "type": self.type,
            "order_type": self.type,
            "order_class": "" if self.order_class == "simple" else self.order_class,
            "time_in_force": self.time_in_force,
            "qty": str(self.qty),
            "filled_qty": str(self.filled_qty),
            "filled_avg_price": None
            if self.filled_avg_price is None
            else str(self.filled_avg_price),
            "limit_price": None if self.limit_price is None else str(self.limit_price),
            "stop_price": None if self.stop_price is None else str(self.stop_price),
            "status": self.status,
            "submitted_at": _iso(self.submitted_at),
            "filled_at": None if self.filled_at is None else _iso(self.filled_at),
            "canceled_at": None if self.canceled_at is None else _iso(self.canceled_at),
            "legs": [leg.to_json() for leg in self.legs] or None,
        }


@dataclass
class Account:
    key_id: str
    secret_key: str
    cash: Decimal
    holdings: dict[str, int]
    status: str = "ACTIVE"
    fault: Fault | None = None
    created_at: float = field(default_factory=time.time)
    deprecated_fields: bool = True
    """Whether the account JSON still carries pattern_day_trader and daytrade_count."""
    daytrade_count: int = 0
    """Day trades in the last five trading days, as Alpaca counts them (4 or more: flagged a
    pattern day trader)."""
    last_equity: Decimal | None = None
    """Yesterday's closing equity, when fixed; else computed from today's holdings."""
    orders: dict[str, Order] = field(default_factory=dict)
    """By client_order_id."""
    plan: dict[str, Any] = field(default_factory=dict)
    """How its orders go (see the module's docstring)."""
    costs: dict[str, Decimal] = field(default_factory=dict)
    """Average entry price of each position."""
    advanced_s: float = 0.0
    """How far its orders' timers were moved on (POST /_standin/advance)."""

    def fill(self, order: Order, qty: Decimal, price: Decimal, now: float) -> None:
        """`qty` more of `order` fills at `price`: cash, position and its average move."""
        signed = qty if order.side == "buy" else -qty
        held = Decimal(self.holdings.get(order.symbol, 0))
        after = held + signed
        if held == 0 or (held > 0) == (signed > 0):  # opening or adding
            cost = self.costs.get(order.symbol, price)
            self.costs[order.symbol] = (cost * abs(held) + price * qty) / abs(after)
        elif after == 0:
            self.costs.pop(order.symbol, None)
        elif (after > 0) != (held > 0):  # through zero: the rest is a new position
            self.costs[order.symbol] = price
        self.cash -= signed * price
        self.holdings[order.symbol] = int(after)
        if self.holdings[order.symbol] == 0:
            del self.holdings[order.symbol]
        done = order.filled_qty
        total = (order.filled_avg_price or Decimal(0)) * done + price * qty
        order.filled_qty = done + qty
        average = (total / order.filled_qty).quantize(Decimal("0.0001"))
        order.filled_avg_price = price if done == 0 else average
        order.filled_at = now

    def positions(self, now: float) -> list[dict[str, Any]]:
        rows = []
        for symbol, qty in sorted(self.holdings.items()):
            price = price_at(symbol, now)
            cost = self.costs.get(symbol, price)
            rows.append(
                {
                    "asset_id": str(uuid.UUID(int=_digest(symbol) << 64)),
                    "symbol": symbol,
                    "exchange": "NASDAQ",
                    "asset_class": "us_equity",
                    "qty": str(abs(qty)),
                    "qty_available": str(abs(qty) - self.reserved(symbol)),
                    "side": "long" if qty > 0 else "short",
                    "avg_entry_price": str(cost.quantize(Decimal("0.0001"))),
                    "current_price": str(price),
                    "market_value": str((price * qty).quantize(CENT)),
                    "cost_basis": str((cost * qty).quantize(CENT)),
                    "unrealized_pl": str(((price - cost) * qty).quantize(CENT)),
                }
            )
        return rows

    def buying_power(self, now: float) -> Decimal:
        multiplier = Decimal(2) if self.equity(now) >= 2000 else Decimal(1)
        return (self.cash * multiplier).quantize(CENT)

    def settle(self, now: float) -> None:
        """Move every working order whose delay has passed: fill it at the price of that
        moment, or (with a `partial` plan) fill part of it first, then the rest or cancel."""
        clock = time.monotonic() + self.advanced_s
        for order in self.orders.values():
            if order.resting:
                self._watch(order, now)
                continue
            if order.status not in ("accepted", "partially_filled") or clock < order.fills_at:
                continue
            price = price_at(order.symbol, now)
            rest = order.qty - order.filled_qty
            if order.status == "accepted" and self.plan.get("partial"):
                part = (order.qty * Decimal(str(self.plan["partial"]))).to_integral_value()
                part = min(max(part, Decimal(1)), rest)
                self.fill(order, part, price, now)
                order.status = "filled" if order.filled_qty == order.qty else "partially_filled"
                order.fills_at = clock + self._delay()
            elif order.status == "partially_filled" and self.plan.get("then") == "cancel":
                order.status = "canceled"
            else:
                self.fill(order, rest, price, now)
                order.status = "filled"

    def _watch(self, order: Order, now: float) -> None:
        """A resting order (and an OCO's other leg) against the price path since it was last
        watched, minute by minute through the sessions: the first leg the price sets off fills
        whole at that minute's price (at its stop or worse on a gap, at its limit or better),
        and the other leg is cancelled, as Alpaca's OCO rule says. A day order ends at the
        close."""
        group = [order, *order.legs]
        if not any(g.working for g in group):
            return
        if any(g.status == "partially_filled" for g in group):
            if self.plan.get("then") == "cancel":  # the rest of a leg filled in part ends
                for g in group:
                    if g.working:
                        g.status, g.canceled_at = "canceled", now
            return
        start, order.watched_from = order.watched_from, now
        for at in _session_minutes(start, now):
            price = price_at(order.symbol, at)
            leg = next((g for g in group if g.triggered(price)), None)
            if leg is not None:
                self._fire(group, leg, price, at)
                return
        if order.time_in_force == "day" and now >= _close_after(order.submitted_at):
            for g in group:
                g.status = "expired"

    def _fire(self, group: list[Order], leg: Order, price: Decimal, at: float) -> None:
        """`leg` is set off at `price`: it fills (in part first, with a `rest_partial` plan),
        and the group's other leg ends, by the OCO rule."""
        part = leg.qty - leg.filled_qty
        share = self.plan.get("rest_partial")
        if share:  # the plan's share first, a whole share at least
            part = min(max((part * Decimal(str(share))).to_integral_value(), Decimal(1)), part)
        self.fill(leg, part, price, at)
        leg.status = "filled" if leg.filled_qty == leg.qty else "partially_filled"
        for other in group:
            if other is not leg and other.working:
                other.status, other.canceled_at = "canceled", at

    def reserved(self, symbol: str) -> Decimal:
        """Shares held for working resting orders in `symbol` (an OCO's legs share them)."""
        return sum(
            (o.qty - o.filled_qty for o in self.orders.values()
             if o.resting and o.working and o.symbol == symbol),
            Decimal(0),
        )  # fmt: skip

    def find(self, wanted: str) -> Order | None:
        """An order by Alpaca's id or the client's, an OCO's leg included (by its own id)."""
        for order in self.orders.values():
            if wanted in (order.id, order.client_order_id):
                return order
            for leg in order.legs:
                if wanted == leg.id:
                    return leg
        return None

    def parent_of(self, order: Order) -> Order:
        for parent in self.orders.values():
            if order in parent.legs:
                return parent
        return order

    def _delay(self) -> float:
        return float(self.plan.get("fill_delay_s", 1.0))

    def reduces(self, symbol: str, side: str) -> bool:
        held = self.holdings.get(symbol, 0)
        return (side == "sell" and held > 0) or (side == "buy" and held < 0)

    def equity(self, now: float) -> Decimal:
        value = sum((price_at(s, now) * q for s, q in self.holdings.items()), Decimal(0))
        return (self.cash + value).quantize(CENT)

    def to_json(self, now: float) -> dict[str, Any]:
        equity = self.equity(now)
        last_equity = self.last_equity
        if last_equity is None:
            last_equity = self.equity(now - now % 86_400 - 1)
        values = [price_at(s, now) * q for s, q in self.holdings.items()]
        long_value = sum((v for v in values if v > 0), Decimal(0)).quantize(CENT)
        short_value = sum((v for v in values if v < 0), Decimal(0)).quantize(CENT)
        multiplier = Decimal(2) if equity >= 2000 else Decimal(1)
        body: dict[str, Any] = {
            "id": str(uuid.UUID(int=_digest(self.key_id) << 64)),
            # paper accounts' numbers start with PA; a live account's is digits only
            "account_number": f"{'PA' if self.key_id.startswith('PK') else '6'}"
            f"{_digest(self.key_id) % 10**10:010d}",
            "status": self.status,
            "crypto_status": "ACTIVE",
            "currency": "USD",
            "buying_power": str((self.cash * multiplier).quantize(CENT)),
            "regt_buying_power": str((self.cash * multiplier).quantize(CENT)),
            "daytrading_buying_power": "0",
            "non_marginable_buying_power": str(self.cash.quantize(CENT)),
            "cash": str(self.cash.quantize(CENT)),
            "accrued_fees": "0",
            "portfolio_value": str(equity),
            "pattern_day_trader": self.daytrade_count >= 4,
            "trading_blocked": self.status != "ACTIVE",
            "transfers_blocked": False,
            "account_blocked": False,
            "created_at": _iso(self.created_at),
            "trade_suspended_by_user": False,
            "multiplier": str(multiplier),
            "shorting_enabled": multiplier > 1 and self.plan.get("shorting", True) is not False,
            "equity": str(equity),
            "last_equity": str(last_equity),
            "long_market_value": str(long_value),
            "short_market_value": str(short_value),
            "initial_margin": "0",
            "maintenance_margin": "0",
            "last_maintenance_margin": "0",
            "sma": "0",
            "daytrade_count": self.daytrade_count,
        }
        if not self.deprecated_fields:
            del body["pattern_day_trader"], body["daytrade_count"]
        return body


def _opens_account(key_id: str, secret_key: str | None) -> bool:
    return (
        re.fullmatch(r"[A-Za-z0-9_-]{8,64}", key_id) is not None
        and not key_id.startswith("PKBAD")
        and secret_key is not None
        and len(secret_key) >= 8
    )


class Market:
    """All the stand-in's state; the HTTP handler only routes to it."""

    def __init__(self, open_accounts: bool = False) -> None:
        self.lock = threading.Lock()
        self.open_accounts = open_accounts
        """When on (the served demo), any well-formed key pair gets a simulated paper account on
        first use, except key ids that start with PKBAD, which are refused with 401."""
        self.accounts: dict[str, Account] = {}
        self.frozen_now: float | None = None
        self.latency_s = 0.0
        self.fill_delay_s = 1.0
        self.requests: Counter[tuple[str, str]] = Counter()
        self.oauth_clients: dict[str, str] = {}
        """client id -> client secret (kept by reset: an app's registration outlives tests)."""
        self.codes: dict[str, tuple[str, str]] = {}
        """Unused authorization codes -> (client id, redirect URL)."""
        self.tokens: dict[str, Account] = {}

    def now(self) -> float:
        return time.time() if self.frozen_now is None else self.frozen_now

    def reset(self) -> None:
        with self.lock:
            self.accounts.clear()
            self.requests.clear()
            self.frozen_now = None
            self.latency_s = 0.0
            self.fill_delay_s = 1.0
            self.codes.clear()
            self.tokens.clear()

    def add_account(self, body: dict[str, Any]) -> Account:
        fault = Fault(**body["fault"]) if body.get("fault") else None
        account = Account(
            key_id=str(body["key_id"]),
            secret_key=str(body["secret_key"]),
            cash=Decimal(str(body.get("cash", "100000"))),
            holdings={str(k): int(v) for k, v in (body.get("holdings") or {}).items()},
            status=str(body.get("status", "ACTIVE")),
            fault=fault,
            deprecated_fields=bool(body.get("deprecated_fields", True)),
            daytrade_count=int(body.get("daytrade_count", 0)),
            last_equity=None if body.get("last_equity") is None else Decimal(body["last_equity"]),
            plan=dict(body.get("orders") or {}),
        )
        with self.lock:
            self.accounts[account.key_id] = account
        return account

    def approve(self, client_id: str, redirect_uri: str) -> str:
        code = uuid.uuid4().hex
        with self.lock:
            self.codes[code] = (client_id, redirect_uri)
        return code

    def revoke(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The revocation endpoint: the app's own credentials, then the token is gone."""
        client_id = form.get("client_id", "")
        if self.oauth_clients.get(client_id) != form.get("client_secret") or not client_id:
            return 401, {
                "error": "invalid_client",
                "error_description": "client authentication failed",
            }
        with self.lock:
            self.tokens.pop(form.get("token", ""), None)
        return 200, {}

    def exchange(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The token endpoint: a code once, for the app it was given to, at its redirect URL."""
        client_id = form.get("client_id", "")
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        if self.oauth_clients.get(client_id) != form.get("client_secret") or not client_id:
            return 401, {
                "error": "invalid_client",
                "error_description": "client authentication failed",
            }
        with self.lock:
            issued = self.codes.pop(form.get("code", ""), None)
        if issued is None:
            return 400, {
                "error": "invalid_grant",
                "error_description": "the code is unknown or was used",
            }
        if issued != (client_id, form.get("redirect_uri", "")):
            return 400, {
                "error": "invalid_grant",
                "error_description": "redirect_uri does not match",
            }
        token = uuid.uuid4().hex + uuid.uuid4().hex
        account = self.add_account({"key_id": f"OAUTH{len(self.tokens):07d}", "secret_key": token})
        with self.lock:
            self.tokens[token] = account
        return 200, {
            "access_token": token,
            "token_type": "bearer",
            "scope": "trading data",
        }

    def account_for(self, key_id: str, secret_key: str | None) -> Account | None:
        """The account these credentials open, if any (opening one in open-accounts mode)."""
        with self.lock:
            account = self.accounts.get(key_id)
        if account is None and self.open_accounts and _opens_account(key_id, secret_key):
            account = self.add_account({"key_id": key_id, "secret_key": secret_key})
        if account is None or account.secret_key != secret_key:
            return None
        return account

    def stats(self) -> dict[str, Any]:
        with self.lock:
            per_key: dict[str, dict[str, int]] = {}
            for (key, endpoint), n in self.requests.items():
                per_key.setdefault(key, {})[endpoint] = n
            return {"total": sum(self.requests.values()), "by_key": per_key}

    def take_fault(self, account: Account, endpoint: str) -> Fault | None:
        with self.lock:
            fault = account.fault
            if fault is None or not fault.applies(endpoint):
                return None
            if fault.times is not None:
                fault.times -= 1
            return fault


def _error(status: int, code: int, message: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    return status, {"code": code, "message": message}, {}


class _Handler(BaseHTTPRequestHandler):
    server: StandinHTTPServer
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: without this, Nagle's algorithm and the client's
    # delayed ACK hold every kept-alive answer back by ~40 ms, which Alpaca does not
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    # -- plumbing ------------------------------------------------------------------------------
    def _send(
        self,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> None:
        data = raw if raw is not None else json.dumps(body).encode()
        self.send_response(status)
        if "Content-Type" not in (headers or {}):
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}") if length else {}

    def do_POST(self) -> None:  # noqa: N802
        market = self.server.market
        path = urlsplit(self.path).path
        if path.startswith("/oauth/"):
            self._oauth_post(path)
            return
        body = self._body()
        if path == "/_standin/oauth_client":
            market.oauth_clients[str(body["client_id"])] = str(body["client_secret"])
            self._send(201, {"client_id": body["client_id"]})
        elif path == "/_standin/revoke":
            with market.lock:
                market.tokens.pop(str(body.get("token")), None)
            self._send(200, {})
        elif not path.startswith("/_standin/"):
            self._serve("POST", path, {}, body)
        elif path == "/_standin/accounts":
            account = market.add_account(body)
            self._send(201, {"key_id": account.key_id})
        elif path == "/_standin/reset":
            market.reset()
            self._send(200, {})
        elif path == "/_standin/clock":
            market.frozen_now = None if body.get("now") is None else float(body["now"])
            self._send(200, {"now": market.now()})
        elif path == "/_standin/latency":
            market.latency_s = float(body.get("seconds", 0))
            self._send(200, {"seconds": market.latency_s})
        elif path == "/_standin/advance":
            with market.lock:
                known = market.accounts.get(str(body.get("key_id")))
                if known is not None:
                    known.advanced_s += float(body.get("seconds", 0))
            self._send(200 if known else 404, {})
        elif path == "/_standin/fill_delay":
            market.fill_delay_s = float(body.get("seconds", 0))
            self._send(200, {"seconds": market.fill_delay_s})
        else:
            self._send(*_error(404, 40410000, "endpoint not found")[:2])

    def _oauth_post(self, path: str) -> None:
        market = self.server.market
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if path == "/oauth/token":
            self._send(*market.exchange(form))
        elif path == "/oauth/revoke":
            self._send(*market.revoke(form))
        elif path == "/oauth/authorize":  # the Approve button
            if form.get("client_id") not in market.oauth_clients:
                self._page(400, "<p>Unknown application.</p>")
                return
            code = market.approve(form["client_id"], form.get("redirect_uri", ""))
            back = form.get("redirect_uri", "")
            query = urlencode({"code": code, "state": form.get("state", "")})
            self.send_response(302)
            self.send_header("Location", f"{back}{'&' if '?' in back else '?'}{query}")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._send(*_error(404, 40410000, "endpoint not found")[:2])

    def _page(self, status: int, body: str) -> None:
        data = f"<!doctype html><html lang=en><title>Alpaca</title><body>{body}</body></html>"
        self._send(status, None, {"Content-Type": "text/html; charset=utf-8"}, data.encode())

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE", urlsplit(self.path).path, {}, {})

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/oauth/authorize":
            if query.get("client_id") not in self.server.market.oauth_clients:
                self._page(400, "<p>Unknown application.</p>")
                return
            fields = "".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                for k, v in query.items()
            )
            self._page(
                200,
                "<h1>Alpaca</h1><p>An application asks to trade on your account.</p>"
                f'<form method="post" action="/oauth/authorize">{fields}'
                "<button type=submit>Approve</button></form>",
            )
            return
        if url.path == "/_standin/stats":
            self._send(200, self.server.market.stats())
            return
        self._serve("GET", url.path, query, {})

    def _serve(self, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> None:
        """An Alpaca endpoint: authenticate, count, apply the account's fault, answer."""
        market = self.server.market
        route = _route(method, path)
        if route is None:
            self._send(*_error(404, 40410000, "endpoint not found")[:2])
            return
        endpoint, symbol = route
        key_id = self.headers.get("APCA-API-KEY-ID", "")
        with market.lock:
            market.requests[(key_id, endpoint)] += 1
        if market.latency_s:
            time.sleep(market.latency_s)
        bearer = self.headers.get("Authorization", "")
        if bearer.startswith("Bearer "):
            with market.lock:
                account = market.tokens.get(bearer[len("Bearer ") :])
        else:
            account = market.account_for(key_id, self.headers.get("APCA-API-SECRET-KEY"))
        if account is None:
            self._send(*_error(401, 40110000, "request is not authorized")[:2])
            return
        fault = market.take_fault(account, endpoint)
        if fault is not None:
            if fault.kind == "http":
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = f"{fault.retry_after:g}"
                messages = {
                    403: "forbidden",
                    429: "rate limit exceeded",
                    500: "internal server error",
                }
                answer = {
                    "code": fault.status * 100000,
                    "message": messages.get(fault.status, "error"),
                }
                self._send(fault.status, answer, headers)
                return
            if fault.kind == "malformed":
                self._send(200, None, raw=b'{"equity": "12.3", "trades": ')
                return
            time.sleep(HANG_SECONDS if fault.kind == "hang" else fault.seconds)
        try:
            with market.lock:
                status, answer = _answer(market, account, endpoint, symbol, query, body)
        except ValueError as bad:
            status, answer = 422, {"code": 42210000, "message": str(bad)}
        if status == 204:
            self._send(204, None, raw=b"")
            return
        self._send(status, answer)


_ROUTES = [
    (re.compile(r"^POST /v2/orders$"), "submit_order"),
    (re.compile(r"^GET /v2/orders:by_client_order_id$"), "order_by_client_id"),
    (re.compile(r"^GET /v2/orders/([^/]+)$"), "order"),
    (re.compile(r"^DELETE /v2/orders/([^/]+)$"), "cancel_order"),
    (re.compile(r"^GET /v2/orders$"), "orders"),
    (re.compile(r"^GET /v2/positions$"), "positions"),
    (re.compile(r"^GET /v2/stocks/bars$"), "multi_bars"),
    (re.compile(r"^GET /v2/account$"), "account"),
    (re.compile(r"^GET /v2/account/portfolio/history$"), "portfolio_history"),
    (re.compile(r"^GET /v2/clock$"), "clock"),
    (re.compile(r"^GET /v2/stocks/trades/latest$"), "latest_trades"),
    (re.compile(r"^GET /v2/stocks/([^/]+)/trades/latest$"), "latest_trade"),
    (re.compile(r"^GET /v2/stocks/([^/]+)/bars$"), "bars"),
    (re.compile(r"^GET /v2/assets/([^/]+)$"), "asset"),
]


def _route(method: str, path: str) -> tuple[str, str | None] | None:
    for pattern, name in _ROUTES:
        match = pattern.match(f"{method} {path}")
        if match:
            return name, (match.group(1) if match.groups() else None)
    return None


def _trade(symbol: str, now: float) -> dict[str, Any]:
    return {
        "t": _iso(now),
        "x": "V",
        "p": float(price_at(symbol, now)),
        "s": 100,
        "c": ["@"],
        "i": _digest(f"{symbol}{int(now)}") % 10**12,
        "z": "C",
    }


def _multi_bars(query: dict[str, str], now: float) -> dict[str, Any]:
    """/v2/stocks/bars?symbols=...: bars grouped by symbol; `limit` counts bars across all
    symbols and `page_token` continues where the last page stopped, as Alpaca pages them."""
    symbols = [s for s in query.get("symbols", "").split(",") if s]
    if not symbols:
        raise ValueError("symbols is required")
    limit = min(int(query.get("limit") or 1000), 10_000)
    rows = [
        (symbol, bar)
        for symbol in sorted(set(symbols))
        if listed(symbol)
        for bar in _bars(symbol, {**query, "limit": "10000"}, now)
    ]
    start = int(query.get("page_token") or 0)
    page = rows[start : start + limit]
    grouped: dict[str, list[dict[str, Any]]] = {}
    for symbol, bar in page:
        grouped.setdefault(symbol, []).append(bar)
    more = start + limit < len(rows)
    return {"bars": grouped, "next_page_token": str(start + limit) if more else None}


SPLITS: dict[str, tuple[date, int]] = {"NVDA": (date(2024, 6, 10), 10)}
"""Stock splits the stand-in's history has: before the day, each share traded at `ratio` times
the price (a 10-for-1 split). Daily bars with `adjustment` split or all are divided back, as
Alpaca adjusts them; raw bars show the jump. No dividends are modelled, so `all` is `split`."""


def _split_factor(symbol: str, day: date, adjustment: str) -> int:
    split = SPLITS.get(symbol)
    if split is None or adjustment in ("split", "all") or day >= split[0]:
        return 1
    return split[1]


def _daily_bars(symbol: str, query: dict[str, str], now: float) -> list[dict[str, Any]]:
    """A bar per trading day (the New York session, stamped at midnight New York as Alpaca
    stamps daily bars) that has opened by `now`, today's up to now: the last `limit` before
    `end` (or now), from `start` if given."""
    adjustment = query.get("adjustment") or "raw"
    if adjustment not in ("raw", "split", "dividend", "all"):
        raise ValueError(f"invalid adjustment: {adjustment}")
    limit = min(int(query.get("limit") or 1000), 10_000)
    last = datetime.fromtimestamp(now, NEW_YORK).date()
    if query.get("end"):
        last = min(last, _day_of(query["end"]))
    first = _day_of(query["start"]) if query.get("start") else None
    days: list[date] = []
    day = last
    while len(days) < limit and (first is None or day >= first) and day.year >= 1990:
        if is_trading_day(day) and session(day)[0].timestamp() <= now:
            days.append(day)
        day -= timedelta(days=1)
    bars = []
    for day in reversed(days):
        opens, closes = (t.timestamp() for t in session(day))
        bars.append(
            _day_bar(symbol, day, opens, min(closes, now), _split_factor(symbol, day, adjustment))
        )
    return bars


@functools.lru_cache(maxsize=200_000)
def _day_bar(symbol: str, day: date, opens: float, closes: float, factor: int) -> dict[str, Any]:
    """One session's bar (kept: years of history are asked for a page at a time)."""
    samples = [
        price_at(symbol, opens + (closes - opens) * f) * factor for f in (0, 0.25, 0.5, 0.75, 1)
    ]
    return {
        "t": _iso(_midnight(day)),
        "o": float(samples[0]),
        "h": float(max(samples)),
        "l": float(min(samples)),
        "c": float(samples[-1]),
        "v": (1_000_000 + _digest(f"{symbol}{day}") % 500_000) // factor,
        "n": 5_000,
        "vw": float(sum(samples) / len(samples)),
    }


def _midnight(day: date) -> float:
    """The moment a New York day begins: how Alpaca stamps daily bars and daily equity."""
    return datetime.combine(day, datetime.min.time(), tzinfo=NEW_YORK).timestamp()


def _day_of(text: str) -> date:
    """The New York date of an RFC 3339 time or a plain date, as Alpaca reads start and end."""
    if len(text) == 10:
        return date.fromisoformat(text)
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return at.astimezone(NEW_YORK).date() if at.tzinfo else at.date()


def _bars(symbol: str, query: dict[str, str], now: float) -> list[dict[str, Any]]:
    timeframe = query.get("timeframe", "1Day")
    if timeframe == "1Day":
        return _daily_bars(symbol, query, now)
    step = {"1Hour": 3_600, "15Min": 900, "5Min": 300, "1Min": 60}.get(timeframe)
    if step is None:
        raise ValueError(f"invalid timeframe: {timeframe}")
    limit = min(int(query.get("limit") or 1000), 10_000)
    end = now - now % step
    starts = [end - step * i for i in range(limit, 0, -1)]
    if query.get("start"):
        first = datetime.fromisoformat(query["start"].replace("Z", "+00:00")).timestamp()
        starts = [s for s in starts if s >= first]
    bars = []
    for start in starts:
        samples = [price_at(symbol, start + step * f) for f in (0, 0.25, 0.5, 0.75, 1)]
        bars.append(
            {
                "t": _iso(start),
                "o": float(samples[0]),
                "h": float(max(samples)),
                "l": float(min(samples)),
                "c": float(samples[-1]),
                "v": 1_000_000 + _digest(f"{symbol}{start}") % 500_000,
                "n": 5_000,
                "vw": float(sum(samples) / len(samples)),
            }
        )
    return bars


PERIOD_DAYS = {"D": 1, "W": 7, "M": 30, "A": 365}


def _portfolio_history(account: Account, query: dict[str, str], now: float) -> dict[str, Any]:
    """GET /v2/account/portfolio/history at timeframe 1D: the account's equity at each
    session's close over `period` (1M when absent), stamped at midnight New York as Alpaca
    stamps daily points. The stand-in's history: what it holds now, valued at each close, with
    its cash moving by a slow deterministic wave (so a chart has something to show)."""
    if (query.get("timeframe") or "1D") != "1D":
        raise ValueError("the stand-in's portfolio history has timeframe 1D only")
    period = query.get("period") or "1M"
    match = re.fullmatch(r"([0-9]+)([DWMA])", period)
    if match is None:
        raise ValueError(f"invalid period: {period}")
    last = datetime.fromtimestamp(now, NEW_YORK).date()
    first = last - timedelta(days=int(match.group(1)) * PERIOD_DAYS[match.group(2)])
    phase = _digest(account.key_id) % 1000 / 1000 * 2 * math.pi
    stamps: list[int] = []
    equity: list[float] = []
    day = first
    while day < last:  # today's session is not over
        if is_trading_day(day):
            closes = session(day)[1].timestamp()
            wave = Decimal(repr(0.03 * math.sin(closes / 86_400 / 41 + phase)))
            value = account.cash * (1 + wave) + account.equity(closes) - account.cash
            stamps.append(int(_midnight(day)))
            equity.append(float(value.quantize(CENT)))
        day += timedelta(days=1)
    base = equity[0] if equity else float(account.cash)
    return {
        "timestamp": stamps,
        "equity": equity,
        "profit_loss": [round(e - base, 2) for e in equity],
        "profit_loss_pct": [round((e - base) / base, 6) if base else 0 for e in equity],
        "base_value": base,
        "timeframe": "1D",
    }


def _submit(market: Market, account: Account, body: dict[str, Any], now: float) -> tuple[int, Any]:
    symbol = str(body.get("symbol", ""))
    client_order_id = str(body.get("client_order_id") or uuid.uuid4())
    if client_order_id in account.orders:
        return 422, {"code": 40010001, "message": "client_order_id must be unique"}
    if not listed(symbol):
        return 422, {"code": 40010001, "message": f"asset not found: {symbol}"}
    side, text, qty = _side_and_quantity(body)
    reduces = account.reduces(symbol, side)
    kind = str(body.get("type") or "market")
    order_class = str(body.get("order_class") or "simple")
    if kind not in ("market", "stop", "limit") or order_class not in ("simple", "oco"):
        raise ValueError(f"this stand-in takes market, stop, limit and oco orders, not {kind}")
    if order_class == "oco" and not reduces:
        return 422, {"code": 42210000, "message": "oco orders must be exit orders"}
    refuse = account.plan.get("refuse") or {}
    if refuse.get("times", 0) > 0:
        refuse["times"] -= 1
        return 403, {"code": 40310000, "message": str(refuse.get("message"))}
    if reduces and account.plan.get("reject_closes", 0) > 0:
        account.plan["reject_closes"] -= 1
        held = abs(account.holdings.get(symbol, 0))
        return 403, {
            "code": 40310000,
            "message": f"insufficient qty available for order (requested: {text}, available: 0 "
            f"of {held} held)",
        }
    held = Decimal(account.holdings.get(symbol, 0))
    available = abs(held) - account.reserved(symbol)
    if reduces and qty > available:  # never past zero, nor shares a resting order holds
        return 403, {
            "code": 40310000,
            "message": f"insufficient qty available for order (requested: {text}, available: "
            f"{available})",
        }
    short = side == "sell" and held < qty
    if short and account.plan.get("shorting", True) is False:
        return 403, {"code": 40310000, "message": "account is not allowed to short"}
    if not reduces and qty * price_at(symbol, now) > account.buying_power(now):
        return 403, {"code": 40310000, "message": "insufficient buying power"}
    if kind != "market" or order_class == "oco":
        return _rest(account, body, symbol, side, qty, client_order_id, now)
    delay = float(account.plan.get("fill_delay_s", market.fill_delay_s))
    order = Order(
        id=str(uuid.uuid4()),
        client_order_id=client_order_id,
        symbol=symbol,
        side=side,
        qty=qty,
        submitted_at=now,
        fills_at=time.monotonic() + account.advanced_s + delay,
    )
    account.orders[client_order_id] = order
    account.settle(now)
    return 200, order.to_json()


def _side_and_quantity(body: dict[str, Any]) -> tuple[str, str, Decimal]:
    side = body.get("side")
    if side not in ("buy", "sell"):
        raise ValueError("side must be buy or sell")
    text = str(body.get("qty", "0"))
    if not re.fullmatch(r"\d+(\.\d+)?", text):
        raise ValueError(f"invalid qty: {text} (a plain decimal number is expected)")
    qty = Decimal(text)
    if qty <= 0 or qty != qty.to_integral_value():
        raise ValueError("qty must be a positive whole number of shares")
    return str(side), text, qty


def _orders_answer(
    account: Account, endpoint: str, wanted: str | None, query: dict[str, str], now: float
) -> tuple[int, Any]:
    """GET an order (by Alpaca's id or the client's), DELETE one, or list them."""
    if endpoint == "cancel_order":
        return _cancel(account, wanted, now)
    if endpoint == "orders":
        shown = [o for o in account.orders.values() if query.get("status") != "open" or o.working]
        return 200, [o.to_json() for o in shown]
    found = account.find(wanted or "")
    if found is None:
        return 404, {"code": 40410000, "message": "order not found"}
    return 200, found.to_json()


def _price(value: Any, what: str) -> Decimal:
    text = str(value if value is not None else "")
    if not re.fullmatch(r"\d+(\.\d+)?", text) or Decimal(text) <= 0:
        raise ValueError(f"{what} must be a positive decimal")
    price = Decimal(text)
    if price >= 1 and price != price.quantize(CENT):
        raise ValueError("sub-penny increment does not fulfill minimum pricing criteria")
    return price


def _rest(
    account: Account,
    body: dict[str, Any],
    symbol: str,
    side: str,
    qty: Decimal,
    client_order_id: str,
    now: float,
) -> tuple[int, Any]:
    """A resting order: a stop, a limit, or an OCO (its parent the take-profit limit, its leg
    the stop), working (`new`) until the price path sets it off, it is cancelled, or a day
    order's session closes."""
    tif = str(body.get("time_in_force") or "day")
    if tif not in ("day", "gtc"):
        raise ValueError(f"time_in_force {tif} is not taken for resting orders here")

    def one(kind: str, stop: Decimal | None, limit: Decimal | None, cid: str) -> Order:
        return Order(
            id=str(uuid.uuid4()), client_order_id=cid, symbol=symbol, side=side, qty=qty,
            submitted_at=now, fills_at=0.0, status="new", type=kind, time_in_force=tif,
            stop_price=stop, limit_price=limit, watched_from=now,
        )  # fmt: skip

    if str(body.get("order_class") or "simple") == "oco":
        take = _price((body.get("take_profit") or {}).get("limit_price"), "take_profit")
        stop = _price((body.get("stop_loss") or {}).get("stop_price"), "stop_loss")
        if (take <= stop) if side == "sell" else (take >= stop):
            raise ValueError("take_profit.limit_price must be on the other side of stop_price")
        order = one("limit", None, take, client_order_id)
        order.order_class = "oco"
        order.legs = [one("stop", stop, None, str(uuid.uuid4()))]
        order.legs[0].order_class = "oco"
    elif body.get("type") == "stop":
        order = one("stop", _price(body.get("stop_price"), "stop_price"), None, client_order_id)
    else:
        order = one("limit", None, _price(body.get("limit_price"), "limit_price"), client_order_id)
    account.orders[client_order_id] = order
    return 200, order.to_json()


def _cancel(account: Account, wanted: str | None, now: float) -> tuple[int, Any]:
    """DELETE /v2/orders/{id}: a working order ends `canceled` (an OCO with both its legs); one
    that already ended is 422, as at Alpaca."""
    found = account.find(wanted or "")
    if found is None:
        return 404, {"code": 40410000, "message": "order not found"}
    parent = account.parent_of(found)
    if not parent.working:
        return 422, {"code": 42210000, "message": f"order is {parent.status}, not cancelable"}
    for order in (parent, *parent.legs):
        if order.working:
            order.status, order.canceled_at = "canceled", now
    return 204, None


def _answer(
    market: Market,
    account: Account,
    endpoint: str,
    symbol: str | None,
    query: dict[str, str],
    body: dict[str, Any],
) -> tuple[int, Any]:
    now = market.now()
    account.settle(now)
    if endpoint == "submit_order":
        return _submit(market, account, body, now)
    if endpoint in ("order", "order_by_client_id", "cancel_order", "orders"):
        wanted = query.get("client_order_id") if endpoint == "order_by_client_id" else symbol
        return _orders_answer(account, endpoint, wanted, query, now)
    reads = {
        "account": account.to_json,
        "positions": account.positions,
        "portfolio_history": lambda at: _portfolio_history(account, query, at),
    }
    if endpoint in reads:
        return 200, reads[endpoint](now)
    if endpoint == "clock":
        return 200, epoch_clock(now)
    if endpoint == "multi_bars":
        return 200, _multi_bars(query, now)
    if endpoint == "latest_trades":
        symbols = [s for s in query.get("symbols", "").split(",") if s]
        if not symbols:
            raise ValueError("symbols is required")
        return 200, {"trades": {s: _trade(s, now) for s in symbols if listed(s)}}
    assert symbol is not None
    if not listed(symbol):
        return 404, {"code": 40410000, "message": f"symbol not found: {symbol}"}
    if endpoint == "latest_trade":
        return 200, {"symbol": symbol, "trade": _trade(symbol, now)}
    if endpoint == "bars":
        return 200, {"bars": _bars(symbol, query, now), "symbol": symbol, "next_page_token": None}
    return 200, {
        "id": str(uuid.UUID(int=_digest(symbol) << 64)),
        "class": "us_equity",
        "exchange": "NASDAQ",
        "symbol": symbol,
        "status": "active",
        "tradable": True,
        "fractionable": True,
    }


class StandinHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], market: Market) -> None:
        super().__init__(address, _Handler)
        self.market = market


class AlpacaServer:
    """Runs a Market behind an HTTP server on 127.0.0.1:port (0 picks a free port)."""

    def __init__(self, port: int = 0, open_accounts: bool = False) -> None:
        self.market = Market(open_accounts)
        self._http = StandinHTTPServer(("127.0.0.1", port), self.market)
        self.port = self._http.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AlpacaServer:
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def serve_forever(self) -> None:
        self._http.serve_forever()
