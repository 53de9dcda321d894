"""List answers as CSV, for spreadsheets and scripts: on `Accept: text/csv` a list endpoint answers its page's
items as rows (the same rows, order, scoping and pagination as its JSON), one column per field, a nested field
named by its path (`components.repayment.points`); the page's total and T in headers, as a CSV has no room for
them (`X-Total-Count`, `X-As-Of`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from typing import Any

from flask import Response, request
from marshmallow import Schema, fields

from uythac.entrypoints.api.marshal import as_json

CSV = "text/csv"


def wanted() -> bool:
    """Whether the request asks for CSV before JSON (JSON when it names neither, or accepts anything)."""
    return request.accept_mimetypes.best_match(["application/json", CSV]) == CSV


def _flat(item: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, value in item.items():
        if isinstance(value, Mapping):
            yield from _flat(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def answer(schema: Schema, data: Mapping[str, Any], items: list[str]) -> Response:
    """A page (`answers.page`) dumped by its schema: as CSV of the `items` columns if the request asks for it,
    else JSON."""
    dumped = schema.dump(data)
    return page(dumped, items) if wanted() else as_json(dumped)


def page(dumped: Mapping[str, Any], columns: list[str]) -> Response:
    """A dumped page (`answers.page` through its schema) as CSV: a header of `columns`, then a row per item."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(columns)
    for item in dumped["items"]:
        cells = dict(_flat(item))
        writer.writerow([_cell(cells.get(column)) for column in columns])
    headers = {"X-Total-Count": str(dumped["total"]), "X-As-Of": dumped["as_of"] or "", "Vary": "Accept"}
    return Response(text.getvalue(), mimetype=CSV, headers=headers)


def columns(schema: Schema) -> list[str]:
    """The CSV columns of an item schema: its fields in order, a nested schema's fields by their path."""
    names: list[str] = []
    for name, field in schema.fields.items():
        key = field.data_key or name
        if isinstance(field, fields.Nested) and isinstance(field.schema, Schema):
            names += [f"{key}.{inner}" for inner in columns(field.schema)]
        else:
            names.append(key)
    return names
