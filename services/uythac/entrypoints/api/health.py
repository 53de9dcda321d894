"""Liveness and readiness, for an orchestrator and a load balancer.

`/healthz` says the process answers (restart it if not). `/readyz` says whether its answers are worth
sending traffic to: the store reads, a worker wrote its heartbeat recently, the worker is not far behind
the events topic, and the clock T is not far behind today in Vietnam (a tick comes every midnight).
The limits are settings (UYTHAC_API_READY_*). Both need no key unless UYTHAC_API_OPEN_HEALTH=0.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import date, datetime

from flask import Blueprint, Response
from sqlalchemy.exc import SQLAlchemyError

from uythac.adapters.sql import queries
from uythac.adapters.sql.store import Store
from uythac.adapters.sql.unit_of_work import heartbeats
from uythac.core.dates import VIETNAM
from uythac.entrypoints.api.context import services
from uythac.entrypoints.api.marshal import respond
from uythac.entrypoints.api.problems import Problem
from uythac.entrypoints.api.schemas import HealthSchema, ReadySchema
from uythac.settings import Settings

bp = Blueprint("health", __name__)
_HEALTH, _READY = HealthSchema(), ReadySchema()


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up and serving (it touches nothing else, so a slow store never gets it restarted).
    ---
    get:
      summary: Liveness
      tags: [health]
      responses:
        200: {description: Up, content: {application/json: {schema: HealthSchema}}}
    """
    return respond(_HEALTH, {"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Ready to serve: the store reads, and the worker that fills it is alive, caught up and current.
    ---
    get:
      summary: Readiness
      tags: [health]
      responses:
        200: {description: Ready, content: {application/json: {schema: ReadySchema}}}
        503: NotReady
    """
    context = services()
    checks = readiness(context.store, context.settings)
    failed = {name: check.detail for name, check in checks.items() if not check.ok}
    if not failed:
        return respond(_READY, {"status": "ready", "checks": checks})
    raise Problem(
        "not-ready",
        "; ".join(f"{name}: {detail}" for name, detail in failed.items()),
        [{"field": name, "detail": detail} for name, detail in failed.items()],
        extra={"checks": {name: asdict(check) for name, check in checks.items()}},
    )


def readiness(store: Store, settings: Settings) -> dict[str, Check]:
    try:
        with queries.snapshot(store) as connection:
            values = queries.meta_values(connection, "clock")
            beats = heartbeats(connection)
    except SQLAlchemyError as error:
        down = Check(False, f"the store cannot be read ({type(error).__name__})")
        return {"store": down, "worker_heartbeat": down, "worker_lag": down, "clock": down}
    return {
        "store": Check(True, "the store reads"),
        "worker_heartbeat": _heartbeat(beats, settings.api_ready_heartbeat_s),
        "worker_lag": _lag(beats, settings.api_ready_heartbeat_s, settings.api_ready_lag),
        "clock": _clock(values.get("clock"), settings.api_ready_clock_days),
    }


def _heartbeat(beats: dict[str, tuple[float, int]], limit_s: int) -> Check:
    """Ready while any worker beats: the group moves a silent worker's partitions to the others."""
    if not beats:
        return Check(False, "no worker has written a heartbeat to this store")
    age = max(time.time() - max(at for at, _ in beats.values()), 0.0)
    alive = sum(time.time() - at <= limit_s for at, _ in beats.values())
    return Check(age <= limit_s, f"the last worker heartbeat was {age:.0f} s ago (limit {limit_s} s); {alive} alive")


def _lag(beats: dict[str, tuple[float, int]], limit_s: int, limit: int) -> Check:
    """The lag of the workers alive (each reports its own partitions'; a silent worker's moved to the others)."""
    alive = [lag for at, lag in beats.values() if time.time() - at <= limit_s]
    if not alive:
        return Check(False, "no worker alive has reported how far behind it is")
    lag = sum(alive)
    return Check(lag <= limit, f"the workers are {lag} messages behind the events topic (limit {limit})")


def _clock(value: str | None, limit_days: int) -> Check:
    if value is None:
        return Check(False, "no event has been applied yet (no clock)")
    days = (datetime.now(VIETNAM).date() - date.fromisoformat(value)).days
    if not limit_days:
        return Check(True, f"T = {value}, {days} days before today in Vietnam (not checked)")
    return Check(days <= limit_days, f"T = {value} is {days} days before today in Vietnam (limit {limit_days})")
