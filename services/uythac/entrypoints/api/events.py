"""Events in over HTTP, for bank systems that do not speak Kafka: validated here exactly as the worker will
validate them (`uythac.core.events`), then produced to the events topic keyed by commune_id.

All or nothing per request: if any event of an array is invalid or outside the key's area, none is sent,
so a client never has to work out which half of its batch went through. 202 means Kafka acknowledged
every event (acks=all); the worker applies them moments later (duplicates, by event_id, are ignored there).
"""

from __future__ import annotations

import re
from datetime import date

import orjson
from flask import Blueprint, Response, request
from werkzeug.exceptions import UnsupportedMediaType

from uythac import bootstrap
from uythac.adapters.kafka.publisher import KafkaUnavailable, Message
from uythac.core.areas import EVERYWHERE, Area
from uythac.core.events import Event, Rejection, parse
from uythac.entrypoints.api.auth import caller
from uythac.entrypoints.api.context import services
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
    index (`2.loan_id`). 403 if an event lies outside the key's area (a clock.tick needs scope `all`).
    503 if Kafka did not acknowledge in time: nothing is known to be accepted, retry the same events.
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
        413: TooLarge
        415: UnsupportedMediaType
        503: KafkaUnavailable
    """
    if not request.is_json:
        raise UnsupportedMediaType("send the events as application/json")
    settings = services().settings
    events = _events(request.get_data(), settings.api_max_events, bootstrap.latest_accepted(settings))
    outside = [event.event_id for event in events if not _within(event, caller().area)]
    if outside:
        raise Problem("forbidden", f"outside the area of this API key ({caller().scope}): {', '.join(outside)}")
    messages: list[Message] = [
        (None if event.unit is None else event.unit[0].encode(), orjson.dumps(event.data)) for event in events
    ]
    try:
        services().publisher.send(messages)
    except KafkaUnavailable as error:
        raise Problem("kafka-unavailable", str(error), headers={"Retry-After": "5"}) from error
    return respond(_ACCEPTED, {"accepted": len(events), "event_ids": [e.event_id for e in events]}, status=202)


def _within(event: Event, area: Area) -> bool:
    """An event of the area; a clock.tick names none, so only a key of scope `all` may move the clock."""
    if area == EVERYWHERE:
        return True
    return event.unit is not None and area.covers(event.data["district_id"], event.data["commune_id"])


def _events(body: bytes, most: int, latest: date) -> list[Event]:
    """The body's events, or the 400 problem that names every field at fault."""
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
        verdict = parse(orjson.dumps(item), latest)  # as the worker will see it (its size limit included)
        if isinstance(verdict, Rejection):
            errors += reason_errors(verdict.reason, "" if single else f"{index}.")
        else:
            events.append(verdict)
    if errors:
        invalid = len(items) - len(events)
        raise Problem("invalid-event", f"{invalid} of {len(items)} events are invalid; none was sent", errors)
    return events


def reason_errors(reason: str, prefix: str = "") -> list[dict[str, str]]:
    """`field: why; field: why` as [{field, detail}], each field prefixed (an event's index in an array)."""
    errors = []
    for part in filter(None, _REASON_PART.split(reason)):
        field, _, detail = part.partition(": ")
        errors.append({"field": prefix + field, "detail": detail})
    return errors
