"""The API's producer when Kafka does not answer: no request waits behind another's wait, and once Kafka is
known to be down every request is answered at once, with how long to wait."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.kafka_broker import free_ports
from uythac.adapters.kafka import publisher
from uythac.adapters.kafka.publisher import KafkaUnavailable, Publisher

TIMEOUT_MS = 1000


def _closed() -> Publisher:
    return Publisher(f"127.0.0.1:{free_ports(1)[0]}", "uythac.events", 1, TIMEOUT_MS)


def _answer_time(publisher_: Publisher) -> tuple[float, KafkaUnavailable]:
    started = time.monotonic()
    with pytest.raises(KafkaUnavailable) as raised:
        publisher_.send([(b"C0001", b"{}")])
    return time.monotonic() - started, raised.value


def test_requests_that_come_together_wait_together_not_one_after_another() -> None:
    closed = _closed()
    with ThreadPoolExecutor(16) as pool:
        times = [seconds for seconds, _ in pool.map(lambda _: _answer_time(closed), range(16))]
    assert max(times) < 3 * TIMEOUT_MS / 1000, times  # serialized, the last would wait 16 timeouts


def test_once_kafka_is_known_down_requests_are_answered_at_once_with_retry_after() -> None:
    closed = _closed()
    first, _ = _answer_time(closed)
    assert first >= TIMEOUT_MS / 1000 * 0.9  # it did try
    second, error = _answer_time(closed)
    assert second < 0.1 and 1 <= error.retry_after_s <= publisher.DOWN_S
    assert "unreachable" in str(error)
