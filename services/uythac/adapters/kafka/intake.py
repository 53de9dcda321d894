"""The worker's intake: its Kafka clients, in a process of its own.

kafka-python decodes every record in Python (~8 µs a record on these machines) and checking an event costs
a few µs more, while the store takes one writer at a time. So the worker reads Kafka in a second process
and the two run on two cores: the intake is the consumer-group member; it polls, checks each record
(`core.events.parse`: accepted with its business date and digest, or rejected with its reason) and hands
the records to the worker through a pipe, in business-date order across its partitions (`alignment`), while
the worker applies the batch before. It also owns the output
producer: told to relay, it reads the outbox rows the worker committed from the store and sends them; the
worker deletes those the broker acknowledged. The worker owns the store and everything written there:
state, offsets, outbox (`service.checkpoint`); the intake only reads it.

The two talk in typed messages (`protocol`) on two one-way pipes.
The intake leaves with its worker: it stops when told, when the pipe closes, or when the worker dies (even
by kill -9: Linux sends it SIGTERM then).
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from uythac import logs, metrics
from uythac.adapters.kafka.admin import wait_for_broker, with_backoff
from uythac.adapters.kafka.alignment import Alignment, Entry
from uythac.adapters.kafka.producer import idempotent_producer
from uythac.adapters.kafka.protocol import (
    Assigned,
    Batch,
    CommitOffsets,
    Ends,
    FromIntake,
    Polled,
    Relay,
    Relayed,
    Restarted,
    Revoked,
    Rewind,
    Stop,
    ToIntake,
)
from uythac.adapters.kafka.relay import Round, pending_rows
from uythac.core.dates import day_number, latest_accepted
from uythac.core.events import Rejection, parse
from uythac.cycles import Collections
from uythac.service.ports import Store

log = logging.getLogger(__name__)
ENDS_EVERY_S = 1.0
ENDS_TIMEOUT_MS = 500  # for the partitions' end offsets, asked each ENDS_EVERY_S
AHEAD = 2  # messages (batches, mostly) queued for the worker while it applies the batch before
FIRST_POLL = 1 / 16  # of the batch size: the first poll after a start or a rewind, doubled each poll after
POLL_MS = 200  # how long one poll waits for records (and the worker for the intake)
ALIGN_PATIENCE_S = 5.0  # seconds of polls that bring nothing before a partition behind stops holding others back
ALIGN_HOLD = 240_000  # records held for date order (~0.1 GB): beyond, only the partitions fetched count
ALIGN_PAUSE_AT = 10_000  # records held by one partition: its fetches wait (each brings up to FETCH_BYTES)
FETCH_BYTES = 1024 * 1024  # a partition's share of a fetch
# records a poll may bring, at least: kafka-python hands a partition's fetch over before the next one's, and
# nothing goes until every partition behind has brought something (the batch's size is `release`'s limit)
ALIGN_POLL = 10_000


@dataclass(frozen=True)
class IntakeConfig:
    bootstrap: str
    topic: str
    group_id: str
    session_timeout_ms: int
    instance_id: str | None  # static membership (`UYTHAC_KAFKA_INSTANCE_ID`); None: a new member each start
    batch_size: int
    max_future_days: int  # events dated later than this after today in Vietnam are rejected
    open_store: Callable[[], Store]  # the store whose offsets an assignment seeks to (picklable: a spawned process)
    log_level: str


class Intake:
    """The worker's handle on its intake process."""

    def __init__(self, config: IntakeConfig) -> None:
        self.config = config
        self.generation = 0
        self._start()

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")  # the worker has threads (metrics, Kafka): no fork
        self._records, records_end = context.Pipe(duplex=False)
        commands_end, self._commands = context.Pipe(duplex=False)
        self.process = context.Process(
            target=run, args=(self.config, os.getpid(), records_end, commands_end), name="uythac-intake", daemon=True
        )
        self.process.start()
        records_end.close()
        commands_end.close()

    def receive(self, timeout_s: float) -> FromIntake | None:
        """The intake's next message, or None if there is none within `timeout_s`.

        An intake that died is started again (its consumer rejoins the group), with a log line.
        """
        try:
            if not self._records.poll(timeout_s):
                return None
            message: FromIntake = self._records.recv()
            return message
        except (EOFError, OSError):
            log.error("the intake process ended; starting it again", extra={"exitcode": self.process.exitcode})
            metrics.worker().intake_restarts.labels("died").inc()
            time.sleep(1.0)
            self.restart()
            return Restarted()

    def restart(self) -> None:
        """End this intake (killed: a stalled one may not answer) and start a new one, whose consumer joins the
        group afresh; every partition is read again from the store's offsets, batches read before are dropped."""
        self.process.kill()
        self.process.join(timeout=5)
        self._records.close()
        self._commands.close()
        self._start()
        self.rewind()

    def rewind(self) -> None:
        """Have every partition read again from the store's offsets; batches read before are dropped."""
        self.generation += 1
        self._send(Rewind(self.generation))

    def commit_offsets(self, positions: dict[int, int]) -> None:
        """Commit these consumer offsets to Kafka (advisory, for lag tools)."""
        self._send(CommitOffsets(positions))

    def relay(self, limit: int) -> None:
        """Send up to `limit` committed outbox rows (one round at a time: wait for its `Relayed` before the next)."""
        self._send(Relay(limit))

    def stop(self, timeout_s: float = 30.0) -> list[FromIntake]:
        """Stop the intake (its consumer leaves the group) and wait for it; what it said last (a relay
        round's answers among them)."""
        self._send(Stop())
        last: list[FromIntake] = []
        with suppress(EOFError, OSError):
            while self._records.poll(timeout_s):
                last.append(self._records.recv())
        self.process.join(timeout_s)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
        return last

    def _send(self, command: ToIntake) -> None:
        with suppress(OSError):  # it has ended: `receive` notices and starts it again
            self._commands.send(command)


# the intake process ---------------------------------------------------------------------------------
def run(config: IntakeConfig, parent: int, records: Connection, commands: Connection) -> None:
    """The intake process: connect, subscribe, then poll and hand over until told to stop."""
    logs.configure(config.log_level)
    _leave_with(parent)
    with Collections("intake") as collections:
        _Loop(config, records, commands, collections).run()


class _Loop:
    def __init__(
        self, config: IntakeConfig, records: Connection, commands: Connection, collections: Collections
    ) -> None:
        self.config, self.out, self.collections = config, _Out(records, config.batch_size), collections
        self.commands = _Commands(commands)
        self.store = config.open_store()
        self.consumer: KafkaConsumer | None = None
        self.producer: KafkaProducer | None = None
        self.round: Round | None = None  # the relay round in flight
        self.unsent: int | None = None  # the limit of a round asked for before the producer: sent once connected
        self.generation = 0
        self.limit = self._first_limit()  # records the next poll may bring: doubled after each poll, to the batch size
        self.stopping = False
        self.alignment = Alignment(ALIGN_PATIENCE_S, ALIGN_HOLD)
        self.next_offsets: dict[int, int] = {}  # partition → the offset after the last record polled from it
        # Seconds of polls that brought nothing while records were held: the alignment's patience runs on this
        # clock, so a partition whose records wait in kafka-python behind another's does not run out of it.
        self.starved_s = 0.0

    def _first_limit(self) -> int:
        """After a start or a rewind the worker waits for its first batch, and a full one takes the intake most
        of a second to fetch and check: start at a sixteenth and double: full size from the fifth poll."""
        return max(int(self.config.batch_size * FIRST_POLL), 1)

    def run(self) -> None:
        try:
            self.consumer = self._connect()
            if self.consumer is None:
                return
            if self.unsent is not None:
                self._start_round(self.unsent)
                self.unsent = None
            self.consumer.subscribe(
                [self.config.topic], listener=_Seek(self.consumer, self.store, self.config, self.out)
            )
            reported = 0.0
            released: list[tuple[int, list[Entry]]] = []
            while not self._follow_commands():
                # Held records may go at once: hand them over before polling again (kafka-python 3.0.12's poll
                # with a timeout of 0 can wait for good).
                more = bool(released) and self.alignment.holding() > 0
                polled = {} if more else self._poll()
                notices = self.out.take_notices()
                if notices:  # partitions sought again or taken away: what is held was read before
                    self._forget()
                released = self._align(polled)
                self.out.send(*notices, *([Batch(_polled(released, self.generation))] if released else []))
                if polled:
                    self.limit = min(self.limit * 2, self.config.batch_size)
                self._answer_round()
                self.collections.done(sum(map(len, polled.values())))
                if time.monotonic() - reported >= ENDS_EVERY_S:
                    reported = time.monotonic()
                    self.out.send(Ends(_ends(self.consumer, fetching=bool(polled) or self.alignment.holding() > 0)))
            if self.round is not None and self.producer is not None:  # stopping: the round in flight first
                self.producer.flush(timeout=10)
                self._answer_round()
        except (BrokenPipeError, EOFError, OSError):  # the worker has gone
            pass
        finally:
            self.out.close()
            if self.consumer is not None:
                self.consumer.close(autocommit=False)
            if self.producer is not None:
                self.producer.close(timeout=5)
            self.store.close()

    def _start_round(self, limit: int) -> None:
        """Send the oldest `limit` committed outbox rows, read here (a round pickled through the pipe held the
        worker up to a tenth of a second, while this process's command thread waited its turn to read it);
        with none waiting, answer at once."""
        assert self.producer is not None
        try:
            if not self.store.holds_relay():  # several workers: one relays the outbox
                self.out.send(Relayed([], elsewhere=True))
                return
            rows = pending_rows(self.store, limit)
        except Exception as error:  # the store is unreachable: the worker asks again a second later
            self.out.send(Relayed([], 0, f"outbox not read: {error}"))
            return
        if rows:
            self.round = Round(self.producer, rows)
        else:
            self.out.send(Relayed([]))

    def _answer_round(self) -> None:
        result = None if self.round is None else self.round.result()
        if result is not None:
            self.round = None
            self.out.send(result)

    def _follow_commands(self) -> bool:
        """Carry out the worker's commands waiting in the pipe; True once told to stop."""
        while not self.stopping and (command := self.commands.next()) is not None:
            match command:
                case Stop():
                    self.stopping = True
                case Rewind(generation):
                    self.generation = generation
                    self.limit = self._first_limit()
                    self._forget()
                    if self.consumer is not None:  # before the first assignment there is nothing to rewind
                        _seek_to_store(self.consumer, self.store, self.config.topic, self.consumer.assignment())
                case Relay(limit) if self.producer is None:  # still connecting: sent once connected
                    self.unsent = limit
                case Relay() if self.round is not None:  # the worker asks for one round at a time
                    self.out.send(Relayed([], 0, "a round is in flight"))
                case Relay(limit):
                    self._start_round(limit)
                case CommitOffsets(positions) if self.consumer is not None:
                    owned = {tp.partition for tp in self.consumer.assignment()}
                    offsets = {
                        TopicPartition(self.config.topic, p): OffsetAndMetadata(offset, "", -1)
                        for p, offset in positions.items()
                        if p in owned
                    }
                    if offsets:
                        self.consumer.commit_async(offsets)
        return self.stopping

    def _align(self, polled: dict[TopicPartition, list[Any]]) -> list[tuple[int, list[Entry]]]:
        """This poll's records checked and held; those that can go now (`alignment`)."""
        assert self.consumer is not None
        latest = latest_accepted(datetime.now(UTC), self.config.max_future_days)
        for tp, records in polled.items():  # kept even if a rebalance is under way: its notices drop them
            if records:
                self.alignment.add(tp.partition, _checked(records, latest))
                self.next_offsets[tp.partition] = records[-1].offset + 1
        released = self.alignment.release(self._behind(), self.limit, self.starved_s)
        self._pace()
        return released

    def _poll(self) -> dict[TopicPartition, list[Any]]:
        """One poll; the time it waited for nothing while records were held counts toward `starved_s`."""
        assert self.consumer is not None
        started = time.monotonic()
        wanted = max(self.limit, ALIGN_POLL)
        polled: dict[TopicPartition, list[Any]] = self.consumer.poll(timeout_ms=POLL_MS, max_records=wanted)
        if not polled and self.alignment.holding():
            self.starved_s += time.monotonic() - started
        return polled

    def _pace(self) -> None:
        """Pause the partitions ahead, resume the others: a partition of thin communes would otherwise take
        its share of every fetch while its records wait for the busy ones'."""
        assert self.consumer is not None
        ahead = {TopicPartition(self.config.topic, p) for p in self.alignment.ahead(ALIGN_PAUSE_AT)}
        paused = self.consumer.paused()
        with suppress(KafkaError):  # revoked meanwhile (the listener runs on another thread): its notice follows
            if pause := (ahead - paused) & self.consumer.assignment():
                self.consumer.pause(*pause)
            if paused - ahead:
                self.consumer.resume(*(paused - ahead))
        unpark(self.consumer)

    def _behind(self) -> set[int]:
        """Partitions with records still in Kafka, or not fetched since their assignment (their end unknown)."""
        assert self.consumer is not None
        behind = set()
        for tp in self.consumer.assignment():
            try:
                end = self.consumer.highwater(tp)
                position = self.next_offsets.get(tp.partition)
                if end is not None and position is None:  # nothing polled since the assignment: where it stands
                    position = self.next_offsets[tp.partition] = self.consumer.position(tp, timeout_ms=POLL_MS)
            except KafkaError:  # revoked meanwhile (the listener runs on another thread): its notice follows
                continue
            if end is None or position is None or position < end:
                behind.add(tp.partition)
        return behind

    def _forget(self) -> None:
        """Drop what is held: its partitions are read again from the store's offsets (a rewind, an assignment)."""
        self.alignment.clear()
        self.next_offsets.clear()

    def _connect(self) -> KafkaConsumer | None:
        """The group's consumer (and the relay's producer) once the broker answers and knows the topic,
        retried as the worker does (`with_backoff`); None if told to stop meanwhile."""

        def attempt(timeout_s: float) -> KafkaConsumer:
            wait_for_broker(self.config.bootstrap, timeout_s=timeout_s)
            consumer = _consumer(self.config)
            try:
                # Metadata first: a group leader that does not know the topic yet assigns nothing and rejoins.
                consumer.partitions_for_topic(self.config.topic)
                self.producer = idempotent_producer(self.config.bootstrap, client_id="uythac-relay")
            except Exception:
                consumer.close(autocommit=False)
                raise
            return consumer

        return with_backoff(self.config.bootstrap, attempt, self._follow_commands)


def unpark(consumer: KafkaConsumer) -> None:
    """Let kafka-python 3.0.12 give back the records it parked for a partition paused while it was being read.

    It keeps those records aside (KAFKA-7548) and does not fetch the partition while it holds them; once the
    partition is resumed it takes them back only when its slot for the partition being read is empty, but it
    leaves a slot it has read to the end full: a resumed partition then waited for good, and with it every
    partition it held back. Emptying a slot read to the end, as the next read would, is the one change to its
    state; the test in tests/e2e/test_kafka_broker.py fails without it."""
    fetcher = consumer._fetcher
    reading = fetcher._next_partition_records
    if reading is not None and not reading:
        fetcher._next_partition_records = None


def _consumer(config: IntakeConfig) -> KafkaConsumer:
    return KafkaConsumer(
        bootstrap_servers=config.bootstrap,
        group_id=config.group_id,
        group_instance_id=config.instance_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=config.batch_size,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=FETCH_BYTES,
        session_timeout_ms=config.session_timeout_ms,
        heartbeat_interval_ms=min(1000, config.session_timeout_ms // 3),  # a rebalance is heard of within 1 s
        client_id="uythac-intake",
    )


def _ends(consumer: KafkaConsumer, fetching: bool) -> dict[int, int]:
    """The end offset of each assigned partition; {} if the broker does not answer in time.

    While polls bring records, as the fetches that brought them saw it (`highwater`); otherwise asked of the
    broker: a consumer that has stopped fetching keeps its last figures, and the worker's stall watch and lag
    gauges need today's. (Asked every second, the broker's answer held the polling thread tens of ms each
    time, while records were waiting.)"""
    assigned = list(consumer.assignment())
    if not assigned:
        return {}
    if fetching:
        with suppress(KafkaError, KeyError):  # a partition revoked meanwhile (the listener runs on another thread)
            seen = {tp.partition: consumer.highwater(tp) for tp in assigned}
            if None not in seen.values():  # every partition has had a fetch answered since its assignment
                return {partition: end for partition, end in seen.items() if end is not None}
    try:
        ends = consumer.end_offsets(assigned, timeout_ms=ENDS_TIMEOUT_MS)
    except KafkaError:
        return {}
    return {tp.partition: end for tp, end in ends.items() if end is not None}


def _checked(records: list[Any], latest: date) -> list[Entry]:
    """Each record's verdict (`latest`: the latest business date accepted), beside what the worker needs of it."""
    entries = []
    for record in records:
        value = record.value
        parsed = parse(value, latest) if value is not None else Rejection("message: null value")
        seen = (record.offset, record.key, value, tuple(record.headers) if record.headers else (), record.timestamp)
        if isinstance(parsed, Rejection):
            entries.append(Entry(0, *seen, "", b"", parsed))
        else:
            entries.append(Entry(day_number(parsed.day), *seen, parsed.event_id, parsed.digest, None))
    return entries


def _polled(released: list[tuple[int, list[Entry]]], generation: int) -> Polled:
    """The records handed over, in the lists the worker reads (`Polled`)."""
    batch = Polled(generation)
    for partition, entries in released:
        start = len(batch.offsets)
        for entry in entries:
            if entry.rejection is not None:
                batch.rejections[len(batch.offsets)] = entry.rejection
            batch.days.append(entry.day)
            batch.ids.append(entry.event_id)
            batch.digests.append(entry.digest)
            batch.offsets.append(entry.offset)
            batch.keys.append(entry.key)
            batch.values.append(entry.value)
            batch.headers.append(entry.headers)
            batch.timestamps.append(entry.timestamp)
        batch.runs.append((partition, start, len(batch.offsets)))
    return batch


class _Commands:
    """The worker's commands, read from the pipe as they come by a thread of their own and queued: the
    worker must never wait to hand over a command (a relay round can be larger than the pipe holds) while
    the polling thread waits to hand over a batch. A closed pipe reads as `Stop`."""

    def __init__(self, connection: Connection) -> None:
        self._queue: deque[ToIntake] = deque()
        self._thread = threading.Thread(target=self._read, args=(connection,), name="intake-commands", daemon=True)
        self._thread.start()

    def _read(self, connection: Connection) -> None:
        try:
            while True:
                self._queue.append(connection.recv())
        except (EOFError, OSError):
            self._queue.append(Stop())

    def next(self) -> ToIntake | None:
        return self._queue.popleft() if self._queue else None


class _Out:
    """The pipe to the worker, written by a thread of its own from a short queue: the intake polls and checks
    the next batches while the worker takes the one before (up to `AHEAD` messages ready). While the worker is
    busy, a poll's records join the last batch waiting, up to `batch_size` records: on few partitions a poll
    brings one fetch (about 4 000 records of 1 MB), and the worker's cost per batch would otherwise outweigh its
    cost per record. The rebalance listener runs on kafka-python's network thread, which must never wait on the
    worker (it sends the heartbeats), so its notices are kept aside (`notice`) and taken by the polling thread
    (`take_notices`), which drops the records it holds and sends the notices before the records it polls after
    them: records never join a batch from before a notice."""

    def __init__(self, connection: Connection, batch_size: int) -> None:
        self._connection = connection
        self._batch_size = batch_size
        self._notices: deque[FromIntake] = deque()
        self._queue: deque[FromIntake | None] = deque()
        self._changed = threading.Condition()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._write, name="intake-out", daemon=True)
        self._thread.start()

    def notice(self, message: FromIntake) -> None:
        self._notices.append(message)

    def take_notices(self) -> list[FromIntake]:
        """The notices kept aside, for the polling thread to send before the records polled after them."""
        taken = []
        while self._notices:
            taken.append(self._notices.popleft())
        return taken

    def send(self, *messages: FromIntake) -> None:
        """Queue `messages` (a batch may join the last one waiting); waits while `AHEAD` are already queued."""
        for message in messages:
            with self._changed:
                if isinstance(message, Batch) and self._gathered(message.polled):
                    continue
                self._changed.wait_for(lambda: len(self._queue) < AHEAD or self._failed is not None)
                if self._failed is not None:
                    raise BrokenPipeError("the worker has gone") from self._failed
                self._queue.append(message)
                self._changed.notify_all()

    def close(self) -> None:
        """Write what is queued, then stop the writer."""
        with self._changed:
            self._queue.append(None)
            self._changed.notify_all()
        self._thread.join(timeout=30)

    def _gathered(self, polled: Polled) -> bool:
        """Has `polled` joined the last batch waiting (of its generation, with room, no notice after it)?"""
        for waiting in reversed(self._queue):
            match waiting:
                case Batch(last) if last.generation == polled.generation:
                    if len(last) + len(polled) > self._batch_size:
                        return False
                    last.extend(polled)
                    return True
                case Ends() | Relayed():  # the worker reads these as well after the records
                    continue
                case _:
                    return False
        return False

    def _write(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._queue))
                message = self._queue.popleft()
                self._changed.notify_all()
            if message is None:
                return
            try:
                self._connection.send(message)
            except (BrokenPipeError, EOFError, OSError) as error:
                with self._changed:
                    self._failed = error
                    self._queue.clear()
                    self._changed.notify_all()
                return


class _Seek(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, seek to the offsets in the store (runs on kafka-python's network thread)."""

    def __init__(self, consumer: KafkaConsumer, store: Store, config: IntakeConfig, out: _Out) -> None:
        self.consumer, self.store, self.topic, self.out = consumer, store, config.topic, out

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Nothing to flush here: the worker commits every batch with its offsets before it takes the next."""
        self.out.notice(Revoked(sorted(tp.partition for tp in revoked)))

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        _seek_to_store(self.consumer, self.store, self.topic, assigned)
        self.out.notice(Assigned(sorted(tp.partition for tp in assigned)))
        log.info("partitions assigned", extra={"partitions": sorted(tp.partition for tp in assigned)})


def _seek_to_store(consumer: KafkaConsumer, store: Store, topic: str, partitions: Any) -> None:
    """Seek to the offsets the store has applied up to; a partition it has never seen, to its beginning."""
    with store.reading() as uow:
        stored = uow.offsets(topic)
    for tp in partitions:
        if tp.partition in stored:
            consumer.seek(tp, stored[tp.partition])
        else:  # the store has applied nothing from it: all of it, whatever Kafka's committed offset
            consumer.seek_to_beginning(tp)


def _leave_with(parent: int) -> None:
    """Stop when the worker that started this process dies, even by kill -9 (Linux: a SIGTERM from the
    kernel); a SIGTERM or SIGINT while the worker lives is the worker's to handle (it stops the intake)."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if os.getppid() != parent:
            raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with suppress(OSError, AttributeError):  # not Linux: the closed pipe still ends the intake
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # died before the call above
        raise SystemExit(0)
