"""The worklist: every open item of every inspection duty of an area at T, the most urgent first.

Three duties (docs/contract.md, "The other inspection duties"), each item with an opening day, a deadline and a
status:

- `new_loan`: a loan's 30-day inspection, due soon (deadline within `within_days` of T; `pending` when the
  caller looks further ahead than the due-soon days) or missed (deadline in the assessed window, as the
  report's flags);
- `inactive_loan`: an inactive loan's inspection within 30 days of its opening, pending or missed;
- `group_of_year`: a group's periodic inspection of T's year, pending (deadline 31 December); it opens on
  1 January, or when the group is 90 days old if that is later.

Missed items come first, then by deadline (ties by commune, org, duty, id). The store selects them
(`adapters.sql.queries.worklist`) with the bounds `WorkBounds.at` works out here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from uythac.core.scorecard import Windows


class DutyKind(StrEnum):
    NEW_LOAN = "new_loan"
    INACTIVE_LOAN = "inactive_loan"
    GROUP_OF_YEAR = "group_of_year"


WORK_STATUSES = ("missed", "due_soon", "pending")  # an item's status: missed, or not yet (due_soon: new loans)


@dataclass(frozen=True)
class WorkBounds:
    """The days that decide which items are open at `today` (`at`)."""

    today: date
    through: date  # new loans not yet inspected with a deadline on or before it
    flagged_after: date  # missed new loans with a deadline after it (the report's flags window)
    inspection_days: int  # an inactive loan's deadline is its opening day + these
    seasoning_days: int  # a group owes the year's inspection once registered these days
    seasoned_by: date  # groups registered on or before it owe this year's inspection
    year_start: date
    year_end: date

    @classmethod
    def at(cls, today: date, windows: Windows, within_days: int) -> WorkBounds:
        through = today + timedelta(days=within_days) if date.max - today > timedelta(days=within_days) else date.max
        return cls(
            today,
            through,
            today - windows.scoring,
            windows.inactive_inspection_days,
            windows.group_seasoning_days,
            today - windows.group_seasoning,
            date(today.year, 1, 1),
            date(today.year, 12, 31),
        )


class WorkItem(NamedTuple):
    """One open item, as the store lists it (`entry` adds the days left)."""

    duty: str
    id: str
    district_id: str
    commune_id: str
    org: str
    opened_on: date
    deadline: date
    status: str


def entry(item: WorkItem, today: date) -> dict[str, Any]:
    """The worklist's line: the item, dates as ISO text, and the days left (negative when late)."""
    return {
        "duty": item.duty,
        "id": item.id,
        "district_id": item.district_id,
        "commune_id": item.commune_id,
        "org": item.org,
        "opened_on": item.opened_on.isoformat(),
        "deadline": item.deadline.isoformat(),
        "days_left": (item.deadline - today).days,
        "status": item.status,
    }
