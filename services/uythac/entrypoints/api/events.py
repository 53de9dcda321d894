"""Events in over HTTP, for bank systems that do not speak Kafka: validated here exactly as the worker will
validate them (`uythac.core.events`), then produced to the events topic keyed by commune_id.

All or nothing per request: if any event of an array is invalid, outside the key's area, or names an id
the store places elsewhere, none is sent, so a client never has to work out which half of its batch went
through. The ids are checked against the store (`core.admission`), not taken on the event's word, and so is
the event id: one the store already applied with other content is a 409 (the worker would dead-letter it).
202 means Kafka acknowledged every event (acks=all); the worker applies them moments later (duplicates, by
event_id, are ignored there).
"""

from __future__ import annotations

import re
from datetime import date

import orjson
from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from uythac import bootstrap
from uythac.adapters.kafka.publisher import KafkaUnavailable, Message
from uythac.adapters.sql import queries
from uythac.core.admission import conflicts, refusal
from uythac.core.events import Event, Rejection, parse
from uythac.entrypoints.api.auth import caller
from uythac.entrypoints.api.context import reading, services
from uythac.entrypoints.api.marshal import respond
from uythac.entrypoints.api.problems import Problem
from uythac.entrypoints.api.schemas import AcceptedSchema

bp = Blueprint("events", __name__)
_ACCEPTED = AcceptedSchema()
# a rejection's reason is `field: why; field: why` (uythac.core.events.reasons); a field name starts each part
_REASON_PART = re.compile(r"(?:^|; )(?=[A-Za-z_][A-Za-z0-9_]*: )")


@bp.post("/v1/events")
def post_events() -> Response:
    """Accept one event (a JSON object) or several (a JSON array of at most UYTHAC_API_MAX_EVENTS).

    400 lists every field at fault as {field, detail}; in an array the field is prefixed with the event's
    index (`2.loan_id`). 403 if an event lies outside the key's area: its commune, or a loan, group or commune
    the store places in another area, a commune the store has never seen or a date long before the clock T
    (for a key scoped below the province), a clock.tick (scope `all` only). 409 if an id the event names
    belongs to another unit or district by the store, or if the store (or an earlier event of the array) holds
    its event_id with other content; the same event again is 202, a duplicate the worker ignores. 503 if Kafka
    did not acknowledge in time: nothing is known to be accepted, retry the same events.
    ---
    post:
      summary: Send events
      tags: [events]
      requestBody:
        required: true
        content: {application/json: {schema: {$ref: "#/components/schemas/EventsBody"}}}
      responses:
        202: {description: Every event was acknowledged by Kafka, content: {application/json: {schema: AcceptedSchema}}}
        400: InvalidEvent
        403: Forbidden
        409: Conflict
        413: TooLarge
        415: UnsupportedMediaType
        503: KafkaUnavailable
    """
    if not request.is_json:
        raise UnsupportedMediaType("send the events as application/json")
    settings = services().settings
    events, single = _events(_body(), settings.api_max_events, bootstrap.latest_accepted(settings))
    _admit(events, single, settings.api_scoped_past_days)
    messages: list[Message] = [
        (None if event.unit is None else event.unit[0].encode(), orjson.dumps(event.data)) for event in events
    ]
    try:
        services().publisher.send(messages)
    except KafkaUnavailable as error:
        raise Problem("kafka-unavailable", str(error), headers={"Retry-After": str(error.retry_after_s)}) from error
    return respond(_ACCEPTED, {"accepted": len(events), "event_ids": [e.event_id for e in events]}, status=202)


def _admit(events: list[Event], single: bool, past_days: int) -> None:
    """Refuse the request (403, else 409) if any event names an id the store places outside the key's area or
    in another unit than the event says, or reuses an event id the store holds with other content
    (`core.admission`)."""
    key = caller()
    data = [event.data for event in events]
    facts = queries.known(
        reading(),
        {d["commune_id"] for d in data if "commune_id" in d},
        {d["loan_id"] for d in data if "loan_id" in d},
        {d["group_id"] for d in data if "group_id" in d},
        [event.event_id for event in events],
    )
    conflicting = conflicts(events, facts)
    refused = [
        (i, r)
        for i, event in enumerate(events)
        if (r := refusal(event, key.area, facts, past_days) or conflicting.get(i))
    ]
    if not refused:
        return
    status = 403 if any(r.status == 403 for _, r in refused) else 409
    errors = [{"field": r.field if single else f"{i}.{r.field}", "detail": r.detail} for i, r in refused]
    detail = f"{len(refused)} of {len(events)} events cannot be sent with this API key ({key.scope}); none was sent"
    raise Problem("forbidden" if status == 403 else "conflict", detail, errors)


def _body() -> bytes:
    """The request's body, refused with 413 past the app's limit whether its length was given or it came in chunks
    (werkzeug cuts a chunked body at the limit, and the cut JSON would read as a 400)."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None:
        return request.get_data()  # werkzeug refuses a Content-Length over the limit before reading
    data: bytes = request.environ["wsgi.input"].read(limit + 1)
    if len(data) > limit:
        raise RequestEntityTooLarge(f"the body is larger than {limit} bytes")
    return data


def _events(body: bytes, most: int, latest: date) -> tuple[list[Event], bool]:
    """The body's events and whether it was one (an object, not an array), or the 400 problem that names every
    field at fault."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise Problem("invalid-event", "the body is not JSON", [{"field": "body", "detail": str(error)}]) from error
    single = isinstance(data, dict)
    items = [data] if single else data
    if not isinstance(items, list) or not 1 <= len(items) <= most:
        detail = f"must be an event (a JSON object) or an array of 1 to {most} events"
        raise Problem("invalid-event", detail, [{"field": "body", "detail": detail}])
    events, errors = [], []
    for index, item in enumerate(items):
        prefix = "" if single else f"{index}."
        try:
            raw = orjson.dumps(item)  # as the worker will see it (its size limit included)
        except orjson.JSONEncodeError:  # nested over 254 levels, while no field of an event nests at all
            errors.append({"field": f"{prefix}message", "detail": "nested too deep: no event field holds arrays"})
            continue
        verdict = parse(raw, latest)
        if isinstance(verdict, Rejection):
            errors += reason_errors(verdict.reason, prefix)
        else:
            events.append(verdict)
    if errors:
        invalid = len(items) - len(events)
        raise Problem("invalid-event", f"{invalid} of {len(items)} events are invalid; none was sent", errors)
    return events, single


def reason_errors(reason: str, prefix: str = "") -> list[dict[str, str]]:
    """`field: why; field: why` as [{field, detail}], each field prefixed (an event's index in an array)."""
    errors = []
    for part in filter(None, _REASON_PART.split(reason)):
        field, _, detail = part.partition(": ")
        errors.append({"field": prefix + field, "detail": detail})
    return errors
