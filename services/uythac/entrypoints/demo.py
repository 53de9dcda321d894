"""`uythac demo`: a synthetic province replayed without Kafka and shown as the letter's table.

`make run` does the same through the broker and the worker; this is the way to see it on a machine
without Java (and the quickest way to try a changed scorecard: `UYTHAC_SCORECARD` or `--scorecard`).
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from uythac import bootstrap
from uythac.core.report import render
from uythac.devtools import generate
from uythac.entrypoints import progress
from uythac.entrypoints.replay import replay
from uythac.entrypoints.terminal import distribution_table
from uythac.service.reports import current_report
from uythac.settings import Settings


def run(directory: Path, communes: int, settings: Settings) -> int:
    console = Console()
    card = bootstrap.load_scorecard(settings)
    directory.mkdir(parents=True, exist_ok=True)
    events = directory / f"province-{communes}.jsonl.gz"
    if not events.exists():
        console.print(f"generating a synthetic province of {communes} communes into {events} ...")
        with progress.shown("generate", 0, "lines") as made:
            generate.write(events, generate.GenerateOptions(communes=communes), made)
    db = directory / "uythac.db"
    for stale in directory.glob("uythac.db*"):
        stale.unlink()
    store = bootstrap.open_store(str(db), settings)
    try:
        started = time.perf_counter()
        with (directory / "rejects.jsonl").open("w", encoding="utf-8") as rejects:
            processor = bootstrap.processor(settings, store, card)
            latest = bootstrap.latest_accepted(settings)
            size = events.stat().st_size
            with progress.shown(f"replay {events.name}", size, "bytes") as update:
                summary = replay(
                    events,
                    processor,
                    rejects=rejects,
                    batch_size=settings.replay_batch_size,
                    batch_days=settings.replay_batch_days,
                    batch_max=settings.replay_batch_max,
                    latest=latest,
                    progress=lambda done: update(done, size),
                )
        elapsed = time.perf_counter() - started
        report = current_report(store, card)
    finally:
        store.close()
    (directory / "report.json").write_text(render(report), encoding="utf-8")
    console.print(summary.line() + f" in {elapsed:.1f} s ({summary.read / elapsed:,.0f} events/s)")
    console.print(distribution_table(report))
    console.print(
        f"as of {report['as_of']}: {len(report['flags'])} loans flagged for a missed 30-day inspection. "
        f"Report: {directory / 'report.json'}; rejects: {directory / 'rejects.jsonl'}; store: {db}"
    )
    return 0
