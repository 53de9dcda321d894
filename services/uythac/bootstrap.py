"""The one wiring point: settings in, the running parts out (store, scorecard, processor, worker, app).

Entry points parse their input into a `Settings` (`settings.load()` and the command line's overrides) and
ask this module for what they run; nothing else opens a store or reads a scorecard file. Everything that can
be wrong with the settings surfaces here as a `ConfigError` or `StoreError` with one line that names it.
"""

from __future__ import annotations

from functools import partial
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from uythac.adapters.sql.store import Store
from uythac.core import scorecard as scorecards
from uythac.core.outputs import Topics
from uythac.core.scorecard import Scorecard
from uythac.errors import ConfigError
from uythac.service.processor import Processor
from uythac.settings import Settings

if TYPE_CHECKING:  # the worker and the app pull in Kafka and Flask: only the commands that run them load them
    from flask import Flask

    from uythac.entrypoints.worker import Worker

PACKAGED_SCORECARD = "rules/scorecard.yaml"


def open_store(location: str) -> Store:
    """The store at a SQLite path (made if missing, WAL) or a SQLAlchemy URL."""
    return Store.at(location)


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
    return Processor(store, card, settings.reports_months, settings.cache_entities)


def topics(settings: Settings) -> Topics:
    return Topics(settings.kafka_flags_topic, settings.kafka_scores_topic)


def worker(settings: Settings, idle_exit_s: float | None = None) -> Worker:
    """`uythac worker`: the store's processor fed from Kafka by an intake process of its own."""
    from uythac.adapters.kafka.intake import IntakeConfig
    from uythac.entrypoints.worker import POLL_MS, Worker, WorkerConfig

    card = load_scorecard(settings)
    store = open_store(settings.db)
    intake = IntakeConfig(
        bootstrap=settings.kafka_bootstrap,
        topic=settings.kafka_topic,
        group_id=settings.kafka_group,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        batch_size=settings.batch_size,
        poll_ms=POLL_MS,
        open_store=partial(open_store, store.url),
        log_level=settings.log_level,
    )
    config = WorkerConfig(
        topic=settings.kafka_topic,
        partitions=settings.kafka_partitions,
        outputs=topics(settings),
        idle_exit_s=idle_exit_s,
        stall_s=settings.worker_stall_s,
    )
    return Worker(config, processor(settings, store, card), intake)


def app(settings: Settings) -> Flask:
    """The HTTP API's Flask app over the settings' store (made in each gunicorn worker)."""
    from uythac.entrypoints.api import create_app

    return create_app(settings, open_store(settings.db), load_scorecard(settings))
