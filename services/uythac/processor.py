"""Applies batches of valid events to the store through the rules engine: the one place state changes.

Order inside a batch, all in one store transaction:
  1. dedupe by event_id (identical content: duplicate, ignored; different content: conflict, rejected);
  2. load the loans and groups the events name, and those whose contribution falls due by the new clock;
  3. fold the events into them (order-independent summaries, `ledger`);
  4. the rules decide (`obligations`): touched loans first, against the old clock, then the clock moves;
  5. recompute the contribution of every loaded entity and move the difference into its unit;
  6. write entities, units, inspections, accepted ids and the clock; the caller's `before_commit` adds
     its own rows (offsets, outbox) to the same transaction.
If anything fails the transaction rolls back and the in-memory engine and units are rebuilt from the store.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from uythac.ledger import NOTHING, OPEN, Counts, Group, Loan, Unit
from uythac.obligations import Decision, Inspection, Obligation, ObligationEngine
from uythac.scorecard import Scorecard
from uythac.store import Store, UnitOfWork
from uythac.validation import Event, Rejection

Ref = Hashable  # where an event came from: a line number, a (partition, offset)


@dataclass(frozen=True, slots=True)
class Transition:
    """Something other services may want to hear of: a flag raised or cleared, misuse found."""

    kind: str  # flag.raised | flag.cleared | misuse.found
    subject: str  # loan_id, or group_id for misuse found by a periodic inspection
    entity: Loan | Group
    day: date
    cause: str  # the event_id that caused it, or "clock:<day>"


@dataclass(slots=True)
class Outcome:
    accepted: list[Event] = field(default_factory=list)
    duplicates: int = 0
    rejected: list[tuple[Ref, Rejection]] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    changed_units: list[tuple[Unit, Counts]] = field(default_factory=list)  # (unit now, its counts before)
    new_units: set[tuple[str, str]] = field(default_factory=set)  # units reported for the first time
    decisions: list[Decision] = field(default_factory=list)  # every rule decision, for metrics
    today: date | None = None


BeforeCommit = Callable[[UnitOfWork, Outcome], None]


class Processor:
    """The scoring state of one store, kept in step with it batch by batch."""

    def __init__(self, store: Store, card: Scorecard) -> None:
        self.store, self.card = store, card
        self._restore()

    def _restore(self) -> None:
        with self.store.unit_of_work() as uow:
            uow.claim_scorecard(self.card.digest)
            self.today = uow.clock()
            self.units = uow.units()
            self.engine = ObligationEngine(self.card.windows.due_soon_days)

    def process(
        self,
        batch: Sequence[tuple[Ref, Event]],
        floor: date | None = None,
        before_commit: BeforeCommit | None = None,
    ) -> Outcome:
        """Apply a batch; `floor` moves the clock to at least that day (replay --as-of, clock ticks)."""
        try:
            with self.store.unit_of_work() as uow:
                outcome = _Batch(self, uow).run(batch, floor)
                if before_commit is not None:
                    before_commit(uow, outcome)
        except BaseException:
            self._restore()
            raise
        self.today = outcome.today
        return outcome


class _Batch:
    """One batch's working set: the entities it loaded and their contributions before it."""

    def __init__(self, processor: Processor, uow: UnitOfWork) -> None:
        self.p, self.uow = processor, uow
        self.windows = processor.card.windows
        self.loans: dict[str, Loan] = {}
        self.groups: dict[str, Group] = {}
        self.before: dict[tuple[str, str], tuple[tuple[str, str] | None, Counts]] = {}
        self.named: dict[tuple[str, str], Unit] = {}  # units a reporting event named in this batch
        self.disbursed_now: dict[str, str] = {}  # loan_id → the event_id that (re)disbursed it in this batch
        self.outcome = Outcome()

    def run(self, batch: Sequence[tuple[Ref, Event]], floor: date | None) -> Outcome:
        accepted = self._dedupe(batch)
        old = self.p.today
        days = [event.day for event in accepted] + [d for d in (old, floor) if d is not None]
        today = max(days) if days else None
        self.outcome.today = today
        if today is None:
            return self.outcome
        self._load(accepted, old, today)
        to_evaluate, fresh = self._fold(accepted)
        self._decide(to_evaluate, fresh, today)
        self._rescore(today)
        self.uow.remember((event.event_id, event.digest) for event in accepted)
        self.uow.save_loans(self.loans.values())
        self.uow.save_groups(self.groups.values())
        self.uow.set_clock(today)
        return self.outcome

    # 1 ------------------------------------------------------------------------------------------
    def _dedupe(self, batch: Sequence[tuple[Ref, Event]]) -> list[Event]:
        """Each event against the first seen with its id: the stored one, else the first of the batch."""
        seen = self.uow.digests(list({event.event_id: None for _, event in batch}))
        accepted = []
        for ref, event in batch:
            first = seen.get(event.event_id)
            if first is None:
                seen[event.event_id] = event.digest
                accepted.append(event)
            elif first == event.digest:
                self.outcome.duplicates += 1
            else:
                self.outcome.rejected.append((ref, _conflict(event)))
        self.outcome.accepted = accepted
        return accepted

    # 2 ------------------------------------------------------------------------------------------
    def _load(self, accepted: list[Event], old: date | None, today: date) -> None:
        loan_ids = {e.data["loan_id"] for e in accepted if "loan_id" in e.data}
        group_ids = {e.data["group_id"] for e in accepted if "group_id" in e.data and e.type != "loan.disbursed"}
        if old is not None and today > old:
            loan_ids.update(self.uow.due_loan_ids(today))
            group_ids.update(self.uow.due_group_ids(today))
        self._load_loans(loan_ids, old)
        self._load_groups(group_ids, old)

    def _load_loans(self, loan_ids: set[str], old: date | None) -> None:
        wanted = sorted(loan_ids - self.loans.keys())
        found = self.uow.loans(wanted)
        for loan_id in wanted:
            loan = found.get(loan_id) or Loan(loan_id)
            self.loans[loan_id] = loan
            self.before[("loan", loan_id)] = (loan.unit, self._share(loan, old))

    def _load_groups(self, group_ids: set[str], old: date | None) -> None:
        wanted = sorted(group_ids - self.groups.keys())
        found = self.uow.groups(wanted)
        for group_id in wanted:
            group = found.get(group_id) or Group(group_id)
            self.groups[group_id] = group
            self.before[("group", group_id)] = (group.unit, self._share(group, old))

    def _share(self, entity: Loan | Group, today: date | None) -> Counts:
        return NOTHING if today is None else entity.contribution(today, self.windows)

    # 3 ------------------------------------------------------------------------------------------
    def _fold(self, accepted: list[Event]) -> tuple[set[str], list[Inspection]]:
        """Fold the events into their loans and groups; the loans to decide on and the fresh inspections."""
        to_evaluate: set[str] = set()
        fresh: list[Inspection] = []
        rows: list[dict[str, Any]] = []
        for event in accepted:
            data, day, kind = event.data, event.day, event.type
            if kind in ("group.registered", "loan.disbursed"):
                self._name_unit(data, day)
            if kind == "group.registered":
                self.groups[data["group_id"]].registered(data, day)
            elif kind == "group.closed":
                self.groups[data["group_id"]].closed(day)
            elif kind == "savings.deposited":
                self.groups[data["group_id"]].deposited(day)
            elif kind == "loan.disbursed":
                if self.loans[data["loan_id"]].disbursed(data, day, self.windows):
                    to_evaluate.add(data["loan_id"])
                    self.disbursed_now[data["loan_id"]] = event.event_id
            elif kind == "repayment.recorded":
                self.loans[data["loan_id"]].repaid(data, day)
            elif kind == "loan.overdue_changed":
                self.loans[data["loan_id"]].overdue_changed(data, day)
            elif kind == "inspection.recorded":
                row = _inspection_row(event)
                rows.append(row)
                if row["kind"] == "post_disbursement":
                    to_evaluate.add(row["loan_id"])
                    fresh.append(_inspection(row, fresh=True))
                else:
                    self.groups[data["group_id"]].inspected(day)
                    if row["result"] == "misuse":
                        fresh.append(_inspection(row, fresh=True))
        self.uow.add_inspections(rows)
        return to_evaluate, fresh

    def _name_unit(self, data: dict[str, Any], day: date) -> None:
        key = (data["commune_id"], data["org"])
        unit = self.p.units.get(key)
        if unit is None:
            unit = self.p.units[key] = Unit(key[0], key[1], data["district_id"], day, data["event_id"])
            self.outcome.new_units.add(key)
        else:
            unit.named_by(data, day)
        self.named[key] = unit

    # 4 ------------------------------------------------------------------------------------------
    def _decide(self, to_evaluate: set[str], fresh: list[Inspection], today: date) -> None:
        """One pass of the rules over the loans this batch touched and those the clock brought due."""
        due_soon = self.windows.due_soon
        evaluate = set(to_evaluate)
        for loan_id, loan in self.loans.items():
            deadline = loan.deadline
            if deadline is not None and (
                (loan.status == "pending" and deadline - due_soon <= today)
                or (loan.status == "due_soon" and deadline < today)
            ):
                evaluate.add(loan_id)
        fresh_ids = {inspection.event_id for inspection in fresh}
        stored = [
            _inspection(row, fresh=False)
            for row in self.uow.loan_inspections(sorted(evaluate))
            if row["event_id"] not in fresh_ids
        ]
        obligations = [
            Obligation(loan_id, loan.disbursed_on, loan.deadline, loan.status)
            for loan_id in sorted(evaluate)
            if (loan := self.loans[loan_id]).disbursed_on is not None
            and loan.deadline is not None
            and loan.status is not None
        ]
        decisions = self.p.engine.decide(today, obligations, stored + fresh)
        self.outcome.decisions = decisions
        for decision in decisions:
            self._apply(decision, today)

    def _apply(self, decision: Decision, today: date) -> None:
        """Apply one decision to its loan or group; note the transition other services hear of, if any."""
        entity: Loan | Group
        if decision.kind == "group_misuse":
            entity = self.groups[decision.subject]
            change = _misused(entity)
        else:
            entity = self.loans[decision.subject]
            change = _misused(entity) if decision.kind == "misuse" else _decided(entity, decision)
        if change is None:
            return
        cause = decision.evidence or self.disbursed_now.get(decision.subject) or f"clock:{today.isoformat()}"
        self.outcome.transitions.append(Transition(change, decision.subject, entity, decision.day, cause))

    # 5 ------------------------------------------------------------------------------------------
    def _rescore(self, today: date) -> None:
        changed: dict[tuple[str, str], Unit] = dict(self.named)
        previous = {key: unit.counts for key, unit in self.p.units.items() if key in changed}
        entities: list[tuple[tuple[str, str], Loan | Group]] = [(("loan", k), v) for k, v in self.loans.items()]
        entities += [(("group", k), v) for k, v in self.groups.items()]
        for key, entity in entities:
            old_unit, old_share = self.before[key]
            new_share = entity.contribution(today, self.windows)
            entity.next_change = entity.next_due(today, self.windows)
            if old_unit == entity.unit and old_share == new_share:
                continue
            if old_unit is not None and old_share != NOTHING:
                unit = self.p.units[old_unit]
                previous.setdefault(old_unit, unit.counts)
                unit.counts = unit.counts.minus(old_share)
                changed[old_unit] = unit
            if entity.unit is not None and new_share != NOTHING:
                unit = self.p.units[entity.unit]
                previous.setdefault(entity.unit, unit.counts)
                unit.counts = unit.counts.plus(new_share)
                changed[entity.unit] = unit
        self.outcome.changed_units = [(unit, previous[key]) for key, unit in changed.items()]
        self.uow.save_units(changed.values())


def _decided(loan: Loan, decision: Decision) -> str | None:
    """Apply one rule decision to a loan; the transition other services hear of, if any."""
    if decision.kind == "fulfilled":
        if loan.inspected_on is None or decision.day < loan.inspected_on:
            loan.inspected_on = decision.day
        was, loan.status = loan.status, "fulfilled"
        return "flag.cleared" if was == "missed" else None
    if decision.kind == "missed" and loan.status in OPEN:
        loan.status = "missed"
        return "flag.raised"
    if decision.kind == "due_soon" and loan.status == "pending":
        loan.status = "due_soon"
    if decision.kind == "late_inspection" and (
        loan.late_inspection_on is None or decision.day < loan.late_inspection_on
    ):
        loan.late_inspection_on = decision.day
    return None


def _misused(entity: Loan | Group) -> str | None:
    if entity.misuse:
        return None
    entity.misuse = True
    return "misuse.found"


def _conflict(event: Event) -> Rejection:
    return Rejection(f"event_id: conflict: {event.event_id} was accepted before with other content", event.event_id)


def _inspection_row(event: Event) -> dict[str, Any]:
    data = event.data
    return {
        "event_id": event.event_id,
        "kind": data["kind"],
        "loan_id": data.get("loan_id"),
        "group_id": data.get("group_id"),
        "inspected_on": event.day,
        "result": data.get("result", "compliant"),
    }


def _inspection(row: Mapping[str, Any], fresh: bool) -> Inspection:
    return Inspection(
        row["event_id"], row["kind"], row["loan_id"], row["group_id"], row["inspected_on"], row["result"], fresh
    )
