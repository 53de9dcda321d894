"""The API's producer against a real broker that stops: a 503 (KafkaUnavailable), never a 500, and answers at
once while the broker is down; a fresh producer once it is back. A broker of this test's own: the session's
broker stays up for the other tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kafka_broker import KafkaBroker, free_ports
from uythac.adapters.kafka import publisher
from uythac.adapters.kafka.publisher import KafkaUnavailable, Publisher

pytestmark = pytest.mark.kafka


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    own = KafkaBroker(tmp_path / "kafka", *free_ports(2))
    own.start()
    try:
        yield own
    finally:
        own.stop()


def test_a_broker_that_stops_gives_kafka_unavailable_then_answers_at_once(
    broker: KafkaBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publisher, "DOWN_S", 3.0)
    sender = Publisher(broker.bootstrap, "api.events", 1, 2000)
    try:
        stops_then_comes_back(sender, broker)
    finally:
        sender.close()  # else its producer calls the stopped broker for the rest of the session


def stops_then_comes_back(sender: Publisher, broker: KafkaBroker) -> None:
    sender.send([(b"C0001", b'{"n": 1}')])
    broker.stop()
    with pytest.raises(KafkaUnavailable):
        sender.send([(b"C0001", b'{"n": 2}')])
    started = time.monotonic()
    with pytest.raises(KafkaUnavailable) as raised:
        sender.send([(b"C0001", b'{"n": 3}')])
    assert time.monotonic() - started < 0.1 and raised.value.retry_after_s >= 1
    broker.start()
    time.sleep(3.0)  # the down window passes
    deadline = time.monotonic() + 60
    while True:
        try:
            sender.send([(b"C0001", b'{"n": 4}')])
            break
        except KafkaUnavailable:
            assert time.monotonic() < deadline, "the publisher never came back after the broker did"
            time.sleep(1.0)
