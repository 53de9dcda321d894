"""What each process exports: the worker's series are the worker's alone, and a batch's rejections are counted by
what they are (an invalid record, or a conflict of a known event type)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
from prometheus_client import CollectorRegistry, generate_latest

from tests.support import loan
from uythac.core.events import Rejection, parse
from uythac.core.outcome import Outcome
from uythac.core.outputs import Message
from uythac.entrypoints.worker import count
from uythac.metrics import WorkerMetrics


def test_a_conflict_is_counted_with_its_event_type_and_an_invalid_record_as_invalid() -> None:
    registry = CollectorRegistry()
    event = parse(orjson.dumps(loan("L1", "2024-01-01")))
    assert not isinstance(event, Rejection)
    conflict = Rejection("event_id: conflict: e1 was accepted before with other content", event.event_id, event.type)
    outcome = Outcome(rejected=[((0, 7), conflict)])
    dead = [Message("uythac.events.dlq", None, b"x", (("uythac.reason", b"message: not JSON"),))]
    count(dead, outcome, 0.01, [], WorkerMetrics(registry))
    text = generate_latest(registry).decode()
    assert 'uythac_events_total{outcome="rejected",type="loan.disbursed"} 1.0' in text
    assert 'uythac_events_total{outcome="rejected",type="invalid"} 1.0' in text
    assert 'type="any",outcome="rejected"' not in text and 'outcome="rejected",type="any"' not in text
    assert 'uythac_rejects_total{field="event_id"} 1.0' in text and 'uythac_rejects_total{field="message"} 1.0' in text


def test_importing_the_api_and_the_worker_makes_none_of_the_workers_series(tmp_path: Path) -> None:
    """Under gunicorn every metric a process makes is written to the shared folder and exported by the API:
    made at import, the worker's gauges showed at 0 on the API's /metrics."""
    script = (
        "import prometheus_client.multiprocess as m, prometheus_client as p\n"
        "import uythac.entrypoints.api, uythac.entrypoints.worker, uythac.metrics\n"
        "registry = p.CollectorRegistry(); m.MultiProcessCollector(registry)\n"
        "print(p.generate_latest(registry).decode())\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert "uythac_clock_lag_seconds" not in done.stdout and "uythac_events_total" not in done.stdout
