"""The event contract at the door: every kind of bad input is rejected with a reason naming the field, valid
events are accepted with their business date in Vietnam time, the fast path and marshmallow agree, and the
published JSON Schemas are the ones the marshmallow schemas render. Pure: no store, no broker.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import json
import weakref
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import fastjsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError
from marshmallow.validate import Regexp

from tests.examples import DROP, VALID, rejection_of, variant
from uythac.core.dates import VIETNAM, business_date, latest_accepted, parse_datetime
from uythac.core.events import Event, Rejection, digest, parse, validate
from uythac.schemas.events import EVENT_TYPES, SCHEMAS
from uythac.schemas.jsonschema import all_schemas, published, render

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "json"
EXAMPLES_DIR = SCHEMA_DIR.parent / "examples"


# --- valid events ---------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_type_has_a_valid_example(event_type: str) -> None:
    outcome = parse(json.dumps(VALID[event_type]).encode())
    assert isinstance(outcome, Event)
    assert outcome.type == event_type
    assert outcome.day.isoformat() == "2023-03-01"


@pytest.mark.parametrize(
    ("event_type", "changes"),
    [
        ("loan.disbursed", {"amount": 1}),
        ("loan.disbursed", {"amount": 10_000_000_000}),
        ("loan.disbursed", {"program": "P" * 32}),
        ("loan.disbursed", {"program": DROP}),
        ("loan.disbursed", {"event_id": "A-z.0_9:" + "x" * 56}),  # 64 characters of the alphabet
        ("loan.disbursed", {"district_id": "D" * 32, "commune_id": "C" * 32}),
        ("repayment.recorded", {"principal": 0, "interest": 1}),
        ("repayment.recorded", {"principal": 1, "interest": 0}),
        ("repayment.recorded", {"principal": 10_000_000_000}),
        ("loan.overdue_changed", {"overdue_principal": 0}),
        ("savings.deposited", {"amount": 1}),
        ("inspection.recorded", {"result": "misuse"}),
        ("inspection.recorded", {"result": DROP}),
        ("inspection.recorded", {"kind": "periodic", "loan_id": DROP, "group_id": "G1"}),
        ("inspection.recorded", {"kind": "periodic", "group_id": "G1"}),  # a loan of the group found misused
        ("inspection.recorded", {"kind": "follow_up"}),
        ("inspection.recorded", {"kind": "follow_up", "result": "misuse"}),
        ("group.registered", {"org": "HPN"}),
        ("group.registered", {"org": "HCCB"}),
        ("group.registered", {"org": "DTN"}),
        ("group.registered", {"schema_version": 1}),
        ("group.registered", {"recorded_at": "2023-03-05T10:15:00+07:00"}),
        ("group.registered", {"recorded_at": "2023-03-05T03:15:00.123Z"}),
        ("group.registered", {"occurred_at": "2023-02-28T17:00:00Z"}),
        ("group.registered", {"occurred_at": "2023-03-01T23:59:59"}),
        ("group.registered", {"occurred_at": "2023-03-01T11:00:00-05:00"}),
        ("clock.tick", {"occurred_at": "2023-03-01"}),
    ],
)
def test_valid_edge_values_are_accepted(event_type: str, changes: dict[str, Any]) -> None:
    outcome = parse(json.dumps(variant(event_type, **changes)).encode())
    assert isinstance(outcome, Event), outcome
    assert outcome.day.isoformat() == "2023-03-01"


# --- each field rule --------------------------------------------------------------------------

TOO_BIG = 10_000_000_001
BAD_FIELDS: list[tuple[str, str, dict[str, Any]]] = [
    # (field the reason must name, event type, changes)
    ("event_id", "group.registered", {"event_id": "x" * 65}),
    ("event_id", "group.registered", {"event_id": ""}),
    ("event_id", "group.registered", {"event_id": "e 1"}),
    ("event_id", "group.registered", {"event_id": "e/1"}),
    ("event_id", "group.registered", {"event_id": "số1"}),
    ("event_id", "group.registered", {"event_id": "e1\n"}),
    ("event_id", "group.registered", {"event_id": 17}),
    ("event_id", "group.registered", {"event_id": DROP}),
    ("type", "group.registered", {"type": "group.renamed"}),
    ("type", "group.registered", {"type": DROP}),
    ("type", "group.registered", {"type": 3}),
    ("type", "group.registered", {"type": None}),
    ("occurred_at", "group.registered", {"occurred_at": "2023/03/01"}),
    ("occurred_at", "group.registered", {"occurred_at": "01-03-2023"}),
    ("occurred_at", "group.registered", {"occurred_at": "2023-3-1"}),
    ("occurred_at", "group.registered", {"occurred_at": ""}),
    ("occurred_at", "group.registered", {"occurred_at": "yesterday"}),
    ("occurred_at", "group.registered", {"occurred_at": "2023-02-30"}),
    ("occurred_at", "group.registered", {"occurred_at": "2023-02-29"}),
    ("occurred_at", "group.registered", {"occurred_at": "2023-13-01"}),
    ("occurred_at", "group.registered", {"occurred_at": "2023-02-30T10:00:00Z"}),
    ("occurred_at", "group.registered", {"occurred_at": "2023-03-01T24:00:00Z"}),
    ("occurred_at", "group.registered", {"occurred_at": "2023-03-01T10:60:00Z"}),
    ("occurred_at", "group.registered", {"occurred_at": "2023-03-01T10:00Z"}),
    ("occurred_at", "group.registered", {"occurred_at": "2023-03-01T10:00:00+07"}),
    ("occurred_at", "group.registered", {"occurred_at": "2023-03-01T10:00:00+24:00"}),
    ("occurred_at", "group.registered", {"occurred_at": "2023-03-01T10:00:00 +07:00"}),
    ("occurred_at", "group.registered", {"occurred_at": 20230301}),
    ("occurred_at", "group.registered", {"occurred_at": DROP}),
    ("recorded_at", "group.registered", {"recorded_at": "2023-03-01"}),
    ("recorded_at", "group.registered", {"recorded_at": "now"}),
    ("recorded_at", "group.registered", {"recorded_at": 1677657600}),
    ("schema_version", "group.registered", {"schema_version": 2}),
    ("schema_version", "group.registered", {"schema_version": "1"}),
    ("schema_version", "group.registered", {"schema_version": True}),
    ("schema_version", "group.registered", {"schema_version": 1.0}),
    ("schema_version", "group.registered", {"schema_version": None}),
    ("district_id", "group.registered", {"district_id": "D" * 33}),
    ("district_id", "group.registered", {"district_id": ""}),
    ("district_id", "group.registered", {"district_id": DROP}),
    ("commune_id", "group.registered", {"commune_id": "C" * 33}),
    ("commune_id", "loan.disbursed", {"commune_id": "C 1"}),
    ("commune_id", "savings.deposited", {"commune_id": DROP}),
    ("org", "group.registered", {"org": "XYZ"}),
    ("org", "group.registered", {"org": "hnd"}),
    ("org", "group.registered", {"org": ""}),
    ("org", "inspection.recorded", {"org": DROP}),
    ("amount", "loan.disbursed", {"amount": 1.0}),
    ("amount", "loan.disbursed", {"amount": 5_000_000.5}),
    ("amount", "loan.disbursed", {"amount": "5"}),
    ("amount", "loan.disbursed", {"amount": True}),
    ("amount", "loan.disbursed", {"amount": -1}),
    ("amount", "loan.disbursed", {"amount": 0}),
    ("amount", "loan.disbursed", {"amount": TOO_BIG}),
    ("amount", "loan.disbursed", {"amount": None}),
    ("amount", "loan.disbursed", {"amount": DROP}),
    ("amount", "savings.deposited", {"amount": 0}),
    ("amount", "savings.deposited", {"amount": 1.0}),
    ("principal", "repayment.recorded", {"principal": -1}),
    ("principal", "repayment.recorded", {"principal": "5"}),
    ("principal", "repayment.recorded", {"principal": True}),
    ("principal", "repayment.recorded", {"principal": 2.0}),
    ("principal", "repayment.recorded", {"principal": TOO_BIG}),
    ("principal", "repayment.recorded", {"principal": DROP}),
    ("interest", "repayment.recorded", {"interest": -1}),
    ("interest", "repayment.recorded", {"interest": "5"}),
    ("interest", "repayment.recorded", {"interest": False}),
    ("principal", "repayment.recorded", {"principal": 0, "interest": 0}),
    ("overdue_principal", "loan.overdue_changed", {"overdue_principal": -1}),
    ("overdue_principal", "loan.overdue_changed", {"overdue_principal": 1.0}),
    ("overdue_principal", "loan.overdue_changed", {"overdue_principal": True}),
    ("overdue_principal", "loan.overdue_changed", {"overdue_principal": TOO_BIG}),
    ("loan_id", "loan.disbursed", {"loan_id": ""}),
    ("loan_id", "loan.disbursed", {"loan_id": "L" * 65}),
    ("loan_id", "repayment.recorded", {"loan_id": DROP}),
    ("group_id", "loan.disbursed", {"group_id": DROP}),
    ("group_id", "group.registered", {"group_id": "G 1"}),
    ("group_id", "group.closed", {"group_id": DROP}),
    ("loan_id", "inspection.recorded", {"loan_id": DROP}),
    ("group_id", "inspection.recorded", {"kind": "periodic", "loan_id": DROP}),
    ("group_id", "inspection.recorded", {"group_id": "G1"}),  # a post-disbursement inspection names one loan
    ("group_id", "inspection.recorded", {"kind": "follow_up", "group_id": "G1"}),
    ("loan_id", "inspection.recorded", {"kind": "follow_up", "loan_id": DROP}),
    ("kind", "inspection.recorded", {"kind": "annual"}),
    ("kind", "inspection.recorded", {"kind": DROP}),
    ("result", "inspection.recorded", {"result": "ok"}),
    ("result", "inspection.recorded", {"result": None}),
    ("program", "loan.disbursed", {"program": "P" * 33}),
    ("program", "loan.disbursed", {"program": ""}),
    ("program", "loan.disbursed", {"program": 7}),
    ("note", "loan.disbursed", {"note": "hello"}),
    ("loan_id", "group.registered", {"loan_id": "L1"}),
    ("loan_id", "clock.tick", {"loan_id": "L1"}),
    ("amount", "clock.tick", {"amount": 5}),
]


@pytest.mark.parametrize(
    ("field", "event_type", "changes"),
    BAD_FIELDS,
    ids=[f"{field}-{event_type}-{i}" for i, (field, event_type, _) in enumerate(BAD_FIELDS)],
)
def test_bad_field_is_rejected_with_a_reason_naming_it(field: str, event_type: str, changes: dict[str, Any]) -> None:
    rejection = rejection_of(variant(event_type, **changes))
    assert rejection.reason.startswith(f"{field}: "), rejection.reason


@pytest.mark.parametrize(
    "recorded_at",
    ["2023-02-30T10:00:00Z", "2023-03-01T25:00:00Z", "2023-03-01T10:00:00+24:00", "2023-03-01T10:61:00+07:00"],
)
def test_impossible_recorded_at_is_rejected_naming_it(recorded_at: str) -> None:
    rejection = rejection_of(variant("group.registered", recorded_at=recorded_at))
    assert rejection.reason.startswith("recorded_at: "), rejection.reason


@pytest.mark.parametrize("occurred_at", ["9999-12-31T23:59:59-01:00", "0001-01-01T03:00:00+12:00"])
def test_occurred_at_whose_vietnam_date_is_off_the_calendar_is_rejected(occurred_at: str) -> None:
    rejection = rejection_of(variant("clock.tick", occurred_at=occurred_at))
    assert rejection.reason.startswith("occurred_at: "), rejection.reason


def test_a_remembered_plain_date_is_the_date_parsed_afresh() -> None:
    """business_date keeps the plain dates it parsed; a date it refused is refused again, every time."""
    days = ["2023-03-01", "2024-02-29", "0001-01-01", "9999-12-31", "2023-01-28", "2023-02-28"]
    for _ in range(2):
        assert [business_date(text) for text in days] == [date.fromisoformat(text) for text in days]
        for text in ("2023-02-29", "2023-13-01", "2023-3-01x", "2023/03/01", "+2023-03-1"):
            with pytest.raises(ValueError):
                business_date(text)


OFFSETS = st.one_of(
    st.sampled_from(["", "Z", "z"]),
    st.builds("{}{:02}:{:02}".format, st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59)),
)


@settings(max_examples=500)
@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30, 23, 59, 59)),
    st.sampled_from("Tt "),
    st.sampled_from(["", ".5", ".123456789"]),
    OFFSETS,
)
def test_business_date_is_the_date_in_vietnam(local: datetime, separator: str, fraction: str, offset: str) -> None:
    text = f"{local.year:04}-{local:%m-%d}{separator}{local:%H:%M:%S}{fraction}{offset}"
    minutes = (
        0 if offset in ("Z", "z") else 7 * 60 if not offset else int(offset[:3]) * 60 + int(offset[0] + offset[4:])
    )
    zone = timezone(timedelta(minutes=minutes))
    assert business_date(text) == local.replace(tzinfo=zone).astimezone(VIETNAM).date(), text
    assert parse_datetime(text) == local.replace(microsecond=0, tzinfo=zone), text


@pytest.mark.parametrize(
    "offset", ["Z", "", "+07:00", "+00:00", "-00:01", "+06:59", "+07:01", "-12:30", "+23:59", "-23:59"]
)
def test_business_date_at_every_minute_of_a_day(offset: str) -> None:
    minutes = 0 if offset == "Z" else 7 * 60 if not offset else int(offset[:3]) * 60 + int(offset[0] + offset[4:])
    zone = timezone(timedelta(minutes=minutes))
    for local in (datetime(2024, 2, 29) + timedelta(minutes=n, seconds=59) for n in range(24 * 60)):
        text = f"{local:%Y-%m-%dT%H:%M:%S}{offset}"
        assert business_date(text) == local.replace(tzinfo=zone).astimezone(VIETNAM).date(), text


def test_rejection_keeps_a_readable_event_id() -> None:
    assert rejection_of(variant("loan.disbursed", amount=0)).event_id == "l1"
    assert rejection_of(variant("loan.disbursed", event_id="x" * 65)).event_id is None


def test_reason_names_every_bad_field() -> None:
    reason = rejection_of(variant("loan.disbursed", amount=-1, org="ABC", note="x")).reason
    assert reason.startswith("amount: ")
    assert "; note: " in reason
    assert "; org: " in reason


@pytest.mark.parametrize(
    "data",
    [
        variant("loan.disbursed", amount=-1, org="ABC", note="x"),  # refused by marshmallow, field by field
        {"event_id": "e1", "type": "no.such.type"},
        "[1, 2]",  # refused as a message, not as an event
    ],
)
def test_a_rejection_leaves_no_cycle_holding_its_caller(data: Any) -> None:
    """The intake and a replay run the cycle collector seldom (`uythac.cycles`), and the frames that call `parse`
    hold a whole poll or batch of records: a rejection that left a reference cycle reaching them (marshmallow's
    `Schema.validate` did: the error it catches is held by its own frame) kept all of them in memory until the
    next full collection, ~1 GB in a worker's catch-up."""

    class Poll:
        """Stands for what the calling frame holds."""

    def check(raw: bytes) -> tuple[weakref.ref[Poll], Event | Rejection]:
        poll = Poll()
        return weakref.ref(poll), parse(raw)

    raw = data.encode() if isinstance(data, str) else json.dumps(data).encode()
    gc.collect()
    gc.disable()
    try:
        held, outcome = check(raw)
        assert isinstance(outcome, Rejection)
        assert held() is None, "the caller's frame outlived the call: a reference cycle holds it"
    finally:
        gc.enable()


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"{",
        b'{"event_id": "e1",}',
        b"[1, 2]",
        b"[]",
        b"null",
        b"42",
        b"true",
        b'"a JSON string"',
        b'{"event_id": "e1", "type": "clock.tick", "occurred_at": "2023-03-01", "x": NaN}',
        b"\xff\xfe{}",
        b"   ",
    ],
)
def test_message_that_is_not_a_json_object_is_rejected(raw: bytes) -> None:
    outcome = parse(raw)
    assert isinstance(outcome, Rejection)
    assert outcome.reason.startswith("message: "), outcome.reason


def test_integer_beyond_64_bits_is_rejected_naming_its_field() -> None:
    raw = json.dumps(variant("loan.disbursed", amount=10**30)).encode()
    outcome = parse(raw)
    assert isinstance(outcome, Rejection)
    assert outcome.reason.startswith("amount: "), outcome.reason
    assert outcome.event_id == "l1"


def test_lone_surrogate_in_free_text_is_rejected_naming_its_field() -> None:
    raw = json.dumps(variant("loan.disbursed", program="\ud800x")).encode()
    outcome = parse(raw)
    assert isinstance(outcome, Rejection)
    assert outcome.reason == "program: not valid Unicode (a lone surrogate)"


def test_same_content_escaped_or_in_utf8_is_the_same_event() -> None:
    data = variant("loan.disbursed", program="Nông thôn")
    escaped, plain = parse(json.dumps(data).encode()), parse(json.dumps(data, ensure_ascii=False).encode())
    assert isinstance(escaped, Event) and isinstance(plain, Event)
    assert escaped.digest == plain.digest


def test_digest_is_blake2b_16_of_the_sorted_dump() -> None:
    """Stores keep each event's digest: the same content must keep giving the same 16 bytes."""
    for data in (*VALID.values(), variant("loan.disbursed", program="Nông thôn")):
        expected = hashlib.blake2b(orjson.dumps(data, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()
        assert digest(data) == expected
    assert digest(VALID["clock.tick"]).hex() == "073353a9112d36c97910eee324de0be9"


# --- the fast path and marshmallow agree ------------------------------------------------------

FIELD_NAMES = sorted({name for schema in SCHEMAS.values() for name in schema._declared_fields} | {"note", ""})
STRINGS = [
    "",
    "G1",
    "L1",
    "D01",
    "x" * 32,
    "x" * 33,
    "x" * 64,
    "x" * 65,
    "e1\n",
    "a b",
    "HND",
    "hnd",
    "DTN",
    "post_disbursement",
    "periodic",
    "compliant",
    "misuse",
    "1",
    "2023-03-01",
    "2023-02-29",
    "2024-02-29",
    "2023-02-30",
    "2023-03-01T10:00:00Z",
    "2023-03-01t10:00:00z",
    "2023-03-01 10:00:00",
    "2023-03-01T10:00:00.123456789+07:00",
    "2023-03-01T10:00:00.1234567890+07:00",
    "2023-03-01T10:00:60Z",
    "2023-03-01T10:00:61Z",
    "2023-03-01T23:00:00+23:59",
    "2023-03-01T10:00:00+24:00",
    "2023-02-30T10:00:00Z",
    "2023-03-01T25:00:00-05:00",
    "2023-03-01T10:00",
    *EVENT_TYPES,
]
VALUES = st.one_of(
    st.sampled_from(STRINGS),
    st.none(),
    st.booleans(),
    st.integers(-2, 3),
    st.sampled_from([10_000_000_000, 10_000_000_001, 2**63, 50_000]),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from([1.0, 0.0, 5.5]),
    st.text(max_size=8),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.sampled_from(["a", "type"]), st.integers(0, 3), max_size=1),
)


DATE_FIELDS = ("occurred_at", "recorded_at")
MONEY_FIELDS = ("amount", "principal", "interest", "overdue_principal", "schema_version")
DATES = [text for text in STRINGS if text[:2] in ("20", "99", "00")] + [
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T16:59:59Z",
    "0001-01-01T03:00:00+12:00",
    "0001-01-01",
    "2023-03-01T10:00:00+23:60",
    "2023-03-01T10:00:00-00:00",
]
NUMBERS = st.sampled_from([-1, 0, 1, 2, 10_000_000_000, 10_000_000_001, 1.0, 0.0, True, False, "1"])


def values_for(name: str) -> st.SearchStrategy[Any]:
    if name in DATE_FIELDS:
        return st.one_of(st.sampled_from(DATES), VALUES)
    if name in MONEY_FIELDS:
        return st.one_of(NUMBERS, VALUES)
    return VALUES


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    data = dict(VALID[draw(st.sampled_from(EVENT_TYPES))])
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["drop", "set", "set", "add"]))
        if action == "drop" and data:
            data.pop(draw(st.sampled_from(sorted(data))))
        elif action == "set" and data:
            name = draw(st.sampled_from(sorted(data)))
            data[name] = draw(values_for(name))
        else:
            name = draw(st.sampled_from(FIELD_NAMES))
            data[name] = draw(values_for(name))
    return data


def _marshmallow_accepts(data: dict[str, Any]) -> bool:
    event_type = data.get("type")
    if not isinstance(event_type, str) or event_type not in SCHEMAS:
        return False
    return SCHEMAS[event_type]().validate(data) == {}


@settings(max_examples=600)
@given(mutated_events())
def test_fast_path_and_marshmallow_agree(data: dict[str, Any]) -> None:
    outcome = validate(data)
    assert isinstance(outcome, Event) == _marshmallow_accepts(data), (data, outcome)
    if isinstance(outcome, Rejection):
        assert not outcome.reason.startswith("event: "), outcome.reason  # a reason names a field


PATTERNED = [  # (type, field) of every field held to a pattern: the identifiers
    (event_type, name)
    for event_type, schema in SCHEMAS.items()
    for name, field in schema._declared_fields.items()
    if any(isinstance(rule, Regexp) for rule in field.validators)
]
ODD_CHARACTERS = [chr(c) for c in range(0x80)] + ["é", "\u0130", "\u212a", "\ud800", "\U0001f600", "\uff21", "\u0661"]


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_fast_path_and_marshmallow_agree_on_every_character_of_every_identifier(event_type: str) -> None:
    """The fast path tests all of an event's identifiers' characters in one match (fastcheck._alphabets)."""
    names = [name for kind, name in PATTERNED if kind == event_type]
    longest = {name: "x" * (32 if name in ("district_id", "commune_id") else 64) for name in names}
    for name in names:
        for changes in (
            *({name: text} for c in ODD_CHARACTERS for text in (c, f"A{c}B")),
            *({**longest, name: "y" * n} for n in (0, 1, 32, 33, 64, 65)),
        ):
            data = {**VALID[event_type], **changes}
            assert isinstance(validate(data), Event) == _marshmallow_accepts(data), data


FAST_RULES = [
    (schema, name, rule)
    for schema in SCHEMAS.values()
    for name, *_ in schema._hooks["validates_schema"]
    if (rule := getattr(getattr(schema, name), "fast_rule", None)) is not None
]
RULE_VALUES: dict[str, list[Any]] = {  # every field a fast rule reads, with the values that matter to it
    "type": list(EVENT_TYPES),
    "principal": [0, 1, DROP],
    "interest": [0, 1, DROP],
    "kind": ["post_disbursement", "follow_up", "periodic", "other", DROP],
    "loan_id": ["L1", DROP],
    "group_id": ["G1", DROP],
}


def _rule_and_hook_agree(data: dict[str, Any]) -> None:
    for schema_class, name, rule in FAST_RULES:
        schema = schema_class()
        try:
            getattr(schema, name)(data)
        except ValidationError:
            passes = False
        else:
            passes = True
        values = {f"v_{field}": data.get(field) for field in schema_class._declared_fields}
        assert eval(rule, {"self": schema, "data": data, **values}) is passes, (schema_class.TYPE, name, data)


def test_each_fast_rule_says_what_its_hook_says() -> None:
    """The fast path inlines each hook's `fast_rule` instead of calling it (schemas/fastcheck.py)."""
    assert {name for _, name, _ in FAST_RULES} == {"_type_matches", "_not_both_zero", "_names_its_subject"}
    for values in itertools.product(*RULE_VALUES.values()):
        _rule_and_hook_agree({name: v for name, v in zip(RULE_VALUES, values, strict=True) if v is not DROP})


@settings(max_examples=300)
@given(mutated_events())
def test_each_fast_rule_says_what_its_hook_says_of_any_event(data: dict[str, Any]) -> None:
    _rule_and_hook_agree(data)


def test_fast_path_and_marshmallow_agree_on_every_listed_bad_field() -> None:
    for _, event_type, changes in BAD_FIELDS:
        data = variant(event_type, **changes)
        assert not isinstance(validate(data), Event)
        assert not _marshmallow_accepts(data), data


# --- the published JSON Schema files ----------------------------------------------------------


def test_committed_json_schemas_are_what_the_marshmallow_schemas_render() -> None:
    """If this fails, run `make schemas` and commit schemas/json/ and schemas/examples/."""
    documents = published()
    assert set(all_schemas()) < set(documents)  # the output messages' too
    assert sorted(p.name for p in SCHEMA_DIR.glob("*.json")) == sorted(f"{t}.schema.json" for t in documents)
    assert sorted(p.name for p in EXAMPLES_DIR.glob("*.json")) == sorted(f"{t}.json" for t in documents)
    for event_type, document in documents.items():
        assert (SCHEMA_DIR / f"{event_type}.schema.json").read_text(encoding="utf-8") == render(document), event_type
        assert (EXAMPLES_DIR / f"{event_type}.json").read_text(encoding="utf-8") == render(document["examples"][0])


def _described(document: dict[str, Any]) -> list[str]:
    """The properties of a document, at any depth, that have no description."""
    missing = []
    for name, field in document.get("properties", {}).items():
        if "description" not in field:
            missing.append(name)
        missing += [f"{name}.{inner}" for inner in _described(field) if field.get("type") == "object"]
    return missing


@pytest.mark.parametrize("message_type", sorted(published()))
def test_every_example_fits_its_schema_and_every_field_is_described(message_type: str) -> None:
    document = json.loads((SCHEMA_DIR / f"{message_type}.schema.json").read_text(encoding="utf-8"))
    example = json.loads((EXAMPLES_DIR / f"{message_type}.json").read_text(encoding="utf-8"))
    fastjsonschema.compile(document)(example)
    assert _described(document) == [] and document["description"]
    if message_type in SCHEMAS:  # an input event: the worker and the API take it as it is
        SCHEMAS[message_type]().load(example)
        assert isinstance(parse(json.dumps(example), date(2024, 12, 31)), Event)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_published_schema_accepts_the_valid_example_and_refuses_an_unknown_field(event_type: str) -> None:
    check = fastjsonschema.compile(json.loads((SCHEMA_DIR / f"{event_type}.schema.json").read_text(encoding="utf-8")))
    check(VALID[event_type])
    with pytest.raises(fastjsonschema.JsonSchemaException):
        check({**VALID[event_type], "note": "x"})


# --- not in the future --------------------------------------------------------------------------


def test_an_event_dated_after_the_latest_day_accepted_is_rejected_naming_occurred_at() -> None:
    latest = date(2026, 12, 5)
    on_the_day = variant("loan.disbursed", occurred_at="2026-12-05")
    assert isinstance(parse(json.dumps(on_the_day), latest), Event)
    after = parse(json.dumps(variant("loan.disbursed", occurred_at="2026-12-06")), latest)
    assert isinstance(after, Rejection)
    assert after.reason == "occurred_at: after today (2026-12-06; the latest accepted is 2026-12-05)"
    assert after.event_id == "l1"


def test_the_future_is_judged_by_the_business_date_in_vietnam() -> None:
    latest = date(2026, 12, 5)
    utc_evening = variant("clock.tick", occurred_at="2026-12-05T16:59:59Z")  # 23:59:59 in Vietnam: the 5th
    assert isinstance(parse(json.dumps(utc_evening), latest), Event)
    one_second_later = variant("clock.tick", occurred_at="2026-12-05T17:00:00Z")  # 00:00 on the 6th in Vietnam
    assert isinstance(parse(json.dumps(one_second_later), latest), Rejection)


def test_the_latest_day_accepted_is_today_in_vietnam_plus_the_setting() -> None:
    late_utc_evening = datetime(2026, 12, 4, 17, 30, tzinfo=UTC)  # 00:30 on the 5th in Vietnam
    assert latest_accepted(late_utc_evening, 1) == date(2026, 12, 6)
    assert latest_accepted(late_utc_evening, 0) == date(2026, 12, 5)
    assert latest_accepted(datetime(2026, 12, 4, 16, 59, tzinfo=UTC), 0) == date(2026, 12, 4)
