"""The `uythac` command as a user runs it: settings and flags reach every command, and a scorecard that cannot
be used is one line on stderr and exit status 2, never a traceback, whichever command reads it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.examples import SCORECARD_TEXT
from tests.support import loan, write_lines
from uythac import settings
from uythac.entrypoints import cli

UYTHAC = str(Path(sys.executable).with_name("uythac"))
# Every command that scores, with what it needs besides its scorecard (none of them gets as far as Kafka).
SCORING_COMMANDS = {
    "replay": ["replay", "{events}", "--report", "{dir}/report.json"],
    "report": ["report", "--db", "{dir}/store.db"],
    "distribution": ["distribution", "--db", "{dir}/store.db"],
    "demo": ["demo", "--dir", "{dir}/demo", "--communes", "1"],
    "worker": ["worker", "--db", "{dir}/store.db", "--bootstrap", "127.0.0.1:9"],
    "api": ["api", "--db", "{dir}/store.db", "--bind", "127.0.0.1:9"],
}


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    events = write_lines(tmp_path / "events.jsonl", [loan("L1", "2023-03-01")])
    filled = [arg.format(dir=tmp_path, events=events) for arg in args]
    return subprocess.run(
        [UYTHAC, *filled], capture_output=True, text=True, timeout=120, env={**os.environ, **env}, check=False
    )


def _one_clear_line(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("uythac: error: scorecard"), done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize("command", sorted(SCORING_COMMANDS))
def test_a_missing_scorecard_flag_is_one_line_and_status_2(command: str, tmp_path: Path) -> None:
    done = _run([*SCORING_COMMANDS[command], "--scorecard", "nope.yaml"], tmp_path)
    _one_clear_line(done, "nope.yaml", "No such file or directory")


@pytest.mark.parametrize("command", sorted(SCORING_COMMANDS))
def test_a_missing_scorecard_setting_is_one_line_and_status_2(command: str, tmp_path: Path) -> None:
    done = _run(SCORING_COMMANDS[command], tmp_path, UYTHAC_SCORECARD=str(tmp_path / "missing.yaml"))
    _one_clear_line(done, "missing.yaml")


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("a-folder", None, ("Is a directory",)),
        ("latin1.yaml", "windows: caf\xe9".encode("latin-1"), ("cannot be read",)),
        ("broken.yaml", b"windows: [\n", ("broken.yaml",)),
        ("incomplete.yaml", b"windows: {}\n", ("components: Missing data for required field", "classes")),
    ],
)
def test_an_unusable_scorecard_file_is_one_line_and_status_2(
    name: str, content: bytes | None, words: tuple[str, ...], tmp_path: Path
) -> None:
    path = tmp_path / name
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    done = _run([*SCORING_COMMANDS["replay"], "--scorecard", str(path)], tmp_path)
    _one_clear_line(done, *words)


def test_demo_scores_with_the_scorecard_of_the_settings(tmp_path: Path) -> None:
    """Every point of every component halved: the demo's report shows the halved maxima."""
    halved = SCORECARD_TEXT
    for points in ("max: 10", "max: 35", "max: 20", "max: 25"):
        halved = halved.replace(points, f"max: {int(points.split()[1]) / 2:g}")
    card = tmp_path / "halved.yaml"
    card.write_text(halved, encoding="utf-8")
    done = _run(SCORING_COMMANDS["demo"], tmp_path, UYTHAC_SCORECARD=str(card))
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "demo" / "report.json").read_text(encoding="utf-8"))
    maxima = {key: c["max"] for key, c in report["units"][0]["components"].items()}
    assert maxima == {
        "post_disbursement_inspection": 5,
        "periodic_inspection": 5,
        "overdue_ratio": 17.5,
        "inactive_loans": 10,
        "savings_activity": 12.5,
    }


@pytest.mark.parametrize(
    ("argv", "environ", "replay_batch", "worker_batch"),
    [
        (["replay", "e.jsonl", "--report", "r.json"], {}, 240_000, 60_000),
        (
            ["replay", "e.jsonl", "--report", "r.json"],
            {"UYTHAC_REPLAY_BATCH_SIZE": "7", "UYTHAC_BATCH_SIZE": "9"},
            7,
            9,
        ),
        (
            ["replay", "e.jsonl", "--report", "r.json", "--batch-size", "3"],
            {"UYTHAC_REPLAY_BATCH_SIZE": "7"},
            3,
            60_000,
        ),
        (["worker", "--batch-size", "3"], {"UYTHAC_REPLAY_BATCH_SIZE": "7"}, 7, 3),
    ],
)
def test_a_replay_and_a_worker_each_take_their_own_batch_size(
    argv: list[str], environ: dict[str, str], replay_batch: int, worker_batch: int
) -> None:
    config = settings.load(environ)
    given = cli.overridden(config, cli.build_parser(config).parse_args(argv))
    assert (given.replay_batch_size, given.batch_size) == (replay_batch, worker_batch)


@pytest.mark.parametrize(
    ("argv", "environ", "days", "most"),
    [
        ([], {}, 42, 1_000_000),
        ([], {"UYTHAC_REPLAY_BATCH_DAYS": "0", "UYTHAC_REPLAY_BATCH_MAX": "500000"}, 0, 500_000),
        (["--batch-days", "7"], {"UYTHAC_REPLAY_BATCH_DAYS": "30"}, 7, 1_000_000),
    ],
)
def test_a_replays_batches_span_days_from_the_settings_or_the_flag(
    argv: list[str], environ: dict[str, str], days: int, most: int
) -> None:
    config = settings.load(environ)
    given = cli.overridden(
        config, cli.build_parser(config).parse_args(["replay", "e.jsonl", "--report", "r.json", *argv])
    )
    assert (given.replay_batch_days, given.replay_batch_max) == (days, most)


@pytest.mark.parametrize(
    ("argv", "environ", "line"),
    [
        (["--batch-days", "-1"], {}, "UYTHAC_REPLAY_BATCH_DAYS: must be 0 or more, not -1"),
        ([], {"UYTHAC_REPLAY_BATCH_MAX": "-5"}, "UYTHAC_REPLAY_BATCH_MAX: must be 0 or more, not -5"),
        (["--batch-size", "-2"], {}, "UYTHAC_REPLAY_BATCH_SIZE: must be 0 or more, not -2"),
    ],
)
def test_a_negative_number_is_refused_in_one_line_naming_the_setting(
    tmp_path: Path, argv: list[str], environ: dict[str, str], line: str
) -> None:
    events = tmp_path / "e.jsonl"
    events.write_text("")
    done = subprocess.run(
        [UYTHAC, "replay", str(events), "--report", str(tmp_path / "r.json"), *argv],
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"uythac: error: {line}"]
    assert not (tmp_path / "r.json").exists()
