"""Alpaca, through alpaca-trade-api: account, latest prices in one request, daily bars.

Every failure becomes a `BrokerError` with a code a person can act on and whether it is worth
retrying. Transient ones (429, 5xx, connection resets) are retried with exponential backoff
that honours Retry-After; permanent ones (401/403, malformed answers) are not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import alpaca_trade_api as tradeapi
from alpaca_trade_api.common import URL
from alpaca_trade_api.rest import TimeFrame
from pydantic import BaseModel, ValidationError
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from agenttrader.broker.answers import (
    ADJUSTED,
    NEW_YORK,
    AccountSnapshot,
    Bar,
    MarketClock,
    OrderState,
)
from agenttrader.broker.keystore import AlpacaKeys
from agenttrader.broker.refusals import BrokerError, classify
from agenttrader.core import config
from agenttrader.core.errors import ErrorCode
from agenttrader.core.money import decimal, plain

Answer = TypeVar("Answer", bound=BaseModel)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try a transient failure."""

    attempts: int = 3
    """Total attempts, the first included."""
    budget_s: float = 15.0
    """Give up retrying once this much time has passed since the first attempt."""
    max_wait_s: float = 5.0
    """Longest single wait, Retry-After included."""
    initial_wait_s: float = 0.2
    """First backoff when the server gives no Retry-After."""


class _TimeoutAdapter(HTTPAdapter):
    """Gives every request a timeout; alpaca-trade-api sets none."""

    def __init__(self, timeout_s: float, pool_maxsize: int = 8) -> None:
        super().__init__(pool_maxsize=pool_maxsize)
        self._timeout_s = timeout_s

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout_s
        return super().send(request, **kwargs)


def shared_connections(timeout_s: float = 8.0, size: int = 128) -> HTTPAdapter:
    """A keep-alive connection pool for many brokers at once (thread-safe)."""
    return _TimeoutAdapter(timeout_s, pool_maxsize=size)


class _AlpacaREST(tradeapi.REST):  # type: ignore[misc]
    """alpaca-trade-api's client with our data URL, our timeout and our retries (not its own)."""

    def __init__(
        self,
        keys: AlpacaKeys,
        trading_url: str,
        data_url: str,
        timeout_s: float,
        adapter: HTTPAdapter | None = None,
    ):
        if keys.oauth_token is not None:
            # an OAuth token: only `Authorization: Bearer` is sent (no key headers)
            super().__init__(
                "oauth",
                "oauth",
                base_url=trading_url,
                oauth=keys.oauth_token.get_secret_value(),
                raw_data=True,
            )
        else:
            assert keys.secret_key is not None
            super().__init__(
                keys.key_id, keys.secret_key.get_secret_value(), base_url=trading_url, raw_data=True
            )
        self._retry = 0
        self._data_url = URL(data_url.rstrip("/"))
        # no proxies or .netrc from the environment: looking them up walks every environment
        # variable on every request, which was most of a pulse's CPU time
        self._session.trust_env = False
        self.shared_adapter = adapter is not None
        adapter = adapter or _TimeoutAdapter(timeout_s)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def close(self) -> None:
        if self.shared_adapter:  # the pool outlives this person's session
            self._session.adapters.clear()
        super().close()

    def data_get(
        self, path: str, data: Any = None, feed: str | None = None, api_version: str = "v1"
    ) -> Any:
        if feed:
            data = dict(data or {}, feed=feed)
        return self._request("GET", path, data, base_url=self._data_url, api_version=api_version)


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    backoff = wait_exponential_jitter(initial=policy.initial_wait_s, max=policy.max_wait_s)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, BrokerError) and error.retry_after is not None:
            return min(error.retry_after, policy.max_wait_s)
        return float(backoff(state))

    return wait


class AlpacaBroker:
    """One user's view of Alpaca."""

    def __init__(
        self,
        keys: AlpacaKeys,
        *,
        trading_url: str | None = None,
        data_url: str | None = None,
        timeout_s: float = 8.0,
        retry_policy: RetryPolicy | None = None,
        connections: HTTPAdapter | None = None,
    ) -> None:
        """`connections`: a connection pool shared by many people's brokers (kept alive
        between them, so a pulse does not open a TLS connection per person)."""
        if not trading_url:
            trading_url = config.PAPER_TRADING_URL if keys.paper else config.LIVE_TRADING_URL
        self._rest = _AlpacaREST(
            keys, trading_url, data_url or "https://data.alpaca.markets", timeout_s, connections
        )
        policy = retry_policy or RetryPolicy()
        self._call = retry(
            retry=retry_if_exception(lambda e: isinstance(e, BrokerError) and e.transient),
            stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.budget_s),
            wait=_wait(policy),
            reraise=True,
        )(self._once)
        self.requests = 0

    def _once(self, fn: Callable[[], Any]) -> Any:
        self.requests += 1
        try:
            return fn()
        except Exception as error:  # every client failure is classified, the rest re-raised
            raise classify(error) from None

    def close(self) -> None:
        self._rest.close()

    def _parsed(self, model: type[Answer], fetch: Callable[[], Any], what: str) -> Answer:
        """An answer read through its model; one that does not parse is ALPACA_MALFORMED."""
        raw = self._call(fetch)
        try:
            return model.model_validate(raw)
        except ValidationError:
            raise classify(ValueError(what)) from None

    def account(self) -> AccountSnapshot:
        return self._parsed(AccountSnapshot, self._rest.get_account, "account")

    def portfolio_history(self, period: str = "1A") -> list[tuple[date, Decimal]]:
        """The account's daily equity as Alpaca keeps it over `period` (1A: a year), by New
        York date, days without a value (before the account existed) left out."""
        raw = self._call(lambda: self._rest.get_portfolio_history(period=period, timeframe="1D"))
        try:
            points = zip(raw["timestamp"], raw["equity"], strict=True)
            return [
                (datetime.fromtimestamp(int(t), NEW_YORK).date(), decimal(e))
                for t, e in points
                if e is not None
            ]
        except (ValueError, KeyError, TypeError):
            raise classify(ValueError("portfolio history")) from None

    def clock(self) -> MarketClock:
        return self._parsed(MarketClock, self._rest.get_clock, "clock")

    def latest_prices(self, symbols: list[str]) -> dict[str, Decimal]:
        """Last trade price of each symbol, all in one request."""
        if not symbols:
            return {}
        raw = self._call(lambda: self._rest.get_latest_trades(sorted(set(symbols))))
        try:
            return {symbol: decimal(trade["p"]) for symbol, trade in dict(raw).items()}
        except (ValueError, KeyError, TypeError):
            raise classify(ValueError("latest trades")) from None

    def daily_bars(self, symbol: str, limit: int) -> list[Bar]:
        raw = self._call(
            lambda: list(
                self._rest.get_bars_iter(
                    symbol, TimeFrame.Day, limit=limit, adjustment=ADJUSTED, raw=True
                )
            )
        )
        try:
            return [Bar.from_alpaca(bar) for bar in raw]
        except (ValueError, KeyError, TypeError):
            raise classify(ValueError("bars")) from None

    def daily_bars_many(
        self, symbols: list[str], since: datetime, until: datetime | None = None
    ) -> dict[str, list[Bar]]:
        """Daily bars since `since` (and up to `until`) of every symbol, grouped by symbol, in
        as few requests as Alpaca's paging allows (one for a few symbols and weeks, a page of
        10,000 bars for years). A symbol Alpaca does not list is missing from the answer."""
        if not symbols:
            return {}
        start = since.strftime("%Y-%m-%dT%H:%M:%SZ")
        end = until.strftime("%Y-%m-%dT%H:%M:%SZ") if until is not None else None
        # at most a bar a calendar day a symbol: given as the limit, it makes the client ask
        # for Alpaca's largest pages (10,000 bars) instead of its default (1,000)
        days = ((until or datetime.now(UTC)) - since).days + 2
        most = max(days, 1) * len(set(symbols))
        raw = self._call(
            lambda: list(
                self._rest.get_bars_iter(
                    sorted(set(symbols)),
                    TimeFrame.Day,
                    start=start,
                    end=end,
                    limit=most,
                    adjustment=ADJUSTED,
                    raw=True,
                )
            )
        )
        grouped: dict[str, list[Bar]] = {}
        try:
            for bar in raw:
                grouped.setdefault(str(bar["S"]), []).append(Bar.from_alpaca(bar))
        except (ValueError, KeyError, TypeError):
            raise classify(ValueError("bars")) from None
        return grouped

    def submit_order(
        self, symbol: str, side: str, qty: Decimal, client_order_id: str
    ) -> OrderState:
        """A market day order. A `client_order_id` Alpaca has seen already answers with that
        order (never a second one), once it is checked to be the same order (symbol, side,
        quantity); a refusal (no buying power, an unlisted symbol) is ORDER_REJECTED with
        Alpaca's reason."""
        return self._submit(symbol, side, qty, client_order_id, type="market", time_in_force="day")

    def _submit(
        self, symbol: str, side: str, qty: Decimal, client_order_id: str, **order: Any
    ) -> OrderState:
        """Send an order under `client_order_id`: an id Alpaca has seen answers with that
        order once it is checked to be the one meant; a refusal is ORDER_REJECTED."""
        try:
            return self._parsed(
                OrderState,
                lambda: self._rest.submit_order(
                    symbol,
                    qty=plain(qty),
                    side=side.lower(),
                    client_order_id=client_order_id,
                    **order,
                ),
                "order",
            )
        except BrokerError as error:
            if "client_order_id" in (error.alpaca_message or ""):
                return self._same_order(self.order(client_order_id), symbol, side, qty)
            raise self._refused(error, symbol) from None

    def submit_resting_exit(
        self,
        symbol: str,
        side: str,
        qty: Decimal,
        take_profit: Decimal | None,
        stop_loss: Decimal | None,
        client_order_id: str,
    ) -> OrderState:
        """An exit that rests at Alpaca, good until cancelled: an OCO (take-profit limit and
        stop-loss stop) when both levels are given, else a stop or a limit. Prices in whole
        cents, as Alpaca takes them. A `client_order_id` Alpaca has seen answers with that
        order (a lost answer never places two); a refusal is ORDER_REJECTED."""
        order: dict[str, Any] = {"type": "limit", "limit_price": plain(take_profit or Decimal(0))}
        if take_profit is not None and stop_loss is not None:
            order.update(
                order_class="oco",
                take_profit={"limit_price": plain(take_profit)},
                stop_loss={"stop_price": plain(stop_loss)},
            )
        elif stop_loss is not None:
            order = {"type": "stop", "stop_price": plain(stop_loss)}
        return self._submit(symbol, side, qty, client_order_id, time_in_force="gtc", **order)

    def cancel_order(self, alpaca_order_id: str) -> bool:
        """Ask Alpaca to cancel an order (an OCO with its legs): True when it took the request,
        False when the order had already ended (filled, cancelled, expired)."""
        try:
            self._call(lambda: self._rest.cancel_order(alpaca_order_id))
        except BrokerError as error:
            if error.status == 422:
                return False
            raise
        return True

    @staticmethod
    def _refused(error: BrokerError, symbol: str) -> BrokerError:
        reason = error.alpaca_message or ""
        if error.code in (ErrorCode.ALPACA_REJECTED, ErrorCode.ALPACA_UNAUTHORIZED) and reason:
            return BrokerError(
                ErrorCode.ORDER_REJECTED,
                f"Alpaca refused the order for {symbol}: {reason}",
                transient=False,
            )
        return error

    @staticmethod
    def _same_order(found: OrderState, symbol: str, side: str, qty: Decimal) -> OrderState:
        """The order Alpaca holds under an id must be the one meant; another is an error."""
        if (found.symbol, found.side.lower(), found.qty) != (symbol, side.lower(), qty):
            raise BrokerError(
                ErrorCode.ORDER_REJECTED,
                f"Alpaca already has a different order under this order's id ({found.side} "
                f"{plain(found.qty or Decimal(0))} {found.symbol}, not {side.lower()} "
                f"{plain(qty)} {symbol}); nothing was sent",
                transient=False,
            )
        return found

    def order(self, client_order_id: str) -> OrderState:
        """The order sent with this `client_order_id`."""
        return self._parsed(
            OrderState,
            lambda: self._rest.get_order_by_client_order_id(client_order_id),
            "order",
        )

    def find_order(self, client_order_id: str) -> OrderState | None:
        """The order sent with this `client_order_id`, or None when Alpaca has none."""
        try:
            return self.order(client_order_id)
        except BrokerError as error:
            if error.status == 404:
                return None
            raise

    def open_orders(self) -> dict[str, OrderState]:
        """Every order Alpaca may still change, by client_order_id, an OCO with its legs: one
        request for all of them."""
        raw = self._call(lambda: self._rest.list_orders(status="open", limit=500, nested=True))
        try:
            states = [OrderState.model_validate(item) for item in raw]
        except (ValidationError, TypeError):
            raise classify(ValueError("orders")) from None
        return {state.client_order_id: state for state in states}

    def positions(self) -> dict[str, Decimal]:
        """Every position the account holds: signed quantity by symbol (short < 0)."""
        raw = self._call(self._rest.list_positions)
        try:
            held = {}
            for position in list(raw):
                qty = decimal(position["qty"])
                if position.get("side") == "short" and qty > 0:
                    qty = -qty
                held[str(position["symbol"])] = qty
            return held
        except (ValueError, KeyError, TypeError):
            raise classify(ValueError("positions")) from None


BrokerFactory = Callable[[AlpacaKeys], AlpacaBroker]


def broker_factory(
    timeout_s: float = 8.0, retry_policy: RetryPolicy | None = None
) -> BrokerFactory:
    """Builds brokers that use the configured Alpaca URLs and share one connection pool."""
    trading_url = config.ALPACA_API_BASE_URL.value or None
    data_url = config.ALPACA_DATA_BASE_URL.value or None
    connections = shared_connections(timeout_s)

    def make(keys: AlpacaKeys) -> AlpacaBroker:
        return AlpacaBroker(
            keys,
            trading_url=trading_url,
            data_url=data_url,
            timeout_s=timeout_s,
            retry_policy=retry_policy,
            connections=connections,
        )

    return make
