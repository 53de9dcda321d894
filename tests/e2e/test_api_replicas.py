"""Two API servers on one PostgreSQL store, as if on two hosts: separate `uythac api` processes (gunicorn) on
separate ports. They answer the same bytes; each keeps at most `UYTHAC_DB_POOL_SIZE` connections per process
however many requests come at once; a statement past `UYTHAC_DB_STATEMENT_TIMEOUT_S` is cancelled (a table
locked by someone else: the answer is a 503 problem within seconds, not a request hanging)."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import orjson
import psycopg
import pytest
import sqlalchemy as sa

from tests.api_support import Keys, write_keys
from tests.kafka_broker import free_ports
from tests.pipeline import UYTHAC
from tests.postgres_server import PostgresServer
from tests.support import replay_into
from uythac.devtools import generate

POOL_SIZE = 2
THREADS = 8


@dataclass
class Replica:
    name: str  # its sessions' application_name on the server
    process: subprocess.Popen[bytes]
    port: int
    internal: int
    log: Path

    def get(self, path: str, keys: Keys | None = None, internal: bool = False) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.internal if internal else self.port, timeout=30)
        try:
            connection.request("GET", path, headers={} if keys is None else keys.header("all"))
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()


@dataclass
class Replicas:
    store: str
    keys: Keys
    replicas: list[Replica]


def _start(name: str, store: str, keys: Keys, directory: Path) -> Replica:
    port, internal = free_ports(2)
    env = {
        **os.environ,
        "UYTHAC_DB": f"{store}&application_name={name}",
        "UYTHAC_DB_POOL_SIZE": str(POOL_SIZE),
        "UYTHAC_DB_STATEMENT_TIMEOUT_S": "1",
        "UYTHAC_API_BIND": f"127.0.0.1:{port}",
        "UYTHAC_API_INTERNAL_BIND": f"127.0.0.1:{internal}",
        "UYTHAC_API_WORKERS": "1",
        "UYTHAC_API_THREADS": str(THREADS),
        "UYTHAC_API_KEYS_FILE": str(keys.path),
        "UYTHAC_API_READY_CLOCK_DAYS": "0",
        "UYTHAC_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_ports(1)[0]}",  # nothing there: these tests only read
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = directory / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen([UYTHAC, "api"], env=env, stdout=out, stderr=subprocess.STDOUT)
    return Replica(name, process, port, internal, log)


def _up(replica: Replica) -> bool:
    try:
        return replica.get("/healthz")[0] == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def replicas(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    directory = tmp_path_factory.mktemp("api-replicas")
    store = postgres_server.new_store()
    replay_into(store, list(generate.events(generate.GenerateOptions(communes=4, districts=2, months=14, seed=3))))
    keys = write_keys(directory)
    started = [_start(name, store, keys, directory) for name in ("api-a", "api-b")]
    try:
        deadline = time.monotonic() + 60
        for replica in started:
            while not _up(replica):
                log = replica.log.read_text(errors="replace")[-3000:]
                assert replica.process.poll() is None and time.monotonic() < deadline, f"{replica.name}:\n{log}"
                time.sleep(0.2)
        yield Replicas(store, keys, started)
    finally:
        for replica in started:
            replica.process.send_signal(signal.SIGTERM)
        for replica in started:
            assert replica.process.wait(timeout=30) == 0, replica.log.read_text(errors="replace")[-3000:]


def _database(store: str) -> str:
    """A libpq URL of the store's database, its schema first on the search path."""
    return sa.make_url(store).set(drivername="postgresql").render_as_string(hide_password=False)


def test_both_replicas_answer_the_same(replicas: Replicas) -> None:
    a, b = replicas.replicas
    report = orjson.loads(a.get("/v1/report", replicas.keys)[1])
    commune, org = report["units"][0]["commune_id"], report["units"][0]["org"]
    paths = ["/v1/report", "/v1/distribution", "/v1/worklist", "/v1/flags", f"/v1/units/{commune}/{org}"]
    for path in paths:
        status_a, body_a = a.get(path, replicas.keys)
        status_b, body_b = b.get(path, replicas.keys)
        assert status_a == status_b == 200, (path, body_a[:300], body_b[:300])
        assert body_a == body_b, path


def test_each_replica_keeps_to_its_pool_under_load(replicas: Replicas) -> None:
    """Readiness reads the store at every request: THREADS requests at once per replica would open as many
    sessions, but each process has at most POOL_SIZE (the others wait for one)."""
    seen: dict[str, int] = {}
    done = threading.Event()

    def watch() -> None:
        with psycopg.connect(_database(replicas.store), autocommit=True) as connection:
            while not done.is_set():
                rows = connection.execute(
                    "SELECT application_name, count(*) FROM pg_stat_activity "
                    "WHERE application_name IN ('api-a', 'api-b') GROUP BY application_name"
                ).fetchall()
                for name, count in rows:
                    seen[name] = max(seen.get(name, 0), count)
                time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(2 * THREADS) as pool:
            asks = [replica for replica in replicas.replicas for _ in range(150)]
            statuses = list(pool.map(lambda replica: replica.get("/readyz", internal=True)[0], asks))
    finally:
        done.set()
        watcher.join()
    assert set(statuses) <= {200, 503}  # 503: no worker beats in this store; the store itself reads
    assert seen == {"api-a": POOL_SIZE, "api-b": POOL_SIZE}


def test_a_statement_past_the_timeout_is_cancelled(replicas: Replicas) -> None:
    with psycopg.connect(_database(replicas.store)) as blocker:
        blocker.execute("LOCK TABLE meta IN ACCESS EXCLUSIVE MODE")  # held until the end of this block
        for replica in replicas.replicas:
            started = time.monotonic()
            status, body = replica.get("/readyz", internal=True)
            assert status == 503 and time.monotonic() - started < 10, (status, time.monotonic() - started)
            checks = orjson.loads(body)["checks"]
            assert checks["store"]["ok"] is False and "cannot be read" in checks["store"]["detail"], checks
    for replica in replicas.replicas:  # and the lock gone, it reads again
        checks = orjson.loads(replica.get("/readyz", internal=True)[1])["checks"]
        assert checks["store"]["ok"] is True, checks
