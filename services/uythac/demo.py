"""`uythac demo`: a synthetic province replayed without Kafka and shown as the letter's table.

`make run` does the same through the broker and the worker; this is the way to see it on a machine
without Java (and the quickest way to try a changed scorecard).
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from uythac import generate, scorecard, views
from uythac.processor import Processor
from uythac.replay import replay
from uythac.report import render
from uythac.store import Store
from uythac.tables import distribution_table


def run(directory: Path, communes: int) -> int:
    console = Console()
    directory.mkdir(parents=True, exist_ok=True)
    events = directory / f"province-{communes}.jsonl.gz"
    if not events.exists():
        console.print(f"generating a synthetic province of {communes} communes into {events} ...")
        generate.write(events, generate.GenerateOptions(communes=communes))
    db = directory / "uythac.db"
    for stale in directory.glob("uythac.db*"):
        stale.unlink()
    card = scorecard.load()
    store = Store.at(db)
    started = time.perf_counter()
    with (directory / "rejects.jsonl").open("w", encoding="utf-8") as rejects:
        summary = replay(events, Processor(store, card), rejects=rejects)
    elapsed = time.perf_counter() - started
    report = views.current_report(store, card)
    (directory / "report.json").write_text(render(report), encoding="utf-8")
    console.print(summary.line() + f" in {elapsed:.1f} s ({summary.read / elapsed:,.0f} events/s)")
    console.print(distribution_table(report))
    console.print(
        f"as of {report['as_of']}: {len(report['flags'])} loans flagged for a missed 30-day inspection. "
        f"Report: {directory / 'report.json'}; rejects: {directory / 'rejects.jsonl'}; store: {db}"
    )
    return 0
