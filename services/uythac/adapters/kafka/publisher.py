"""Events from `POST /v1/events` to Kafka: one idempotent producer (acks=all) per API process, made on
first use, so gunicorn forks no Kafka client and an API whose Kafka is down still starts and reads.

A send that Kafka has not acknowledged within the timeout is `KafkaUnavailable` (the view answers 503).
Such events may still land later: a client retries with the same event ids, and the worker ignores the
duplicates. After a failure the producer is dropped and the next request makes a fresh one, so a
producer left in a bad state by an outage never outlives it. (Separate from the outbox relay and from
`uythac publish`: a request waits for its own events' acknowledgements, under a lock-free timeout.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from kafka import KafkaProducer
from kafka.errors import KafkaError

from uythac.adapters.kafka.admin import ensure_topics, wait_for_broker
from uythac.adapters.kafka.producer import idempotent_producer

log = logging.getLogger(__name__)

Message = tuple[bytes | None, bytes]  # (key: the commune_id, value: the event's JSON)


class KafkaUnavailable(Exception):
    """Kafka did not take the events in time; nothing is known to have been accepted."""


class Publisher:
    def __init__(self, bootstrap: str, topic: str, partitions: int, timeout_ms: int) -> None:
        self.bootstrap, self.topic, self.partitions, self.timeout_ms = bootstrap, topic, partitions, timeout_ms
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def send(self, messages: Sequence[Message]) -> None:
        """Produce every message and wait until Kafka has acknowledged each (acks=all)."""
        current = self._current()
        try:
            futures = [current.send(self.topic, key=key, value=value) for key, value in messages]
            current.flush(timeout=self.timeout_ms / 1000)
            for future in futures:
                future.get(timeout=0)
        except KafkaError as error:
            self._drop(current)
            raise KafkaUnavailable(f"Kafka at {self.bootstrap} did not acknowledge the events: {error}") from error

    def _current(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                try:
                    # first the broker (a closed port is found without kafka-python's noise), then the topic,
                    # which, as for `uythac publish`, may not exist yet if no worker has started
                    wait_for_broker(self.bootstrap, timeout_s=self.timeout_ms / 1000)
                    ensure_topics(self.bootstrap, {self.topic: self.partitions}, timeout_s=self.timeout_ms / 1000)
                    self._producer = idempotent_producer(
                        self.bootstrap, client_id="uythac-api", max_block_ms=self.timeout_ms
                    )
                except KafkaError as error:
                    raise KafkaUnavailable(f"Kafka at {self.bootstrap} is unreachable: {error}") from error
                log.info("Kafka producer ready", extra={"bootstrap": self.bootstrap, "topic": self.topic})
            return self._producer

    def _drop(self, failed: KafkaProducer) -> None:
        with self._lock:
            if self._producer is failed:
                self._producer = None
        failed.close(timeout=0)
