"""How Alpaca fails, in the product's words: every failure the client raises becomes a
`BrokerError` with a code a person can act on, whether a retry may help, and what Alpaca said.
A 403 is bad keys only when Alpaca says so; any other refusal is the request's, not the keys'."""

from __future__ import annotations

import requests
from alpaca_trade_api.rest import APIError
from pydantic import ValidationError

from agenttrader.core.errors import AgentTraderError, ErrorCode


class BrokerError(AgentTraderError):
    """Alpaca could not answer. `code` names the cause; `transient` says a retry may help."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        transient: bool,
        retry_after: float | None = None,
        alpaca_message: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(code, message)
        self.status = status
        """Alpaca's HTTP status, when it answered with one."""
        self.transient = transient
        self.retry_after = retry_after
        self.alpaca_message = alpaca_message
        """What Alpaca's answer said, when it said something (never a key)."""

    @property
    def may_pass(self) -> bool:
        """A later attempt (the next run) may well succeed: a transient failure, or a time-out,
        which is not retried within a request because it would spend the run's time."""
        return self.transient or self.code == ErrorCode.ALPACA_TIMEOUT


def _retry_after(response: requests.Response | None) -> float | None:
    if response is None:
        return None
    header = response.headers.get("Retry-After")
    try:
        return max(0.0, float(header)) if header else None
    except ValueError:
        return None


def _said(response: requests.Response) -> str | None:
    """The `message` of an Alpaca error answer, if it has one."""
    try:
        message = response.json().get("message")
    except (ValueError, AttributeError):
        return None
    return str(message)[:200] if message else None


AUTH_REFUSALS = ("forbidden", "not authorized", "unauthorized", "authenticat", "access key")
"""What Alpaca's 403 says when it refuses the credentials themselves; any other 403 (pattern
day trading protection, a wash trade, insufficient quantity or buying power, anything it adds
later) refuses the request, not the keys."""


def refuses_keys(said: str | None) -> bool:
    """A 403 about the credentials (or one that says nothing), by Alpaca's own words."""
    return not said or any(why in said.lower() for why in AUTH_REFUSALS)


def classify(error: Exception) -> BrokerError:
    """Turn whatever the client raised into a BrokerError."""
    if isinstance(error, BrokerError):
        return error
    response: requests.Response | None = None
    if isinstance(error, APIError):
        http_error = error._http_error  # the client keeps the response only here
        response = getattr(http_error, "response", None)
    elif isinstance(error, requests.HTTPError):
        response = error.response
    if response is not None:
        status = response.status_code
        said = _said(response)
        if status == 403 and not refuses_keys(said):
            return BrokerError(
                ErrorCode.ALPACA_REJECTED,
                f"Alpaca refused the request (HTTP 403: {said})",
                transient=False,
                alpaca_message=said,
            )
        if status in (401, 403):
            return BrokerError(
                ErrorCode.ALPACA_UNAUTHORIZED,
                f"Alpaca refused these API keys (HTTP {status}): check or save them again",
                transient=False,
            )
        if status == 429:
            return BrokerError(
                ErrorCode.ALPACA_RATE_LIMITED,
                "Alpaca rate limit reached (HTTP 429); syncing resumes on the next pulse",
                transient=True,
                retry_after=_retry_after(response),
            )
        if status >= 500:
            return BrokerError(
                ErrorCode.ALPACA_UNAVAILABLE,
                f"Alpaca had a server error (HTTP {status}); retried on the next pulse",
                transient=True,
                retry_after=_retry_after(response),
            )
        return BrokerError(
            ErrorCode.ALPACA_REJECTED,
            f"Alpaca refused the request (HTTP {status}{': ' + said if said else ''})",
            transient=False,
            alpaca_message=said,
            status=status,
        )
    if isinstance(error, requests.Timeout):
        return BrokerError(
            ErrorCode.ALPACA_TIMEOUT, "Alpaca did not answer in time", transient=False
        )
    if isinstance(error, requests.ConnectionError):
        return BrokerError(
            ErrorCode.ALPACA_UNREACHABLE, "could not connect to Alpaca", transient=True
        )
    if isinstance(error, (ValueError, KeyError, TypeError, ValidationError)):
        return BrokerError(
            ErrorCode.ALPACA_MALFORMED,
            "Alpaca sent an answer that could not be read",
            transient=False,
        )
    raise error
