"""Every error the API answers, as an RFC 9457 problem: `application/problem+json` with type, title,
status, detail, instance and, where fields are at fault, `errors: [{field, detail}]`.

A view raises `Problem`; werkzeug's own HTTP errors (unknown URL, method not allowed, body too large)
and anything unexpected become problems too, so a client parses one error shape whatever went wrong.
Our own problem types are URIs under `TYPE_BASE`, listed with their meaning on `/docs`; a plain HTTP
error keeps `about:blank` and the status phrase as its title, as RFC 9457 §4.2.1 says.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from flask import Flask, Response, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from uythac.entrypoints.api.schemas import ProblemSchema
from uythac.errors import StoreUnavailable

log = logging.getLogger(__name__)
_PROBLEM = ProblemSchema()

MEDIA_TYPE = "application/problem+json"
RETRY = {"Retry-After": "1"}  # seconds: a database restart or failover takes a few
TYPE_BASE = "https://uythac.vbsp.local/problems/"


@dataclass(frozen=True)
class Kind:
    status: int
    title: str
    meaning: str  # shown on /docs


KINDS: dict[str, Kind] = {
    "bad-parameter": Kind(400, "Bad parameter", "A query or path parameter is malformed or out of bounds."),
    "invalid-event": Kind(400, "Invalid event", "The body is not an event (or an array of events) of the contract."),
    "unauthorized": Kind(401, "Unauthorized", "No bearer API key, one that is not configured, or one that expired."),
    "forbidden": Kind(403, "Forbidden", "The key's scope does not allow this: an event or an id outside its area."),
    "not-found": Kind(404, "Not found", "No such resource in the area of the API key."),
    "conflict": Kind(409, "Conflict", "An id the event names is elsewhere by the store, or its event_id was taken."),
    "no-snapshot": Kind(404, "No report for that date", "Only T and the stored month ends can be answered."),
    "too-many-requests": Kind(429, "Too many requests", "A key scoped below all called faster than it may."),
    "kafka-unavailable": Kind(503, "Kafka unavailable", "The events could not be handed to Kafka; retry."),
    "not-ready": Kind(503, "Not ready", "The store or the worker is not fit to answer (see `errors`)."),
    "store-unavailable": Kind(503, "Store unavailable", "The store cannot be reached right now; retry."),
}


class Problem(Exception):
    """An error answer; `errors` name the fields at fault, `extra` adds members (RFC 9457 extensions)."""

    def __init__(
        self,
        kind: str,
        detail: str,
        errors: Sequence[Mapping[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.kind, self.detail, self.errors = kind, detail, list(errors)
        self.headers, self.extra = dict(headers or {}), dict(extra or {})

    def response(self) -> Response:
        kind = KINDS[self.kind]
        body = _body(TYPE_BASE + self.kind, kind.title, kind.status, self.detail, self.errors, self.extra)
        return _respond(body, kind.status, self.headers)


def field_errors(messages: Mapping[str, Any], prefix: str = "") -> list[dict[str, str]]:
    """marshmallow's {field: [message, ...]} (nested for lists and objects) as [{field, detail}]."""
    found: list[dict[str, str]] = []
    for name, value in messages.items():
        field = f"{prefix}{name}"
        if isinstance(value, Mapping):
            found += field_errors(value, f"{field}.")
        else:
            texts = value if isinstance(value, list) else [value]
            found += [{"field": field, "detail": str(text)} for text in texts]
    return found


def _body(
    type_: str, title: str, status: int, detail: str, errors: list[Mapping[str, str]], extra: Mapping[str, Any]
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail, "instance": request.path}
    if errors:
        body["errors"] = errors
    body.update(extra)
    return body


def _respond(body: Mapping[str, Any], status: int, headers: Mapping[str, str]) -> Response:
    response = Response(orjson.dumps(_PROBLEM.dump(body)), status=status, mimetype=MEDIA_TYPE)
    response.headers.update(headers)
    return response


def _http_error(error: HTTPException) -> Response:
    """werkzeug's errors (404 for an unknown URL, 405, 413, ...) as `about:blank` problems, headers kept."""
    status = error.code or 500
    headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
    body = _body("about:blank", error.name, status, error.description or error.name, [], {})
    return _respond(body, status, headers)


def _unexpected(error: Exception) -> Response:
    route = request.url_rule.rule if request.url_rule else None
    log.error("request failed", exc_info=error, extra={"route": route})
    return _http_error(InternalServerError("The request failed inside the API; the error is in its log."))


def _store_unavailable(error: StoreUnavailable | OperationalError) -> Response:
    """The database is down or unreachable (a restart, a failover; the driver's OperationalError, wherever the
    request met it) or SQLite's file stays locked: 503 and a retry, not a failure of the API."""
    log.warning("store unavailable", extra={"route": request.url_rule.rule if request.url_rule else None})
    return Problem("store-unavailable", "The store cannot be reached right now; retry.", headers=RETRY).response()


def init_app(app: Flask) -> None:
    app.register_error_handler(Problem, lambda problem: problem.response())
    app.register_error_handler(StoreUnavailable, _store_unavailable)
    app.register_error_handler(OperationalError, _store_unavailable)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
