"""The marshmallow schemas compiled to plain Python predicates: the fast path that accepts a valid event.

marshmallow words a rejection field by field but costs ~35 µs an event; a compiled JSON Schema costs
~15 µs on the busiest event types. These predicates are read off the same field validators as the
JSON Schema files (`schemas/jsonschema.py`), call the schemas' own cross-field hooks, and accept or
refuse in a few µs. Only acceptance is decided here: an event they refuse goes through marshmallow for
its reasons, and a property test holds the two in agreement.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import ValidationError, fields, validate

from uythac.schemas.events import SCHEMAS, Envelope

Check = Callable[[Any], bool]
EventCheck = Callable[[dict[str, Any]], bool]


def _is_int(value: Any) -> bool:
    return type(value) is int  # JSON true is not 1 here, nor 1.0


def _is_str(value: Any) -> bool:
    return type(value) is str


def _rule(rule: Callable[[Any], Any]) -> Check:
    """One marshmallow validator as a predicate on a value already of the field's JSON type."""
    if isinstance(rule, validate.Regexp):
        match = rule.regex.match  # the patterns are anchored (^ … \Z)
        return lambda value: match(value) is not None
    if isinstance(rule, validate.Length):
        low, high = rule.min or 0, rule.max
        return lambda value: low <= len(value) and (high is None or len(value) <= high)
    if isinstance(rule, validate.OneOf):
        choices = frozenset(rule.choices)
        return lambda value: value in choices
    if isinstance(rule, validate.Range):
        low, high = rule.min, rule.max
        return lambda value: (low is None or low <= value) and (high is None or value <= high)
    if isinstance(rule, validate.Equal):
        expected = rule.comparable
        return lambda value: value == expected
    raise TypeError(f"no fast check for {type(rule).__name__}: add one here")


def field_check(field: fields.Field[Any]) -> Check:
    """The predicate of one field: its JSON type, its validators, and its own parsing (dates)."""
    checks: list[Check] = [_is_int if isinstance(field, fields.Integer) else _is_str]
    checks += [_rule(rule) for rule in field.validators]
    parse = getattr(field, "fast_parse", None)
    if parse is not None:
        checks.append(_parses(parse))
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda value: first(value) and second(value)
    return lambda value: all(check(value) for check in checks)


def _parses(parse: Callable[[str], Any]) -> Check:
    def check(value: Any) -> bool:
        try:
            parse(value)
        except ValueError:
            return False
        return True

    return check


def event_check(schema_class: type[Envelope]) -> EventCheck:
    """The predicate of one event type: exactly its fields, each valid, and its cross-field hooks."""
    declared = schema_class._declared_fields
    checks = {name: field_check(field) for name, field in declared.items()}
    allowed = frozenset(checks)
    required = frozenset(name for name, field in declared.items() if field.required)
    schema = schema_class()
    hooks = [getattr(schema, name) for name, *_ in schema_class._hooks["validates_schema"]]

    def check(data: dict[str, Any]) -> bool:
        keys = data.keys()
        if not (required <= keys and keys <= allowed):
            return False
        for name, value in data.items():
            if not checks[name](value):
                return False
        try:
            for hook in hooks:
                hook(data)
        except ValidationError:
            return False
        return True

    return check


def all_checks() -> dict[str, EventCheck]:
    return {event_type: event_check(schema) for event_type, schema in SCHEMAS.items()}
