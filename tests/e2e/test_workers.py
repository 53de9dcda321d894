"""Several workers in one consumer group on one PostgreSQL store (issue 22), on the real broker and server.

Partitions split across the workers; every batch commits with its offsets under the store's writer lock, so
whatever the number of workers, the assignment history and the kills, the store ends with the report
`uythac replay` writes for the same file, byte for byte, and the output topics tell a consistent story.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.api_support import write_keys
from tests.e2e.test_pipeline import _halves, _outputs_agree
from tests.kafka_broker import free_ports
from tests.pipeline import PARTITIONS, Pipeline, keyed, replay_report
from tests.postgres_server import PostgresServer
from uythac.devtools import generate
from uythac.entrypoints.api import create_app
from uythac.entrypoints.api.context import EXTENSION
from uythac.settings import Settings

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four communes, so that the events keyed by commune land on most partitions."""
    path = tmp_path_factory.mktemp("province") / "province.jsonl"
    generate.write(path, generate.GenerateOptions(communes=4, months=4, seed=13))
    return path


@pytest.fixture(scope="module")
def expected(province: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    return replay_report(province, tmp_path_factory.mktemp("replay"))


@pytest.fixture
def pipeline(kafka_bootstrap: str, postgres_server: PostgresServer, tmp_path: Path) -> Iterator[Pipeline]:
    made = Pipeline(kafka_bootstrap, tmp_path, store_url=postgres_server.new_store())
    yield made
    made.stop_workers(signal.SIGKILL)


def _log_of(pipeline: Pipeline, started: int) -> str:
    return (pipeline.directory / f"{pipeline.name}-worker-{started:02d}.log").read_text(errors="replace")


def _wait_assigned(pipeline: Pipeline, count: int, timeout_s: float = 60) -> None:
    """Until the group has given partitions to each of the first `count` workers started."""
    deadline = time.monotonic() + timeout_s
    while not all('"partitions assigned"' in _log_of(pipeline, n) for n in range(1, count + 1)):
        assert time.monotonic() < deadline, f"the workers did not all join the group:\n{pipeline.worker_log()[-4000:]}"
        time.sleep(0.2)


@pytest.mark.parametrize("workers", [1, 3, 4])  # two: the tests below, each with two workers to the end
def test_n_workers_in_one_group_end_with_the_replay_report(
    pipeline: Pipeline, province: Path, expected: str, workers: int
) -> None:
    pipeline.batch_size = 20  # many batches: each worker gets its share
    pipeline.create_topics()
    for _ in range(workers):
        pipeline.start_worker()
    _wait_assigned(pipeline, workers)
    time.sleep(1.0)  # the group settles (a late joiner rebalances it once more)
    assert pipeline.uythac("publish", str(province), check=False).returncode == 1  # its few broken lines
    pipeline.wait_caught_up()
    assert pipeline.stop_workers() == [0] * workers
    assert pipeline.report() == expected
    _outputs_agree(pipeline, orjson.loads(expected))
    applying = [n for n in range(1, workers + 1) if '"batch applied"' in _log_of(pipeline, n)]
    assert len(applying) >= min(workers, 2), f"the partitions were not split: only workers {applying} applied batches"
    assert workers <= PARTITIONS


def test_two_workers_killed_at_random_lose_and_double_nothing(
    pipeline: Pipeline, province: Path, expected: str
) -> None:
    """Eight kill -9s of one worker or the other, each a moment after the store moved on, the killed one started
    again; half the stream is published while the kills go on."""
    first, second = _halves(province)
    rng = random.Random(22)
    pipeline.batch_size = 5
    pipeline.produce(first)
    live = [pipeline.start_worker(), pipeline.start_worker()]
    progress = []
    for kill in range(8):
        if kill == 4:
            pipeline.produce(second)
        before = pipeline.applied()
        deadline = time.monotonic() + 60
        while pipeline.applied() == before and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.1))
        victim = live.pop(rng.randrange(2))
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        progress.append((pipeline.applied(), sum(pipeline.end_offsets().values())))
        live.append(pipeline.start_worker())
    assert sum(applied < published for applied, published in progress) >= 5, f"(applied, published) {progress}"
    pipeline.workers = [worker for worker in pipeline.workers if worker.poll() is None]
    pipeline.wait_caught_up(timeout_s=180)
    assert pipeline.stop_workers() == [0, 0]
    assert pipeline.report() == expected
    _outputs_agree(pipeline, orjson.loads(expected))


def _resumed_after_restart(pipeline: Pipeline, province: Path) -> float:
    """Seconds from starting a worker again after a kill -9 to its first batch applied."""
    first, second = _halves(province)
    pipeline.produce(first)
    worker = pipeline.start_worker()
    pipeline.wait_caught_up()
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    pipeline.workers.clear()
    pipeline.produce(second)
    before, started = pipeline.applied(), time.monotonic()
    pipeline.start_worker()
    while pipeline.applied() == before:
        assert time.monotonic() - started < 90, pipeline.worker_log()[-4000:]
        time.sleep(0.05)
    return time.monotonic() - started


def test_a_worker_started_again_under_its_instance_id_resumes_without_waiting_out_the_session(
    pipeline: Pipeline, province: Path
) -> None:
    """Static membership: the broker gives the returning member its partitions at once. (A new member would wait
    until the killed one's session of 30 s ran out.)"""
    pipeline.settings.update({"UYTHAC_KAFKA_SESSION_TIMEOUT_MS": "30000", "UYTHAC_KAFKA_INSTANCE_ID": "worker-a"})
    seconds = _resumed_after_restart(pipeline, province)
    assert seconds < 10, f"resumed {seconds:.1f} s after the restart"


def test_postgres_stopped_hard_mid_stream_loses_and_doubles_nothing(
    pipeline: Pipeline, province: Path, expected: str, postgres_server: PostgresServer
) -> None:
    """`pg_ctl -m immediate` (as a crash) while two workers apply a stream: they wait for the database and go
    on; the API answers 503 problem+json meanwhile, never 500, and `/readyz` fails."""
    first, second = _halves(province)
    pipeline.batch_size = 20
    pipeline.produce(first)
    workers = [pipeline.start_worker(), pipeline.start_worker()]
    deadline = time.monotonic() + 60
    while pipeline.applied() == 0:
        assert time.monotonic() < deadline, pipeline.worker_log()[-4000:]
        time.sleep(0.05)
    keys = write_keys(pipeline.directory)
    closed = f"127.0.0.1:{free_ports(1)[0]}"
    app = create_app(Settings(db=pipeline.db, api_keys_file=str(keys.path), kafka_bootstrap=closed))
    try:
        api = app.test_client()
        assert api.get("/v1/report", headers=keys.header("all")).status_code == 200
        postgres_server.kill()
        try:
            pipeline.produce(second)
            for path in ("/v1/report", "/v1/distribution", "/v1/units?org=HND"):
                answer = api.get(path, headers=keys.header("all"))
                assert answer.status_code == 503 and answer.mimetype == "application/problem+json", answer.data
                assert answer.json is not None and answer.json["type"].endswith("/store-unavailable")
            assert api.get("/readyz").status_code == 503
            time.sleep(3.0)  # the workers meet the database gone
        finally:
            postgres_server.start()
        pipeline.wait_caught_up(timeout_s=180)
        assert all(worker.poll() is None for worker in workers), "the workers waited for the database"
        assert pipeline.stop_workers() == [0, 0]
        assert pipeline.report() == expected
        _outputs_agree(pipeline, orjson.loads(expected))
        assert api.get("/v1/report", headers=keys.header("all")).status_code == 200
        assert "store unavailable" in pipeline.worker_log()
    finally:
        app.extensions[EXTENSION].store.close()


def test_a_frozen_worker_is_fenced_when_it_wakes_and_nothing_counts_twice(
    pipeline: Pipeline, province: Path, expected: str
) -> None:
    """SIGSTOP on a worker and its intake in the middle of the stream, with batches in hand; a second worker
    joins, and past the session timeout the group gives it every partition (a transaction the frozen one held
    open is ended by the server). After SIGCONT the frozen worker's next commit is refused."""
    pipeline.batch_size = 5
    pipeline.settings["UYTHAC_DB_IDLE_IN_TRANSACTION_S"] = "3"
    # kafka-python sometimes hands a new member its partitions and then no records; the worker's stall watch
    # replaces such an intake. At its default (60 s) that would come after this test's wait for the takeover.
    pipeline.settings["UYTHAC_WORKER_STALL_S"] = "15"
    pipeline.produce(keyed(province.read_bytes().splitlines()))
    frozen = pipeline.start_worker()
    deadline = time.monotonic() + 60
    while pipeline.applied() < 200:
        assert time.monotonic() < deadline, pipeline.worker_log()[-4000:]
        time.sleep(0.02)
    stopped = [frozen.pid, pipeline.intake_of(frozen)]
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    try:
        at_freeze = pipeline.applied()
        other = pipeline.start_worker()
        # Past the session (6 s) the group gives every partition to the other worker; on a loaded machine
        # its join and first batch can take a while longer.
        deadline = time.monotonic() + 60
        while pipeline.applied() <= at_freeze:
            assert other.poll() is None, pipeline.worker_log()[-4000:]
            assert time.monotonic() < deadline, "the other worker never took the frozen one's partitions over"
            time.sleep(0.2)
    finally:
        for pid in reversed(stopped):
            os.kill(pid, signal.SIGCONT)
    pipeline.wait_caught_up(timeout_s=180)
    assert pipeline.stop_workers() == [0, 0]
    assert pipeline.report() == expected
    _outputs_agree(pipeline, orjson.loads(expected))
    woke = _log_of(pipeline, 1)
    assert '"batch not applied"' in woke or "store unavailable" in woke, "the frozen worker's next commit is refused"
