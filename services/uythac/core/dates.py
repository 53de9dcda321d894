"""Business dates: every rule of the contract counts calendar days in Vietnam time (UTC+07:00).

`occurred_at` is either a plain date or an RFC 3339 date-time. A date-time with an offset is moved to
+07:00 before its date is taken; one without an offset is already Vietnam time.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from typing import NoReturn

VIETNAM = timezone(timedelta(hours=7), "ICT")
VIETNAM_MINUTES = 7 * 60

DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"
DATETIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})?\Z"
)
_DATETIME = re.compile(DATETIME_PATTERN).match
_VALID_DATETIME = re.compile(  # DATETIME_PATTERN with each time number in its range (second 60: a leap second)
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ](?:[01][0-9]|2[0-3]):[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?"
).fullmatch
_DAYS: dict[str, date] = {}  # calendar dates already parsed: a day's events all name it the same way
_DAYS_MAX = 4096  # eleven years of days; past that the memo starts again
_SHARED: dict[date, date] = {}
EPOCH = date(1970, 1, 1).toordinal()
ONE_DAY = timedelta(days=1)


def shared(day: date) -> date:
    """The one `date` object kept for this day. A loan keeps up to seven dates and the processor keeps
    loans in memory by the hundred thousand, on a few thousand distinct days."""
    return _SHARED.setdefault(day, day)


def day_number(day: date) -> int:
    """A date as the store and the worker's pipe carry it: days since 1970-01-01."""
    return day.toordinal() - EPOCH


@lru_cache(maxsize=8192)
def day_of(number: int) -> date:
    """A day number as a date (most are recent days: remembered, and shared)."""
    return shared(date.fromordinal(number + EPOCH))


@lru_cache(maxsize=8192)
def iso_of(number: int) -> str:
    """A day number as `YYYY-MM-DD`."""
    return day_of(number).isoformat()


def latest_accepted(now: datetime, max_future_days: int) -> date:
    """The latest business date an event may have: today in Vietnam at `now` (an aware time read from the
    machine's clock by the caller), plus `max_future_days`."""
    return now.astimezone(VIETNAM).date() + timedelta(days=max_future_days)


def month_end(day: date) -> date:
    """The last day of `day`'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def parse_day(text: str) -> date:
    """A `YYYY-MM-DD` calendar date; ValueError if it is not one."""
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise ValueError("not a YYYY-MM-DD date")
    return date.fromisoformat(text)


def _calendar_day(text: str) -> date:
    """`parse_day`, remembered: the texts of the days already seen are looked up, not parsed again."""
    day = _DAYS.get(text)
    if day is None:
        day = parse_day(text)
        if len(_DAYS) >= _DAYS_MAX:
            _DAYS.clear()
        _DAYS[text] = day
    return day


def date_and_offset(text: str) -> tuple[date, int]:
    """An RFC 3339 date-time's calendar date and its offset east of UTC in minutes; ValueError if not one.

    Once the pattern matched, every part but the fraction has its place. A leap second (:60) names
    the same day as second 59. Without an offset the time is Vietnam time.
    """
    if _VALID_DATETIME(text) is None:
        _refuse_datetime(text)
    day = _calendar_day(text[:10])
    if text[-1] in "Zz":
        return day, 0
    sign = text[-6]  # of an offset; else a digit, ':' or '.' of the time
    if sign not in "+-":
        return day, VIETNAM_MINUTES
    offset = int(text[-5:-3]) * 60 + int(text[-2:])
    return day, -offset if sign == "-" else offset


def _refuse_datetime(text: str) -> NoReturn:
    """Why `text` is not a date-time, in the order and the words of the `datetime` constructor.

    The time's parts are two ASCII digits each, whose order as text is their order as numbers.
    """
    if _DATETIME(text) is None:
        raise ValueError("not an RFC 3339 date-time")
    if text[17:19] > "60":
        raise ValueError("second out of range")
    _calendar_day(text[:10])
    if text[11:13] > "23":
        raise ValueError("hour must be in 0..23")
    if text[14:16] > "59":
        raise ValueError("minute must be in 0..59")
    raise ValueError("offset out of range")


def parse_datetime(text: str) -> datetime:
    """An RFC 3339 date-time (aware), to the second; without an offset it is taken as Vietnam time."""
    day, offset = date_and_offset(text)
    if offset == VIETNAM_MINUTES:
        zone = VIETNAM
    elif offset == 0:
        zone = UTC
    else:
        zone = timezone(timedelta(minutes=offset))
    hour, minute, second = int(text[11:13]), int(text[14:16]), min(int(text[17:19]), 59)
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=zone)


def business_date(text: str) -> date:
    """The Vietnam calendar date of an `occurred_at` value; ValueError if it is neither form.

    A date-time's date moves by the days its minute of the day, shifted by its distance to +07:00,
    crosses: the same day as `astimezone(VIETNAM)` gives, at a fraction of its cost (this runs for
    every event). Seconds cannot move it: the shift is whole minutes.
    """
    day = _DAYS.get(text)  # most often a plain date already seen
    if day is not None:
        return day
    if len(text) == 10:
        return _calendar_day(text)
    day, offset = date_and_offset(text)
    if offset == VIETNAM_MINUTES:
        return day
    minutes = int(text[11:13]) * 60 + int(text[14:16]) + VIETNAM_MINUTES - offset
    if 0 <= minutes < 24 * 60:
        return day
    try:
        return day + timedelta(days=minutes // (24 * 60))
    except OverflowError as error:  # 9999-12-31T23:00:00-01:00 is in year 10000 in Vietnam
        raise ValueError("its Vietnam date is off the calendar") from error
