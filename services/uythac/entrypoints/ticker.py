"""The optional daily ticker (`uythac tick --daily`): a clock.tick shortly after each Vietnam midnight.

Without it the clock only moves with events, so on a quiet day no deadline matures. Off by default:
the bank's own systems may tick instead.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from uythac.core.dates import VIETNAM

log = logging.getLogger(__name__)
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
