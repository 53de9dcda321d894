"""Structured logs: one JSON object per line on stderr, with event ids, never borrower data."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

_RESERVED = set(vars(logging.makeLogRecord({})))

# kafka-python 3 times every step of its network thread by the wall clock and warns of any over 0.1 s as
# "blocking the event loop". In the intake that thread shares the interpreter with the thread that checks
# records, so while a backlog is read a large fetch takes it 0.1-1 s a few times a minute: nothing is late
# or lost (heartbeats go every second, the session timeout is 10 s). Steps this long or longer are still logged.
SLOW_KAFKA_STEP = 2.0  # seconds
_KAFKA_STEP = re.compile(r"ran for ([0-9.]+)s .*blocking the event loop")


class JsonLines(logging.Formatter):
    """`log.info("batch applied", extra={"accepted": 5000})` → {"ts":..., "msg": ..., "accepted": 5000}."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _RESERVED and not k.startswith("_")})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # kafka-python narrates every connection at INFO; its warnings and errors still come through
    logging.getLogger("kafka").setLevel(max(root.level, logging.WARNING))
    logging.getLogger("kafka.net.selector").addFilter(only_slow_kafka_steps)
    # Alembic says which dialect it drives each time a store's layout is read (every command opening a store)
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))


def only_slow_kafka_steps(record: logging.LogRecord) -> bool:
    """Drop kafka-python's slow-step warnings shorter than `SLOW_KAFKA_STEP` (why: see there)."""
    step = _KAFKA_STEP.search(record.getMessage())
    return step is None or float(step.group(1)) >= SLOW_KAFKA_STEP
