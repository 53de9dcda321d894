"""The local Kafka broker and uythac.adapters.kafka.admin, against a real broker (tests/kafka_broker.py)."""

from __future__ import annotations

import logging
import socket
import time
import uuid
import weakref
from collections import defaultdict

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError, KafkaTimeoutError

from tests.kafka_broker import KafkaBroker, free_ports
from uythac.adapters.kafka import admin as kafka_admin
from uythac.adapters.kafka import intake
from uythac.adapters.kafka.admin import ensure_topics, wait_for_broker

Record = tuple[str, str]  # (key, value)


def unique(name: str) -> str:
    return f"test.{name}.{uuid.uuid4().hex[:8]}"


def partition_counts(bootstrap: str, names: list[str]) -> dict[str, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return {topic["name"]: len(topic["partitions"]) for topic in admin.describe_topics(names)}
    finally:
        admin.close()


def produce(bootstrap: str, topic: str, records: list[Record]) -> None:
    """Keyed, idempotent, acks=all: what the worker's relay does."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    try:
        for key, value in records:
            producer.send(topic, key=key.encode(), value=value.encode())
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)


def new_consumer(bootstrap: str, topic: str, **settings: int) -> KafkaConsumer:
    """A consumer of `topic` in a new group, from its beginning, committing only when told."""
    return KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=unique("group"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **settings,
    )


def consume(bootstrap: str, topic: str, expected: int, timeout_s: float = 30.0) -> list[tuple[int, Record]]:
    """Read `expected` records through a new consumer group: (partition, (key, value)) in partition order."""
    consumer = new_consumer(bootstrap, topic)
    got: list[tuple[int, Record]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < expected and time.monotonic() < deadline:
            for partition, batch in consumer.poll(timeout_ms=500).items():
                got.extend((partition.partition, (r.key.decode(), r.value.decode())) for r in batch)
        consumer.commit()
    finally:
        consumer.close()
    return got


def records_for(communes: int, per_commune: int) -> list[Record]:
    return [
        (f"commune-{c:03d}", f'{{"commune_id": "commune-{c:03d}", "seq": {n}}}')
        for n in range(per_commune)
        for c in range(communes)
    ]


@pytest.mark.kafka
def test_ensure_topics_creates_partitions_and_is_idempotent(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    events, dlq = unique("events"), unique("dlq")
    ensure_topics(kafka_bootstrap, {events: 12, dlq: 3})
    assert partition_counts(kafka_bootstrap, [events, dlq]) == {events: 12, dlq: 3}

    ensure_topics(kafka_bootstrap, {events: 12, dlq: 3})  # again: nothing to do, no error
    assert partition_counts(kafka_bootstrap, [events, dlq]) == {events: 12, dlq: 3}

    with caplog.at_level(logging.WARNING, logger="uythac.adapters.kafka.admin"):
        ensure_topics(kafka_bootstrap, {events: 24})  # more than it has: a warning, the topic unchanged
    assert partition_counts(kafka_bootstrap, [events]) == {events: 12}
    warnings = [r for r in caplog.records if r.name == "uythac.adapters.kafka.admin" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].__dict__["topic"] == events


@pytest.mark.kafka
@pytest.mark.parametrize("seen", [False, True], ids=["looked-just-before", "looked-just-after"])
def test_a_topic_another_process_creates_meanwhile_is_waited_for_and_not_logged_as_ours(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, seen: bool
) -> None:
    """`make run` starts the worker and the publisher at once, and one creates the topic. The other, whether it
    looked just before the create or just after, must still wait for the partitions' leaders (else its first
    sends log NotLeaderForPartitionError) and must not log the topic as created by it."""
    topic = unique("raced")
    first_look = [True]
    real_counts, real_admin = kafka_admin._partition_counts, kafka_admin._admin

    def counts_while_another_creates_it(admin: KafkaAdminClient, names: list[str]) -> dict[str, int]:
        if first_look:
            first_look.pop()
            other = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
            try:
                other.create_topics({topic: {"num_partitions": 6, "replication_factor": 1}})
            finally:
                other.close()
            return {topic: 6} if seen else {}
        return real_counts(admin, names)

    asked: list[TopicPartition] = []

    def spied_admin(bootstrap: str, timeout_s: float) -> KafkaAdminClient:
        client = real_admin(bootstrap, timeout_s)
        listing = client.list_partition_offsets

        def list_partition_offsets(specs: dict[TopicPartition, object], **options: object) -> object:
            asked.extend(specs)
            return listing(specs, **options)

        client.list_partition_offsets = list_partition_offsets
        return client

    monkeypatch.setattr(kafka_admin, "_partition_counts", counts_while_another_creates_it)
    monkeypatch.setattr(kafka_admin, "_admin", spied_admin)
    with caplog.at_level(logging.INFO, logger="uythac.adapters.kafka.admin"):
        ensure_topics(kafka_bootstrap, {topic: 12})
    assert sorted(tp.partition for tp in asked if tp.topic == topic) == list(range(6))  # the other's partitions
    assert not [r for r in caplog.records if r.getMessage() == "topics created"]


@pytest.mark.kafka
def test_keyed_idempotent_produce_then_group_read(kafka_bootstrap: str) -> None:
    topic = unique("events")
    ensure_topics(kafka_bootstrap, {topic: 12})
    sent = records_for(communes=40, per_commune=5)
    produce(kafka_bootstrap, topic, sent)

    got = consume(kafka_bootstrap, topic, expected=len(sent))
    assert sorted(record for _, record in got) == sorted(sent)
    # one key, one partition, in the order sent
    partitions: dict[str, set[int]] = defaultdict(set)
    order: dict[str, list[str]] = defaultdict(list)
    for partition, (key, value) in got:
        partitions[key].add(partition)
        order[key].append(value)
    assert all(len(p) == 1 for p in partitions.values())
    assert order == {key: [v for k, v in sent if k == key] for key in order}
    assert len({p for ps in partitions.values() for p in ps}) > 1  # keys spread over the partitions


def test_wait_for_broker_on_a_closed_port_raises_within_its_timeout() -> None:
    (port,) = free_ports(1)
    started = time.monotonic()
    with pytest.raises(KafkaError):
        wait_for_broker(f"127.0.0.1:{port}", timeout_s=1.5)
    assert time.monotonic() - started < 3.0


@pytest.mark.kafka
def test_wait_for_broker_returns_on_a_live_broker(kafka_bootstrap: str) -> None:
    started = time.monotonic()
    wait_for_broker(kafka_bootstrap, timeout_s=10)
    assert time.monotonic() - started < 5.0


@pytest.mark.kafka
def test_broker_restart_keeps_topics_and_messages(kafka_broker: KafkaBroker) -> None:
    bootstrap = kafka_broker.bootstrap
    topic = unique("durable")
    ensure_topics(bootstrap, {topic: 6})
    sent = records_for(communes=10, per_commune=3)
    produce(bootstrap, topic, sent)

    kafka_broker.stop()
    assert not kafka_broker.running()
    with pytest.raises(KafkaError):
        wait_for_broker(bootstrap, timeout_s=0.5)
    kafka_broker.start()
    wait_for_broker(bootstrap, timeout_s=30)

    assert partition_counts(bootstrap, [topic]) == {topic: 6}
    got = consume(bootstrap, topic, expected=len(sent))
    assert sorted(record for _, record in got) == sorted(sent)


def test_a_half_built_admin_client_leaves_no_socket_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """kafka-python's admin client can fail in its constructor after connecting (a broker still starting):
    its socket, in a reference cycle, must be closed at once, not by a later garbage collection that
    would raise a ResourceWarning in whatever runs then."""
    sockets: list[weakref.ref[socket.socket]] = []

    class HalfBuilt:
        def __init__(self, **_: object) -> None:
            self.me, self.sock = self, socket.socket()  # a cycle, as kafka-python's client makes
            sockets.append(weakref.ref(self.sock))
            raise KafkaTimeoutError("no controller yet")

    monkeypatch.setattr(kafka_admin, "KafkaAdminClient", HalfBuilt)
    with pytest.raises(KafkaTimeoutError):
        kafka_admin._admin("127.0.0.1:9", 0.1)
    assert sockets and sockets[0]() is None, "the half-built client and its socket are still alive"


def test_a_partition_paused_while_read_then_resumed_is_read_to_its_end(kafka_bootstrap: str) -> None:
    """The intake pauses a partition that runs ahead, often the one kafka-python is reading; resumed, it must be
    read to its end (`intake.unpark` works around kafka-python 3.0.12 keeping its records parked for good)."""
    topic = unique("pause")
    ensure_topics(kafka_bootstrap, {topic: 2})
    produce(kafka_bootstrap, topic, [(f"C{i % 2}", "x" * 200) for i in range(4000)])
    consumer = new_consumer(kafka_bootstrap, topic, max_partition_fetch_bytes=64 * 1024)
    try:
        counts: dict[int, int] = defaultdict(int)
        deadline = time.monotonic() + 30
        paused_once = False
        while sum(counts.values()) < 4000 and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=200, max_records=50).items():
                counts[tp.partition] += len(records)
                if not paused_once and counts[tp.partition] >= 100:  # paused while being read: its records parked
                    consumer.pause(tp)
                    paused_once = True
                    for _ in range(5):  # the other partition goes on meanwhile
                        for other, more in consumer.poll(timeout_ms=200, max_records=50).items():
                            counts[other.partition] += len(more)
                    consumer.resume(tp)
            intake.unpark(consumer)
        assert paused_once and sum(counts.values()) == 4000, dict(counts)
    finally:
        consumer.close()
