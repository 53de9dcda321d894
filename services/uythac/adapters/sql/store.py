"""The store: the source of truth, one SQLAlchemy engine over SQLite (the embedded default) or PostgreSQL.

`Store.at(path or URL)` opens it, giving an empty database the tables of `schema` and refusing a store of
another layout (`layout`: Alembic's revisions; `upgrade` brings an older one up); `unit_of_work()` is one
transaction (`unit_of_work.SqlUnitOfWork`), `reading()` a read. On SQLite it sets the pragmas measured for
this workload and copies the WAL on a thread of its own (`wal`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from uythac.adapters.sql import layout, statements
from uythac.adapters.sql.layout import Layout
from uythac.adapters.sql.unit_of_work import SqlUnitOfWork
from uythac.adapters.sql.wal import WalCheckpoints, changes
from uythac.core.scorecard import Scorecard
from uythac.errors import StoreError, StoreUnavailable
from uythac.service.ports import Rows


@dataclass(frozen=True)
class Limits:
    """What one process may take of a PostgreSQL server (`UYTHAC_DB_*`; SQLite has none of these)."""

    pool_size: int = 5  # connections kept at most; a request or batch past them waits for one
    statement_timeout_s: int = 60  # a statement running longer is cancelled (0: never)
    idle_in_transaction_s: int = 60  # a session silent this long inside a transaction is ended (0: never)


class Store:
    """A SQLAlchemy engine and the schema; `unit_of_work()` opens one transaction."""

    def __init__(self, url: str, limits: Limits = Limits(), prepare: bool = True) -> None:
        """`prepare`: make the tables of an empty database, refuse a store of another layout (False: only
        `layout` and `upgrade` may be used)."""
        self.url, self.limits = url, limits
        self.engine: Engine = _engine(url, limits)
        self._checkpoints: WalCheckpoints | None = None
        self._relay: Connection | None = None  # the session holding the relay lock (PostgreSQL)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            if self.engine.url.database not in (None, "", ":memory:"):
                self._checkpoints = WalCheckpoints(self.engine.url.database)
        try:
            if prepare:
                with unavailable(url):
                    self._create_schema()
        except BaseException:
            self.engine.dispose()
            raise

    def _create_schema(self) -> None:
        """Give an empty database the newest layout, and refuse a store of another one (`layout.prepare`)."""
        with self._locked() as connection:
            layout.prepare(connection, _shown(self.url))

    @contextmanager
    def _locked(self) -> Iterator[Connection]:
        """A connection holding the store's schema lock, committed at the end, one process at a time (a worker and
        a reader may start together).

        Python's sqlite3 runs DDL outside any transaction of its own, so two processes could both find
        a table missing; BEGIN IMMEDIATE takes SQLite's write lock before the check. PostgreSQL: two workers
        creating the same table collide in its catalog; a lock of the store's taken first orders them.
        """
        with self.engine.connect() as connection:
            if self.engine.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.exec_driver_sql(statements.SCHEMA_LOCK)
            yield connection
            connection.commit()

    def layout(self) -> Layout:
        """Where the store's layout stands (`uythac db current`)."""
        with unavailable(self.url), self.engine.connect() as connection:
            return layout.layout(connection)

    def upgrade(self, card: Scorecard) -> Layout:
        """Bring the store to the newest layout, in one transaction (`uythac db upgrade`); where it stood before.
        It holds the writer lock too: a worker left running waits for it rather than commit a batch meanwhile."""
        with unavailable(self.url), self._locked() as connection:
            if self.engine.dialect.name == "postgresql":
                connection.exec_driver_sql(statements.WRITER_LOCK)
            return layout.upgrade(connection, _shown(self.url), card)

    @classmethod
    def at(cls, path: Path | str, limits: Limits = Limits(), prepare: bool = True) -> Store:
        """A SQLite file (WAL), or any SQLAlchemy URL given as is."""
        text = str(path)
        if "://" in text:
            return cls(text, limits, prepare)
        Path(text).parent.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{text}", limits, prepare)

    @contextmanager
    def unit_of_work(self, rows: Rows | None = None) -> Iterator[SqlUnitOfWork]:
        """One transaction; `rows`: loan and group rows as stored, kept by the caller between transactions
        (`service.cache.Cache.rows`), which the unit of work reads before the store and keeps up to date.
        `StoreUnavailable` if the database cannot be reached or stays locked (nothing was committed)."""
        with unavailable(self.url), self.engine.begin() as connection:
            before = changes(connection)
            yield SqlUnitOfWork(connection, rows, self.limits.idle_in_transaction_s)
            changed = changes(connection) - before
        if self._checkpoints is not None:
            self._checkpoints.committed(changed)

    @contextmanager
    def reading(self) -> Iterator[SqlUnitOfWork]:
        """A read (`StoreUnavailable` as for `unit_of_work`)."""
        with unavailable(self.url), self.engine.connect() as connection:
            yield SqlUnitOfWork(connection)

    def analyze(self) -> None:
        """Refresh the statistics SQLite's query planner picks indexes by (a sample: ~0.1 s for a province).

        Run after a replay and now and then by the worker; PostgreSQL's autovacuum does this itself.
        """
        if self.engine.dialect.name != "sqlite":
            return
        with self.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA analysis_limit=1000")
            connection.exec_driver_sql("ANALYZE")
            connection.commit()

    def holds_relay(self) -> bool:
        """Is this process the one that relays the store's outbox? With several workers on one PostgreSQL store,
        one intake at a time sends the outbox rows (each is sent once): the one whose session holds the relay
        lock, which PostgreSQL frees when that session ends (the intake died). A holder whose session has said
        nothing for `idle_in_transaction_s` (frozen, or its worker is) has its session ended by the next asker,
        which takes over. SQLite: always (one worker)."""
        if self.engine.dialect.name != "postgresql":
            return True
        try:
            if self._relay is not None:
                self._relay.exec_driver_sql("SELECT 1")  # still ours: the session lives (and shows it is active)
                return True
            connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            if self.limits.idle_in_transaction_s:
                connection.exec_driver_sql(statements.END_SILENT_RELAY, (self.limits.idle_in_transaction_s,))
            if connection.exec_driver_sql(statements.RELAY_LOCK).scalar():
                self._relay = connection
                return True
            connection.close()
        except OperationalError:  # the database went away, and the lock with it
            self._drop_relay()
        return False

    def _drop_relay(self) -> None:
        relay, self._relay = self._relay, None
        if relay is not None:
            with suppress(OperationalError):
                relay.invalidate()

    def close(self) -> None:
        self._drop_relay()
        if self._checkpoints is not None:
            self._checkpoints.close()
        self.engine.dispose()


DIALECTS = ("sqlite", "postgresql")  # the stores uythac runs on (its SQL and its tests cover these two)


def _engine(url: str, limits: Limits) -> Engine:
    """The engine of a store URL, or a `StoreError` naming what is wrong with the URL or the driver."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as error:
        raise StoreError(
            f"{url!r}: not a store URL ({error}); give a SQLite path or postgresql+psycopg://..."
        ) from error
    if parsed.get_backend_name() not in DIALECTS:
        raise StoreError(
            f"{_shown(url)}: uythac keeps its store in SQLite (a path) or PostgreSQL (postgresql+psycopg://...), "
            f"not {parsed.get_backend_name()}"
        )
    try:
        if parsed.get_backend_name() == "sqlite":
            # check_same_thread=False: kafka-python's rebalance listener reads offsets from its own thread
            return sa.create_engine(parsed, connect_args={"check_same_thread": False})
        engine = sa.create_engine(
            parsed, pool_pre_ping=True, pool_size=limits.pool_size, max_overflow=0, pool_timeout=30
        )
        settings = {
            "statement_timeout": f"{limits.statement_timeout_s}s",
            "idle_in_transaction_session_timeout": f"{limits.idle_in_transaction_s}s",
        }
        sa.event.listen(engine, "connect", partial(_postgres_session, settings))
        return engine
    except (ImportError, sa.exc.NoSuchModuleError) as error:
        raise StoreError(
            f"{_shown(url)}: no driver for it ({error}); PostgreSQL takes postgresql+psycopg://... "
            "(psycopg 3, installed with uythac)"
        ) from error


@contextmanager
def unavailable(url: str) -> Iterator[None]:
    """The driver's "cannot connect", "connection lost" and "database is locked" as `StoreUnavailable`, and any
    error after which SQLAlchemy found the connection gone (PostgreSQL ending an idle transaction's session
    says so with another class of error)."""
    try:
        yield
    except DBAPIError as error:
        if not isinstance(error, OperationalError) and not error.connection_invalidated:
            raise
        raise StoreUnavailable(f"{_shown(url)}: {' '.join(str(error.orig).split())}") from error


def _shown(url: str) -> str:
    """A store's URL without its password, for messages and logs."""
    return sa.make_url(url).render_as_string(hide_password=True)


def _postgres_session(settings: dict[str, str], connection: Any, _record: Any) -> None:
    """The session's limits (`Limits`), set once per new connection (pre-ping reconnects get them too)."""
    with connection.cursor() as cursor:
        for name, value in settings.items():
            cursor.execute(f"SET {name} = '{value}'")
    connection.commit()


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """Settings measured on province-year replays (docs/benchmarks.md)."""
    cursor = connection.cursor()
    # A new file gets 4 KiB pages: with rare checkpoints, the shallower B-trees of bigger pages cost less CPU
    # than small pages, which write fewer bytes for a row changed at a random place.
    cursor.execute("PRAGMA page_size=4096")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across a process crash; WAL keeps it consistent
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB of pages: a fixed bound, whatever the history
    # A checkpoint costs two fsyncs (tens of ms here) whatever its size, and a batch of 60 000 events
    # writes up to ~16 000 pages to the WAL (most are leaves of `seen`, where new ids land at random):
    # checkpoint every other batch or so (a WAL of up to ~170 MiB on disk), not after each one as with
    # the default 1000 pages. `wal.WalCheckpoints` copies the WAL on its own thread after each batch; this is
    # the backstop (a commit that crosses it checkpoints what that thread has not copied yet).
    cursor.execute("PRAGMA wal_autocheckpoint=25000")
    cursor.close()
