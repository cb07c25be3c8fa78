"""Rules of money: exact Decimal arithmetic and the one rounding rule for stored values."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Literal

Side = Literal["BUY", "SELL"]

CENT = Decimal("0.01")
PERCENT_PLACES = Decimal("0.0001")


def decimal(value: object) -> Decimal:
    """Parse a number exactly: strings and ints as written, floats by their shortest repr."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, float):
        result = Decimal(repr(value))
    else:
        try:
            result = Decimal(str(value))
        except InvalidOperation as bad:
            raise ValueError(f"not a number: {value!r}") from bad
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def plain(value: Decimal) -> str:
    """A number as stored and sent: a plain decimal string (`"10"`, `"2.5"`), never the
    exponent form `str()` gives an exact division (`"1E+1"`), which Alpaca refuses."""
    text = format(value, "f")
    return "0" if text in ("-0", "") else text


def cents(value: Decimal) -> Decimal:
    """Round an amount of money for storage or display: to the cent, half to even."""
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def percent(value: Decimal) -> Decimal:
    """Round a percentage for storage: four places, half to even."""
    return value.quantize(PERCENT_PLACES, rounding=ROUND_HALF_EVEN)


def unrealized_pnl(side: Side, entry_price: Decimal, quantity: Decimal, price: Decimal) -> Decimal:
    """Exact P&L of a position at `price`: BUY gains when it rises, SELL when it falls."""
    move = price - entry_price if side == "BUY" else entry_price - price
    return move * quantity


def pnl_percent(pnl: Decimal, entry_price: Decimal, quantity: Decimal) -> Decimal:
    """P&L as a percentage of the entry notional."""
    notional = entry_price * quantity
    if notional == 0:
        return Decimal(0)
    return pnl / notional * 100
