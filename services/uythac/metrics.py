"""Every Prometheus metric uythac exports, in one place (names follow Prometheus conventions).

The worker serves its metrics on its own port (`UYTHAC_WORKER_METRICS_PORT`); the API serves
`/metrics` with its request metrics and gauges read from the store at scrape time. Under gunicorn
the API uses prometheus-client's multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`). Each process exports
its own series only: the worker's are made when the worker first counts (`worker()`), never at import.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from fractions import Fraction
from functools import cache
from operator import neg

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram


class BatchHistogram(Histogram):
    """A histogram that also takes a batch's observations at once: a batch holds thousands of events and
    `observe` takes a lock per value (~1.5 µs each). It uses the pinned prometheus-client's
    `_upper_bounds`, `_buckets` and `_sum`; a test holds it to `observe` one value at a time."""

    def observe_ages(self, stamps_ms: Sequence[int], now: float) -> None:
        """Observe the age at `now` (seconds since the epoch) of each positive Kafka timestamp (ms), never
        below 0, as `observe(max(now - stamp / 1000, 0))` one stamp at a time would. Without a Python step per
        stamp: newest first, the ages ascend, so each bucket's count is one bisection (by the same age
        arithmetic) and the sum one subtraction (in fractions: exact, then rounded once)."""
        self._raise_if_not_observable()  # type: ignore[no-untyped-call]
        stamps = sorted(stamps_ms, reverse=True)
        stamps = stamps[: bisect_left(stamps, 0, key=neg)]  # the stamps > 0

        def age(stamp: int) -> float:
            return max(now - stamp / 1000, 0)

        counted = 0
        for bucket, bound in zip(self._buckets, self._upper_bounds, strict=True):
            upto = bisect_right(stamps, bound, counted, key=age)  # ages <= bound: Prometheus's `le`
            if upto > counted:
                bucket.inc(upto - counted)
            counted = upto
        past = bisect_right(stamps, 0.0, key=age)  # ages of 0: now or in the future
        older = stamps[past:]
        self._sum.inc(float(Fraction(now) * len(older) - Fraction(sum(older), 1000)))


# worker --------------------------------------------------------------------------------------------
class WorkerMetrics:
    """The worker's series. Made by the first call of `worker()`, in the worker's process only: the API imports
    this module for its own series, and a metric made at import would be exported by every process that
    imports it (at 0 by the API; under gunicorn's multiprocess mode each metric made writes its file)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.events = Counter(
            "uythac_events_total", "Events consumed, by type and outcome", ["type", "outcome"], registry=registry
        )
        self.rejects = Counter(
            "uythac_rejects_total", "Rejected events by the field their reason names", ["field"], registry=registry
        )
        self.other_unit = Counter(
            "uythac_events_other_unit_total",
            "Accepted events that named a loan or group with another unit than its own: they count for nothing for it",
            registry=registry,
        )
        self.rule_decisions = Counter(
            "uythac_rule_decisions_total",
            "Decisions of the rules (the 30-day obligation's and the inactive-loan duty's)",
            ["decision"],
            registry=registry,
        )
        self.transitions = Counter(
            "uythac_flag_transitions_total",
            "30-day inspection flags raised and cleared, misuse found (flag.raised, flag.cleared, misuse.found)",
            ["transition"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "uythac_batch_seconds",
            "Time to validate, apply and commit one batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.event_seconds = BatchHistogram(
            "uythac_event_processing_seconds",
            "Time from a message's Kafka timestamp to its state being committed (queryable)",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        # `worker`: the worker's name (UYTHAC_KAFKA_INSTANCE_ID, else host-pid): several workers share one group
        self.consumer_lag = Gauge(
            "uythac_consumer_lag",
            "Messages behind the end of each partition",
            ["worker", "partition"],
            registry=registry,
        )
        self.worker_partitions = Gauge(
            "uythac_worker_partitions",
            "Partitions of the events topic this worker holds in its group now",
            ["worker"],
            registry=registry,
        )
        self.clock_lag = Gauge(
            "uythac_clock_lag_seconds", "Wall time (Vietnam) minus the engine's clock T, in seconds", registry=registry
        )
        self.outbox_sent = Counter(
            "uythac_outbox_sent_total",
            "Output messages the broker acknowledged (flags, scores, DLQ)",
            registry=registry,
        )
        self.outbox_failures = Counter(
            "uythac_outbox_failures_total", "Outbox relay rounds that failed (broker down, timeout)", registry=registry
        )
        self.batch_retries = Counter(
            "uythac_batch_retries_total",
            "Batches not applied as polled: store_unavailable (read again), fenced (partitions moved), one_by_one",
            ["reason"],
            registry=registry,
        )
        self.intake_restarts = Counter(
            "uythac_intake_restarts_total",
            "Times the worker started its intake process again: died (it exited), stalled (holding partitions, it "
            "neither handed over a batch nor showed them read to their end for UYTHAC_WORKER_STALL_S)",
            ["reason"],
            registry=registry,
        )
        self.outbox_backlog = Gauge(
            "uythac_outbox_backlog", "Output messages committed but not yet sent to Kafka", registry=registry
        )
        self.open_obligations = Gauge(
            "uythac_open_obligations", "Loans still within their 30 days and not yet inspected", registry=registry
        )
        self.last_event = Gauge(
            "uythac_last_event_timestamp_seconds", "Wall time the worker last applied an event", registry=registry
        )


@cache
def worker() -> WorkerMetrics:
    """The worker's metrics, made once per process, in the default registry (served on the worker's port)."""
    return WorkerMetrics()


# API -----------------------------------------------------------------------------------------------
API = CollectorRegistry()  # the API's own series, apart from any other a process made (tests run both)
API_SECONDS = Histogram(
    "uythac_api_request_seconds",
    "API request latency, by route (the URL rule, not the URL), method and status",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=API,
)
# Read from the store at scrape time by the API's collector (uythac.entrypoints.api), not kept in memory:
OPEN_FLAGS_NAME = "uythac_open_flags"  # gauge {district_id}: missed 30-day inspections in the window
UNITS_NAME = "uythac_units"  # gauge {district_id, org, class}: reported units per class
DUTIES_NAME = "uythac_duties"  # gauge {district_id, duty, status}: open items of the worklist
STORE_CLOCK_NAME = "uythac_store_clock_timestamp_seconds"  # gauge: the store's clock T (Vietnam midnight)
