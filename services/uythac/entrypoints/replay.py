"""`uythac replay`: a JSON Lines file through the same validation and processor as the Kafka worker.

Lines are validated one by one and applied in batches (one store transaction each). A line that is
not a valid event goes to the rejects file with its line number and reason, and nothing valid beside
it is lost. With `as_of`, events dated after it are left out and the clock ends on that day.
"""

from __future__ import annotations

import gzip
import io
import json
import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any, TextIO

from uythac.core.events import Event, Rejection, parse
from uythac.core.outcome import Outcome
from uythac.cycles import Collections
from uythac.errors import ConfigError, StoreError
from uythac.service.processor import Processor

Progress = Callable[[int], None]  # bytes of the input read so far


@dataclass
class Summary:
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    after_as_of: int = 0

    def line(self) -> str:
        text = (
            f"read {self.read} events: {self.accepted} accepted, {self.duplicates} duplicates, {self.rejected} rejected"
        )
        return text + (f", {self.after_as_of} after --as-of" if self.after_as_of else "")


@contextmanager
def lines_of(path: Path) -> Iterator[tuple[Iterable[bytes], IO[bytes]]]:
    """(lines, raw): the decompressed lines and the file underneath, whose position shows progress."""
    with path.open("rb") as raw:
        if path.suffix == ".gz":
            # GzipFile.readline is Python code; a buffer in front of it splits the lines in C.
            with io.BufferedReader(gzip.GzipFile(fileobj=raw), 1 << 16) as lines:
                yield lines, raw
        else:
            yield raw, raw


def check_json_lines(path: Path) -> None:
    """Refuse a file that is not JSON Lines at all (a JSON array, CSV), rather than reject each of its lines:
    its first line that is not blank must begin an object."""
    with lines_of(path) as (lines, _):
        for number, line in enumerate(lines, 1):
            start = line.removeprefix(b"\xef\xbb\xbf").lstrip()[:1]  # a byte-order mark is no reason
            if not start:
                continue
            if start != b"{":
                kind = "a JSON array" if start == b"[" else "CSV or text" if b"," in line else "not JSON"
                raise ConfigError(
                    f"{path}: expected JSON Lines (one event per line, each a JSON object); line {number} "
                    f"starts with {start.decode('utf-8', 'replace')!r} ({kind}?)"
                )
            return


def reject_line(number: int, original: bytes, rejection: Rejection) -> str:
    record: dict[str, Any] = {"line": number, "reason": rejection.reason}
    if rejection.event_id is not None:
        record["event_id"] = rejection.event_id
    record["original"] = original.decode("utf-8", errors="backslashreplace")
    return json.dumps(record, ensure_ascii=False) + "\n"


def replay(
    path: Path,
    processor: Processor,
    *,
    as_of: date | None = None,
    batch_size: int,
    batch_days: int = 0,
    batch_max: int | None = None,
    latest: date | None,
    rejects: TextIO | None = None,
    progress: Progress | None = None,
) -> Summary:
    """Apply the file's valid events in batches: a batch is applied once it holds `batch_size` events and its
    latest business date is `batch_days` or more after the store's clock before it (0: at `batch_size`), or once
    it holds `batch_max` (None: no limit; below `batch_size`: `batch_size`).

    Each loan a batch touches is loaded, decided and written once a batch, so the cost per event follows the
    days a batch covers: a fixed number of events covers fewer days in a wider province (docs/benchmarks.md)."""
    most = math.inf if batch_max is None else max(batch_max, batch_size)
    if as_of is not None and processor.today is not None and processor.today > as_of:
        raise StoreError(f"the store's clock is {processor.today}, after --as-of {as_of}")
    summary = Summary()
    batch: list[tuple[int, Event]] = []
    originals: dict[int, bytes] = {}
    refused: list[tuple[int, bytes, Rejection]] = []  # written in line order at each flush

    def flush(floor: date | None = None) -> None:
        outcome: Outcome = processor.process(batch, floor=floor)
        summary.accepted += len(outcome.accepted)
        summary.duplicates += outcome.duplicates
        for ref, rejection in outcome.rejected:
            assert isinstance(ref, int)
            refused.append((ref, originals[ref], rejection))
        summary.rejected += len(refused)
        if rejects is not None:
            rejects.writelines(reject_line(*entry) for entry in sorted(refused, key=lambda entry: entry[0]))
        batch.clear()
        originals.clear()
        refused.clear()

    # The batch's span runs from the store's clock to the batch's latest date: a late event (an earlier date,
    # common: inspections entered weeks after they were made) adds to the batch, not to its span.
    since = reached = processor.today
    with lines_of(path) as (lines, raw), Collections("replay") as collections:
        for number, line in enumerate(lines, 1):
            line = line.rstrip(b"\r\n")
            summary.read += 1
            parsed = parse(line, latest)
            if isinstance(parsed, Rejection):
                refused.append((number, line, parsed))
            elif as_of is not None and parsed.day > as_of:
                summary.after_as_of += 1
            else:
                batch.append((number, parsed))
                originals[number] = line
                if reached is None or parsed.day > reached:
                    reached = parsed.day
                since = since or reached  # a new store: from the first event's date
                held = len(batch)
                if held >= most or (held >= batch_size and (reached - since).days >= batch_days):
                    flush()
                    since = processor.today
                    collections.done(held)
                    if progress is not None:
                        progress(raw.tell())
        flush(floor=as_of)
        if progress is not None:
            progress(raw.tell())
    return summary
