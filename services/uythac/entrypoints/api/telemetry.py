"""Per request: one JSON log line (method, route, status, ms, the key's name) and the latency histogram.

The route is the URL rule (`/v1/loans/<loan_id>`), not the URL: the log and the metric's labels stay
bounded and carry no ids. The key's name is logged, never the key; there is no borrower data to log.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

from uythac.entrypoints.api.auth import caller_name
from uythac.metrics import API_SECONDS

log = logging.getLogger("uythac.entrypoints.api.requests")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _start() -> None:
    g.started = time.perf_counter()


def _finish(response: Response) -> Response:
    seconds = time.perf_counter() - g.started
    route = request.url_rule.rule if request.url_rule else "unmatched"
    method = request.method if request.method in METHODS else "other"  # a label's values stay few, whatever is sent
    API_SECONDS.labels(route, method, str(response.status_code)).observe(seconds)
    log.info(
        "request",
        extra={
            "method": method,
            "route": route,
            "status": response.status_code,
            "ms": round(seconds * 1000, 2),
            "key": caller_name(),
        },
    )
    return response


def init_app(app: Flask) -> None:
    """Register first, so that the timer starts before the key is checked."""
    app.before_request(_start)
    app.after_request(_finish)
