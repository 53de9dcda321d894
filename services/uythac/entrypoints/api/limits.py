"""How fast a key scoped to a district or a commune may call: a token bucket per key name, in each API process.

A district office's people and tools need a few requests a second; a key that asks for far more is a tool gone
wrong or an attack, and every other caller would pay for its load. Keys of scope `all` are the bank's own
services and are not limited here. The bucket refills at `rate` requests a second and holds `2 × rate`; each
gunicorn worker process keeps its own, so a key gets up to that many times the rate in all.
"""

from __future__ import annotations

import threading
import time


class RateLimits:
    def __init__(self, rate: float) -> None:
        self.rate, self.burst = rate, 2 * rate
        self._buckets: dict[str, tuple[float, float]] = {}  # key name: (tokens, when counted, monotonic)
        self._lock = threading.Lock()

    def wait(self, name: str) -> float:
        """Take one request of this key's: 0 if it may go now, else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.get(name, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if tokens >= 1:
                self._buckets[name] = (tokens - 1, now)
                return 0.0
            self._buckets[name] = (tokens, now)
            return (1 - tokens) / self.rate
