"""The marshmallow schemas compiled to one plain Python function per event type: the fast path.

marshmallow words a rejection field by field but costs ~35 µs an event. These functions are written
from the same field validators as the JSON Schema files (`schemas/jsonschema.py`) and the schemas' own
cross-field rules (each hook's `fast_rule` expression, or else the hook itself), and accept or refuse a
decoded event in ~2 µs. Only acceptance is decided here: an event they refuse goes through marshmallow
for its reasons, and a property test holds the two in agreement. A check returns the event's business
date, parsed once on the way (None: refused). `source(event_type)` shows the code written for a type.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

from marshmallow import ValidationError, fields, validate

from uythac.schemas.events import SCHEMAS, Envelope, OccurredAt

EventCheck = Callable[[dict[str, Any]], date | None]
_CLASS_REPEAT = re.compile(r"\^(\[[^\]]+\])(\{[0-9]+,[0-9]+\})\\Z")  # ^[A-Za-z0-9._:-]{1,64}\Z
_SEPARATORS = " |\t\x00"  # candidates to join identifiers with: the first that no class of theirs allows


class _Writer:
    """Lines of one check function, and the objects they refer to by name."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {"ValidationError": ValidationError}
        self.repeats: list[tuple[str, str, str]] = []  # (class, repeat, variable) of each identifier

    def name(self, value: Any) -> str:
        """A name the generated code can use for `value` (a pattern, a set of choices, a hook...)."""
        key = f"k{len(self.names)}"
        self.names[key] = value
        return key

    def refuse_unless(self, condition: str, indent: str) -> None:
        self.lines.append(f"{indent}if not ({condition}):")
        self.lines.append(f"{indent}    return None")


def _field(writer: _Writer, name: str, field: fields.Field[Any], indent: str) -> None:
    """The checks of one field: its JSON type, each validator, its own parsing (dates).

    A required field is already in `v_<name>`; an optional one is read into `v` if present. The parsed
    `occurred_at` is kept in `day`, which the check returns. A required field whose pattern is a
    character class repeated is held here to its type only: its pattern is tested with those of every
    such field (`_identifiers`).
    """
    value = f"v_{name}"
    if not field.required:
        value = "v"
        writer.lines += [f"{indent}if {name!r} in data:", f"{indent}    v = data[{name!r}]"]
        indent += "    "
    json_type = "int" if isinstance(field, fields.Integer) else "str"  # JSON true is not 1 here, nor 1.0
    conditions = [f"type({value}) is {json_type}"]
    for rule in field.validators:
        repeat = _class_repeat(rule) if field.required else None
        if repeat is None:
            conditions.append(_condition(writer, rule, value))
        else:
            writer.repeats.append((*repeat, value))
    writer.refuse_unless(" and ".join(conditions), indent)
    parse = getattr(field, "fast_parse", None)
    if parse is not None:
        kept = "day = " if isinstance(field, OccurredAt) else ""
        writer.lines += [
            f"{indent}try:",
            f"{indent}    {kept}{writer.name(parse)}({value})",
            f"{indent}except ValueError:",
            f"{indent}    return None",
        ]


def _class_repeat(rule: Callable[[Any], Any]) -> tuple[str, str] | None:
    """A pattern `^[chars]{least,most}\\Z` (no flags) as its class and its repeat, else None."""
    if not isinstance(rule, validate.Regexp) or rule.regex.flags != re.UNICODE:
        return None
    pattern = rule.regex.pattern
    shape = _CLASS_REPEAT.fullmatch(pattern) if isinstance(pattern, str) else None
    return None if shape is None else (shape[1], shape[2])


def _identifiers(writer: _Writer) -> None:
    """The patterns of all the identifiers in one match: their values joined by a separator that
    none of their classes allows, against their patterns joined by the same separator.

    No class takes the separator, so each value's pattern must stop at the next one: the join
    matches iff each value matches its own pattern. One regex call, not one per identifier (the call
    costs more than the characters), and no length test in Python.
    """
    if not writer.repeats:
        return
    classes = [re.compile(chars) for chars, _, _ in writer.repeats]
    separator = next((c for c in _SEPARATORS if not any(chars.fullmatch(c) for chars in classes)), None)
    if separator is None:
        raise TypeError("no separator for these identifiers: add one to fastcheck._SEPARATORS")
    pattern = re.escape(separator).join(chars + repeat for chars, repeat, _ in writer.repeats)
    joined = separator.join(f"{{{value}}}" for _, _, value in writer.repeats)
    writer.refuse_unless(f"{writer.name(re.compile(pattern).fullmatch)}(f{joined!r}) is not None", "    ")


def _condition(writer: _Writer, rule: Callable[[Any], Any], v: str) -> str:
    """One marshmallow validator as a Python expression on the variable `v`."""
    if isinstance(rule, validate.Regexp):
        return f"{writer.name(rule.regex.match)}({v}) is not None"  # the patterns are anchored (^ … \\Z)
    if isinstance(rule, validate.Length):
        return f"{rule.min or 0} <= len({v})" + ("" if rule.max is None else f" <= {rule.max}")
    if isinstance(rule, validate.OneOf):
        return f"{v} in {writer.name(frozenset(rule.choices))}"
    if isinstance(rule, validate.Range) and rule.min_inclusive and rule.max_inclusive:
        bounds = [
            f"{rule.min!r} <= {v}" if rule.min is not None else "",
            f"{v} <= {rule.max!r}" if rule.max is not None else "",
        ]
        return " and ".join(bound for bound in bounds if bound) or "True"
    if isinstance(rule, validate.Equal):
        return f"{v} == {writer.name(rule.comparable)}"
    raise TypeError(f"no fast check for {type(rule).__name__}: add one to schemas/fastcheck.py")


def _write(schema_class: type[Envelope]) -> _Writer:
    declared = schema_class._declared_fields
    writer = _Writer()
    required = [name for name, field in declared.items() if field.required]
    writer.lines.append("def check(data):")
    # Most events have just their required fields: the checks of those below then leave no other field
    # to look for. Else the check looks for fields of no schema, then checks the optional ones present.
    writer.lines.append(f"    if len(data) != {len(required)}:")
    writer.refuse_unless(f"data.keys() <= {writer.name(frozenset(declared))}", "        ")
    for name, field in declared.items():
        if name not in required:
            _field(writer, name, field, "        ")
    writer.lines += ["    try:", *(f"        v_{name} = data[{name!r}]" for name in required)]
    writer.lines += ["    except KeyError:", "        return None"]
    for name in required:
        _field(writer, name, declared[name], "    ")
    _identifiers(writer)
    schema = writer.names["self"] = schema_class()
    for hook_name, *_ in schema_class._hooks["validates_schema"]:
        rule = getattr(getattr(schema_class, hook_name), "fast_rule", None)
        if rule is not None:
            writer.refuse_unless(rule, "    ")
        else:
            hook = writer.name(getattr(schema, hook_name))
            writer.lines += ["    try:", f"        {hook}(data)", "    except ValidationError:", "        return None"]
    writer.lines.append("    return day")
    return writer


def event_check(schema_class: type[Envelope]) -> EventCheck:
    """The check of one event type: exactly its fields, each valid, and its cross-field hooks; the
    event's business date if it passes, else None."""
    writer = _write(schema_class)
    namespace = dict(writer.names)
    exec(compile("\n".join(writer.lines), f"<fastcheck {schema_class.TYPE}>", "exec"), namespace)
    check: EventCheck = namespace["check"]
    return check


def source(event_type: str) -> str:
    """The code of one type's check, for a reader (k1, k2... are patterns, sets and hooks; self the schema)."""
    return "\n".join(_write(SCHEMAS[event_type]).lines)


def all_checks() -> dict[str, EventCheck]:
    return {event_type: event_check(schema) for event_type, schema in SCHEMAS.items()}
