"""Applies batches of valid events to the store through the rules engine: the one place state changes.

Order inside a batch, all in one unit of work (`apply`):
  1. dedupe by event_id (identical content: duplicate, ignored; different content: conflict, rejected);
     a batch that takes the clock past a month end is then applied in parts: the events that arrived
     before the first one dated after that month end, the clock moved to the month end, the report at
     that day kept (for the API's `?as_of=`), then the rest (steps 2 to 6 for each part);
  2. load the loans and groups the events name, and those whose contribution falls due by the new clock;
  3. fold the events into them (order-independent summaries, `core.model`);
  4. the rules decide (`core.engine`): touched loans first, against the old clock, then the clock moves; then
     the inactive loans' duties (`rules/duties.py`) of the loans whose duty can have changed;
  5. recompute the contribution of every loaded entity and move the difference into its unit;
  6. write entities, units, inspections, accepted ids and the clock.
The caller's transaction (`transaction`) commits it with whatever else it adds (the worker's offsets and
outbox: `service.checkpoint`). If anything fails the transaction rolls back and the in-memory state (the
units, the flags of the window, the entity cache) is read again from the store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from uythac.core import report
from uythac.core.dates import ONE_DAY, month_end
from uythac.core.engine import Duty, Inspection, Obligation, duties_engine, obligations_engine
from uythac.core.events import Event, Rejection
from uythac.core.flags import DutyIndex, FlagIndex
from uythac.core.model import (
    NOTHING,
    Bounds,
    Counts,
    DutyStatus,
    Entity,
    Group,
    Loan,
    Status,
    Strays,
    Unit,
    UnitKey,
    names,
    stray,
    switch_unit,
)
from uythac.core.obligations import Change, Decision, Verdict, apply, apply_duty
from uythac.core.outcome import Outcome, Ref, Transition
from uythac.core.scorecard import Scorecard
from uythac.service.cache import Cache
from uythac.service.ports import Store, UnitOfWork

DUTY_FIELDS = ("inactive_since", "opened_on", "deadline")  # of a duty's messages, beside the loan's unit

Events = Sequence[tuple[Ref, Event]]
log = logging.getLogger(__name__)


class Processor:
    """The scoring state of one store, kept in step with it batch by batch."""

    def __init__(self, store: Store, card: Scorecard, months_kept: int, cache_limit: int) -> None:
        """`months_kept`: how many month-end reports the store keeps (the latest ones; 0: none);
        `cache_limit`: how many loans (and how many groups) stay in memory between batches."""
        self.store, self.card, self.months_kept = store, card, months_kept
        self.cache = Cache(cache_limit)
        # A unit's score is a pure function of its counts, and most units of an old month end keep their
        # counts from one month end to the next (a backfill of years passes hundreds of month ends).
        self.score = report.scorer(card, 1 << 14)
        self._restore()

    def _restore(self) -> None:
        with self.store.unit_of_work() as uow:
            uow.claim_scorecard(self.card.digest)
            self._read_state(uow)
        self.engine = obligations_engine(self.card.windows.due_soon_days)
        self.duties = duties_engine()
        # the loans and groups of the batch in the transaction (after it, the cache drops those at rest)
        self.loaded = Loaded()
        self._stale = False

    def _read_state(self, uow: UnitOfWork) -> None:
        """What is kept in memory, read from the store as `uow` sees it (the cached entities are dropped)."""
        self.cache.clear()
        self.version = uow.get_meta("version")
        self.today = uow.clock()
        self.units = uow.units()
        self.entries = report.UnitEntries(self.score)  # the month-end report's, written again as units change
        self.entries.changed(self.units.values())
        self.flags = FlagIndex([] if self.today is None else uow.missed_loans(*report.window(self.today, self.card)))
        self.open_duties = DutyIndex(self.card.windows, uow.open_duties())

    @contextmanager
    def transaction(self) -> Iterator[UnitOfWork]:
        """One unit of work with the cached rows; if it fails, the state kept in memory is read again (before the
        next one: the failure may be the store's).

        It first takes the store's writer lock, then reads the state again if another worker committed since
        this one last did (several workers share a PostgreSQL store): each batch starts from the store's state,
        clock and units of every worker, so a batch that moves the clock brings every loan and group due by then
        up to it, whichever worker's partitions they came from."""
        if self._stale:
            self._restore()
        try:
            with self.store.unit_of_work(self.cache.rows()) as uow:
                uow.take_writer()
                if uow.get_meta("version") != self.version:
                    self._read_state(uow)
                yield uow
                self.version = uow.get_meta("version")
        except BaseException:
            self._stale = True  # read again first thing next time: the store may be away now
            raise
        self.cache.trim(self.loaded.loans, self.loaded.groups)
        self.loaded = Loaded()  # let go of the batch's entities the cache dropped

    def process(self, batch: Events, floor: date | None = None) -> Outcome:
        """Apply a batch in a transaction of its own (replay); `floor`: see `apply`."""
        with self.transaction() as uow:
            return self.apply(uow, batch, floor)

    def apply(
        self,
        uow: UnitOfWork,
        batch: Events | Callable[[], Events],
        floor: date | None = None,
        first_digests: Mapping[str, bytes] | None = None,
    ) -> Outcome:
        """Apply a batch in `uow` (steps 1-6); `floor` moves the clock to at least that day (replay --as-of).

        `first_digests`, each event id of the batch with the digest of its first event there, lets the batch come
        later (a callable that waits for it, such as a future's `result`): the ids are claimed meanwhile (the
        worker decodes the batch on another thread)."""
        outcome = Outcome(today=self.today)
        accepted = _dedupe(uow, batch, first_digests, outcome)
        loaded = self.loaded = Loaded()
        for part, until, passed in _parts(accepted, self.today, floor, self.months_kept):
            outcome.absorb(_Batch(self, uow, loaded).run(part, until))
            self.today = outcome.today  # the next part starts from here
            if passed is not None:
                uow.keep_report(passed, self._report(passed), self.months_kept)
                outcome.month_ends.append(passed)
        uow.save_loans(loaded.loans.values())  # once a batch: a loan active every week is in each of its parts
        uow.save_groups(loaded.groups.values())
        uow.next_version()
        if outcome.other_unit:
            log.warning(
                "events named a loan or group with another unit than its own: they count for nothing for it",
                extra={"count": len(outcome.other_unit), "event_ids": sorted(outcome.other_unit)[:20]},
            )
        return outcome

    def recount(
        self, uow: UnitOfWork, loan_ids: Sequence[str], group_ids: Sequence[str], periodic: Sequence[Mapping[str, Any]]
    ) -> None:
        """Work out again, at the store's clock, what a store of an older layout did not keep (the migration to
        layout 5), by the rules a batch runs: each group's years with a periodic inspection (`periodic`: its periodic
        inspections, each where its unit says), the inactive loans' duties (from their inspections), every loan's
        and group's next change, and each unit's counts as the sum of what its loans and groups count for."""
        if self.today is None:
            return
        for unit in self.units.values():
            unit.counts = NOTHING
        batch = _Batch(self, uow, Loaded())
        batch.loans, batch.groups = uow.loans(loan_ids), uow.groups(group_ids)
        for row in periodic:
            group = batch.groups[row["group_id"]]
            inspected = row["inspected_on"]
            (group if names(group, row) else stray(group, batch._strays_of(group), dict(row))).inspected(inspected)
        batch._keep_strays()
        at = Bounds.at(self.today, self.card.windows)
        batch._decide_duties(at)
        batch._rescore(at)
        self.entries.changed(self.units.values())
        uow.save_units(self.units.values())
        uow.save_loans(batch.loans.values())
        uow.save_groups(batch.groups.values())
        uow.next_version()

    def _report(self, today: date) -> dict[str, Any]:
        """The report at the clock `today`, from this transaction's state (kept in memory)."""
        flags = self.flags.entries(*report.window(today, self.card))
        units, distribution = self.entries.parts()
        return report.assemble(today, units, flags, self.open_duties.entries(), distribution)


@dataclass
class Loaded:
    """The loans and groups of a batch's parts so far, written to the store once the batch's last part is done
    (until then the store's rows of them may be older: their next due day is read here)."""

    loans: dict[str, Loan] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)

    def due(self, entities: dict[str, Any], through: date) -> list[str]:
        return [
            key for key, entity in entities.items() if entity.next_change is not None and entity.next_change <= through
        ]


class _Batch:
    """One part of a batch's working set: the loans and groups its events name and those the clock brought due."""

    def __init__(self, processor: Processor, uow: UnitOfWork, loaded: Loaded) -> None:
        self.processor, self.uow, self.loaded = processor, uow, loaded
        self.windows = processor.card.windows
        self.loans: dict[str, Loan] = {}
        self.groups: dict[str, Group] = {}
        self.named: dict[UnitKey, Unit] = {}  # units a reporting event named in this batch
        self.disbursed_now: dict[str, str] = {}  # loan_id → the event_id that (re)disbursed it in this batch
        self.strays: dict[str, Strays] = {}  # by "l" + loan_id or "g" + group_id: read or made in this batch
        self.inspected: set[str] = set()  # loans with a loan inspection of their unit accepted in this batch
        self.duties_moved: dict[str, Loan] = {}  # loans whose duty, or unit, changed in this batch (the DutyIndex)
        self.outcome = Outcome()

    def run(self, accepted: list[Event], floor: date | None) -> Outcome:
        self.outcome.accepted = accepted
        old = self.processor.today
        days = [event.day for event in accepted] + [d for d in (old, floor) if d is not None]
        today = max(days) if days else None
        self.outcome.today = today
        if today is None:
            return self.outcome
        self._load(accepted, old, today)
        to_evaluate, fresh = self._fold(accepted)
        self._decide(to_evaluate, fresh, today)
        at = Bounds.at(today, self.windows)
        self._decide_duties(at)
        self._rescore(at)
        self.processor.flags.sync(self.loans.values(), at.assessed_after)
        self.processor.open_duties.sync(self.duties_moved.values())
        self.loaded.loans.update(self.loans)
        self.loaded.groups.update(self.groups)
        self.uow.set_clock(today)
        return self.outcome

    # 2 ------------------------------------------------------------------------------------------
    def _load(self, accepted: list[Event], old: date | None, today: date) -> None:
        """The entities the events name and those due by `today`, from the cache or else the store."""
        loan_ids = {e.data["loan_id"] for e in accepted if "loan_id" in e.data}
        group_ids = {e.data["group_id"] for e in accepted if "group_id" in e.data and e.type != "loan.disbursed"}
        if old is not None and today > old:
            loan_ids.update(self.uow.due_loan_ids(today), self.loaded.due(self.loaded.loans, today))
            group_ids.update(self.uow.due_group_ids(today), self.loaded.due(self.loaded.groups, today))
        at = None if old is None else Bounds.at(old, self.windows)
        cache = self.processor.cache
        self.loans = cache.loans.take(sorted(loan_ids), self.uow.loans, at)
        self.groups = cache.groups.take(sorted(group_ids), self.uow.groups, at)

    # 3 ------------------------------------------------------------------------------------------
    def _fold(self, accepted: list[Event]) -> tuple[set[str], list[Inspection]]:
        """Fold the events into their loans and groups; the loans to decide on and the fresh inspections.

        The disbursements and registrations first: they fix each entity's unit for this batch (moving what it
        held to its strays if the unit changed); then the other events, each counted for its loan or group
        only if it names that unit, else kept with the strays of its own unit."""
        to_evaluate: set[str] = set()
        others: list[Event] = []
        was: dict[str, tuple[Entity, UnitKey | None]] = {}  # entities whose unit may move: their unit before
        for event in accepted:
            data, day, kind = event.data, event.day, event.type
            if kind == "loan.disbursed":
                self._name_unit(data, day)
                loan = self.loans[data["loan_id"]]
                was.setdefault("l" + loan.loan_id, (loan, loan.unit))
                if loan.disbursed(data, day, self.windows):
                    to_evaluate.add(loan.loan_id)
                    self.disbursed_now[loan.loan_id] = event.event_id
            elif kind == "group.registered":
                self._name_unit(data, day)
                group = self.groups[data["group_id"]]
                was.setdefault("g" + group.group_id, (group, group.unit))
                group.registered(data, day)
            else:
                others.append(event)
        for entity, unit in was.values():
            if entity.unit != unit:
                self._switch(entity, unit)
        fresh = self._fold_others(others, to_evaluate)
        self._keep_strays()
        return to_evaluate, fresh

    def _fold_others(self, others: list[Event], to_evaluate: set[str]) -> list[Inspection]:
        """Every event but disbursements and registrations, each where its unit says (see `_fold`)."""
        loans, groups, strays = self.loans, self.groups, self._strays_of
        fresh: list[Inspection] = []
        rows: list[dict[str, Any]] = []
        for event in others:
            data, day, kind = event.data, event.day, event.type
            if kind == "repayment.recorded":  # most events are: first
                loan = loans[data["loan_id"]]
                (loan if names(loan, data) else stray(loan, strays(loan, event), data)).repaid(data, day)
            elif kind == "loan.overdue_changed":
                loan = loans[data["loan_id"]]
                (loan if names(loan, data) else stray(loan, strays(loan, event), data)).overdue_changed(data, day)
            elif kind == "savings.deposited":
                group = groups[data["group_id"]]
                (group if names(group, data) else stray(group, strays(group, event), data)).deposited(day)
            elif kind == "group.closed":
                group = groups[data["group_id"]]
                (group if names(group, data) else stray(group, strays(group, event), data)).closed(day)
            elif kind == "inspection.recorded":
                row = _inspection_row(event)
                rows.append(row)
                self._fold_inspection(event, row, to_evaluate, fresh)
        self.uow.add_inspections(rows)
        return fresh

    def _fold_inspection(
        self, event: Event, row: dict[str, Any], to_evaluate: set[str], fresh: list[Inspection]
    ) -> None:
        """A periodic inspection counts for its group; a loan inspection (post-disbursement or follow-up) is kept
        for its loan's duties (`_decide`, `_decide_duties`); misuse is found on the loan it names, or else on the
        group. Each counts only where it names the entity's unit (else it waits with the strays)."""
        data, misuse, loan_id = event.data, row["result"] == "misuse", row["loan_id"]
        if row["kind"] == "periodic":
            group = self.groups[data["group_id"]]
            ours = names(group, data)
            (group if ours else stray(group, self._strays_of(group, event), data)).inspected(event.day)
            if misuse and loan_id is None:  # the group's own misuse
                if ours:
                    fresh.append(_inspection(row, fresh=True))
                else:
                    stray(group, self._strays_of(group, event), data).misuse = True
            if loan_id is None or not misuse:
                return
        elif row["kind"] == "post_disbursement":
            to_evaluate.add(loan_id)  # its inspections of its own unit decide (`_decide`)
        loan = self.loans[loan_id]
        if names(loan, data):
            if row["kind"] != "periodic":
                self.inspected.add(loan_id)  # its inactive-loan duty may be done (`_decide_duties`)
            if row["kind"] == "post_disbursement" or misuse:
                fresh.append(_inspection(row, fresh=True))
        elif misuse:
            stray(loan, self._strays_of(loan, event), data).misuse = True

    def _strays_of(self, entity: Entity, event: Event | None = None) -> Strays:
        """What events naming the entity with other units said (read from the store once a batch); `event`,
        if given, names it with another unit: counted for the metrics and the log, unless the entity has no
        unit yet (its disbursement or registration has not arrived: the event waits for it, as any other)."""
        if event is not None and entity.unit is not None:
            self.outcome.other_unit.add(event.event_id)
        key = ("l" + entity.loan_id) if isinstance(entity, Loan) else ("g" + entity.group_id)
        kept = self.strays.get(key)
        if kept is None:
            kept = self.strays[key] = self.uow.strays(entity) if entity.has_strays else {}
        return kept

    def _switch(self, entity: Entity, was: UnitKey | None) -> None:
        """The entity's unit moved in this batch (from none to the first one, or to an earlier event's)."""
        misused = entity.misuse
        switch_unit(entity, was, self._strays_of(entity))
        if isinstance(entity, Loan):
            self.duties_moved[entity.loan_id] = entity  # its open duty, if any, is listed under its new unit
        if entity.misuse and not misused:  # an inspection of its unit had found misuse before it was known
            subject = entity.loan_id if isinstance(entity, Loan) else entity.group_id
            event_id = entity.disbursal_event if isinstance(entity, Loan) else entity.registration_event
            day = entity.disbursed_on if isinstance(entity, Loan) else entity.registered_on
            assert day is not None and event_id is not None
            self.outcome.transitions.append(Transition(Change.MISUSE_FOUND, subject, entity, day, event_id))

    def _keep_strays(self) -> None:
        """Write back the strays this batch read or made (an entity with none left has its flag cleared)."""
        for key, kept in self.strays.items():
            entity: Entity = self.loans[key[1:]] if key[0] == "l" else self.groups[key[1:]]
            if kept or entity.has_strays:
                self.uow.keep_strays(entity, kept)
                entity.has_strays = bool(kept)

    def _name_unit(self, data: dict[str, Any], day: date) -> None:
        key = (data["commune_id"], data["org"])
        unit = self.processor.units.get(key)
        if unit is None:
            unit = self.processor.units[key] = Unit(key[0], key[1], data["district_id"], day, data["event_id"])
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
                (loan.status == Status.PENDING and deadline - due_soon <= today)
                or (loan.status == Status.DUE_SOON and deadline < today)
            ):
                evaluate.add(loan_id)
        fresh_ids = {inspection.event_id for inspection in fresh}
        stored = [
            _inspection(row, fresh=False)
            for row in self.uow.loan_inspections(sorted(evaluate))
            if row["kind"] == "post_disbursement"
            and row["event_id"] not in fresh_ids
            and names(self.loans[row["loan_id"]], row)
        ]
        obligations = [
            Obligation(loan_id, loan.disbursed_on, loan.deadline, loan.status)
            for loan_id in sorted(evaluate)
            if (loan := self.loans[loan_id]).disbursed_on is not None
            and loan.deadline is not None
            and loan.status is not None
        ]
        decisions = self.processor.engine.decide(today, obligations, stored + fresh)
        self.outcome.decisions = decisions
        for decision in decisions:
            self._apply(decision, today)

    def _apply(self, decision: Decision, today: date) -> None:
        """Apply one decision to its loan or group; note the transition other services hear of, if any."""
        entity: Loan | Group
        if decision.verdict == Verdict.GROUP_MISUSE:
            entity = self.groups[decision.subject]
        else:
            entity = self.loans[decision.subject]
        change = apply(decision, entity)
        if change is None:
            return
        cause = decision.evidence or self.disbursed_now.get(decision.subject) or f"clock:{today.isoformat()}"
        self.outcome.transitions.append(Transition(change, decision.subject, entity, decision.day, cause))

    def _decide_duties(self, at: Bounds) -> None:
        """The inactive-loan duty of every loaded loan whose duty can have changed: it became inactive or active
        again, a loan inspection of its unit arrived, or its pending duty's deadline passed. The rules decide
        from the loan's inspections (`rules/duties.py`); a loan that is not inactive has no duty."""
        today, quiet_since = at.today, at.quiet_since
        changed: list[tuple[Loan, tuple[date, date, date] | None]] = []
        duties: list[Duty] = []
        for loan_id, loan in self.loans.items():
            repaid_on = loan.last_repayment_on
            if repaid_on is not None and repaid_on > quiet_since and loan.duty_status is None:
                continue  # repaid lately and no duty: most loans a batch loads
            stretch = loan.inactive_stretch(at)
            if stretch is None:
                if loan.duty_status is not None:
                    changed.append((loan, None))
            elif (
                loan.duty_opened_on != stretch[1]
                or loan_id in self.inspected
                or (loan.duty_status == DutyStatus.PENDING and stretch[2] < today)
            ):
                changed.append((loan, stretch))
                duties.append(Duty(loan_id, stretch[1], stretch[2]))
        decisions: dict[str, list[Decision]] = {}
        if duties:
            visits = [
                _inspection(row, fresh=False)
                for row in self.uow.loan_inspections(sorted(duty.loan_id for duty in duties))
                if row["kind"] != "periodic" and names(self.loans[row["loan_id"]], row)
            ]
            decided = self.processor.duties.decide(today, duties, visits)
            self.outcome.decisions += decided
            for decision in decided:
                decisions.setdefault(decision.subject, []).append(decision)
        for loan, stretch in changed:
            self.duties_moved[loan.loan_id] = loan
            changes = apply_duty(loan, stretch, decisions.get(loan.loan_id, []))
            if not changes:
                continue
            entry = report.duty_entry(loan, self.windows)
            detail = [("duty", "inactive_loan")] + [(name, entry[name]) for name in DUTY_FIELDS]
            for change, day, evidence in changes:
                late = [("late_inspection_on", entry["late_inspection_on"])] if change == Change.DUTY_MISSED else []
                cause = evidence or f"clock:{today.isoformat()}"
                self.outcome.transitions.append(
                    Transition(change, loan.loan_id, loan, day, cause, tuple(detail + late))
                )

    # 5 ------------------------------------------------------------------------------------------
    def _rescore(self, at: Bounds) -> None:
        """Each loaded entity's contribution at the new clock replaces its old one in its unit's counts."""
        changed: dict[UnitKey, Unit] = dict(self.named)
        added: dict[UnitKey, list[Counts]] = {}
        removed: dict[UnitKey, list[Counts]] = {}
        units = self.processor.units
        for entities in (self.loans.values(), self.groups.values()):
            for entity in entities:
                old_unit, old_share = entity.counted_in, entity.counted
                new_share = entity.contribution(at)
                entity.next_change = entity.next_due(at)
                new_unit = entity.unit
                if old_unit == new_unit and old_share == new_share:
                    continue
                entity.counted_in, entity.counted = new_unit, new_share
                if old_unit is not None and old_share != NOTHING:
                    removed.setdefault(old_unit, []).append(old_share)
                    changed[old_unit] = units[old_unit]
                if new_unit is not None and new_share != NOTHING:
                    added.setdefault(new_unit, []).append(new_share)
                    changed[new_unit] = units[new_unit]
        previous = {key: unit.counts for key, unit in changed.items()}
        for key, unit in changed.items():
            counts = unit.counts
            if key in added:
                counts = counts.plus(_total(added[key]))
            if key in removed:
                counts = counts.minus(_total(removed[key]))
            unit.counts = counts
        self.outcome.changed_units = [(unit, previous[key]) for key, unit in changed.items()]
        self.processor.entries.changed(changed.values())
        self.uow.save_units(changed.values())


def _dedupe(
    uow: UnitOfWork, batch: Events | Callable[[], Events], first_digests: Mapping[str, bytes] | None, outcome: Outcome
) -> list[Event]:
    """Each event against the first seen with its id: the stored one, else the first of the batch.

    The batch's first event of each new id is recorded as seen on the way (in this transaction). The claim is
    made before the events are read: SQLite makes it without holding Python's lock, so a batch still being
    decoded on another thread is done meanwhile.
    """
    if first_digests is None:
        assert not callable(batch), "a batch that comes later comes with its first digests"
        own: dict[str, bytes] = {}
        for _, event in batch:
            own.setdefault(event.event_id, event.digest)
        first_digests = own
    stored = uow.claim(first_digests)
    accepted = []
    taken: set[str] = set()  # ids whose first event in the batch has come
    for ref, event in batch() if callable(batch) else batch:
        event_id = event.event_id
        first = stored.get(event_id)
        if first is None:
            if event_id not in taken:
                taken.add(event_id)
                accepted.append(event)
                continue
            first = first_digests[event_id]
        if first == event.digest:
            outcome.duplicates += 1
        else:
            outcome.rejected.append((ref, _conflict(event)))
    return accepted


def _parts(
    accepted: list[Event], clock: date | None, floor: date | None, months_kept: int
) -> Iterator[tuple[list[Event], date | None, date | None]]:
    """(events, floor, month end passed): the batch cut before each event that takes the clock past a
    month end, so that the report at that month end holds exactly the events that arrived before it,
    whatever the batch sizes. Month ends too old to be kept at the batch's final clock (a backfill of
    years) are passed without a cut. Without a month end to keep: the whole batch, one part."""
    days = [event.day for event in accepted] + [day for day in (clock, floor) if day is not None]
    if not days or months_kept <= 0:
        yield accepted, floor, None
        return
    oldest = oldest_kept(max(days), months_kept)
    start, reached = 0, clock
    end = None if reached is None else month_end(reached)  # the end of `reached`'s month
    for i, event in enumerate(accepted):
        day = event.day
        if end is not None and day > end:
            while day > end:
                if end >= oldest:
                    yield accepted[start:i], end, end
                    start = i
                end = month_end(end + ONE_DAY)
            reached = day
        elif reached is None or day > reached:  # a later day of the same month, or the first day seen
            if end is None:
                end = month_end(day)
            reached = day
    if floor is not None and reached is not None:
        while floor > (end := month_end(reached)):
            if end >= oldest:
                yield accepted[start:], end, end
                start = len(accepted)
            reached = end + ONE_DAY
    yield accepted[start:], floor, None


def oldest_kept(today: date, months_kept: int) -> date:
    """The earliest month end whose report is kept at `today`: the `months_kept`-th before today's month."""
    months = today.year * 12 + today.month - 1 - months_kept
    return month_end(date(months // 12, months % 12 + 1, 1))


def _total(shares: list[Counts]) -> Counts:
    """The sum of many shares, column by column (one pass in C rather than one `plus` per share)."""
    return Counts._make(map(sum, zip(*shares, strict=True)))


def _conflict(event: Event) -> Rejection:
    reason = f"event_id: conflict: {event.event_id} was accepted before with other content"
    return Rejection(reason, event.event_id, event.type)


def _inspection_row(event: Event) -> dict[str, Any]:
    data = event.data
    return {
        "event_id": event.event_id,
        "kind": data["kind"],
        "loan_id": data.get("loan_id"),
        "group_id": data.get("group_id"),
        "commune_id": data["commune_id"],
        "org": data["org"],
        "inspected_on": event.day,
        "result": data.get("result", "compliant"),
    }


def _inspection(row: Mapping[str, Any], fresh: bool) -> Inspection:
    return Inspection(
        row["event_id"], row["kind"], row["loan_id"], row["group_id"], row["inspected_on"], row["result"], fresh
    )
