"""Money rules without any client: exact parsing, one rounding rule, P&L by side."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agenttrader.core.money import cents, decimal, percent, pnl_percent, unrealized_pnl


def test_numbers_parse_exactly_as_written() -> None:
    assert decimal("0.1") + decimal("0.2") == Decimal("0.3")
    assert decimal(0.1) == Decimal("0.1")  # a float by its shortest repr, not its binary value
    assert decimal(3) == Decimal(3)
    assert decimal(Decimal("1.50")) == Decimal("1.50")


@pytest.mark.parametrize("bad", ["abc", "", "N/A", float("nan"), float("inf"), "Infinity"])
def test_what_is_not_a_finite_number_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="not a"):
        decimal(bad)


def test_rounding_is_half_to_even() -> None:
    assert cents(Decimal("0.125")) == Decimal("0.12")
    assert cents(Decimal("0.135")) == Decimal("0.14")
    assert cents(Decimal("-0.125")) == Decimal("-0.12")
    assert percent(Decimal("1.23455")) == Decimal("1.2346")
    assert percent(Decimal("1.23445")) == Decimal("1.2344")


def test_pnl_follows_the_side() -> None:
    assert unrealized_pnl("BUY", Decimal("100"), Decimal("2"), Decimal("110.5")) == Decimal("21.0")
    assert unrealized_pnl("SELL", Decimal("100"), Decimal("2"), Decimal("110.5")) == Decimal(
        "-21.0"
    )
    assert pnl_percent(Decimal("21"), Decimal("100"), Decimal("2")) == Decimal("10.5")
    assert pnl_percent(Decimal("5"), Decimal("0"), Decimal("2")) == Decimal(0)
