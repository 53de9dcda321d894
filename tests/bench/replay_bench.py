"""Replay throughput and peak memory on a generated province-year (issue 2's benchmark), on SQLite and PostgreSQL.

Runs `uythac replay` pinned to one core on two sizes of the same province shape: events/s tells the
speed; the two peak RSS figures tell whether memory follows the size of the event history (it should
not: it follows open obligations and units). Sizes: BENCH_EVENTS (default 1 200 000) and half of it.
Then the full size on SQLite and on the local PostgreSQL (deploy/postgres/pgctl, a new schema each run; the
server on the other core), alternating, twice each: the ratio of their throughputs, and whether their
reports are the same bytes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tests.bench.common import BENCH_DIR, CORE, UYTHAC, machine, measure, province
from tests.postgres_server import PostgresServer

TARGET = 20_000  # events/s on one core (issue 2)


def replay_once(events: int, store: str | None = None) -> tuple[int, float, float, bytes]:
    """(events read, events/s, peak RSS MB, report) of one replay onto a fresh store (a SQLite file, else `store`)."""
    source = province(events)
    with tempfile.TemporaryDirectory(prefix="uythac-bench-") as scratch:
        report = Path(scratch) / "report.json"
        db = store or f"{scratch}/bench.db"
        run = measure([UYTHAC, "replay", str(source), "--report", str(report), "--db", db])
        written = report.read_bytes()
    summary = run.output.strip().splitlines()[-1]  # "read N events: ..."
    read = int(summary.split()[1])
    return read, read / run.seconds, run.peak_rss_mb, written


def on_both_stores(events: int) -> None:
    server = PostgresServer(BENCH_DIR.parent / "postgres", 15432)  # the local one of deploy/postgres/pgctl
    server.start()
    rates: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
    reports = set()
    for _ in range(2):
        for kind in rates:
            _, rate, rss, report = replay_once(events, server.new_store() if kind == "postgresql" else None)
            rates[kind].append(rate)
            reports.add(report)
            print(f"  {kind:<10} {events:>9,} events: {rate:>8,.0f} events/s, peak RSS {rss:>6.0f} MB")
    sqlite, postgres = (sum(found) / len(found) for found in rates.values())
    same = "the same bytes" if len(reports) == 1 else "DIFFERENT"
    print(f"  PostgreSQL / SQLite throughput: {postgres / sqlite:.0%} (target 70 %); reports: {same}")


def main() -> None:
    size = int(os.environ.get("BENCH_EVENTS", "1200000"))
    print(f"replay benchmark on {machine()}; one core (affinity to core {CORE})")
    results = [replay_once(n) for n in (size // 2, size)]
    for read, rate, rss, _ in results:
        print(f"  replay {read:>9,} events: {rate:>8,.0f} events/s, peak RSS {rss:>6.0f} MB")
    (small_n, _, small_rss, _), (big_n, big_rate, big_rss, _) = results
    print(
        f"  memory: {big_n / small_n:.1f}x the events took {big_rss / small_rss:.2f}x the peak RSS; "
        f"throughput {big_rate:,.0f} events/s vs target {TARGET:,} ({'met' if big_rate >= TARGET else 'NOT met'})"
    )
    print("SQLite and PostgreSQL, alternating:")
    on_both_stores(size)


if __name__ == "__main__":
    main()
