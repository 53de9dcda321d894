"""From raw bytes to a validated `Event`, or a `Rejection` whose reason names the field (docs/contract.md).

Fast path: `orjson.loads` and the event type's compiled check (`schemas/fastcheck.py`), which also
gives the business date. Only an event that fails it goes through marshmallow, which words the reasons;
the checks are read off the same schemas and a property test holds the two in agreement.

Not in the future: an event dated after `latest` (today in Vietnam plus a setting's days, worked out by the
caller from the machine's clock: `core.dates.latest_accepted`) is rejected, so one mistyped year cannot move
the clock T years ahead, for good.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

import orjson
from marshmallow import Schema, ValidationError

from uythac.schemas.events import EVENT_TYPES, SCHEMAS
from uythac.schemas.fastcheck import all_checks

MAX_EVENT_BYTES = 65_536
DIGEST_SIZE = 16  # bytes of an event's digest
UNIT_FREE_TYPES = frozenset({"clock.tick"})


class Event(NamedTuple):
    """A valid event: its fields, its business date and the digest that tells duplicates from conflicts.

    A named tuple, not a frozen dataclass: as immutable, and made in a third of the time (one per event).
    """

    event_id: str
    type: str
    day: date
    data: dict[str, Any]
    digest: bytes

    @property
    def unit(self) -> tuple[str, str] | None:
        """The (commune_id, org) the envelope names; None for a clock tick."""
        if self.type in UNIT_FREE_TYPES:
            return None
        return self.data["commune_id"], self.data["org"]


@dataclass(frozen=True, slots=True)
class Rejection:
    """An invalid message: why, in words that name the field."""

    reason: str
    event_id: str | None = None
    event_type: str | None = None  # a valid event's type, when it is refused for what the store holds (conflicts)


_FAST = all_checks()


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_BLAKE2B_16 = hashlib.blake2b(digest_size=DIGEST_SIZE)  # never fed: each digest starts from a copy of it


def digest(data: dict[str, Any]) -> bytes:
    """Equal for the same content whatever the key order or spacing (orjson: UTF-8, sorted keys).

    blake2b-16 of the sorted dump. Copying a fresh blake2b-16 costs less than making one: the
    constructor parses a dozen keyword parameters.
    """
    hasher = _BLAKE2B_16.copy()
    hasher.update(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))
    return hasher.digest()


def parse(raw: bytes | str, latest: date | None = None) -> Event | Rejection:
    """Validate one message (a JSON Lines line or a Kafka value); `latest`: the latest business date accepted."""
    if not raw:  # None (a Kafka tombstone) or empty
        return Rejection("message: empty")
    if len(raw) > MAX_EVENT_BYTES:
        return Rejection(f"message: longer than {MAX_EVENT_BYTES} bytes")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        return _refused_by_orjson(raw, error)
    if not isinstance(data, dict):
        return Rejection(f"message: not a JSON object (a JSON {type(data).__name__})")
    return validate(data, latest)


def _refused_by_orjson(raw: bytes | str, error: Exception) -> Rejection:
    """orjson is strict (64-bit integers, valid UTF-8): ask the standard parser which field is at fault."""
    try:
        data = json.loads(raw, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as strict_error:
        return Rejection(f"message: not JSON ({strict_error})")
    if not isinstance(data, dict):
        return Rejection(f"message: not a JSON object (a JSON {type(data).__name__})")
    rejection = validate(data)
    if isinstance(rejection, Rejection):
        return rejection
    return Rejection(f"message: not strict JSON ({error})", rejection.event_id)


def validate(data: dict[str, Any], latest: date | None = None) -> Event | Rejection:
    """Validate an already decoded JSON object; `latest`: the latest business date accepted."""
    event_type = data.get("type")
    if isinstance(event_type, str):
        fast = _FAST.get(event_type)
        day = None if fast is None else fast(data)
        if day is not None:
            if latest is not None and day > latest:
                return Rejection(f"occurred_at: after today ({day}; the latest accepted is {latest})", _event_id(data))
            try:  # tuple.__new__ straight: Event(...) would go through the named tuple's Python __new__
                return tuple.__new__(Event, (data["event_id"], event_type, day, data, digest(data)))
            except orjson.JSONEncodeError:  # a lone surrogate (\ud800) in a free-text field
                return Rejection(_not_unicode(data), _event_id(data))
    return Rejection(reasons(data), _event_id(data))


def _not_unicode(data: dict[str, Any]) -> str:
    for name in sorted(data):
        value = data[name]
        if isinstance(value, str) and not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                return f"{name}: not valid Unicode (a lone surrogate)"
    return "message: not valid Unicode"


def reasons(data: dict[str, Any]) -> str:
    """The reasons an object is not a valid event, field by field: `field: rule; field: rule`."""
    event_type = data.get("type")
    if "type" not in data:
        errors: dict[str, Any] = {"type": ["required"]}
    elif not isinstance(event_type, str) or event_type not in SCHEMAS:
        errors = {"type": [f"must be one of {' '.join(EVENT_TYPES)}"]}
    else:
        errors = _errors(_SCHEMAS[event_type], data)
    if not errors:  # the fast path refused what marshmallow accepts: a bug, but never a silent accept
        return "event: refused by the JSON Schema fast path"
    return "; ".join(f"{name}: {_words(errors[name])}" for name in sorted(errors, key=str))


_SCHEMAS = {event_type: schema() for event_type, schema in SCHEMAS.items()}  # one each: a schema is a cycle too


def _errors(schema: Schema, data: dict[str, Any]) -> dict[str, Any]:
    """`schema`'s errors for `data`, by field. Not `Schema.validate`: the error it catches stays referenced by a
    frame of its own traceback, a cycle that keeps every calling frame too, and with them what they hold (the
    intake's whole poll, a replay's batch), until a full collection, which come seldom here (`cycles.py`).
    Dropping the traceback lets reference counting free them at once."""
    try:
        schema.load(data)
    except ValidationError as error:
        error.__traceback__ = None
        return error.messages  # type: ignore[return-value]  # a dict: a schema's errors are by field
    return {}


def _words(messages: Any) -> str:
    if isinstance(messages, dict):
        return "; ".join(_words(m) for m in messages.values())
    if isinstance(messages, list):
        return " ".join(str(m).rstrip(".").lower() if str(m).endswith(".") else str(m) for m in messages)
    return str(messages)


def _event_id(data: dict[str, Any]) -> str | None:
    value = data.get("event_id")
    return value if isinstance(value, str) and len(value) <= 64 else None
