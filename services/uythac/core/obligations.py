"""What the obligation rules decide, and what each decision changes in the loan or group it names.

The rules (`rules/obligations.py`, run by `core.engine`) only decide; `apply` carries a decision out on
the entity and says which change, if any, other services hear of (`Change`): a flag raised or cleared,
misuse found. A flag is never cleared by a late inspection, only by an on-time one entered late.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from uythac.core.dates import shared
from uythac.core.model import OPEN, Group, Loan, Status


class Verdict(StrEnum):
    """A rule's decision, named as `rules/obligations.py` names it."""

    FULFILLED = "fulfilled"  # an on-time inspection of the loan
    MISSED = "missed"  # the deadline passed without one
    LATE_INSPECTION = "late_inspection"  # an inspection after the deadline (kept on the flag)
    DUE_SOON = "due_soon"  # the deadline is near: the worklist
    MISUSE = "misuse"  # an inspection found the loan's money misused
    GROUP_MISUSE = "group_misuse"  # a periodic inspection found misuse without naming a loan


class Change(StrEnum):
    """What other services hear of (the type of the message on `uythac.flags`)."""

    FLAG_RAISED = "flag.raised"
    FLAG_CLEARED = "flag.cleared"
    MISUSE_FOUND = "misuse.found"


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
