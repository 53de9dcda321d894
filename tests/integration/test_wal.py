"""A SQLite store copies its WAL into the database file on a thread of its own, soon after a commit."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from uythac.adapters.sql.store import Store
from uythac.adapters.sql.wal import WalCheckpoints


def _checkpoint_threads() -> int:
    """How many run now (other tests' stores may still have theirs)."""
    return sum(thread.name == "sqlite-checkpoints" for thread in threading.enumerate())


def test_a_commit_is_checkpointed_soon_by_a_thread_that_stops_with_the_store(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    running = _checkpoint_threads()
    store = Store.at(path)
    before = path.stat().st_size
    with store.unit_of_work() as uow:  # ~1 000 pages: far below SQLite's own autocheckpoint (25 000)
        uow.claim({f"event-{i:07d}": bytes(16) for i in range(50_000)})
    deadline = time.monotonic() + 10
    while path.stat().st_size == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.stat().st_size > before + 1_000_000  # the pages are in the database file, not only the WAL
    assert _checkpoint_threads() == running + 1
    store.close()
    assert _checkpoint_threads() == running


def test_small_commits_such_as_a_heartbeat_start_no_checkpoints(tmp_path: Path) -> None:
    Store.at(tmp_path / "w.db").close()
    running = _checkpoint_threads()
    store = Store.at(tmp_path / "w.db")
    for beat in range(100):
        with store.unit_of_work() as uow:
            uow.set_meta("worker_heartbeat", str(beat))
    assert _checkpoint_threads() == running
    store.close()


def test_a_failed_checkpoint_is_logged_and_tried_again_when_due_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="uythac.adapters.sql.store")
    checkpoints = WalCheckpoints(str(tmp_path / "missing" / "f.db"))  # a file that cannot be opened
    for attempt in (1, 2):
        checkpoints.committed(WalCheckpoints.ROWS)
        deadline = time.monotonic() + 10
        while len(caplog.records) < attempt and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [r.getMessage() for r in caplog.records] == ["WAL checkpoint failed; will retry"] * 2  # lived on
    checkpoints.close()
