"""A synthetic Thanh Hóa-like province of entrusted lending, as events (`uythac generate`, `uythac demo`).

Why: the product answers a letter about the scores of 520 communes, and nobody may ship the bank's real
data around. To show, test and benchmark the engine we need a province that behaves like one: uneven
districts and communes, four organizations of different sizes, groups and loans that existed before the
window, monthly interest and savings, instalments, overdue loans and loans that go quiet for months (some
pay again, some never do), and officers whose habits differ from unit to unit: a 30-day inspection done on
time, late, or on time but entered into the software weeks later; the follow-up of a loan quiet for 90 days
done within the next 30 days, later or never; a few units that inspect most of their groups every year and
many that inspect few, with a rush in November and December and what slipped into early January. So every
inspection duty (docs/contract.md) shows done, pending and missed. Scored at the end of a 12-month window with
the default scorecard, the Farmers' Associations come out in the letter's shape: a few Tốt, a fifth Khá,
most Trung bình, a few Yếu. The file is as messy as real delivery: mixed date forms, late and out-of-order
lines, exact duplicates and a few broken lines.

How: every commune draws its structure and behaviour from its own random stream (seeded by the seed and
its number), so a commune is the same whatever the size of the province. The simulation walks calendar
months: before the window in brief (the registrations, disbursements and principal instalments of the
loans still outstanding, their interest every other month, the last interest payment of those already
quiet, and the last year's inspections and follow-ups), then the month before the window and the window in
full. Each line is put on an agenda at the day it arrives; a day is written once its month is done, so
memory holds about a month of lines, and the same options always give the same bytes.
"""

from __future__ import annotations

import gzip
import json
import math
import random
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import IO

from uythac.schemas.events import ORGS

MAX_SCALE = 50.0  # of `GenerateOptions.scale`: a commune of at most about 2 000 groups
REVISION = 3  # of the events a seed gives: raised when they change, so `make run` makes its demo afresh
LEAD_MONTHS = 1  # months simulated in full before the window, so that its first scores see a live province
HISTORY_YEARS = 20  # the oldest groups were registered this long before the window
INSPECTION_HISTORY_DAYS = 400  # loans disbursed this close to the window bring their 30-day inspection
NEVER = 1 << 30  # a month index no loan reaches: no instalment left
HOUR = 3600

# Share of an average commune's groups per organization: Farmers and Women the largest, Youth the smallest.
ORG_GROUPS = {"HND": 6.5, "HPN": 5.8, "HCCB": 2.6, "DTN": 1.6}
ORG_MEMBERS = {"HND": (8, 60, 30), "HPN": (8, 60, 32), "HCCB": (6, 50, 24), "DTN": (5, 40, 16)}  # low, high, mode


@dataclass(frozen=True)
class Program:
    """A VBSP lending program: amounts in millions of VND, terms in months, monthly interest rate."""

    name: str
    weight: int
    low: int
    high: int
    terms: tuple[int, ...]
    rate: float


PROGRAMS = (
    Program("poor_household", 30, 30, 100, (36, 48, 60), 0.0055),
    Program("near_poor", 20, 30, 100, (36, 48, 60), 0.00627),
    Program("just_out_of_poverty", 10, 30, 100, (36, 48), 0.00633),
    Program("job_creation", 12, 40, 100, (24, 36, 60), 0.0055),
    Program("clean_water", 14, 10, 25, (36, 60), 0.0075),
    Program("disadvantaged_area", 8, 30, 100, (36, 60), 0.009),
    Program("student", 4, 20, 60, (48, 60), 0.0055),
    Program("social_housing", 2, 40, 50, (60,), 0.0025),
)
PROGRAM_WEIGHTS = [program.weight for program in PROGRAMS]

PLAIN = 0.86  # share of events written the plain way: a YYYY-MM-DD date, delivered on the day
DUPLICATE = 0.02  # of the other events: delivered twice
BROKEN = 0.0025  # of the other events: followed by a broken line (about 0.035 % of all lines)
MISUSE = 0.01  # inspections that find the loan used for something else
FOLLOW_UP_MISUSE = 0.05  # follow-ups of a loan that stopped paying find its money misused more often
INACTIVE_DAYS, INACTIVE_INSPECTION_DAYS = 90, 30  # a loan quiet this long is due a follow-up within 30 more days
PAYMENT = "repayment.recorded"

# Officers' habits. Each unit draws its own around these centres, as (centre, spread) on a logit or log scale.
# They are calibrated so that the default province, scored on its last day, gives the Farmers' Associations
# the letter's shape (about 0.5 % Tốt, 25 % Khá, 70 % Trung bình, 4 % Yếu); the units' sizes matter as much:
# a unit of five groups can only score its groups' savings in fifths.
DIRECTION = 0.5  # spread of a district's direction of inspection work (the letter asks districts to direct it)
EXEMPLARY, EXEMPLARY_LIFT = 0.007, 3.0  # the few units that do everything by the book, and by how much
INSPECTED = (-2.3, 0.6)  # logit of the share of 30-day inspections done within the 30 days (about 10 %)
COVERAGE = (-2.8, 1.0)  # logit of the share of groups given a periodic inspection in a year (about 6 %) ...
PLANNED, PLANNED_COVERAGE = 0.05, (0.6, 0.95)  # ... but a few units keep to their yearly plan (about 14 % in all)
# When periodic inspections are done, by calendar month (January first): few at Tết (February), a rush to finish
# the year's plan in November and December, and in January what slipped over the new year (early in the month).
SEASON = (1.1, 0.5, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 1.3, 1.9)
JANUARY_EARLY = 0.5  # of January's periodic inspections: in its first 10 days
# Logit lift and spread of the share of loans quiet for 90 days given a follow-up within 30 days, over the unit's
# share of 30-day inspections done on time: the borrower who stops coming to the group's sessions is noticed, so
# about 20 % (a unit that does its 30-day inspections does its follow-ups too); as many more are done later.
FOLLOW_UP = (1.0, 0.7)
VISIT = 0.03  # chance that an instalment paid short brings a follow-up, where half the quiet loans get theirs
SAVING = (1.3, 0.2)  # logit of a group's chance to deposit at a month's session (about 78 %)
SILENT = (-3.15, 0.25)  # log of the share of loans whose borrowers have stopped paying (about 4 %, fewer in good units)
SILENT_DIRECTION = 0.4  # where a district directs the work well, officers also chase the borrowers who stop paying
EXTENSION = (0.8, 0.98)  # range of the chance that a silent borrower's instalment is postponed, not overdue
MISS = (-2.25, 0.15)  # log of the chance that an instalment is paid short (about 10 %)
NEW_GROUPS = 0.003  # chance, per group and month, that its unit registers a new group
CLOSING = 0.002  # chance, per group and month, that its unit closes one (its borrowers join another group)


@dataclass(frozen=True)
class GenerateOptions:
    """The province to generate: its size, the window (`months` from `start`) and the random seed; `scale`
    multiplies the groups of every commune (each unit keeps at least one), so that a province of a given
    number of communes can be made smaller or larger (`options_for_events`)."""

    communes: int = 520
    districts: int = 27
    months: int = 12
    start: date = date(2022, 12, 1)
    seed: int = 7
    scale: float = 1.0

    def __post_init__(self) -> None:
        for name in ("communes", "districts", "months"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name}: must be at least 1, not {getattr(self, name)}")
        if self.communes > 99_999 or self.districts > 9_999:
            raise ValueError("--communes, --districts: at most 99 999 communes and 9 999 districts")
        if not date(1990, 1, 1) <= self.start <= date(9000, 1, 1):
            raise ValueError(f"--start: must lie between 1990 and 9000, not {self.start}")
        if not 0 < self.scale <= MAX_SCALE:
            raise ValueError(f"scale: must lie in (0, {MAX_SCALE}], not {self.scale}")

    @property
    def end(self) -> date:
        """The last day of the window: the scoring day (30 Nov 2023 for 12 months from 1 Dec 2022)."""
        month = self.start.year * 12 + self.start.month - 1 + self.months
        month_days = _first_day(month + 1) - _first_day(month)
        return date(month // 12, month % 12 + 1, min(self.start.day, month_days)) - timedelta(days=1)


@dataclass(frozen=True)
class GenerateSummary:
    """What a generated file holds: lines = events + duplicates + invalid."""

    lines: int
    events: int
    duplicates: int
    invalid: int
    first_day: date
    last_day: date


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _between(rng: random.Random, low: int, high: int) -> int:
    """A whole number from low to high, both included (as `rng.randint`, but faster)."""
    return low + int(rng.random() * (high - low + 1))


def _draw(rng: random.Random, habit: tuple[float, float]) -> float:
    centre, spread = habit
    return rng.gauss(centre, spread)


def _month_of(day: int) -> int:
    """The month index (year × 12 + month − 1) of a day ordinal."""
    as_date = date.fromordinal(day)
    return as_date.year * 12 + as_date.month - 1


def _first_day(month: int) -> int:
    return date(month // 12, month % 12 + 1, 1).toordinal()


class _Unit:
    """A (commune, organization) and its officers' habits, drawn once."""

    __slots__ = (
        "commune",
        "cure",
        "entered_late",
        "envelope",
        "extension",
        "follow_entered_late",
        "follow_late",
        "follow_on_time",
        "groups",
        "groups_made",
        "late",
        "loans_made",
        "miss",
        "new_group",
        "on_time",
        "org",
        "periodic",
        "resume",
        "rng",
        "saving",
        "silence",
        "silent_share",
        "visit",
    )

    def __init__(self, rng: random.Random, commune: _Commune, org: str, direction: float) -> None:
        self.rng, self.commune, self.org = rng, commune, org
        self.envelope = f'"district_id":"{commune.district_id}","commune_id":"{commune.commune_id}","org":"{org}"'
        self.groups: list[_Group] = []
        self.groups_made = self.loans_made = 0
        lift = EXEMPLARY_LIFT if rng.random() < EXEMPLARY else 0.0
        # The 30-day inspection: done and entered on time, done on time but entered weeks later, done late.
        diligence = _draw(rng, INSPECTED) + direction + lift
        inspected = _sigmoid(diligence)
        entered_late = rng.uniform(0.05, 0.4)
        self.on_time = inspected * (1 - entered_late)
        self.entered_late = inspected * entered_late
        self.late = (1 - inspected) * rng.uniform(0.2, 0.6)
        coverage = min(0.995, _sigmoid(_draw(rng, COVERAGE) + direction + 1.5 * lift))
        if rng.random() < PLANNED:
            coverage = max(coverage, rng.uniform(*PLANNED_COVERAGE))
        # A group's chance of a periodic inspection in each calendar month: `coverage` in a year, by SEASON.
        self.periodic = tuple(1 - (1 - coverage) ** (weight / sum(SEASON)) for weight in SEASON)
        # The follow-up of a loan quiet for 90 days: done within the 30 days (and entered as promptly as the
        # unit's 30-day inspections), done later, or never.
        self.follow_on_time = _sigmoid(diligence + _draw(rng, FOLLOW_UP))
        self.follow_entered_late = entered_late
        self.follow_late = (1 - self.follow_on_time) * rng.uniform(0.2, 0.5)
        self.visit = VISIT * 2 * (self.follow_on_time + self.follow_late)
        self.saving = _sigmoid(_draw(rng, SAVING) + lift)
        self.silent_share = min(0.3, math.exp(_draw(rng, SILENT) - SILENT_DIRECTION * direction - lift))
        self.resume = rng.uniform(0.08, 0.2)  # a silent borrower's chance to pay again, each month
        self.silence = self.silent_share * self.resume / (1 - self.silent_share)  # keeps the share steady
        self.extension = rng.uniform(*EXTENSION)
        self.miss = min(0.3, math.exp(_draw(rng, MISS) - lift))
        self.cure = rng.uniform(0.2, 0.5)  # the chance that overdue principal is paid, each month
        self.new_group = 0.0


class _Group:
    """A savings-and-loan group (Tổ TK&VV): its members, how regularly it saves, its outstanding loans."""

    __slots__ = ("group_id", "loans", "members", "registered", "saving", "slots", "unit")

    def __init__(self, unit: _Unit, registered: int) -> None:
        rng = unit.rng
        low, high, mode = ORG_MEMBERS[unit.org]
        unit.groups_made += 1
        self.group_id = f"G-{unit.commune.commune_id}-{unit.org}-{unit.groups_made:03d}"
        self.unit, self.registered = unit, registered
        self.members = round(rng.triangular(low, high, mode))
        self.slots = max(2, round(self.members * rng.uniform(0.5, 0.75)))  # members who borrow
        self.saving = _sigmoid(_logit(unit.saving) + rng.gauss(0, 0.2))
        self.loans: list[_Loan] = []


class _Loan:
    """A loan: its schedule (instalments every `every` months up to `maturity`) and how it is going."""

    __slots__ = (
        "amount",
        "disbursed",
        "every",
        "followed",
        "group",
        "head",
        "instalment",
        "interest",
        "last",
        "loan_id",
        "maturity",
        "next_due",
        "outstanding",
        "overdue",
        "program",
        "rate",
        "silent",
        "silent_since",
        "term",
        "unit",
    )

    def __init__(self, unit: _Unit, group: _Group) -> None:
        rng = unit.rng
        unit.loans_made += 1
        program = rng.choices(PROGRAMS, PROGRAM_WEIGHTS)[0]
        self.unit, self.group, self.program, self.rate = unit, group, program.name, program.rate
        self.loan_id = f"L-{unit.commune.commune_id}-{unit.org}-{unit.loans_made:05d}"
        self.head = f'{unit.envelope},"loan_id":"{self.loan_id}"'
        self.amount = self.outstanding = _between(rng, program.low * 2, program.high * 2) * 500_000
        self.term = rng.choice(program.terms)
        self.every = 6 if rng.random() < 0.5 else 12  # principal instalments every 6 or 12 months
        self.instalment = self.amount * self.every // self.term // 100_000 * 100_000
        self.interest = self._interest()
        self.overdue = 0
        self.silent = False
        self.silent_since = NEVER  # the month it stopped paying, for a loan already silent at the opening
        self.disbursed = self.maturity = self.next_due = 0
        self.last = 0  # the day of its last activity: its disbursement or its latest repayment
        self.followed = -1  # the `last` of the quiet stretch whose follow-up is decided

    def schedule(self, disbursed: int) -> None:
        """Disbursed on this day: the first instalment `every` months later, the last at maturity."""
        start = _month_of(disbursed)
        self.disbursed, self.maturity, self.next_due = disbursed, start + self.term, start + self.every
        self.last = disbursed

    def _interest(self) -> int:
        return max(1000, round(self.outstanding * self.rate / 1000) * 1000)

    def due(self) -> int:
        """The principal falling due at `next_due`, and move `next_due` on."""
        owing = self.outstanding - self.overdue
        amount = owing if self.next_due >= self.maturity else min(self.instalment, owing)
        self.next_due = self.next_due + self.every if self.next_due < self.maturity else NEVER
        return amount

    def postpone(self) -> None:
        """The bank extends the instalment due (gia hạn nợ): it and the rest of the schedule move on `every` months."""
        self.next_due += self.every
        self.maturity += self.every

    def pay(self, principal: int) -> None:
        self.outstanding -= principal
        self.interest = self._interest()


class _Commune:
    """A commune (xã, phường, thị trấn): its own random stream and its four units."""

    __slots__ = ("commune_id", "district_id", "interest_rng", "rng", "transaction_day", "units")

    def __init__(
        self, commune_id: str, district_id: str, rng: random.Random, interest_rng: random.Random, transaction_day: int
    ) -> None:
        self.commune_id, self.district_id, self.rng = commune_id, district_id, rng
        # The brief history's interest payments draw their delivery from a stream of their own, so that adding
        # them left every other draw, and the province's scores, as they were.
        self.interest_rng = interest_rng
        self.transaction_day = transaction_day  # the day of the month the bank's mobile desk comes
        self.units: list[_Unit] = []


def _districts(options: GenerateOptions) -> list[tuple[str, float, int]]:
    """(district_id, direction, communes): communes spread unevenly, every district with at least one."""
    rng = random.Random(f"uythac-districts:{options.seed}")
    count = min(options.districts, options.communes)
    weights = [rng.lognormvariate(0, 0.45) for _ in range(options.districts)][:count]
    directions = [rng.gauss(0, DIRECTION) for _ in range(options.districts)][:count]
    spare = options.communes - count
    shares = [spare * w / sum(weights) for w in weights]
    sizes = [1 + int(share) for share in shares]
    by_remainder = sorted(range(count), key=lambda i: (int(shares[i]) - shares[i], i))
    for i in by_remainder[: options.communes - sum(sizes)]:
        sizes[i] += 1
    return [(f"D{i + 1:02d}", directions[i], sizes[i]) for i in range(count)]


def _commune(seed: int, number: int, district_id: str, direction: float, opening: int, scale: float = 1.0) -> _Commune:
    """A commune with its four units, their groups and the loans outstanding on the `opening` day."""
    rng = random.Random(f"uythac-commune:{seed}:{number}")
    size = min(3.0, max(0.3, rng.lognormvariate(0, 0.25)))
    interest_rng = random.Random(f"uythac-interest:{seed}:{number}")
    commune = _Commune(f"C{number:04d}", district_id, rng, interest_rng, _between(rng, 1, 28))
    for org in ORGS:
        unit = _Unit(rng, commune, org, direction)
        for _ in range(max(1, round(scale * size * ORG_GROUPS[org] * rng.uniform(0.75, 1.25)))):
            age = min(HISTORY_YEARS * 365 - 1, 30 + int(rng.expovariate(1 / 2200)))
            group = _Group(unit, opening - age)
            unit.groups.append(group)
            for _ in range(round(group.slots * rng.uniform(0.85, 1.0))):
                group.loans.append(_opening_loan(group, opening))
        unit.new_group = NEW_GROUPS * len(unit.groups)
        commune.units.append(unit)
    return commune


def _opening_loan(group: _Group, opening: int) -> _Loan:
    """A loan outstanding at the opening: disbursed within its term, after its group's registration."""
    unit = group.unit
    rng = unit.rng
    loan = _Loan(unit, group)
    loan.schedule(opening - _between(rng, 1, min((loan.term - 1) * 30, opening - group.registered - 1)))
    if rng.random() < unit.silent_share:  # it stopped paying a while ago
        loan.silent_since = max(
            loan.next_due - loan.every + 1, _month_of(opening) - 1 - int(rng.expovariate(unit.resume))
        )
        loan.silent = True
    return loan


def _history_instalments(loan: _Loan, first_full: int) -> range:
    """The months of the loan's instalments due before the full simulation."""
    return range(loan.next_due, min(first_full - 1, loan.maturity) + 1, loan.every)


def _history_interest(loan: _Loan, first_full: int) -> list[int]:
    """The months of the brief history in which the loan pays its interest alone: every other month after its
    disbursement, where no instalment falls, until it goes quiet. (A borrower pays interest every month; every
    other month keeps the history short and still shows no paying loan 90 days without a transaction.)"""
    start, end = _month_of(loan.disbursed), min(first_full - 1, loan.maturity, loan.silent_since - 2)
    instalments = set(_history_instalments(loan, first_full))
    return [month for month in range(start + 2, end + 1, 2) if month not in instalments]


def _expected_events(commune: _Commune, first_full: int, full_months: int) -> float:
    """About how many events a commune gives (for `options_for_events`), from its skeleton."""
    loans = [loan for unit in commune.units for group in unit.groups for loan in group.loans]
    groups = sum(len(unit.groups) for unit in commune.units)
    history = sum(
        len(_history_instalments(loan, first_full)) + len(_history_interest(loan, first_full)) for loan in loans
    )
    return 1.3 * len(loans) + 5 * groups + history + full_months * (1.05 * len(loans) + 0.9 * groups)


def options_for_events(
    events: int, *, seed: int, districts: int, months: int, start: date, communes: int | None = None
) -> GenerateOptions:
    """Options whose province has about `events` events: `communes` of them, their groups scaled to fit; without
    `communes`, as many full-size communes as fit (and one, scaled down, when one alone is too many). The
    estimate comes from the communes' skeletons: the file is within about 15 % of `events`, never below the
    smallest province (one group per organization)."""
    first_full = start.year * 12 + start.month - 1 - LEAD_MONTHS
    opening, full_months = _first_day(first_full), months + LEAD_MONTHS

    def expected(count: int, scale: float) -> float:
        return sum(
            _expected_events(_commune(seed, n, "D01", 0.0, opening, scale), first_full, full_months)
            for n in range(1, count + 1)
        )

    shaped = partial(GenerateOptions, districts=districts, months=months, start=start, seed=seed)
    if communes is None:
        total, communes = 0.0, 0
        while total < events and communes < 99_999:
            commune = _commune(seed, communes + 1, "D01", 0.0, opening)
            size = _expected_events(commune, first_full, full_months)
            if total + size / 2 > events and communes:
                break
            total += size
            communes += 1
        if communes > 1 or total <= 1.15 * events:
            return shaped(communes=communes)
    scale = 1.0
    for _ in range(4):  # the groups round, and each unit keeps one: a few corrections
        scale = min(MAX_SCALE, max(0.01, scale * events / max(expected(communes, scale), 1.0)))
    return shaped(communes=communes, scale=scale)


class Province:
    """The simulation: iterate `chunks()` once; `summary` is complete after it."""

    def __init__(self, options: GenerateOptions) -> None:
        self.options = options
        self.end = options.end.toordinal()
        self.first_full = options.start.year * 12 + options.start.month - 1 - LEAD_MONTHS
        opening = _first_day(self.first_full)
        self.communes: list[_Commune] = []
        number = 0
        for district_id, direction, size in _districts(options):
            for _ in range(size):
                number += 1
                self.communes.append(_commune(options.seed, number, district_id, direction, opening, options.scale))
        self.base = opening - HISTORY_YEARS * 365 - 1
        self.dates = [date.fromordinal(day).isoformat() for day in range(self.base, self.end + 1)]
        self.agenda: list[list[str]] = [[] for _ in self.dates]
        self.extras: dict[int, list[tuple[bool, str]]] = {}  # day → (is a duplicate, line): copies and broken lines
        self.broken = 0
        self.events = self.duplicates = self.invalid = 0
        # The history is indexed by month: groups registered, loans disbursed, instalments due.
        self.registrations: dict[int, list[_Group]] = {}
        self.disbursements: dict[int, list[_Loan]] = {}
        self.instalments: dict[int, list[_Loan]] = {}
        # Loans already quiet at the opening: the month of their last interest payment, the month they went quiet,
        # and (filled as the history goes) the month their follow-up falls due.
        self.last_interest: dict[int, list[_Loan]] = {}
        self.interest: dict[int, list[_Loan]] = {}  # loans paying their interest alone, by month of the history
        self.silences: dict[int, list[_Loan]] = {}
        self.follow_ups: dict[int, list[_Loan]] = {}
        for unit in self._units():
            for group in unit.groups:
                self.registrations.setdefault(_month_of(group.registered), []).append(group)
                for loan in group.loans:
                    self.disbursements.setdefault(_month_of(loan.disbursed), []).append(loan)
                    instalments = _history_instalments(loan, self.first_full)
                    for due in instalments:
                        self.instalments.setdefault(due, []).append(loan)
                    for paid in _history_interest(loan, self.first_full):
                        self.interest.setdefault(paid, []).append(loan)
                    if loan.silent_since != NEVER:
                        self.silences.setdefault(loan.silent_since, []).append(loan)
                        if loan.silent_since - 1 not in instalments:
                            self.last_interest.setdefault(loan.silent_since - 1, []).append(loan)
        self.first_day = date.fromordinal(min(g.registered for u in self._units() for g in u.groups))

    def _units(self) -> Iterator[_Unit]:
        for commune in self.communes:
            yield from commune.units

    def expected_lines(self) -> int:
        """About how many lines `chunks()` gives (the estimate of `options_for_events`), for a progress bar."""
        full_months = self.options.months + LEAD_MONTHS
        return round(sum(_expected_events(commune, self.first_full, full_months) for commune in self.communes))

    @property
    def summary(self) -> GenerateSummary:
        return GenerateSummary(
            lines=self.events + self.duplicates + self.invalid,
            events=self.events,
            duplicates=self.duplicates,
            invalid=self.invalid,
            first_day=self.first_day,
            last_day=self.options.end,
        )

    def chunks(self) -> Iterator[list[str]]:
        """The lines (without newline) in arrival order, a day's worth at a time."""
        first = _month_of(self.first_day.toordinal())
        last = _month_of(self.end)
        flushed = self.base
        for month in range(first, last + 1):
            if month < self.first_full:
                self._history_month(month)
            else:
                self._full_month(month)
            until = min(_first_day(month + 1) - 1, self.end)
            for day in range(flushed + 1, until + 1):
                yield from self._arrivals(day)
            flushed = until

    def _arrivals(self, day: int) -> Iterator[list[str]]:
        lines = self.agenda[day - self.base]
        self.agenda[day - self.base] = []
        self.events += len(lines)
        extras = self.extras.pop(day, [])
        for is_copy, line in extras:
            lines.append(line)
            if is_copy:
                self.duplicates += 1
            else:
                self.invalid += 1
        if lines:
            yield lines

    # Writing events ---------------------------------------------------------------------------------------------

    def _put(self, rng: random.Random, day: int, event_id: str, kind: str, rest: str) -> None:
        """Put an event dated `day` on the agenda; `rest` is its fields after `occurred_at`."""
        if day > self.end:
            return
        r = rng.random()
        if r < PLAIN:
            occurred = self.dates[day - self.base]
            self.agenda[day - self.base].append(
                f'{{"event_id":"{event_id}","type":"{kind}","occurred_at":"{occurred}",{rest}}}'
            )
        else:
            self._odd(rng, (r - PLAIN) / (1 - PLAIN), day, event_id, kind, rest)

    def _odd(self, rng: random.Random, u: float, day: int, event_id: str, kind: str, rest: str) -> None:
        """An event not written the plain way: a date-time, a recorded_at, a late delivery, a copy, a broken line."""
        if u < 0.4:
            occurred = self._clock(rng, day) + "+07:00"
        elif u < 0.65:
            occurred = self._utc(rng, day)
        elif u < 0.75:
            occurred = self._clock(rng, day)  # no offset: Vietnam time
        else:
            occurred = self.dates[day - self.base]
        v, arrival, extra = rng.random(), day, ""
        if v < 0.45:  # entered into the software on the day, or a few days later
            arrival += 0 if v < 0.25 else _between(rng, 1, 3) if v < 0.4 else _between(rng, 4, 21)
        elif v < 0.55:  # delivered late
            arrival += _between(rng, 1, 14)
        elif v < 0.58:
            extra = ',"schema_version":1'
        if arrival > self.end:
            return
        if v < 0.45:
            extra = f',"recorded_at":"{self._evening(rng, arrival)}"'
        line = f'{{"event_id":"{event_id}","type":"{kind}","occurred_at":"{occurred}"{extra},{rest}}}'
        self.agenda[arrival - self.base].append(line)
        w = rng.random()
        if w < DUPLICATE:
            again = arrival + _between(rng, 0, 5)
            if again <= self.end:
                self.extras.setdefault(again, []).append((True, _copy(rng, line)))
        elif w < DUPLICATE + BROKEN:
            self.broken += 1
            self.extras.setdefault(arrival, []).append((False, _break(rng, line, self.broken)))

    def _put_entered_late(
        self, rng: random.Random, day: int, entered: int, event_id: str, kind: str, rest: str
    ) -> None:
        """An event dated `day` but entered (and delivered) on `entered`; not in the file if after the end."""
        if entered > self.end:
            return
        line = (
            f'{{"event_id":"{event_id}","type":"{kind}","occurred_at":"{self.dates[day - self.base]}",'
            f'"recorded_at":"{self._evening(rng, entered)}",{rest}}}'
        )
        self.agenda[entered - self.base].append(line)

    def _clock(self, rng: random.Random, day: int) -> str:
        """`YYYY-MM-DDThh:mm:ss` in office hours, Vietnam time."""
        return f"{self.dates[day - self.base]}T{_time(_between(rng, 7 * HOUR, 17 * HOUR - 1))}"

    def _evening(self, rng: random.Random, day: int) -> str:
        """When a fact was entered: the end of a working day, Vietnam time."""
        return f"{self.dates[day - self.base]}T{_time(_between(rng, 17 * HOUR, 22 * HOUR - 1))}+07:00"

    def _utc(self, rng: random.Random, day: int) -> str:
        """A UTC date-time whose Vietnam date is `day`; half of them before 07:00 there, so the UTC date is the eve."""
        early = rng.random() < 0.5
        seconds = _between(rng, 5 * HOUR, 7 * HOUR - 1) if early else _between(rng, 7 * HOUR, 17 * HOUR - 1)
        utc_day, utc_seconds = (day - 1, seconds + 17 * HOUR) if early else (day, seconds - 7 * HOUR)
        fraction = f".{_between(rng, 0, 999):03d}" if rng.random() < 0.3 else ""
        return f"{self.dates[utc_day - self.base]}T{_time(utc_seconds)}{fraction}Z"

    def _tick(self, day: int) -> None:
        text = self.dates[day - self.base]
        self.agenda[day - self.base].append(f'{{"event_id":"tick-{text}","type":"clock.tick","occurred_at":"{text}"}}')

    # The lifecycle ------------------------------------------------------------------------------------------------

    def _register(self, group: _Group) -> None:
        unit = group.unit
        rest = f'{unit.envelope},"group_id":"{group.group_id}"'
        self._put(unit.rng, group.registered, f"{group.group_id}:registered", "group.registered", rest)

    def _disburse(self, loan: _Loan) -> None:
        unit, rng = loan.unit, loan.unit.rng
        rest = f'{loan.head},"group_id":"{loan.group.group_id}","amount":{loan.amount},"program":"{loan.program}"'
        self._put(rng, loan.disbursed, f"{loan.loan_id}:disbursed", "loan.disbursed", rest)
        r = rng.random()
        result = ',"result":"misuse"' if rng.random() < MISUSE else ',"result":"compliant"' if r < 0.1 else ""
        rest = f'{loan.head},"kind":"post_disbursement"{result}'
        event_id = f"{loan.loan_id}:inspected"
        if r < unit.on_time:
            self._put(rng, loan.disbursed + _between(rng, 2, 30), event_id, "inspection.recorded", rest)
        elif r < unit.on_time + unit.entered_late:
            day = loan.disbursed + _between(rng, 5, 30)
            self._put_entered_late(rng, day, day + _between(rng, 14, 60), event_id, "inspection.recorded", rest)
        elif r < unit.on_time + unit.entered_late + unit.late:
            self._put(rng, loan.disbursed + _between(rng, 31, 120), event_id, "inspection.recorded", rest)

    def _overdue(self, loan: _Loan, day: int, tag: str) -> None:
        """The bank's classification of the loan's overdue principal, from `day`."""
        rest = f'{loan.head},"overdue_principal":{loan.overdue}'
        self._put(loan.unit.rng, day, f"{loan.loan_id}:overdue:{tag}", "loan.overdue_changed", rest)

    def _miss(self, loan: _Loan, day: int, month: int) -> None:
        """An instalment not paid: it is overdue a week or two after its day."""
        loan.overdue += loan.due()
        self._overdue(loan, day + _between(loan.unit.rng, 5, 20), _tag(month))

    def _lapse(self, loan: _Loan, day: int, month: int) -> None:
        """A silent borrower's instalment: postponed by the bank, or overdue."""
        if loan.unit.rng.random() < loan.unit.extension:
            loan.postpone()
        else:
            self._miss(loan, day, month)

    def _periodic(self, unit: _Unit, group: _Group, month: int, first: int, days: int, tag: str) -> None:
        rng = unit.rng
        result = ',"result":"misuse"' if rng.random() < MISUSE else ""
        rest = f'{unit.envelope},"kind":"periodic","group_id":"{group.group_id}"{result}'
        if month % 12 == 0 and rng.random() < JANUARY_EARLY:
            days = 10  # last year's plan, finished in the first days of the new year
        day = max(first + _between(rng, 0, days - 1), group.registered)
        self._put(rng, day, f"{group.group_id}:inspected:{tag}", "inspection.recorded", rest)

    def _follow_up(self, loan: _Loan, first: int) -> None:
        """A loan quiet since `loan.last`: its follow-up inspection, within the 30 days from its 90th day, later or
        never. Decided in the month of that 90th day (`first` is that month's first day), once per quiet stretch."""
        unit, rng = loan.unit, loan.unit.rng
        loan.followed = loan.last
        opened = loan.last + INACTIVE_DAYS
        r = rng.random()
        if r >= unit.follow_on_time + unit.follow_late:
            return
        result = ',"result":"misuse"' if rng.random() < FOLLOW_UP_MISUSE else ""
        rest = f'{loan.head},"kind":"follow_up"{result}'
        event_id = f"{loan.loan_id}:followup:{_tag(_month_of(opened))}"
        if r < unit.follow_on_time:
            day = opened + _between(rng, 0, INACTIVE_INSPECTION_DAYS)
        else:
            day = opened + INACTIVE_INSPECTION_DAYS + _between(rng, 1, 120)
        if day < first:  # quiet since before the full simulation (its last payment in the brief history)
            day = first + _between(rng, 0, 27)
        if r < unit.follow_on_time and rng.random() < unit.follow_entered_late:
            self._put_entered_late(rng, day, day + _between(rng, 14, 60), event_id, "inspection.recorded", rest)
        else:
            self._put(rng, day, event_id, "inspection.recorded", rest)

    def _visit(self, loan: _Loan, day: int, tag: str) -> None:
        """A follow-up of a loan that pays, after an instalment paid short (not for a quiet stretch)."""
        rng = loan.unit.rng
        result = ',"result":"misuse"' if rng.random() < MISUSE else ""
        rest = f'{loan.head},"kind":"follow_up"{result}'
        event_id = f"{loan.loan_id}:followup:{tag}:short"
        if rng.random() < loan.unit.follow_entered_late:
            self._put_entered_late(rng, day, day + _between(rng, 14, 60), event_id, "inspection.recorded", rest)
        else:
            self._put(rng, day, event_id, "inspection.recorded", rest)

    def _history_month(self, month: int) -> None:
        """Before the full simulation: only what still matters when the window opens."""
        for group in self.registrations.pop(month, []):
            self._register(group)
        for loan in self.disbursements.pop(month, []):
            if loan.disbursed >= _first_day(self.first_full) - INSPECTION_HISTORY_DAYS:
                self._disburse(loan)
            else:
                rest = (
                    f'{loan.head},"group_id":"{loan.group.group_id}","amount":{loan.amount},"program":"{loan.program}"'
                )
                self._put(loan.unit.rng, loan.disbursed, f"{loan.loan_id}:disbursed", "loan.disbursed", rest)
        first = _first_day(month)
        tag = _tag(month)
        for loan in self.instalments.pop(month, []):
            day = first + loan.unit.commune.transaction_day - 1
            if month >= loan.silent_since:
                self._lapse(loan, day, month)
                continue
            interest, principal = loan.interest, loan.due()
            loan.pay(principal)
            loan.last = day
            rest = f'{loan.head},"principal":{principal},"interest":{interest}'
            self._put(loan.unit.rng, day, f"{loan.loan_id}:paid:{tag}", PAYMENT, rest)
        for loan in self.interest.pop(month, []):
            day = first + loan.unit.commune.transaction_day - 1
            if day > loan.disbursed and loan.outstanding > 0:
                loan.last = day
                rest = f'{loan.head},"principal":0,"interest":{loan.interest}'
                self._put(loan.unit.commune.interest_rng, day, f"{loan.loan_id}:paid:{tag}", PAYMENT, rest)
        for loan in self.last_interest.pop(month, []):  # the last month it paid (its interest) before going quiet
            day = first + loan.unit.commune.transaction_day - 1
            if day > loan.disbursed:
                loan.last = day
                rest = f'{loan.head},"principal":0,"interest":{loan.interest}'
                self._put(loan.unit.rng, day, f"{loan.loan_id}:paid:{tag}", PAYMENT, rest)
        for loan in self.silences.pop(month, []):  # quiet from this month: its follow-up falls due 90 days on
            self.follow_ups.setdefault(max(month, _month_of(loan.last + INACTIVE_DAYS)), []).append(loan)
        for loan in self.follow_ups.pop(month, []):
            self._follow_up(loan, first)
        if month >= self.first_full - 12:
            days = _first_day(month + 1) - first
            season = month % 12
            for unit in self._units():
                for group in unit.groups:
                    if group.registered < first and unit.rng.random() < unit.periodic[season]:
                        self._periodic(unit, group, month, first, days, tag)

    def _full_month(self, month: int) -> None:
        first = _first_day(month)
        days = _first_day(month + 1) - first
        tag = _tag(month)
        for commune in self.communes:
            rng = commune.rng
            payday = first + commune.transaction_day - 1
            for unit in commune.units:
                if rng.random() < unit.new_group:
                    group = _Group(unit, first + _between(rng, 0, days - 1))
                    unit.groups.append(group)
                    self._register(group)
                for group in unit.groups:
                    self._group_month(unit, group, month, first, days, payday, tag)
                if len(unit.groups) > 1 and rng.random() < CLOSING * len(unit.groups):
                    self._close(rng.choice(unit.groups), first + _between(rng, 0, days - 1))
        last = min(first + days - 1, self.end)
        self._tick(last)

    def _group_month(
        self, unit: _Unit, group: _Group, month: int, first: int, days: int, payday: int, tag: str
    ) -> None:
        rng = unit.rng
        random_ = rng.random
        if group.registered < payday and random_() < group.saving:
            amount = group.members * _between(rng, 10, 40) * 1000
            rest = f'{unit.envelope},"group_id":"{group.group_id}","amount":{amount}'
            self._put(rng, payday, f"{group.group_id}:saved:{tag}", "savings.deposited", rest)
        if random_() < unit.periodic[month % 12]:
            self._periodic(unit, group, month, first, days, tag)
        kept: list[_Loan] = []
        arrivals = self.agenda[payday - self.base] if payday <= self.end else None
        paid_on = self.dates[payday - self.base] if payday <= self.end else ""
        for loan in group.loans:
            if loan.silent:
                loan.silent = random_() >= unit.resume
            elif random_() < unit.silence:
                loan.silent = True
            due = loan.next_due == month
            if loan.silent:
                if due:
                    self._lapse(loan, payday, month)
                if loan.followed != loan.last and loan.last + INACTIVE_DAYS < first + days:
                    self._follow_up(loan, first)  # quiet for 90 days by the end of this month
                kept.append(loan)
                continue
            interest, principal = loan.interest, 0
            if due:
                principal = loan.due()
                if random_() < unit.miss:  # paid short: the rest is overdue a week or two later
                    short = min(principal, loan.instalment * _between(rng, 1, 5) // 1_000_000 * 100_000 or 100_000)
                    principal -= short
                    loan.overdue += short
                    self._overdue(loan, payday + _between(rng, 5, 20), tag)
                    if random_() < unit.visit:
                        self._visit(loan, payday + _between(rng, 10, 60), tag)
            elif loan.overdue and random_() < unit.cure:
                principal, loan.overdue = loan.overdue, 0
                self._overdue(loan, payday, tag)
            if arrivals is not None:  # `_put`, inlined: nine events in ten are these
                loan.last = payday
                r = random_()
                if r < PLAIN:
                    arrivals.append(
                        f'{{"event_id":"{loan.loan_id}:paid:{tag}","type":"repayment.recorded","occurred_at":"{paid_on}",'
                        f'{loan.head},"principal":{principal},"interest":{interest}}}'
                    )
                else:
                    rest = f'{loan.head},"principal":{principal},"interest":{interest}'
                    self._odd(rng, (r - PLAIN) / (1 - PLAIN), payday, f"{loan.loan_id}:paid:{tag}", PAYMENT, rest)
            if principal:
                loan.pay(principal)
                if not loan.outstanding:
                    continue
            kept.append(loan)
        group.loans = kept
        for _ in range(group.slots - len(kept)):
            if random_() < 0.25:
                day = payday if random_() < 0.7 else first + _between(rng, 0, days - 1)
                loan = _Loan(unit, group)
                loan.schedule(max(day, group.registered))
                group.loans.append(loan)
                self._disburse(loan)

    def _close(self, group: _Group, day: int) -> None:
        """A group closes (after this month's business); its borrowers join the unit's first group."""
        unit = group.unit
        unit.groups.remove(group)
        heir = unit.groups[0]
        heir.loans.extend(group.loans)
        heir.slots += len(group.loans)
        rest = f'{unit.envelope},"group_id":"{group.group_id}"'
        self._put(unit.rng, max(day, group.registered + 1), f"{group.group_id}:closed", "group.closed", rest)


def _time(seconds: int) -> str:
    """`hh:mm:ss` of the seconds since midnight."""
    minutes, second = divmod(seconds, 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}:{second:02d}"


def _tag(month: int) -> str:
    """`YYYYMM` of a month index, for event ids."""
    return f"{month // 12:04d}{month % 12 + 1:02d}"


def _copy(rng: random.Random, line: str) -> str:
    """The same event again: the same line, or the same content re-serialised."""
    x = rng.random()
    if x < 0.5:
        return line
    data = json.loads(line)
    if x < 0.75:
        return json.dumps(data, sort_keys=True)
    return json.dumps(dict(reversed(data.items())), separators=(", ", ": "))


BREAKAGES = ("truncated", "array", "unknown field", "bad org", "negative", "no subject", "date", "text", "no id")


def _break(rng: random.Random, line: str, number: int) -> str:
    """A broken line made from a valid one, with an event_id no valid event uses (or none)."""
    how = rng.choice(BREAKAGES)
    if how == "truncated":
        return line[: len(line) // 2]
    if how == "array":
        return f"[{line}]"
    data = json.loads(line)
    data["event_id"] = f"bad-{number:06d}"
    money = next((key for key in ("amount", "principal", "interest", "overdue_principal") if data.get(key)), None)
    if how == "unknown field":
        data["ghi_chu"] = "nhập bổ sung"
    elif how == "negative" and money:
        data[money] = -data[money]
    elif how == "text" and money:
        data[money] = f"{data[money]:,}".replace(",", ".")
    elif how == "no subject":
        data.pop("loan_id" if "loan_id" in data else "group_id")
    elif how == "date":
        occurred = data["occurred_at"][:10]
        data["occurred_at"] = f"{occurred[8:10]}/{occurred[5:7]}/{occurred[:4]}"
    elif how == "no id":
        del data["event_id"]
    else:
        data["org"] = "HLHPN"
    return json.dumps(data, ensure_ascii=False)


def events(options: GenerateOptions) -> Iterator[str]:
    """The province's lines (JSON, no newline) in arrival order."""
    for chunk in Province(options).chunks():
        yield from chunk


def write(path: Path, options: GenerateOptions, progress: Callable[[int, int], None] | None = None) -> GenerateSummary:
    """Write the province to `path` (gzip when it ends in .gz) and say what it holds; `progress`, if given, is
    told (lines written, about how many there will be) a day at a time.

    The gzip header carries no time and no name, so the same options always give the same bytes.
    """
    province = Province(options)
    expected = province.expected_lines() if progress is not None else 0
    lines = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        out: IO[bytes] | gzip.GzipFile = stack.enter_context(path.open("wb"))
        if path.suffix == ".gz":
            out = stack.enter_context(gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=1, mtime=0))
        for chunk in province.chunks():
            out.write("\n".join([*chunk, ""]).encode())
            if progress is not None and chunk:
                lines += len(chunk)
                progress(lines, max(expected, lines))
    return province.summary
