"""The OpenAPI 3.1 document, generated with apispec from the same marshmallow schemas that load the
parameters and dump the bodies, and from the views themselves: each view's docstring holds its why (the
operation's description) and, after `---`, its operation in YAML. `/openapi.json` serves it; `/docs` is
a plain HTML page drawn from it on the server, so it needs no script and no CDN.

Who needs a key is taken from the app's `Guard`, so the document tells the truth for the settings the
server runs with (UYTHAC_API_OPEN_HEALTH, UYTHAC_API_OPEN_METRICS).
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import orjson
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.yaml_utils import load_operations_from_docstring
from flask import Blueprint, Flask, Response, current_app, render_template_string

from uythac.core.dates import DATE_PATTERN, DATETIME_PATTERN
from uythac.entrypoints.api.auth import Guard
from uythac.entrypoints.api.marshal import JSON
from uythac.entrypoints.api.problems import KINDS, MEDIA_TYPE, TYPE_BASE
from uythac.entrypoints.api.schemas import ProblemSchema
from uythac.schemas.events import SCHEMAS
from uythac.schemas.jsonschema import event_schema

bp = Blueprint("openapi", __name__)
EXTENSION = "uythac.openapi"
VERSION = "1.0.0"
_FLASK_PARAMETER = re.compile(r"<(?:[a-z]+:)?([A-Za-z_]+)>")

# Reusable error responses, by the names the views' docstrings use.
_RESPONSES = {
    "BadParameter": "bad-parameter",
    "InvalidEvent": "invalid-event",
    "Unauthorized": "unauthorized",
    "Forbidden": "forbidden",
    "NotFound": "not-found",
    "Conflict": "conflict",
    "NoSnapshot": "no-snapshot",
    "TooManyRequests": "too-many-requests",
    "KafkaUnavailable": "kafka-unavailable",
    "NotReady": "not-ready",
}
_CSV_HEADERS = {  # what a list's JSON page says beside its items, as headers of its CSV answer (`tables`)
    "CsvTotal": ("integer", "CSV answers only: how many items the list has (the JSON page's total)."),
    "CsvAsOf": ("string", "CSV answers only: T, the day the list is of (the JSON page's as_of; empty before any)."),
}
_HTTP_RESPONSES = {"TooLarge": "Body larger than the API accepts", "UnsupportedMediaType": "Body not application/json"}


def _ecma(regex: str) -> str:
    """Patterns are written for Python, ending in `\\Z`; JSON Schema's regexes are ECMA-262, where that is `$`."""
    return regex[:-2] + "$" if regex.endswith("\\Z") else regex


_FORMATS = {_ecma(DATE_PATTERN): {"format": "date"}, _ecma(DATETIME_PATTERN): {"format": "date-time"}}
DESCRIPTION = """\
Entrusted-lending quality for the Vietnam Bank for Social Policies (NHCSXH): loans whose 30-day
post-disbursement inspection was missed, and the 100-point score of every (commune, organization).
Every `/v1` endpoint needs a bearer API key; a key scoped to a district or a commune, an organization,
or both (`district:D01,org:HND`) sees that area only; an expired key is refused (401). The lists
answer CSV on `Accept: text/csv`. Errors are RFC 9457 problem details (`application/problem+json`)."""


def build(app: Flask, guard: Guard, max_events: int) -> dict[str, Any]:
    spec = APISpec(
        title="uythac API",
        version=VERSION,
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={"description": DESCRIPTION},
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    problem = {MEDIA_TYPE: {"schema": ProblemSchema}}
    for name, kind in _RESPONSES.items():
        spec.components.response(name, {"description": KINDS[kind].meaning, "content": problem})
    for name, text in _HTTP_RESPONSES.items():
        spec.components.response(name, {"description": text, "content": problem})
    for name, (kind, text) in _CSV_HEADERS.items():
        spec.components.header(name, {"description": text, "schema": {"type": kind}})
    _events(spec, max_events)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions[rule.endpoint]
        operations = load_operations_from_docstring(view.__doc__ or "")
        if not operations:
            continue
        keyed = rule.endpoint.partition(".")[0] in guard.keyed
        for operation in operations.values():
            _complete(operation, view.__doc__ or "", keyed, problem)
        spec.path(path=_FLASK_PARAMETER.sub(r"{\1}", rule.rule), operations=operations)
    document: dict[str, Any] = _ecma_patterns(spec.to_dict())  # the parameters' patterns, from marshmallow
    return document


def _complete(operation: dict[str, Any], docstring: str, keyed: bool, problem: dict[str, Any]) -> None:
    """The parts every operation shares: its description (the docstring's prose), who may call it, and the
    problem document any other error status comes with."""
    operation.setdefault("description", inspect.cleandoc(docstring).split("---")[0].strip())
    operation["security"] = [{"bearer": []}] if keyed else []
    responses = operation.setdefault("responses", {})
    if keyed:
        responses.setdefault(401, "Unauthorized")
        responses.setdefault(429, "TooManyRequests")
    responses.setdefault("default", {"description": "Any other error, as a problem document", "content": problem})


def _events(spec: APISpec, max_events: int) -> None:
    """The event schemas (the published JSON Schemas), and the body of POST /v1/events."""
    refs = []
    for event_type, schema in SCHEMAS.items():
        document = {k: v for k, v in event_schema(schema).items() if k not in ("$schema", "$id")}
        for alternatives in (p.get("anyOf", []) for p in document["properties"].values()):
            for alternative in alternatives:  # the format a pattern stands for, so generators make real dates
                alternative.update(_FORMATS.get(alternative.get("pattern"), {}))
        spec.components.schema(event_type, document)
        refs.append({"$ref": f"#/components/schemas/{event_type}"})
    spec.components.schema("Event", {"oneOf": refs})
    event = {"$ref": "#/components/schemas/Event"}
    many = {"type": "array", "items": event, "minItems": 1, "maxItems": max_events}
    spec.components.schema("EventsBody", {"oneOf": [event, many]})


def _ecma_patterns(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: _ecma(value) if key == "pattern" and isinstance(value, str) else _ecma_patterns(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_ecma_patterns(item) for item in node]
    return node


def init_app(app: Flask, guard: Guard, max_events: int) -> None:
    """Serve the document of the routes registered so far: call it after every other blueprint."""
    app.register_blueprint(bp)
    document = build(app, guard, max_events)
    app.extensions[EXTENSION] = {"document": document, "json": orjson.dumps(document)}


@bp.get("/openapi.json")
def openapi_json() -> Response:
    """This API's OpenAPI 3.1 document."""
    document: bytes = current_app.extensions[EXTENSION]["json"]
    return Response(document, mimetype=JSON)


@bp.get("/docs")
def docs() -> str:
    """A readable page of the operations, their parameters and the problem types; links the JSON."""
    document = current_app.extensions[EXTENSION]["document"]
    return render_template_string(_PAGE, spec=document, kinds=KINDS, type_base=TYPE_BASE)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ spec.info.title }}</title>
<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.4}
code{background:#f3f3f3;padding:0 .2rem}h3{margin-bottom:.2rem}.method{text-transform:uppercase;font-weight:bold}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}</style></head>
<body><h1>{{ spec.info.title }} {{ spec.info.version }}</h1>
<p>{{ spec.info.description }}</p>
<p>The machine-readable document: <a href="openapi.json">openapi.json</a> (OpenAPI {{ spec.openapi }}).</p>
<h2>Operations</h2>
{% for path, item in spec.paths.items() %}{% for method, op in item.items() %}
<section><h3><span class="method">{{ method }}</span> <code>{{ path }}</code>: {{ op.summary }}</h3>
<p>{{ op.description }}</p>
<p>{% if op.security %}Needs a bearer API key.{% else %}No key needed.{% endif %}</p>
{% if op.parameters %}<table><tr><th>parameter</th><th>in</th><th>rule</th></tr>
{% for p in op.parameters %}<tr><td><code>{{ p.name }}</code>{% if p.required %} (required){% endif %}</td>
<td>{{ p.in }}</td><td><code>{{ p.schema | tojson }}</code></td></tr>{% endfor %}</table>{% endif %}
<p>Responses: {% for status in op.responses %}<code>{{ status }}</code> {% endfor %}</p></section>
{% endfor %}{% endfor %}
<h2>Problem types</h2>
<p>Errors are <code>application/problem+json</code> (RFC 9457); the <code>type</code> URIs are these:</p>
<table><tr><th>type</th><th>status</th><th>meaning</th></tr>
{% for slug, kind in kinds.items() %}<tr id="problem-{{ slug }}"><td><code>{{ type_base }}{{ slug }}</code></td>
<td>{{ kind.status }}</td><td>{{ kind.meaning }}</td></tr>{% endfor %}
<tr><td><code>about:blank</code></td><td>any</td><td>a plain HTTP error (unknown URL, method not allowed, ...)</td></tr>
</table></body></html>
"""
