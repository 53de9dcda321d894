"""What every benchmark shares: the machine it ran on, a cached generated province, a measured child.

Benchmarks print numbers; they never assert a target (targets are in docs/benchmarks.md, beside the numbers).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from uythac.devtools import generate

ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = ROOT / "var" / "bench"
UYTHAC = str(Path(sys.executable).with_name("uythac"))


def machine() -> str:
    """One line naming the machine: CPU model, cores, memory, Python."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}"


def generated(name: str, options: generate.GenerateOptions) -> Path:
    """The events `options` generate, written once under var/bench/ as `name` and the generator's revision (a new
    revision: a new file), and kept."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / f"{name}.r{generate.REVISION}.jsonl.gz"
    if not path.exists():
        partial = path.with_suffix(".partial.gz")
        generate.write(partial, options)
        partial.rename(path)
    return path


def province(events: int, seed: int = 7) -> Path:
    """A generated province of about `events` events."""
    start = generate.GenerateOptions().start
    options = generate.options_for_events(events, seed=seed, districts=27, months=12, start=start)
    return generated(f"province-{events}-{seed}", options)


def events_read(output: str) -> int:
    """The events `uythac replay` read, from its summary line ("read N events: ...")."""
    return int(output.split("read ", 1)[1].split(" events", 1)[0])


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mb: float
    output: str
    cpu_seconds: float  # user + system, the child's own


CORE = int(os.environ.get("BENCH_CORE", "0"))  # the core a one-core run is pinned to


def measure(command: list[str], one_core: bool = True, env: dict[str, str] | None = None) -> Run:
    """Run a command to its end: its wall time and its own peak resident memory (pinned to core BENCH_CORE, 0 by
    default, if asked)."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            preexec_fn=(lambda: os.sched_setaffinity(0, {CORE})) if one_core else None,
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read()
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{output}")
    return Run(seconds, usage.ru_maxrss / 1024, output, usage.ru_utime + usage.ru_stime)
