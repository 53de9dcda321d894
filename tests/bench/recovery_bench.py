"""Fast recovery of workers on the real broker and PostgreSQL (issue 22): how long events wait after a kill -9.

A broker and a PostgreSQL server of its own; a generated province streamed to a 12-partition topic at a
steady RATE events/s (in file order: every partition gets events every few hundred ms) while workers run.

1. **Restart**: one worker; kill -9 (the worker and its intake), started again at once under the same
   settings; from the kill to the first batch the new process applies (the store's offsets move again),
   with static membership off (a new member: the group waits out the dead one's session) and on
   (`UYTHAC_KAFKA_INSTANCE_ID`: the same member comes back and keeps its partitions).
2. **Failover**: two workers in one group (static members); kill -9 one for good; from the kill to the moment
   every partition has moved on (the dead one's partitions reach the survivor: after the session timeout).

Each is run BENCH_RECOVERY_RUNS times (default 3), alternating; each run and the medians are printed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median

from kafka import KafkaProducer

from tests.bench.common import BENCH_DIR, UYTHAC, machine, province
from tests.bench.worker_bench import PARTITIONS, _key, _lines, applied, start_broker, worker_env
from tests.kafka_broker import free_ports
from tests.postgres_server import PostgresServer
from uythac.adapters.kafka.admin import ensure_topics

RATE = 500  # events/s streamed while the workers run
SESSION_TIMEOUT_MS = 10_000  # the default of UYTHAC_KAFKA_SESSION_TIMEOUT_MS


class Stream:
    """The province's lines sent at RATE events/s on a thread of its own, keyed by commune like `uythac publish`."""

    def __init__(self, bootstrap: str, topic: str, source: Path) -> None:
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        self.topic, self.lines = topic, _lines(source)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._send, daemon=True)
        self.thread.start()

    def _send(self) -> None:
        started = time.perf_counter()
        for sent, line in enumerate(self.lines, 1):
            if self.stopping.is_set():
                return
            self.producer.send(self.topic, key=_key(line), value=line)
            ahead = sent / RATE - (time.perf_counter() - started)
            if ahead > 0:
                time.sleep(ahead)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)
        self.producer.close()


def _until(check: Callable[[], bool], timeout_s: float, step_s: float = 0.02) -> float:
    """Seconds until `check()` holds (polled every `step_s`)."""
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > timeout_s:
            raise RuntimeError(f"not within {timeout_s} s")
        time.sleep(step_s)
    return time.perf_counter() - started


def _start(env: dict[str, str], instance_id: str | None, log: Path) -> subprocess.Popen[bytes]:
    given = {**env, "UYTHAC_KAFKA_INSTANCE_ID": instance_id or ""}
    with log.open("ab") as out:
        return subprocess.Popen([UYTHAC, "worker"], env=given, stderr=out, start_new_session=True)


def _kill(worker: subprocess.Popen[bytes]) -> None:
    """kill -9 of the worker and its intake (its process group), as a host dying would."""
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)


def _stop(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.terminate()
        worker.wait(timeout=60)


def _moving(db: str, topic: str) -> Callable[[], bool]:
    """A check: has the store applied more of the topic than it had when this was made?"""
    before = sum(applied(db, topic).values())
    return lambda: sum(applied(db, topic).values()) > before


def restart(bootstrap: str, topic: str, db: str, static: bool, scratch: Path) -> float:
    """Seconds from kill -9 of a running worker to the first batch its new process applies."""
    env = worker_env(bootstrap, topic, db)
    name = "bench-worker-1" if static else None
    worker = _start(env, name, scratch / "restart.log")
    try:
        _until(_moving(db, topic), 120)  # running, with its partitions
        time.sleep(2)  # in its steady state
        _kill(worker)
        moved = _moving(db, topic)
        killed = time.perf_counter()
        worker = _start(env, name, scratch / "restart.log")
        _until(moved, 120)
        return time.perf_counter() - killed
    finally:
        _stop(worker)


def failover(bootstrap: str, topic: str, db: str, scratch: Path) -> float:
    """Seconds from kill -9 of one of two workers to every partition having moved on (the survivor holds all)."""
    env = worker_env(bootstrap, topic, db)
    first = _start(env, "bench-worker-1", scratch / "failover.log")
    second = _start(env, "bench-worker-2", scratch / "failover.log")
    try:
        _until(_moving(db, topic), 120)
        time.sleep(5)  # both in the group, each with its partitions
        _kill(second)
        before = applied(db, topic)
        killed = time.perf_counter()

        def every_partition_moved() -> bool:
            now = applied(db, topic)
            return all(now.get(p, 0) > before.get(p, 0) for p in range(PARTITIONS))

        _until(every_partition_moved, 120)
        return time.perf_counter() - killed
    finally:
        _stop(first)
        if second.poll() is None:
            _kill(second)


def main() -> None:
    runs = int(os.environ.get("BENCH_RECOVERY_RUNS", "3"))
    print(f"recovery: {machine()}")
    source = province(300_000)
    scratch = BENCH_DIR / "recovery"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    broker = start_broker()
    server = PostgresServer(scratch / "postgres", free_ports(1)[0])
    server.start()
    try:
        bootstrap, topic = broker.bootstrap, "bench.recovery"
        ensure_topics(
            bootstrap, {name: PARTITIONS for name in (topic, f"{topic}.flags", f"{topic}.scores", f"{topic}.dlq")}
        )
        stream = Stream(bootstrap, topic, source)
        try:
            found: dict[str, list[float]] = {"restart, static off": [], "restart, static on": [], "failover": []}
            for run in range(runs):
                for kind, seconds in found.items():
                    db = server.new_store()  # each run a store of its own: it starts from the topic's start
                    if kind == "failover":
                        seconds.append(failover(bootstrap, topic, db, scratch))
                    else:
                        seconds.append(restart(bootstrap, topic, db, kind.endswith("on"), scratch))
                    print(f"  run {run + 1}: {kind:<20} {seconds[-1]:6.2f} s", flush=True)
            print(
                "  medians: "
                + "; ".join(f"{kind} {median(seconds):.2f} s" for kind, seconds in found.items())
                + f" (session timeout {SESSION_TIMEOUT_MS / 1000:.0f} s, {RATE} events/s streamed)"
            )
        finally:
            stream.close()
    finally:
        server.stop()
        broker.stop()


if __name__ == "__main__":
    main()
