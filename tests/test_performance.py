"""The statistics' arithmetic, exactly (pure: no emulator)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from agenttrader.bot.performance import Performance
from agenttrader.store.totals import ClosedTotals

D = Decimal


def curve(points: list[tuple[str, str]]) -> Performance:
    performance = Performance()
    for day, equity in points:
        performance = performance.observe(day, D(equity))
    return performance


def test_returns_are_counted_once_a_day_is_over_from_its_last_equity() -> None:
    p = curve(
        [
            ("2026-11-16", "100000"),
            ("2026-11-17", "99000"),  # moved during the day: the day's last value counts
            ("2026-11-17", "101000"),
            ("2026-11-18", "99990"),
            ("2026-11-19", "102000"),
        ]
    )
    # finished days: 16 (100000), 17 (101000), 18 (99990): returns +1% and -1%
    assert p.returns_n == 2
    assert p.returns_sum == D("0.01") + (D("99990") / D("101000") - 1)
    mean = p.returns_sum / 2
    r1, r2 = D("0.01"), D("99990") / D("101000") - 1
    variance = ((r1 - mean) ** 2 + (r2 - mean) ** 2) / 1
    assert p.sharpe_daily == (mean / variance.sqrt()).quantize(D("0.0001"))
    assert (p.point_day, p.point_equity, p.previous_close) == (
        "2026-11-19",
        D("102000"),
        D("99990"),
    )


def test_drawdown_is_from_the_highest_point_so_far() -> None:
    p = curve([("d1", "100"), ("d2", "120"), ("d3", "90"), ("d4", "130"), ("d5", "117")])
    assert p.peak_equity == D("130")
    assert p.max_drawdown_pct == D("25.0000")  # 120 -> 90


def test_no_sharpe_before_two_returns_or_when_they_do_not_vary() -> None:
    assert curve([("d1", "100"), ("d2", "110"), ("d3", "121")]).sharpe_daily is None
    flat = curve([("d1", "100"), ("d2", "110"), ("d3", "121"), ("d4", "133.1"), ("d5", "1")])
    assert flat.returns_n == 3
    assert flat.sharpe_daily is None  # +10% three times: no spread


def test_win_rate_and_realized_from_closed_trades_and_the_stored_form() -> None:
    # closed trades of 10.50, -3.25, 0 and 4
    p = Performance().with_closed(ClosedTotals(count=4, wins=2, realized=D("11.25")), 7)
    assert (p.realized_pnl, p.trades_closed, p.wins, p.win_rate) == (
        D("11.25"),
        4,
        2,
        D("50.0000"),
    )
    now = datetime(2026, 11, 23, tzinfo=UTC)
    doc = p.observe("2026-11-23", D("100000")).document(now)
    assert doc["realized_pnl"] == "11.25"
    assert doc["win_rate"] == "50.0000"
    assert doc["sharpe_daily"] is None
    assert Performance.from_document(doc) == p.observe("2026-11-23", D("100000"))
