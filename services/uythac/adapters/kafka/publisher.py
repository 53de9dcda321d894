"""Events from `POST /v1/events` to Kafka: one idempotent producer (acks=all) per API process, made on first use,
so gunicorn forks no Kafka client and an API whose Kafka is down still starts and reads.

No request ever waits behind another's network wait: the producer is made on a thread of its own, and a lock
guards only the publisher's state. Requests that come while it connects wait for it together, each up to the
timeout. Once Kafka has failed (unreachable, or a send not acknowledged in time), the producer is dropped and,
for `DOWN_S` seconds, every request is answered at once with `KafkaUnavailable` and how long to wait; the next
request after that makes a fresh producer, so a producer left in a bad state by an outage never outlives it.
Events of a failed request may still land: a client retries with the same event ids, and the worker ignores
the duplicates. (Separate from the outbox relay and from `uythac publish`: a request waits for its own
events' acknowledgements.)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from contextlib import suppress

from kafka import KafkaProducer
from kafka.errors import KafkaError

from uythac.adapters.kafka.admin import ensure_topics, wait_for_broker
from uythac.adapters.kafka.producer import idempotent_producer

log = logging.getLogger(__name__)

Message = tuple[bytes | None, bytes]  # (key: the commune_id, value: the event's JSON)
DOWN_S = 5.0  # after a failure, answer at once for this long before trying Kafka again


class KafkaUnavailable(Exception):
    """Kafka did not take the events in time; nothing is known to have been accepted."""

    def __init__(self, detail: str, retry_after_s: float) -> None:
        super().__init__(detail)
        self.retry_after_s = max(1, round(retry_after_s))


class Publisher:
    def __init__(self, bootstrap: str, topic: str, partitions: int, timeout_ms: int) -> None:
        self.bootstrap, self.topic, self.partitions, self.timeout_ms = bootstrap, topic, partitions, timeout_ms
        self._lock = threading.Lock()  # guards the four fields below, never held across a network wait
        self._producer: KafkaProducer | None = None
        self._connected: threading.Event | None = None  # set when a connection attempt ends
        self._down_until = 0.0  # monotonic
        self._failure = ""

    def send(self, messages: Sequence[Message]) -> None:
        """Produce every message and wait until Kafka has acknowledged each (acks=all)."""
        producer = self._ready()
        try:
            futures = [producer.send(self.topic, key=key, value=value) for key, value in messages]
            producer.flush(timeout=self.timeout_ms / 1000)
            for future in futures:
                future.get(timeout=0)
        except KafkaError as error:
            self._failed(f"Kafka at {self.bootstrap} did not acknowledge the events: {error}", producer)
            raise KafkaUnavailable(self._failure, DOWN_S) from error

    def close(self, timeout_s: float = 5.0) -> None:
        """Close the producer, if any: its sender thread would otherwise go on calling a broker that is gone."""
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            _close(producer, timeout_s)

    def _ready(self) -> KafkaProducer:
        """The producer, made if need be (waiting for it at most the timeout); `KafkaUnavailable` at once while
        Kafka is known to be down."""
        with self._lock:
            if self._producer is not None:
                return self._producer
            now = time.monotonic()
            if now < self._down_until:
                raise KafkaUnavailable(self._failure, self._down_until - now)
            if self._connected is None:
                self._connected = threading.Event()
                threading.Thread(target=self._connect, args=(self._connected,), daemon=True).start()
            connected = self._connected
        connected.wait(self.timeout_ms / 1000)
        with self._lock:
            if self._producer is not None:
                return self._producer
            remaining = max(self._down_until - time.monotonic(), 1.0)
            raise KafkaUnavailable(self._failure or f"Kafka at {self.bootstrap} has not answered yet", remaining)

    def _connect(self, done: threading.Event) -> None:
        """First the broker (a closed port is found without kafka-python's noise), then the topic, which, as for
        `uythac publish`, may not exist yet if no worker has started; then the producer."""
        timeout_s = self.timeout_ms / 1000
        producer = None
        try:
            wait_for_broker(self.bootstrap, timeout_s=timeout_s)
            ensure_topics(self.bootstrap, {self.topic: self.partitions}, timeout_s=timeout_s)
            producer = idempotent_producer(
                self.bootstrap, client_id="uythac-api", max_block_ms=self.timeout_ms, give_up_ms=self.timeout_ms
            )
        except Exception as error:  # kafka-python raises several kinds: each means "not now"
            self._failed(f"Kafka at {self.bootstrap} is unreachable: {error}", None)
        else:
            log.info("Kafka producer ready", extra={"bootstrap": self.bootstrap, "topic": self.topic})
        with self._lock:
            self._producer, self._connected = producer, None
        done.set()

    def _failed(self, reason: str, producer: KafkaProducer | None) -> None:
        """Kafka is down for now: answer at once for `DOWN_S`; the failed producer is closed on the side."""
        log.warning("Kafka unavailable to the API", extra={"error": reason})
        with self._lock:
            self._failure, self._down_until = reason, time.monotonic() + DOWN_S
            if producer is not None and self._producer is producer:
                self._producer = None
        if producer is not None:
            threading.Thread(target=_close, args=(producer, 3 * self.timeout_ms / 1000), daemon=True).start()


def _close(producer: KafkaProducer, timeout_s: float) -> None:
    """Close once its records have failed (within twice the timeout: `give_up_ms`); never raise."""
    with suppress(Exception):
        producer.close(timeout=timeout_s)
