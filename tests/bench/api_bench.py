"""The API under a steady load (issue 4's benchmark): p50 / p99 / max latency at a fixed request rate.

1. A province-scale store: BENCH_API_DB if given, else `uythac replay` of a generated province of 520
   communes over 12 months (~2.7 M events; kept under var/bench/, so only the first run pays the minutes).
2. `uythac api` (gunicorn, UYTHAC_API_WORKERS x UYTHAC_API_THREADS as configured; defaults 2 x 4) on loopback.
3. An open-loop client in a separate process: a Python asyncio HTTP/1.1 client over keep-alive connections
   sends BENCH_API_RATE requests/s (default 300) for BENCH_API_SECONDS (default 30) after 5 s of warm-up,
   each at its scheduled time whether or not earlier ones have answered. A request's latency runs from its
   scheduled time to its last byte, so a server that falls behind shows it (no coordinated omission).

The mix is by who asks (`request_mix`): commune officers most (their unit, worklist, loans, flags), district
officers (their district's units, flags, table), the province least (units by class, the whole table, and
the full report about once a minute at 300/s). Any answer other than 200 is an error.

4. Abuse (`abuse`): the same client, now through nginx as deployed (deploy/nginx/nginxctl), for
   BENCH_API_ABUSE_SECONDS (default 15) in each of four phases: nothing else; 70 slow clients trickling
   requests a byte every 0.3 s; a commune's key asking for past month ends' reports as fast as it can (the API
   keeps parsed month-end answers and limits a scoped key to UYTHAC_API_SCOPED_RATE requests a second); 2 000
   keyless requests with random methods (the /metrics labels stay bounded). The normal client's p99 in each.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import random
import sqlite3
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.bench.common import BENCH_DIR, UYTHAC, generated, machine
from tests.kafka_broker import free_ports
from tests.proxy_support import SLOW_BODIES, SLOW_HEADERS, run_nginxctl, slow_clients
from uythac.adapters.sql.layout import head
from uythac.core.dates import day_of
from uythac.devtools import generate
from uythac.entrypoints.api.auth import entry, new_key

TARGET_P99_MS = 50.0
WARM_UP_S = 5.0
MAX_CONNECTIONS = 64


def store() -> Path:
    """BENCH_API_DB, or a replayed 520-commune province-year kept under var/bench/."""
    given = os.environ.get("BENCH_API_DB")
    if given:
        return Path(given)
    db = BENCH_DIR / f"api-province-520c-12m.r{generate.REVISION}.layout{head()}.db"  # made again when either changes
    if not db.exists():
        source = generated("province-520c-12m", generate.GenerateOptions(communes=520, months=12, seed=7))
        print(f"  building {db.name} by replay of {source.name} (minutes, once)", flush=True)
        partial = db.with_suffix(".partial")
        with tempfile.TemporaryDirectory() as scratch:
            report = f"{scratch}/report.json"
            subprocess.run([UYTHAC, "replay", str(source), "--db", str(partial), "--report", report], check=True)
        partial.rename(db)
    return db


def request_mix(db: Path) -> list[tuple[float, Callable[[random.Random], str]]]:
    """(weight, path maker), by who asks: commune officers (most), district officers, the province. Every
    request names a unit, loan, commune or district that exists in the store."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        units = connection.execute("SELECT district_id, commune_id, org FROM units").fetchall()
        loans = [row[0] for row in connection.execute("SELECT loan_id FROM loans WHERE status IS NOT NULL LIMIT 20000")]
    districts = sorted({district for district, _, _ in units})
    communes = sorted({commune for _, commune, _ in units})

    def unit(r: random.Random) -> str:
        _, commune, org = r.choice(units)
        return f"/v1/units/{commune}/{org}"

    return [
        # a commune officer: the unit's score and work, the worklist, a loan, the commune's flags
        (30, unit),
        (20, lambda r: f"/v1/worklist?commune_id={r.choice(communes)}&within_days={r.randint(0, 30)}"),
        (15, lambda r: f"/v1/loans/{r.choice(loans)}"),
        (10, lambda r: f"/v1/flags?commune_id={r.choice(communes)}"),
        # a district officer: the district's units, flags (a page or two) and table
        (8, lambda r: f"/v1/units?district_id={r.choice(districts)}&per_page=100"),
        (7, lambda r: f"/v1/flags?district_id={r.choice(districts)}&page={r.randint(1, 2)}"),
        (5, lambda r: f"/v1/distribution?district_id={r.choice(districts)}"),
        # the province: units by class or org, the whole table, flags by org, and rarely the full report
        (2, lambda r: f"/v1/units?{r.choice(['class=tot', 'class=yeu', 'org=HND'])}&page={r.randint(1, 3)}"),
        (2, lambda r: "/v1/distribution"),
        (1, lambda r: f"/v1/flags?org={r.choice(['HND', 'HPN', 'HCCB', 'DTN'])}&page={r.randint(1, 5)}"),
        (0.02, lambda r: "/v1/report"),
    ]


def endpoint(path: str) -> str:
    """The path's route, for per-endpoint figures: /v1/units/C0001/HND → /v1/units/{commune_id}/{org}."""
    parts = path.split("?")[0].split("/")
    if parts[2] == "units" and len(parts) == 5:
        return "/v1/units/{commune_id}/{org}"
    if parts[2] == "loans":
        return "/v1/loans/{loan_id}"
    return "/".join(parts)


# the client (its own process) ------------------------------------------------------------------------
class _Connections:
    """Idle keep-alive connections to take; a new one when none is idle (up to MAX_CONNECTIONS)."""

    def __init__(self, port: int) -> None:
        self.port, self.idle, self.open = port, asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]](), 0

    async def take(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.idle.empty() and self.open < MAX_CONNECTIONS:
            self.open += 1
            return await asyncio.open_connection("127.0.0.1", self.port)
        return await self.idle.get()


async def _get(pool: _Connections, path: str, token: str) -> int:
    reader, writer = await pool.take()
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    status = int((await reader.readline()).split()[1])
    length, keep = 0, True
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "connection" and value.strip().lower() == "close":
            keep = False
    await reader.readexactly(length)
    if keep:
        pool.idle.put_nowait((reader, writer))
    else:
        pool.open -= 1
        writer.close()
    return status


async def _drive(port: int, token: str, paths: list[str], rate: float) -> list[tuple[int, str, float, int]]:
    """Send paths[i] at start + i / rate; (i, path, seconds from schedule to answer, status) of each."""
    pool, results = _Connections(port), []
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.5

    async def one(index: int, path: str, due: float) -> None:
        try:
            status = await _get(pool, path, token)
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            status = 0
        results.append((index, path, loop.time() - due, status))

    tasks = []
    for i, path in enumerate(paths):
        due = start + i / rate
        await asyncio.sleep(max(due - loop.time(), 0))
        tasks.append(asyncio.create_task(one(i, path, due)))
    await asyncio.gather(*tasks)
    return results


def _client(port: int, token: str, paths: list[str], rate: float, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    out.put(asyncio.run(_drive(port, token, paths, rate)))


# the run --------------------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else 0.0


def main() -> None:
    rate = float(os.environ.get("BENCH_API_RATE", "300"))
    seconds = float(os.environ.get("BENCH_API_SECONDS", "30"))
    print(f"API benchmark on {machine()}")
    db = store()
    mix = request_mix(db)
    randomness = random.Random(20240105)
    makers = randomness.choices(
        [make for _, make in mix], [weight for weight, _ in mix], k=int(rate * (WARM_UP_S + seconds))
    )
    paths = [make(randomness) for make in makers]
    token, commune = new_key(), new_key()
    _, first_commune, _ = _units(db)[0]
    keys = {"bench": ("all", token), "commune": (f"commune:{first_commune}", commune)}
    cpu: list[float] = []
    with _serving(db, keys, cpu) as served:
        answers = _run_client(served.port, token, paths, rate)
        abuse(served, db, token, commune, paths, rate)
    warm_up = int(rate * WARM_UP_S)
    results = [(path, latency, status) for i, path, latency, status in answers if i >= warm_up]
    print("directly to gunicorn:")
    _print(results, rate, seconds, os.environ.get("UYTHAC_API_WORKERS", "2"), os.environ.get("UYTHAC_API_THREADS", "4"))
    print(f"  server CPU (start-up included, abuse phases too): {cpu[0] * 1000 / len(paths):.2f} ms per request")


def _units(db: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return connection.execute("SELECT district_id, commune_id, org FROM units ORDER BY 1, 2, 3").fetchall()


def _month_ends(db: Path) -> list[str]:
    """The month ends whose report the store kept (their `?as_of=`)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        days = [day for (day,) in connection.execute("SELECT as_of FROM snapshots ORDER BY as_of")]
    return [day_of(day).isoformat() for day in days]


def abuse(served: Served, db: Path, token: str, commune: str, paths: list[str], rate: float) -> None:
    """The normal client through nginx, alone and beside each abuse in turn; a line of figures for each."""
    seconds = float(os.environ.get("BENCH_API_ABUSE_SECONDS", "15"))
    count = int(rate * (2 + seconds))
    normal, warm_up = paths[:count], int(rate * 2)
    month_ends = _month_ends(db)
    proxy_port = free_ports(1)[0]
    env = {
        **os.environ,
        "UYTHAC_NGINX_DIR": str(served.scratch / "nginx"),
        "UYTHAC_NGINX_PORT": str(proxy_port),
        "UYTHAC_NGINX_UPSTREAM": f"127.0.0.1:{served.port}",
        "UYTHAC_NGINX_STOP_WITH_PID": str(os.getpid()),
    }
    if os.geteuid() == 0:
        env["UYTHAC_NGINX_USER"] = "root"  # the scratch folder is private to its owner
    started = run_nginxctl("up", env)
    if started.returncode != 0:
        print(f"abuse: skipped, nginx did not start: {started.stderr.strip()}")
        return
    try:
        print(f"abuse: the same mix through nginx, {rate:.0f} requests/s for {seconds:.0f} s per phase")
        print(f"  {'beside it':<52} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7}  abuse's answers")
        phases: list[tuple[str, Callable[[], contextlib.AbstractContextManager[Callable[[], str]]]]] = [
            ("nothing", _nothing),
            (f"{SLOW_HEADERS + SLOW_BODIES} slow clients (a byte every 0.3 s)", lambda: _slow(proxy_port, token)),
            ("a commune's key asking for past month ends", lambda: _flood(proxy_port, commune, month_ends)),
            ("2 000 keyless requests with random methods", lambda: _methods(proxy_port, served.internal)),
        ]
        for name, phase in phases:
            with phase() as said:
                answers = _run_client(proxy_port, token, normal, rate)
            latencies = [latency * 1000 for i, _, latency, _ in answers if i >= warm_up]
            errors = sum(status != 200 for i, _, _, status in answers if i >= warm_up)
            p50, p99, most = percentile(latencies, 0.5), percentile(latencies, 0.99), max(latencies)
            print(f"  {name:<52} {p50:>8.1f} {p99:>8.1f} {most:>8.1f} {errors:>7}  {said()}")
    finally:
        run_nginxctl("down", env)


@contextmanager
def _nothing() -> Iterator[Callable[[], str]]:
    yield lambda: ""


@contextmanager
def _slow(port: int, token: str) -> Iterator[Callable[[], str]]:
    with slow_clients(port, token):
        yield lambda: "held by nginx"


def _statuses(counts: dict[int, int]) -> str:
    return ", ".join(f"{count} x {status}" for status, count in sorted(counts.items()))


@contextmanager
def _repeat(send: Callable[[int], int]) -> Iterator[Callable[[], str]]:
    """`send(n)` over and over on a thread (its statuses counted) until the phase ends."""
    counts: dict[int, int] = defaultdict(int)
    stop = threading.Event()

    def loop() -> None:
        n = 0
        while not stop.is_set():
            counts[send(n)] += 1
            n += 1

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield lambda: _statuses(counts)
    finally:
        stop.set()
        thread.join(timeout=10)


def _status(port: int, method: str, path: str, token: str | None = None) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.read()
        return int(error.code)
    except OSError:
        return 0


@contextmanager
def _flood(port: int, token: str, month_ends: list[str]) -> Iterator[Callable[[], str]]:
    def send(n: int) -> int:
        kind = "report" if n % 2 else "distribution"
        return _status(port, "GET", f"/v1/{kind}?as_of={month_ends[n % len(month_ends)]}", token)

    with _repeat(send) as said:
        yield said


@contextmanager
def _methods(port: int, internal: int) -> Iterator[Callable[[], str]]:
    before = _metrics_lines(internal)
    methods = random.Random(7)

    def send(n: int) -> int:
        if n >= 2000:
            time.sleep(0.05)
            return -1
        method = "".join(methods.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(8))
        return _status(port, method, "/v1/units")

    with _repeat(send) as said:
        yield lambda: f"{said()}; /metrics {before} lines before, {_metrics_lines(internal)} after"


def _metrics_lines(internal: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{internal}/metrics", timeout=10) as response:
        return len(response.read().splitlines())


@dataclass(frozen=True)
class Served:
    port: int  # the callers' address
    internal: int  # /metrics
    scratch: Path


@contextmanager
def _serving(db: Path, tokens: dict[str, tuple[str, str]], cpu: list[float]) -> Iterator[Served]:
    """`uythac api` on free loopback ports, with these keys (name: (scope, token)). When it has stopped,
    the CPU seconds of its processes (gunicorn's master and the workers it reaped) go into `cpu`."""
    with tempfile.TemporaryDirectory(prefix="uythac-api-bench-") as scratch:
        keys = Path(scratch) / "keys.yaml"
        entries = "".join(entry(name, scope, token) for name, (scope, token) in tokens.items())
        keys.write_text("keys:\n" + entries, encoding="utf-8")
        port, internal = free_ports(2)
        env = {
            **os.environ,
            "UYTHAC_API_KEYS_FILE": str(keys),
            "UYTHAC_API_BIND": f"127.0.0.1:{port}",
            "UYTHAC_API_INTERNAL_BIND": f"127.0.0.1:{internal}",  # never the default 9103 of `make run`
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with (Path(scratch) / "api.log").open("wb") as log:
            server = subprocess.Popen([UYTHAC, "api", "--db", str(db)], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_up(port)
            yield Served(port, internal, Path(scratch))
        finally:
            server.terminate()
            _, _, usage = os.wait4(server.pid, 0)
            cpu.append(usage.ru_utime + usage.ru_stime)


def _wait_up(port: int) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _run_client(port: int, token: str, paths: list[str], rate: float) -> list[tuple[int, str, float, int]]:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    client = context.Process(target=_client, args=(port, token, paths, rate, out))
    client.start()
    results: list[tuple[int, str, float, int]] = out.get()
    client.join()
    return results


def _print(results: list[tuple[str, float, int]], rate: float, seconds: float, workers: str, threads: str) -> None:
    by_endpoint: dict[str, list[float]] = defaultdict(list)
    errors = sum(status != 200 for _, _, status in results)
    for path, latency, _ in results:
        by_endpoint[endpoint(path)].append(latency * 1000)
    server = f"{workers} workers x {threads} threads"
    print(f"  {rate:.0f} requests/s for {seconds:.0f} s, open loop, keep-alive; server: {server}")
    print(f"  {'endpoint':<32} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    everything = [latency for values in by_endpoint.values() for latency in values]
    for name, values in [*sorted(by_endpoint.items()), ("all", everything)]:
        p50, p99, most = percentile(values, 0.5), percentile(values, 0.99), max(values)
        print(f"  {name:<32} {len(values):>8} {p50:>8.1f} {p99:>8.1f} {most:>8.1f}")
    p99 = percentile(everything, 0.99)
    verdict = "met" if p99 <= TARGET_P99_MS and not errors else "NOT met"
    print(f"  errors: {errors} of {len(results)}; p99 {p99:.1f} ms vs target {TARGET_P99_MS:.0f} ms ({verdict})")


if __name__ == "__main__":
    main()
