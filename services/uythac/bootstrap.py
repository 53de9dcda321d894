"""The one wiring point: settings in, the parts the entry points run out (store, scorecard, processor, intake).

Entry points parse their input into a `Settings` (`settings.load()` and the command line's overrides) and
ask this module for what they run (the worker, the API, replay, the commands); nothing else opens a store or
reads a scorecard file. Everything that can be wrong with the settings surfaces here as a `ConfigError` or
`StoreError` with one line that names it.
"""

from __future__ import annotations

import os
import re
import socket
from datetime import UTC, date, datetime
from functools import partial
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import DatabaseError

from uythac.adapters.sql.store import Limits, Store
from uythac.core import dates
from uythac.core import scorecard as scorecards
from uythac.core.outputs import Topics
from uythac.core.scorecard import Scorecard
from uythac.errors import ConfigError, StoreError
from uythac.service.processor import Processor
from uythac.settings import Settings

if TYPE_CHECKING:  # kafka-python is loaded by the commands that use Kafka only
    from uythac.adapters.kafka.intake import IntakeConfig

PACKAGED_SCORECARD = "rules/scorecard.yaml"
DURABLE_RULES = "2.0.28+uythac.1"  # deploy/durable-rules: PyPI's 2.0.28 reads past its arrays and may crash


def open_store(
    location: str, settings: Settings | None = None, prepare: bool = True, *, existing: bool = False
) -> Store:
    """The store at a SQLite path (made if missing, WAL) or a SQLAlchemy URL; `settings`: the limits of its
    PostgreSQL sessions (`UYTHAC_DB_*`), else their defaults; `prepare=False`: as it is, whatever its layout
    (`uythac db`). `existing`: a SQLite file must be there already (the read commands: a typo in a path must
    not read as an empty province)."""
    given = settings or Settings()
    limits = Limits(given.db_pool_size, given.db_statement_timeout_s, given.db_idle_in_transaction_s)
    if "://" not in location:
        _check_sqlite_path(Path(location), existing)
        if Path(location).is_symlink():  # `make run` links var/uythac.db to its store: SQLite's -wal is beside it
            location = str(Path(location).resolve())
    try:
        return Store.at(location, limits, prepare)
    except DatabaseError as error:  # SQLite's "file is not a database": another kind of file at the path
        raise StoreError(f"{location}: not a uythac store ({' '.join(str(error.orig).split())})") from error


def _check_sqlite_path(path: Path, existing: bool) -> None:
    if path.is_dir():
        raise StoreError(f"{path}: is a folder, not a store (give the path of a SQLite file)")
    if existing and not path.exists():
        raise StoreError(
            f"{path}: no store there; the worker or `uythac replay EVENTS --report R --db {path}` makes one "
            "(--db or UYTHAC_DB chooses the store)"
        )


def load_scorecard(settings: Settings) -> Scorecard:
    """The scorecard file of the settings (`UYTHAC_SCORECARD`, `--scorecard`), or the packaged one."""
    if not settings.scorecard:
        text = resources.files("uythac.rules").joinpath("scorecard.yaml").read_text(encoding="utf-8")
        return scorecards.parse(text, PACKAGED_SCORECARD)
    path = Path(settings.scorecard)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise ConfigError(f"scorecard {path}: cannot be read ({reason})") from error
    return scorecards.parse(text, str(path))


def processor(settings: Settings, store: Store, card: Scorecard) -> Processor:
    """The processor of a store: its state kept in step with the store, batch by batch."""
    check_durable_rules()
    return Processor(store, card, settings.reports_months, settings.cache_entities)


def check_durable_rules() -> None:
    """Refuse to run the rules on durable-rules without uythac's fixes (deploy/durable-rules/fixes.patch)."""
    try:
        found = metadata.version("durable-rules")
    except metadata.PackageNotFoundError:
        found = "(none)"
    if found != DURABLE_RULES:
        raise ConfigError(
            f"durable-rules {found} is installed; uythac needs {DURABLE_RULES}, built by "
            "deploy/durable-rules/build-wheel.sh (make venv does it)"
        )


def latest_accepted(settings: Settings) -> date:
    """The latest business date an event may have now (the machine's clock; `UYTHAC_MAX_FUTURE_DAYS`)."""
    return dates.latest_accepted(datetime.now(UTC), settings.max_future_days)


def topics(settings: Settings) -> Topics:
    return Topics(settings.kafka_flags_topic, settings.kafka_scores_topic)


def instance_id(settings: Settings) -> str | None:
    """The worker's static member name in its group (`UYTHAC_KAFKA_INSTANCE_ID`), checked as Kafka checks it."""
    name = settings.kafka_instance_id
    if not name:
        return None
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,249}", name) or name in (".", ".."):
        raise ConfigError(
            f"UYTHAC_KAFKA_INSTANCE_ID: {name!r} is not a Kafka member name (1-249 of A-Z a-z 0-9 . _ -); "
            "give each worker its own, e.g. its host name"
        )
    return name


def worker_name(settings: Settings) -> str:
    """The worker's name in its metrics and its heartbeat in the store: its static member name if it has one,
    else its host and process id (a new name at each start)."""
    return instance_id(settings) or f"{socket.gethostname()}-{os.getpid()}"


def intake(settings: Settings, store: Store) -> IntakeConfig:
    """The worker's intake process: its Kafka consumer and the store it seeks offsets in (opened there again)."""
    from uythac.adapters.kafka.intake import IntakeConfig

    return IntakeConfig(
        bootstrap=settings.kafka_bootstrap,
        topic=settings.kafka_topic,
        group_id=settings.kafka_group,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        instance_id=instance_id(settings),
        batch_size=settings.batch_size,
        max_future_days=settings.max_future_days,
        open_store=partial(open_store, store.url, settings),
        log_level=settings.log_level,
    )
