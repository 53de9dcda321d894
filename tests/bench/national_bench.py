"""Toward VBSP's national size (issue 22): a generated country as large as the machine allows, replayed and served.

VBSP lends in about 10 000 communes, 4 organizations each (~6.7 M loans, ~200 000 groups). The country here is
BENCH_NATIONAL_COMMUNES communes (default 2 000; 14 to a district, as nationally), the generator's history plus
a year. It measures:

1. `uythac replay` of the whole country onto a new SQLite store, pinned to one core: events/s and peak RSS;
2. the store's size on disk, and its loans, groups and units;
3. the API on that store (`uythac api`, 2 processes x 4 threads), the API benchmark's request mix at
   BENCH_NATIONAL_API_RATE requests/s (300) for BENCH_NATIONAL_API_SECONDS (20) after a warm-up: p50, p99;
   with BENCH_NATIONAL_REPORT=0, without the whole country's report (one request in 3 000, ~20 s each).

`make bench-national`; the generated file is kept under var/bench/, the store is made again at each run.
"""

from __future__ import annotations

import os
import random
import sqlite3
import tempfile
from pathlib import Path

from tests.bench.api_bench import WARM_UP_S, _print, _run_client, _serving, request_mix
from tests.bench.common import BENCH_DIR, UYTHAC, events_read, generated, machine, measure
from uythac.devtools import generate
from uythac.entrypoints.api.auth import new_key

COMMUNES_PER_DISTRICT = 14  # ~10 000 communes in ~700 districts


def country(communes: int) -> Path:
    """The generated country's events, written once and kept under var/bench/."""
    districts = max(1, communes // COMMUNES_PER_DISTRICT)
    options = generate.GenerateOptions(communes=communes, districts=districts, months=12, seed=7)
    return generated(f"national-{communes}c", options)


def on_disk(db: Path) -> int:
    """Bytes of the store's file and whatever SQLite keeps beside it."""
    return sum(path.stat().st_size for path in db.parent.glob(db.name + "*"))


def main() -> None:
    communes = int(os.environ.get("BENCH_NATIONAL_COMMUNES", "2000"))
    rate = float(os.environ.get("BENCH_NATIONAL_API_RATE", "300"))
    seconds = float(os.environ.get("BENCH_NATIONAL_API_SECONDS", "20"))
    print(f"national size: {machine()}")
    source = country(communes)
    db = BENCH_DIR / f"national-{communes}c.db"
    if not (os.environ.get("BENCH_NATIONAL_REUSE") and db.exists()):
        replay(source, db, communes)
    randomness = random.Random(20240105)
    mix = request_mix(db)
    if os.environ.get("BENCH_NATIONAL_REPORT") == "0":  # without the whole country's report (see docs/benchmarks.md)
        mix = [(weight, make) for weight, make in mix if not make(random.Random()).startswith("/v1/report")]
    makers = randomness.choices(
        [make for _, make in mix], [weight for weight, _ in mix], k=int(rate * (WARM_UP_S + seconds))
    )
    paths = [make(randomness) for make in makers]
    token = new_key()
    cpu: list[float] = []
    with _serving(db, {"bench": ("all", token)}, cpu) as served:
        answers = _run_client(served.port, token, paths, rate)
    results = [(path, latency, status) for i, path, latency, status in answers if i >= int(rate * WARM_UP_S)]
    print("  the API on that store:")
    _print(results, rate, seconds, os.environ.get("UYTHAC_API_WORKERS", "2"), os.environ.get("UYTHAC_API_THREADS", "4"))


def replay(source: Path, db: Path, communes: int) -> None:
    """Replay the country onto a new store at `db`, one core; print what it took and what it made."""
    for old in db.parent.glob(db.name + "*"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="uythac-national-") as scratch:
        run = measure([UYTHAC, "replay", str(source), "--db", str(db), "--report", f"{scratch}/report.json"])
    events = events_read(run.output)
    with sqlite3.connect(db) as connection:
        loans, groups, units = (
            connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in ("loans", "groups", "units")
        )
    print(
        f"  {communes} communes ({source.stat().st_size / 2**20:,.0f} MiB gzip'd): {events:,} events, {loans:,} loans, "
        f"{groups:,} groups, {units:,} units"
    )
    print(f"  replay: {run.seconds:,.0f} s, {events / run.seconds:,.0f} events/s, peak RSS {run.peak_rss_mb:,.0f} MB")
    print(f"  store on disk: {on_disk(db) / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
