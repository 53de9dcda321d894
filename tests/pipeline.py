"""Helpers for tests of the streaming side: a worker as a real process, topics read back whole.

Every `Pipeline` has its own topics, consumer group and store, so tests on the session's one broker
never see each other's messages.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tests.support import CARD
from uythac import bootstrap
from uythac.adapters.kafka.admin import ensure_topics
from uythac.core.report import render
from uythac.service.reports import current_report

UYTHAC = str(Path(sys.executable).with_name("uythac"))
PARTITIONS = 4
_ids = itertools.count(1)


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]

    @property
    def data(self) -> Any:
        return orjson.loads(self.value or b"null")


@dataclass
class Pipeline:
    """One test's topics, group, store and worker processes."""

    bootstrap: str
    directory: Path
    name: str = field(default_factory=lambda: f"t{next(_ids)}{uuid.uuid4().hex[:6]}")
    batch_size: int = 500  # small: many batches, so that a kill can land between and inside them
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    started: int = 0  # workers started so far: each writes its own log
    settings: dict[str, str] = field(default_factory=dict)  # more UYTHAC_* variables for this test's processes
    store_url: str = ""  # the store (a PostgreSQL URL); empty: a SQLite file in `directory`

    @property
    def topic(self) -> str:
        return f"{self.name}.events"

    @property
    def db(self) -> str:
        """The store's location: a SQLite path, or `store_url`."""
        return self.store_url or str(self.directory / f"{self.name}.db")

    def _store_made(self) -> bool:
        return bool(self.store_url) or Path(self.db).exists()

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "UYTHAC_DB": str(self.db),
            "UYTHAC_KAFKA_BOOTSTRAP": self.bootstrap,
            "UYTHAC_KAFKA_TOPIC": self.topic,
            "UYTHAC_KAFKA_PARTITIONS": str(PARTITIONS),
            "UYTHAC_KAFKA_GROUP": f"{self.name}-rules",
            "UYTHAC_KAFKA_SESSION_TIMEOUT_MS": "6000",  # the broker's minimum: a killed worker's partitions free sooner
            "UYTHAC_KAFKA_FLAGS_TOPIC": f"{self.name}.flags",
            "UYTHAC_KAFKA_SCORES_TOPIC": f"{self.name}.scores",
            "UYTHAC_WORKER_METRICS_PORT": "0",
            "UYTHAC_BATCH_SIZE": str(self.batch_size),
            **self.settings,
        }

    # processes ------------------------------------------------------------------------------------
    def uythac(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([UYTHAC, *args], env=self.env(), capture_output=True, text=True, timeout=600)
        if check and done.returncode != 0:
            raise AssertionError(f"uythac {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done

    def start_worker(self) -> subprocess.Popen[bytes]:
        self.started += 1
        with (self.directory / f"{self.name}-worker-{self.started:02d}.log").open("wb") as log:
            worker = subprocess.Popen([UYTHAC, "worker"], env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        self.workers.append(worker)
        return worker

    def stop_workers(self, sig: int = signal.SIGTERM) -> list[int]:
        """Signal every live worker and wait; their exit codes."""
        codes = []
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(sig)
            codes.append(worker.wait(timeout=60))
        self.workers.clear()
        return codes

    def intake_of(self, worker: subprocess.Popen[bytes]) -> int:
        """The pid of a worker's intake process (its child started by multiprocessing's spawn)."""
        children = Path(f"/proc/{worker.pid}/task/{worker.pid}/children").read_text().split()
        spawned = [int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(spawned) == 1, f"one intake per worker, found {spawned}"
        return spawned[0]

    def worker_log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.directory.glob(f"{self.name}-worker-*")))

    # topics ---------------------------------------------------------------------------------------
    def create_topics(self) -> None:
        ensure_topics(self.bootstrap, {self.topic: PARTITIONS})

    def produce(self, messages: Iterable[tuple[bytes | None, bytes | None]]) -> int:
        """Send (key, value) pairs to the events topic as they are, unvalidated; returns how many."""
        self.create_topics()
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
        try:
            futures = [producer.send(self.topic, key=key, value=value) for key, value in messages]
            producer.flush()
            for future in futures:
                future.get(timeout=30)
            return len(futures)
        finally:
            producer.close()

    def read(self, suffix: str) -> list[Record]:
        """Every record of topic `<name>.<suffix>`, partition by partition in offset order."""
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        try:
            topic = f"{self.name}.{suffix}"
            partitions = consumer.partitions_for_topic(topic) or set()
            assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
            if not assigned:
                return []
            consumer.assign(assigned)
            consumer.seek_to_beginning(*assigned)
            ends = consumer.end_offsets(assigned)
            records: list[Record] = []
            deadline = time.monotonic() + 60
            while any(consumer.position(tp) < ends[tp] for tp in assigned):
                assert time.monotonic() < deadline, f"could not read {topic} to its end"
                for tp, batch in consumer.poll(timeout_ms=500).items():
                    records += [Record(tp.partition, r.offset, r.key, r.value, dict(r.headers or [])) for r in batch]
            return sorted(records, key=lambda r: (r.partition, r.offset))
        finally:
            consumer.close()

    def end_offsets(self) -> dict[int, int]:
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap)
        try:
            partitions = consumer.partitions_for_topic(self.topic) or set()
            ends = consumer.end_offsets([TopicPartition(self.topic, p) for p in partitions])
            return {tp.partition: offset for tp, offset in ends.items()}
        finally:
            consumer.close()

    # the store ------------------------------------------------------------------------------------
    def wait_caught_up(self, timeout_s: float = 120) -> None:
        """Until the store has applied every message on the events topic and the outbox is empty."""
        deadline = time.monotonic() + timeout_s
        while True:
            ends = {p: n for p, n in self.end_offsets().items() if n > 0}
            if self._store_made():
                store = bootstrap.open_store(self.db)
                try:
                    with store.reading() as uow:
                        applied, backlog = uow.offsets(self.topic), uow.outbox_backlog()
                finally:
                    store.close()
                if ends and all(applied.get(p) == n for p, n in ends.items()) and backlog == 0:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"worker did not catch up; log:\n{self.worker_log()[-4000:]}")
            if self.workers and all(w.poll() is not None for w in self.workers):
                raise AssertionError(f"every worker exited; log:\n{self.worker_log()[-4000:]}")
            time.sleep(0.3)

    def applied(self) -> int:
        """How many messages of the events topic the store has applied (0 before the store exists)."""
        if not self._store_made():
            return 0
        store = bootstrap.open_store(self.db)
        try:
            with store.reading() as uow:
                return sum(uow.offsets(self.topic).values())
        finally:
            store.close()

    def report(self) -> str:
        store = bootstrap.open_store(self.db)
        try:
            return render(current_report(store, CARD))
        finally:
            store.close()


def replay_report(source: Path, directory: Path) -> str:
    """`uythac replay` of a file, as the bytes of its report."""
    out = directory / f"replay-{next(_ids)}.json"
    subprocess.run([UYTHAC, "replay", str(source), "--report", str(out)], check=True, capture_output=True, timeout=600)
    return out.read_text(encoding="utf-8")


def keyed(lines: Iterable[bytes]) -> list[tuple[bytes | None, bytes]]:
    """(commune_id key, line) as `uythac publish` sends them; lines that are not events keep no key."""
    out = []
    for line in lines:
        try:
            commune = orjson.loads(line).get("commune_id")
        except (orjson.JSONDecodeError, AttributeError):
            commune = None
        out.append((commune.encode() if isinstance(commune, str) else None, line))
    return out
