"""`uythac worker`: the rules engine on Kafka, with exactly-once effects on the store.

Two processes on two cores: the intake (`intake`, the consumer-group member) polls and checks records; this
process applies them and owns the store. Checkpoint order, for every batch (the one place it is written):
  1. the intake polls up to `batch_size` records from the assigned partitions of `uythac.events` and
     validates each (it seeks each partition to the store's offset when it is assigned);
  2. skip records below the offsets stored for their partition (already applied);
  3. an invalid record becomes a DLQ message (original key, value and headers, the reason, source
     partition and offset in `uythac.*` headers);
  4. ONE store transaction: the state the valid events produce, the event ids accepted, the new
     partition offsets (a conditional update that fences a worker that lost its partitions), and the
     outbox rows: flags, score changes, DLQ messages, each with its event_id from the store's sequence;
  5. relay the outbox: the intake reads the committed rows from the store, sends them on its idempotent
     producer (acks=all) and tells which the broker acknowledged; this process deletes those rows;
  6. commit the consumer offsets to Kafka (advisory, for lag tools: on every assignment the intake
     seeks to the offsets in the store, which are the truth; a partition the store has never seen is
     read from its beginning).
A crash anywhere before 4 commits leaves nothing behind; after it, the outbox still holds what 5 did not
finish and is sent again with the same event ids. Producer retries upstream are absorbed by event_id
dedupe. A batch that cannot be applied as read (store unavailable, partitions moved) is read again: the
intake seeks back to the store's offsets and the batches it read before are dropped. One store, one worker
at a time for SQLite; a consumer group of workers needs PostgreSQL.
"""

from __future__ import annotations

import logging
import signal
import time
import uuid
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count
from operator import attrgetter
from types import FrameType

import orjson
from sqlalchemy.exc import OperationalError

from uythac import metrics, outbox
from uythac.collector import Collections
from uythac.dates import VIETNAM
from uythac.errors import StoreError
from uythac.intake import Intake, IntakeConfig, Polled
from uythac.kafka_admin import ensure_topics, wait_for_broker, with_backoff
from uythac.outbox import Message
from uythac.outputs import Topics, messages
from uythac.processor import Outcome, Processor
from uythac.scorecard import Scorecard
from uythac.settings import BATCH_SIZE
from uythac.store import Store, UnitOfWork, day_of
from uythac.validation import Event, Rejection

log = logging.getLogger(__name__)
_EVENT = tuple.__new__  # an Event from its fields, past the named tuple's Python __new__ (as `validation` does)
Ref = tuple[int, int]  # (partition, offset)
Events = list[tuple[Ref, Event]]
ANALYZE_EVERY_S = 600.0  # refresh the store's planner statistics this often
RELAY_ROUND = 10_000  # outbox rows the intake relays at a time


@dataclass(frozen=True)
class WorkerConfig:
    bootstrap: str
    topic: str = "uythac.events"
    partitions: int = 12
    batch_size: int = BATCH_SIZE
    group_id: str = "uythac-rules"
    session_timeout_ms: int = 10000
    outputs: Topics = field(default_factory=Topics)
    poll_ms: int = 200
    idle_exit_s: float | None = None  # stop after this long with nothing to read (tests, benchmarks)
    reports_months: int = 24  # month-end reports the store keeps
    cache_entities: int = 250_000  # loans (and groups) the processor keeps between batches
    log_level: str = "info"  # the intake process's
    stall_s: float = 60.0  # an intake that makes no progress this long is replaced (`_watch`); 0: never

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
    """The records of one poll that still need applying, and where each partition will stand after."""

    polled: Polled | None = None
    events: Events | Future[Events] = field(default_factory=list)  # the valid ones (maybe still decoding)
    firsts: dict[str, bytes] | None = None  # each event id with its first event's digest, if known before them
    dead: list[Message] = field(default_factory=list)
    moves: dict[int, tuple[int | None, int]] = field(default_factory=dict)  # partition: (expected, next)

    def record(self, ref: Ref) -> _Record:
        assert self.polled is not None
        return _record(self.polled, self.polled.index(*ref))

    def decoded(self) -> Events:
        return self.events.result() if isinstance(self.events, Future) else self.events

    def later(self) -> Events | Callable[[], Events]:
        """The events, or what waits for them while they are decoded."""
        return self.events.result if isinstance(self.events, Future) else self.events


def _record(polled: Polled, i: int) -> _Record:
    return _Record(polled.offsets[i], polled.keys[i], polled.values[i], polled.headers[i])


def _decode(polled: Polled, picked: list[tuple[int, int]]) -> Events:
    """These records (partition, position) as events: the JSON the intake checked, decoded again."""
    offsets, values, ids, digests, days = polled.offsets, polled.values, polled.ids, polled.digests, polled.days
    events = []
    for partition, i in picked:
        data = orjson.loads(values[i])  # type: ignore[arg-type]
        event = _EVENT(Event, (ids[i], data["type"], day_of(days[i]), data, digests[i]))  # the id claimed
        events.append(((partition, offsets[i]), event))
    return events


def _let_go(*_: object) -> None:
    """Nothing: the arguments are freed when the task ends, on the thread that ran it."""


class Worker:
    def __init__(self, config: WorkerConfig, store: Store, card: Scorecard) -> None:
        self.config, self.store, self.card = config, store, card
        self.processor = Processor(store, card, config.reports_months, config.cache_entities)
        self.decoder = ThreadPoolExecutor(1, thread_name_prefix="uythac-decode")  # see `_prepare`
        self.positions: dict[int, int] = {}  # partition: next offset to apply, as the store has it
        self.assigned: set[int] = set()  # partitions the intake holds
        self.relaying = False  # a round of outbox rows is with the intake
        self.unrelayed = True  # outbox rows may be waiting (at start: maybe from before a crash)
        self._relay_after = 0.0  # after a failed round: not before this (monotonic)
        self.ends: dict[int, int] = {}  # partition: its end, as the intake last heard from the broker
        self._progress = time.monotonic()  # when the intake last handed over a batch or was seen caught up
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
        if not self._connect():
            return 0
        with self.store.reading() as uow:
            self.positions = uow.offsets(self.config.topic)
        intake = Intake(
            IntakeConfig(
                bootstrap=self.config.bootstrap,
                topic=self.config.topic,
                group_id=self.config.group_id,
                session_timeout_ms=self.config.session_timeout_ms,
                batch_size=self.config.batch_size,
                poll_ms=self.config.poll_ms,
                db_url=self.store.url,
                log_level=self.config.log_level,
            )
        )
        log.info("worker started", extra={"topic": self.config.topic, "group": self.config.group_id})
        try:
            with Collections("worker") as collections:
                self._loop(intake, collections)
        finally:
            for message in intake.stop():
                if message[0] == "relayed":
                    self._relayed(*message[1:])
            self.decoder.shutdown()
            log.info("worker stopped")
        return 0

    def _connect(self) -> bool:
        """Wait until the broker answers and the topics are there (`with_backoff`); False if stopped first."""

        def attempt(timeout_s: float) -> bool:
            wait_for_broker(self.config.bootstrap, timeout_s=timeout_s)
            ensure_topics(self.config.bootstrap, self.config.topics)
            return True

        return with_backoff(self.config.bootstrap, attempt, lambda: self.stopping) is not None

    def _loop(self, intake: Intake, collections: Collections) -> None:
        idle_since = time.monotonic()
        while not self.stopping:
            message = intake.receive(self.config.poll_ms / 1000)
            kind = None if message is None else message[0]
            if kind == "batch":
                polled: Polled = message[1]  # type: ignore[index]
                if polled.generation != intake.generation:
                    continue  # read before a rewind: read again since
                idle_since = time.monotonic()
                if self._handle(intake, polled):
                    intake.commit({p: self.positions[p] for p in polled.partitions() if p in self.positions})
                self._progress = time.monotonic()
                collections.done(len(polled.offsets))
            elif kind == "assigned":
                self._assigned(message[1])  # type: ignore[index]
            elif kind == "revoked":
                self._revoked(message[1])  # type: ignore[index]
            elif kind == "ends":
                self.ends = message[1]  # type: ignore[index]
                if self._caught_up():
                    self._progress = time.monotonic()
            elif kind == "relayed":
                self._relayed(*message[1:])  # type: ignore[index]
            elif kind == "restarted":
                self._restarted()
            self._watch(intake)
            self._relay(intake)
            self._observe()
            collections.done(0)  # a quiet worker collects by time
            if self.config.idle_exit_s is not None and time.monotonic() - idle_since > self.config.idle_exit_s:
                break

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
                metrics.CONSUMER_LAG.remove(str(partition))

    def _restarted(self) -> None:
        """A new intake: the old one's partitions and relay round, if any, went with it."""
        self._revoked(sorted(self.assigned))
        self.ends = {}
        self.relaying, self.unrelayed = False, True
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
        ends showing it caught up (it sends them every second): its Kafka client has stopped fetching. Seen
        once, with kafka-python 3.0.12 on a topic made a moment before: the consumer lost its group
        coordinator and spun on finding it again, without a log line, while the lag went unmeasured."""
        if self.assigned and self.config.stall_s and time.monotonic() - self._progress > self.config.stall_s:
            metrics.INTAKE_RESTARTS.labels("stalled").inc()
            log.error(
                "the intake has neither handed over a batch nor shown its partitions read to their end; "
                "starting it again",
                extra={"seconds": round(time.monotonic() - self._progress, 1), "partitions": sorted(self.assigned)},
            )
            intake.restart()
            self._restarted()

    def _relay(self, intake: Intake) -> None:
        """Have the intake relay the next round of committed outbox rows (it reads them from the store), unless
        one is in flight, none may be waiting, or a failed round is waiting out its second."""
        if self.relaying or not self.unrelayed or time.monotonic() < self._relay_after:
            return
        intake.relay(RELAY_ROUND)
        self.relaying, self.unrelayed = True, False

    def _relayed(self, ids: list[int], failed: int, error: str | None) -> None:
        """A round's answers: the rows the broker acknowledged go; the others are sent again, a second later.
        A full round may have left rows behind: another follows."""
        self.relaying = False
        outbox.acknowledged(self.store, ids)
        metrics.OUTBOX_SENT.inc(len(ids))
        failure = bool(failed) or error is not None
        if failure:
            metrics.OUTBOX_FAILURES.inc()
            log.warning("outbox relay failed; will retry", extra={"rows": failed, "error": error})
            self._relay_after = time.monotonic() + 1.0
        self.unrelayed = self.unrelayed or failure or len(ids) >= RELAY_ROUND

    # one batch ------------------------------------------------------------------------------------
    def _handle(self, intake: Intake, polled: Polled) -> bool:
        """Apply one poll's records; False if they must be read again (store down, partitions lost)."""
        batch = self._prepare(polled)
        started = time.perf_counter()
        try:
            outcome = self._apply(batch)
        except OperationalError as error:  # the store is unreachable or locked: read these again later
            metrics.BATCH_RETRIES.labels("store_unavailable").inc()
            log.error("store unavailable; will retry the batch", extra={"error": str(error)})
            self._rewind(intake)
            time.sleep(1.0)
            return False
        except StoreError as error:  # fenced: another worker owns a partition now
            metrics.BATCH_RETRIES.labels("fenced").inc()
            log.warning("batch not applied", extra={"error": str(error)})
            self._rewind(intake)
            return False
        except Exception:
            metrics.BATCH_RETRIES.labels("one_by_one").inc()
            log.exception("batch failed; applying its records one by one")
            outcome = self._one_by_one(batch)
        for partition, (_, new) in batch.moves.items():
            self.positions[partition] = new
        self._count(batch, outcome, time.perf_counter() - started, polled.timestamps)
        # Freeing a batch's ~500 000 objects takes ~50 ms of Python: on the decoding thread, ahead of the next
        # batch's decoding, it mostly runs while SQLite claims that batch's ids (see `_prepare`).
        self.decoder.submit(_let_go, batch, outcome)
        return True

    def _prepare(self, polled: Polled) -> _Batch:
        """The records not yet applied: the valid ones as events (the intake's verdict: decoded again, on the
        decoding thread while the store claims their ids, not checked again), the others as dead letters; and
        where each partition will stand."""
        firsts: dict[str, bytes] = {}
        batch = _Batch(polled, firsts=firsts)
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
                firsts.setdefault(ids[i], digests[i])
            if start < stop:
                batch.moves[partition] = (expected, offsets[stop - 1] + 1)
        batch.events = self.decoder.submit(_decode, polled, picked)
        return batch

    def _apply(self, batch: _Batch) -> Outcome:
        return self.processor.process(
            batch.later(), before_commit=lambda uow, out: self._checkpoint(uow, out, batch), firsts=batch.firsts
        )

    def _checkpoint(self, uow: UnitOfWork, outcome: Outcome, batch: _Batch) -> None:
        """Step 4's own rows, in the state's transaction: offsets and the outbox."""
        uow.advance_offsets(self.config.topic, batch.moves)
        conflicts = [
            self._dead_letter(ref[0], batch.record(ref), rejection)
            for ref, rejection in outcome.rejected
            if isinstance(ref, tuple)
        ]
        first = int(uow.get_meta("output_seq") or 0)
        numbers = count(first + 1)
        ids = (f"uythac:{self.epoch}:{n}" for n in numbers)
        out = messages(outcome, self.processor.score, ids, self.config.outputs)
        uow.set_meta("output_seq", str(first + len(out)))
        rows = [message.row() for message in out + batch.dead + conflicts]
        uow.add_outbox(rows)
        self.unrelayed = self.unrelayed or bool(rows)

    def _one_by_one(self, batch: _Batch) -> Outcome:
        """A batch that raised: each event alone; one that still raises goes to the DLQ, the rest apply."""
        total = Outcome()
        for ref, event in batch.decoded():
            single = _Batch(batch.polled, events=[(ref, event)])
            try:
                outcome = self._apply(single)
            except Exception as error:
                log.exception("event could not be applied; sent to the DLQ", extra={"event_id": event.event_id})
                reason = Rejection(f"event: internal error ({type(error).__name__})", event.event_id)
                self._apply(_Batch(dead=[self._dead_letter(ref[0], batch.record(ref), reason)]))
                continue
            total.accepted += outcome.accepted
            total.duplicates += outcome.duplicates
            total.rejected += outcome.rejected
            total.transitions += outcome.transitions
            total.decisions += outcome.decisions
            total.today = outcome.today
        self._apply(_Batch(dead=batch.dead, moves=batch.moves))
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
    def _count(self, batch: _Batch, outcome: Outcome, seconds: float, timestamps: Sequence[int]) -> None:
        metrics.BATCH_SECONDS.observe(seconds)
        for event_type, n in Counter(map(attrgetter("type"), outcome.accepted)).items():
            metrics.EVENTS.labels(event_type, "accepted").inc(n)
        if outcome.duplicates:
            metrics.EVENTS.labels("any", "duplicate").inc(outcome.duplicates)
        reasons = Counter(dict(message.headers)["uythac.reason"].decode().split(":", 1)[0] for message in batch.dead)
        reasons["event_id"] += len(outcome.rejected)  # conflicts: an event_id accepted before with other content
        for reason, n in reasons.items():
            if n:
                metrics.EVENTS.labels("any", "rejected").inc(n)
                metrics.REJECTS.labels(reason).inc(n)
        for kind, n in Counter(map(attrgetter("kind"), outcome.decisions)).items():
            metrics.RULE_DECISIONS.labels(kind).inc(n)
        for kind, n in Counter(map(attrgetter("kind"), outcome.transitions)).items():
            metrics.TRANSITIONS.labels(kind).inc(n)
        now = time.time()
        metrics.EVENT_SECONDS.observe_ages(timestamps, now)
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

    def _observe(self) -> None:
        """Gauges read at most once a second: lag per partition, open obligations, clock behind wall time."""
        if time.monotonic() - self._observed < 1.0:
            return
        self._observed = time.monotonic()
        behind = self._behind()
        for partition, waiting in behind.items():
            metrics.CONSUMER_LAG.labels(str(partition)).set(waiting)
        lag = sum(behind.values())
        if time.monotonic() - self._analyzed > ANALYZE_EVERY_S:  # the API's query plans follow the data
            self.store.analyze()
            self._analyzed = time.monotonic()
        with self.store.unit_of_work() as uow:  # for the API's /readyz: is a worker alive, how far behind
            uow.set_meta("worker_heartbeat", f"{time.time():.3f}")
            uow.set_meta("worker_lag", str(lag))
            metrics.OPEN_OBLIGATIONS.set(uow.open_obligations())
            metrics.OUTBOX_BACKLOG.set(uow.outbox_backlog())
        if self.processor.today is not None:
            wall = datetime.now(VIETNAM).date()
            metrics.CLOCK_LAG.set((wall - self.processor.today).total_seconds())
