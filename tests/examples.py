"""Example events (one valid event of each type, and variants of it) and the packaged scorecard, for any test."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from uythac.core import scorecard
from uythac.core.events import Rejection, parse

# The packaged scorecard, read as `bootstrap.load_scorecard` reads it by default (without loading the store).
SCORECARD_TEXT = resources.files("uythac.rules").joinpath("scorecard.yaml").read_text(encoding="utf-8")
CARD = scorecard.parse(SCORECARD_TEXT, "rules/scorecard.yaml")

UNIT = {"district_id": "D01", "commune_id": "C0001", "org": "HND"}

VALID: dict[str, dict[str, Any]] = {
    "group.registered": {"event_id": "g1", "type": "group.registered", "occurred_at": "2023-03-01", **UNIT,
                         "group_id": "G1"},
    "group.closed": {"event_id": "g2", "type": "group.closed", "occurred_at": "2023-03-01", **UNIT, "group_id": "G1"},
    "loan.disbursed": {"event_id": "l1", "type": "loan.disbursed", "occurred_at": "2023-03-01", **UNIT,
                       "loan_id": "L1", "group_id": "G1", "amount": 10_000_000, "program": "HN-NGHEO"},
    "repayment.recorded": {"event_id": "r1", "type": "repayment.recorded", "occurred_at": "2023-03-01", **UNIT,
                           "loan_id": "L1", "principal": 1_000_000, "interest": 50_000},
    "loan.overdue_changed": {"event_id": "o1", "type": "loan.overdue_changed", "occurred_at": "2023-03-01", **UNIT,
                             "loan_id": "L1", "overdue_principal": 500_000},
    "savings.deposited": {"event_id": "s1", "type": "savings.deposited", "occurred_at": "2023-03-01", **UNIT,
                          "group_id": "G1", "amount": 50_000},
    "inspection.recorded": {"event_id": "i1", "type": "inspection.recorded", "occurred_at": "2023-03-01", **UNIT,
                            "kind": "post_disbursement", "loan_id": "L1", "result": "compliant"},
    "clock.tick": {"event_id": "t1", "type": "clock.tick", "occurred_at": "2023-03-01T08:00:00+07:00"},
}  # fmt: skip
DROP = object()


def variant(event_type: str, **changes: Any) -> dict[str, Any]:
    """The valid event of this type with some fields changed (`DROP` removes one)."""
    data = dict(VALID[event_type])
    for name, value in changes.items():
        if value is DROP:
            data.pop(name, None)
        else:
            data[name] = value
    return data


def rejection_of(data: Any) -> Rejection:
    raw = json.dumps(data).encode()
    outcome = parse(raw)
    assert isinstance(outcome, Rejection), f"accepted: {raw!r}"
    return outcome
