"""SQLite's write-ahead log, copied into the database file by a thread of its own (a "WAL checkpoint").

A checkpoint of a batch's WAL takes ~0.1-0.3 s (the pages and two fsyncs); SQLite's own
`wal_autocheckpoint` runs it inside the commit that crosses the limit, while the batch waits. Here it runs
while the next batch is read and applied (SQLite lets go of Python's lock meanwhile). A PASSIVE checkpoint
never waits for the writer or blocks it; the autocheckpoint stays the backstop and then finds little left
to copy.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)


def changes(connection: Connection) -> int:
    """Rows changed through this SQLite connection since it opened (0 on PostgreSQL)."""
    return int(getattr(connection.connection.dbapi_connection, "total_changes", 0))


class WalCheckpoints:
    """Checkpoints of one SQLite file, on a thread and a connection of their own, soon after commits that
    changed `ROWS` rows between them, at most once a second (a worker's heartbeat alone does not make one)."""

    EVERY_S = 1.0
    ROWS = 10_000  # a batch of events changes ten times as many

    def __init__(self, path: str) -> None:
        self.path = path
        self._changed = 0  # rows committed since the last checkpoint was asked for
        self._lock = threading.Lock()  # an API process may commit from several threads
        self._due = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def committed(self, rows: int) -> None:
        with self._lock:
            self._changed += rows
            if self._changed < self.ROWS:
                return
            self._changed = 0
            if self._thread is None:  # the first time: the file exists, in WAL mode
                self._thread = threading.Thread(target=self._run, name="sqlite-checkpoints", daemon=True)
                self._thread.start()
        self._due.set()

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._closing.set()
            self._due.set()
            thread.join(timeout=30)

    def _run(self) -> None:
        """Checkpoint when due until closed. A failure is logged and the next commit tries again; meanwhile
        the autocheckpoint does the work, as it did before this thread."""
        connection = None
        while self._due.wait() and not self._closing.is_set():
            self._due.clear()
            started = time.monotonic()
            try:
                connection = connection or sqlite3.connect(self.path, isolation_level=None)
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as error:
                log.warning("WAL checkpoint failed; will retry", extra={"error": str(error)})
            self._closing.wait(max(self.EVERY_S - (time.monotonic() - started), 0))
        if connection is not None:
            connection.close()
