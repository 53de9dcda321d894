"""`uythac demo` (what `make run` does): a synthetic province, replayed and shown as the letter's table.

The table counts units per class (Tốt / Khá / Trung bình / Yếu) for each district and organization,
the shape of the Thanh Hóa letter: "3/520 communes good, 113 fair, 396 average, 8 weak".
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from uythac import generate, scorecard, views
from uythac.processor import Processor
from uythac.replay import replay
from uythac.report import render
from uythac.schemas.events import ORGS
from uythac.scorecard import CLASSES
from uythac.store import Store


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


def distribution_table(report: dict[str, Any]) -> Table:
    """Units per class (T/K/TB/Y) by district and organization, with a province total."""
    counts: Counter[tuple[str, str, str]] = Counter(
        (unit["district_id"], unit["org"], unit["class"]) for unit in report["units"]
    )
    districts = sorted({unit["district_id"] for unit in report["units"]})
    table = Table(title=f"Units per class (Tốt/Khá/Trung bình/Yếu) as of {report['as_of']}")
    table.add_column("district")
    for org in ORGS:
        table.add_column(org, justify="right")
    for district in [*districts, "total"]:
        cells = []
        for org in ORGS:
            row = [
                sum(counts[(d, org, klass)] for d in districts)
                if district == "total"
                else counts[(district, org, klass)]
                for klass in CLASSES
            ]
            cells.append("/".join(map(str, row)))
        table.add_row(district, *cells, end_section=district == districts[-1] if districts else False)
    return table
