"""Business dates: every rule of the SPEC counts calendar days in Vietnam time (UTC+07:00).

`occurred_at` is either a plain date or an RFC 3339 date-time. A date-time with an offset is moved to
+07:00 before its date is taken; one without an offset is already Vietnam time.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

VIETNAM = timezone(timedelta(hours=7), "ICT")

DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"
DATETIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})?\Z"
)
_DATETIME = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,9})?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))?\Z"
)


def parse_day(text: str) -> date:
    """A `YYYY-MM-DD` calendar date; ValueError if it is not one."""
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise ValueError("not a YYYY-MM-DD date")
    return date.fromisoformat(text)


def parse_datetime(text: str) -> datetime:
    """An RFC 3339 date-time; without an offset it is taken as Vietnam time.

    Fractions of a second cannot move a date and are dropped; a leap second (:60) names the same
    day as second 59.
    """
    match = _DATETIME.match(text)
    if match is None:
        raise ValueError("not an RFC 3339 date-time")
    year, month, day, hour, minute, second, zulu, sign, off_h, off_m = match.groups()
    if int(second) > 60:
        raise ValueError("second out of range")
    if zulu:
        zone = UTC
    elif sign:
        if int(off_h) > 23 or int(off_m) > 59:
            raise ValueError("offset out of range")
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        zone = timezone(-offset if sign == "-" else offset)
    else:
        zone = VIETNAM
    return datetime(int(year), int(month), int(day), int(hour), int(minute), min(int(second), 59), tzinfo=zone)


def business_date(text: str) -> date:
    """The Vietnam calendar date of an `occurred_at` value; ValueError if it is neither form."""
    if len(text) == 10:
        return parse_day(text)
    try:
        return parse_datetime(text).astimezone(VIETNAM).date()
    except OverflowError as error:  # 9999-12-31T23:00:00-01:00 is in year 10000 in Vietnam
        raise ValueError("its Vietnam date is off the calendar") from error
