"""One real PostgreSQL server per test session, for the tests that run on both stores (`store_kind`).

The server is the project's own (deploy/postgres/pgctl): Debian's PostgreSQL 15, installed with apt-get if
missing, its cluster under pytest's temporary directory, on a port picked free at start, so it never touches
the developer's (var/postgres, 15432). It is started lazily, by the first test that needs it, and stopped at
the end of the session; pgctl also stops it if the pytest process dies without tearing down.

Each store a test asks for is a schema of its own in the session's database (`PostgresServer.new_store`):
making one takes milliseconds, where a database takes a second.

    def test_something(postgres_server: PostgresServer) -> None: ...  # .new_store() -> a store URL
    def test_crash(postgres_server: PostgresServer) -> None:           # .kill() / .start() keep the data
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from tests.kafka_broker import free_ports

ROOT = Path(__file__).resolve().parent.parent
PGCTL = ROOT / "deploy" / "postgres" / "pgctl"
_schemas = itertools.count(1)


class PostgresError(RuntimeError):
    """pgctl failed; the message holds its output."""


@dataclass
class PostgresServer:
    data_dir: Path
    port: int
    _stores: dict[str, str] = field(default_factory=dict)  # a store's URL -> its schema

    def _pgctl(self, command: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "UYTHAC_PG_DIR": str(self.data_dir),
            "UYTHAC_PG_PORT": str(self.port),
            "UYTHAC_PG_STOP_WITH_PID": str(os.getpid()),
        }
        return subprocess.run(
            [str(PGCTL), command], env=env, capture_output=True, text=True, timeout=timeout_s, check=False
        )

    def _check(self, command: str, timeout_s: float) -> str:
        done = self._pgctl(command, timeout_s)
        if done.returncode != 0:
            raise PostgresError(f"pgctl {command} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done.stdout

    def start(self) -> None:
        """Start the server (a no-op if it runs; the first run may install PostgreSQL) once it answers."""
        self._check("up", timeout_s=600)

    def stop(self) -> None:
        self._check("down", timeout_s=90)

    def kill(self) -> None:
        """Stop at once, as a crash would (`pg_ctl -m immediate`); the next start recovers."""
        self._check("kill", timeout_s=90)

    @property
    def url(self) -> str:
        """The session database's URL (its `public` schema)."""
        return self._check("url", timeout_s=30).strip()

    def new_store(self) -> str:
        """The URL of an empty store: a new schema of the session's database, first on its search path."""
        base = self.url
        name = f"s{os.getpid()}_{next(_schemas)}"
        with psycopg.connect(libpq_url(base)) as connection:
            connection.execute(f"CREATE SCHEMA {name}")
        url = f"{base}?options=-csearch_path%3D{name}"
        self._stores[url] = name
        return url

    def drop_store(self, url: str) -> None:
        """Drop a store `new_store` made, with all it holds (a benchmark's store is gigabytes)."""
        with psycopg.connect(libpq_url(self.url)) as connection:
            connection.execute(f"DROP SCHEMA {self._stores.pop(url)} CASCADE")


def libpq_url(url: str) -> str:
    """A store's SQLAlchemy URL as libpq (psycopg, `pq.PGconn`) takes it: without the driver's name."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(False)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL, started on first use and stopped at the end of the session.

    Its cluster lies in a folder of its own under the system's temporary folder, not pytest's: as root the
    server runs as the `postgres` user, which must reach it, and every pytest session on the machine makes
    pytest's folder private to its owner again."""
    if not os.access(PGCTL, os.X_OK):
        pytest.fail(f"{PGCTL} is missing or not executable", pytrace=False)
    top = Path(tempfile.mkdtemp(prefix="uythac-postgres-"))
    server: PostgresServer | None = None
    error: PostgresError | None = None
    for attempt in range(3):  # a port picked free may be taken by someone else before the server binds it
        server = PostgresServer(top / str(attempt), free_ports(1)[0])
        try:
            server.start()
            error = None
            break
        except PostgresError as failure:
            error = failure
    if error is not None or server is None:
        pytest.fail(f"could not start the test PostgreSQL: {error}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(top, ignore_errors=True)
