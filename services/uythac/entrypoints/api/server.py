"""`uythac api`: the app under gunicorn, configured in code (a `BaseApplication`), not by a config file.

gthread workers: each process serves `api_threads` requests at once, each on its own store connection
(SQLite in WAL mode lets them read while the worker writes). The app is made in each worker after the
fork (no preload), so no process shares a database connection or a Kafka client with another. Slow clients
are a reverse proxy's to hold (deploy/nginx): a slow header would hold a gthread thread.

Two listeners: `api_bind` for callers, `api_internal_bind` for operators (`/metrics`, `/readyz`: see
`internal`). SIGHUP re-reads the keys file and starts new workers; a keys file that does not load is logged
and the keys in force stay (the workers read a snapshot the master keeps, `_Keys`), so a typo in the file
never takes the API down. SIGTERM stops gracefully.

Metrics: unless PROMETHEUS_MULTIPROC_DIR is set already, a fresh directory is made for this server and
removed by the master when it stops (never by a worker: every worker process unwinds this function's stack
when it exits); a dead worker's files are marked so its gauges do not linger. A directory the operator sets
is theirs: empty it before each start, as prometheus_client requires.
"""

from __future__ import annotations

import gc
import logging
import os
import secrets
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
from flask import Flask
from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from uythac.entrypoints.api.auth import load_keys
from uythac.errors import ConfigError
from uythac.settings import Settings

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
log = logging.getLogger(__name__)


class _Keys:
    """The keys in force: a copy of the last keys file that loaded, which the workers read."""

    def __init__(self, configured: str, directory: str) -> None:
        self.configured = configured
        self.snapshot = str(Path(directory) / "api-keys.yaml") if configured else ""
        self.refresh(at_start=True)

    def refresh(self, at_start: bool = False) -> None:
        """Take the configured file if it loads; else keep the copy (at start: raise, one clear line)."""
        if not self.configured:
            return
        try:
            text = Path(self.configured).read_text(encoding="utf-8")
            keys = load_keys(self.configured)
        except (OSError, UnicodeDecodeError, ConfigError) as error:
            if at_start:
                raise ConfigError(str(error)) from error
            log.error("API keys file not reloaded: the keys in force stay", extra={"error": str(error)})
            return
        temporary = Path(self.snapshot).with_suffix(".new")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(self.snapshot)
        if not at_start:
            log.info("API keys reloaded", extra={"keys": len(keys)})


class ApiServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, keys: _Keys) -> None:
        self.settings, self.keys = settings, keys
        super().__init__()

    def load_config(self) -> None:
        for name, value in gunicorn_options(self.settings).items():
            self.cfg.set(name, value)

    def reload(self) -> None:
        """SIGHUP, in the master: re-read the keys file before the new workers start."""
        super().reload()
        self.keys.refresh()

    def load(self) -> Flask:
        from uythac.entrypoints.api import create_app

        app = create_app(replace(self.settings, api_keys_file=self.keys.snapshot))
        # What the app built and warmed stays for the worker's life: moved out of the cycle collector's reach,
        # a full collection walks only what requests allocate (on the province, 60-80 ms pauses became < 1 ms).
        gc.collect()
        gc.freeze()
        return app


class _Logger(Logger):  # type: ignore[misc]
    """gunicorn's logger without the access log: `telemetry` logs every request, and gunicorn built each access
    line (~30 µs) before the `gunicorn.access` logger dropped it."""

    def access(self, *_: Any) -> None:
        return None


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    binds = [settings.api_bind] + ([settings.api_internal_bind] if settings.api_internal_bind else [])
    return {
        "bind": binds,
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
        "post_fork": _post_fork,
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


def _post_fork(_server: Any, _worker: Any) -> None:
    """In each worker: gunicorn's own error answers (a bad request line, headers too large) as problems too."""
    util.write_error = _problem


def _problem(sock: Any, status: int, reason: str, message: str) -> None:
    """gunicorn's `util.write_error`, answering an RFC 9457 problem document instead of an HTML page."""
    body = orjson.dumps({"type": "about:blank", "title": reason, "status": status, "detail": message or reason})
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def _child_exit(_server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def serve(settings: Settings) -> int:
    """Run the server until it is stopped (SIGTERM/SIGINT: graceful; SIGHUP: new workers, keys re-read)."""
    master = os.getpid()
    own = None
    if not os.environ.get(MULTIPROC_DIR):
        if "prometheus_client" in sys.modules:  # it chose in-process values at import: each worker's own
            raise RuntimeError(f"prometheus_client was imported before {MULTIPROC_DIR} was set")
        own = tempfile.mkdtemp(prefix="uythac-api-metrics-")
        os.environ[MULTIPROC_DIR] = own
    # One pages secret for all the workers (a session signed by one is read by another): the configured one, or a
    # random one made here in the master, which a restart replaces (its officers sign in again).
    settings = replace(settings, pages_secret=settings.pages_secret or secrets.token_urlsafe(32))
    private = tempfile.mkdtemp(prefix="uythac-api-")
    try:
        ApiServer(settings, _Keys(settings.api_keys_file, private)).run()
    finally:
        if os.getpid() == master:  # a worker leaving unwinds this stack too: the folders are the master's
            shutil.rmtree(private, ignore_errors=True)
            if own is not None:
                shutil.rmtree(own, ignore_errors=True)
    return 0
