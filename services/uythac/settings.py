"""Configuration from `UYTHAC_*` environment variables, read once into one object (12-factor).

Every setting and its default is here, and only here (docs/configuration.md lists them); command-line flags
override them (`entrypoints.cli`), and `bootstrap` turns them into the running parts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from uythac.errors import ConfigError


@dataclass(frozen=True)
class Settings:
    db: str = "var/uythac.db"  # SQLite path, or a SQLAlchemy URL (postgresql+psycopg://...)
    db_pool_size: int = 5  # PostgreSQL: connections a process keeps at most (an API process: its threads + 1)
    db_statement_timeout_s: int = 60  # PostgreSQL: a statement running longer is cancelled; 0: never
    # PostgreSQL: a session that holds a transaction open this long without a word (a frozen worker, holding the
    # store's writer lock) is ended by the server, so the other workers go on; 0: never
    db_idle_in_transaction_s: int = 60
    scorecard: str = ""  # a scorecard YAML file; empty: the packaged rules/scorecard.yaml
    # Events per store transaction of a worker (at most: it applies what its intake polled meanwhile), and of a
    # replay. Each commit rewrites pages spread over the whole store (the seen event ids, the loans), so fewer,
    # larger commits pay, for ~1.5 KB of memory an event in flight (docs/benchmarks.md): a replay, a bulk load
    # that nothing waits on, takes larger ones. A replay's batch holds at least `replay_batch_size` events and
    # covers at least `replay_batch_days` business days, so that a wider province's batches cover as many days
    # as a narrower one's (each loan a batch touches costs the same once a batch), up to `replay_batch_max`.
    batch_size: int = 60_000
    replay_batch_size: int = 240_000
    replay_batch_days: int = 42
    replay_batch_max: int = 1_000_000
    reports_months: int = 24  # month-end reports kept for `?as_of=` (the latest ones); 0: none
    cache_entities: int = 1_000_000  # loans (and as many groups) kept in memory between batches; ~1.65 KB each
    max_future_days: int = 1  # an event dated more than this many days after today in Vietnam is rejected
    log_level: str = "info"
    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_topic: str = "uythac.events"
    # publish, tick and status give up on a broker that has not answered within this many seconds (one line
    # naming the address); the worker keeps retrying instead
    kafka_connect_timeout_s: int = 5
    kafka_partitions: int = 12  # partitions of the topics the worker creates (uythac.events, flags, scores)
    kafka_group: str = "uythac-rules"  # the workers' consumer group
    kafka_session_timeout_ms: int = 10000  # a worker that died unannounced loses its partitions after this
    # this worker's own stable name in its group (static membership): started again under it, it gets its
    # partitions back at once, without waiting out the session; empty: a new member at each start
    kafka_instance_id: str = ""
    kafka_flags_topic: str = "uythac.flags"
    kafka_scores_topic: str = "uythac.scores"
    worker_metrics_port: int = 9102  # the worker's /metrics; 0 turns it off
    worker_stall_s: int = 60  # an intake making no progress this long is replaced (`worker._watch`); 0: never
    api_bind: str = "127.0.0.1:8000"  # `uythac api` (gunicorn): host:port, or unix:/path
    # /metrics and /readyz answer only here (operators, Prometheus); empty: on the public bind too
    api_internal_bind: str = "127.0.0.1:9103"
    api_workers: int = 2  # gunicorn worker processes
    api_threads: int = 4  # threads per worker process (gthread)
    api_timeout_s: int = 30  # a worker silent this long is restarted by gunicorn
    api_keys_file: str = ""  # YAML of hashed API keys (`uythac apikey`); empty: every /v1 request is refused
    api_open_health: int = 1  # 1: /healthz and /readyz need no key; 0: they need a valid key
    api_open_metrics: int = 1  # 1: /metrics needs no key; 0: it needs a key of scope `all`
    api_max_events: int = 500  # events in one POST /v1/events (a JSON array)
    api_scoped_past_days: int = 365  # a key scoped below all may not post an event dated earlier than T minus this
    api_scoped_rate: int = 20  # requests a second a key scoped below all may make, per API process; 0: no limit
    api_produce_timeout_ms: int = 5000  # POST /v1/events answers 503 when Kafka has not acknowledged by then
    api_ready_heartbeat_s: int = 60  # /readyz: the worker's heartbeat in the store must be at most this old
    api_ready_lag: int = 10000  # /readyz: at most this many events-topic messages not yet applied
    api_ready_clock_days: int = 2  # /readyz: Vietnam today minus the clock T at most this; 0: not checked
    # The officers' pages (/trang): the secret that signs their session cookies (32+ random characters; empty: a
    # random one per `uythac api` start, so a restart signs everyone out), how long a sign-in lasts, how many
    # failed sign-ins in a row one address may make before each further one makes it wait twice as long (from 2 s),
    # and the worklist's lines per page.
    pages_secret: str = ""
    pages_session_minutes: int = 480
    pages_signin_failures: int = 5
    pages_per_page: int = 100

    def __post_init__(self) -> None:
        """Every number here is a count, a size, a time or a port: a negative one is a mistake, refused with the
        setting's name (from the environment or from a command's flag: `dataclasses.replace` comes here too)."""
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, int) and value < 0:
                raise ConfigError(f"UYTHAC_{field.name.upper()}: must be 0 or more, not {value}")


def load(environ: Mapping[str, str] = os.environ) -> Settings:
    values: dict[str, object] = {}
    for field in fields(Settings):
        raw = environ.get(f"UYTHAC_{field.name.upper()}")
        if raw is None:
            continue
        if field.type in ("int", int):
            try:
                values[field.name] = int(raw)
            except ValueError as error:
                raise ConfigError(f"UYTHAC_{field.name.upper()}: not an integer: {raw!r}") from error
        else:
            values[field.name] = raw
    return Settings(**values)  # type: ignore[arg-type]
