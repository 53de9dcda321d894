"""The 30-day post-disbursement inspection obligation (SPEC §4), as durable_rules rules.

Facts (days are `date.toordinal()` numbers, so the rules compare plain integers):

    obligation  {loan_id, disbursed_on, deadline, status}   status: pending | due_soon | missed
    inspection  {loan_id, on, result, fresh}                a post-disbursement inspection
    inspection  {group_id, on, result, fresh}               a periodic one (only for misuse)
    clock       {today, horizon}                            horizon = today + due-soon days

A loan must be inspected on a day `d <= on <= deadline`, where `deadline = d + 30` (either result
counts). Each rule only *decides*: it calls `decide(kind, subject, day)`; the engine
(`services/uythac/obligations.py`) applies the decision and keeps only open obligations in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from durable.lang import c, m, none, ruleset
from durable.lang import when_all as _when_all

Decide = Callable[[str, str, int], None]
Action = Callable[[Any], None]
NAME = "obligations"


def when_all(*conditions: Any) -> Callable[[Action], Action]:
    """durable_rules' `when_all`, typed."""
    decorator: Callable[[Action], Action] = _when_all(*conditions)
    return decorator


def define(decide: Decide) -> dict[str, Any]:
    """The ruleset's definition, each rule named after its function, actions calling `decide`."""
    rules = ruleset(NAME)
    with rules:

        @when_all(
            c.loan << (m.kind == "obligation"),
            c.visit << (m.kind == "inspection")
            & (m.loan_id == c.loan.loan_id)
            & (m.on >= c.loan.disbursed_on)
            & (m.on <= c.loan.deadline),
        )
        def inspected_in_time(c: Any) -> None:
            """An on-time inspection fulfils the obligation, even one entered after a flag was raised."""
            decide("fulfilled", c.loan.loan_id, c.visit.on)

        @when_all(
            c.loan << (m.kind == "obligation") & (m.status != "missed"),
            c.clock << (m.kind == "clock") & (m.today > c.loan.deadline),
            none(
                (m.kind == "inspection")
                & (m.loan_id == c.loan.loan_id)
                & (m.on >= c.loan.disbursed_on)
                & (m.on <= c.loan.deadline)
            ),
        )
        def deadline_passed(c: Any) -> None:
            """No on-time inspection and the deadline is behind us: the loan is flagged."""
            decide("missed", c.loan.loan_id, c.loan.deadline)

        @when_all(
            c.loan << (m.kind == "obligation"),
            c.visit << (m.kind == "inspection") & (m.loan_id == c.loan.loan_id) & (m.on > c.loan.deadline),
        )
        def inspected_late(c: Any) -> None:
            """A late inspection is recorded on the flag but never clears it."""
            decide("late_inspection", c.loan.loan_id, c.visit.on)

        @when_all(
            c.loan << (m.kind == "obligation") & (m.status == "pending"),
            c.clock << (m.kind == "clock") & (m.horizon >= c.loan.deadline) & (m.today <= c.loan.deadline),
        )
        def deadline_near(c: Any) -> None:
            """Still open with the deadline within the due-soon horizon: on the officers' worklist."""
            decide("due_soon", c.loan.loan_id, c.loan.deadline)

        @when_all(c.visit << (m.kind == "inspection") & (m.result == "misuse") & (m.fresh == True))  # noqa: E712
        def misuse_found(c: Any) -> None:
            """The inspectors found the money misused: an informational flag, not scored."""
            decide("misuse", c.visit.subject, c.visit.on)

    _, definition = rules.define()
    return {rule["run"].__name__: rule for rule in definition.values()}
