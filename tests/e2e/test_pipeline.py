"""The worker on the real broker (issue 3): nothing lost, nothing counted twice, whatever happens.

Each test publishes a small generated province (two communes, six months: ~7 600 lines with their
duplicates and invalid lines) to its own topics and runs `uythac worker` as a real process. The store
must end with the report `uythac replay` writes for the same file, byte for byte; the output topics
must tell a consistent story (checked by `_outputs_agree`).
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import socket
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.kafka_broker import KafkaBroker
from tests.pipeline import Pipeline, Record, keyed, replay_report
from uythac.adapters.sql import queries
from uythac.adapters.sql.store import Store
from uythac.devtools import generate

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("province") / "province.jsonl"
    generate.write(path, generate.GenerateOptions(communes=2, months=6, seed=11))
    return path


@pytest.fixture(scope="module")
def expected(province: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    return replay_report(province, tmp_path_factory.mktemp("replay"))


@pytest.fixture
def pipeline(kafka_bootstrap: str, tmp_path: Path) -> Any:
    made = Pipeline(kafka_bootstrap, tmp_path)
    yield made
    made.stop_workers(signal.SIGKILL)


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def _halves(path: Path) -> tuple[list[tuple[bytes | None, bytes]], list[tuple[bytes | None, bytes]]]:
    """The file's lines keyed as `uythac publish` sends them, cut in two: the first half, the second."""
    lines = keyed(_lines(path))
    return lines[: len(lines) // 2], lines[len(lines) // 2 :]


def _first_of_each(records: list[Record]) -> list[dict[str, Any]]:
    """Output events as a consumer that dedupes by event_id sees them."""
    seen: set[str] = set()
    out = []
    for record in records:
        data = record.data
        if data["event_id"] not in seen:
            seen.add(data["event_id"])
            out.append(data)
    return out


def _outputs_agree(pipeline: Pipeline, report: dict[str, Any]) -> None:
    """No output lost or doubled: each unit's score events chain from nothing to its reported score,
    each loan's flag events alternate raised/cleared and end raised exactly for the missed loans."""
    chains: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for event in _first_of_each(pipeline.read("scores")):
        chains[(event["commune_id"], event["org"])].append(event)
    for unit in report["units"]:
        chain = chains.pop((unit["commune_id"], unit["org"]))
        assert chain[0]["previous"] is None
        for before, after in itertools.pairwise(chain):
            assert after["previous"] == {"score": before["score"], "class": before["class"]}
        assert (chain[-1]["score"], chain[-1]["class"]) == (unit["score"], unit["class"])
    assert not chains, f"score events for units the report does not know: {sorted(chains)}"

    states: dict[str, list[str]] = defaultdict(list)
    misuse: list[str] = []
    duties: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in _first_of_each(pipeline.read("flags")):
        if event["type"] == "misuse.found":
            misuse.append(event.get("loan_id") or event["group_id"])
        elif event["type"].startswith("duty."):
            duties[event["loan_id"]].append(event)
        else:
            states[event["loan_id"]].append(event["type"])
    _duties_agree(duties, report)
    assert len(misuse) == len(set(misuse)), "misuse found twice"
    for loan_id, changes in states.items():
        assert changes[::2] == ["flag.raised"] * len(changes[::2]), (loan_id, changes)
        assert changes[1::2] == ["flag.cleared"] * len(changes[1::2]), (loan_id, changes)
    raised = {loan_id for loan_id, changes in states.items() if changes[-1] == "flag.raised"}
    store = Store.at(pipeline.db)
    try:
        with store.reading() as uow:
            missed = {loan.loan_id for loan in uow.loans(sorted(states)).values() if loan.status == "missed"}
    finally:
        store.close()
    assert raised == missed
    assert {flag["loan_id"] for flag in report["flags"]} <= raised


def _duties_agree(events: dict[str, list[dict[str, Any]]], report: dict[str, Any]) -> None:
    """Each stretch of a loan's inactivity (its opening day) is opened once, then missed or done at most once
    each (missed first); a loan's last stretch ends as the report lists it: pending, missed, or (done) not at all."""
    assert events, "the province must open inactive-loan duties"
    listed = {duty["loan_id"]: duty for duty in report["duties"]}
    for loan_id, said in events.items():
        stretches: dict[str, list[str]] = defaultdict(list)
        for event in said:
            stretches[event["opened_on"]].append(event["type"])
        for changes in stretches.values():
            assert changes in (
                ["duty.opened"],
                ["duty.opened", "duty.missed"],
                ["duty.opened", "duty.done"],
                ["duty.opened", "duty.missed", "duty.done"],
            ), (loan_id, said)
        last = max(stretches)
        status = {1: "pending", 2: "missed" if stretches[last][-1] == "duty.missed" else "done", 3: "done"}
        now = status[len(stretches[last])]
        duty = listed.pop(loan_id, None)
        if duty is None:  # done, or the loan is active again (no message says so)
            continue
        assert (duty["opened_on"], duty["status"]) == (last, now), (loan_id, said, duty)
    assert not listed, f"duties listed but never opened: {sorted(listed)}"


def test_worker_report_equals_replay_byte_for_byte(pipeline: Pipeline, province: Path, expected: str) -> None:
    published = pipeline.uythac("publish", str(province), check=False)
    # the province's two broken lines: status 1, and each named by its line number and reason
    assert published.returncode == 1 and "2 invalid (not sent)" in published.stdout, published.stdout
    assert len([line for line in published.stdout.splitlines() if line.startswith("  line ")]) == 2
    pipeline.start_worker()
    pipeline.wait_caught_up()
    assert pipeline.stop_workers() == [0]  # SIGTERM: finish the batch, commit, exit 0
    assert pipeline.uythac("report", "--db", str(pipeline.db)).stdout == expected
    _outputs_agree(pipeline, orjson.loads(expected))


def test_kill_9_at_random_points_loses_and_doubles_nothing(pipeline: Pipeline, province: Path, expected: str) -> None:
    """Six kills, each a moment after the restarted worker has applied its first batch; half the stream
    is published while the kills go on. Batches are tiny and the moments short, so that the kills land
    in the middle of the stream: the worker applies this province's 4 500 events in about a second."""
    first, second = _halves(province)
    rng = random.Random(5)
    pipeline.batch_size = 5
    pipeline.produce(first)
    pipeline.start_worker()
    killed_midway, progress = 0, []
    for kill in range(6):
        if kill == 3:
            pipeline.produce(second)
        before = pipeline.applied()
        deadline = time.monotonic() + 60
        while pipeline.applied() == before and time.monotonic() < deadline:  # the new worker got going
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.05))
        pipeline.stop_workers(signal.SIGKILL)
        progress.append((pipeline.applied(), sum(pipeline.end_offsets().values())))
        killed_midway += progress[-1][0] < progress[-1][1]
        pipeline.start_worker()
    assert killed_midway >= 4, f"most kills must land while the worker has work left: (applied, published) {progress}"
    pipeline.wait_caught_up()
    pipeline.stop_workers()
    assert pipeline.report() == expected
    _outputs_agree(pipeline, orjson.loads(expected))
    # Each restart finds committed outbox rows; the intake sends them once connected, with no false alarm.
    assert "outbox relay failed" not in pipeline.worker_log()


def test_duplicated_and_shuffled_publication_gives_the_same_report(
    pipeline: Pipeline, province: Path, expected: str
) -> None:
    lines = _lines(province)
    rng = random.Random(9)
    noisy = lines + rng.sample(lines, len(lines) // 4)
    rng.shuffle(noisy)
    pipeline.produce(keyed(noisy))
    pipeline.start_worker()
    pipeline.wait_caught_up()
    pipeline.stop_workers()
    assert pipeline.report() == expected


GARBAGE: list[tuple[bytes | None, bytes | None]] = [
    (b"C0001", b"not json"),
    (b"C0001", b"{"),
    (b"C0001", b"[1, 2, 3]"),
    (b"C0001", b'"a string"'),
    (b"C0001", b"null"),
    (b"C0001", b""),
    (b"C0001", None),  # a tombstone
    (None, b'{"event_id": "x1", "type": "loan.disbursed"}'),
    (b"C0001", b'{"event_id": "x2", "type": "loan.exploded", "occurred_at": "2023-01-01"}'),
    (b"C0001", b"\x00\xff\xfe binary \x89PNG"),
    (
        b"C0001",
        b'{"event_id": "x3", "type": "clock.tick", "occurred_at": "2023-01-01", "huge": "' + b"y" * 70_000 + b'"}',
    ),
    (b"C0001", b'{"event_id": "x4", "type": "clock.tick", "occurred_at": 20230101}'),
    (
        b"C0001",
        b'{"event_id": "x5", "type": "repayment.recorded", "occurred_at": "2023-01-01", "district_id": "D01",'
        b' "commune_id": "C0001", "org": "HND", "loan_id": "L1", "principal": "100", "interest": 1}',
    ),
    (b"C0001", b'{"event_id": "x6", "type": "clock.tick", "occurred_at": "2023-01-01", "amount": 1e400}'),
    (None, b'{"event_id": "x7", "type": "clock.tick", "occurred_at": "2203-01-01"}'),  # would move T 180 years
]


def test_malformed_flood_lands_in_the_dlq_and_every_valid_event_applies(
    pipeline: Pipeline, province: Path, expected: str
) -> None:
    valid = keyed(_lines(province))
    flood = GARBAGE * 20
    mixed = valid + flood
    random.Random(3).shuffle(mixed)
    # Conflicts: valid events' ids again with other content, after the originals in their partitions.
    repayments = [orjson.loads(line) for _, line in valid if b'"repayment.recorded"' in line][:5]
    conflicts = keyed(orjson.dumps({**event, "interest": event["interest"] + 1}) for event in repayments)
    pipeline.produce(mixed + conflicts)
    worker = pipeline.start_worker()
    pipeline.wait_caught_up()
    assert worker.poll() is None, "the worker stays up"
    pipeline.stop_workers()
    assert pipeline.report() == expected
    dead = pipeline.read("events.dlq")
    reasons = [record.headers["uythac.reason"].decode() for record in dead]
    assert len(dead) >= len(flood)  # and the generator's own few invalid lines
    assert all(": " in reason for reason in reasons), reasons  # "field: why"
    originals = {(record.key, record.value or b"") for record in dead}
    assert {(key, value or b"") for key, value in GARBAGE} <= originals  # original bytes kept
    for record in dead:
        assert {"uythac.source.topic", "uythac.source.partition", "uythac.source.offset"} <= record.headers.keys()
    assert any(reason.startswith("occurred_at: after today (2203-01-01;") for reason in reasons)
    tombstone = next(record for record in dead if record.headers["uythac.reason"] == b"message: null value")
    assert tombstone.key == b"C0001"
    refused = {record.value: record.headers["uythac.reason"] for record in dead}
    for key, value in conflicts:
        assert refused[value].startswith(b"event_id: "), refused[value]  # the first stays; this one is refused
        assert any(record.key == key and record.value == value for record in dead)


def test_broker_restart_mid_stream_loses_nothing(
    pipeline: Pipeline, province: Path, expected: str, kafka_broker: KafkaBroker
) -> None:
    first, second = _halves(province)
    pipeline.produce(first)
    pipeline.start_worker()
    time.sleep(1.0)
    kafka_broker.stop()
    time.sleep(3.0)
    kafka_broker.start()
    pipeline.produce(second)
    pipeline.wait_caught_up(timeout_s=180)
    assert pipeline.stop_workers() == [0]
    assert pipeline.report() == expected


def test_a_stalled_intake_is_replaced_and_nothing_is_lost(pipeline: Pipeline, province: Path, expected: str) -> None:
    """An intake that holds its partitions but hands over nothing (frozen here with SIGSTOP, as a Kafka client
    that stopped fetching would be) is killed and started again after UYTHAC_WORKER_STALL_S; what was
    published meanwhile applies. A worker that is caught up is never taken for stalled."""
    first, second = _halves(province)
    pipeline.settings["UYTHAC_WORKER_STALL_S"] = "3"
    pipeline.produce(first)
    worker = pipeline.start_worker()
    pipeline.wait_caught_up()
    time.sleep(4.0)  # caught up for longer than the stall time: no restart
    frozen = pipeline.intake_of(worker)
    os.kill(frozen, signal.SIGSTOP)
    pipeline.produce(second)
    pipeline.wait_caught_up(timeout_s=120)
    time.sleep(4.0)
    replaced = pipeline.intake_of(worker)
    assert pipeline.stop_workers() == [0]
    assert pipeline.report() == expected
    assert replaced != frozen and not Path(f"/proc/{frozen}").exists(), "the stalled intake is gone"
    restarts = [orjson.loads(line) for line in pipeline.worker_log().splitlines() if "starting it again" in line]
    assert len(restarts) == 1, restarts
    assert restarts[0]["partitions"] == [0, 1, 2, 3] and restarts[0]["seconds"] >= 3


def test_broker_down_longer_than_the_stall_time_loses_nothing(
    pipeline: Pipeline, province: Path, expected: str, kafka_broker: KafkaBroker
) -> None:
    """While the broker is down the intake cannot show its partitions read to their end: after the stall time
    it is replaced once, and the new one waits for the broker (no restart loop); nothing is lost."""
    first, second = _halves(province)
    pipeline.settings["UYTHAC_WORKER_STALL_S"] = "3"
    pipeline.produce(first)
    pipeline.start_worker()
    pipeline.wait_caught_up()
    kafka_broker.stop()
    time.sleep(10.0)
    kafka_broker.start()
    pipeline.produce(second)
    pipeline.wait_caught_up(timeout_s=180)
    assert pipeline.stop_workers() == [0]
    assert pipeline.report() == expected
    assert pipeline.worker_log().count("starting it again") == 1


def test_unreachable_broker_at_start_is_retried_with_a_clear_log_line(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{probe.getsockname()[1]}"
    pipeline = Pipeline(closed, tmp_path)
    worker = pipeline.start_worker()
    try:
        time.sleep(4.0)
        assert worker.poll() is None, "no crash loop: the worker waits"
    finally:
        codes = pipeline.stop_workers()
    assert codes == [0]
    retries = [line for line in pipeline.worker_log().splitlines() if "Kafka unreachable, retrying" in line]
    assert len(retries) >= 2
    assert orjson.loads(retries[0])["bootstrap"] == closed


def test_uythac_tick_matures_deadlines_on_a_quiet_day(pipeline: Pipeline, tmp_path: Path) -> None:
    disbursed = {
        "event_id": "d1",
        "type": "loan.disbursed",
        "occurred_at": "2023-03-01",
        "district_id": "D01",
        "commune_id": "C0001",
        "org": "HND",
        "loan_id": "L1",
        "group_id": "G1",
        "amount": 10_000_000,
    }
    pipeline.produce([(b"C0001", orjson.dumps(disbursed))])
    pipeline.start_worker()
    pipeline.wait_caught_up()
    assert orjson.loads(pipeline.report())["flags"] == []
    ticked = pipeline.uythac("tick", "--date", "2023-04-01", "--topic", pipeline.topic)
    assert orjson.loads(ticked.stdout)["event_id"] == "tick-2023-04-01"
    pipeline.wait_caught_up()
    pipeline.stop_workers()
    report = orjson.loads(pipeline.report())
    assert report["as_of"] == "2023-04-01"
    assert [flag["loan_id"] for flag in report["flags"]] == ["L1"]
    raised = [event for event in _first_of_each(pipeline.read("flags")) if event["type"] == "flag.raised"]
    assert [(event["loan_id"], event["cause"]) for event in raised] == [("L1", "clock:2023-04-01")]


def test_worker_exits_0_on_sigterm_even_while_idle(pipeline: Pipeline) -> None:
    pipeline.start_worker()
    time.sleep(3.0)
    assert pipeline.stop_workers() == [0]
    assert "worker stopped" in pipeline.worker_log()


def test_a_backlog_is_applied_in_date_order_across_partitions(pipeline: Pipeline, tmp_path: Path) -> None:
    """A worker catching up reads its partitions as the broker's fetches serve them, a thinly active commune's
    months ahead of a busy one's. Handed over in business-date order across the partitions, the backlog makes
    each kept month-end report the one `uythac replay` keeps of the same file (in date order), and opens no
    duty a replay does not open: none for a loan whose repayments are still unread."""
    source = tmp_path / "province.jsonl"
    generate.write(source, generate.GenerateOptions(communes=6, months=8, seed=3))
    dated = tmp_path / "dated.jsonl"  # its events in date order (a replay's month ends follow the file's order)
    dated.write_bytes(b"\n".join(sorted(_events(source), key=lambda line: orjson.loads(line)["occurred_at"])) + b"\n")
    replayed = tmp_path / "replay.db"
    pipeline.uythac("replay", str(dated), "--db", str(replayed), "--report", str(tmp_path / "replay.json"))
    pipeline.batch_size = 300  # many small polls: each brings one partition's records, months ahead of another's
    pipeline.produce(keyed(dated.read_bytes().splitlines()))
    pipeline.start_worker()
    pipeline.wait_caught_up()
    pipeline.stop_workers()

    expected = _month_ends(replayed)
    assert len(expected) >= 6 and any(report["duties"] for report in expected.values())
    assert _month_ends(pipeline.db) == expected


def _events(path: Path) -> list[bytes]:
    """The file's lines that are JSON objects with a business date (the generator adds broken ones)."""
    out = []
    for line in _lines(path):
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(event, dict) and isinstance(event.get("occurred_at"), str):
            out.append(line)
    return out


def _month_ends(db: Path) -> dict[str, Any]:
    """Every month-end report the store kept, by day."""
    store = Store.at(db)
    try:
        with queries.snapshot(store) as connection:
            return {
                day.isoformat(): queries.stored_report(connection, day) for day in queries.snapshot_dates(connection)
            }
    finally:
        store.close()
