"""Cost at width (issue 21): the per-event cost of `uythac replay` and `uythac worker` as the province widens.

The same generator at BENCH_WIDTHS communes (default 520, 1 040 and 2 080: Thanh Hóa's 520 and twice and four
times it), each with history from 2002 plus 12 months (`uythac generate --communes N --months 12 --seed 9`).
BENCH_WIDTH_COMMANDS (default `replay,postgresql,worker`) says which of them run at each width:

- replay: the file onto a new SQLite store, pinned to one core, with the default settings (and the
  environment's `UYTHAC_*`, e.g. `UYTHAC_CACHE_ENTITIES`);
- postgresql: the same replay onto a new schema of the local PostgreSQL (deploy/postgres/pgctl, started if it
  is not running; the schema dropped after). The client is pinned to one core and the server runs on the
  other; the CPU counted is the machine's over the run (client and server: run it alone on the machine);
- worker: the file's lines sent to a 12-partition topic of a broker of the benchmark's own (keyed by commune,
  as `uythac publish` sends them; not timed), then one `uythac worker` from the topic's start onto a new SQLite
  store until it has applied every message and relayed its output messages. Its CPU (its intake process
  included) and wall time; it is not pinned, since it runs on two cores by design (intake and apply).

For each: events, events/s, CPU µs per event and its ratio to the narrowest width's, peak RSS, and the report's
digest (a change of the code must leave it as it was; the worker's must be the replay's). For the replay also
the store's size and its loans, and the loans still owing at the end (what the entity cache would need to hold
them all). The target: the cost per event flat within 15 % across the widths.

`make bench-width` alone; `make bench` runs it last. Generated provinces are kept under var/bench/.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaProducer

from tests.bench.common import BENCH_DIR, CORE, UYTHAC, events_read, generated, machine, measure
from tests.bench.national_bench import on_disk
from tests.bench.worker_bench import PARTITIONS, _key, _lines, applied, start_broker, stored, worker_env
from tests.kafka_broker import KafkaBroker
from tests.postgres_server import PostgresError, PostgresServer, libpq_url
from uythac.adapters.kafka.admin import ensure_topics
from uythac.devtools import generate

FLAT = 0.15  # the target: per-event cost within 15 % of the narrowest province's
COMMANDS = ("replay", "postgresql", "worker")


@dataclass(frozen=True)
class Cost:
    """One command's run at one width."""

    events: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    report: str  # the report's sha256, first 16 hex digits
    peaks_mb: dict[str, float] = field(default_factory=dict)  # the worker's, by process

    @property
    def per_event_us(self) -> float:
        return self.cpu_seconds / self.events * 1e6


def province(communes: int) -> Path:
    """The province of `communes` communes, as the issue's `uythac generate` makes it."""
    return generated(f"width-{communes}c-12m-9", generate.GenerateOptions(communes=communes, months=12, seed=9))


def widths() -> list[int]:
    """BENCH_WIDTHS: communes, comma-separated; a clear exit on anything else."""
    given = os.environ.get("BENCH_WIDTHS", "520,1040,2080")
    try:
        found = [int(width) for width in given.split(",")]
    except ValueError:
        found = []
    if not found or min(found) < 1:
        raise SystemExit(f"BENCH_WIDTHS: numbers of communes separated by commas (e.g. 520,1040), not {given!r}")
    return found


def commands() -> list[str]:
    """BENCH_WIDTH_COMMANDS: some of `replay`, `postgresql`, `worker`, comma-separated; a clear exit on anything
    else."""
    given = os.environ.get("BENCH_WIDTH_COMMANDS", ",".join(COMMANDS))
    found = [command.strip() for command in given.split(",")]
    if not found or any(command not in COMMANDS for command in found):
        raise SystemExit(f"BENCH_WIDTH_COMMANDS: some of {', '.join(COMMANDS)} separated by commas, not {given!r}")
    return found


def digest(report: Path) -> str:
    return hashlib.sha256(report.read_bytes()).hexdigest()[:16]


def replay_onto(source: Path, scratch: Path, db: str) -> tuple[Cost, float]:
    """`uythac replay` of `source` onto the store `db`, pinned to one core: its cost, and the CPU seconds the whole
    machine spent over the run (a server's included)."""
    before = busy_seconds()
    run = measure([UYTHAC, "replay", str(source), "--db", db, "--report", f"{scratch}/report.json"])
    machine_seconds = busy_seconds() - before
    report = digest(scratch / "report.json")
    return Cost(events_read(run.output), run.seconds, run.cpu_seconds, run.peak_rss_mb, report), machine_seconds


def replayed(source: Path, scratch: Path) -> tuple[Cost, str]:
    """A replay of `source` onto a new SQLite file; and what the store holds, as text."""
    db = scratch / "width.db"
    cost, _ = replay_onto(source, scratch, str(db))
    with closing(sqlite3.connect(db)) as connection:
        return cost, holds(connection, on_disk(db))


def replayed_on_postgresql(source: Path, scratch: Path, server: PostgresServer) -> tuple[Cost, str]:
    """A replay of `source` onto a new schema of `server`, its CPU the machine's (the server does half the work);
    and what the store held, as text."""
    url = server.new_store()
    try:
        cost, machine_seconds = replay_onto(source, scratch, url)
        with psycopg.connect(libpq_url(url)) as connection:
            size = connection.execute(
                "SELECT sum(pg_total_relation_size(oid)) FROM pg_class "
                "WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'"
            ).fetchone()
            held = holds(connection, int(size[0]) if size else 0)
    finally:
        server.drop_store(url)
    return replace(cost, cpu_seconds=machine_seconds), held


def holds(connection: Any, size: int) -> str:
    """What a store holds, as text: its size and its loans, and those still owing (what the entity cache would
    need to hold them all)."""
    loans = connection.execute("SELECT count(*) FROM loans WHERE status IS NOT NULL").fetchone()[0]
    owing = connection.execute(
        "SELECT count(*) FROM loans JOIN loan_balances USING (n) WHERE status IS NOT NULL AND amount > principal_paid"
    ).fetchone()[0]
    return f"store {size / 2**30:.2f} GiB, {loans:,} loans ({owing:,} owing)"


def busy_seconds() -> float:
    """CPU time the whole machine has spent busy since it started (/proc/stat), in seconds."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = Path("/proc/stat").read_text().split()[1:9]
    ticks = sum(int(count) for count in (user, nice, system, irq, softirq, steal))
    return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def local_postgresql(wanted: list[str]) -> Iterator[PostgresServer | None]:
    """The local PostgreSQL of deploy/postgres/pgctl (var/postgres, port 15432), started if it is not running and
    then stopped when the benchmark ends; None if the series does not ask for it."""
    if "postgresql" not in wanted:
        yield None
        return
    server = PostgresServer(BENCH_DIR.parent / "postgres", 15432)
    try:
        server.start()
    except PostgresError as error:
        raise SystemExit(f"bench-width: the local PostgreSQL did not start: {str(error).splitlines()[-1]}") from None
    yield server


def sent(bootstrap: str, topic: str, source: Path) -> int:
    """Every line of `source` sent to a new `topic` as `uythac publish` keys it (broken lines too: the worker
    dead-letters them, as it would the bank's); the number sent."""
    ensure_topics(bootstrap, {topic: PARTITIONS})
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=50, batch_size=1 << 20
    )
    count = 0
    try:
        for line in _lines(source):
            producer.send(topic, key=_key(line), value=line)
            count += 1
        producer.flush()
    finally:
        producer.close()
    return count


def consumed(bootstrap: str, topic: str, total: int, scratch: Path) -> Cost:
    """One `uythac worker` from the start of `topic` until its store has applied all `total` messages and relayed
    their output messages: its wall time and its CPU, its intake process included."""
    db = scratch / "worker.db"
    env = worker_env(bootstrap, topic, db)
    started = time.perf_counter()
    worker = subprocess.Popen([UYTHAC, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peaks: dict[str, float] = {}
    try:
        while sum(applied(db, topic).values()) < total or stored(db, topic)[1]:
            if worker.poll() is not None:
                raise SystemExit(f"uythac worker exited ({worker.returncode}) before it had applied the topic")
            peaks = peak_rss_mb(worker.pid) or peaks
            time.sleep(1)
        seconds = time.perf_counter() - started
    finally:
        worker.terminate()
        _, _, usage = os.wait4(worker.pid, 0)
    report = scratch / "worker-report.json"
    subprocess.run([UYTHAC, "report", "--db", str(db), "--out", str(report)], env=env, check=True)
    return Cost(total, seconds, usage.ru_utime + usage.ru_stime, sum(peaks.values()), digest(report), peaks)


def peak_rss_mb(pid: int) -> dict[str, float]:
    """Peak resident memory (MB) of the worker process and of its intake (its largest child), as Linux kept
    them so far (VmHWM); the two add up to what the worker needs at its peak, or less."""

    def hwm(process: int) -> float:
        status = Path(f"/proc/{process}/status").read_text()
        return int(status.split("VmHWM:", 1)[1].split()[0]) / 1024

    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return {"worker": hwm(pid), "intake": max((hwm(int(child)) for child in children), default=0.0)}
    except (OSError, IndexError):  # ended, or a zombie (no VmHWM), between two reads: the loop's next look says so
        return {}


def against(replay: Cost | None, other: Cost) -> str:
    """Whether another run's store reports what the SQLite replay's does (nothing to say if that did not run)."""
    if replay is None:
        return ""
    return "the replay's " if replay.report == other.report else "NOT THE REPLAY'S "


def by_process(cost: Cost) -> str:
    if not cost.peaks_mb:
        return ""
    return " (" + " + ".join(f"{name} {mb:,.0f}" for name, mb in cost.peaks_mb.items()) + ")"


def line(command: str, communes: int, cost: Cost, first: Cost, more: str) -> str:
    ratio = cost.per_event_us / first.per_event_us
    return (
        f"  {command:<10} {communes:>6,} communes: {cost.events:>11,} events, {cost.events / cost.seconds:>7,.0f} "
        f"events/s, {cost.per_event_us:5.1f} µs CPU/event ({ratio:.2f}x; target within {1 + FLAT:.2f}x), "
        f"peak RSS {cost.peak_rss_mb:>5,.0f} MB{by_process(cost)}, {more}report (sha256 {cost.report}…)"
    )


def main() -> None:
    communes_of_each, wanted = widths(), commands()
    cache = os.environ.get("UYTHAC_CACHE_ENTITIES", "the default")
    print(f"cost at width: {machine()}; replays pinned to core {CORE}; entity cache {cache}")
    broker = start_broker() if "worker" in wanted else None
    firsts: dict[str, Cost] = {}
    try:
        with local_postgresql(wanted) as postgresql:
            for communes in communes_of_each:
                with tempfile.TemporaryDirectory(prefix="uythac-width-") as directory:
                    at_width(communes, Path(directory), wanted, firsts, broker, postgresql)
    finally:
        if broker is not None:
            broker.stop()


def at_width(
    communes: int,
    scratch: Path,
    wanted: list[str],
    firsts: dict[str, Cost],
    broker: KafkaBroker | None,
    postgresql: PostgresServer | None,
) -> None:
    """The commands `wanted` at one width, each line printed as it ends; `firsts` keeps each one's narrowest."""
    source = province(communes)
    replay: Cost | None = None

    def show(command: str, cost: Cost, more: str) -> None:
        firsts.setdefault(command, cost)
        print(line(command, communes, cost, firsts[command], more), flush=True)

    if "replay" in wanted:
        replay, store = replayed(source, scratch)
        show("replay", replay, f"{store}, ")
    if postgresql is not None:
        on_server, store = replayed_on_postgresql(source, scratch, postgresql)
        show("postgresql", on_server, f"{store}, {against(replay, on_server)}")
    if broker is not None:
        topic = f"width.{communes}"
        worker = consumed(broker.bootstrap, topic, sent(broker.bootstrap, topic, source), scratch)
        show("worker", worker, against(replay, worker))


if __name__ == "__main__":
    main()
