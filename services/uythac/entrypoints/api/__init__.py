"""The HTTP API: `create_app` wires settings, the store, the scorecard and the blueprints into a Flask app.

Read endpoints answer from the store the worker fills; `POST /v1/events` hands events to Kafka for the
worker. The blueprints and everything that imports prometheus_client are imported inside `create_app`:
`uythac api` must set PROMETHEUS_MULTIPROC_DIR before the first import of prometheus_client, and it
imports this package first.
"""

from __future__ import annotations

import logging

from flask import Flask

from uythac import bootstrap
from uythac.settings import Settings

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 16 * 1024 * 1024  # a full array of POST /v1/events at typical event sizes, with room
BODIES_BYTES = 64 * 1024 * 1024  # reports and tables kept per store version: a province's report is ~2.5 MB
PAGES_BYTES = 32 * 1024 * 1024  # pages and details kept per store version: all a province's callers ask for ~13 MB


def create_app(settings: Settings) -> Flask:
    """The app for these settings: their store and scorecard (`bootstrap`), the blueprints, the guard."""
    from uythac.adapters.kafka.publisher import Publisher
    from uythac.adapters.sql import queries
    from uythac.core.areas import Selection
    from uythac.entrypoints.api import (
        events,
        health,
        inspections,
        loans,
        openapi,
        problems,
        prometheus,
        reports,
        telemetry,
        units,
    )
    from uythac.entrypoints.api.auth import Guard, load_keys
    from uythac.entrypoints.api.caching import Bodies, Scores
    from uythac.entrypoints.api.context import EXTENSION, Services, end_reading
    from uythac.entrypoints.api.internal import Internal
    from uythac.entrypoints.api.limits import RateLimits
    from uythac.entrypoints.pages import init_app as init_pages

    store = bootstrap.open_store(settings.db, settings)
    card = bootstrap.load_scorecard(settings)
    scores = Scores(card)
    publisher = Publisher(
        settings.kafka_bootstrap, settings.kafka_topic, settings.kafka_partitions, settings.api_produce_timeout_ms
    )

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    bodies, pages = Bodies(BODIES_BYTES), Bodies(PAGES_BYTES)
    app.extensions[EXTENSION] = Services(settings, store, card, scores, publisher, bodies, pages)
    keys = load_keys(settings.api_keys_file)
    if not keys:
        log.warning("no API keys configured (UYTHAC_API_KEYS_FILE): every /v1 request will be refused")
    v1 = (reports.bp, units.bp, inspections.bp, loans.bp, events.bp)
    keyed = {bp.name for bp in v1} | ({health.bp.name} if not settings.api_open_health else set())
    everywhere = {prometheus.bp.name} if not settings.api_open_metrics else set()
    guard = Guard(keys, keyed, everywhere, RateLimits(settings.api_scoped_rate) if settings.api_scoped_rate else None)

    telemetry.init_app(app)
    app.teardown_request(end_reading)
    Internal(settings.api_internal_bind).init_app(app)
    guard.init_app(app)
    problems.init_app(app)
    for blueprint in (*v1, health.bp):
        app.register_blueprint(blueprint)
    init_pages(app, keys, settings)
    prometheus.init_app(app, store, scores)
    openapi.init_app(app, guard, settings.api_max_events)
    with queries.snapshot(store) as connection:  # now, not on the first request that needs them
        scores.warm(queries.units_of(connection, Selection()).rows)
        reports.report_at_t(app.extensions[EXTENSION], connection, queries.clock(connection), Selection())
    return app
