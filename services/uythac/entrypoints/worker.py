"""`uythac worker`: the rules engine on Kafka, with exactly-once effects on the store.

Two processes on two cores: the intake (`adapters.kafka.intake`, the consumer-group member) polls and checks
records; this process applies them and owns the store. For each poll it hands over, this process drops the
records below the store's offsets (applied already, read again after a rewind), turns invalid records into
dead letters, decodes the valid ones on a thread of its own while the store claims their event ids, and
commits the batch through the checkpoint (`service.checkpoint`: the commit order, steps 1-7). A batch that
cannot be applied as read (store unavailable, partitions moved) is read again: the intake seeks back to the
store's offsets and the batches it read before are dropped. One store, one worker at a time for SQLite.
"""

from __future__ import annotations

import logging
import signal
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from types import FrameType

import orjson

from uythac import bootstrap, metrics
from uythac.adapters.kafka.admin import ensure_topics, wait_for_broker, with_backoff
from uythac.adapters.kafka.intake import POLL_MS, Intake, IntakeConfig
from uythac.adapters.kafka.protocol import Assigned, Batch, Ends, Polled, Relayed, Restarted, Revoked
from uythac.core.dates import VIETNAM, day_of
from uythac.core.events import Event, Rejection
from uythac.core.outcome import Outcome, Ref
from uythac.core.outputs import Message, Topics
from uythac.cycles import Collections
from uythac.errors import StoreError, StoreUnavailable
from uythac.service.checkpoint import Checkpoint
from uythac.service.ports import OffsetMoves, Store
from uythac.service.processor import Processor
from uythac.settings import Settings

log = logging.getLogger(__name__)
_EVENT = tuple.__new__  # an Event from its fields, past the named tuple's Python __new__ (as `core.events` does)
Events = list[tuple[Ref, Event]]
ANALYZE_EVERY_S = 600.0  # refresh the store's planner statistics this often


@dataclass(frozen=True)
class WorkerConfig:
    topic: str
    partitions: int  # of the topics the worker creates
    outputs: Topics
    idle_exit_s: float | None  # stop after this long with nothing to read (tests, benchmarks)
    stall_s: float  # an intake that makes no progress this long is replaced (`_watch`); 0: never
    name: str  # the worker's name in its metrics and heartbeat (`bootstrap.worker_name`)

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


@dataclass(frozen=True)
class _Record:
    """What a dead letter keeps of the record it stands for."""

    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


@dataclass
class _Batch:
    """The records of one batch that still need applying, and where each partition will stand after
    (`service.checkpoint.Staged`)."""

    make_dead_letter: Callable[[int, _Record, Rejection], Message]
    polled: Polled | None = None
    decoding: Events | Future[Events] = field(default_factory=list)  # the valid ones (maybe still decoding)
    first_digests: dict[str, bytes] | None = None  # each event id with its first event's digest, if known before
    dead: list[Message] = field(default_factory=list)
    offset_moves: OffsetMoves = field(default_factory=dict)  # partition: (offset expected now, next offset)

    def events(self) -> Events | Callable[[], Events]:
        """The events, or what waits for them while they are decoded."""
        return self.decoding.result if isinstance(self.decoding, Future) else self.decoding

    def decoded(self) -> Events:
        return self.decoding.result() if isinstance(self.decoding, Future) else self.decoding

    def dead_letter(self, ref: Ref, rejection: Rejection) -> Message:
        assert self.polled is not None and isinstance(ref, tuple)
        partition, offset = ref
        return self.make_dead_letter(partition, _record(self.polled, self.polled.index(partition, offset)), rejection)


def _record(polled: Polled, i: int) -> _Record:
    return _Record(polled.offsets[i], polled.keys[i], polled.values[i], polled.headers[i])


def _decode(polled: Polled, picked: list[tuple[int, int]]) -> Events:
    """These records (partition, position) as events: the JSON the intake checked, decoded again."""
    offsets, values, ids, digests, days = polled.offsets, polled.values, polled.ids, polled.digests, polled.days
    events: Events = []
    for partition, i in picked:
        data = orjson.loads(values[i])  # type: ignore[arg-type]
        event = _EVENT(Event, (ids[i], data["type"], day_of(days[i]), data, digests[i]))  # the id claimed
        events.append(((partition, offsets[i]), event))
    return events


def build(settings: Settings, idle_exit_s: float | None = None) -> Worker:
    """The worker of the settings: the store's processor, fed from Kafka by an intake process of its own."""
    card = bootstrap.load_scorecard(settings)
    store = bootstrap.open_store(settings.db, settings)
    config = WorkerConfig(
        topic=settings.kafka_topic,
        partitions=settings.kafka_partitions,
        outputs=bootstrap.topics(settings),
        idle_exit_s=idle_exit_s,
        stall_s=settings.worker_stall_s,
        name=bootstrap.worker_name(settings),
    )
    return Worker(config, bootstrap.processor(settings, store, card), bootstrap.intake(settings, store))


def _free_here(*_: object) -> None:
    """Nothing: the arguments are freed when the task ends, on the thread that ran it."""


class Worker:
    def __init__(self, config: WorkerConfig, processor: Processor, intake_config: IntakeConfig) -> None:
        self.config, self.processor, self.intake_config = config, processor, intake_config
        metrics.worker()  # its series exist from the start (at 0), not from the first batch
        self.store: Store = processor.store
        self.checkpoint = Checkpoint(processor, config.topic, config.outputs)
        self.decoder = ThreadPoolExecutor(1, thread_name_prefix="uythac-decode")  # see `_prepare`
        self.positions: dict[int, int] = {}  # partition: next offset to apply, as the store has it
        self.assigned: set[int] = set()  # partitions the intake holds
        self.ends: dict[int, int] = {}  # partition: its end, as the intake last heard from the broker
        self._progress = time.monotonic()  # when the intake last handed over a batch or was seen caught up
        self.stopping = False
        self._observed = 0.0
        self._analyzed = -ANALYZE_EVERY_S  # at the first observation, then every ANALYZE_EVERY_S

    # lifecycle ------------------------------------------------------------------------------------
    def stop(self, signum: int = signal.SIGTERM, _frame: FrameType | None = None) -> None:
        log.info("stopping after the current batch", extra={"signal": signum})
        self.stopping = True

    def run(self) -> int:
        """Consume until SIGTERM/SIGINT (or `idle_exit_s` of silence); exit code 0."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        if not self._connect():
            return 0
        with self.store.reading() as uow:
            self.positions = uow.offsets(self.config.topic)
        intake = Intake(self.intake_config)
        log.info("worker started", extra={"topic": self.config.topic, "group": self.intake_config.group_id})
        try:
            with Collections("worker") as collections:
                self._loop(intake, collections)
        finally:
            for message in intake.stop():
                if isinstance(message, Relayed):
                    self.checkpoint.relayed(message.acknowledged, message.failed, message.error, message.elsewhere)
            self.decoder.shutdown()
            log.info("worker stopped")
        return 0

    def _connect(self) -> bool:
        """Wait until the broker answers and the topics are there (`with_backoff`); False if stopped first."""
        bootstrap = self.intake_config.bootstrap

        def attempt(timeout_s: float) -> bool:
            wait_for_broker(bootstrap, timeout_s=timeout_s)
            ensure_topics(bootstrap, self.config.topics)
            return True

        return with_backoff(bootstrap, attempt, lambda: self.stopping) is not None

    def _loop(self, intake: Intake, collections: Collections) -> None:
        """Take the intake's messages until stopped; a store that went away is waited for (`_step`)."""
        idle_since = time.monotonic()
        lost_store = False  # the store went away outside a batch: read the offsets again once it is back
        while not self.stopping:
            try:
                if lost_store:
                    self._rewind(intake)
                    lost_store = False
                    log.info("the store answers again")
                idle_since = self._step(intake, collections, idle_since)
            except StoreUnavailable as error:
                metrics.worker().batch_retries.labels("store_unavailable").inc()
                log.error("store unavailable; will retry", extra={"error": str(error)})
                lost_store = True
                time.sleep(1.0)
            if self.config.idle_exit_s is not None and time.monotonic() - idle_since > self.config.idle_exit_s:
                break

    def _step(self, intake: Intake, collections: Collections, idle_since: float) -> float:
        """One message of the intake and what follows it; when the last batch came (for `idle_exit_s`)."""
        match intake.receive(POLL_MS / 1000):
            case Batch(polled) if polled.generation == intake.generation:  # else read before a rewind
                idle_since = time.monotonic()
                if self._handle(intake, polled):
                    self.checkpoint.advise(
                        intake, {p: self.positions[p] for p in polled.partitions() if p in self.positions}
                    )
                self._progress = time.monotonic()
                collections.done(len(polled.offsets))
            case Assigned(partitions):
                self._assigned(partitions)
            case Revoked(partitions):
                self._revoked(partitions)
            case Ends(ends):
                self.ends = ends
                if self._caught_up():
                    self._progress = time.monotonic()
            case Relayed(acknowledged, failed, error, elsewhere):
                self.checkpoint.relayed(acknowledged, failed, error, elsewhere)
            case Restarted():
                self._restarted()
        self._watch(intake)
        self.checkpoint.relay(intake)
        self._observe()
        collections.done(0)  # a quiet worker collects by time
        return idle_since

    def _assigned(self, partitions: list[int]) -> None:
        """The intake has sought these partitions to the store's offsets: read them as the store has them.

        Read here again, not taken from the intake: the intake read them on its own thread, maybe before this
        process committed the batches that came ahead of this message, so its figures can be behind."""
        self.assigned.update(partitions)
        self._progress = time.monotonic()
        with self.store.reading() as uow:
            stored = uow.offsets(self.config.topic)
        for partition in partitions:
            if partition in stored:
                self.positions[partition] = stored[partition]
            else:
                self.positions.pop(partition, None)

    def _revoked(self, partitions: list[int]) -> None:
        for partition in partitions:
            self.assigned.discard(partition)
            with suppress(KeyError):  # never measured
                metrics.worker().consumer_lag.remove(self.config.name, str(partition))

    def _restarted(self) -> None:
        """A new intake: the old one's partitions and relay round, if any, went with it."""
        self._revoked(sorted(self.assigned))
        self.ends = {}
        self.checkpoint.lost_intake()
        self._progress = time.monotonic()

    def _behind(self) -> dict[int, int]:
        """Messages not yet applied, per assigned partition whose end the intake last sent."""
        return {p: max(self.ends[p] - self.positions.get(p, 0), 0) for p in self.assigned if p in self.ends}

    def _caught_up(self) -> bool:
        """Has the store applied every message of the assigned partitions, by the ends the intake last sent?"""
        behind = self._behind()
        return len(behind) == len(self.assigned) and not any(behind.values())

    def _watch(self, intake: Intake) -> None:
        """Replace an intake that holds partitions and for `stall_s` has neither handed over a batch nor sent
        ends showing it caught up (it sends them every second): its Kafka client has stopped fetching (seen
        with kafka-python 3.0.12 on a topic made a moment before: the consumer lost its group coordinator and
        spun on finding it again, without a log line, while the lag went unmeasured)."""
        if self.assigned and self.config.stall_s and time.monotonic() - self._progress > self.config.stall_s:
            metrics.worker().intake_restarts.labels("stalled").inc()
            log.error(
                "the intake has neither handed over a batch nor shown its partitions read to their end; "
                "starting it again",
                extra={"seconds": round(time.monotonic() - self._progress, 1), "partitions": sorted(self.assigned)},
            )
            intake.restart()
            self._restarted()

    # one batch ------------------------------------------------------------------------------------
    def _handle(self, intake: Intake, polled: Polled) -> bool:
        """Apply one batch's records; False if they must be read again (store down, partitions lost)."""
        batch = self._prepare(polled)
        started = time.perf_counter()
        try:
            outcome = self._commit(batch)
        except StoreUnavailable as error:  # the store is unreachable or locked: read these again later
            metrics.worker().batch_retries.labels("store_unavailable").inc()
            log.error("store unavailable; will retry the batch", extra={"error": str(error)})
            self._rewind(intake)
            time.sleep(1.0)
            return False
        except StoreError as error:  # fenced: another worker owns a partition now
            metrics.worker().batch_retries.labels("fenced").inc()
            log.warning("batch not applied", extra={"error": str(error)})
            self._rewind(intake)
            return False
        for partition, (_, new) in batch.offset_moves.items():
            self.positions[partition] = new
        count(batch.dead, outcome, time.perf_counter() - started, polled.timestamps)
        # Freeing a batch's ~500 000 objects takes ~50 ms of Python: on the decoding thread, ahead of the next
        # batch's decoding, it mostly runs while SQLite claims that batch's ids (see `_prepare`).
        self.decoder.submit(_free_here, batch, outcome)
        return True

    def _commit(self, batch: _Batch) -> Outcome:
        """The batch committed whole, or else record by record (`_one_by_one`); the store's errors (unreachable,
        fenced) raised either way."""
        try:
            return self.checkpoint.commit(batch)
        except StoreError:
            raise
        except Exception:
            metrics.worker().batch_retries.labels("one_by_one").inc()
            log.exception("batch failed; applying its records one by one")
            return self._one_by_one(batch)

    def _prepare(self, polled: Polled) -> _Batch:
        """The records not yet applied: the valid ones as events (the intake's verdict: decoded again, on the
        decoding thread while the store claims their ids, not checked again), the others as dead letters; and
        where each partition will stand."""
        first_digests: dict[str, bytes] = {}
        batch = _Batch(self._dead_letter, polled, first_digests=first_digests)
        picked, offsets, ids, digests = [], polled.offsets, polled.ids, polled.digests
        rejections = polled.rejections
        for partition, start, stop in polled.runs:
            expected = self.positions.get(partition)
            if expected is not None and offsets[start] < expected:  # read before a rewind: applied already
                start = bisect_left(offsets, expected, start, stop)
            for i in range(start, stop):
                if rejections and i in rejections:
                    batch.dead.append(self._dead_letter(partition, _record(polled, i), rejections[i]))
                    continue
                picked.append((partition, i))
                first_digests.setdefault(ids[i], digests[i])
            if start < stop:
                batch.offset_moves[partition] = (expected, offsets[stop - 1] + 1)
        days = polled.days  # in business-date order: the partitions have none between them (`alignment`)
        picked.sort(key=lambda at: days[at[1]])
        batch.decoding = self.decoder.submit(_decode, polled, picked)
        return batch

    def _one_by_one(self, batch: _Batch) -> Outcome:
        """A batch that raised: each event alone; one that still raises goes to the DLQ, the rest apply."""
        total = Outcome()
        for ref, event in batch.decoded():
            single = _Batch(self._dead_letter, batch.polled, decoding=[(ref, event)])
            try:
                total.absorb(self.checkpoint.commit(single))
            except Exception as error:
                log.exception("event could not be applied; sent to the DLQ", extra={"event_id": event.event_id})
                reason = Rejection(f"event: internal error ({type(error).__name__})", event.event_id)
                self.checkpoint.commit(_Batch(self._dead_letter, dead=[single.dead_letter(ref, reason)]))
        self.checkpoint.commit(_Batch(self._dead_letter, dead=batch.dead, offset_moves=batch.offset_moves))
        return total

    def _dead_letter(self, partition: int, record: _Record, rejection: Rejection) -> Message:
        headers = [
            ("uythac.reason", rejection.reason.encode()),
            ("uythac.source.topic", self.config.topic.encode()),
            ("uythac.source.partition", str(partition).encode()),
            ("uythac.source.offset", str(record.offset).encode()),
        ]
        headers += [(name, value or b"") for name, value in record.headers if not name.startswith("uythac.")]
        return Message(self.config.dlq_topic, record.key, record.value or b"", tuple(headers))

    def _rewind(self, intake: Intake) -> None:
        """Read every assigned partition again from the store's offsets (batches read before are dropped)."""
        with self.store.reading() as uow:
            self.positions = uow.offsets(self.config.topic)
        intake.rewind()

    # metrics --------------------------------------------------------------------------------------
    def _observe(self) -> None:
        """Gauges read at most once a second: lag per partition, open obligations, clock behind wall time."""
        if time.monotonic() - self._observed < 1.0:
            return
        self._observed = time.monotonic()
        behind = self._behind()
        for partition, waiting in behind.items():
            metrics.worker().consumer_lag.labels(self.config.name, str(partition)).set(waiting)
        metrics.worker().worker_partitions.labels(self.config.name).set(len(self.assigned))
        lag = sum(behind.values())
        if time.monotonic() - self._analyzed > ANALYZE_EVERY_S:  # the API's query plans follow the data
            self.store.analyze()
            self._analyzed = time.monotonic()
        with self.store.unit_of_work() as uow:  # for the API's /readyz: are the workers alive, how far behind
            uow.beat(self.config.name, lag, time.time())
            metrics.worker().open_obligations.set(uow.open_obligations())
            metrics.worker().outbox_backlog.set(uow.outbox_backlog())
        if self.processor.today is not None:
            wall = datetime.now(VIETNAM).date()
            metrics.worker().clock_lag.set((wall - self.processor.today).total_seconds())


def count(
    dead: Sequence[Message],
    outcome: Outcome,
    seconds: float,
    timestamps: Sequence[int],
    counted: metrics.WorkerMetrics | None = None,
) -> None:
    """Count a committed batch in the worker's metrics (`counted`, the process's by default) and log it: its
    dead letters `dead`, what it did (`outcome`), how long it took, the Kafka timestamps of its records."""
    counted = counted or metrics.worker()
    counted.batch_seconds.observe(seconds)
    for event_type, n in Counter(map(attrgetter("type"), outcome.accepted)).items():
        counted.events.labels(event_type, "accepted").inc(n)
    if outcome.duplicates:
        counted.events.labels("any", "duplicate").inc(outcome.duplicates)
    # invalid records by the field their reason names (their type cannot be trusted: it may be the fault);
    # conflicts (an event_id accepted before with other content) by the valid event's type
    reasons = Counter(dict(message.headers)["uythac.reason"].decode().split(":", 1)[0] for message in dead)
    for reason, n in reasons.items():
        counted.events.labels("invalid", "rejected").inc(n)
        counted.rejects.labels(reason).inc(n)
    conflicts = Counter(rejection.event_type or "invalid" for _, rejection in outcome.rejected)
    for event_type, n in conflicts.items():
        counted.events.labels(event_type, "rejected").inc(n)
        counted.rejects.labels("event_id").inc(n)
    if outcome.other_unit:
        counted.other_unit.inc(len(outcome.other_unit))
    for verdict, n in Counter(map(attrgetter("verdict"), outcome.decisions)).items():
        counted.rule_decisions.labels(verdict).inc(n)
    for change, n in Counter(map(attrgetter("change"), outcome.transitions)).items():
        counted.transitions.labels(change).inc(n)
    now = time.time()
    counted.event_seconds.observe_ages(timestamps, now)
    if outcome.accepted:
        counted.last_event.set(now)
    log.info(
        "batch applied",
        extra={
            "accepted": len(outcome.accepted),
            "duplicates": outcome.duplicates,
            "rejected": sum(reasons.values()) + len(outcome.rejected),
            "clock": outcome.today.isoformat() if outcome.today else None,
            "seconds": round(seconds, 4),
        },
    )
