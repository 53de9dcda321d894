"""`uythac worker`: the rules engine on Kafka, with exactly-once effects on the store.

Checkpoint order, for every batch (this is the one place it is written):
  1. poll up to `batch_size` records from the assigned partitions of `uythac.events`;
  2. skip records below the offsets stored for their partition (already applied);
  3. validate each record; an invalid one becomes a DLQ message (original key, value and headers, the
     reason, source partition and offset in `uythac.*` headers);
  4. ONE store transaction: the state the valid events produce, the event ids accepted, the new
     partition offsets (a conditional update that fences a worker that lost its partitions), and the
     outbox rows: flags, score changes, DLQ messages, each with its event_id from the store's sequence;
  5. relay the outbox: send, flush the idempotent producer (acks=all), delete the rows acknowledged;
  6. commit the consumer offsets to Kafka (advisory, for lag tools: on every assignment the worker
     seeks to the offsets in the store, which are the truth; a partition the store has never seen is
     read from its beginning).
A crash anywhere before 4 commits leaves nothing behind; after it, the outbox still holds what 5 did not
finish and is sent again with the same event ids. Producer retries upstream are absorbed by event_id
dedupe. One store, one worker at a time for SQLite; a consumer group of workers needs PostgreSQL.
"""

from __future__ import annotations

import logging
import signal
import time
import uuid
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count
from types import FrameType
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata
from sqlalchemy.exc import OperationalError

from uythac import metrics
from uythac.dates import VIETNAM
from uythac.errors import StoreError
from uythac.kafka_admin import ensure_topics, wait_for_broker
from uythac.outbox import Message, relay
from uythac.outputs import Topics, messages
from uythac.processor import Outcome, Processor
from uythac.producer import idempotent_producer
from uythac.scorecard import Scorecard
from uythac.store import Store, UnitOfWork
from uythac.validation import Event, Rejection, parse

log = logging.getLogger(__name__)
Ref = tuple[int, int]  # (partition, offset)
ANALYZE_EVERY_S = 600.0  # refresh the store's planner statistics this often


@dataclass(frozen=True)
class WorkerConfig:
    bootstrap: str
    topic: str = "uythac.events"
    partitions: int = 12
    batch_size: int = 5000
    group_id: str = "uythac-rules"
    session_timeout_ms: int = 10000
    outputs: Topics = field(default_factory=Topics)
    poll_ms: int = 200
    idle_exit_s: float | None = None  # stop after this long with nothing to read (tests, benchmarks)
    reports_months: int = 24  # month-end reports the store keeps

    @property
    def dlq_topic(self) -> str:
        return f"{self.topic}.dlq"

    @property
    def topics(self) -> dict[str, int]:
        """Every topic the worker reads or writes, with the partition count it creates it with."""
        return {
            self.topic: self.partitions,
            self.dlq_topic: 3,
            self.outputs.flags: self.partitions,
            self.outputs.scores: self.partitions,
        }


@dataclass
class _Batch:
    """The records of one poll that still need applying, and where each partition will stand after."""

    events: list[tuple[Ref, Event]] = field(default_factory=list)
    records: dict[Ref, Any] = field(default_factory=dict)
    dead: list[Message] = field(default_factory=list)
    moves: dict[int, tuple[int | None, int]] = field(default_factory=dict)  # partition: (expected, next)


class Worker:
    def __init__(self, config: WorkerConfig, store: Store, card: Scorecard) -> None:
        self.config, self.store, self.card = config, store, card
        self.processor = Processor(store, card, config.reports_months)
        self.positions: dict[int, int] = {}  # partition: next offset to apply, as the store has it
        self.stopping = False
        self._observed = 0.0
        self._analyzed = -ANALYZE_EVERY_S  # at the first observation, then every ANALYZE_EVERY_S
        with store.unit_of_work() as uow:
            self.epoch = uow.get_meta("epoch")
            if self.epoch is None:
                self.epoch = uuid.uuid4().hex[:12]  # output ids stay unique across store rebuilds
                uow.set_meta("epoch", self.epoch)

    # lifecycle ------------------------------------------------------------------------------------
    def stop(self, signum: int = signal.SIGTERM, _frame: FrameType | None = None) -> None:
        log.info("stopping after the current batch", extra={"signal": signum})
        self.stopping = True

    def run(self) -> int:
        """Consume until SIGTERM/SIGINT (or `idle_exit_s` of silence); exit code 0."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        clients = self._connect()
        if clients is None:
            return 0
        consumer, producer = clients
        consumer.subscribe([self.config.topic], listener=_Seek(self, consumer))
        log.info("worker started", extra={"topic": self.config.topic, "group": self.config.group_id})
        try:
            self._loop(consumer, producer)
        finally:
            consumer.close(autocommit=False)
            producer.close(timeout=10)
            log.info("worker stopped")
        return 0

    def _connect(self) -> tuple[KafkaConsumer, KafkaProducer] | None:
        """The consumer and the producer, once the broker answers, the topics are there and the consumer
        knows the events topic; None if stopped first. Each failure is retried with backoff (1 s doubling
        to 30 s): a broker that is down, still starting, or just restarted and fenced ("All brokers are
        currently fenced"), or one that goes away while the worker starts."""
        delay = 1.0
        while not self.stopping:
            consumer: KafkaConsumer | None = None
            producer: KafkaProducer | None = None
            try:
                wait_for_broker(self.config.bootstrap, timeout_s=delay)
                ensure_topics(self.config.bootstrap, self.config.topics)
                consumer, producer = self._consumer(), self._producer()
                # Metadata first: a group leader that does not know the topic yet assigns nothing and rejoins.
                consumer.partitions_for_topic(self.config.topic)
                return consumer, producer
            except Exception as error:  # kafka-python raises several kinds; all mean "not yet"
                if consumer is not None:
                    consumer.close(autocommit=False)
                if producer is not None:
                    producer.close(timeout=0)
                log.warning(
                    "Kafka unreachable, retrying",
                    extra={"bootstrap": self.config.bootstrap, "retry_in_s": delay, "error": str(error)},
                )
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
        return None

    def _consumer(self) -> KafkaConsumer:
        return KafkaConsumer(
            bootstrap_servers=self.config.bootstrap,
            group_id=self.config.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.config.batch_size,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            session_timeout_ms=self.config.session_timeout_ms,
            heartbeat_interval_ms=min(3000, self.config.session_timeout_ms // 3),
            client_id="uythac-worker",
        )

    def _producer(self) -> KafkaProducer:
        return idempotent_producer(self.config.bootstrap, client_id="uythac-relay")

    def _loop(self, consumer: KafkaConsumer, producer: KafkaProducer) -> None:
        idle_since = time.monotonic()
        self._relay(producer)
        while not self.stopping:
            polled = consumer.poll(timeout_ms=self.config.poll_ms, max_records=self.config.batch_size)
            if polled:
                idle_since = time.monotonic()
                if self._handle(consumer, polled):
                    self._relay(producer)
                    consumer.commit_async(
                        {tp: OffsetAndMetadata(self.positions[tp.partition], "", -1) for tp in polled}
                    )
            else:
                self._relay(producer)
            self._observe(consumer)
            if self.config.idle_exit_s is not None and time.monotonic() - idle_since > self.config.idle_exit_s:
                break

    def _relay(self, producer: KafkaProducer) -> None:
        relay(self.store, producer)
        with self.store.reading() as uow:
            metrics.OUTBOX_BACKLOG.set(uow.outbox_backlog())

    # one batch ------------------------------------------------------------------------------------
    def _handle(self, consumer: KafkaConsumer, polled: dict[TopicPartition, list[Any]]) -> bool:
        """Apply one poll's records; False if they must be read again (store down, partitions lost)."""
        batch = self._prepare(polled)
        started = time.perf_counter()
        try:
            outcome = self._apply(batch)
        except OperationalError as error:  # the store is unreachable or locked: read these again later
            metrics.BATCH_RETRIES.labels("store_unavailable").inc()
            log.error("store unavailable; will retry the batch", extra={"error": str(error)})
            self._rewind(consumer)
            time.sleep(1.0)
            return False
        except StoreError as error:  # fenced: another worker owns a partition now
            metrics.BATCH_RETRIES.labels("fenced").inc()
            log.warning("batch not applied", extra={"error": str(error)})
            self._rewind(consumer)
            return False
        except Exception:
            metrics.BATCH_RETRIES.labels("one_by_one").inc()
            log.exception("batch failed; applying its records one by one")
            outcome = self._one_by_one(batch)
        for partition, (_, new) in batch.moves.items():
            self.positions[partition] = new
        self._count(batch, outcome, time.perf_counter() - started, polled)
        return True

    def _prepare(self, polled: dict[TopicPartition, list[Any]]) -> _Batch:
        batch = _Batch()
        for tp, records in polled.items():
            expected = self.positions.get(tp.partition)
            fresh = [r for r in records if expected is None or r.offset >= expected]
            if not fresh:
                continue
            for record in fresh:
                ref = (tp.partition, record.offset)
                parsed = parse(record.value) if record.value is not None else Rejection("message: null value")
                if isinstance(parsed, Rejection):
                    batch.dead.append(self._dead_letter(tp.partition, record, parsed))
                else:
                    batch.events.append((ref, parsed))
                    batch.records[ref] = record
            batch.moves[tp.partition] = (expected, fresh[-1].offset + 1)
        return batch

    def _apply(self, batch: _Batch) -> Outcome:
        return self.processor.process(batch.events, before_commit=lambda uow, out: self._checkpoint(uow, out, batch))

    def _checkpoint(self, uow: UnitOfWork, outcome: Outcome, batch: _Batch) -> None:
        """Step 4's own rows, in the state's transaction: offsets and the outbox."""
        uow.advance_offsets(self.config.topic, batch.moves)
        conflicts = [
            self._dead_letter(ref[0], batch.records[ref], rejection)
            for ref, rejection in outcome.rejected
            if isinstance(ref, tuple)
        ]
        first = int(uow.get_meta("output_seq") or 0)
        numbers = count(first + 1)
        out = messages(outcome, self.card, (f"uythac:{self.epoch}:{n}" for n in numbers), self.config.outputs)
        uow.set_meta("output_seq", str(first + len(out)))
        uow.add_outbox([message.row() for message in out + batch.dead + conflicts])

    def _one_by_one(self, batch: _Batch) -> Outcome:
        """A batch that raised: each event alone; one that still raises goes to the DLQ, the rest apply."""
        total = Outcome()
        for ref, event in batch.events:
            single = _Batch(events=[(ref, event)], records=batch.records)
            try:
                outcome = self._apply(single)
            except Exception as error:
                log.exception("event could not be applied; sent to the DLQ", extra={"event_id": event.event_id})
                reason = Rejection(f"event: internal error ({type(error).__name__})", event.event_id)
                self._apply(_Batch(dead=[self._dead_letter(ref[0], batch.records[ref], reason)]))
                continue
            total.accepted += outcome.accepted
            total.duplicates += outcome.duplicates
            total.rejected += outcome.rejected
            total.transitions += outcome.transitions
            total.decisions += outcome.decisions
            total.today = outcome.today
        self._apply(_Batch(dead=batch.dead, moves=batch.moves))
        return total

    def _dead_letter(self, partition: int, record: Any, rejection: Rejection) -> Message:
        headers = [
            ("uythac.reason", rejection.reason.encode()),
            ("uythac.source.topic", self.config.topic.encode()),
            ("uythac.source.partition", str(partition).encode()),
            ("uythac.source.offset", str(record.offset).encode()),
        ]
        headers += [(name, value or b"") for name, value in (record.headers or []) if not name.startswith("uythac.")]
        return Message(self.config.dlq_topic, record.key, record.value or b"", tuple(headers))

    def _rewind(self, consumer: KafkaConsumer) -> None:
        """Seek every assigned partition back to the store's offset (or its beginning)."""
        with self.store.reading() as uow:
            self.positions = uow.offsets(self.config.topic)
        for tp in consumer.assignment():
            if tp.partition in self.positions:
                consumer.seek(tp, self.positions[tp.partition])
            else:
                consumer.seek_to_beginning(tp)

    # metrics --------------------------------------------------------------------------------------
    def _count(self, batch: _Batch, outcome: Outcome, seconds: float, polled: dict[TopicPartition, list[Any]]) -> None:
        metrics.BATCH_SECONDS.observe(seconds)
        for event_type, n in Counter(event.type for event in outcome.accepted).items():
            metrics.EVENTS.labels(event_type, "accepted").inc(n)
        if outcome.duplicates:
            metrics.EVENTS.labels("any", "duplicate").inc(outcome.duplicates)
        reasons = Counter(dict(message.headers)["uythac.reason"].decode().split(":", 1)[0] for message in batch.dead)
        reasons["event_id"] += len(outcome.rejected)  # conflicts: an event_id accepted before with other content
        for reason, n in reasons.items():
            if n:
                metrics.EVENTS.labels("any", "rejected").inc(n)
                metrics.REJECTS.labels(reason).inc(n)
        for kind, n in Counter(decision.kind for decision in outcome.decisions).items():
            metrics.RULE_DECISIONS.labels(kind).inc(n)
        for kind, n in Counter(t.kind for t in outcome.transitions).items():
            metrics.TRANSITIONS.labels(kind).inc(n)
        now = time.time()
        for records in polled.values():
            for record in records:
                if record.timestamp and record.timestamp > 0:
                    metrics.EVENT_SECONDS.observe(max(now - record.timestamp / 1000, 0))
        if outcome.accepted:
            metrics.LAST_EVENT.set(now)
        log.info(
            "batch applied",
            extra={
                "accepted": len(outcome.accepted),
                "duplicates": outcome.duplicates,
                "rejected": sum(reasons.values()),
                "clock": outcome.today.isoformat() if outcome.today else None,
                "seconds": round(seconds, 4),
            },
        )

    def _observe(self, consumer: KafkaConsumer) -> None:
        """Gauges read at most once a second: lag per partition, open obligations, clock behind wall time."""
        if time.monotonic() - self._observed < 1.0:
            return
        self._observed = time.monotonic()
        lag = 0
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            if end is not None:
                behind = max(end - self.positions.get(tp.partition, 0), 0)
                metrics.CONSUMER_LAG.labels(str(tp.partition)).set(behind)
                lag += behind
        if time.monotonic() - self._analyzed > ANALYZE_EVERY_S:  # the API's query plans follow the data
            self.store.analyze()
            self._analyzed = time.monotonic()
        with self.store.unit_of_work() as uow:  # for the API's /readyz: is a worker alive, how far behind
            uow.set_meta("worker_heartbeat", f"{time.time():.3f}")
            uow.set_meta("worker_lag", str(lag))
            metrics.OPEN_OBLIGATIONS.set(uow.open_obligations())
        if self.processor.today is not None:
            wall = datetime.now(VIETNAM).date()
            metrics.CLOCK_LAG.set((wall - self.processor.today).total_seconds())


class _Seek(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, seek to the offsets in the store. Runs on kafka-python's network thread."""

    def __init__(self, worker: Worker, consumer: KafkaConsumer) -> None:
        self.worker, self.consumer = worker, consumer

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Nothing to flush: every batch commits its state and offsets before the next poll. The lag
        gauges of partitions no longer ours go, so that they cannot raise a lag alert."""
        for tp in revoked:
            with suppress(KeyError):  # never measured
                metrics.CONSUMER_LAG.remove(str(tp.partition))

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        with self.worker.store.reading() as uow:
            stored = uow.offsets(self.worker.config.topic)
        for tp in assigned:
            if tp.partition in stored:
                self.consumer.seek(tp, stored[tp.partition])
                self.worker.positions[tp.partition] = stored[tp.partition]
            else:  # the store has applied nothing from it: all of it, whatever Kafka's committed offset
                self.consumer.seek_to_beginning(tp)
                self.worker.positions.pop(tp.partition, None)
        log.info("partitions assigned", extra={"partitions": sorted(tp.partition for tp in assigned)})
