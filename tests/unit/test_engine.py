"""The obligation engine puts a batch's facts to the rules in groups of loans: the decisions must be
those of one pass over all the facts at once."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from uythac.core import engine as obligations
from uythac.core.engine import Decision, Inspection, Obligation, obligations_engine

TODAY = date(2023, 6, 30)


def _facts(seed: int) -> tuple[list[Obligation], list[Inspection]]:
    """A few hundred loans around their deadlines, with on-time, late, early and misuse inspections."""
    rng = random.Random(seed)
    duties, visits = [], []
    for n in range(300):
        loan_id = f"L{n:03d}"
        disbursed = TODAY - timedelta(days=rng.randint(0, 60))
        status = rng.choice(["pending", "pending", "due_soon", "missed"])
        duties.append(Obligation(loan_id, disbursed, disbursed + timedelta(days=30), status))
        for k in range(rng.randint(0, 2)):
            day = disbursed + timedelta(days=rng.randint(-2, 40))
            result = rng.choice(["compliant", "compliant", "misuse"])
            visits.append(
                Inspection(f"i-{loan_id}-{k}", "post_disbursement", loan_id, None, day, result, rng.random() < 0.5)
            )
    for n in range(20):  # periodic inspections of groups that found misuse (the only ones the rules are given)
        visits.append(Inspection(f"p{n}", "periodic", None, f"G{n}", TODAY, "misuse", True))
    rng.shuffle(visits)
    return duties, visits


def _decide(duties: list[Obligation], visits: list[Inspection]) -> list[Decision]:
    return sorted(obligations_engine(7).decide(TODAY, duties, visits), key=repr)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_facts_put_to_the_rules_in_groups_decide_as_all_at_once(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    duties, visits = _facts(seed)
    monkeypatch.setattr(obligations, "FACTS_AT_ONCE", 10**9)
    at_once = _decide(duties, visits)
    monkeypatch.setattr(obligations, "FACTS_AT_ONCE", 7)
    in_groups = _decide(duties, visits)
    assert in_groups == at_once
    assert {decision.verdict for decision in at_once} >= {
        "fulfilled",
        "missed",
        "due_soon",
        "late_inspection",
        "misuse",
    }


def test_a_call_whose_last_fact_meets_no_rule_still_runs_its_actions() -> None:
    """durable's own host defers such a call's actions to the next call (MessageNotHandled)."""
    engine = obligations_engine(7)
    tidy = Inspection("i-tidy", "periodic", None, "G1", TODAY, "compliant", True)  # no rule looks at it
    assert engine.decide(TODAY, [], [tidy]) == []
    duty = Obligation("L1", TODAY - timedelta(days=40), TODAY - timedelta(days=10), "pending")
    assert engine.decide(TODAY, [duty], [tidy]) == [Decision("missed", "L1", duty.deadline, None)]


def test_an_error_in_an_action_is_raised_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """durable's own host logs it into the session state and goes on; here the batch must fail."""
    engine = obligations_engine(7)

    def broken(*_: object) -> None:
        raise RuntimeError("a bug in a decision")

    monkeypatch.setattr(engine, "_actions", {name: broken for name in engine._actions})
    duty = Obligation("L1", TODAY - timedelta(days=40), TODAY - timedelta(days=10), "pending")
    with pytest.raises(RuntimeError, match="a bug in a decision"):
        engine.decide(TODAY, [duty], [])
