"""The API's parameters (loaded) and bodies (dumped) as marshmallow schemas: one source for the code,
the validation and the OpenAPI document (apispec reads these same classes).

Ids in parameters follow the event contract (`uythac.schemas.events`: 1-64 characters for an id, 1-32
for a district or commune, of `A-Z a-z 0-9 . _ : -`), so a parameter can name anything an event can and
nothing longer. Every body field a response always carries is `required`, so the document promises it.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from uythac.core.dates import parse_day
from uythac.core.model import OPEN, Status
from uythac.core.scorecard import CLASSES, COMPONENTS
from uythac.core.worklist import WORK_STATUSES, DutyKind
from uythac.schemas.events import ORGS, AreaId, Id, one_of

MAX_PER_PAGE = 500
MAX_PAGE = 1_000_000
MAX_WITHIN_DAYS = 30
STATUSES = tuple(status.value for status in Status)


# fields ---------------------------------------------------------------------------------------------
class Day(fields.Date):
    """A `YYYY-MM-DD` date and nothing looser (no week dates, no `20231130`)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        try:
            return parse_day(value if isinstance(value, str) else "")
        except ValueError as error:
            raise ValidationError("must be a YYYY-MM-DD date") from error


class Whole(fields.Integer):
    """A whole number in a query: ASCII digits only. Python's int() would also take `+2`, `1_0`, `١` and `１`,
    and two spellings of one page would be two answers to keep."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str) or not _DIGITS(value):
            raise ValidationError("must be a whole number written with the digits 0-9")
        number: int = super()._deserialize(value, attr, data, **kwargs)
        return number


_DIGITS = re.compile(r"[0-9]{1,9}").fullmatch


class Points(fields.Float):
    """Points with at most 2 decimals, written as the report writes them: 10, 6.5, 71.25."""

    def _format_num(self, value: Any) -> float:
        return value if isinstance(value, int) else float(value)


class Built(fields.Nested):
    """A part `uythac.core.report` has built already, in its documented shape (a unit's components): documented
    as the nested schema, sent as it is. Dumping the 20 numbers of each unit again took half the time of
    a page of units."""

    # marshmallow's Nested names the first parameter differently from Field: no override can match both
    def _serialize(self, nested_obj: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return nested_obj


def _text(**kwargs: Any) -> fields.String:
    return fields.String(required=True, **kwargs)


def _count() -> fields.Integer:
    return fields.Integer(required=True)


def _day(nullable: bool = False) -> fields.String:
    """A date in a body: already ISO text (report entries are), documented as `format: date`."""
    return fields.String(required=True, allow_none=nullable, metadata={"format": "date"})


def _org() -> fields.String:
    return fields.String(required=True, metadata={"enum": list(ORGS)})


# parameters -----------------------------------------------------------------------------------------
class _Arguments(Schema):
    error_messages = {"unknown": "not a parameter of this endpoint"}  # noqa: RUF012 (marshmallow's own name)


class PageArgs(_Arguments):
    page = Whole(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    per_page = Whole(load_default=50, validate=validate.Range(min=1, max=MAX_PER_PAGE))


UNIT_SORTS = ("place", "score", "-score")


class UnitsArgs(PageArgs):
    district_id = AreaId()
    commune_id = AreaId()
    org = fields.String(validate=one_of(*ORGS))
    class_ = fields.String(data_key="class", validate=one_of(*CLASSES))
    sort = fields.String(
        load_default="place",
        validate=one_of(*UNIT_SORTS),
        metadata={
            "description": "place: by district, commune, org (the default); score: weakest first; -score: strongest "
            "first; equal scores by district, commune, org"
        },
    )


class FlagsArgs(PageArgs):
    district_id = AreaId()
    commune_id = AreaId()
    org = fields.String(validate=one_of(*ORGS))


class WorklistArgs(FlagsArgs):
    within_days = Whole(
        load_default=7,
        validate=validate.Range(min=0, max=MAX_WITHIN_DAYS),
        metadata={"description": "new loans not yet inspected: those with a deadline at most this many days after T"},
    )
    duty = fields.String(validate=one_of(*(kind.value for kind in DutyKind)))
    status = fields.String(validate=one_of(*WORK_STATUSES))


class ReportArgs(_Arguments):
    as_of = Day(metadata={"description": "T (the default) or a month end with a stored report"})


class DistributionArgs(ReportArgs):
    district_id = AreaId()
    org = fields.String(validate=one_of(*ORGS))


class CommunePathArgs(_Arguments):
    commune_id = AreaId(required=True)


class UnitPathArgs(_Arguments):
    commune_id = AreaId(required=True)
    org = fields.String(required=True, validate=one_of(*ORGS))


class LoanPathArgs(_Arguments):
    loan_id = Id(required=True)


# bodies ---------------------------------------------------------------------------------------------
class ComponentSchema(Schema):
    points = Points(required=True)
    max = Points(required=True)
    numerator = _count()
    denominator = _count()


ComponentsSchema = Schema.from_dict(
    {key: fields.Nested(ComponentSchema, required=True) for key in COMPONENTS}, name="ComponentsSchema"
)
ClassCountsSchema = Schema.from_dict({rating: _count() for rating in CLASSES}, name="ClassCountsSchema")


def _distribution() -> fields.Dict:
    """{org: {class: units}} for each org that has a unit, as in the report."""
    return fields.Dict(keys=fields.String(), values=fields.Nested(ClassCountsSchema), required=True)


InactiveLoanDutiesSchema = Schema.from_dict(
    {"pending": _count(), "missed": _count(), "done": _count()}, name="InactiveLoanDutiesSchema"
)
GroupOfYearDutiesSchema = Schema.from_dict(
    {"pending": _count(), "done": _count(), "missed_last_year": _count()}, name="GroupOfYearDutiesSchema"
)


class UnitDutiesSchema(Schema):
    """How many of the unit's inactive loans and groups owe, missed or did their inspection (docs/contract.md §7)."""

    inactive_loan = fields.Nested(InactiveLoanDutiesSchema, required=True)
    group_of_year = fields.Nested(GroupOfYearDutiesSchema, required=True)


class UnitSchema(Schema):
    district_id = _text()
    commune_id = _text()
    org = _org()
    score = Points(required=True)
    class_ = _text(data_key="class", attribute="class", metadata={"enum": list(CLASSES)})
    components = Built(ComponentsSchema, required=True)
    duties = Built(UnitDutiesSchema, required=True)


class FlagSchema(Schema):
    loan_id = _text()
    district_id = _text()
    commune_id = _text()
    org = _org()
    disbursed_on = _day()
    deadline = _day()
    late_inspection_on = _day(nullable=True)


class DutySchema(Schema):
    """An inactive loan's duty of inspection, pending or missed."""

    loan_id = _text()
    district_id = _text()
    commune_id = _text()
    org = _org()
    inactive_since = _day()
    opened_on = _day()
    deadline = _day()
    status = _text(metadata={"enum": ["pending", "missed"]})
    late_inspection_on = _day(nullable=True)


class ReportSchema(Schema):
    as_of = _day(nullable=True)
    units = fields.List(fields.Nested(UnitSchema), required=True)
    flags = fields.List(fields.Nested(FlagSchema), required=True)
    duties = fields.List(fields.Nested(DutySchema), required=True)
    distribution = _distribution()


class UnitSummarySchema(UnitSchema):
    open_flags = _count()


class ExplanationSchema(Schema):
    component = _text(metadata={"enum": list(COMPONENTS)})
    points_lost = Points(required=True)
    en = _text()
    vi = _text()


class ObligationSchema(Schema):
    loan_id = _text()
    district_id = _text()
    commune_id = _text()
    org = _org()
    disbursed_on = _day()
    deadline = _day()
    status = _text(metadata={"enum": [status.value for status in OPEN]})
    days_left = _count()


class WordsSchema(Schema):
    en = _text()
    vi = _text()


class UnitDetailSchema(UnitSummarySchema):
    as_of = _day(nullable=True)
    explanations = fields.List(fields.Nested(ExplanationSchema), required=True)
    to_inspect = fields.Nested(
        WordsSchema,
        required=True,
        allow_none=True,
        metadata={"description": "what the unit must still inspect in T's year, in words; null before any event"},
    )
    flags = fields.List(fields.Nested(FlagSchema), required=True)
    due_soon = fields.List(fields.Nested(ObligationSchema), required=True)


class _PageSchema(Schema):
    as_of = _day(nullable=True)
    page = _count()
    per_page = _count()
    total = _count()


class UnitsPageSchema(_PageSchema):
    items = fields.List(fields.Nested(UnitSummarySchema), required=True)


class CommuneSchema(Schema):
    """A commune as a whole: the units of its organizations the caller may see, by org."""

    as_of = _day(nullable=True)
    district_id = _text()
    commune_id = _text()
    open_flags = _count()
    units = fields.List(fields.Nested(UnitSummarySchema), required=True)


class FlagsPageSchema(_PageSchema):
    items = fields.List(fields.Nested(FlagSchema), required=True)


class WorkItemSchema(Schema):
    duty = _text(metadata={"enum": [kind.value for kind in DutyKind]})
    id = _text(metadata={"description": "the loan_id, or the group_id of a group_of_year item"})
    district_id = _text()
    commune_id = _text()
    org = _org()
    opened_on = _day()
    deadline = _day()
    days_left = fields.Integer(required=True, metadata={"description": "deadline − T: negative when late"})
    status = _text(metadata={"enum": list(WORK_STATUSES)})


class WorklistPageSchema(_PageSchema):
    items = fields.List(fields.Nested(WorkItemSchema), required=True)


class LoanSchema(Schema):
    as_of = _day(nullable=True)
    loan_id = _text()
    district_id = _text()
    commune_id = _text()
    org = _org()
    group_id = _text()
    disbursed_on = _day()
    deadline = _day()
    status = _text(metadata={"enum": list(STATUSES)})
    inspected_on = _day(nullable=True)
    late_inspection_on = _day(nullable=True)
    misuse = fields.Boolean(required=True)


class DistrictSchema(Schema):
    district_id = _text()
    distribution = _distribution()


class DistributionSchema(Schema):
    as_of = _day(nullable=True)
    districts = fields.List(fields.Nested(DistrictSchema), required=True)
    distribution = _distribution()


class AcceptedSchema(Schema):
    accepted = _count()
    event_ids = fields.List(fields.String(), required=True)


class FieldErrorSchema(Schema):
    field = _text()
    detail = _text()


class CheckSchema(Schema):
    ok = fields.Boolean(required=True)
    detail = _text()


class ProblemSchema(Schema):
    """RFC 9457 problem details; `errors` when fields are at fault, `checks` on /readyz, `available`: the
    dates a report can be asked for (404 no-snapshot)."""

    type = _text()
    title = _text()
    status = _count()
    detail = _text()
    instance = _text()
    errors = fields.List(fields.Nested(FieldErrorSchema))
    checks = fields.Dict(keys=fields.String(), values=fields.Nested(CheckSchema))
    available = fields.List(fields.String(metadata={"format": "date"}))


class HealthSchema(Schema):
    status = _text(metadata={"enum": ["ok"]})


class ReadySchema(Schema):
    status = _text(metadata={"enum": ["ready"]})
    checks = fields.Dict(keys=fields.String(), values=fields.Nested(CheckSchema), required=True)
