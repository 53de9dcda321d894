"""PostgreSQL: the store's writer lock, held by one batch's transaction at a time, is freed from a worker frozen
while holding it, wherever in its transaction it froze, and never taken from a worker at work."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import pq

from tests.postgres_server import PostgresServer, libpq_url
from uythac.adapters.sql import statements
from uythac.adapters.sql.store import Limits, Store

SILENT_S = 1


@pytest.fixture
def store(postgres_server: PostgresServer) -> Iterator[Store]:
    store = Store.at(postgres_server.new_store(), Limits(idle_in_transaction_s=SILENT_S))
    try:
        yield store
    finally:
        store.close()


def waits_for_the_writer(store: Store) -> float:
    """Seconds until a unit of work of `store` holds the writer lock (fails past 30 s)."""
    taken = threading.Event()

    def take() -> None:
        with store.unit_of_work() as uow:
            uow.take_writer()
            taken.set()

    started = time.monotonic()
    taker = threading.Thread(target=take, daemon=True)
    taker.start()
    assert taken.wait(timeout=30), "the writer lock was never taken"
    waited = time.monotonic() - started
    taker.join(timeout=10)  # its connection back in the store's pool before the store closes
    assert not taker.is_alive()
    return waited


def alive(store: Store, pid: int) -> bool:
    with psycopg.connect(libpq_url(store.url)) as connection:
        return connection.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() is not None


def test_a_writer_frozen_in_the_middle_of_a_pipeline_is_ended(store: Store) -> None:
    """Frozen after sending a statement of a pipeline (psycopg's `executemany`) without its end: the server waits
    for the rest, reports the session active, and its idle-in-transaction timeout never ends it."""
    frozen = pq.PGconn.connect(libpq_url(store.url).encode())
    for sql in (f"SET idle_in_transaction_session_timeout = '{SILENT_S}s'", "BEGIN", statements.WRITER_LOCK):
        assert frozen.exec_(sql.encode()).status in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)
    frozen.enter_pipeline_mode()
    frozen.send_query_params(b"SELECT 1", None)
    frozen.send_flush_request()
    assert frozen.flush() == 0
    try:
        assert waits_for_the_writer(store) >= SILENT_S  # silent for SILENT_S first
        assert not alive(store, frozen.backend_pid)
    finally:
        frozen.finish()


def test_a_writer_at_work_is_waited_for(store: Store) -> None:
    """A transaction that holds the lock longer than SILENT_S while its server works (here, sleeps) keeps it."""
    holding = threading.Event()

    def work() -> None:
        with psycopg.connect(libpq_url(store.url)) as connection, connection.transaction():
            connection.execute(statements.WRITER_LOCK)
            holding.set()
            connection.execute("SELECT pg_sleep(%s)", (SILENT_S * 3,))

    worker = threading.Thread(target=work)
    worker.start()
    assert holding.wait(timeout=10)
    assert waits_for_the_writer(store) >= SILENT_S * 2
    worker.join(timeout=10)
    assert not worker.is_alive()
