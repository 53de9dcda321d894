"""The one way uythac makes a Kafka producer: idempotent, acks=all, and keys placed without re-hashing.

kafka-python's default partitioner runs murmur2 in pure Python for every message (a sixth of a send's
time, profiled), while uythac's keys are a few thousand commune ids: `KeyPartitioner` remembers each key's
partition. It places every key exactly where the default partitioner (and Java's) would.

Four places produce, each with its own way of waiting and of failing, all through this one factory:
`entrypoints.publish` (a file, then flush; `uythac tick`), `publisher` (the API: each request waits for its
acknowledgements, with a timeout), `relay` (outbox rounds answered as they are acknowledged, without holding
the intake's polls) and the intake that owns the relay's producer.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaProducer
from kafka.partitioner.default import DefaultPartitioner

KNOWN_KEYS = 100_000  # the memo starts afresh past this many (topic, key, partition count) entries


class KeyPartitioner(DefaultPartitioner):  # type: ignore[misc]
    """The default partitioner with a memo per (topic, key, partition count)."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, bytes, int], int] = {}

    def partition(
        self, topic: str, key: Any, serialized_key: bytes | None, value: Any, serialized_value: Any, cluster: Any
    ) -> int:
        partitions = cluster.partitions_for_topic(topic)
        if serialized_key is None or not partitions:  # no key (random) or an unknown topic (its error)
            chosen: int = super().partition(topic, key, serialized_key, value, serialized_value, cluster)
            return chosen
        memo = (topic, serialized_key, len(partitions))
        known = self._known.get(memo)
        if known is None:
            if len(self._known) >= KNOWN_KEYS:
                self._known.clear()
            known = self._known[memo] = super().partition(topic, key, serialized_key, value, serialized_value, cluster)
        return known


LINGER_MS = 20


def idempotent_producer(
    bootstrap: str, client_id: str = "uythac-publish", max_block_ms: int = 60_000, give_up_ms: int | None = None
) -> KafkaProducer:
    """Idempotent, acks=all; `max_block_ms` bounds how long a send waits for metadata (a broker that is down);
    `give_up_ms`, if given, how long a request to the broker and a record's delivery may take (kafka-python's
    defaults: 30 s and 2 min), so that a producer whose broker went away has failed its records, and closes,
    soon after.

    Callers flush when they need the acknowledgements, so batches may linger and grow meanwhile.
    """
    bounds = {} if give_up_ms is None else {"request_timeout_ms": give_up_ms, "delivery_timeout_ms": 2 * give_up_ms}
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=LINGER_MS,
        batch_size=256 * 1024,
        partitioner=KeyPartitioner(),
        client_id=client_id,
        max_block_ms=max_block_ms,
        **bounds,
    )
