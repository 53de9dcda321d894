"""Parameters in through a schema's `load`, bodies out through a schema's `dump` (as orjson bytes).

A parameter that fails its schema is a 400 problem naming it; so is one given twice (`?org=HND&org=HPN`
would otherwise mean whichever came first) and one the endpoint does not know (a typo would otherwise
widen the answer silently).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from flask import Response, request
from marshmallow import Schema, ValidationError

from uythac.entrypoints.api.problems import Problem, field_errors

JSON = "application/json"


def arguments(schema: Schema, values: Mapping[str, Any]) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema.load(values)
    except ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {"parameters": error.messages}
        errors = field_errors(messages)
        named = ", ".join(sorted({e["field"] for e in errors}))
        raise Problem("bad-parameter", f"invalid parameter: {named}", errors) from error
    return loaded


def query(schema: Schema) -> dict[str, Any]:
    """The query string, loaded by `schema`."""
    repeated = [name for name, values in request.args.lists() if len(values) > 1]
    if repeated:
        errors = [{"field": name, "detail": "given more than once"} for name in repeated]
        raise Problem("bad-parameter", f"invalid parameter: {', '.join(repeated)}", errors)
    return arguments(schema, request.args)


def path(schema: Schema, values: Mapping[str, str]) -> dict[str, Any]:
    """The path's parameters, loaded by `schema`; an endpoint that takes them takes no query parameter (a typo
    would otherwise be ignored, and each spelling kept as an answer of its own)."""
    if request.args:
        errors = [{"field": name, "detail": "not a parameter of this endpoint"} for name in sorted(request.args)]
        raise Problem("bad-parameter", f"invalid parameter: {', '.join(sorted(request.args))}", errors)
    return arguments(schema, values)


def respond(schema: Schema, data: Any, status: int = 200) -> Response:
    return as_json(schema.dump(data), status)


def as_json(body: Any, status: int = 200) -> Response:
    """A body that already has its documented shape, sent as it is."""
    return Response(orjson.dumps(body), status=status, mimetype=JSON)
