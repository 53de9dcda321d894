"""Replay throughput and peak memory on a generated province-year (issue 2's benchmark).

Runs `uythac replay` pinned to one core on two sizes of the same province shape: events/s tells the
speed; the two peak RSS figures tell whether memory follows the size of the event history (it should
not: it follows open obligations and units). Sizes: BENCH_EVENTS (default 1 200 000) and half of it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tests.bench.common import UYTHAC, machine, measure, province

TARGET = 20_000  # events/s on one core (issue 2)


def replay_once(events: int) -> tuple[int, float, float]:
    """(events read, events/s, peak RSS MB) of one replay onto a fresh store."""
    source = province(events)
    with tempfile.TemporaryDirectory(prefix="uythac-bench-") as scratch:
        report = Path(scratch) / "report.json"
        run = measure([UYTHAC, "replay", str(source), "--report", str(report), "--db", f"{scratch}/bench.db"])
    summary = run.output.strip().splitlines()[-1]  # "read N events: ..."
    read = int(summary.split()[1])
    return read, read / run.seconds, run.peak_rss_mb


def main() -> None:
    size = int(os.environ.get("BENCH_EVENTS", "1200000"))
    print(f"replay benchmark on {machine()}; one core (taskset-style affinity to core 0)")
    results = [replay_once(n) for n in (size // 2, size)]
    for read, rate, rss in results:
        print(f"  replay {read:>9,} events: {rate:>8,.0f} events/s, peak RSS {rss:>6.0f} MB")
    (small_n, _, small_rss), (big_n, big_rate, big_rss) = results
    print(
        f"  memory: {big_n / small_n:.1f}x the events took {big_rss / small_rss:.2f}x the peak RSS; "
        f"throughput {big_rate:,.0f} events/s vs target {TARGET:,} ({'met' if big_rate >= TARGET else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
