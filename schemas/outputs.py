"""JSON Schema (draft-07) of the messages the worker publishes (`core.outputs`) on `uythac.flags` and
`uythac.scores`: one document per message type, every field described, with an example each.

Written here rather than rendered from marshmallow like the input schemas: the messages are made by
`core.outputs.messages`, never loaded. `jsonschema.write` publishes them beside the input schemas, and a test
validates every message of a replay that makes each type against them.
"""

from __future__ import annotations

from typing import Any

from uythac.core.scorecard import CLASSES, COMPONENTS
from uythac.schemas.events import AREA_PATTERN, ID_PATTERN, ORGS

DRAFT = "http://json-schema.org/draft-07/schema#"
ID_BASE = "https://uythac.vbsp.local/schemas/"
DAY = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
CLOCK = "clock:<day> when the clock T passed it (the day is T, or the first month end the batch passed)"


def _day(text: str, nullable: bool = False) -> dict[str, Any]:
    return {"type": ["string", "null"] if nullable else "string", "pattern": DAY, "description": text}


def _id(text: str, pattern: str = ID_PATTERN) -> dict[str, Any]:
    return {"type": "string", "pattern": pattern.replace("\\Z", "$"), "description": text}


def _document(message_type: str, description: str, properties: dict[str, Any], example: dict[str, Any]) -> Any:
    return {
        "$schema": DRAFT,
        "$id": f"{ID_BASE}{message_type}.json",
        "title": message_type,
        "description": description,
        "type": "object",
        "properties": properties,
        "required": [name for name, field in properties.items() if not field.get("optional")],
        "additionalProperties": False,
        "examples": [example],
    }


EVENT_ID = _id(
    "This message's own id, uythac:<store epoch>:<n>. A message sent again after a crash keeps its id: a consumer "
    "that dedupes by event_id sees each message once.",
    "^uythac:[0-9a-f]+:[0-9]+$",
)
UNIT = {
    "district_id": _id("The district of the loan's (or group's) unit.", AREA_PATTERN),
    "commune_id": _id("The commune of the unit; also the message's Kafka key.", AREA_PATTERN),
    "org": {"type": "string", "enum": list(ORGS), "description": "The organization of the unit (commune_id, org)."},
}
LOAN = {"loan_id": _id("The loan (the bank's id; no borrower data).")}
DISBURSED = {
    "disbursed_on": _day("The loan's disbursement (its business date)."),
    "deadline": _day("The last day of the loan's 30-day inspection: disbursed_on + 30."),
}
DUTY = {
    "duty": {"const": "inactive_loan", "description": "Which inspection duty: an inactive loan's."},
    "inactive_since": _day("The loan's last transaction: its quiet stretch began the day after."),
    "opened_on": _day("The day the duty opened: inactive_since + 90."),
    "deadline": _day("The duty's last day: opened_on + 30. A loan inspection dated from opened_on to it does it."),
}
FROM_EVENT = "The event_id of that inspection."
UNIT_EXAMPLE = {"district_id": "D01", "commune_id": "C0001", "org": "HND"}
DUTY_EXAMPLE = {
    "loan_id": "L000123", **UNIT_EXAMPLE, "duty": "inactive_loan",
    "inactive_since": "2024-04-05", "opened_on": "2024-07-04", "deadline": "2024-08-03",
}  # fmt: skip
LOAN_EXAMPLE = {"loan_id": "L000123", **UNIT_EXAMPLE, "disbursed_on": "2024-03-05", "deadline": "2024-04-04"}


def _flags(
    message_type: str, meaning: str, occurred_at: str, cause: str, fields: dict[str, Any], example: dict[str, Any]
) -> Any:
    properties = {
        "event_id": EVENT_ID,
        "type": {"const": message_type, "description": "The message's type."},
        "occurred_at": _day(occurred_at),
        **fields,
        "cause": {"type": "string", "minLength": 1, "description": cause},
    }
    full_example = {"event_id": "uythac:5f3a9c0d1e2b:1042", "type": message_type, **example}
    return _document(message_type, f"On uythac.flags, keyed by commune_id. {meaning}", properties, full_example)


POINTS = {"type": "number", "minimum": 0, "maximum": 100}
SCORE = {**POINTS, "description": "The unit's score out of 100, two decimals at most (87.5, 71.25)."}
RATING = {"type": "string", "enum": list(CLASSES), "description": "The class of the score (tot, kha, trung_binh, yeu)."}
COMPONENT = {
    "type": "object",
    "properties": {
        "points": {**POINTS, "description": "The points the unit has for this component."},
        "max": {**POINTS, "description": "The component's most points (the scorecard's)."},
        "numerator": {"type": "integer", "minimum": 0, "description": "What the component's rate counts."},
        "denominator": {"type": "integer", "minimum": 0, "description": "Out of how many."},
    },
    "required": ["points", "max", "numerator", "denominator"],
    "additionalProperties": False,
}
COUNTS = {  # what each component's numerator / denominator count (docs/contract.md, the scorecard)
    "post_disbursement_inspection": "Loans inspected within 30 days / loans whose deadline fell in the scoring window.",
    "periodic_inspection": "Seasoned active groups inspected in the scoring window / seasoned active groups.",
    "overdue_ratio": "Overdue principal / outstanding principal, in VND.",
    "inactive_loans": "Loans with no transaction for 90 days / seasoned loans still owing.",
    "savings_activity": "Seasoned active groups with a deposit in the last 30 days / seasoned active groups.",
}
COMPONENTS_EXAMPLE = {
    "post_disbursement_inspection": {"points": 7.5, "max": 10, "numerator": 3, "denominator": 4},
    "periodic_inspection": {"points": 10, "max": 10, "numerator": 2, "denominator": 2},
    "overdue_ratio": {"points": 35, "max": 35, "numerator": 0, "denominator": 150000000},
    "inactive_loans": {"points": 20, "max": 20, "numerator": 0, "denominator": 4},
    "savings_activity": {"points": 25, "max": 25, "numerator": 2, "denominator": 2},
}
OUTPUTS: dict[str, Any] = {
    "flag.raised": _flags(
        "flag.raised",
        "The loan's 30-day post-disbursement inspection was missed: none is dated by its deadline.",
        "The loan's deadline, the day the inspection was due; not the day the flag was raised (see cause).",
        f"{CLOCK}: the day after the deadline at the earliest; or the event_id of the loan.disbursed that arrived "
        "after its deadline had passed.",
        {**LOAN, **UNIT, **DISBURSED},
        {"occurred_at": "2024-04-04", **LOAN_EXAMPLE, "cause": "clock:2024-04-05"},
    ),
    "flag.cleared": _flags(
        "flag.cleared",
        "An inspection dated by the deadline was entered after the flag was raised: the flag is withdrawn.",
        "The date of that on-time inspection.",
        FROM_EVENT,
        {**LOAN, **UNIT, **DISBURSED},
        {"occurred_at": "2024-04-03", **LOAN_EXAMPLE, "cause": "insp-L000123-1"},
    ),
    "misuse.found": _flags(
        "misuse.found",
        "An inspection found a loan's money misused (informational; once per loan or group). It names the loan, "
        "with its disbursement and deadline once the loan is known; or the group, when a periodic inspection "
        "named no loan.",
        "The date of the inspection that found it.",
        FROM_EVENT,
        {
            "loan_id": {**LOAN["loan_id"], "optional": True},
            "group_id": {**_id("The group inspected, when no loan was named."), "optional": True},
            **UNIT,
            **{name: {**field, "optional": True} for name, field in DISBURSED.items()},
        },
        {"occurred_at": "2024-03-20", **LOAN_EXAMPLE, "cause": "insp-L000123-1"},
    ),
    "duty.opened": _flags(
        "duty.opened",
        "The loan has had no transaction for 90 days: it must be inspected by deadline.",
        "The day the duty opened (opened_on).",
        f"{CLOCK}; or the event_id of the event that made it known.",
        {**LOAN, **UNIT, **DUTY},
        {"occurred_at": "2024-07-04", **DUTY_EXAMPLE, "cause": "clock:2024-07-04"},
    ),
    "duty.missed": _flags(
        "duty.missed",
        "The duty's deadline passed without an inspection of the loan dated from opened_on to deadline.",
        "The duty's deadline, the day the inspection was due; not the day it was found missed (see cause).",
        f"{CLOCK}; or the event_id of the event that made it known.",
        {
            **LOAN,
            **UNIT,
            **DUTY,
            "late_inspection_on": _day("The first inspection after the deadline, or null.", True),
        },
        {"occurred_at": "2024-08-03", **DUTY_EXAMPLE, "late_inspection_on": None, "cause": "clock:2024-08-31"},
    ),
    "duty.done": _flags(
        "duty.done",
        "An inspection of the loan dated from opened_on to deadline was entered (perhaps after duty.missed).",
        "The date of that inspection.",
        FROM_EVENT,
        {**LOAN, **UNIT, **DUTY},
        {"occurred_at": "2024-07-20", **DUTY_EXAMPLE, "cause": "insp-L000123-2"},
    ),
    "score.changed": _document(
        "score.changed",
        "On uythac.scores, keyed by commune_id. A unit's score or class changed, or the unit was reported for the "
        "first time.",
        {
            "event_id": EVENT_ID,
            "type": {"const": "score.changed", "description": "The message's type."},
            "as_of": _day("The clock T after the batch that changed it: the day the score is of.", True),
            **UNIT,
            "score": SCORE,
            "class": RATING,
            "previous": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "properties": {"score": SCORE, "class": RATING},
                        "required": ["score", "class"],
                        "additionalProperties": False,
                    },
                ],
                "description": "The score and class before, or null for a unit reported for the first time.",
            },
            "components": {
                "type": "object",
                "properties": {key: {**COMPONENT, "description": COUNTS[key]} for key in COMPONENTS},
                "required": list(COMPONENTS),
                "additionalProperties": False,
                "description": "Each component of the score, as in the report.",
            },
        },
        {
            "event_id": "uythac:5f3a9c0d1e2b:1043",
            "type": "score.changed",
            "as_of": "2024-04-05",
            **UNIT_EXAMPLE,
            "score": 97.5,
            "class": "tot",
            "previous": {"score": 100, "class": "tot"},
            "components": COMPONENTS_EXAMPLE,
        },
    ),
}


def output_schemas() -> dict[str, Any]:
    """Each output message type's document, without the `optional` marks that chose its required fields."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items() if k != "optional"}
        return [plain(v) for v in value] if isinstance(value, list) else value

    return {message_type: plain(document) for message_type, document in OUTPUTS.items()}
