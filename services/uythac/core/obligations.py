"""What the rules decide, and what each decision changes in the loan or group it names.

The rules (`rules/obligations.py` and `rules/duties.py`, run by `core.engine`) only decide; `apply` carries a
30-day decision out on the entity, `apply_duty` an inactive loan's decisions, and each says which change, if
any, other services hear of (`Change`): a flag raised or cleared, misuse found, a duty opened, missed or done.
A flag is never cleared by a late inspection, only by an on-time one entered late; likewise a duty.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from uythac.core.dates import shared
from uythac.core.model import OPEN, DutyStatus, Group, Loan, Status


class Verdict(StrEnum):
    """A rule's decision, named as `rules/obligations.py` names it."""

    FULFILLED = "fulfilled"  # an on-time inspection of the loan
    MISSED = "missed"  # the deadline passed without one
    LATE_INSPECTION = "late_inspection"  # an inspection after the deadline (kept on the flag)
    DUE_SOON = "due_soon"  # the deadline is near: the worklist
    MISUSE = "misuse"  # an inspection found the loan's money misused
    GROUP_MISUSE = "group_misuse"  # a periodic inspection found misuse without naming a loan
    DUTY_DONE = "duty_done"  # an inactive loan's inspection within its 30 days (`rules/duties.py`)
    DUTY_MISSED = "duty_missed"  # its deadline passed without one
    DUTY_LATE_INSPECTION = "duty_late_inspection"  # an inspection after that deadline


class Change(StrEnum):
    """What other services hear of (the type of the message on `uythac.flags`)."""

    FLAG_RAISED = "flag.raised"
    FLAG_CLEARED = "flag.cleared"
    MISUSE_FOUND = "misuse.found"
    DUTY_OPENED = "duty.opened"  # a loan became inactive: it must be inspected within 30 days
    DUTY_MISSED = "duty.missed"
    DUTY_DONE = "duty.done"


DUTY_CHANGES = frozenset({Change.DUTY_OPENED, Change.DUTY_MISSED, Change.DUTY_DONE})


@dataclass(frozen=True, slots=True)
class Decision:
    """What a rule decided about `subject` (a loan_id, or a group_id for GROUP_MISUSE) on `day`; `evidence`:
    the event_id of the inspection behind it, if one decided it."""

    verdict: Verdict
    subject: str
    day: date
    evidence: str | None


def apply(decision: Decision, entity: Loan | Group) -> Change | None:
    """Carry the decision out on its loan (or group); the change other services hear of, if any."""
    if decision.verdict in (Verdict.MISUSE, Verdict.GROUP_MISUSE):
        return _misused(entity)
    assert isinstance(entity, Loan), decision
    return _decided(entity, decision)


def _decided(loan: Loan, decision: Decision) -> Change | None:
    verdict = decision.verdict
    if verdict == Verdict.FULFILLED:
        if loan.inspected_on is None or decision.day < loan.inspected_on:
            loan.inspected_on = shared(decision.day)
        was, loan.status = loan.status, Status.FULFILLED
        return Change.FLAG_CLEARED if was == Status.MISSED else None
    if verdict == Verdict.MISSED and loan.status in OPEN:
        loan.status = Status.MISSED
        return Change.FLAG_RAISED
    if verdict == Verdict.DUE_SOON and loan.status == Status.PENDING:
        loan.status = Status.DUE_SOON
    if verdict == Verdict.LATE_INSPECTION and (
        loan.late_inspection_on is None or decision.day < loan.late_inspection_on
    ):
        loan.late_inspection_on = shared(decision.day)
    return None


def _misused(entity: Loan | Group) -> Change | None:
    if entity.misuse:
        return None
    entity.misuse = True
    return Change.MISUSE_FOUND


def apply_duty(
    loan: Loan, stretch: tuple[date, date, date] | None, decisions: list[Decision]
) -> list[tuple[Change, date, str | None]]:
    """Set the loan's inactive-loan duty from the rules' decisions on its current stretch of inactivity ((a, O, E);
    None: the loan is not inactive, so it has no duty); the changes other services hear of, each with its day and
    the inspection behind it."""
    if stretch is None:
        loan.duty_status = loan.duty_opened_on = loan.duty_late_on = None
        return []
    _, opened, deadline = stretch
    done = min(((d.day, d.evidence) for d in decisions if d.verdict == Verdict.DUTY_DONE), default=None)
    missed = any(d.verdict == Verdict.DUTY_MISSED for d in decisions)
    late = min((d.day for d in decisions if d.verdict == Verdict.DUTY_LATE_INSPECTION), default=None)
    status = DutyStatus.DONE if done else DutyStatus.MISSED if missed else DutyStatus.PENDING
    was = loan.duty_status if loan.duty_opened_on == opened else None  # another stretch: another duty
    loan.duty_status, loan.duty_opened_on = status, shared(opened)
    loan.duty_late_on = shared(late) if status == DutyStatus.MISSED and late is not None else None
    changes: list[tuple[Change, date, str | None]] = []
    if was is None:
        changes.append((Change.DUTY_OPENED, opened, None))
    if status == DutyStatus.MISSED and was in (None, DutyStatus.PENDING):
        changes.append((Change.DUTY_MISSED, deadline, None))
    if done is not None and was != DutyStatus.DONE:
        changes.append((Change.DUTY_DONE, done[0], done[1]))
    return changes
