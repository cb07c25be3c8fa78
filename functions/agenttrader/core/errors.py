"""One family of errors: every failure the product can name has a code a person can act on,
and one table says what each code becomes for a caller of a callable function."""

from __future__ import annotations

from enum import StrEnum

from firebase_functions.https_fn import FunctionsErrorCode


class ErrorCode(StrEnum):
    """Stored in `status/last_sync_error.code`, counted in `ops/last_pulse.errors_by_code`."""

    ALPACA_UNAUTHORIZED = "ALPACA_UNAUTHORIZED"
    ALPACA_RATE_LIMITED = "ALPACA_RATE_LIMITED"
    ALPACA_UNAVAILABLE = "ALPACA_UNAVAILABLE"
    ALPACA_REJECTED = "ALPACA_REJECTED"
    ALPACA_TIMEOUT = "ALPACA_TIMEOUT"
    ALPACA_UNREACHABLE = "ALPACA_UNREACHABLE"
    ALPACA_MALFORMED = "ALPACA_MALFORMED"
    SECRET_UNAVAILABLE = "SECRET_UNAVAILABLE"
    SECRET_CORRUPT = "SECRET_CORRUPT"
    SECRET_UNREADABLE = "SECRET_UNREADABLE"
    SYNC_TIMEOUT = "SYNC_TIMEOUT"
    ORDER_REJECTED = "ORDER_REJECTED"
    SYMBOL_UNKNOWN = "SYMBOL_UNKNOWN"
    NO_BARS = "NO_BARS"
    KEYS_NOT_PAPER = "KEYS_NOT_PAPER"
    KEYS_NOT_LIVE = "KEYS_NOT_LIVE"
    TOKEN_SCOPE = "TOKEN_SCOPE"
    RISK_LIMIT_TRIPPED = "RISK_LIMIT_TRIPPED"
    SHORTING_NOT_ALLOWED = "SHORTING_NOT_ALLOWED"
    POSITION_MISMATCH = "POSITION_MISMATCH"
    OTHER_ACCOUNT = "OTHER_ACCOUNT"
    FIRESTORE_ERROR = "FIRESTORE_ERROR"
    INTERNAL = "INTERNAL"


class AgentTraderError(Exception):
    """A failure with a code. `message` is safe to show the person it concerns."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


CALLABLE_CODES: dict[ErrorCode, FunctionsErrorCode] = {
    ErrorCode.ALPACA_UNAUTHORIZED: FunctionsErrorCode.FAILED_PRECONDITION,
    ErrorCode.OTHER_ACCOUNT: FunctionsErrorCode.FAILED_PRECONDITION,
    ErrorCode.ALPACA_RATE_LIMITED: FunctionsErrorCode.RESOURCE_EXHAUSTED,
    ErrorCode.ALPACA_TIMEOUT: FunctionsErrorCode.DEADLINE_EXCEEDED,
    ErrorCode.SYNC_TIMEOUT: FunctionsErrorCode.DEADLINE_EXCEEDED,
    ErrorCode.INTERNAL: FunctionsErrorCode.INTERNAL,
}
"""What a code becomes for a caller; anything not listed is UNAVAILABLE (try again later)."""


def callable_code(code: ErrorCode) -> FunctionsErrorCode:
    return CALLABLE_CODES.get(code, FunctionsErrorCode.UNAVAILABLE)
