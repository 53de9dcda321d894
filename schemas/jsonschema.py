"""JSON Schema (draft-07) generated from the marshmallow schemas, one document per event type.

Producers validate with the files in `schemas/json/` (`make schemas` rewrites them, with the documents of the
output messages, `schemas.outputs`, beside them, and one example of each in `schemas/examples/`); the worker
compiles the same documents for its fast path. Patterns are written for Python with `\\Z` (Python's `$` also
matches before a final newline) and published with `$` (ECMA-262, where it means end of input).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from marshmallow import fields, validate

from uythac.schemas.events import SCHEMAS, Envelope
from uythac.schemas.outputs import output_schemas

DRAFT = "http://json-schema.org/draft-07/schema#"
ID_BASE = "https://uythac.vbsp.local/schemas/"


def _pattern(regex: str, python: bool) -> str:
    return regex if python else regex.replace("\\Z", "$")


def field_schema(field: fields.Field[Any], python: bool) -> dict[str, Any]:
    """The JSON Schema of one marshmallow field of ours."""
    out: dict[str, Any] = {"type": "integer" if isinstance(field, fields.Integer) else "string"}
    if "description" in field.metadata:
        out["description"] = field.metadata["description"]
    patterns = getattr(field, "json_patterns", ())
    if patterns:
        out["anyOf"] = [{"pattern": _pattern(p, python)} for p in patterns]
    for rule in field.validators:
        if isinstance(rule, validate.Regexp):
            out["pattern"] = _pattern(str(rule.regex.pattern), python)
        elif isinstance(rule, validate.Length):
            out.update({"minLength": rule.min, "maxLength": rule.max})
        elif isinstance(rule, validate.OneOf):
            out["enum"] = list(rule.choices)
        elif isinstance(rule, validate.Range):
            out.update({"minimum": rule.min, "maximum": rule.max})
        elif isinstance(rule, validate.Equal):
            out["const"] = rule.comparable
    return out


def event_schema(schema: type[Envelope], python: bool = False) -> dict[str, Any]:
    """One event type's complete document: its fields, which are required, and nothing else."""
    declared = schema._declared_fields
    properties = {name: field_schema(field, python) for name, field in declared.items()}
    properties["type"] = {"const": schema.TYPE, "description": "The event's type."}
    return {
        "$schema": DRAFT,
        "$id": f"{ID_BASE}{schema.TYPE}.json",
        "title": schema.TYPE,
        "description": (schema.__doc__ or "").strip() or f"The {schema.TYPE} event.",
        "type": "object",
        "properties": properties,
        "required": [name for name, field in declared.items() if field.required],
        "additionalProperties": False,
        **schema.JSON_SCHEMA_EXTRA,
        "examples": [schema.EXAMPLE],
    }


def all_schemas(python: bool = False) -> dict[str, dict[str, Any]]:
    return {event_type: event_schema(schema, python) for event_type, schema in SCHEMAS.items()}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def published() -> dict[str, dict[str, Any]]:
    """Every published document: the input events' and the output messages', by type."""
    return all_schemas() | output_schemas()


def write(directory: Path, examples: Path | None = None) -> list[Path]:
    """Write one `<type>.schema.json` per event and output message type into `directory`, and its example as
    `<type>.json` into `examples` (if given); returns the paths written."""
    written = []
    for folder in (directory, examples):
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
    for message_type, document in published().items():
        written.append(directory / f"{message_type}.schema.json")
        written[-1].write_text(render(document), encoding="utf-8")
        if examples is not None:
            written.append(examples / f"{message_type}.json")
            written[-1].write_text(render(document["examples"][0]), encoding="utf-8")
    return written
