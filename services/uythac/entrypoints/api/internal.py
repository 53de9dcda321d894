"""The operators' endpoints (`/metrics`, `/readyz`) answer only on the API's internal address.

They show every district's counts, the worker's lag and the broker's address: for Prometheus, a load
balancer's health checks and operators, not for the callers of `/v1`. gunicorn listens on both addresses
(`api_bind`, `api_internal_bind`); a request's listener is the local address of its socket. Elsewhere those
endpoints answer 404, as if they did not exist. With no internal address set, they answer everywhere.
"""

from __future__ import annotations

from flask import Flask, request

from uythac.entrypoints.api.problems import Problem

ENDPOINTS = frozenset({"prometheus.get_metrics", "health.readyz"})


class Internal:
    def __init__(self, bind: str) -> None:
        self.address = _address(bind) if bind else None

    def init_app(self, app: Flask) -> None:
        app.before_request(self.check)

    def check(self) -> None:
        if self.address is None or request.endpoint not in ENDPOINTS:
            return
        sock = request.environ.get("gunicorn.socket")
        if sock is None:  # not served by gunicorn (the app in-process, in tests): one address only
            return
        local = sock.getsockname()
        arrived = local if isinstance(local, str) else str(local[1])
        if arrived != self.address:
            raise Problem("not-found", f"{request.path} answers on the API's internal address only")


def _address(bind: str) -> str:
    """What a listener's socket says of itself: a unix socket's path, or a TCP port."""
    return bind[len("unix:") :] if bind.startswith("unix:") else bind.rpartition(":")[2]
