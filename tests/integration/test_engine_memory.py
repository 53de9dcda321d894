"""durable_rules' C engine, as uythac installs it, reads and writes only memory it owns.

PyPI's durable-rules 2.0.28 reads past its arrays on almost every batch and now and then crashes the
worker (deploy/durable-rules/fixes.patch says where); the project builds it with fixes. This runs
engine_memory_driver.py under valgrind and fails on any error whose stack is in the engine: on PyPI's build
it reports four.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from uythac import bootstrap

DRIVER = Path(__file__).with_name("engine_memory_driver.py")


def engine_errors(log: str) -> list[str]:
    """valgrind's error reports (blank-line separated blocks) with a frame in durable's engine."""
    blocks = re.split(r"\n==\d+== \n", log)
    return [block for block in blocks if "durable_rules_engine" in block]


def test_the_installed_durable_rules_is_the_fixed_build() -> None:
    bootstrap.check_durable_rules()


def test_the_engine_touches_no_memory_it_does_not_own() -> None:
    valgrind = shutil.which("valgrind")
    assert valgrind, "valgrind is missing: `make tools` installs it (apt-get install valgrind)"
    env = dict(os.environ, PYTHONMALLOC="malloc")  # valgrind sees Python's allocations one by one
    run = subprocess.run(
        [valgrind, "--num-callers=12", sys.executable, str(DRIVER)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert re.fullmatch(r"decisions: [1-9]\d*\n", run.stdout), run.stdout
    errors = engine_errors(run.stderr)
    assert not errors, f"{len(errors)} memory errors in durable_rules_engine, the first:\n{errors[0]}"
