"""The domain model: loans, groups and units, each an order-independent summary of its accepted events.

Every summary is a pure fold over the accepted events ("exists an event such that ..."): a sum, a max, a
min, or the value with the greatest (business date, event_id). So any arrival order gives the same
summary. An event counts for a loan or a group only when it names the entity's unit (the unit of its
disbursement or registration): what events naming other units say is kept apart, unit by unit
(`strays`), so that it counts at once if the entity's unit turns out to be theirs (a disbursement
arriving after its repayments, or an earlier one that names another unit) and never otherwise.

`entity.contribution(at)` is the entity's share of its unit's counts at `at.today`; `entity.next_due(at)` is
the first later day on which that share can change without a new event (a deadline passing, a window
sliding), so that moving the clock recomputes only the entities due, never every unit. Both run for every
entity a batch loads, so they compare with window edges worked out once per day (`Bounds`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from operator import add, sub
from typing import Any, ClassVar, NamedTuple

from uythac.core.dates import ONE_DAY, shared
from uythac.core.scorecard import Windows
from uythac.rules.duties import group_of_year


class Status(StrEnum):
    """Where a disbursed loan's 30-day post-disbursement inspection stands (the obligation's state)."""

    PENDING = "pending"  # within its 30 days, not inspected yet
    DUE_SOON = "due_soon"  # pending, and its deadline is within the due-soon days: on the worklist
    MISSED = "missed"  # the deadline passed without an on-time inspection: a flag
    FULFILLED = "fulfilled"  # inspected on time


OPEN = (Status.PENDING, Status.DUE_SOON)  # still waiting for an inspection


class DutyStatus(StrEnum):
    """Where an inactive loan's duty of inspection stands (docs/contract.md §7.1)."""

    PENDING = "pending"  # not inspected in [O, E] yet, and T ≤ E
    MISSED = "missed"  # E passed without an inspection in [O, E]
    DONE = "done"  # a loan inspection is dated in [O, E]


OPEN_DUTY = (DutyStatus.PENDING, DutyStatus.MISSED)  # on the worklist and in the report's duties


class Counts(NamedTuple):
    """The numerators and denominators of the five scorecard components, summed over a unit."""

    loans_inspected: int = 0  # post_disbursement_inspection: assessed loans inspected within their 30 days
    loans_assessed: int = 0  # ... loans whose deadline lies in the scoring window
    groups_inspected: int = 0  # periodic_inspection: seasoned active groups with a periodic inspection in W
    groups_seasoned: int = 0  # ... active groups registered at least `group_seasoning_days` ago
    overdue: int = 0  # overdue_ratio: overdue principal (VND)
    outstanding: int = 0  # ... outstanding principal (VND)
    loans_inactive: int = 0  # inactive_loans: seasoned loans with no repayment within `inactive_days`
    loans_seasoned: int = 0  # ... loans still owing, disbursed at least `inactive_days` ago
    groups_with_deposit: int = 0  # savings_activity: saving-age active groups with a deposit in `savings_days`
    groups_saving_age: int = 0  # ... active groups registered at least `savings_seasoning_days` ago
    # The duties (not scored): inactive loans' inspections, and each group's inspection of the year.
    inactive_pending: int = 0
    inactive_missed: int = 0
    inactive_done: int = 0
    year_pending: int = 0  # seasoned active groups not inspected since 1 January
    year_done: int = 0
    year_missed_last_year: int = 0

    def plus(self, other: Counts) -> Counts:
        return Counts._make(map(add, self, other))

    def minus(self, other: Counts) -> Counts:
        return Counts._make(map(sub, self, other))


NOTHING = Counts()
NOT_STORED = {"stored": False}  # dataclass field metadata: kept in memory only, not a column of the store
UnitKey = tuple[str, str]  # (commune_id, org)


def _area(data: dict[str, Any]) -> tuple[str, str, str]:
    """An event's district, commune and org as shared strings (a few thousand distinct values)."""
    return sys.intern(data["district_id"]), sys.intern(data["commune_id"]), sys.intern(data["org"])


_counts = tuple.__new__  # Counts(...) runs NamedTuple's Python-level __new__; shares are made by the million


@dataclass(frozen=True, slots=True)
class Bounds:
    """`today` and the window edges a contribution at `today` compares with (the scorecard's windows)."""

    today: date
    windows: Windows
    assessed_after: date  # deadlines in (today − W, today) are assessed
    quiet_since: date  # loans disbursed by then are seasoned; quiet if not repaid since
    groups_seasoned_by: date  # groups registered by then are assessed for periodic inspection
    savers_seasoned_by: date  # ... for savings activity
    deposits_after: date  # deposits dated after it count as savings activity
    last_year_end: date  # 31 December of the year before: a group closed after it had last year's duty

    @classmethod
    def at(cls, today: date, windows: Windows) -> Bounds:
        return cls(
            today,
            windows,
            today - windows.scoring,
            today - windows.inactive,
            today - windows.group_seasoning,
            today - windows.savings_seasoning,
            today - windows.savings,
            date(today.year - 1, 12, 31),
        )


def _later(current: Any, key: Any) -> bool:
    return current is None or key > current


def _earlier(current: Any, key: Any) -> bool:
    return current is None or key < current


@dataclass(slots=True)
class Loan:
    """A loan as the accepted events describe it; `status` is the obligation state the rules decided."""

    loan_id: str
    district_id: str | None = None
    commune_id: str | None = None
    org: str | None = None
    group_id: str | None = None
    amount: int = 0
    disbursed_on: date | None = None
    disbursal_event: str | None = None
    deadline: date | None = None  # disbursed_on + the inspection deadline days (D = d + 30)
    principal_paid: int = 0
    last_repayment_on: date | None = None
    overdue_principal: int = 0
    overdue_on: date | None = None
    overdue_event: str | None = None
    status: Status | None = None  # None until disbursed
    inspected_on: date | None = None  # earliest on-time post-disbursement inspection
    late_inspection_on: date | None = None
    misuse: bool = False
    next_change: date | None = None
    duty_status: DutyStatus | None = None  # the inactive-loan duty of its current stretch of inactivity, if any
    duty_opened_on: date | None = None  # O = a + `inactive_days`, a being its last activity
    duty_late_on: date | None = None  # a missed duty's earliest loan inspection after its deadline
    has_strays: bool = False  # events naming it with another unit are kept (`Strays`)
    # What the loan counts for in its unit now, and that unit: the processor moves only the difference.
    counted: Counts = field(default=NOTHING, repr=False, compare=False, metadata=NOT_STORED)
    counted_in: UnitKey | None = field(default=None, repr=False, compare=False, metadata=NOT_STORED)

    # What the events of one unit say of the loan besides its disbursement (kept apart for other units).
    ACTIVITY: ClassVar[tuple[str, ...]] = (
        "principal_paid",
        "last_repayment_on",
        "overdue_principal",
        "overdue_on",
        "overdue_event",
        "misuse",
    )

    @property
    def unit(self) -> UnitKey | None:
        if self.commune_id is None or self.org is None:
            return None
        return self.commune_id, self.org

    def disbursed(self, data: dict[str, Any], day: date, windows: Windows) -> bool:
        """Take this disbursement if it is the loan's earliest (date, event_id); True if it changed."""
        key = (day, data["event_id"])
        current = None if self.disbursed_on is None else (self.disbursed_on, self.disbursal_event)
        if not _earlier(current, key):
            return False
        self.district_id, self.commune_id, self.org = _area(data)
        self.group_id, self.amount = sys.intern(data["group_id"]), data["amount"]
        self.disbursed_on, self.disbursal_event = shared(day), data["event_id"]
        self.deadline = shared(day + windows.inspection_deadline)
        self.status, self.inspected_on, self.late_inspection_on = Status.PENDING, None, None
        return True

    def repaid(self, data: dict[str, Any], day: date) -> None:
        self.principal_paid += data["principal"]
        if _later(self.last_repayment_on, day):
            self.last_repayment_on = shared(day)

    def overdue_changed(self, data: dict[str, Any], day: date) -> None:
        key = (day, data["event_id"])
        if _later(None if self.overdue_on is None else (self.overdue_on, self.overdue_event), key):
            self.overdue_on, self.overdue_event = shared(day), data["event_id"]
            self.overdue_principal = data["overdue_principal"]

    def contribution(self, at: Bounds) -> Counts:
        deadline, disbursed_on = self.deadline, self.disbursed_on
        if deadline is None or disbursed_on is None:
            return NOTHING
        assessed = at.assessed_after < deadline < at.today
        outstanding = self.amount - self.principal_paid
        if outstanding <= 0:
            outstanding = seasoned = quiet = 0
        else:
            seasoned = disbursed_on <= at.quiet_since
            quiet = self.last_repayment_on is None or self.last_repayment_on <= at.quiet_since
        overdue = self.overdue_principal
        duty = self.duty_status if seasoned and quiet else None  # the processor keeps it current (`_decide_duties`)
        return _counts(
            Counts,
            (
                int(assessed and self.status == Status.FULFILLED),  # loans_inspected
                int(assessed),  # loans_assessed
                0,
                0,
                overdue if overdue < outstanding else outstanding,  # overdue, capped at outstanding
                outstanding,
                int(seasoned and quiet),  # loans_inactive
                int(seasoned),  # loans_seasoned
                0,
                0,
                int(duty == DutyStatus.PENDING),  # inactive_pending
                int(duty == DutyStatus.MISSED),  # inactive_missed
                int(duty == DutyStatus.DONE),  # inactive_done
                0,
                0,
                0,
            ),
        )

    @property
    def at_rest(self) -> bool:
        """Repaid in full with nothing left for the clock to change: only a rare late event names it again."""
        return self.next_change is None and self.disbursed_on is not None and self.amount <= self.principal_paid

    def inactive_stretch(self, at: Bounds) -> tuple[date, date, date] | None:
        """(a, O, E) of its duty at `at.today` if the loan is inactive: still owing, and its last activity a
        (disbursement or repayment) at least `inactive_days` ago; O = a + `inactive_days`, E = O +
        `inactive_inspection_days`."""
        disbursed_on, repaid_on = self.disbursed_on, self.last_repayment_on
        if disbursed_on is None or self.amount <= self.principal_paid:
            return None
        since = disbursed_on if repaid_on is None or repaid_on < disbursed_on else repaid_on
        if since > at.quiet_since:
            return None
        opened = since + at.windows.inactive
        return since, opened, opened + at.windows.inactive_inspection

    def next_due(self, at: Bounds) -> date | None:
        """The first day after `at.today` on which `contribution` can change with no new event."""
        deadline, disbursed_on = self.deadline, self.disbursed_on
        if deadline is None or disbursed_on is None:
            return None
        today, windows = at.today, at.windows
        # The deadline's own days, in order: it joins the worklist, enters the assessed window (and is
        # missed if not inspected), leaves that window.
        due_soon = deadline - windows.due_soon
        if today < due_soon:
            first: date | None = due_soon
        elif today <= deadline:
            first = deadline + ONE_DAY
        elif today < deadline + windows.scoring:
            first = deadline + windows.scoring
        else:
            first = None
        if self.amount > self.principal_paid:  # outstanding: seasoned, and quiet, `inactive` days on
            for since in (disbursed_on, self.last_repayment_on):
                if since is not None:
                    day = since + windows.inactive
                    if day > today and (first is None or day < first):
                        first = day
            if self.duty_status == DutyStatus.PENDING and self.duty_opened_on is not None:  # missed after E
                day = self.duty_opened_on + windows.inactive_inspection + ONE_DAY
                if day > today and (first is None or day < first):
                    first = day
        return None if first is None else shared(first)


@dataclass(slots=True)
class Group:
    """A savings-and-loan group (Tổ TK&VV) as the accepted events describe it."""

    group_id: str
    district_id: str | None = None
    commune_id: str | None = None
    org: str | None = None
    registered_on: date | None = None
    registration_event: str | None = None
    closed_on: date | None = None
    last_periodic_on: date | None = None
    last_deposit_on: date | None = None
    prior_periodic_year: int | None = None  # the latest year with a periodic inspection, before last_periodic_on's
    misuse: bool = False
    next_change: date | None = None
    has_strays: bool = False  # as for a loan
    counted: Counts = field(default=NOTHING, repr=False, compare=False, metadata=NOT_STORED)  # as for a loan
    counted_in: UnitKey | None = field(default=None, repr=False, compare=False, metadata=NOT_STORED)
    ACTIVITY: ClassVar[tuple[str, ...]] = (
        "closed_on",
        "last_periodic_on",
        "last_deposit_on",
        "prior_periodic_year",
        "misuse",
    )

    @property
    def unit(self) -> UnitKey | None:
        if self.commune_id is None or self.org is None:
            return None
        return self.commune_id, self.org

    def registered(self, data: dict[str, Any], day: date) -> None:
        key = (day, data["event_id"])
        current = None if self.registered_on is None else (self.registered_on, self.registration_event)
        if _earlier(current, key):
            self.district_id, self.commune_id, self.org = _area(data)
            self.registered_on, self.registration_event = shared(day), data["event_id"]

    def closed(self, day: date) -> None:
        if _earlier(self.closed_on, day):
            self.closed_on = shared(day)

    def deposited(self, day: date) -> None:
        if _later(self.last_deposit_on, day):
            self.last_deposit_on = shared(day)

    def inspected(self, day: date) -> None:
        """Keep the latest periodic inspection, and the latest year before its year that had one (the group's duty
        of the year and of the year before need no more)."""
        last = self.last_periodic_on
        if last is None or day > last:
            if last is not None and last.year < day.year:
                self._inspected_in(last.year)
            self.last_periodic_on = shared(day)
        elif day.year < last.year:
            self._inspected_in(day.year)

    def _inspected_in(self, year: int) -> None:
        if self.prior_periodic_year is None or year > self.prior_periodic_year:
            self.prior_periodic_year = year

    def contribution(self, at: Bounds) -> Counts:
        registered, closed = self.registered_on, self.closed_on
        if registered is None:
            return NOTHING
        this_year, missed_last_year = group_of_year(
            registered, closed, self._inspected_in_year, at.today, at.windows.group_seasoning
        )
        if closed is not None and closed <= at.today:
            return Counts(year_missed_last_year=1) if missed_last_year else NOTHING
        seasoned = registered <= at.groups_seasoned_by
        inspected = _after(self.last_periodic_on, at.assessed_after)
        saving = registered <= at.savers_seasoned_by
        deposited = _after(self.last_deposit_on, at.deposits_after)
        return Counts(
            groups_inspected=int(seasoned and inspected),
            groups_seasoned=int(seasoned),
            groups_with_deposit=int(saving and deposited),
            groups_saving_age=int(saving),
            year_pending=int(this_year == "pending"),
            year_done=int(this_year == "done"),
            year_missed_last_year=int(missed_last_year),
        )

    @property
    def at_rest(self) -> bool:
        """Closed with nothing left for the clock to change (as for a loan)."""
        return self.next_change is None and self.closed_on is not None

    def _inspected_in_year(self, year: int) -> bool:
        last = self.last_periodic_on
        return last is not None and (last.year == year or self.prior_periodic_year == year)

    def next_due(self, at: Bounds) -> date | None:
        """The first day after `at.today` on which `contribution` can change with no new event: seasoning, the
        windows sliding, and 1 January (a new year's duty, and last year's result)."""
        today, windows = at.today, at.windows
        if self.registered_on is None:
            return None
        next_year = date(today.year + 1, 1, 1)
        if self.closed_on is not None and self.closed_on <= today:  # only last year's duty is left to change
            return shared(next_year) if self.closed_on > at.last_year_end else None
        candidates = [
            self.registered_on + windows.group_seasoning,
            self.registered_on + windows.savings_seasoning,
            next_year,
        ]
        if self.last_periodic_on is not None:
            candidates.append(self.last_periodic_on + windows.scoring)
        if self.last_deposit_on is not None:
            candidates.append(self.last_deposit_on + windows.savings)
        first = min((day for day in candidates if day > today), default=None)
        return None if first is None else shared(first)


def _after(day: date | None, bound: date) -> bool:
    return day is not None and day > bound


@dataclass(slots=True)
class Unit:
    """A (commune, organization): reported once a group registration or a disbursement names it.

    Its district is the one named by its earliest (business date, event_id) reporting event, so a
    producer's inconsistency cannot make the report depend on arrival order.
    """

    commune_id: str
    org: str
    district_id: str
    district_day: date
    district_event: str
    counts: Counts = NOTHING

    def named_by(self, data: dict[str, Any], day: date) -> None:
        if (day, data["event_id"]) < (self.district_day, self.district_event):
            self.district_id, self.district_day, self.district_event = (
                data["district_id"],
                day,
                data["event_id"],
            )


Entity = Loan | Group
Strays = dict[UnitKey, Any]  # what events naming an entity with another unit said, by unit: an entity of the same
# kind holding only its ACTIVITY fields (a `Loan` for a loan's, a `Group` for a group's)


def names(entity: Entity, data: Mapping[str, Any]) -> bool:
    """Does this event name the entity's unit (and so count for it)?"""
    return bool(data["commune_id"] == entity.commune_id and data["org"] == entity.org)


def stray(entity: Entity, strays: Strays, data: dict[str, Any]) -> Any:
    """What the events of this event's unit said of the entity so far (kept apart from it)."""
    unit = (data["commune_id"], data["org"])
    kept = strays.get(unit)
    if kept is None:
        kept = strays[unit] = _blank(entity)
    return kept


def switch_unit(entity: Entity, was: UnitKey | None, strays: Strays) -> None:
    """The entity's unit changed from `was` (None: it had none): what it held goes to the strays of `was`, and
    what the strays of its new unit held becomes its own."""
    fields, blank = entity.ACTIVITY, _blank(entity)
    if was is not None and any(getattr(entity, name) != getattr(blank, name) for name in fields):
        kept = strays[was] = _blank(entity)
        for name in fields:
            setattr(kept, name, getattr(entity, name))
    unit = entity.unit
    mine = (strays.pop(unit, None) if unit is not None else None) or blank
    for name in fields:
        setattr(entity, name, getattr(mine, name))


def _blank(entity: Entity) -> Entity:
    """An entity of the same kind and id that nothing has been said of."""
    return Loan(entity.loan_id) if isinstance(entity, Loan) else Group(entity.group_id)
