"""The synthetic province (`uythac generate`): deterministic, valid line by line, and as messy as promised."""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.support import replay_into, report_at
from uythac.core.dates import parse_datetime
from uythac.core.events import Event, Rejection, parse
from uythac.devtools import generate
from uythac.schemas.events import EVENT_TYPES

SMALL = generate.GenerateOptions(communes=8, seed=11)  # about 50 000 lines, a few closed groups among them


@pytest.fixture(scope="module")
def small() -> tuple[list[str], generate.GenerateSummary]:
    province = generate.Province(SMALL)
    lines = [line for chunk in province.chunks() for line in chunk]
    return lines, province.summary


@pytest.fixture(scope="module")
def parsed(small: tuple[list[str], generate.GenerateSummary]) -> list[Event | Rejection]:
    return [parse(line) for line in small[0]]


def test_the_same_options_give_the_same_bytes(tmp_path: Path) -> None:
    options = generate.GenerateOptions(communes=2, months=3)
    generate.write(tmp_path / "a.jsonl.gz", options)
    generate.write(tmp_path / "b.jsonl.gz", options)
    generate.write(tmp_path / "c.jsonl.gz", generate.GenerateOptions(communes=2, months=3, seed=8))
    first = (tmp_path / "a.jsonl.gz").read_bytes()
    assert first == (tmp_path / "b.jsonl.gz").read_bytes()
    assert first != (tmp_path / "c.jsonl.gz").read_bytes()


def test_gzip_and_plain_files_hold_the_lines_the_generator_yields(tmp_path: Path) -> None:
    options = generate.GenerateOptions(communes=1, months=2)
    summary = generate.write(tmp_path / "p.jsonl.gz", options)
    generate.write(tmp_path / "p.jsonl", options)
    text = gzip.decompress((tmp_path / "p.jsonl.gz").read_bytes()).decode()
    assert text == (tmp_path / "p.jsonl").read_text(encoding="utf-8")
    assert text.splitlines() == list(generate.events(options))
    assert len(text.splitlines()) == summary.lines


def test_every_line_is_valid_but_the_broken_ones_and_the_counts_match(
    small: tuple[list[str], generate.GenerateSummary], parsed: list[Event | Rejection]
) -> None:
    lines, summary = small
    rejected = [line for line, outcome in zip(lines, parsed, strict=True) if isinstance(outcome, Rejection)]
    assert len(rejected) == summary.invalid > 0
    for line in rejected:  # broken on purpose: not an object, or an id no valid event uses
        assert not line.startswith("{") or not line.endswith("}") or '"bad-' in line or '"event_id"' not in line
    contents: dict[str, set[bytes]] = {}
    copies = 0
    for outcome in parsed:
        if isinstance(outcome, Event):
            copies += outcome.event_id in contents
            contents.setdefault(outcome.event_id, set()).add(outcome.digest)
    assert all(len(digests) == 1 for digests in contents.values()), "an event_id with two contents"
    assert copies == summary.duplicates > 0
    assert len(contents) == summary.events
    assert summary.lines == len(lines) == summary.events + summary.duplicates + summary.invalid
    assert all(len(event_id) <= 64 for event_id in contents)


def test_the_window_ends_on_the_scoring_day_and_history_comes_before_it(
    small: tuple[list[str], generate.GenerateSummary], parsed: list[Event | Rejection]
) -> None:
    _, summary = small
    days = [outcome.day for outcome in parsed if isinstance(outcome, Event)]
    assert summary.last_day == max(days) == date(2023, 11, 30)
    assert summary.first_day == min(days) < date(2020, 1, 1)
    ticks = [o.event_id for o in parsed if isinstance(o, Event) and o.type == "clock.tick"]
    month_ends = [date(2022 + (11 + n) // 12, (11 + n) % 12 + 1, 1) - timedelta(days=1) for n in range(13)]
    assert ticks == [f"tick-{day.isoformat()}" for day in month_ends]  # the month before the window, and its 12


def test_a_small_province_has_every_kind_of_event_and_of_mess(
    small: tuple[list[str], generate.GenerateSummary], parsed: list[Event | Rejection]
) -> None:
    events = [outcome for outcome in parsed if isinstance(outcome, Event)]
    assert {event.type for event in events} == set(EVENT_TYPES)
    assert {event.data["org"] for event in events if "org" in event.data} == {"HND", "HPN", "HCCB", "DTN"}
    assert {event.data.get("result") for event in events if event.type == "inspection.recorded"} == {
        None,
        "compliant",
        "misuse",
    }
    forms = Counter(_form(event.data["occurred_at"]) for event in events)
    assert set(forms) == {"date", "+07:00", "Z", "no offset"}
    assert forms["date"] > 0.8 * len(events)
    eves = [
        event
        for event in events
        if _form(event.data["occurred_at"]) == "Z"
        and parse_datetime(event.data["occurred_at"]).date() + timedelta(days=1) == event.day
    ]
    assert eves, "no UTC date-time whose Vietnam date is the next day"
    assert any("recorded_at" in event.data for event in events)
    latest, out_of_order = date.min, 0
    for event in events:
        out_of_order += event.day + timedelta(days=1) < latest
        latest = max(latest, event.day)
    assert 0 < out_of_order < 0.05 * len(events)


def test_amounts_and_groups_look_like_a_province(parsed: list[Event | Rejection]) -> None:
    events = [outcome for outcome in parsed if isinstance(outcome, Event)]
    amounts = [event.data["amount"] for event in events if event.type == "loan.disbursed"]
    assert min(amounts) >= 10_000_000 and max(amounts) <= 100_000_000
    assert 20_000_000 < sum(amounts) / len(amounts) < 80_000_000
    programs = Counter(event.data["program"] for event in events if event.type == "loan.disbursed")
    assert {"poor_household", "near_poor", "clean_water", "student", "job_creation"} <= set(programs)
    groups = Counter(
        (event.data["commune_id"], event.data["org"]) for event in events if event.type == "group.registered"
    )
    for commune in (f"C{number:04d}" for number in range(1, 9)):
        assert groups[(commune, "HND")] > groups[(commune, "DTN")] >= 1


def test_an_on_time_inspection_entered_late_clears_its_flag(tmp_path: Path) -> None:
    lines = list(generate.events(generate.GenerateOptions(communes=1, seed=6)))
    parsed = [parse(line) for line in lines]
    disbursed = {o.data["loan_id"]: o.day for o in parsed if isinstance(o, Event) and o.type == "loan.disbursed"}
    position, loan_id = next(
        (number, o.data["loan_id"])
        for number, o in enumerate(parsed)
        if isinstance(o, Event)
        and o.data.get("kind") == "post_disbursement"
        and "recorded_at" in o.data
        and o.data["loan_id"] in disbursed
        and o.day <= disbursed[o.data["loan_id"]] + timedelta(days=30)
        and parse_datetime(o.data["recorded_at"]).date() > disbursed[o.data["loan_id"]] + timedelta(days=31)
        and date(2023, 1, 1) < o.day
    )
    db = tmp_path / "late.db"
    replay_into(db, lines[:position])
    assert loan_id in {flag["loan_id"] for flag in report_at(db)["flags"]}
    replay_into(db, lines[position:])
    assert loan_id not in {flag["loan_id"] for flag in report_at(db)["flags"]}


def test_replay_accepts_every_event_once_and_rejects_only_the_broken_lines(tmp_path: Path) -> None:
    province = generate.Province(generate.GenerateOptions(communes=1, seed=3))
    lines = [line for chunk in province.chunks() for line in chunk]
    summary = replay_into(tmp_path / "r.db", lines)
    assert summary.read == len(lines) == summary.accepted + summary.duplicates + summary.rejected
    assert (summary.accepted, summary.duplicates, summary.rejected) == (
        province.summary.events,
        province.summary.duplicates,
        province.summary.invalid,
    )
    report = report_at(tmp_path / "r.db")
    assert report["as_of"] == "2023-11-30"
    assert sorted(unit["org"] for unit in report["units"]) == sorted(["HND", "HPN", "HCCB", "DTN"])


@pytest.mark.parametrize("target", [50_000, 120_000])
def test_options_for_events_sizes_the_province(target: int) -> None:
    options = generate.options_for_events(target, seed=7, districts=27, months=12, start=date(2022, 12, 1))
    lines = sum(1 for _ in generate.events(options))
    assert abs(lines - target) < 0.15 * target


def test_a_single_commune_is_enough_and_districts_are_uneven() -> None:
    one = generate.Province(generate.GenerateOptions(communes=1, months=1))
    assert [commune.district_id for commune in one.communes] == ["D01"]
    districts = generate._districts(generate.GenerateOptions())
    sizes = [size for _, _, size in districts]
    assert [district_id for district_id, _, _ in districts] == [f"D{number:02d}" for number in range(1, 28)]
    assert sum(sizes) == 520 and max(sizes) > 2 * min(sizes)


def test_a_commune_is_the_same_whatever_the_size_of_the_province() -> None:
    small, large = generate.Province(SMALL), generate.Province(generate.GenerateOptions(communes=30, seed=11))
    assert [len(g.loans) for u in small.communes[0].units for g in u.groups] == [
        len(g.loans) for u in large.communes[0].units for g in u.groups
    ]


def _form(occurred_at: str) -> str:
    if len(occurred_at) == 10:
        return "date"
    if occurred_at.endswith("Z"):
        return "Z"
    return "+07:00" if occurred_at.endswith("+07:00") else "no offset"


def test_broken_lines_are_broken_in_the_promised_ways() -> None:
    line = json.dumps(
        {
            "event_id": "L-C0001-HND-00001:paid:202301",
            "type": "repayment.recorded",
            "occurred_at": "2023-01-15",
            "district_id": "D01",
            "commune_id": "C0001",
            "org": "HND",
            "loan_id": "L-C0001-HND-00001",
            "principal": 0,
            "interest": 275000,
        },
        separators=(",", ":"),
    )
    rng = random.Random(1)
    broken = {generate._break(rng, line, number) for number in range(200)}
    assert all(isinstance(parse(text), Rejection) for text in broken)
    assert len(broken) > 10
