"""The synthetic province (`uythac generate`): deterministic, valid line by line, and as messy as promised."""

from __future__ import annotations

import gzip
import itertools
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.support import replay_into, report_at
from uythac.core.dates import parse_datetime
from uythac.core.events import Event, Rejection, parse
from uythac.devtools import generate
from uythac.schemas.events import EVENT_TYPES

SMALL = generate.GenerateOptions(communes=8, seed=11)  # about 40 000 lines, a few closed groups among them
MIDDLE = generate.GenerateOptions(communes=40, seed=11)  # 160 units: enough to see how units differ
WINDOW = date(2022, 12, 1)  # the first day of the default window
END = date(2023, 11, 30)  # its last day, the scoring day


@pytest.fixture(scope="module")
def small() -> tuple[list[str], generate.GenerateSummary]:
    province = generate.Province(SMALL)
    lines = [line for chunk in province.chunks() for line in chunk]
    return lines, province.summary


@pytest.fixture(scope="module")
def parsed(small: tuple[list[str], generate.GenerateSummary]) -> list[Event | Rejection]:
    return [parse(line) for line in small[0]]


@pytest.fixture(scope="module")
def middle() -> list[Event]:
    """The MIDDLE province's events, each once."""
    events: dict[str, Event] = {}
    for line in generate.events(MIDDLE):
        outcome = parse(line)
        if isinstance(outcome, Event):
            events.setdefault(outcome.event_id, outcome)
    return list(events.values())


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
    inspections = [event for event in events if event.type == "inspection.recorded"]
    assert {event.data["kind"] for event in inspections} == {"post_disbursement", "periodic", "follow_up"}
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


@dataclass
class _Loan:
    disbursed: date
    amount: int
    payments: list[tuple[date, int]] = field(default_factory=list)  # (day, principal)
    inspections: list[date] = field(default_factory=list)  # its loan inspections: post_disbursement and follow_up

    def owing(self, on: date) -> bool:
        return self.amount > sum(principal for day, principal in self.payments if day <= on)

    def last_activity(self, on: date) -> date:
        return max([self.disbursed, *(day for day, _ in self.payments if day <= on)])


def _loans(events: list[Event]) -> dict[str, _Loan]:
    loans = {e.data["loan_id"]: _Loan(e.day, e.data["amount"]) for e in events if e.type == "loan.disbursed"}
    for event in events:
        if event.type == "repayment.recorded":
            loans[event.data["loan_id"]].payments.append((event.day, event.data["principal"]))
        elif event.type == "inspection.recorded" and event.data["kind"] != "periodic":
            loans[event.data["loan_id"]].inspections.append(event.day)
    return loans


def _inactive_duties(loans: dict[str, _Loan], on: date) -> Counter[str]:
    """SPEC §7.1 at `on`: the inactive loans' duties by status, and the missed ones never inspected at all."""
    duties: Counter[str] = Counter()
    for loan in loans.values():
        last = loan.last_activity(on)
        if loan.disbursed > on or not loan.owing(on) or last > on - timedelta(days=90):
            continue
        opened, deadline = last + timedelta(days=90), last + timedelta(days=120)
        inspected = [day for day in loan.inspections if day <= on]
        if any(opened <= day <= deadline for day in inspected):
            duties["done"] += 1
        elif on <= deadline:
            duties["pending"] += 1
        else:
            duties["missed"] += 1
            duties["never inspected"] += not any(deadline < day for day in inspected)
    return duties


def test_some_loans_go_quiet_for_months_while_owing_and_some_of_them_pay_again(
    parsed: list[Event | Rejection],
) -> None:
    loans = _loans([outcome for outcome in parsed if isinstance(outcome, Event)])
    recovered = quiet_at_the_end = 0
    for loan in loans.values():
        days = sorted([loan.disbursed, *(day for day, _ in loan.payments)])
        recovered += sum(1 for a, b in itertools.pairwise(days) if b >= WINDOW and (b - a).days >= 90 and loan.owing(a))
        quiet_at_the_end += (END - days[-1]).days >= 90 and loan.owing(END)
    seasoned = sum(1 for loan in loans.values() if loan.disbursed <= END - timedelta(days=90) and loan.owing(END))
    assert recovered > 20, "no loan quiet for 90 days pays again in the window"
    assert 0.005 * seasoned < quiet_at_the_end < 0.1 * seasoned


def test_quiet_loans_get_follow_ups_on_time_late_or_never(parsed: list[Event | Rejection]) -> None:
    events = [outcome for outcome in parsed if isinstance(outcome, Event)]
    loans = _loans(events)
    follow_ups = [e for e in events if e.type == "inspection.recorded" and e.data["kind"] == "follow_up"]
    assert all("group_id" not in e.data and e.data["loan_id"] in loans for e in follow_ups)
    lead = WINDOW - timedelta(days=30)  # from the month before the window on, every loan that pays pays monthly
    quiet_for: Counter[str] = Counter()  # how long the loan had been quiet when it was followed up
    for event in follow_ups:
        loan = loans[event.data["loan_id"]]
        days = [day for day in sorted([loan.disbursed, *(day for day, _ in loan.payments)]) if day <= event.day]
        quiet = (event.day - days[-1]).days
        recent = [day for day in days if day >= lead]
        if quiet >= 90:
            quiet_for["within the 30 days" if quiet <= 120 else "later"] += 1
        elif (
            recent
            and (event.day - recent[0]).days > 150
            and all((b - a).days < 90 for a, b in itertools.pairwise(recent))
        ):
            quiet_for["a loan never quiet"] += 1  # for 150 days or more: not the follow-up of a quiet stretch
    assert quiet_for["within the 30 days"] >= 20 and quiet_for["later"] >= 20, quiet_for
    assert 0 < quiet_for["a loan never quiet"] < 0.2 * len(follow_ups), quiet_for
    assert 0 < sum(e.data.get("result") == "misuse" for e in follow_ups) < 0.2 * len(follow_ups)
    entered_late = [
        e
        for e in follow_ups
        if "recorded_at" in e.data and parse_datetime(e.data["recorded_at"]).date() > e.day + timedelta(days=13)
    ]
    assert entered_late, "no follow-up entered into the software weeks after it was done"
    for on in (END, date(2023, 6, 30), date(2023, 1, 10)):
        duties = _inactive_duties(loans, on)
        assert duties["done"] > 0 and duties["pending"] > 0 and duties["missed"] > duties["never inspected"] > 0, on


def test_groups_get_periodic_inspections_each_year_most_of_them_in_some_units_none_in_others(
    middle: list[Event],
) -> None:
    registered = {
        e.data["group_id"]: (e.day, e.data["commune_id"], e.data["org"]) for e in middle if e.type == "group.registered"
    }
    closed = {e.data["group_id"]: e.day for e in middle if e.type == "group.closed"}
    periodic: dict[str, list[date]] = {group_id: [] for group_id in registered}
    for event in middle:
        if event.type == "inspection.recorded" and event.data["kind"] == "periodic":
            periodic[event.data["group_id"]].append(event.day)
    days = [day for inspected in periodic.values() for day in inspected]
    by_month = Counter((day.year, day.month) for day in days)
    for year in (2021, 2022):  # December, and what slipped into the first days of the next year
        assert by_month[(year, 12)] > 0
        assert any(day.year == year + 1 and day.month == 1 and day.day <= 10 for day in days)
    usual = sum(by_month[(year, month)] for year in (2022, 2023) for month in range(3, 11)) / 16
    assert by_month[(2021, 12)] + by_month[(2022, 12)] > 2 * 1.3 * usual, "no rush to finish the year's plan"
    # Year 2022, as SPEC §7.2 reads it: groups active all year and registered 90 days before its end.
    year_end = date(2022, 12, 31)
    units: dict[tuple[str, str], list[bool]] = {}
    for group_id, (day, commune_id, org) in registered.items():
        if day <= year_end - timedelta(days=90) and closed.get(group_id, date.max) > year_end:
            inspected = any(d.year == 2022 for d in periodic[group_id])
            units.setdefault((commune_id, org), []).append(inspected)
    shares = [sum(groups) / len(groups) for groups in units.values() if len(groups) >= 3]
    everything = [inspected for groups in units.values() for inspected in groups]
    assert 0.05 < sum(everything) / len(everything) < 0.4
    assert sum(share >= 0.6 for share in shares) >= 3, "no unit inspects most of its groups in a year"
    assert sum(share == 0 for share in shares) > len(shares) / 4, "every unit inspects some groups"
    # And the group-of-the-year duty on the scoring day: done, pending, and missed last year.
    active = [
        g for g, (day, _, _) in registered.items() if day <= END - timedelta(days=90) and closed.get(g, date.max) > END
    ]
    done = sum(any(date(2023, 1, 1) <= d <= END for d in periodic[g]) for g in active)
    assert 0 < done < len(active)
    assert len(everything) - sum(everything) > 0  # missed last year
