"""The US equity market's regular sessions, as Alpaca's /v2/clock and /v2/calendar report them:
09:30 to 16:00 America/New_York (daylight saving included) on weekdays that are not NYSE
holidays. Early closes are not modelled."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
OPEN, CLOSE = time(9, 30), time(16, 0)
HOLIDAYS = {
    date.fromisoformat(d)
    for d in (
        "2025-01-01 2025-01-09 2025-01-20 2025-02-17 2025-04-18 2025-05-26 2025-06-19 "
        "2025-07-04 2025-09-01 2025-11-27 2025-12-25 "
        "2026-01-01 2026-01-19 2026-02-16 2026-04-03 2026-05-25 2026-06-19 2026-07-03 "
        "2026-09-07 2026-11-26 2026-12-25 "
        "2027-01-01 2027-01-18 2027-02-15 2027-03-26 2027-05-31 2027-06-18 2027-07-05 "
        "2027-09-06 2027-11-25 2027-12-24"
    ).split()
}


def is_trading_day(day: date) -> bool:
    return day.weekday() < 5 and day not in HOLIDAYS


def session(day: date) -> tuple[datetime, datetime]:
    """The session's open and close on a trading day, as aware New York times."""
    return (
        datetime.combine(day, OPEN, tzinfo=NEW_YORK),
        datetime.combine(day, CLOSE, tzinfo=NEW_YORK),
    )


def clock(at: datetime) -> dict[str, object]:
    """Alpaca's /v2/clock answer at an aware moment."""
    local = at.astimezone(NEW_YORK)
    day = local.date()
    is_open = False
    if is_trading_day(day):
        opens, closes = session(day)
        is_open = opens <= local < closes
    next_open = _next_session(day if local < session(day)[0] else day + timedelta(days=1))[0]
    next_close = session(day)[1] if is_open else _next_session(day)[1]
    if not is_open and is_trading_day(day) and local >= session(day)[1]:
        next_close = _next_session(day + timedelta(days=1))[1]
    return {
        "timestamp": local.isoformat(),
        "is_open": is_open,
        "next_open": next_open.isoformat(),
        "next_close": next_close.isoformat(),
    }


def _next_session(day: date) -> tuple[datetime, datetime]:
    while not is_trading_day(day):
        day += timedelta(days=1)
    return session(day)


def epoch_clock(epoch_s: float) -> dict[str, object]:
    return clock(datetime.fromtimestamp(epoch_s, UTC))
