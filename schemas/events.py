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

    def __init__(self, minimum: int, **kwargs: Any) -> None:
        rule = validate.Range(min=minimum, max=MAX_AMOUNT, error=f"must be between {minimum} and {MAX_AMOUNT}")
        super().__init__(strict=True, validate=rule, metadata={"description": self.DESCRIPTION}, **kwargs)

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


class Envelope(Schema):
    """Fields on every event."""

    TYPE: ClassVar[str] = ""
    JSON_SCHEMA_EXTRA: ClassVar[dict[str, Any]] = {}

    event_id = Id(required=True)
    type = fields.String(required=True)
    occurred_at = OccurredAt(required=True)
    recorded_at = RecordedAt()
    schema_version = fields.Integer(strict=True, validate=validate.Equal(1, error="must be 1"))

    @validates_schema
    @fast_rule("v_type == self.TYPE")
    def _type_matches(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("type") != self.TYPE:
            raise ValidationError(f"must be {self.TYPE}", "type")


class UnitEnvelope(Envelope):
    """Events that belong to a unit: a (commune, organization)."""

    district_id = AreaId(required=True)
    commune_id = AreaId(required=True)
    org = fields.String(required=True, validate=one_of(*ORGS))


class ClockTick(Envelope):
    """Nothing happened; only moves the clock. Area fields are allowed but mean nothing."""

    TYPE = "clock.tick"
    district_id = AreaId()
    commune_id = AreaId()
    org = fields.String(validate=one_of(*ORGS))


class GroupRegistered(UnitEnvelope):
    TYPE = "group.registered"
    group_id = Id(required=True)


class GroupClosed(UnitEnvelope):
    TYPE = "group.closed"
    group_id = Id(required=True)


class LoanDisbursed(UnitEnvelope):
    TYPE = "loan.disbursed"
    loan_id = Id(required=True)
    group_id = Id(required=True)
    amount = Money(1, required=True)
    program = fields.String(validate=validate.Length(min=1, max=32, error="must be 1-32 characters"))


class RepaymentRecorded(UnitEnvelope):
    TYPE = "repayment.recorded"
    JSON_SCHEMA_EXTRA: ClassVar[dict[str, Any]] = {  # interest first: most payments include it
        "anyOf": [
            {"properties": {"interest": {"minimum": 1}}},
            {"properties": {"principal": {"minimum": 1}}},
        ]
    }
    loan_id = Id(required=True)
    principal = Money(0, required=True)
    interest = Money(0, required=True)

    @validates_schema
    @fast_rule("v_principal != 0 or v_interest != 0")
    def _not_both_zero(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("principal") == 0 and data.get("interest") == 0:
            raise ValidationError("principal and interest must not both be 0", "principal")


class OverdueChanged(UnitEnvelope):
    TYPE = "loan.overdue_changed"
    loan_id = Id(required=True)
    overdue_principal = Money(0, required=True)


class SavingsDeposited(UnitEnvelope):
    TYPE = "savings.deposited"
    group_id = Id(required=True)
    amount = Money(1, required=True)


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
    kind = fields.String(required=True, validate=one_of(*LOAN_KINDS, "periodic"))
    loan_id = Id()
    group_id = Id()
    result = fields.String(validate=one_of("compliant", "misuse"))

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
