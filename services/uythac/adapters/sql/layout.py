"""The store's layout, as Alembic revisions (`migrations/versions`, one per layout, named by its number).

An empty database is given the newest layout at once (`schema.metadata`) and stamped with it; a store of an
older layout is brought up by `uythac db upgrade` (`upgrade`), never by the worker or the API, which refuse it
(`prepare`). Stores made before Alembic have no `alembic_version` table: their `meta` row `layout` names their
revision (every revision keeps that row too, so that an older uythac refuses a newer store).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from uythac.adapters.sql.schema import groups, inspections, loans, meta, metadata
from uythac.adapters.sql.unit_of_work import SqlUnitOfWork
from uythac.core.scorecard import Scorecard
from uythac.errors import StoreError
from uythac.service.ports import Rows, UnitOfWork
from uythac.service.processor import Processor

UPGRADE = "uythac db upgrade"


@dataclass(frozen=True)
class Layout:
    """Where a store stands: its revision (None: an empty database) and the newest one this uythac has."""

    current: str | None
    head: str

    @property
    def line(self) -> str:
        if self.current is None:
            return f"empty (`{UPGRADE}` or any command makes layout {self.head})"
        if self.current == self.head:
            return f"layout {self.current} (head)"
        return f"layout {self.current}; this uythac reads {self.head}: run `{UPGRADE}`"


@cache
def config() -> Config:
    """Alembic's configuration of the store's scripts; a caller hands its connection over in `attributes`."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


@cache
def head() -> str:
    found = _scripts().get_current_head()
    assert found is not None, "the migrations have a head"
    return found


def layout(connection: Connection) -> Layout:
    """The store's revision: Alembic's, else the layout its `meta` row names (made before Alembic)."""
    current = MigrationContext.configure(connection).get_current_revision()
    if current is None and sa.inspect(connection).has_table("meta"):
        marked = connection.execute(sa.select(meta.c.value).where(meta.c.key == "layout")).scalar()
        current = str(marked or 1)
    return Layout(current, head())


def prepare(connection: Connection, url: str) -> None:
    """Give an empty database the newest layout; refuse a store of any other (`StoreError`, one line naming what
    to do). The caller holds the store's lock and commits."""
    found = layout(connection)
    if found.current is None:
        metadata.create_all(connection)
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        connection.execute(dialect.insert(meta).values(key="layout", value=found.head).on_conflict_do_nothing())
        MigrationContext.configure(connection).stamp(_scripts(), found.head)
    elif found.current != found.head:
        _known(found, url)
        raise StoreError(
            f"{url}: the store has table layout {found.current}, this uythac reads {found.head}: "
            f"run `{UPGRADE}` (with the workers stopped)"
        )
    elif MigrationContext.configure(connection).get_current_revision() is None:  # made at this layout before Alembic
        MigrationContext.configure(connection).stamp(_scripts(), found.head)


def upgrade(connection: Connection, url: str, card: Scorecard) -> Layout:
    """Bring the store to the newest layout (an empty database too); what it was before. The caller holds the
    store's lock and commits: on PostgreSQL every step is in that one transaction (on SQLite too: its DDL is
    transactional)."""
    found = layout(connection)
    if found.current is not None:
        _known(found, url)
        if MigrationContext.configure(connection).get_current_revision() is None:
            MigrationContext.configure(connection).stamp(_scripts(), found.current)
    scripts = config()
    scripts.attributes.update(connection=connection, scorecard=card)
    try:
        command.upgrade(scripts, "head")
    finally:
        scripts.attributes.clear()
    return found


def _known(found: Layout, url: str) -> None:
    """A `StoreError` unless the store's revision is one of ours (an older one can be upgraded)."""
    current = found.current or ""
    try:
        _scripts().get_revision(current)
    except CommandError:
        older = current.isdigit() and int(current) < int(found.head)
        if older:
            raise StoreError(
                f"{url}: made by an older uythac (table layout {found.current}, which cannot be upgraded; this one "
                f"reads {found.head}): replay the events into a new store (or let the worker rebuild it from Kafka)"
            ) from None
        raise StoreError(
            f"{url}: made by a newer uythac (table layout {found.current}; this one reads {found.head}): "
            "run that version"
        ) from None


def recount(connection: Connection, card: Scorecard) -> None:
    """The processor's `recount` of every loan and group of the store (the step to layout 5), with the store's
    scorecard: the card it was bound to, now with the duties' window (its digest then was
    `digest_before_duties`); any other card is refused, as the processor refuses it."""
    uow = SqlUnitOfWork(connection)
    if uow.get_meta("scorecard") == card.digest_before_duties:
        uow.set_meta("scorecard", card.digest)
    loan_ids = list(connection.execute(sa.select(loans.c.loan_id).order_by(loans.c.n)).scalars())
    group_ids = list(connection.execute(sa.select(groups.c.group_id).order_by(groups.c.n)).scalars())
    query = sa.select(inspections.c.group_id, inspections.c.commune_id, inspections.c.org, inspections.c.inspected_on)
    periodic = [
        {"group_id": group_id, "commune_id": commune_id, "org": org, "inspected_on": day}
        for group_id, commune_id, org, day in connection.execute(
            query.where(inspections.c.kind == "periodic", inspections.c.group_id.is_not(None))
        )
    ]
    processor = Processor(_Within(uow), card, months_kept=0, cache_limit=0)
    processor.recount(uow, loan_ids, group_ids, periodic)


class _Within:
    """The migration's own transaction as the processor's store: every unit of work it opens is that one."""

    url = "the store being upgraded"

    def __init__(self, uow: SqlUnitOfWork) -> None:
        self.uow = uow

    @contextmanager
    def unit_of_work(self, rows: Rows | None = None) -> Iterator[UnitOfWork]:
        yield self.uow

    @contextmanager
    def reading(self) -> Iterator[UnitOfWork]:
        yield self.uow

    def analyze(self) -> None:
        """Nothing: the store's statistics are refreshed by its next replay or worker."""

    def holds_relay(self) -> bool:
        return False

    def close(self) -> None:
        """Nothing: the transaction is the caller's."""
