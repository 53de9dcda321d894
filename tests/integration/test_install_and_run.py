"""Noise around the project's own commands: `pip install` without setuptools' warning box, and Ctrl-C of
`make run` as a clean end."""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_builds_without_warnings_and_holds_the_data_files(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    assert "would be ignored" not in built.stdout + built.stderr
    names = zipfile.ZipFile(next(tmp_path.glob("uythac-*.whl"))).namelist()
    for wanted in (
        "uythac/rules/scorecard.yaml",
        "uythac/schemas/json/loan.disbursed.schema.json",
        "uythac/entrypoints/pages/templates/base.html",
        "uythac/entrypoints/pages/static/pages.css",
    ):
        assert wanted in names


def test_ctrl_c_of_make_run_ends_without_a_make_error(tmp_path: Path) -> None:
    """run.sh's own traps, around a foreground command that Ctrl-C stops as it stops the API, under make in a
    terminal: make must not report `Error 1`."""
    traps = [line for line in (ROOT / "deploy/run.sh").read_text().splitlines() if line.startswith("trap ")]
    # the API's stand-in: it says when it is up, and whether Ctrl-C, not its minute running out, ended it
    command = (
        "import time\ntry:\n    print('ready', flush=True)\n    time.sleep(60)\n"
        "except KeyboardInterrupt:\n    print('interrupted', flush=True)\n    raise SystemExit(1)"
    )
    script = tmp_path / "run.sh"
    script.write_text(
        "#!/usr/bin/env bash\nset -euo pipefail\nstop() { echo stopped; }\n"
        + "\n".join(traps)
        + f'\n{sys.executable} -c "{command}"\n'
    )
    script.chmod(0o755)
    (tmp_path / "Makefile").write_text("run:\n\t./run.sh\n")
    pid, terminal = pty.fork()
    if pid == 0:
        # as from a terminal's shell: a pytest started in the background (`&`) passes Ctrl-C on as ignored
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execvp("make", ["make", "-C", str(tmp_path), "run"])
    shown = _read_until(terminal, b"ready")
    os.write(terminal, b"\x03")
    shown += _read_until(terminal, None)
    os.waitpid(pid, 0)
    text = shown.decode(errors="replace")
    assert "interrupted" in text, text
    assert "stopped" in text and not re.search(r"make: \*\*\* .*Error", text), text


def _read_until(terminal: int, wanted: bytes | None) -> bytes:
    """What the terminal shows until `wanted` (None: until it closes)."""
    shown = b""
    while wanted is None or wanted not in shown:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # the terminal's other end closed
            break
        if not chunk:
            break
        shown += chunk
    return shown


def test_the_python_that_make_run_runs_inline_runs() -> None:
    """deploy/run.sh asks Python for names (the generator's revision, the store's layout) before anything
    starts; a module it imports from that moved would stop `make run` at its first step."""
    snippets = re.findall(r"\"\$BIN/python\" -c '([^']*)'", (ROOT / "deploy/run.sh").read_text())
    assert snippets
    for snippet in snippets:
        ran = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60, check=False)
        assert ran.returncode == 0 and ran.stdout.strip(), (snippet, ran.stderr)
