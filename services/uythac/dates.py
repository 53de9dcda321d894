"""Business dates: every rule of the SPEC counts calendar days in Vietnam time (UTC+07:00).

`occurred_at` is either a plain date or an RFC 3339 date-time. A date-time with an offset is moved to
+07:00 before its date is taken; one without an offset is already Vietnam time.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta, timezone

VIETNAM = timezone(timedelta(hours=7), "ICT")
VIETNAM_MINUTES = 7 * 60

DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"
DATETIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})?\Z"
)
_DATETIME = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,9})?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))?\Z"
)
_DAYS: dict[str, date] = {}  # plain dates already parsed: a day's events all name it the same way
_DAYS_MAX = 4096  # eleven years of days; past that the memo starts again


def month_end(day: date) -> date:
    """The last day of `day`'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def parse_day(text: str) -> date:
    """A `YYYY-MM-DD` calendar date; ValueError if it is not one."""
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise ValueError("not a YYYY-MM-DD date")
    return date.fromisoformat(text)


def _local(text: str) -> tuple[datetime, int]:
    """An RFC 3339 date-time as its wall-clock time (naive) and its offset east of UTC in minutes.

    Fractions of a second cannot move a date and are dropped; a leap second (:60) names the same
    day as second 59. Without an offset the time is Vietnam time.
    """
    match = _DATETIME.match(text)
    if match is None:
        raise ValueError("not an RFC 3339 date-time")
    year, month, day, hour, minute, second, zulu, sign, off_h, off_m = match.groups()
    if int(second) > 60:
        raise ValueError("second out of range")
    local = datetime(int(year), int(month), int(day), int(hour), int(minute), min(int(second), 59))
    if zulu:
        return local, 0
    if not sign:
        return local, VIETNAM_MINUTES
    if int(off_h) > 23 or int(off_m) > 59:
        raise ValueError("offset out of range")
    offset = int(off_h) * 60 + int(off_m)
    return local, -offset if sign == "-" else offset


def parse_datetime(text: str) -> datetime:
    """An RFC 3339 date-time (aware); without an offset it is taken as Vietnam time."""
    local, offset = _local(text)
    if offset == VIETNAM_MINUTES:
        zone = VIETNAM
    elif offset == 0:
        zone = UTC
    else:
        zone = timezone(timedelta(minutes=offset))
    return local.replace(tzinfo=zone)


def business_date(text: str) -> date:
    """The Vietnam calendar date of an `occurred_at` value; ValueError if it is neither form.

    A date-time's date is shifted by its distance to +07:00 in naive arithmetic: the same day as
    `astimezone(VIETNAM)` gives, at a quarter of its cost (this runs for every event). A plain date
    seen before is looked up, not parsed again.
    """
    day = _DAYS.get(text)
    if day is not None:
        return day
    if len(text) == 10:
        day = parse_day(text)
        if len(_DAYS) >= _DAYS_MAX:
            _DAYS.clear()
        _DAYS[text] = day
        return day
    local, offset = _local(text)
    if offset == VIETNAM_MINUTES:
        return local.date()
    try:
        return (local + timedelta(minutes=VIETNAM_MINUTES - offset)).date()
    except OverflowError as error:  # 9999-12-31T23:00:00-01:00 is in year 10000 in Vietnam
        raise ValueError("its Vietnam date is off the calendar") from error
