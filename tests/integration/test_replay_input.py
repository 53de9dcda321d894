"""Events through replay and the command line: nothing valid beside a bad line is lost, duplicates are
ignored and conflicts rejected (the first stays), the rejects file names each field, `publish --strict`
sends nothing when a line is bad.
"""

from __future__ import annotations

import io
import itertools
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.examples import DROP, VALID, variant
from tests.support import CARD, component, loan, report_of, write_lines
from uythac.adapters.sql.store import Store
from uythac.core.dates import VIETNAM
from uythac.entrypoints import publish
from uythac.entrypoints.cli import main
from uythac.entrypoints.replay import Summary, replay
from uythac.service.processor import Processor

_files = itertools.count()


# --- duplicates and conflicts -----------------------------------------------------------------


def _replay_lines(tmp_path: Path, lines: list[str], batch_size: int = 5000) -> tuple[Summary, list[dict[str, Any]]]:
    n = next(_files)
    source = tmp_path / f"in-{n}.jsonl"
    source.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    store = Store.at(tmp_path / f"dedupe-{n}.db")
    rejects = io.StringIO()
    try:
        summary = replay(
            source, Processor(store, CARD, 24, 250_000), rejects=rejects, batch_size=batch_size, latest=None
        )
    finally:
        store.close()
    return summary, [json.loads(line) for line in rejects.getvalue().splitlines()]


LOAN = VALID["loan.disbursed"]
SAME_LOAN_OTHER_SPELLING = json.dumps(dict(reversed(list(LOAN.items()))), indent=None, separators=(" ,  ", " :  "))


@pytest.mark.parametrize("batch_size", [1, 5000])
def test_identical_duplicate_is_ignored_whatever_key_order_or_spacing(tmp_path: Path, batch_size: int) -> None:
    lines = [json.dumps(LOAN), SAME_LOAN_OTHER_SPELLING, json.dumps(LOAN, separators=(",", ":"))]
    summary, rejects = _replay_lines(tmp_path, lines, batch_size)
    assert (summary.read, summary.accepted, summary.duplicates, summary.rejected) == (3, 1, 2, 0)
    assert rejects == []


@pytest.mark.parametrize("batch_size", [1, 5000])
def test_same_event_id_with_other_content_is_a_conflict_and_the_first_stays(tmp_path: Path, batch_size: int) -> None:
    other = json.dumps({**LOAN, "amount": 20_000_000})
    summary, rejects = _replay_lines(tmp_path, [json.dumps(LOAN), other], batch_size)
    assert (summary.accepted, summary.duplicates, summary.rejected) == (1, 0, 1)
    assert len(rejects) == 1
    assert rejects[0]["line"] == 2
    assert rejects[0]["event_id"] == "l1"
    assert rejects[0]["original"] == other
    assert rejects[0]["reason"].startswith("event_id: ")
    assert "conflict" in rejects[0]["reason"]


@pytest.mark.parametrize("batch_size", [1, 5000])
def test_report_uses_the_first_of_two_conflicting_events(tmp_path: Path, batch_size: int) -> None:
    later_first = {**LOAN, "occurred_at": "2023-02-01", "amount": 20_000_000}  # earlier date, but second in the file
    events = [LOAN, later_first, {"event_id": "t9", "type": "clock.tick", "occurred_at": "2023-06-30"}]
    report = report_of(tmp_path, events, batch_size=batch_size)
    assert component(report, "overdue_ratio")["denominator"] == 10_000_000
    assert report["flags"][0]["disbursed_on"] == "2023-03-01"


@pytest.mark.parametrize("batch_size", [1, 5000])
def test_conflict_and_duplicate_of_an_event_of_an_earlier_replay(tmp_path: Path, batch_size: int) -> None:
    """The stored event is the one "seen before": a conflicting line in between does not change that."""
    db = tmp_path / "store.db"
    first = tmp_path / "first.jsonl"
    first.write_text(json.dumps(LOAN) + "\n", encoding="utf-8")
    second = tmp_path / "second.jsonl"
    second.write_text(json.dumps({**LOAN, "amount": 1}) + "\n" + SAME_LOAN_OTHER_SPELLING + "\n", encoding="utf-8")
    store = Store.at(db)
    try:
        replay(first, Processor(store, CARD, 24, 250_000), batch_size=5000, latest=None)
        rejects = io.StringIO()
        summary = replay(
            second, Processor(store, CARD, 24, 250_000), rejects=rejects, batch_size=batch_size, latest=None
        )
    finally:
        store.close()
    assert (summary.accepted, summary.duplicates, summary.rejected) == (0, 1, 1)
    (record,) = [json.loads(line) for line in rejects.getvalue().splitlines()]
    assert record["line"] == 1
    assert "conflict" in record["reason"]


# --- batches ----------------------------------------------------------------------------------


def _batches(tmp_path: Path, days: list[int], clock: int | None = None, **sizes: int) -> list[list[int]]:
    """The batches a replay hands its processor, as the day (of January 2023) of each event: one clock tick a day
    as given, and `sizes` (`batch_size`, `batch_days`, `batch_max`) as the replay takes them; `clock`: the day of
    the store's clock before (a replay of one tick that day first)."""

    def ticks(days: list[int]) -> Path:
        events = [
            {"event_id": f"t{next(_files)}", "type": "clock.tick", "occurred_at": f"2023-01-{d:02d}"} for d in days
        ]
        return write_lines(tmp_path / f"ticks-{next(_files)}.jsonl", events)

    store = Store.at(tmp_path / f"batches-{next(_files)}.db")
    processor = Processor(store, CARD, 24, 250_000)
    if clock is not None:
        replay(ticks([clock]), processor, batch_size=1, latest=None)
    source = ticks(days)
    handed: list[list[int]] = []
    process = processor.process

    def recorded(batch: Any, floor: Any = None) -> Any:
        handed.append([event.day.day for _, event in batch])
        return process(batch, floor)

    processor.process = recorded  # type: ignore[method-assign]
    try:
        replay(source, processor, latest=None, **sizes)
    finally:
        store.close()
    return [batch for batch in handed if batch]


def test_a_batch_holds_its_size_and_spans_its_days_from_the_latest_date_before_it(tmp_path: Path) -> None:
    every_day = list(range(1, 21))
    assert _batches(tmp_path, every_day, batch_size=3, batch_days=5) == [
        [1, 2, 3, 4, 5, 6],  # day 6 is 5 days after day 1, the first
        [7, 8, 9, 10, 11],  # day 11 is 5 days after day 6, the latest before the batch
        [12, 13, 14, 15, 16],
        [17, 18, 19, 20],  # the end of the file
    ]
    # late events (earlier dates, as inspections entered weeks later) add to a batch, not to its span
    assert _batches(tmp_path, [1, 2, 3, 4, 5, 6, 7, 2, 8, 1, 9, 10, 11, 12], batch_size=3, batch_days=5) == [
        [1, 2, 3, 4, 5, 6],
        [7, 2, 8, 1, 9, 10, 11],
        [12],
    ]
    # onto a store whose clock is later, only the size and the most end a batch
    assert _batches(tmp_path, every_day[:10], clock=25, batch_size=2, batch_days=5, batch_max=4) == [
        [1, 2, 3, 4],
        [5, 6, 7, 8],
        [9, 10],
    ]
    # a day with many events: the size is reached before the span
    assert _batches(tmp_path, [1, 1, 1, 1, 9, 9, 9, 9], batch_size=3, batch_days=5) == [[1, 1, 1, 1, 9], [9, 9, 9]]


def test_a_batch_stops_at_its_most_and_without_days_at_its_size(tmp_path: Path) -> None:
    every_day = list(range(1, 11))
    assert _batches(tmp_path, every_day, batch_size=2, batch_days=5, batch_max=4) == [
        [1, 2, 3, 4],
        [5, 6, 7, 8],
        [9, 10],
    ]
    assert _batches(tmp_path, every_day, batch_size=4) == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    assert _batches(tmp_path, every_day, batch_size=4, batch_days=0, batch_max=9) == [
        [1, 2, 3, 4],
        [5, 6, 7, 8],
        [9, 10],
    ]
    # a most below the size is the size
    assert _batches(tmp_path, every_day, batch_size=4, batch_days=30, batch_max=2) == [
        [1, 2, 3, 4],
        [5, 6, 7, 8],
        [9, 10],
    ]


# --- end to end through the command line ------------------------------------------------------

GOOD_EVENTS: list[dict[str, Any]] = [
    variant("group.registered", event_id="v1", occurred_at="2023-01-01"),
    variant("loan.disbursed", event_id="v2", occurred_at="2023-02-01"),
    variant("loan.disbursed", event_id="v3", occurred_at="2023-02-01", loan_id="L2", amount=4_000_000),
    variant("inspection.recorded", event_id="v4", occurred_at="2023-02-20"),
    variant("repayment.recorded", event_id="v5", occurred_at="2023-04-01"),
    variant("loan.overdue_changed", event_id="v6", occurred_at="2023-04-15", overdue_principal=100_000),
    variant("savings.deposited", event_id="v7", occurred_at="2023-04-20"),
    variant("inspection.recorded", event_id="v8", occurred_at="2023-03-15", kind="periodic", loan_id=DROP,
            group_id="G1"),
    variant("clock.tick", event_id="v9", occurred_at="2023-05-10"),
]  # fmt: skip
BAD_LINES: list[str] = [
    "not json",
    "[1, 2]",
    "null",
    "",
    '"a JSON string"',
    "{",
    json.dumps(variant("loan.disbursed", event_id="b1", amount=1.0)),
    json.dumps(variant("loan.disbursed", event_id="b2", amount="5")),
    json.dumps(variant("loan.disbursed", event_id="b3", loan_id="L3", amount=0)),
    json.dumps(variant("group.registered", event_id="b4", type="group.renamed")),
    json.dumps(variant("group.registered", event_id="b5", org="XYZ", commune_id="C0002")),
    json.dumps(variant("group.registered", event_id="b6", occurred_at="2023-02-30", group_id="G7")),
    json.dumps(variant("group.registered", event_id="b7", note="extra", group_id="G8")),
    json.dumps(variant("clock.tick", event_id="b8", occurred_at="2024-01-01", loan_id="L1")),
    json.dumps(variant("repayment.recorded", event_id="b9", principal=0, interest=0)),
    json.dumps(variant("inspection.recorded", event_id="b10", loan_id=DROP)),
    json.dumps(variant("loan.disbursed", event_id="b11", district_id="D" * 33)),
    json.dumps(variant("group.registered", event_id="b12", schema_version=2)),
    json.dumps({**GOOD_EVENTS[1], "amount": 99_000_000}),  # conflicts with v2
]


def test_cli_replay_keeps_every_valid_event_and_rejects_each_bad_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines: list[str] = []
    bad_numbers: dict[int, str] = {}
    for i in range(max(len(GOOD_EVENTS), len(BAD_LINES))):
        if i < len(GOOD_EVENTS):
            lines.append(json.dumps(GOOD_EVENTS[i]))
        if i < len(BAD_LINES):
            lines.append(BAD_LINES[i])
            bad_numbers[len(lines)] = BAD_LINES[i]
    lines.append(SAME_LOAN_OTHER_SPELLING.replace('"l1"', '"v2"').replace('"2023-03-01"', '"2023-02-01"'))
    source = tmp_path / "events.jsonl"
    source.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    out, rj = tmp_path / "report.json", tmp_path / "rejects.jsonl"

    assert main(["replay", str(source), "--report", str(out), "--rejects", str(rj)]) == 0

    rejects = [json.loads(line) for line in rj.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in rejects] == sorted(bad_numbers)
    for record in rejects:
        assert record["original"] == bad_numbers[record["line"]]
        assert isinstance(record["reason"], str)
        assert record["reason"]
    assert "conflict" in rejects[-1]["reason"]
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    n_good, n_bad = len(GOOD_EVENTS), len(BAD_LINES)
    assert summary == f"read {n_good + n_bad + 1} events: {n_good} accepted, 1 duplicates, {n_bad} rejected"
    assert json.loads(out.read_text(encoding="utf-8")) == report_of(tmp_path, GOOD_EVENTS)


def test_cli_rejects_name_the_field(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text(
        json.dumps(VALID["clock.tick"]) + "\n" + json.dumps(variant("loan.disbursed", amount=True)) + "\n",
        encoding="utf-8",
    )
    out, rj = tmp_path / "report.json", tmp_path / "rejects.jsonl"
    assert main(["replay", str(source), "--report", str(out), "--rejects", str(rj)]) == 0
    (record,) = [json.loads(line) for line in rj.read_text(encoding="utf-8").splitlines()]
    assert record["line"] == 2
    assert record["event_id"] == "l1"
    assert record["reason"].startswith("amount: ")


@pytest.mark.parametrize(
    "bad",
    [
        variant("clock.tick", event_id="x1", occurred_at="9999-12-31T23:59:59-01:00"),
        variant("group.registered", event_id="x2", recorded_at="2023-02-30T10:00:00Z", group_id="G9"),
    ],
)
def test_cli_replay_survives_dates_off_the_calendar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: dict[str, Any]
) -> None:
    good = [variant("loan.disbursed", occurred_at="2023-02-01"), variant("clock.tick", occurred_at="2023-05-10")]
    source = tmp_path / "events.jsonl"
    source.write_text("".join(json.dumps(e) + "\n" for e in [good[0], bad, good[1]]), encoding="utf-8")
    out, rj = tmp_path / "report.json", tmp_path / "rejects.jsonl"
    assert main(["replay", str(source), "--report", str(out), "--rejects", str(rj)]) == 0
    (record,) = [json.loads(line) for line in rj.read_text(encoding="utf-8").splitlines()]
    assert record["line"] == 2
    assert json.loads(out.read_text(encoding="utf-8")) == report_of(tmp_path, good)
    assert capsys.readouterr().out.strip().splitlines()[-1] == "read 3 events: 2 accepted, 0 duplicates, 1 rejected"


def test_publish_strict_refuses_a_file_with_an_invalid_line_and_sends_nothing(tmp_path: Path) -> None:
    """`uythac publish --strict` checks the whole file first: no broker is even asked (none listens here)."""
    source = write_lines(tmp_path / "events.jsonl", [loan("L1", "2024-01-01"), "{not json", loan("L2", "2024-01-02")])
    rejects = io.StringIO()
    summary = publish.publish(
        source, "127.0.0.1:9", "uythac.events", partitions=12, latest=None, strict=True, rejects=rejects
    )
    assert (summary.refused, summary.read, summary.invalid, summary.sent) == (True, 3, 1, 0)
    assert [json.loads(line)["line"] for line in rejects.getvalue().splitlines()] == [2]


def test_cli_replay_rejects_an_event_dated_after_today_and_keeps_the_clock(tmp_path: Path) -> None:
    """One mistyped year must not move the clock T years ahead: the event is rejected, naming occurred_at."""
    typo = loan("L9", "2203-01-05", event_id="typo")  # 2023 typed 2203
    source = write_lines(tmp_path / "events.jsonl", [loan("L1", "2023-01-05"), typo])
    report, rejects = tmp_path / "report.json", tmp_path / "rejects.jsonl"
    assert main(["replay", str(source), "--report", str(report), "--rejects", str(rejects)]) == 0
    assert json.loads(report.read_text(encoding="utf-8"))["as_of"] == "2023-01-05"
    (record,) = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert record["event_id"] == "typo" and record["reason"].startswith("occurred_at: after today (2203-01-05;")


def test_how_far_ahead_an_event_may_be_dated_is_a_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    in_three_days = datetime.now(VIETNAM).date() + timedelta(days=3)
    source = write_lines(tmp_path / "events.jsonl", [loan("L1", in_three_days)])
    report = tmp_path / "report.json"
    main(["replay", str(source), "--report", str(report)])
    assert json.loads(report.read_text(encoding="utf-8"))["units"] == []  # rejected at the default, 1 day
    monkeypatch.setenv("UYTHAC_MAX_FUTURE_DAYS", "5")
    main(["replay", str(source), "--report", str(report)])
    assert json.loads(report.read_text(encoding="utf-8"))["as_of"] == in_three_days.isoformat()
