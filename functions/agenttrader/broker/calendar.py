"""The market clock without anyone's keys: the NYSE's sessions (holidays, early closes and
daylight saving) from the `exchange_calendars` library, in the shape of Alpaca's clock. The
pulse falls back on it when no key it may use gives Alpaca's own answer, so that stops, order
following and reconciliation never depend on who is switched on."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from agenttrader.broker.answers import MarketClock

YEARS_AHEAD = 2
"""How far past today the calendar is built (next_open never looks further than days)."""


@functools.cache
def _nyse(year: int) -> Any:
    import exchange_calendars  # pandas' import is paid only by a run that needs the calendar

    start = f"{year - 1}-01-01"
    end = f"{year + YEARS_AHEAD}-12-31"
    return exchange_calendars.get_calendar("XNYS", start=start, end=end)


def calendar_clock(now: datetime) -> MarketClock:
    """Whether the NYSE's regular session is open at `now` (aware), and its next open and
    close, as Alpaca's /v2/clock would say."""
    import pandas

    calendar = _nyse(now.year)
    minute = pandas.Timestamp(now).floor("min")
    is_open = bool(calendar.is_open_on_minute(minute))
    return MarketClock(
        is_open=is_open,
        next_open=calendar.next_open(minute).to_pydatetime(),
        next_close=calendar.next_close(minute).to_pydatetime(),
    )


def sessions_between(first: str, last: str) -> int:
    """The NYSE's trading sessions from New York date `first` to `last`, both counted (0 when
    `last` is before `first`)."""
    if last < first:
        return 0
    calendar = _nyse(int(first[:4]))
    return len(calendar.sessions_in_range(first, last))
