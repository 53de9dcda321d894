"""The store: the source of truth, in SQL that runs on SQLite (embedded default) and PostgreSQL.

Tables hold order-independent summaries (`ledger.Loan`, `ledger.Group`), the unit counts, every
inspection, the event ids already accepted (durable dedupe) and small metadata (the clock, the
scorecard in use). One `UnitOfWork` is one transaction: whatever a batch changes commits together or
not at all.

Layout, for speed where most events land (a repayment changes three values of one loan):
- loans and groups have a small integer key `n` of the store's own (rowid tables in SQLite), beside their
  ids; a loan's obligation (its unit, deadline, status...) is in `loans`, what its repayments change is in
  `loan_balances`, a narrow table: a repayment rewrites a short row, not the whole loan and its indexes;
- dates are day numbers (`Day`: days since 1970-01-01), 2–3 bytes in a row or an index entry instead of
  10 characters. In SQL, `date(d * 86400, 'unixepoch')` (SQLite) or `DATE '1970-01-01' + d`
  (PostgreSQL) shows one as a date.
"""

from __future__ import annotations

import gzip
import logging
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from datetime import date
from functools import cache, cached_property, lru_cache
from itertools import compress
from operator import attrgetter, itemgetter, ne
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from uythac.errors import StoreError
from uythac.ledger import Counts, Group, Loan, Unit, shared
from uythac.report import FLAG_KEYS

log = logging.getLogger(__name__)
LAYOUT = "2"  # of the tables below; a store made with another layout is refused (replay into a new one)
EPOCH = date(1970, 1, 1).toordinal()


def day_number(day: date) -> int:
    """A date as the store keeps it: days since 1970-01-01."""
    return day.toordinal() - EPOCH


@lru_cache(maxsize=8192)
def day_of(number: int) -> date:
    """A day number read from the store as a date (most are recent days: remembered, and shared)."""
    return shared(date.fromordinal(number + EPOCH))


@lru_cache(maxsize=8192)
def iso_of(number: int) -> str:
    return day_of(number).isoformat()


class Day(sa.TypeDecorator[date]):
    """A date column kept as a day number; SQLAlchemy converts in both directions (the hot paths below run
    on the driver and convert with `day_number` and `day_of` themselves)."""

    impl = sa.Integer
    cache_ok = True

    def process_bind_param(self, value: date | None, dialect: sa.Dialect) -> int | None:
        return None if value is None else day_number(value)

    def process_result_value(self, value: int | None, dialect: sa.Dialect) -> date | None:
        return None if value is None else day_of(value)


def _no_raw_dates(value: date) -> None:
    """A date handed to the driver as it is would be compared as text with day numbers: refuse it."""
    raise TypeError(f"{value!r} given to the store's driver: dates are kept as numbers (store.day_number)")


sqlite3.register_adapter(date, _no_raw_dates)

metadata = sa.MetaData()
ID = sa.String(64)
AREA = sa.String(32)
KEY = sa.Integer  # `n`: the store's own key of a loan or a group (SQLite: the rowid)

meta = sa.Table("meta", metadata, sa.Column("key", sa.String(64), primary_key=True), sa.Column("value", sa.Text))
DIGEST_SIZE = 16  # bytes of an event's digest (`validation.digest`)
seen = sa.Table(
    "seen",
    metadata,
    sa.Column("event_id", ID, primary_key=True),
    sa.Column("digest", sa.LargeBinary(DIGEST_SIZE), nullable=False),
    sqlite_with_rowid=False,
)
loans = sa.Table(  # a loan's obligation; what repayments change is in loan_balances
    "loans",
    metadata,
    sa.Column("n", KEY, primary_key=True, autoincrement=False),
    sa.Column("loan_id", ID, nullable=False, unique=True),
    sa.Column("district_id", AREA),
    sa.Column("commune_id", AREA),
    sa.Column("org", sa.String(4)),
    sa.Column("group_id", ID),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("disbursed_on", Day),
    sa.Column("disbursal_event", ID),
    sa.Column("deadline", Day),
    sa.Column("overdue_principal", sa.BigInteger, nullable=False),
    sa.Column("overdue_on", Day),
    sa.Column("overdue_event", ID),
    sa.Column("status", sa.String(16)),
    sa.Column("inspected_on", Day),
    sa.Column("late_inspection_on", Day),
    sa.Column("misuse", sa.Boolean, nullable=False),
    sa.Index("loans_unit", "commune_id", "org"),
    # Flags and worklists by status, then area, then deadline, then loan_id: a commune's or a district's
    # flags are a short range of one index, not a scan of the province's window of flags.
    sa.Index("loans_status_unit", "status", "commune_id", "org", "deadline", "loan_id"),
    sa.Index("loans_status_district", "status", "district_id", "commune_id", "org", "deadline", "loan_id"),
)
loan_balances = sa.Table(  # what a loan's repayments change, and when its share next changes by itself
    "loan_balances",
    metadata,
    sa.Column("n", KEY, primary_key=True, autoincrement=False),
    sa.Column("principal_paid", sa.BigInteger, nullable=False),
    sa.Column("last_repayment_on", Day),
    sa.Column("next_change", Day),
    sa.Index("loan_balances_next_change", "next_change"),
)
groups = sa.Table(
    "groups",
    metadata,
    sa.Column("n", KEY, primary_key=True, autoincrement=False),
    sa.Column("group_id", ID, nullable=False, unique=True),
    sa.Column("district_id", AREA),
    sa.Column("commune_id", AREA),
    sa.Column("org", sa.String(4)),
    sa.Column("registered_on", Day),
    sa.Column("registration_event", ID),
    sa.Column("closed_on", Day),
    sa.Column("last_periodic_on", Day),
    sa.Column("last_deposit_on", Day),
    sa.Column("misuse", sa.Boolean, nullable=False),
    sa.Column("next_change", Day),
    sa.Index("groups_next_change", "next_change"),
)
inspections = sa.Table(
    "inspections",
    metadata,
    sa.Column("event_id", ID, primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("loan_id", ID),
    sa.Column("group_id", ID),
    sa.Column("inspected_on", Day, nullable=False),
    sa.Column("result", sa.String(16), nullable=False),
    sa.Index("inspections_loan", "loan_id"),
)
units = sa.Table(
    "units",
    metadata,
    sa.Column("commune_id", AREA, primary_key=True),
    sa.Column("org", sa.String(4), primary_key=True),
    sa.Column("district_id", AREA, nullable=False),
    sa.Column("district_day", Day, nullable=False),
    sa.Column("district_event", ID, nullable=False),
    *(sa.Column(name, sa.BigInteger, nullable=False) for name in Counts._fields),
)

offsets = sa.Table(
    "offsets",
    metadata,
    sa.Column("topic", sa.String(249), primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("next_offset", sa.BigInteger, nullable=False),
)
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("topic", sa.String(249), nullable=False),
    sa.Column("key", sa.LargeBinary),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("headers", sa.Text, nullable=False),  # JSON list of [name, base64 value] pairs
)
OUTBOX_FIELDS = ("topic", "key", "value", "headers")  # a message as `add_outbox` takes it
OutboxRow = tuple[str, bytes | None, bytes, str]  # (topic, key, value, headers), as `add_outbox` takes it
StoredOutboxRow = tuple[int, str, bytes | None, bytes, str]  # (id, topic, key, value, headers), as kept
snapshots = sa.Table(  # the SPEC §6 report at each month end the clock passed (gzip'd JSON), for ?as_of=
    "snapshots",
    metadata,
    sa.Column("as_of", Day, primary_key=True),
    sa.Column("report", sa.LargeBinary, nullable=False),
)


@dataclass(frozen=True, eq=False)
class _Kind:
    """Where the fields of one kind of entity (`ledger.Loan`, `ledger.Group`) lie: each in one of `tables`,
    all keyed by `n`; the first table holds the entity's id (its first field), unique."""

    name: str  # what `UnitOfWork._loaded` files its rows under
    make: Callable[..., Any]
    tables: tuple[sa.Table, ...]
    common: frozenset[str]  # fields with few distinct values (areas, status): read as shared strings

    @cached_property
    def fields(self) -> tuple[str, ...]:
        """The entity's stored fields, in order (those marked `NOT_STORED` come last and are left out)."""
        return tuple(f.name for f in dataclass_fields(self.make) if f.metadata.get("stored", True))  # type: ignore[arg-type]

    @cached_property
    def row(self) -> Callable[[Any], tuple[Any, ...]]:
        """An entity's fields as a tuple, in order."""
        return attrgetter(*self.fields)

    @cached_property
    def columns(self) -> tuple[sa.Column[Any], ...]:
        """The column of each field, in field order."""
        where = {c.name: c for table in self.tables for c in table.columns if c.name != "n"}
        assert set(where) == set(self.fields), f"{self.name}: the tables must hold exactly the fields"
        return tuple(where[name] for name in self.fields)

    @cached_property
    def days(self) -> frozenset[int]:
        """Positions of the fields kept as day numbers."""
        return frozenset(i for i, column in enumerate(self.columns) if isinstance(column.type, Day))

    @cached_property
    def shared_strings(self) -> tuple[int, ...]:
        """Positions of the `common` fields."""
        return tuple(i for i, name in enumerate(self.fields) if name in self.common)

    @cached_property
    def everything(self) -> tuple[tuple[sa.Table, tuple[int, ...]], ...]:
        return self.placed(tuple(range(len(self.fields))))

    @cache  # noqa: B019 (two kinds, a few dozen shapes of change each)
    def placed(self, positions: tuple[int, ...]) -> tuple[tuple[sa.Table, tuple[int, ...]], ...]:
        """These field positions, grouped by the table that holds them."""
        grouped = ((table, tuple(i for i in positions if self.columns[i].table is table)) for table in self.tables)
        return tuple((table, mine) for table, mine in grouped if mine)


_AREA = frozenset({"district_id", "commune_id", "org"})
LOANS = _Kind("loans", Loan, (loans, loan_balances), _AREA | {"group_id", "status"})
GROUPS = _Kind("groups", Group, (groups,), _AREA)
CHUNK = 2048


class Store:
    """A SQLAlchemy engine and the schema; `unit_of_work()` opens one transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite"):
            # check_same_thread=False: kafka-python's rebalance listener reads offsets from its own thread
            self.engine: Engine = sa.create_engine(url, connect_args={"check_same_thread": False})
        else:
            self.engine = sa.create_engine(url)
        self._checkpoints: _Checkpoints | None = None
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            if self.engine.url.database not in (None, "", ":memory:"):
                self._checkpoints = _Checkpoints(self.engine.url.database)
        self._create_schema()

    def _create_schema(self) -> None:
        """Create the missing tables and indexes, one process at a time (a worker and a reader may start
        together).

        Python's sqlite3 runs DDL outside any transaction of its own, so two processes could both find
        a table missing; BEGIN IMMEDIATE takes SQLite's write lock before the check.
        """
        with self.engine.connect() as connection:
            if self.engine.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            if sa.inspect(connection).has_table("meta"):
                layout = connection.execute(sa.select(meta.c.value).where(meta.c.key == "layout")).scalar()
                if layout != LAYOUT:
                    raise StoreError(
                        f"{self.url}: made by an older uythac (table layout {layout or 1}, this one reads "
                        f"{LAYOUT}): replay the events into a new store (or let the worker rebuild it from Kafka)"
                    )
            metadata.create_all(connection)
            for table in metadata.sorted_tables:  # and indexes added since the store was made
                for index in table.indexes:
                    index.create(connection, checkfirst=True)
            dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
            connection.execute(dialect.insert(meta).values(key="layout", value=LAYOUT).on_conflict_do_nothing())
            connection.commit()

    @classmethod
    def at(cls, path: Path | str) -> Store:
        """A SQLite file (WAL), or any SQLAlchemy URL given as is."""
        text = str(path)
        if "://" in text:
            return cls(text)
        Path(text).parent.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{text}")

    @contextmanager
    def unit_of_work(self, rows: dict[str, dict[str, tuple[Any, ...]]] | None = None) -> Iterator[UnitOfWork]:
        """One transaction; `rows`: loan and group rows as stored, kept by the caller between transactions
        (`cache.Cache.rows`), which the unit of work reads before the store and keeps up to date."""
        with self.engine.begin() as connection:
            before = _changes(connection)
            yield UnitOfWork(connection, rows)
            changed = _changes(connection) - before
        if self._checkpoints is not None:
            self._checkpoints.committed(changed)

    @contextmanager
    def reading(self) -> Iterator[UnitOfWork]:
        with self.engine.connect() as connection:
            yield UnitOfWork(connection)

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

    def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.close()
        self.engine.dispose()


def _changes(connection: Connection) -> int:
    """Rows changed through this SQLite connection since it opened (0 on PostgreSQL)."""
    return int(getattr(connection.connection.dbapi_connection, "total_changes", 0))


class _Checkpoints:
    """SQLite: the WAL is copied into the database file by a thread of its own, with a connection of its own,
    soon after commits that changed `ROWS` rows between them, at most once a second (a worker's heartbeat
    alone does not make one). A checkpoint of a batch's WAL takes ~0.1-0.3 s (the pages and two fsyncs);
    SQLite's own `wal_autocheckpoint` runs it inside the commit that crosses the limit, while the batch waits.
    Here it runs while the next batch is read and applied (SQLite lets go of Python's lock meanwhile). A
    PASSIVE checkpoint never waits for the writer or blocks it; the autocheckpoint stays the backstop and
    then finds little left to copy."""

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


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """Settings measured on a province-year replay (1.2 M events: 92 s → 70 s of CPU with the code)."""
    cursor = connection.cursor()
    # A new file gets 4 KiB pages. 1 KiB pages write fewer bytes for a row changed at a random place (a
    # loan, a seen event id), which paid while the WAL was checkpointed after every batch; with rare
    # checkpoints the shallower B-trees of bigger pages cost less CPU (replay: −10% CPU).
    cursor.execute("PRAGMA page_size=4096")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across a process crash; WAL keeps it consistent
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB of pages: a fixed bound, whatever the history
    # A checkpoint costs two fsyncs (tens of ms here) whatever its size, and a batch of 60 000 events
    # writes up to ~16 000 pages to the WAL (most are leaves of `seen`, where new ids land at random):
    # checkpoint every other batch or so (a WAL of up to ~170 MiB on disk), not after each one as with
    # the default 1000 pages. Since `_Checkpoints` copies the WAL on its own thread after each batch, this is
    # the backstop (a commit that crosses it checkpoints what that thread has not copied yet).
    cursor.execute("PRAGMA wal_autocheckpoint=25000")
    cursor.close()


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


class UnitOfWork:
    """Reads and writes of one transaction, in the vocabulary of the domain."""

    def __init__(self, connection: Connection, rows: dict[str, dict[str, tuple[Any, ...]]] | None = None) -> None:
        self.connection = connection
        # rows as stored, by kind and id: (n, the entity's fields in order)
        self._loaded = {"loans": {}, "groups": {}} if rows is None else rows
        self._keys: dict[str, int] = {}  # the last `n` given out, by kind

    # metadata -----------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        value = self.connection.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar()
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        self._run_many(_upsert(self.connection.dialect, meta), [(key, value)])

    def clock(self) -> date | None:
        value = self.get_meta("clock")
        return None if value is None else date.fromisoformat(value)

    def set_clock(self, today: date) -> None:
        self.set_meta("clock", today.isoformat())

    def next_version(self) -> None:
        """Count one more committed change of the scoring state (readers key what they cache by it)."""
        self.set_meta("version", str(int(self.get_meta("version") or 0) + 1))

    def claim_scorecard(self, digest: str) -> None:
        """Bind the store to one scorecard: its windows are baked into every stored count."""
        current = self.get_meta("scorecard")
        if current is None:
            self.set_meta("scorecard", digest)
        elif current != digest:
            raise StoreError(
                f"the store was built with scorecard {current}, not {digest}: "
                "use the same scorecard file or a new store"
            )

    # dedupe -------------------------------------------------------------------------------------
    def digests(self, event_ids: Sequence[str]) -> dict[str, bytes]:
        return {event_id: bytes(digest) for event_id, digest in self._rows_in(seen, ("event_id", "digest"), event_ids)}

    def claim(self, firsts: Mapping[str, bytes]) -> dict[str, bytes]:
        """Record each (event id, digest) as seen, unless the id was seen before; the digests stored for
        those that were."""
        if self.connection.dialect.name == "sqlite":
            return self._claim_at_once(firsts)
        return self._claim_one_by_one(firsts)

    def _claim_at_once(self, firsts: Mapping[str, bytes]) -> dict[str, bytes]:
        """SQLite: two statements for the whole batch, the ids as one JSON array and the digests as one block of
        bytes (`DIGEST_SIZE` each, in the same order): the known ids are looked up, then the others inserted in
        key order, all inside SQLite and without Python's lock (1.6 µs an id for the bench province, against
        1.9 µs for an INSERT per id, most of whose difference was Python's own cost per statement)."""
        digests = b"".join(firsts.values())
        if len(digests) != DIGEST_SIZE * len(firsts):
            raise ValueError(f"digest: every one must be {DIGEST_SIZE} bytes")
        array = orjson.dumps(list(firsts))
        if b"\\u0000" in array:  # SQLite would cut such an id short (validation allows none: `ID_PATTERN`)
            raise ValueError("event_id: a NUL character cannot be stored")
        cursor = self.connection.connection.cursor()
        try:
            (found,) = cursor.execute(_KNOWN_IDS, (array,)).fetchone()
            known = {event_id: bytes.fromhex(digest) for event_id, digest in orjson.loads(found)}
            cursor.execute(_NEW_IDS, (array, digests))
        finally:
            cursor.close()
        return known

    def _claim_one_by_one(self, firsts: Mapping[str, bytes]) -> dict[str, bytes]:
        """One INSERT that does nothing on a known id, per id. (Over a network, PostgreSQL would want the ids
        in one statement with RETURNING instead.)"""
        sql, names = _insert_new(self.connection.dialect, seen)
        cursor = self.connection.connection.cursor()
        known = []
        try:
            # In key order, each search starts where the last one went. (The ids alone: sorting (id, digest)
            # pairs costs three times as much.)
            for event_id in sorted(firsts):
                cursor.execute(sql, _bound(names, (event_id, firsts[event_id])))
                if cursor.rowcount == 0:
                    known.append(event_id)
        finally:
            cursor.close()
        return self.digests(known)

    # loans and groups ---------------------------------------------------------------------------
    def loans(self, loan_ids: Sequence[str]) -> dict[str, Loan]:
        return self._read(LOANS, loan_ids)

    def groups(self, group_ids: Sequence[str]) -> dict[str, Group]:
        return self._read(GROUPS, group_ids)

    def due_loan_ids(self, through: date) -> list[str]:
        """The loans whose contribution can change on or before `through` (found by the next_change index)."""
        return self._due(LOANS, through)

    def due_group_ids(self, through: date) -> list[str]:
        return self._due(GROUPS, through)

    def open_obligations(self) -> int:
        """Loans still waiting for their post-disbursement inspection (pending or due soon)."""
        query = sa.select(sa.func.count()).select_from(loans).where(loans.c.status.in_(("pending", "due_soon")))
        return int(self.connection.execute(query).scalar_one())

    def save_loans(self, changed: Iterable[Loan]) -> None:
        self._save(LOANS, changed)

    def save_groups(self, changed: Iterable[Group]) -> None:
        self._save(GROUPS, changed)

    # inspections --------------------------------------------------------------------------------
    def add_inspections(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            self.connection.execute(inspections.insert(), list(rows))

    def loan_inspections(self, loan_ids: Sequence[str]) -> list[Mapping[str, Any]]:
        """The post-disbursement inspections of these loans, as rows like `add_inspections` takes."""
        names = ("loan_id", *(column.name for column in inspections.columns if column.name != "loan_id"))
        rows = (dict(zip(names, row, strict=True)) for row in self._rows_in(inspections, names, loan_ids))
        return [
            {**row, "inspected_on": day_of(row["inspected_on"])} for row in rows if row["kind"] == "post_disbursement"
        ]

    # units --------------------------------------------------------------------------------------
    def units(self) -> dict[tuple[str, str], Unit]:
        found = {}
        for row in self.connection.execute(sa.select(units)):
            unit = Unit(
                row.commune_id,
                row.org,
                row.district_id,
                row.district_day,
                row.district_event,
                Counts(*(getattr(row, name) for name in Counts._fields)),
            )
            found[(unit.commune_id, unit.org)] = unit
        return found

    def save_units(self, changed: Iterable[Unit]) -> None:
        rows = [
            (
                unit.commune_id,
                unit.org,
                unit.district_id,
                day_number(unit.district_day),
                unit.district_event,
                *unit.counts,
            )
            for unit in changed
        ]
        self._run_many(_upsert(self.connection.dialect, units), rows)

    # month-end reports --------------------------------------------------------------------------
    def keep_report(self, as_of: date, report: Mapping[str, Any], months_kept: int) -> None:
        """Keep the report at a month end the clock passed (gzip'd JSON, ~0.5 MB for a province), and
        only the latest `months_kept` of them."""
        blob = gzip.compress(orjson.dumps(report), 1)
        self._run_many(_upsert(self.connection.dialect, snapshots), [(day_number(as_of), blob)])
        older = sa.select(snapshots.c.as_of).order_by(snapshots.c.as_of.desc()).offset(months_kept).limit(1)
        cut = self.connection.execute(older).scalar()
        if cut is not None:
            self.connection.execute(sa.delete(snapshots).where(snapshots.c.as_of <= cut))

    # queries for reports ------------------------------------------------------------------------
    def flag_entries(self, after: date, before: date) -> list[dict[str, Any]]:
        """Flags: the missed loans whose deadline lies in (after, before), as report entries in report
        order, rows straight from the DBAPI cursor (a month-end report reads ten thousand of them)."""
        bounds = ["missed", day_number(after), day_number(before)]
        entries = []
        for loan_id, district_id, commune_id, org, disbursed_on, deadline, late in driver_rows(
            self.connection, _select_flags(self.connection.dialect), bounds
        ):
            entries.append(
                {
                    "loan_id": loan_id,
                    "district_id": district_id,
                    "commune_id": commune_id,
                    "org": org,
                    "disbursed_on": iso_of(disbursed_on),
                    "deadline": iso_of(deadline),
                    "late_inspection_on": None if late is None else iso_of(late),
                }
            )
        return entries

    # Kafka offsets (the worker's source of truth) ----------------------------------------------
    def offsets(self, topic: str) -> dict[int, int]:
        """Next offset to read per partition, as committed with the state it produced."""
        query = sa.select(offsets.c.partition, offsets.c.next_offset).where(offsets.c.topic == topic)
        return {row.partition: row.next_offset for row in self.connection.execute(query)}

    def advance_offsets(self, topic: str, moves: dict[int, tuple[int | None, int]]) -> None:
        """Move each partition from its expected offset to the new one, or fail the whole transaction.

        The condition on the expected offset fences a worker that lost its partitions but still writes:
        its update matches no row and the batch rolls back.
        """
        for partition, (expected, new) in moves.items():
            if expected is None:
                self.connection.execute(
                    offsets.insert(), [{"topic": topic, "partition": partition, "next_offset": new}]
                )
                continue
            result = self.connection.execute(
                offsets.update()
                .where(offsets.c.topic == topic, offsets.c.partition == partition, offsets.c.next_offset == expected)
                .values(next_offset=new)
            )
            if result.rowcount != 1:
                raise StoreError(f"{topic}[{partition}] moved past offset {expected}: another worker owns it")

    # outbox ---------------------------------------------------------------------------------------
    def add_outbox(self, rows: Sequence[OutboxRow]) -> None:
        """Messages to send after commit, as (topic, key, value, headers) rows (`outbox.Message.row`)."""
        self._run_many(_insert(self.connection.dialect, outbox, OUTBOX_FIELDS), rows)

    def pending_outbox(self, limit: int) -> list[StoredOutboxRow]:
        """The oldest `limit` rows: (id, topic, key, value, headers). PostgreSQL skips rows another worker
        has locked."""
        return driver_rows(self.connection, _select_outbox(self.connection.dialect, limit), ())

    def remove_outbox(self, ids: Sequence[int]) -> None:
        for chunk in _chunks(ids):
            self.connection.execute(outbox.delete().where(outbox.c.id.in_(chunk)))

    def outbox_backlog(self) -> int:
        return int(self.connection.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one())

    # --------------------------------------------------------------------------------------------
    # bulk rows: SQL generated by SQLAlchemy from the tables above, run straight on the DBAPI cursor ---
    def _rows_in(self, table: sa.Table, columns: Sequence[str], keys: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
        """Rows whose first column is one of `keys`, as plain tuples of `columns` (in chunks)."""
        cursor = self.connection.connection.cursor()
        try:
            for chunk in _chunks(keys):
                size = 1 << (len(chunk) - 1).bit_length()  # a few statement sizes, each compiled once
                padded = list(chunk) + [chunk[0]] * (size - len(chunk))
                cursor.execute(_select_in(self.connection.dialect, table, tuple(columns), size), padded)
                yield from cursor.fetchall()
        finally:
            cursor.close()

    def _read(self, kind: _Kind, keys: Sequence[str]) -> dict[str, Any]:
        """Entities by id, with their rows remembered as stored (`_save` writes back only what changed)."""
        stored, found = self._loaded[kind.name], {}
        cursor = self.connection.connection.cursor()
        try:
            for chunk in _chunks(keys):
                size = 1 << (len(chunk) - 1).bit_length()  # a few statement sizes, each compiled once
                padded = list(chunk) + [chunk[0]] * (size - len(chunk))
                cursor.execute(_select_entities(self.connection.dialect, kind, size), padded)
                for n, *values in cursor.fetchall():
                    for i in kind.days:
                        if values[i] is not None:
                            values[i] = day_of(values[i])
                    for i in kind.shared_strings:
                        if values[i] is not None:
                            values[i] = sys.intern(values[i])
                    row = tuple(values)
                    stored[row[0]] = (n, row)
                    found[row[0]] = kind.make(*row)
        finally:
            cursor.close()
        return found

    def _due(self, kind: _Kind, through: date) -> list[str]:
        rows = driver_rows(self.connection, _select_due(self.connection.dialect, kind), [day_number(through)])
        return [row[0] for row in rows]

    def _save(self, kind: _Kind, entities: Iterable[Any]) -> None:
        """Insert the new entities; in the others update only the columns that changed, each in its own
        table: a repayment rewrites three values of `loan_balances` and leaves `loans` and its indexes alone."""
        stored, row_of, every = self._loaded[kind.name], kind.row, range(len(kind.fields))
        inserts: list[tuple[int, tuple[Any, ...]]] = []
        updates: dict[tuple[int, ...], list[tuple[int, tuple[Any, ...]]]] = {}  # changed positions → (n, row)
        for entity in entities:
            row = row_of(entity)
            before = stored.get(row[0])
            if before is None:
                n = self._new_key(kind)
                inserts.append((n, row))
                stored[row[0]] = (n, row)
            elif row != before[1]:
                n = before[0]
                updates.setdefault(tuple(compress(every, map(ne, row, before[1]))), []).append((n, row))
                stored[row[0]] = (n, row)
        dialect = self.connection.dialect
        if inserts:
            for table, positions in kind.everything:
                pick = _picker(positions, kind.days)
                names = ("n", *(kind.fields[i] for i in positions))
                self._run_many(_insert(dialect, table, names), [(n, *pick(row)) for n, row in inserts])
        for changed, rows in updates.items():
            for table, positions in kind.placed(changed):
                pick = _picker(positions, kind.days)
                statement = _update(dialect, table, tuple(kind.fields[i] for i in positions))
                self._run_many(statement, [(*pick(row), n) for n, row in rows])

    def _new_key(self, kind: _Kind) -> int:
        """The next `n` of a kind (one writer at a time: the largest so far, plus one)."""
        last = self._keys.get(kind.name)
        if last is None:
            query = sa.select(sa.func.coalesce(sa.func.max(kind.tables[0].c.n), 0))
            last = int(self.connection.execute(query).scalar_one())
        self._keys[kind.name] = last + 1
        return last + 1

    def _run_many(self, statement: tuple[str, tuple[str, ...] | None], rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        sql, names = statement
        cursor = self.connection.connection.cursor()
        try:
            cursor.executemany(sql, rows if names is None else [dict(zip(names, row, strict=True)) for row in rows])
        finally:
            cursor.close()


def driver_rows(
    connection: Connection, sql: str, parameters: Sequence[Any] | Mapping[str, Any]
) -> list[tuple[Any, ...]]:
    """All rows of one statement, run on the DBAPI cursor under `connection` (in its transaction): for SQL
    compiled once, SQLAlchemy's own execution costs tens of µs of Python a statement, and more per row."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, parameters)
        return list(cursor.fetchall())
    finally:
        cursor.close()


@cache
def _picker(positions: tuple[int, ...], days: frozenset[int]) -> Callable[[tuple[Any, ...]], Sequence[Any]]:
    """The values of a row at `positions`, as the store takes them: those at `days` as day numbers."""
    convert = [i for i, position in enumerate(positions) if position in days]
    if len(positions) > 1 and not convert:
        whole: Callable[[tuple[Any, ...]], Sequence[Any]] = itemgetter(*positions)
        return whole
    get = itemgetter(*positions)
    single = len(positions) == 1  # itemgetter of one position gives the value itself

    def pick(part: tuple[Any, ...]) -> Sequence[Any]:
        values = [get(part)] if single else list(get(part))
        for i in convert:
            if values[i] is not None:
                values[i] = day_number(values[i])
        return values

    return pick


@cache
def _select_entities(dialect: sa.Dialect, kind: _Kind, size: int) -> str:
    """`n` and every field of the entities with one of `size` ids, from all of the kind's tables."""
    first = kind.tables[0]
    joined: sa.FromClause = first
    for table in kind.tables[1:]:
        joined = joined.join(table, table.c.n == first.c.n)
    key = kind.columns[0]
    query = sa.select(first.c.n, *kind.columns).select_from(joined)
    query = query.where(key.in_([sa.bindparam(f"k{i}") for i in range(size)]))
    return _positional(query, dialect)


@cache
def _select_in(dialect: sa.Dialect, table: sa.Table, columns: tuple[str, ...], size: int) -> str:
    key = table.c[columns[0]]
    query = sa.select(*(table.c[name] for name in columns)).where(key.in_([sa.bindparam(f"k{i}") for i in range(size)]))
    return _positional(query, dialect)


@cache
def _select_due(dialect: sa.Dialect, kind: _Kind) -> str:
    """The ids of a kind's entities whose next_change is on or before :through."""
    first, due = kind.tables[0], next(t for t in kind.tables if "next_change" in t.c)
    query = sa.select(kind.columns[0]).where(due.c.next_change <= sa.bindparam("through"))
    if due is not first:
        query = query.select_from(due.join(first, first.c.n == due.c.n))
    return _positional(query, dialect)


@cache
def _select_outbox(dialect: sa.Dialect, limit: int) -> str:
    """The oldest `limit` outbox rows (the number written in); on PostgreSQL, those no other transaction has
    locked."""
    query = sa.select(outbox.c.id, *(outbox.c[name] for name in OUTBOX_FIELDS)).order_by(outbox.c.id).limit(limit)
    if dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


@cache
def _select_flags(dialect: sa.Dialect) -> str:
    """The flag entries' columns (dates as text) of the missed loans whose deadline lies in (after, before)."""
    query = (
        sa.select(*(loans.c[name] for name in FLAG_KEYS))
        .where(loans.c.status == "missed", loans.c.deadline > sa.bindparam("after"))
        .where(loans.c.deadline < sa.bindparam("before"))
        .order_by(loans.c.commune_id, loans.c.org, loans.c.loan_id)
    )
    return _positional(query, dialect)


Statement = tuple[str, tuple[str, ...] | None]  # SQL, and for a named paramstyle the parameter names


def _bound(names: tuple[str, ...] | None, row: Sequence[Any]) -> Sequence[Any] | dict[str, Any]:
    """One row's values as a statement takes them: in order, or by name."""
    return row if names is None else dict(zip(names, row, strict=True))


@cache
def _insert(dialect: sa.Dialect, table: sa.Table, names: tuple[str, ...]) -> Statement:
    """INSERT of these columns, parameters in that order."""
    return _parameters(table.insert().values({name: sa.bindparam(name) for name in names}), dialect, names)


@cache
def _insert_new(dialect: sa.Dialect, table: sa.Table) -> Statement:
    """INSERT of a whole row that does nothing if its key is there already."""
    statement = (postgresql if dialect.name == "postgresql" else sqlite).insert(table).on_conflict_do_nothing()
    return _parameters(statement, dialect, tuple(column.name for column in table.columns))


# `claim` on SQLite: ?1 the batch's new ids, a JSON array; ?2 their digests, end to end in the same order.
# The known ones come back as one row (a JSON array of [id, hex digest]): Python's lock is taken once, not once
# a row (a thread decoding the batch meanwhile would hold each row up for up to 5 ms).
_KNOWN_IDS = (
    "SELECT json_group_array(json_array(seen.event_id, hex(seen.digest))) "
    "FROM json_each(?1) AS batch JOIN seen ON seen.event_id = batch.value"
)
_NEW_IDS = (
    "INSERT INTO seen (event_id, digest) "
    f"SELECT value, substr(?2, key * {DIGEST_SIZE} + 1, {DIGEST_SIZE}) FROM json_each(?1) WHERE true "
    "ORDER BY value ON CONFLICT DO NOTHING"  # in key order, each search starts where the one before ended
)


@cache
def _upsert(dialect: sa.Dialect, table: sa.Table) -> Statement:
    """INSERT of whole rows (columns in table order) that updates the row already there with that key."""
    statement = (postgresql if dialect.name == "postgresql" else sqlite).insert(table)
    keys = [column.name for column in table.primary_key]
    updates = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    upsert = statement.on_conflict_do_update(index_elements=keys, set_=updates)
    return _parameters(upsert, dialect, tuple(column.name for column in table.columns))


@cache
def _update(dialect: sa.Dialect, table: sa.Table, names: tuple[str, ...]) -> Statement:
    """UPDATE of these columns by the key `n`; parameters in that order, then the key."""
    statement = table.update().where(table.c.n == sa.bindparam("key_n")).values({n: sa.bindparam(n) for n in names})
    return _parameters(statement, dialect, (*names, "key_n"))


def _parameters(statement: Any, dialect: sa.Dialect, names: tuple[str, ...]) -> Statement:
    compiled = statement.compile(dialect=dialect)
    if compiled.positional:
        assert tuple(compiled.positiontup or ()) == names, "parameters must come in the order given"
        return str(compiled), None
    return str(compiled), names


def _positional(query: sa.Select[Any], dialect: sa.Dialect) -> str:
    compiled = query.compile(dialect=dialect)
    sql = str(compiled)
    if compiled.positional:
        return sql
    for name in compiled.params:  # pyformat (psycopg): %(k0)s → %s, in the order written
        sql = sql.replace(f"%({name})s", "%s")
    return sql
