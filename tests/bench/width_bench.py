"""Cost at width (issue 21): the per-event cost of `uythac replay` as the province widens, one core.

The same generator at BENCH_WIDTHS communes (default 520, 1 040 and 2 080: Thanh Hóa's 520 and twice and four
times it), each with history from 2002 plus 12 months (`uythac generate --communes N --months 12 --seed 9`),
replayed onto a new SQLite store pinned to one core with the default settings (and the environment's
`UYTHAC_*`, e.g. `UYTHAC_CACHE_ENTITIES`). For each width: events, events/s, CPU µs per event and its ratio to
the narrowest, peak RSS, the store's size and its loans, the loans still owing at the end (what the entity
cache would need to hold them all), and the report's digest (a change of the code must leave it as it was).
The target: the cost per event flat within 15 % across the widths.

`make bench-width` alone; `make bench` runs it last. Generated provinces are kept under var/bench/.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
from pathlib import Path

from tests.bench.common import CORE, UYTHAC, events_read, generated, machine, measure
from tests.bench.national_bench import on_disk
from uythac.devtools import generate

FLAT = 0.15  # the target: per-event cost within 15 % of the narrowest province's


def province(communes: int) -> Path:
    """The province of `communes` communes, as the issue's `uythac generate` makes it."""
    return generated(f"width-{communes}c-12m-9", generate.GenerateOptions(communes=communes, months=12, seed=9))


def widths() -> list[int]:
    """BENCH_WIDTHS: communes, comma-separated; a clear exit on anything else."""
    given = os.environ.get("BENCH_WIDTHS", "520,1040,2080")
    try:
        found = [int(width) for width in given.split(",")]
    except ValueError:
        found = []
    if not found or min(found) < 1:
        raise SystemExit(f"BENCH_WIDTHS: numbers of communes separated by commas (e.g. 520,1040), not {given!r}")
    return found


def main() -> None:
    communes_of_each = widths()
    cache = os.environ.get("UYTHAC_CACHE_ENTITIES", "the default")
    print(f"cost at width: {machine()}; replay pinned to core {CORE}; entity cache {cache}")
    first: float | None = None
    for communes in communes_of_each:
        source = province(communes)
        with tempfile.TemporaryDirectory(prefix="uythac-width-") as scratch:
            db = Path(scratch) / "width.db"
            run = measure([UYTHAC, "replay", str(source), "--db", str(db), "--report", f"{scratch}/report.json"])
            events = events_read(run.output)
            with sqlite3.connect(db) as connection:
                loans = connection.execute("SELECT count(*) FROM loans WHERE status IS NOT NULL").fetchone()[0]
                owing = connection.execute(
                    "SELECT count(*) FROM loans JOIN loan_balances USING (n) "
                    "WHERE status IS NOT NULL AND amount > principal_paid"
                ).fetchone()[0]
            size = on_disk(db)
            digest = hashlib.sha256((Path(scratch) / "report.json").read_bytes()).hexdigest()[:16]
        per_event = run.cpu_seconds / events * 1e6
        first = first or per_event
        print(
            f"  {communes:>6,} communes: {events:>11,} events, {events / run.seconds:>7,.0f} events/s, "
            f"{per_event:5.1f} µs CPU/event ({per_event / first:.2f}x; target within {1 + FLAT:.2f}x), "
            f"peak RSS {run.peak_rss_mb:>5,.0f} MB, store {size / 2**30:.2f} GiB, {loans:,} loans ({owing:,} owing), "
            f"report sha256 {digest}…"
        )


if __name__ == "__main__":
    main()
