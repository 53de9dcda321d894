"""The rules engine: one pass of a durable_rules ruleset of `rules/` per batch (`rules/obligations.py`, the 30-day
inspection; `rules/duties.py`, the inactive-loan duty).

durable_rules keeps facts in process memory (at most 1024 live sids per ruleset) and its default host
runs actions later, on background threads. Here the store is the source of truth and the engine keeps
only the clock: a batch asserts the facts it must decide on (the inspections first, then the
obligations or duties, so that one meets its on-time inspection before its deadline rule can fire),
collects the decisions the rules make, and retracts the facts again.

The rules are compiled and matched by durable_rules' own engine; this module drives it through the same
C calls its Python host makes (assert, start an action, complete it and start the next), without the
host's per-action wrapping: its JSON state round trip and closures cost ~30–50 µs an action,
more than matching the facts. Every action has run, in firing order, before a call returns; an
exception in an action propagates (the host would swallow it) and the processor's batch rolls back; a
call whose last fact meets no rule runs its actions all the same (the host would defer them).

No rule joins two loans, so the facts go in by groups of loans (a loan's facts always together):
durable works harder per fact the more facts are alive. Asserting 20 000 at once costs ~45 µs and
~10 KB a fact; a few hundred at a time, ~28 µs and a few MB in all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from types import ModuleType
from typing import Any

import durable_rules_engine as rete
import orjson
from durable import engine as durable_engine

from uythac.core.model import Status
from uythac.core.obligations import Decision, Verdict
from uythac.rules import duties, obligations

SID = "0"
FACTS_AT_ONCE = 250  # at least; a loan's facts are never split


@dataclass(frozen=True, slots=True)
class Obligation:
    """A disbursed loan's 30-day inspection duty, as the store knows it before this batch."""

    loan_id: str
    disbursed_on: date
    deadline: date
    status: Status


@dataclass(frozen=True, slots=True)
class Duty:
    """An inactive loan's duty of inspection: the current stretch of inactivity's O and E."""

    loan_id: str
    opened_on: date
    deadline: date


@dataclass(frozen=True, slots=True)
class Inspection:
    event_id: str
    purpose: str  # post_disbursement | follow_up | periodic
    loan_id: str | None
    group_id: str | None
    day: date
    result: str
    fresh: bool  # accepted in this batch (misuse is decided once, on arrival)


class _SyncHost(durable_engine.Host):  # type: ignore[misc]
    """A durable_rules host without its dispatch and timer threads: it only compiles the ruleset."""

    def _run(self) -> None:
        pass


class _Fact:
    """A matched fact as an action reads it: `c.loan.deadline`, None for a field it lacks (as in durable)."""

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, Any]) -> None:
        self._fields = fields

    def __getattr__(self, name: str) -> Any:
        return self._fields.get(name)


class _Match:
    """What one rule matched, by the names its conditions gave (`c.loan`, `c.visit`)."""

    __slots__ = ("_facts",)

    def __init__(self, facts: dict[str, Any]) -> None:
        self._facts = facts

    def __getattr__(self, name: str) -> _Fact:
        return _Fact(self._facts[name])


class RulesEngine:
    """One ruleset of `rules/`, with the clock as a durable_rules fact; the loans' facts in, decisions out."""

    def __init__(self, ruleset: ModuleType, due_soon_days: int) -> None:
        self._decisions: list[Decision] = []
        definition = ruleset.define(self._decide)
        self._actions = {name: rule["run"] for name, rule in definition.items()}  # taken out by durable
        host = _SyncHost()
        host.register_rulesets({ruleset.NAME: definition})
        self._handle = host.get_ruleset(ruleset.NAME)._handle
        self._due_soon_days = due_soon_days
        self._clock: dict[str, Any] | None = None

    def _decide(self, verdict: str, subject: str, day: int, evidence: str | None) -> None:
        self._decisions.append(Decision(Verdict(verdict), subject, date.fromordinal(day), evidence))

    def decide(
        self, today: date, subjects: Sequence[Obligation] | Sequence[Duty], inspections: Sequence[Inspection]
    ) -> list[Decision]:
        """Run the rules once over these facts at `today`; nothing stays in the engine but the clock."""
        self._set_clock(today)
        by_loan: dict[str | None, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
        for inspection in inspections:
            by_loan.setdefault(inspection.loan_id, ([], []))[0].append(_inspection_fact(inspection))
        for subject in subjects:
            fact = _obligation_fact(subject) if isinstance(subject, Obligation) else _duty_fact(subject)
            by_loan.setdefault(subject.loan_id, ([], []))[1].append(fact)
        visits: list[dict[str, Any]] = []
        duties: list[dict[str, Any]] = []
        for loan_visits, loan_duties in by_loan.values():
            visits += loan_visits
            duties += loan_duties
            if len(visits) + len(duties) >= FACTS_AT_ONCE:
                self._run(visits, duties)
                visits, duties = [], []
        if visits or duties:
            self._run(visits, duties)
        decisions, self._decisions = self._decisions, []
        return decisions

    def _run(self, visits: list[dict[str, Any]], duties: list[dict[str, Any]]) -> None:
        """Assert, act, retract: the obligations go first on the way out, so that no rule waiting for the
        absence of an inspection sees one leave while its obligation is still there."""
        self._act(rete.assert_facts(self._handle, _json(visits + duties)))
        self._act(rete.retract_facts(self._handle, _json(duties + visits)))

    def _act(self, result: tuple[int, int]) -> None:
        """Run every action the last call made ready, in firing order (`result`: status, state handle)."""
        _, state = result
        started = rete.start_action_for_state(self._handle, state)
        ready = None if started is None else started[1]
        while ready is not None:
            for name, facts in orjson.loads(ready).items():
                self._actions[name](_Match(facts))
            ready = rete.complete_and_start_action(self._handle, state)

    def _set_clock(self, today: date) -> None:
        if self._clock is not None and self._clock["today"] == today.toordinal():
            return
        if self._clock is not None:
            self._act(rete.retract_fact(self._handle, _json(self._clock)))
        self._clock = {
            "id": "clock",
            "sid": SID,
            "kind": "clock",
            "today": today.toordinal(),
            "horizon": today.toordinal() + self._due_soon_days,
        }
        self._act(rete.assert_fact(self._handle, _json(self._clock)))


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _obligation_fact(obligation: Obligation) -> dict[str, Any]:
    return {
        "id": f"o:{obligation.loan_id}",
        "sid": SID,
        "kind": "obligation",
        "loan_id": obligation.loan_id,
        "disbursed_on": obligation.disbursed_on.toordinal(),
        "deadline": obligation.deadline.toordinal(),
        "status": obligation.status,
    }


def _duty_fact(duty: Duty) -> dict[str, Any]:
    return {
        "id": f"d:{duty.loan_id}",
        "sid": SID,
        "kind": "duty",
        "loan_id": duty.loan_id,
        "opened_on": duty.opened_on.toordinal(),
        "deadline": duty.deadline.toordinal(),
    }


def obligations_engine(due_soon_days: int) -> RulesEngine:
    """The 30-day post-disbursement inspection (`rules/obligations.py`)."""
    return RulesEngine(obligations, due_soon_days)


def duties_engine() -> RulesEngine:
    """The inactive-loan duty (`rules/duties.py`)."""
    return RulesEngine(duties, 0)


def _inspection_fact(inspection: Inspection) -> dict[str, Any]:
    fact: dict[str, Any] = {
        "id": f"i:{inspection.event_id}",
        "sid": SID,
        "kind": "inspection",
        "purpose": inspection.purpose,
        "on": inspection.day.toordinal(),
        "result": inspection.result,
        "event_id": inspection.event_id,
        "fresh": inspection.fresh,
    }
    if inspection.loan_id is not None:
        fact["loan_id"] = inspection.loan_id
    if inspection.group_id is not None:
        fact["group_id"] = inspection.group_id
    return fact
