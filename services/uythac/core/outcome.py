"""What one batch did: the events accepted, duplicated and rejected, the changes other services hear of,
and the units whose counts moved. Made by the processor, read by the outputs, the metrics and replay."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import date

from uythac.core.events import Event, Rejection
from uythac.core.model import Counts, Group, Loan, Unit, UnitKey
from uythac.core.obligations import Change, Decision

Ref = Hashable  # where an event came from: a line number, a (partition, offset)


@dataclass(frozen=True, slots=True)
class Transition:
    """A change other services hear of, on the entity it happened to."""

    change: Change
    subject: str  # loan_id, or group_id for misuse found by a periodic inspection
    entity: Loan | Group
    day: date
    cause: str  # the event_id that caused it, or "clock:<day>"
    detail: tuple[tuple[str, str | None], ...] = ()  # more fields of its message, as they were at the change


@dataclass(slots=True)
class Outcome:
    accepted: list[Event] = field(default_factory=list)
    duplicates: int = 0
    rejected: list[tuple[Ref, Rejection]] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    changed_units: list[tuple[Unit, Counts]] = field(default_factory=list)  # (unit now, its counts before)
    new_units: set[UnitKey] = field(default_factory=set)  # units reported for the first time
    decisions: list[Decision] = field(default_factory=list)  # every rule decision, for metrics
    other_unit: set[str] = field(default_factory=set)  # events that named a loan or group of another unit
    today: date | None = None
    month_ends: list[date] = field(default_factory=list)  # month ends the clock passed (report kept)

    def absorb(self, part: Outcome) -> None:
        """Add what a later part of the same batch did (the units it changed, counted from before both)."""
        self.accepted += part.accepted
        self.duplicates += part.duplicates
        self.rejected += part.rejected
        self.transitions += part.transitions
        known = {(unit.commune_id, unit.org) for unit, _ in self.changed_units}
        self.changed_units += [
            (unit, was) for unit, was in part.changed_units if (unit.commune_id, unit.org) not in known
        ]
        self.new_units |= part.new_units
        self.decisions += part.decisions
        self.other_unit |= part.other_unit
        self.today = part.today
