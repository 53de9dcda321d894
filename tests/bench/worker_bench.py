"""The worker on the real broker (issue 3's benchmark): throughput against raw consume, and latency.

1. A broker of its own (var/bench/kafka, production JVM settings); a generated province (BENCH_EVENTS,
   default 1 200 000 events) published to a 12-partition topic.
2. Raw kafka-python consume-and-discard of that topic: this machine's transport limit.
3. `uythac worker` from the start of the topic to caught up: end-to-end events/s, and its ratio to 2;
   timed from the process's start, and from its partitions' assignment (as 2 is timed).
   Steps 2 and 3 alternate, BENCH_RUNS workers (default 3) between BENCH_RUNS + 1 raw consumes: this VM's
   speed swings by a third from one minute to the next, so each run is printed and the ratio of the
   medians is the figure (with the lowest and highest of the runs' own ratios).
4. A worker in its steady state: a fresh topic and store are given the province's history first (every
   line before its last year, applied as fast as the worker goes, not timed), then the last year's lines
   at a steady 2 000 events/s for BENCH_STEADY_S seconds (default 30), once the history's output messages
   are relayed too: event-to-queryable latency = from the producer's send to the first moment the store's
   committed offset covers the message (the store is sampled every 10 ms), p50 / p99 / max. (Streaming the
   history itself at 2 000/s would pass a month end every few batches, each with its month-end report: a
   backfill, not the steady state.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path
from statistics import median
from typing import TypeVar

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tests.bench.common import BENCH_DIR, UYTHAC, machine, province
from tests.kafka_broker import KafkaBroker, free_ports
from tests.postgres_server import PostgresServer
from uythac.adapters.kafka.admin import ensure_topics
from uythac.adapters.sql.store import Store
from uythac.adapters.sql.unit_of_work import SqlUnitOfWork
from uythac.entrypoints.publish import publish
from uythac.entrypoints.replay import lines_of

PARTITIONS = 12
T = TypeVar("T")
RATE = 2000  # events/s in the latency phase


def start_broker() -> KafkaBroker:
    directory = BENCH_DIR / "kafka"
    shutil.rmtree(directory, ignore_errors=True)
    broker = KafkaBroker(directory, *free_ports(2), java_opts="", heap="1g")
    broker.start()
    return broker


def raw_consume(bootstrap: str, topic: str) -> tuple[int, float]:
    """(messages, seconds) to read the whole topic and throw it away."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=5000, fetch_max_bytes=64 << 20
    )
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        total = sum(consumer.end_offsets(partitions).values())
        started, seen = time.perf_counter(), 0
        while seen < total:
            seen += sum(len(batch) for batch in consumer.poll(timeout_ms=500).values())
        return seen, time.perf_counter() - started
    finally:
        consumer.close()


def worker_env(bootstrap: str, topic: str, db: Path | str) -> dict[str, str]:
    return {
        **os.environ,
        "UYTHAC_DB": str(db),
        "UYTHAC_KAFKA_BOOTSTRAP": bootstrap,
        "UYTHAC_KAFKA_TOPIC": topic,
        "UYTHAC_KAFKA_GROUP": f"{topic}-bench",
        "UYTHAC_KAFKA_FLAGS_TOPIC": f"{topic}.flags",
        "UYTHAC_KAFKA_SCORES_TOPIC": f"{topic}.scores",
        "UYTHAC_WORKER_METRICS_PORT": "0",
        "UYTHAC_LOG_LEVEL": "warning",
    }


def stored(db: Path | str, topic: str) -> tuple[dict[int, int], int]:
    """(applied offsets by partition, output messages not yet relayed) in the worker's store, in one read."""
    nothing: tuple[dict[int, int], int] = ({}, 0)
    return _in_store(db, lambda uow: (uow.offsets(topic), uow.outbox_backlog()), nothing)


def applied(db: Path | str, topic: str) -> dict[int, int]:
    """Applied offsets by partition. Only these: the runs poll it every 0.2 s, and counting the outbox each time
    took a tenth of the PostgreSQL server's CPU while the worker ran."""
    return _in_store(db, lambda uow: uow.offsets(topic), {})


def _in_store(db: Path | str, read: Callable[[SqlUnitOfWork], T], missing: T) -> T:
    """What `read` finds in the worker's store, in one read; `missing` if the worker has not made it yet."""
    if isinstance(db, Path) and not db.exists():
        return missing
    store = Store.at(db)
    try:
        with store.reading() as uow:
            return read(uow)
    finally:
        store.close()


def run_worker_to_end(
    bootstrap: str, topic: str, total: int, scratch: Path, db: Path | str | None = None, workers: int = 1
) -> tuple[float, float]:
    """Seconds until the store of `workers` new `uythac worker`s in one group (a SQLite file in `scratch`, else
    `db`) has applied all `total` messages: from starting the processes, and from the first "partitions
    assigned" log line (where the raw consume's clock starts)."""
    db = db or scratch / "throughput.db"
    env = {**worker_env(bootstrap, topic, db), "UYTHAC_LOG_LEVEL": "info"}
    assigned: list[float] = []

    def watch(lines: Iterator[bytes]) -> None:  # reads the log to its end, so that the pipe never fills
        for line in lines:
            if not assigned and b'"partitions assigned"' in line:
                assigned.append(time.perf_counter())

    started = time.perf_counter()
    running, readers = [], []
    for _ in range(workers):
        worker = subprocess.Popen([UYTHAC, "worker"], env=env, stderr=subprocess.PIPE)
        reader = threading.Thread(target=watch, args=(iter(worker.stderr.readline, b""),), daemon=True)  # type: ignore[union-attr]
        reader.start()
        running.append(worker)
        readers.append(reader)
    try:
        while sum(applied(db, topic).values()) < total:
            if any(worker.poll() is not None for worker in running):
                raise RuntimeError("a worker exited")
            time.sleep(0.2)
        done = time.perf_counter()
        return done - started, done - (assigned[0] if assigned else started)
    finally:
        for worker in running:
            worker.terminate()
        for worker, reader in zip(running, readers, strict=True):
            worker.wait(timeout=60)
            reader.join(timeout=10)


def on_both_stores(bootstrap: str, topic: str, total: int, scratch: Path) -> None:
    """The worker on SQLite, then on the local PostgreSQL with one worker and with two in one group (a new schema
    each run), alternating, twice each: events/s from the partitions' assignment, and the ratio to SQLite."""
    server = PostgresServer(BENCH_DIR.parent / "postgres", 15432)  # the local one of deploy/postgres/pgctl
    server.start()
    rates: dict[str, list[float]] = {"SQLite": [], "PostgreSQL, 1 worker": [], "PostgreSQL, 2 workers": []}
    for run in range(2):
        for kind, found in rates.items():
            db = None if kind == "SQLite" else server.new_store()
            _, seconds = run_worker_to_end(
                bootstrap, topic, total, scratch / f"{run}{kind[0]}", db, 1 + kind.count("2")
            )
            found.append(total / seconds)
            print(f"  {kind:<22} {found[-1]:>8,.0f} events/s from assignment")
    sqlite = median(rates["SQLite"])
    print("  " + "; ".join(f"{kind}: {median(found) / sqlite:.0%} of SQLite" for kind, found in rates.items()))


def history_and_year(source: Path) -> tuple[list[bytes], Iterator[bytes]]:
    """The province's lines in file order, cut before the first line of its last year: (history, the rest)."""
    with lines_of(source) as (lines, _):
        days = [_day(line) for line in lines]
    last = max(day for day in days if day is not None)
    cut = (date.fromisoformat(last) - timedelta(days=365)).isoformat()
    split = next(n for n, day in enumerate(days) if day is not None and day >= cut)
    everything = _lines(source)
    history = [next(everything) for _ in range(split)]
    return history, everything


def _day(line: bytes) -> str | None:
    """The line's occurred_at date as ISO text; None for the few invalid lines (they are sent all the same)."""
    try:
        day = orjson.loads(line).get("occurred_at")
        return date.fromisoformat(day[:10]).isoformat()
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return None


def _lines(source: Path) -> Iterator[bytes]:
    with lines_of(source) as (lines, _):
        for line in lines:
            yield line.rstrip(b"\n")


def _key(line: bytes) -> bytes | None:
    """The line's commune_id as the message key, as `uythac publish` sends it; None for a broken line."""
    try:
        commune = orjson.loads(line).get("commune_id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return commune.encode() if isinstance(commune, str) else None


def latency(bootstrap: str, source: Path, seconds: float, scratch: Path) -> list[float]:
    """Event-to-queryable latencies (s) of every message sent at RATE events/s for `seconds`."""
    topic = "bench.steady"
    ensure_topics(bootstrap, {topic: PARTITIONS})
    db = scratch / "latency.db"
    worker = subprocess.Popen([UYTHAC, "worker"], env=worker_env(bootstrap, topic, db))
    waiting: dict[int, deque[tuple[int, float]]] = {p: deque() for p in range(PARTITIONS)}  # acknowledged
    waits: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        """Every 10 ms: the messages the store's offsets now cover are queryable."""
        store = Store.at(db)  # the worker has created it by now
        try:
            while not stop.is_set() or any(waiting.values()):
                with store.reading() as uow:
                    offsets = uow.offsets(topic)
                now = time.monotonic()
                for partition, upto in offsets.items():
                    queue = waiting[partition]
                    while queue and queue[0][0] < upto:
                        waits.append(now - queue.popleft()[1])
                time.sleep(0.01)
        finally:
            store.close()

    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=0)
        history, year = history_and_year(source)
        _preload(producer, topic, history, db)  # group join, first assignment, the history: not timed
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        for n in range(int(seconds * RATE)):
            line = next(year)
            at = time.monotonic()
            producer.send(topic, key=_key(line), value=line).add_callback(
                lambda meta, at=at: waiting[meta.partition].append((meta.offset, at))
            )
            pause = started + (n + 1) / RATE - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        producer.flush()
        producer.close()
        stop.set()
        sampler.join(timeout=120)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    return sorted(waits)


def _preload(producer: KafkaProducer, topic: str, lines: list[bytes], db: Path, timeout_s: float = 900.0) -> None:
    """Send these lines and wait until the worker has applied them all and relayed their output messages
    (hundreds of thousands: relaying them takes the intake's CPU for a few seconds after the last batch)."""
    for line in lines:
        producer.send(topic, key=_key(line), value=line)
    producer.flush()
    deadline = time.monotonic() + timeout_s
    while True:
        offsets, backlog = stored(db, topic)
        if sum(offsets.values()) >= len(lines) and not backlog:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not apply the {len(lines):,} history lines within {timeout_s:.0f} s")
        time.sleep(0.5)


def percentile(values: list[float], p: float) -> float:
    return values[min(int(len(values) * p), len(values) - 1)]


def main() -> None:
    size = int(os.environ.get("BENCH_EVENTS", "1200000"))
    steady_s = float(os.environ.get("BENCH_STEADY_S", "30"))
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    source = province(size)
    print(f"worker benchmark on {machine()}")
    broker = start_broker()
    try:
        topic = "bench.events"
        started = time.perf_counter()
        summary = publish(source, broker.bootstrap, topic, partitions=PARTITIONS, latest=None)
        produce_s = time.perf_counter() - started
        print(f"  published {summary.sent:,} events in {produce_s:.1f} s ({summary.sent / produce_s:,.0f}/s)")
        raws: list[float] = []
        rates: list[float] = []
        steadies: list[float] = []

        def consume_raw() -> int:
            messages, seconds = raw_consume(broker.bootstrap, topic)
            raws.append(messages / seconds)
            print(f"  raw kafka-python consume-and-discard: {raws[-1]:,.0f} messages/s")
            return messages

        messages = consume_raw()
        with tempfile.TemporaryDirectory(prefix="uythac-bench-") as scratch:
            for run in range(runs):
                worker_s, assigned_s = run_worker_to_end(broker.bootstrap, topic, messages, Path(scratch) / str(run))
                rates.append(messages / worker_s)
                steadies.append(messages / assigned_s)
                print(
                    f"  uythac worker end to end: {rates[-1]:,.0f} events/s ({worker_s:.1f} s, start-up included); "
                    f"from its partitions' assignment, as the raw consume is timed: {steadies[-1]:,.0f} events/s"
                )
                consume_raw()
            raw_rate, rate, steady = median(raws), median(rates), median(steadies)
            beside = [max(before, after) for before, after in pairwise(raws)]
            ratios = [worker / raw for worker, raw in zip(rates, beside, strict=True)]
            print(
                f"  medians: worker {rate:,.0f} events/s = {rate / raw_rate:.0%} of raw {raw_rate:,.0f} messages/s "
                f"(targets: 15 000/s and 30 %); {steady / raw_rate:.0%} from assignment; each run against the "
                f"faster raw consume beside it: {min(ratios):.0%} to {max(ratios):.0%}"
            )
            waits = latency(broker.bootstrap, source, steady_s, Path(scratch))
            print("SQLite and PostgreSQL, alternating:")
            on_both_stores(broker.bootstrap, topic, messages, Path(scratch))
        print(
            f"  event-to-queryable latency at {RATE:,} events/s for {steady_s:.0f} s after the history "
            f"({len(waits):,} events): "
            f"p50 {percentile(waits, 0.5) * 1000:.0f} ms, p99 {percentile(waits, 0.99) * 1000:.0f} ms, "
            f"max {waits[-1] * 1000:.0f} ms"
        )
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
