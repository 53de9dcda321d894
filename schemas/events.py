"""The event contract (docs/contract.md) as marshmallow schemas: the one place its field rules are written.

`uythac.core.events` uses these schemas for the field-level reasons of a rejection, and compiles the JSON
Schema generated from them (`schemas/jsonschema.py`) for the fast path. Each schema may carry
`JSON_SCHEMA_EXTRA`, the JSON Schema form of its cross-field rules (`validates_schema`), and each such
hook its `fast_rule`, the same rule as a Python expression for the fast path (`schemas/fastcheck.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from uythac.core.dates import DATE_PATTERN, DATETIME_PATTERN, business_date, date_and_offset

ORGS = ("HND", "HPN", "HCCB", "DTN")
MAX_AMOUNT = 10_000_000_000  # the largest loan the contract allows; also bounds every other money field
ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}\Z"
AREA_PATTERN = r"^[A-Za-z0-9._:-]{1,32}\Z"
ID_RULE = "1-64 characters of A-Z a-z 0-9 . _ : -"
AREA_RULE = "1-32 characters of A-Z a-z 0-9 . _ : -"

Hook = TypeVar("Hook", bound=Callable[..., None])


def fast_rule(expression: str) -> Callable[[Hook], Hook]:
    """Give a `validates_schema` hook its rule as a Python expression, true when the event passes.

    The fast path writes the expression into its check instead of calling the hook (a method call ready
    to raise costs more than all the field checks around it). It reads each required field as
    `v_<name>`, every field having passed its own checks, `data` (the event) and `self` (the schema);
    a test holds it to the hook.
    """

    def attach(hook: Hook) -> Hook:
        hook.fast_rule = expression  # type: ignore[attr-defined]
        return hook

    return attach


class Id(fields.String):
    """An identifier: `event_id`, `loan_id`, `group_id`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=validate.Regexp(ID_PATTERN, error=f"must be {ID_RULE}"), **kwargs)


class AreaId(fields.String):
    """A `district_id` or `commune_id`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=validate.Regexp(AREA_PATTERN, error=f"must be {AREA_RULE}"), **kwargs)


class Money(fields.Integer):
    """Whole VND. JSON `true` and `1.0` are not integers here."""

    DESCRIPTION = "Whole VND, written as a JSON integer without a fraction or exponent: 496, not 496.0 (refused)."

    def __init__(self, minimum: int, what: str, **kwargs: Any) -> None:
        rule = validate.Range(min=minimum, max=MAX_AMOUNT, error=f"must be between {minimum} and {MAX_AMOUNT}")
        super().__init__(strict=True, validate=rule, metadata={"description": f"{what} {self.DESCRIPTION}"}, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._validated(value)


class OccurredAt(fields.String):
    """A `YYYY-MM-DD` date or an RFC 3339 date-time; its business date is taken in UTC+07:00."""

    json_patterns: ClassVar[tuple[str, ...]] = (DATE_PATTERN, DATETIME_PATTERN)
    fast_parse = staticmethod(business_date)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(value, attr, data, **kwargs)
        try:
            business_date(text)
        except ValueError as error:
            raise ValidationError(f"must be YYYY-MM-DD or an RFC 3339 date-time ({error})") from error
        return text


class RecordedAt(fields.String):
    """An RFC 3339 date-time (informational: only its validity matters, not its value)."""

    json_patterns: ClassVar[tuple[str, ...]] = (DATETIME_PATTERN,)
    fast_parse = staticmethod(date_and_offset)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(value, attr, data, **kwargs)
        try:
            date_and_offset(text)
        except ValueError as error:
            raise ValidationError(f"must be an RFC 3339 date-time ({error})") from error
        return text


def one_of(*choices: str) -> validate.OneOf:
    return validate.OneOf(choices, error=f"must be one of {' '.join(choices)}")


def _said(text: str) -> dict[str, str]:
    return {"description": text}


BUSINESS_DATE = (
    "The business date the event happened on: YYYY-MM-DD, or an RFC 3339 date-time whose date is taken in "
    "Vietnam (UTC+07:00): 2024-03-05T23:30:00Z is 2024-03-06. It decides every deadline; it may not be after "
    "today in Vietnam (the latest day accepted)."
)


class Envelope(Schema):
    """Fields on every event."""

    TYPE: ClassVar[str] = ""
    JSON_SCHEMA_EXTRA: ClassVar[dict[str, Any]] = {}
    EXAMPLE: ClassVar[dict[str, Any]] = {}  # one valid event of the type, for the published schema and examples

    event_id = Id(
        required=True,
        metadata=_said(
            "The sender's unique id of this event. The same id with the same content again is a duplicate and is "
            "ignored; with other content it is refused (a conflict)."
        ),
    )
    type = fields.String(required=True)
    occurred_at = OccurredAt(required=True, metadata=_said(BUSINESS_DATE))
    recorded_at = RecordedAt(
        metadata=_said("When the sender's system recorded the event (RFC 3339, informational: only checked).")
    )
    schema_version = fields.Integer(
        strict=True, validate=validate.Equal(1, error="must be 1"), metadata=_said("The contract's version: 1.")
    )

    @validates_schema
    @fast_rule("v_type == self.TYPE")
    def _type_matches(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("type") != self.TYPE:
            raise ValidationError(f"must be {self.TYPE}", "type")


class UnitEnvelope(Envelope):
    """Events that belong to a unit: a (commune, organization)."""

    district_id = AreaId(required=True, metadata=_said("The district of the unit (the bank's district code)."))
    commune_id = AreaId(required=True, metadata=_said("The commune of the unit (the bank's commune code)."))
    org = fields.String(
        required=True,
        validate=one_of(*ORGS),
        metadata=_said(
            "The entrusted organization of the unit: HND Farmers' Association, HPN Women's Union, HCCB Veterans' "
            "Association, DTN Youth Union. A unit is (commune_id, org)."
        ),
    )


class ClockTick(Envelope):
    """Nothing happened; only moves the clock T to occurred_at (never back). Area fields are allowed but mean
    nothing."""

    TYPE = "clock.tick"
    EXAMPLE: ClassVar[dict[str, Any]] = {"event_id": "tick-2024-03-31", "type": TYPE, "occurred_at": "2024-03-31"}
    district_id = AreaId(metadata=_said("Allowed, means nothing."))
    commune_id = AreaId(metadata=_said("Allowed, means nothing."))
    org = fields.String(validate=one_of(*ORGS), metadata=_said("Allowed, means nothing."))


_UNIT = {"district_id": "D01", "commune_id": "C0001", "org": "HND"}


class GroupRegistered(UnitEnvelope):
    """A savings-and-loan group was registered with the unit: from then on it owes a periodic inspection each
    year."""

    TYPE = "group.registered"
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "event_id": "grp-G0001-reg", "type": TYPE, "occurred_at": "2023-01-10", **_UNIT, "group_id": "G0001"
    }  # fmt: skip
    group_id = Id(required=True, metadata=_said("The group registered."))


class GroupClosed(UnitEnvelope):
    """A group was closed: it owes no periodic inspection after its closing date."""

    TYPE = "group.closed"
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "event_id": "grp-G0001-close", "type": TYPE, "occurred_at": "2024-06-30", **_UNIT, "group_id": "G0001"
    }  # fmt: skip
    group_id = Id(required=True, metadata=_said("The group closed."))


class LoanDisbursed(UnitEnvelope):
    """A loan was disbursed to a member of a group: its post-disbursement inspection is due within 30 days of
    occurred_at (the deadline is occurred_at + 30)."""

    TYPE = "loan.disbursed"
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "event_id": "disb-L000123", "type": TYPE, "occurred_at": "2024-03-05T09:30:00+07:00",
        "recorded_at": "2024-03-05T09:31:12+07:00", "schema_version": 1, **_UNIT,
        "loan_id": "L000123", "group_id": "G0001", "amount": 50000000, "program": "ho_ngheo",
    }  # fmt: skip
    loan_id = Id(required=True, metadata=_said("The loan disbursed (the bank's id: no borrower data)."))
    group_id = Id(required=True, metadata=_said("The group of the borrower."))
    amount = Money(1, "The amount disbursed (50 000 000 VND: 50000000).", required=True)
    program = fields.String(
        validate=validate.Length(min=1, max=32, error="must be 1-32 characters"),
        metadata=_said("The lending program (informational)."),
    )


class RepaymentRecorded(UnitEnvelope):
    """A repayment of a loan: principal, interest or both (not both 0). Any repayment is activity of the loan."""

    TYPE = "repayment.recorded"
    JSON_SCHEMA_EXTRA: ClassVar[dict[str, Any]] = {  # interest first: most payments include it
        "anyOf": [
            {"properties": {"interest": {"minimum": 1}}},
            {"properties": {"principal": {"minimum": 1}}},
        ]
    }
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "event_id": "rep-L000123-2024-04", "type": TYPE, "occurred_at": "2024-04-05", **_UNIT,
        "loan_id": "L000123", "principal": 1000000, "interest": 275000,
    }  # fmt: skip
    loan_id = Id(required=True, metadata=_said("The loan repaid."))
    principal = Money(0, "The principal repaid.", required=True)
    interest = Money(0, "The interest paid.", required=True)

    @validates_schema
    @fast_rule("v_principal != 0 or v_interest != 0")
    def _not_both_zero(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("principal") == 0 and data.get("interest") == 0:
            raise ValidationError("principal and interest must not both be 0", "principal")


class OverdueChanged(UnitEnvelope):
    """The bank's overdue principal of a loan changed (0: no longer overdue); it counts in the unit's overdue
    ratio."""

    TYPE = "loan.overdue_changed"
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "event_id": "od-L000123-2024-05-06", "type": TYPE, "occurred_at": "2024-05-06", **_UNIT,
        "loan_id": "L000123", "overdue_principal": 1000000,
    }  # fmt: skip
    loan_id = Id(required=True, metadata=_said("The loan."))
    overdue_principal = Money(0, "The loan's whole overdue principal now (not a change).", required=True)


class SavingsDeposited(UnitEnvelope):
    """A group's members deposited savings: the unit's savings activity."""

    TYPE = "savings.deposited"
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "event_id": "sav-G0001-2024-03", "type": TYPE, "occurred_at": "2024-03-15", **_UNIT,
        "group_id": "G0001", "amount": 200000,
    }  # fmt: skip
    group_id = Id(required=True, metadata=_said("The group that deposited."))
    amount = Money(1, "The amount deposited.", required=True)


LOAN_KINDS = ("post_disbursement", "follow_up")  # inspections of one loan: they name it and no group


class InspectionRecorded(UnitEnvelope):
    """An inspection done on the business date. `post_disbursement`: the 30-day inspection of a loan;
    `follow_up`: any other inspection of one loan (of an inactive loan, say); both name the loan (`loan_id`)
    and no group. `periodic`: an inspection of a group (`group_id`), naming a loan of it too if it found that
    loan's money misused."""

    TYPE = "inspection.recorded"
    JSON_SCHEMA_EXTRA: ClassVar[dict[str, Any]] = {
        "if": {"properties": {"kind": {"enum": list(LOAN_KINDS)}}},
        "then": {"required": ["loan_id"], "not": {"required": ["group_id"]}},
        "else": {"required": ["group_id"]},
    }
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "event_id": "insp-L000123-1", "type": TYPE, "occurred_at": "2024-03-20", **_UNIT,
        "kind": "post_disbursement", "loan_id": "L000123", "result": "compliant",
    }  # fmt: skip
    kind = fields.String(
        required=True,
        validate=one_of(*LOAN_KINDS, "periodic"),
        metadata=_said(
            "post_disbursement: the loan's 30-day inspection; follow_up: another inspection of one loan; "
            "periodic: a group's inspection of the year."
        ),
    )
    loan_id = Id(metadata=_said("The loan inspected (post_disbursement, follow_up), or found misused (periodic)."))
    group_id = Id(metadata=_said("The group inspected (periodic only)."))
    result = fields.String(
        validate=one_of("compliant", "misuse"),
        metadata=_said("misuse: the money was found misused (a misuse.found message); compliant by default."),
    )

    @validates_schema
    @fast_rule(
        f"(v_kind not in {LOAN_KINDS!r} or ('loan_id' in data and 'group_id' not in data))"
        " and ('group_id' in data or v_kind != 'periodic')"
    )
    def _names_its_subject(self, data: dict[str, Any], **_: Any) -> None:
        kind = data.get("kind")
        if kind in LOAN_KINDS and "loan_id" not in data:
            raise ValidationError(f"required when kind is {kind}", "loan_id")
        if kind in LOAN_KINDS and "group_id" in data:
            raise ValidationError(f"not allowed when kind is {kind} (an inspection of one loan)", "group_id")
        if kind == "periodic" and "group_id" not in data:
            raise ValidationError("required when kind is periodic", "group_id")


SCHEMAS: dict[str, type[Envelope]] = {
    schema.TYPE: schema
    for schema in (
        GroupRegistered,
        GroupClosed,
        LoanDisbursed,
        RepaymentRecorded,
        OverdueChanged,
        SavingsDeposited,
        InspectionRecorded,
        ClockTick,
    )
}
EVENT_TYPES = tuple(SCHEMAS)
