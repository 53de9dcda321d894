"""Log lines: one JSON object each; kafka-python's noise kept out, its real warnings kept in."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from uythac import logs


@pytest.fixture
def configured() -> Iterator[io.StringIO]:
    """What `logs.configure` writes to stderr, in a buffer."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    logs.configure("info")
    written = io.StringIO()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(written)
    yield written
    root.handlers[:], root.level = handlers, level


def lines(written: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in written.getvalue().splitlines()]


def test_a_line_is_one_json_object_with_the_extra_fields(configured: io.StringIO) -> None:
    logging.getLogger("uythac.entrypoints.worker").info("batch applied", extra={"accepted": 5000, "event_id": "E-1"})
    (line,) = lines(configured)
    assert line["level"] == "info" and line["logger"] == "uythac.entrypoints.worker" and line["msg"] == "batch applied"
    assert line["accepted"] == 5000 and line["event_id"] == "E-1"


def _step(seconds: float) -> str:
    # kafka-python 3.0.12, kafka/net/selector.py: the message is formatted before it is logged
    return (
        f"Task <Task _read_from_sock> ran for {seconds:.3f}s (>0.100s threshold). It is blocking the event loop "
        "-- likely a tight sync loop inside a coroutine. Other pollers will time out."
    )


def test_short_kafka_steps_are_dropped_and_long_ones_and_other_warnings_kept(
    configured: io.StringIO,
) -> None:
    selector = logging.getLogger("kafka.net.selector")
    selector.warning(_step(0.9))
    selector.warning(_step(1.999))
    selector.warning(_step(logs.SLOW_KAFKA_STEP))
    selector.warning("Task <Task x> left RUNNING after step; demoting to UNSCHEDULED")
    logging.getLogger("kafka.conn").info("connected")  # kafka-python's INFO narration stays out too
    assert [line["msg"] for line in lines(configured)] == [
        _step(logs.SLOW_KAFKA_STEP),
        "Task <Task x> left RUNNING after step; demoting to UNSCHEDULED",
    ]


def test_configuring_twice_adds_the_filter_once(configured: io.StringIO) -> None:
    logs.configure("info")
    assert logging.getLogger("kafka.net.selector").filters.count(logs.only_slow_kafka_steps) == 1
