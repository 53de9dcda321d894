"""The obligation engine: feeds the durable_rules ruleset in `rules/obligations.py` and collects decisions.

durable_rules keeps facts per `sid` (at most 1024 live sids per ruleset) and its default host runs
actions on background threads, later. Here: 16 sids chosen by a hash of the loan id, a host whose
background loop never starts (every call runs its actions before it returns), and actions that only
append a `Decision` to a list. The store is the source of truth; the engine holds only open
obligations and one clock fact per sid, and is rebuilt from the store on start.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from durable import engine as durable_engine

from uythac.rules import obligations as ruleset

SIDS = 16


@dataclass(frozen=True, slots=True)
class Decision:
    """What a rule decided: `kind` is fulfilled | missed | late_inspection | due_soon | misuse."""

    kind: str
    subject: str  # a loan_id (a group_id for misuse found by a periodic inspection)
    day: date


@dataclass(frozen=True, slots=True)
class Inspection:
    event_id: str
    subject: str
    day: date
    result: str
    fresh: bool  # arrived in this batch (misuse is decided once, on arrival)
    periodic: bool = False


class _SyncHost(durable_engine.Host):  # type: ignore[misc]
    """A durable_rules host without its dispatch and timer threads: deterministic and synchronous."""

    def _run(self) -> None:
        pass


def _sid(subject: str) -> str:
    return str(zlib.crc32(subject.encode()) % SIDS)


class ObligationEngine:
    """Open obligations and the clock as durable_rules facts; decisions out."""

    def __init__(self, due_soon_days: int) -> None:
        self._decisions: list[Decision] = []
        self._host = _SyncHost()
        self._host.register_rulesets({ruleset.NAME: ruleset.define(self._decide)})
        self._due_soon_days = due_soon_days
        self._open: dict[str, dict[str, Any]] = {}
        self._clocks: dict[str, dict[str, Any]] = {}

    def _decide(self, kind: str, subject: str, day: int) -> None:
        self._decisions.append(Decision(kind, subject, date.fromordinal(day)))

    def _assert(self, fact: dict[str, Any]) -> None:
        self._host.assert_fact(ruleset.NAME, fact)

    def _retract(self, fact: dict[str, Any]) -> None:
        self._host.retract_fact(ruleset.NAME, fact)

    def _take(self) -> list[Decision]:
        decisions, self._decisions = self._decisions, []
        return decisions

    @property
    def open_obligations(self) -> int:
        return len(self._open)

    def advance(self, today: date) -> list[Decision]:
        """Move every sid's clock to `today`; deadlines that passed or came near are decided."""
        for sid in map(str, range(SIDS)):
            clock = {
                "id": "clock",
                "sid": sid,
                "kind": "clock",
                "today": today.toordinal(),
                "horizon": today.toordinal() + self._due_soon_days,
            }
            if sid in self._clocks:
                self._retract(self._clocks[sid])
            self._clocks[sid] = clock
            self._assert(clock)
        decisions = self._take()
        for decision in decisions:
            self._settle(decision)
        return decisions

    def evaluate(
        self,
        loan_id: str | None,
        obligation: tuple[date, date, str] | None,
        inspections: Iterable[Inspection],
    ) -> list[Decision]:
        """Decide one loan (or one group's misuse) from its obligation and all its known inspections.

        `obligation` is (disbursed_on, deadline, status) or None while the disbursement is unknown.
        """
        if loan_id is not None and loan_id in self._open:
            self._retract(self._open.pop(loan_id))
        facts = [self._inspection_fact(inspection) for inspection in inspections]
        if loan_id is not None and obligation is not None:
            # last, so that a deadline already behind the clock meets its on-time inspection at once
            # (asserted first, it would be missed and then fulfilled: a flag raised and cleared for nothing)
            facts.append(self._obligation_fact(loan_id, *obligation))
        for fact in facts:
            self._assert(fact)
        for fact in facts:
            self._retract(fact)
        decisions = self._take()
        if loan_id is not None and obligation is not None:
            status = obligation[2]
            for decision in decisions:
                status = _next_status(status, decision.kind)
            if status in ("pending", "due_soon"):
                self._hold(loan_id, obligation[0], obligation[1], status)
        return decisions

    def load(self, today: date | None, open_obligations: Iterable[tuple[str, date, date, str]]) -> None:
        """Rebuild from the store: the open obligations and the clock."""
        for loan_id, disbursed_on, deadline, status in open_obligations:
            self._hold(loan_id, disbursed_on, deadline, status)
        if today is not None:
            self.advance(today)

    def _hold(self, loan_id: str, disbursed_on: date, deadline: date, status: str) -> None:
        fact = self._obligation_fact(loan_id, disbursed_on, deadline, status)
        self._open[loan_id] = fact
        self._assert(fact)

    def _settle(self, decision: Decision) -> None:
        """After a clock move: a missed obligation leaves memory, a near one is held as due soon."""
        fact = self._open.get(decision.subject)
        if fact is None:
            return
        status = _next_status(fact["status"], decision.kind)
        if status != fact["status"]:
            self._retract(self._open.pop(decision.subject))
            if status in ("pending", "due_soon"):
                self._hold(
                    decision.subject,
                    date.fromordinal(fact["disbursed_on"]),
                    date.fromordinal(fact["deadline"]),
                    status,
                )

    @staticmethod
    def _obligation_fact(loan_id: str, disbursed_on: date, deadline: date, status: str) -> dict[str, Any]:
        return {
            "id": f"o:{loan_id}",
            "sid": _sid(loan_id),
            "kind": "obligation",
            "loan_id": loan_id,
            "disbursed_on": disbursed_on.toordinal(),
            "deadline": deadline.toordinal(),
            "status": status,
        }

    @staticmethod
    def _inspection_fact(inspection: Inspection) -> dict[str, Any]:
        fact = {
            "id": f"i:{inspection.event_id}",
            "sid": _sid(inspection.subject),
            "kind": "inspection",
            "subject": inspection.subject,
            "on": inspection.day.toordinal(),
            "result": inspection.result,
            "fresh": inspection.fresh,
        }
        if not inspection.periodic:
            fact["loan_id"] = inspection.subject
        return fact


def _next_status(status: str, kind: str) -> str:
    """The obligation state machine: pending → due_soon → missed, and fulfilled from any of them."""
    if kind == "fulfilled":
        return "fulfilled"
    if kind == "missed" and status in ("pending", "due_soon"):
        return "missed"
    if kind == "due_soon" and status == "pending":
        return "due_soon"
    return status
