"""The scorecard: configuration written in `rules/scorecard.yaml`, and exact points from ratios.

Points are kept as integer hundredths. A ratio is compared with a band and turned into points with
integer arithmetic only, so no binary-float error can move a band edge or a rounding.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import timedelta
from fractions import Fraction
from functools import cached_property
from typing import Any

import yaml
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from uythac.errors import ConfigError

COMPONENTS = (
    "post_disbursement_inspection",
    "periodic_inspection",
    "overdue_ratio",
    "inactive_loans",
    "savings_activity",
)
CLASSES = ("tot", "kha", "trung_binh", "yeu")


def percent(text: str) -> Fraction:
    """'0.5%' → 1/200, exactly."""
    if not text.endswith("%"):
        raise ValueError(f"{text!r} is not a percentage")
    return Fraction(text[:-1]) / 100


def hundredths(points: Fraction) -> int:
    """Points rounded half up to 2 decimals, as an integer count of hundredths."""
    scaled = points * 100
    return (2 * scaled.numerator + scaled.denominator) // (2 * scaled.denominator)


def as_number(hundredths_: int) -> int | float:
    """Hundredths as the JSON number the report shows: 10, 6.5, 71.25."""
    if hundredths_ % 100 == 0:
        return hundredths_ // 100
    return hundredths_ / 100  # repr of n/100 is its 2-decimal form


@dataclass(frozen=True)
class Band:
    at_most: Fraction | None  # None: otherwise
    points: Fraction


@dataclass(frozen=True)
class Component:
    key: str
    max: Fraction
    bands: tuple[Band, ...]  # empty: linear

    @cached_property
    def full(self) -> int:
        """The maximum, in hundredths."""
        return hundredths(self.max)

    @cached_property
    def _steps(self) -> tuple[tuple[int, int, int], ...]:
        """Each band as (p, q, hundredths) for "ratio ≤ p/q" ("otherwise": 1/0, which every ratio meets)."""
        return tuple(
            (1, 0, hundredths(band.points))
            if band.at_most is None
            else (band.at_most.numerator, band.at_most.denominator, hundredths(band.points))
            for band in self.bands
        )

    def points(self, numerator: int, denominator: int) -> int:
        """Hundredths of a point for this ratio; a denominator of 0 gives full points.

        In integers, exactly as with fractions (a unit is scored ~0.2 M times in a province-year's month
        ends, and Fraction arithmetic is ten times slower): n/d ≤ p/q is n·q ≤ p·d, and the max M = a/b
        times n/d, rounded half up to hundredths, is ⌊(2·100·a·n + b·d) / (2·b·d)⌋.
        """
        if denominator == 0:
            return self.full
        if not self.bands:
            top, bottom = 100 * self.max.numerator * numerator, self.max.denominator * denominator
            return (2 * top + bottom) // (2 * bottom)
        for p, q, points in self._steps:
            if numerator * q <= p * denominator:
                return points
        return 0


@dataclass(frozen=True)
class Windows:
    """The scorecard's windows in days, as written in rules/scorecard.yaml; each also as a timedelta."""

    scoring_days: int
    inspection_deadline_days: int
    due_soon_days: int
    group_seasoning_days: int
    inactive_days: int
    inactive_inspection_days: int
    savings_seasoning_days: int
    savings_days: int

    @cached_property
    def scoring(self) -> timedelta:
        return timedelta(days=self.scoring_days)

    @cached_property
    def inspection_deadline(self) -> timedelta:
        return timedelta(days=self.inspection_deadline_days)

    @cached_property
    def due_soon(self) -> timedelta:
        return timedelta(days=self.due_soon_days)

    @cached_property
    def group_seasoning(self) -> timedelta:
        return timedelta(days=self.group_seasoning_days)

    @cached_property
    def inactive(self) -> timedelta:
        return timedelta(days=self.inactive_days)

    @cached_property
    def inactive_inspection(self) -> timedelta:
        return timedelta(days=self.inactive_inspection_days)

    @cached_property
    def savings_seasoning(self) -> timedelta:
        return timedelta(days=self.savings_seasoning_days)

    @cached_property
    def savings(self) -> timedelta:
        return timedelta(days=self.savings_days)


@dataclass(frozen=True)
class Scorecard:
    windows: Windows
    components: tuple[Component, ...]
    classes: tuple[tuple[int, str], ...]  # (at least, in hundredths; class), highest first
    digest: str
    # The digest the same card had before the duties' window (`inactive_inspection_days`) joined the scorecard:
    # a store of layout 4 was bound to that one (the step to layout 5 binds it to `digest`).
    digest_before_duties: str = ""

    def classify(self, score_hundredths: int) -> str:
        for at_least, name in self.classes:
            if score_hundredths >= at_least:
                return name
        return self.classes[-1][1]


class _BandSchema(Schema):
    at_most = fields.String()
    otherwise = fields.Boolean()
    points = fields.Decimal(required=True, validate=validate.Range(min=0))

    @validates_schema
    def _one_bound(self, data: dict[str, Any], **_: Any) -> None:
        if ("at_most" in data) == bool(data.get("otherwise")):
            raise ValidationError("give either at_most or otherwise: true", "at_most")
        if "at_most" in data:
            try:
                percent(data["at_most"])
            except ValueError as error:
                raise ValidationError(str(error), "at_most") from error


class _ComponentSchema(Schema):
    max = fields.Decimal(required=True, validate=validate.Range(min=0))
    points = fields.String(required=True, validate=validate.OneOf(["linear", "bands"]))
    bands = fields.List(fields.Nested(_BandSchema))

    @validates_schema
    def _bands_when_banded(self, data: dict[str, Any], **_: Any) -> None:
        if (data["points"] == "bands") != bool(data.get("bands")):
            raise ValidationError("bands are required exactly when points is bands", "bands")


class _ClassSchema(Schema):
    at_least = fields.Decimal(required=True)
    class_ = fields.String(required=True, data_key="class", validate=validate.OneOf(CLASSES))


class _ScorecardSchema(Schema):
    windows = fields.Dict(
        keys=fields.String(validate=validate.OneOf(list(Windows.__dataclass_fields__))),
        values=fields.Integer(strict=True, validate=validate.Range(min=1, max=3660)),
        required=True,
    )
    components = fields.Dict(
        keys=fields.String(validate=validate.OneOf(COMPONENTS)),
        values=fields.Nested(_ComponentSchema),
        required=True,
    )
    classes = fields.List(fields.Nested(_ClassSchema), required=True, validate=validate.Length(min=1))

    @validates_schema
    def _complete(self, data: dict[str, Any], **_: Any) -> None:
        missing = set(Windows.__dataclass_fields__) - set(data.get("windows", {}))
        if missing:
            raise ValidationError(f"missing {', '.join(sorted(missing))}", "windows")
        if set(data.get("components", {})) != set(COMPONENTS):
            raise ValidationError(f"must define exactly {', '.join(COMPONENTS)}", "components")


def parse(text: str, source: str) -> Scorecard:
    """A scorecard from the text of its YAML file; a one-line ConfigError naming `source` and each field at fault
    if it is not one."""
    try:
        data = _ScorecardSchema().load(yaml.safe_load(text))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"scorecard {source}: not YAML{where}: {problem}") from error
    except ValidationError as error:
        raise ConfigError(f"scorecard {source}: {_one_line(error.messages)}") from error
    before_duties = {**data, "windows": {k: v for k, v in data["windows"].items() if k != "inactive_inspection_days"}}
    return replace(_build(data, _digest(data)), digest_before_duties=_digest(before_duties))


def _digest(data: dict[str, Any]) -> str:
    """What the scorecard says, not how it is written: comments, spacing and key order leave it as it is."""
    canonical = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _one_line(messages: Any, path: str = "") -> str:
    """marshmallow's nested {field: [message]} as `a.b: message; c: message`."""
    if isinstance(messages, dict):
        return "; ".join(_one_line(value, f"{path}.{key}" if path else str(key)) for key, value in messages.items())
    texts = messages if isinstance(messages, list) else [messages]
    words = " ".join(str(text).rstrip(".") for text in texts)
    return f"{path}: {words}" if path else words


def _build(data: dict[str, Any], digest: str) -> Scorecard:
    components = tuple(
        Component(
            key=key,
            max=Fraction(data["components"][key]["max"]),
            bands=tuple(
                Band(percent(b["at_most"]) if "at_most" in b else None, Fraction(b["points"]))
                for b in data["components"][key].get("bands", [])
            ),
        )
        for key in COMPONENTS
    )
    classes = sorted(((hundredths(Fraction(c["at_least"])), c["class_"]) for c in data["classes"]), reverse=True)
    return Scorecard(Windows(**data["windows"]), components, tuple(classes), digest)
