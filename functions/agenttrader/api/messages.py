"""What a person reads when their input is refused: the field as the page labels it and a
sentence saying what is expected, never a regular expression, an internal field name or a code.
"""

from __future__ import annotations

from typing import Any

MONEY = "use an amount in dollars such as 2500 or 2500.50"
PERCENT = "use a number such as 5 or 2.5"

LABELS = {
    "symbol": "Symbol",
    "symbols": "Symbols",
    "strategy": "Strategy",
    "allocation_usd": "Allocation per position (USD)",
    "mode": "Mode",
    "take_profit_pct": "Take profit %",
    "stop_loss_pct": "Stop loss %",
    "allow_short": "Allow short selling",
    "key_id": "Key ID",
    "secret_key": "Secret key",
    "paper": "Paper account",
    "max_position_usd": "Max position (USD)",
    "max_daily_loss_usd": "Max daily loss (USD)",
    "max_drawdown_pct": "Max drawdown %",
    "max_trades_per_day": "Max trades per day",
    "enabled": "Trading enabled",
    "uid": "User ID",
    "reason": "Reason",
    "trade_id": "Trade",
    "id": "Strategy",
    "backtest_id": "Backtest",
    "account_last4": "Last four characters of your account number",
    "status": "Status",
    "confirm": "Confirmation",
    "open_shadow_trade": "Open shadow trade",
    "code": "The code from Alpaca",
    "state": "The state from Alpaca",
    "search": "Search people by email",
    "after": "Next page",
    "start": "From",
    "end": "To",
    "slippage_bps": "Slippage (basis points)",
    "events": "Events",
    "webhook_url": "Webhook URL",
    "email": "Email me",
}
"""Each callable field as the page labels it."""

HINTS = {
    "symbol": "use a ticker symbol such as AAPL or BRK.B",
    "symbols": "use ticker symbols such as AAPL or BRK.B, separated by commas",
    "allocation_usd": MONEY,
    "max_position_usd": MONEY,
    "max_daily_loss_usd": MONEY,
    "take_profit_pct": PERCENT,
    "stop_loss_pct": PERCENT,
    "max_drawdown_pct": PERCENT,
    "max_trades_per_day": "use a whole number from 1 to 1000",
    "key_id": "use the key ID Alpaca shows (letters and digits)",
    "uid": "use a user ID as the People table shows it",
    "id": "choose one of your strategies",
    "backtest_id": "choose one of your backtests",
    "account_last4": "type the last four letters or digits of your account number",
    "trade_id": "choose one of your open trades",
    "start": "use a date such as 2024-01-31",
    "end": "use a date such as 2024-12-31",
    "slippage_bps": "use a whole number from 0 to 500",
}
"""What a valid value looks like, for the fields whose rule is a pattern or a range."""


class FieldError(ValueError):
    """A refusal of a whole request that is about one of its fields (a check across fields,
    such as From before To): the field it names."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def label(field: str) -> str:
    return LABELS.get(field, field.replace("_", " ").capitalize() or "The request")


def field_of(error: dict[str, Any]) -> str:
    """The request field a pydantic error is about, by its own name ("" for the request as a
    whole)."""
    raised = (error.get("ctx") or {}).get("error")
    if isinstance(raised, FieldError):
        return raised.field
    loc = [p for p in error.get("loc", ()) if isinstance(p, str)]
    return loc[0] if loc else ""


def _choose(expected: str) -> str:
    if not expected or "_" in expected:  # ids, not words: the page lists them in words
        return "choose from the options the page lists"
    return f"choose {expected}"


def sentence(error: dict[str, Any]) -> str:
    """One pydantic error as a person reads it."""
    field = field_of(error)
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    name = label(field)
    if kind == "extra_forbidden":
        return f"“{field}” is not something this form sends; reload the page and try again"
    if kind == "missing":
        return f"{name}: this is required"
    if kind == "value_error":
        return f"{name}: {str(error.get('msg', '')).removeprefix('Value error, ')}"
    if kind == "literal_error":
        return f"{name}: {_choose(str(ctx.get('expected', '')))}"
    if kind.startswith("bool"):
        return f"{name}: choose yes or no"
    if kind in ("too_short", "too_long") and field == "symbols":
        return f"{name}: list from 1 to 20 symbols"
    if field in HINTS:
        return f"{name}: {HINTS[field]}"
    if kind == "string_too_long":
        return f"{name}: use at most {ctx.get('max_length')} characters"
    if kind == "string_too_short":
        return f"{name}: this is required"
    if kind == "string_pattern_mismatch":
        return f"{name}: this is not in the expected form"
    if kind.startswith("int") or kind.startswith("greater") or kind.startswith("less"):
        return f"{name}: use a whole number in the allowed range"
    if kind.startswith("string"):
        return f"{name}: use text"
    return f"{name}: {error.get('msg', 'this value is not valid')}"
