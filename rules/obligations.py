"""The 30-day post-disbursement inspection obligation (docs/contract.md, "Rules"), as durable_rules rules.

Facts (days are `date.toordinal()` numbers, so the rules compare plain integers):

    obligation  {loan_id, disbursed_on, deadline, status}      status: pending | due_soon | missed | fulfilled
    inspection  {purpose, loan_id?, group_id?, on, result, event_id, fresh}
                purpose: post_disbursement (names its loan) | periodic (names its group, perhaps a loan)
    clock       {today, horizon}                               horizon = today + due-soon days

A loan must be inspected on a day `disbursed_on <= on <= deadline`, where `deadline = disbursed_on + 30`
(either result counts). Each rule only *decides*: it calls `decide(kind, subject, day, evidence)`,
where evidence is the event_id of the inspection behind the decision, if any. The engine
(`services/uythac/core/engine.py`) asserts a batch's facts, collects the decisions and retracts the
facts again; `services/uythac/core/obligations.py` applies the decisions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from durable.lang import c, m, none, ruleset
from durable.lang import when_all as _when_all

Decide = Callable[[str, str, int, str | None], None]
Action = Callable[[Any], None]
NAME = "obligations"


def when_all(*conditions: Any) -> Callable[[Action], Action]:
    """durable_rules' `when_all`, typed."""
    decorator: Callable[[Action], Action] = _when_all(*conditions)
    return decorator


def on_time() -> Any:
    """A post-disbursement inspection of the rule's `loan` dated within its 30 days.

    (Each `c.loan.<field>` is written out anew: durable_rules' references chain every attribute read.)
    """
    return (
        (m.kind == "inspection")
        & (m.purpose == "post_disbursement")
        & (m.loan_id == c.loan.loan_id)
        & (m.on >= c.loan.disbursed_on)
        & (m.on <= c.loan.deadline)
    )


def define(decide: Decide) -> dict[str, Any]:
    """The ruleset's definition, each rule named after its function, actions calling `decide`."""
    rules = ruleset(NAME)
    with rules:

        @when_all(c.loan << (m.kind == "obligation"), c.visit << on_time())
        def inspected_in_time(c: Any) -> None:
            """An on-time inspection fulfils the obligation, even one entered after a flag was raised."""
            decide("fulfilled", c.loan.loan_id, c.visit.on, c.visit.event_id)

        @when_all(
            c.loan << (m.kind == "obligation") & (m.status != "missed") & (m.status != "fulfilled"),
            c.clock << (m.kind == "clock") & (m.today > c.loan.deadline),
            none(on_time()),
        )
        def deadline_passed(c: Any) -> None:
            """No on-time inspection and the deadline is behind us: the loan is flagged."""
            decide("missed", c.loan.loan_id, c.loan.deadline, None)

        @when_all(
            c.loan << (m.kind == "obligation"),
            c.visit << (m.kind == "inspection")
            & (m.purpose == "post_disbursement")
            & (m.loan_id == c.loan.loan_id)
            & (m.on > c.loan.deadline),
        )
        def inspected_late(c: Any) -> None:
            """A late inspection is recorded on the flag but never clears it."""
            decide("late_inspection", c.loan.loan_id, c.visit.on, c.visit.event_id)

        @when_all(
            c.loan << (m.kind == "obligation") & (m.status == "pending"),
            c.clock << (m.kind == "clock") & (m.horizon >= c.loan.deadline) & (m.today <= c.loan.deadline),
            none(on_time()),
        )
        def deadline_near(c: Any) -> None:
            """Still open with the deadline within the due-soon horizon: on the officers' worklist."""
            decide("due_soon", c.loan.loan_id, c.loan.deadline, None)

        @when_all(c.visit << (m.kind == "inspection") & (m.result == "misuse") & (m.fresh == True) & +m.loan_id)  # noqa: E712
        def misuse_found(c: Any) -> None:
            """The inspectors found the loan's money misused: an informational flag, not scored."""
            decide("misuse", c.visit.loan_id, c.visit.on, c.visit.event_id)

        @when_all(c.visit << (m.kind == "inspection") & (m.result == "misuse") & (m.fresh == True) & -m.loan_id)  # noqa: E712
        def misuse_found_in_group(c: Any) -> None:
            """A periodic inspection found misuse in a group without naming a loan."""
            decide("group_misuse", c.visit.group_id, c.visit.on, c.visit.event_id)

    _, definition = rules.define()
    return {rule["run"].__name__: rule for rule in definition.values()}
