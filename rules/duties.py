"""The other inspection duties of VBSP's guidance (docs/contract.md §7): every loan with no transaction for
3 months or more, and every group once a year.

**The inactive-loan duty** (§7.1), as durable_rules rules. Facts (days are `date.toordinal()` numbers):

    duty        {loan_id, opened_on, deadline}       the loan's current stretch of inactivity: O and E, where
                                                     O = its last activity + 90 days and E = O + 30 days
    inspection  {purpose, loan_id, on, event_id}     its loan inspections (post_disbursement or follow_up, not
                                                     periodic) that name its own unit: no other kind is given
    clock       {today}

A loan inspection dated in [O, E] does the duty, entered on time or later; without one, the duty is missed
once E is behind us, and the earliest inspection after E is kept on it. A loan that is not inactive has no
duty: the processor gives the rules only the duties of inactive loans, and each rule only *decides*
(`decide(kind, loan_id, day, evidence)`, evidence: the inspection's event_id).

**The group of the year** (§7.2) needs no matching: it is `group_of_year` below, in plain Python.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from durable.lang import c, m, none, ruleset

from uythac.rules.obligations import Decide, when_all

NAME = "duties"


def in_window() -> Any:
    """An inspection of the rule's `duty` loan dated within [O, E]."""
    return (
        (m.kind == "inspection")
        & (m.loan_id == c.duty.loan_id)
        & (m.on >= c.duty.opened_on)
        & (m.on <= c.duty.deadline)
    )


def define(decide: Decide) -> dict[str, Any]:
    """The ruleset's definition, each rule named after its function, actions calling `decide`."""
    rules = ruleset(NAME)
    with rules:

        @when_all(c.duty << (m.kind == "duty"), c.visit << in_window())
        def inspected_in_time(c: Any) -> None:
            """An inspection dated within the 30 days after the duty opened does it."""
            decide("duty_done", c.duty.loan_id, c.visit.on, c.visit.event_id)

        @when_all(
            c.duty << (m.kind == "duty"),
            c.clock << (m.kind == "clock") & (m.today > c.duty.deadline),
            none(in_window()),
        )
        def deadline_passed(c: Any) -> None:
            """No inspection within the 30 days, and the deadline is behind us: the duty is missed."""
            decide("duty_missed", c.duty.loan_id, c.duty.deadline, None)

        @when_all(
            c.duty << (m.kind == "duty"),
            c.visit << (m.kind == "inspection") & (m.loan_id == c.duty.loan_id) & (m.on > c.duty.deadline),
        )
        def inspected_late(c: Any) -> None:
            """An inspection after the deadline is kept on the missed duty but never does it."""
            decide("duty_late_inspection", c.duty.loan_id, c.visit.on, c.visit.event_id)

    _, definition = rules.define()
    return {rule["run"].__name__: rule for rule in definition.values()}


def group_of_year(
    registered_on: date,
    closed_on: date | None,
    inspected_in: Callable[[int], bool],
    today: date,
    seasoning: timedelta,
) -> tuple[str | None, bool]:
    """The group's duty of this year at `today`, and whether it missed last year's.

    This year (Y, `today`'s year): a group active today and registered at least `seasoning` (90 days) ago owes
    a periodic inspection dated from 1 January of Y; it is "done" once one is dated in [01/01/Y, today], else
    "pending" (None: no duty). Last year: a group active on 31/12/(Y−1) and registered at least `seasoning`
    before that day missed it if no periodic inspection is dated in year Y−1. `inspected_in(year)`: is a periodic
    inspection of the group dated in that year (and not after `today`)?
    """
    this_year = None
    if registered_on <= today - seasoning and (closed_on is None or closed_on > today):
        this_year = "done" if inspected_in(today.year) else "pending"
    last_year_end = date(today.year - 1, 12, 31)
    owed_last_year = registered_on <= last_year_end - seasoning and (closed_on is None or closed_on > last_year_end)
    return this_year, owed_last_year and not inspected_in(today.year - 1)
