"""`/metrics`: the API's request metrics, and gauges read from the store at scrape time.

Under gunicorn every worker process records its requests in files of PROMETHEUS_MULTIPROC_DIR (set by
`uythac api` before prometheus_client is imported) and a scrape adds them up, whichever worker answers.
The store gauges (open flags per district, open duties per district, duty and status, units per district,
org and class, the clock T) are read by the
collector when Prometheus scrapes, so they are the store's truth, never a copy a process kept.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, time

from flask import Blueprint, Flask, Response, current_app
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy.exc import SQLAlchemyError

from uythac.adapters.sql import queries
from uythac.adapters.sql.store import Store
from uythac.core import report
from uythac.core.areas import Selection
from uythac.core.dates import VIETNAM
from uythac.core.scorecard import CLASSES
from uythac.core.worklist import DutyKind, WorkBounds
from uythac.entrypoints.api.caching import Scores
from uythac.metrics import API, DUTIES_NAME, OPEN_FLAGS_NAME, STORE_CLOCK_NAME, UNITS_NAME
from uythac.schemas.events import ORGS

log = logging.getLogger(__name__)
bp = Blueprint("prometheus", __name__)
EXTENSION = "uythac.prometheus"
DUTY_STATUSES = (  # every (duty, status) a worklist item can have: each district shows them all, zeros too
    (DutyKind.NEW_LOAN, "due_soon"),
    (DutyKind.NEW_LOAN, "pending"),
    (DutyKind.NEW_LOAN, "missed"),
    (DutyKind.INACTIVE_LOAN, "pending"),
    (DutyKind.INACTIVE_LOAN, "missed"),
    (DutyKind.GROUP_OF_YEAR, "pending"),
)


class StoreCollector:
    """Gauges computed from the store on every scrape; nothing if the store cannot be read (logged)."""

    def __init__(self, store: Store, scores: Scores) -> None:
        self.store, self.scores = store, scores

    def collect(self) -> Iterator[Metric]:
        try:
            with queries.snapshot(self.store) as connection:
                today = queries.clock(connection)
                window = None if today is None else report.window(today, self.scores.card)
                flags = {} if window is None else queries.flags_by_district(connection, window)
                windows = self.scores.card.windows
                everything = None if today is None else WorkBounds.at(today, windows, windows.inspection_deadline_days)
                duties = {} if everything is None else queries.duties_by_district(connection, everything)
                units = queries.units_of(connection, Selection()).rows
        except SQLAlchemyError as error:
            log.warning("store gauges skipped: the store cannot be read", extra={"error": str(error)})
            return
        help_text = "Missed 30-day inspections with a deadline in the window, by district"
        open_flags = GaugeMetricFamily(OPEN_FLAGS_NAME, help_text, labels=["district_id"])
        for district, count in sorted(flags.items()):
            open_flags.add_metric([district], count)
        yield open_flags
        help_text = "Open items of the worklist, by district, duty and status (every new loan not yet inspected)"
        open_duties = GaugeMetricFamily(DUTIES_NAME, help_text, labels=["district_id", "duty", "status"])
        for district in sorted({district for district, _, _ in duties} | set(flags)):
            for duty, status in DUTY_STATUSES:
                open_duties.add_metric([district, duty, status], duties.get((district, duty, status), 0))
        yield open_duties
        classes = Counter((unit.district_id, unit.org, self.scores.of(unit.counts).rating) for unit in units)
        help_text = "Reported units by district, organization and class"
        per_class = GaugeMetricFamily(UNITS_NAME, help_text, labels=["district_id", "org", "class"])
        for district in sorted({unit.district_id for unit in units}):
            for org in ORGS:
                for rating in CLASSES:
                    per_class.add_metric([district, org, rating], classes[(district, org, rating)])
        yield per_class
        if today is not None:
            midnight = datetime.combine(today, time(), VIETNAM).timestamp()
            yield GaugeMetricFamily(STORE_CLOCK_NAME, "The store's clock T, as midnight in Vietnam", value=midnight)


def init_app(app: Flask, store: Store, scores: Scores) -> None:
    """One registry per app: the request metrics (every process's, in multiprocess mode) and the store's; never
    what else the process made (a worker run in the same process, in tests)."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        for collector in (API, PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            registry.register(collector)  # a registry collects like any collector
    registry.register(StoreCollector(store, scores))
    app.extensions[EXTENSION] = registry
    app.register_blueprint(bp)


@bp.get("/metrics")
def get_metrics() -> Response:
    """Prometheus text exposition: request latency by route, method and status; the store's gauges.
    ---
    get:
      summary: Prometheus metrics
      tags: [health]
      responses:
        200: {description: Metrics, content: {text/plain: {schema: {type: string}}}}
    """
    return Response(generate_latest(current_app.extensions[EXTENSION]), mimetype=CONTENT_TYPE_LATEST)
