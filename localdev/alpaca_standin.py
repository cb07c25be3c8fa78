"""A local Alpaca: the trading and market-data HTTP endpoints the product uses.

One simulated account per key pair, deterministic prices that move over time, and faults
chosen per key (401/403, 429 with Retry-After, 500, slow answers, hangs, malformed bodies).
alpaca-trade-api's `REST` talks to it when its base URLs point here.

Control endpoints (not part of Alpaca) live under `/_standin/`:
  POST /_standin/accounts  {key_id, secret_key, cash?, holdings?, fault?, status?,
                            deprecated_fields? (false: no pattern_day_trader/daytrade_count)}
  POST /_standin/reset     forget every account, fault and counter
  POST /_standin/clock     {"now": <epoch seconds> | null}  freeze or release the clock
  POST /_standin/latency   {"seconds": 0.1}  added to every Alpaca answer
  GET  /_standin/stats     request counts per key and per endpoint
The market clock (/v2/clock) follows localdev/market_calendar.py and the stand-in's clock.
A fault is {"kind": "http", "status": 429|500|403|..., "retry_after"?: s, "times"?: n,
"endpoints"?: ["account", "latest_trades", "bars", ...]} or {"kind": "slow", "seconds": s, ...},
{"kind": "hang", ...} (answers after 120 s) or {"kind": "malformed", ...}. "times" limits how
many requests fault; without it every request does.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from localdev.market_calendar import epoch_clock

CENT = Decimal("0.01")
SYMBOL = re.compile(r"^[A-Z]{1,5}(\.[A-Z])?$")
HANG_SECONDS = 120.0


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def price_at(symbol: str, epoch_s: float) -> Decimal:
    """Simulated last-trade price of `symbol` at a moment: a daily trend plus an intraday wave."""
    h = _digest(symbol)
    base = 20 + (h % 48_000) / 100
    phase = (h >> 20) % 1000 / 1000 * 2 * math.pi
    days = epoch_s / 86_400
    trend = 0.08 * math.sin(2 * math.pi * days / 23 + phase)
    wave = 0.005 * math.sin(2 * math.pi * epoch_s / 1_800 + phase)
    return Decimal(repr(base * (1 + trend + wave))).quantize(CENT, ROUND_HALF_EVEN)


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat().replace("+00:00", "Z")


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

    def equity(self, now: float) -> Decimal:
        value = sum((price_at(s, now) * q for s, q in self.holdings.items()), Decimal(0))
        return (self.cash + value).quantize(CENT)

    def to_json(self, now: float) -> dict[str, Any]:
        equity = self.equity(now)
        last_equity = self.equity(now - now % 86_400 - 1)
        long_value = equity - self.cash
        multiplier = Decimal(2) if equity >= 2000 else Decimal(1)
        body: dict[str, Any] = {
            "id": str(uuid.UUID(int=_digest(self.key_id) << 64)),
            "account_number": f"PA{_digest(self.key_id) % 10**10:010d}",
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
            "pattern_day_trader": False,
            "trading_blocked": self.status != "ACTIVE",
            "transfers_blocked": False,
            "account_blocked": False,
            "created_at": _iso(self.created_at),
            "trade_suspended_by_user": False,
            "multiplier": str(multiplier),
            "shorting_enabled": multiplier > 1,
            "equity": str(equity),
            "last_equity": str(last_equity),
            "long_market_value": str(long_value),
            "short_market_value": "0",
            "initial_margin": "0",
            "maintenance_margin": "0",
            "last_maintenance_margin": "0",
            "sma": "0",
            "daytrade_count": 0,
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
        self.requests: Counter[tuple[str, str]] = Counter()

    def now(self) -> float:
        return time.time() if self.frozen_now is None else self.frozen_now

    def reset(self) -> None:
        with self.lock:
            self.accounts.clear()
            self.requests.clear()
            self.frozen_now = None
            self.latency_s = 0.0

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
        )
        with self.lock:
            self.accounts[account.key_id] = account
        return account

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
        body = self._body()
        if path == "/_standin/accounts":
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
        else:
            self._send(*_error(404, 40410000, "endpoint not found")[:2])

    def do_GET(self) -> None:  # noqa: N802
        market = self.server.market
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path == "/_standin/stats":
            self._send(200, market.stats())
            return
        route = _route(url.path)
        if route is None:
            self._send(*_error(404, 40410000, "endpoint not found")[:2])
            return
        endpoint, symbol = route
        key_id = self.headers.get("APCA-API-KEY-ID", "")
        with market.lock:
            market.requests[(key_id, endpoint)] += 1
        if market.latency_s:
            time.sleep(market.latency_s)
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
                body = {
                    "code": fault.status * 100000,
                    "message": messages.get(fault.status, "error"),
                }
                self._send(fault.status, body, headers)
                return
            if fault.kind == "malformed":
                self._send(200, None, raw=b'{"equity": "12.3", "trades": ')
                return
            time.sleep(HANG_SECONDS if fault.kind == "hang" else fault.seconds)
        try:
            status, body = _answer(market, account, endpoint, symbol, query)
        except ValueError as bad:
            status, body = 422, {"code": 42210000, "message": str(bad)}
        self._send(status, body)


_ROUTES = [
    (re.compile(r"^/v2/account$"), "account"),
    (re.compile(r"^/v2/clock$"), "clock"),
    (re.compile(r"^/v2/stocks/trades/latest$"), "latest_trades"),
    (re.compile(r"^/v2/stocks/([^/]+)/trades/latest$"), "latest_trade"),
    (re.compile(r"^/v2/stocks/([^/]+)/bars$"), "bars"),
    (re.compile(r"^/v2/assets/([^/]+)$"), "asset"),
]


def _route(path: str) -> tuple[str, str | None] | None:
    for pattern, name in _ROUTES:
        match = pattern.match(path)
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


def _bars(symbol: str, query: dict[str, str], now: float) -> list[dict[str, Any]]:
    timeframe = query.get("timeframe", "1Day")
    step = {"1Day": 86_400, "1Hour": 3_600, "15Min": 900, "5Min": 300, "1Min": 60}.get(timeframe)
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


def _answer(
    market: Market, account: Account, endpoint: str, symbol: str | None, query: dict[str, str]
) -> tuple[int, Any]:
    now = market.now()
    if endpoint == "account":
        return 200, account.to_json(now)
    if endpoint == "clock":
        return 200, epoch_clock(now)
    if endpoint == "latest_trades":
        symbols = [s for s in query.get("symbols", "").split(",") if s]
        if not symbols:
            raise ValueError("symbols is required")
        return 200, {"trades": {s: _trade(s, now) for s in symbols if SYMBOL.match(s)}}
    assert symbol is not None
    if not SYMBOL.match(symbol):
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
