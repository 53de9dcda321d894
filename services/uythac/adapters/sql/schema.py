"""The store's tables, in SQL that runs on SQLite (the embedded default) and PostgreSQL.

Tables hold order-independent summaries (`core.model.Loan`, `core.model.Group`), the unit counts, every
inspection, the event ids already accepted (durable dedupe), Kafka offsets, the outbox, month-end
reports, and small metadata (the clock, the scorecard in use). This is the newest layout; how a store of an
older one is brought to it is in `migrations` (Alembic), and a store of another layout is refused, never misread.

Layout, for speed where most events land (a repayment changes three values of one loan):
- loans and groups have a small integer key `n` of the store's own (rowid tables in SQLite), beside their
  ids; a loan's obligation (its unit, deadline, status...) is in `loans`, what its repayments change is in
  `loan_balances`, a narrow table: a repayment rewrites a short row, not the whole loan and its indexes;
- dates are day numbers (`Day`: days since 1970-01-01), 2-3 bytes in a row or an index entry instead of
  10 characters. In SQL, `date(d * 86400, 'unixepoch')` (SQLite) or `DATE '1970-01-01' + d`
  (PostgreSQL) shows one as a date.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from datetime import date
from functools import cache, cached_property
from operator import attrgetter
from typing import Any

import sqlalchemy as sa

from uythac.core.dates import day_number, day_of
from uythac.core.events import DIGEST_SIZE
from uythac.core.model import Counts, Group, Loan


class Day(sa.TypeDecorator[date]):
    """A date column kept as a day number; SQLAlchemy converts in both directions (the hot paths run
    on the driver and convert with `day_number` and `day_of` themselves)."""

    impl = sa.Integer
    cache_ok = True

    def process_bind_param(self, value: date | None, dialect: sa.Dialect) -> int | None:
        return None if value is None else day_number(value)

    def process_result_value(self, value: int | None, dialect: sa.Dialect) -> date | None:
        return None if value is None else day_of(value)


def _no_raw_dates(value: date) -> None:
    """A date handed to the driver as it is would be compared as text with day numbers: refuse it."""
    raise TypeError(f"{value!r} given to the store's driver: dates are kept as numbers (core.dates.day_number)")


sqlite3.register_adapter(date, _no_raw_dates)


def _text(length: int) -> sa.types.TypeEngine[str]:
    """A text column compared and ordered byte by byte on both stores, whatever the database's locale (SQLite's
    own way; PostgreSQL's "C" collation): ids and areas sort the same on both, so their reports are the same
    bytes, and an index of ids is searched without the locale's rules (several times faster)."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


metadata = sa.MetaData()
ID = _text(64)
AREA = _text(32)
KEY = sa.Integer  # `n`: the store's own key of a loan or a group (SQLite: the rowid)

meta = sa.Table("meta", metadata, sa.Column("key", _text(64), primary_key=True), sa.Column("value", sa.Text))
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
    sa.Column("org", _text(4)),
    sa.Column("group_id", ID),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("disbursed_on", Day),
    sa.Column("disbursal_event", ID),
    sa.Column("deadline", Day),
    sa.Column("overdue_principal", sa.BigInteger, nullable=False),
    sa.Column("overdue_on", Day),
    sa.Column("overdue_event", ID),
    sa.Column("status", _text(16)),
    sa.Column("inspected_on", Day),
    sa.Column("late_inspection_on", Day),
    sa.Column("misuse", sa.Boolean, nullable=False),
    sa.Column("duty_status", _text(8)),  # the inactive-loan duty (docs/contract.md §7.1), if inactive
    sa.Column("duty_opened_on", Day),
    sa.Column("duty_late_on", Day),
    sa.Column("has_strays", sa.Boolean, nullable=False),
    sa.Index("loans_unit", "commune_id", "org"),
    sa.Index("loans_duty_district", "duty_status", "district_id", "commune_id", "org", "loan_id"),
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
    sa.Column("org", _text(4)),
    sa.Column("registered_on", Day),
    sa.Column("registration_event", ID),
    sa.Column("closed_on", Day),
    sa.Column("last_periodic_on", Day),
    sa.Column("last_deposit_on", Day),
    sa.Column("prior_periodic_year", sa.Integer),
    sa.Column("misuse", sa.Boolean, nullable=False),
    sa.Column("next_change", Day),
    sa.Column("has_strays", sa.Boolean, nullable=False),
    sa.Index("groups_next_change", "next_change"),
    sa.Index("groups_unit", "commune_id", "org"),  # a commune's or a district's groups in its worklist
    sa.Index("groups_district", "district_id", "commune_id", "org"),
)
inspections = sa.Table(
    "inspections",
    metadata,
    sa.Column("event_id", ID, primary_key=True),
    sa.Column("kind", _text(20), nullable=False),
    sa.Column("loan_id", ID),
    sa.Column("group_id", ID),
    sa.Column("commune_id", AREA, nullable=False),  # the unit the inspection named: it counts for that unit's loan
    sa.Column("org", _text(4), nullable=False),
    sa.Column("inspected_on", Day, nullable=False),
    sa.Column("result", _text(16), nullable=False),
    sa.Index("inspections_loan", "loan_id"),
)
strays = sa.Table(  # what events naming a loan or group with another unit than its own said, by that unit
    "strays",
    metadata,
    sa.Column("kind", _text(5), primary_key=True),  # loan | group
    sa.Column("entity_id", ID, primary_key=True),
    sa.Column("commune_id", AREA, primary_key=True),
    sa.Column("org", _text(4), primary_key=True),
    sa.Column("activity", sa.Text, nullable=False),  # JSON: the entity's ACTIVITY fields, dates as YYYY-MM-DD
)
units = sa.Table(
    "units",
    metadata,
    sa.Column("commune_id", AREA, primary_key=True),
    sa.Column("org", _text(4), primary_key=True),
    sa.Column("district_id", AREA, nullable=False),
    sa.Column("district_day", Day, nullable=False),
    sa.Column("district_event", ID, nullable=False),
    *(sa.Column(name, sa.BigInteger, nullable=False) for name in Counts._fields),
)

offsets = sa.Table(
    "offsets",
    metadata,
    sa.Column("topic", _text(249), primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("next_offset", sa.BigInteger, nullable=False),
)
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("topic", _text(249), nullable=False),
    sa.Column("key", sa.LargeBinary),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("headers", sa.Text, nullable=False),  # JSON list of [name, base64 value] pairs
)
OUTBOX_FIELDS = ("topic", "key", "value", "headers")  # a message as the outbox takes it (`core.outputs.OutboxRow`)
snapshots = sa.Table(  # the report at each month end the clock passed (gzip'd JSON), for ?as_of=
    "snapshots",
    metadata,
    sa.Column("as_of", Day, primary_key=True),
    sa.Column("report", sa.LargeBinary, nullable=False),
)


@dataclass(frozen=True, eq=False)
class EntityTables:
    """Where the fields of one kind of entity (`core.model.Loan`, `core.model.Group`) lie: each in one of `tables`,
    all keyed by `n`; the first table holds the entity's id (its first field), unique."""

    name: str  # what the unit of work files its rows under
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
LOANS = EntityTables("loans", Loan, (loans, loan_balances), _AREA | {"group_id", "status", "duty_status"})
GROUPS = EntityTables("groups", Group, (groups,), _AREA)
