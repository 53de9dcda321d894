"""`uythac publish` and `uythac tick`: events into `uythac.events`, keyed by commune_id.

Publishing validates every line locally first with the worker's own schemas: it reports what the
worker would reject and, with `strict`, refuses to send anything if a line is invalid. Otherwise only
the valid lines are sent, with an idempotent producer and acks=all, so a retry never duplicates.

A tick moves the clock on a quiet day, so that deadlines mature without events; `uythac tick --daily` sends
one shortly after each Vietnam midnight (off by default: the bank's own systems may tick instead).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, TextIO

from uythac.adapters.kafka.admin import ensure_topics
from uythac.adapters.kafka.producer import idempotent_producer
from uythac.core.dates import VIETNAM
from uythac.core.events import Event, Rejection, parse
from uythac.entrypoints.replay import lines_of, reject_line

log = logging.getLogger(__name__)
FIRST_SHOWN = 5  # invalid lines whose reasons the summary keeps (all of them go to the rejects file)


@dataclass
class PublishSummary:
    read: int = 0
    sent: int = 0
    invalid: int = 0
    failed: int = 0  # valid lines the broker did not acknowledge
    refused: bool = False
    reasons: dict[str, int] = field(default_factory=dict)
    first: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason) of the first invalid lines

    def line(self) -> str:
        if self.refused:
            return f"read {self.read} lines: {self.invalid} invalid; --strict: nothing sent"
        text = f"read {self.read} lines: {self.sent} sent, {self.invalid} invalid (not sent)"
        return text + (f", {self.failed} NOT acknowledged by Kafka" if self.failed else "")


def publish(
    path: Path,
    bootstrap: str,
    topic: str,
    *,
    partitions: int,
    latest: date | None,
    strict: bool = False,
    rejects: TextIO | None = None,
    progress: Callable[[int], None] | None = None,
) -> PublishSummary:
    summary = PublishSummary()
    if strict:
        _check(path, summary, latest, rejects)
        if summary.invalid:
            summary.refused = True
            return summary
        summary = PublishSummary()
    ensure_topics(bootstrap, {topic: partitions})  # a demo's first publish may come before any worker
    sender = idempotent_producer(bootstrap)
    try:
        for number, line, event, raw in _valid_lines(path, summary, latest, rejects):
            future = sender.send(topic, key=event.unit[0].encode() if event.unit else None, value=line)
            future.add_errback(lambda error, n=number: _failed(summary, n, error))
            summary.sent += 1
            if progress is not None and number % 10_000 == 0:
                progress(raw.tell())
        sender.flush()
        summary.sent -= summary.failed
        if progress is not None:
            progress(path.stat().st_size)  # the whole file read
    finally:
        sender.close()
    return summary


def _failed(summary: PublishSummary, number: int, error: Exception) -> None:
    summary.failed += 1
    log.error("line not acknowledged by Kafka", extra={"line": number, "error": str(error)})


def _check(path: Path, summary: PublishSummary, latest: date | None, rejects: TextIO | None) -> None:
    for _ in _valid_lines(path, summary, latest, rejects):
        pass


def _valid_lines(
    path: Path, summary: PublishSummary, latest: date | None, rejects: TextIO | None
) -> Iterator[tuple[int, bytes, Event, IO[bytes]]]:
    """(line number, line, event, the file underneath) of each valid line; the others counted and refused."""
    with lines_of(path) as (lines, raw):
        for number, line in enumerate(lines, 1):
            line = line.rstrip(b"\r\n")
            summary.read += 1
            parsed = parse(line, latest)
            if isinstance(parsed, Rejection):
                _refuse(summary, number, line, parsed, rejects)
            else:
                yield number, line, parsed, raw


def _refuse(summary: PublishSummary, number: int, line: bytes, rejection: Rejection, rejects: TextIO | None) -> None:
    summary.invalid += 1
    field_name = rejection.reason.split(":", 1)[0]
    summary.reasons[field_name] = summary.reasons.get(field_name, 0) + 1
    if len(summary.first) < FIRST_SHOWN:
        summary.first.append((number, rejection.reason))
    if rejects is not None:
        rejects.write(reject_line(number, line, rejection))


def tick_event(day: date | None = None) -> bytes:
    """A clock.tick for `day` (today in Vietnam by default). Its id is the day: ticking twice is a no-op."""
    day = day or datetime.now(VIETNAM).date()
    return json.dumps(
        {"event_id": f"tick-{day.isoformat()}", "type": "clock.tick", "occurred_at": day.isoformat()}
    ).encode()


def tick(bootstrap: str, topic: str, day: date | None = None) -> bytes:
    sender = idempotent_producer(bootstrap)
    try:
        value = tick_event(day)
        sender.send(topic, key=None, value=value).get(timeout=30)
        return value
    finally:
        sender.close()


AFTER_MIDNIGHT = timedelta(minutes=5)


def seconds_to_next_tick(now: datetime) -> float:
    """Seconds until 00:05 Vietnam time after `now`."""
    local = now.astimezone(VIETNAM)
    next_midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), VIETNAM)
    return (next_midnight + AFTER_MIDNIGHT - local).total_seconds()


def daily(send: Callable[[], bytes]) -> int:
    """Tick now, then every day after midnight, until SIGTERM or SIGINT."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.is_set():
        try:
            log.info("tick sent", extra={"tick": send().decode()})
        except Exception as error:  # the broker may be down; the next day's tick covers this one
            log.warning("tick failed", extra={"error": str(error)})
        stop.wait(seconds_to_next_tick(datetime.now(VIETNAM)))
    return 0
