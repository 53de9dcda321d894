"""`uythac api`: the app under gunicorn, configured in code (a `BaseApplication`), not by a config file.

gthread workers: each process serves `api_threads` requests at once, each on its own store connection
(SQLite in WAL mode lets them read while the worker writes). The app is made in each worker after the
fork (no preload), so no process shares a database connection or a Kafka client with another.

Metrics: unless PROMETHEUS_MULTIPROC_DIR is set already, a fresh directory is made for this server and
removed when it stops; a dead worker's files are marked so its gauges do not linger. A directory the
operator sets is theirs: empty it before each start, as prometheus_client requires.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from uythac.settings import Settings

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


class ApiServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        for name, value in gunicorn_options(self.settings).items():
            self.cfg.set(name, value)

    def load(self) -> Flask:
        from uythac.entrypoints.api import create_app

        return create_app(self.settings)


class _Logger(Logger):  # type: ignore[misc]
    """gunicorn's logger without the access log: `telemetry` logs every request, and gunicorn built each access
    line (~30 µs) before the `gunicorn.access` logger dropped it."""

    def access(self, *_: Any) -> None:
        return None


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "bind": [settings.api_bind],
        "workers": settings.api_workers,
        "threads": settings.api_threads,
        "worker_class": "gthread",
        "timeout": settings.api_timeout_s,
        "graceful_timeout": 10,
        "keepalive": 5,
        "proc_name": "uythac-api",
        "accesslog": None,  # uythac.entrypoints.api.telemetry logs every request, as JSON
        "logger_class": _Logger,
        "logconfig_dict": _logging(settings.log_level),
        "child_exit": _child_exit,
        "control_socket_disable": True,  # one fixed path per user: two servers on a machine would fight over it
    }


def _logging(level: str) -> dict[str, Any]:
    """gunicorn's own messages as JSON lines too, on stderr beside the app's."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "uythac.logs.JsonLines"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
    }


def _child_exit(_server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def serve(settings: Settings) -> int:
    """Run the server until it is stopped (SIGTERM/SIGINT: graceful; SIGHUP: new workers, keys re-read)."""
    own = None
    if not os.environ.get(MULTIPROC_DIR):
        if "prometheus_client" in sys.modules:  # it chose in-process values at import: each worker's own
            raise RuntimeError(f"prometheus_client was imported before {MULTIPROC_DIR} was set")
        own = tempfile.mkdtemp(prefix="uythac-api-metrics-")
        os.environ[MULTIPROC_DIR] = own
    try:
        ApiServer(settings).run()
    finally:
        if own is not None:
            shutil.rmtree(own, ignore_errors=True)
    return 0
