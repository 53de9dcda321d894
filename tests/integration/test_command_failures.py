"""What a user gets wrong on the command line, and what the command then says: one line on stderr naming the
file, folder, store or broker, and a non-zero exit status; never a traceback, never a silent success."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.examples import SCORECARD_TEXT
from tests.support import loan, write_lines

UYTHAC = str(Path(sys.executable).with_name("uythac"))
NOBODY = "127.0.0.1:9"  # the discard port: nothing listens there


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [UYTHAC, *args], capture_output=True, text=True, timeout=120, cwd=tmp_path, env={**os.environ, **env}
    )


def _one_line(done: subprocess.CompletedProcess[str], *words: str, status: int = 2) -> str:
    assert done.returncode == status, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("uythac: error: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with one loan, made by replay with the packaged scorecard."""
    events = write_lines(tmp_path / "events.jsonl", [loan("L1", "2023-03-01")])
    done = _run(tmp_path, "replay", str(events), "--report", str(tmp_path / "r.json"), "--db", str(tmp_path / "s.db"))
    assert done.returncode == 0, done.stderr
    return tmp_path / "s.db"


@pytest.mark.parametrize("command", ["report", "distribution", "status", "api"])
def test_a_read_command_refuses_a_store_that_does_not_exist(command: str, tmp_path: Path) -> None:
    done = _run(tmp_path, command, "--db", "typo.db", UYTHAC_KAFKA_BOOTSTRAP=NOBODY)
    _one_line(done, "typo.db: no store there", "uythac replay")
    assert not (tmp_path / "typo.db").exists()


def test_the_read_commands_default_store_is_the_settings_one_and_refused_when_missing(tmp_path: Path) -> None:
    done = _run(tmp_path, "report")
    _one_line(done, "var/uythac.db: no store there")
    assert not (tmp_path / "var").exists()


@pytest.mark.parametrize("command", ["report", "replay"])
def test_a_folder_or_another_kind_of_file_as_the_store_is_one_line(command: str, tmp_path: Path) -> None:
    (tmp_path / "folder.db").mkdir()
    (tmp_path / "notes.db").write_text("not a database\n" * 100, encoding="utf-8")
    events = write_lines(tmp_path / "events.jsonl", [loan("L1", "2023-03-01")])
    extra = [str(events), "--report", "r.json"] if command == "replay" else []
    _one_line(_run(tmp_path, command, *extra, "--db", "folder.db"), "folder.db: is a folder")
    _one_line(_run(tmp_path, command, *extra, "--db", "notes.db"), "notes.db: not a uythac store")


def test_report_refuses_another_scorecard_than_the_store_was_built_with(store: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(SCORECARD_TEXT.replace("max: 10", "max: 5"), encoding="utf-8")
    _one_line(_run(tmp_path, "report", "--db", str(store), "--scorecard", str(other)), "built with scorecard")
    assert _run(tmp_path, "report", "--db", str(store)).returncode == 0


@pytest.mark.parametrize(
    "args",
    [
        ["report", "--db", "s.db", "--out", "missing/dir/r.json"],
        ["generate", "--communes", "1", "--months", "1", "--out", "missing/dir/p.jsonl"],
        ["replay", "events.jsonl", "--report", "missing/dir/r.json"],
    ],
)
def test_an_output_into_a_folder_that_does_not_exist_is_refused_before_any_work(
    args: list[str], store: Path, tmp_path: Path
) -> None:
    _one_line(_run(tmp_path, *args), "missing/dir does not exist")
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["generate", "--communes", "0", "--out", "p.jsonl"], "--communes: must be at least 1, not 0"),
        (["generate", "--events", "0", "--out", "p.jsonl"], "--events: must be at least 1"),
        (["generate", "--months", "0", "--events", "100", "--out", "p.jsonl"], "--months: must be at least 1"),
        (["demo", "--communes", "0", "--dir", "d"], "--communes: must be at least 1"),
    ],
)
def test_generate_and_demo_name_the_option_out_of_range(args: list[str], words: str, tmp_path: Path) -> None:
    _one_line(_run(tmp_path, *args), words)


@pytest.mark.parametrize("command", [["status", "--db", "s.db"], ["tick"], ["publish", "events.jsonl"]])
def test_an_unreachable_broker_is_named_within_the_connect_timeout(
    command: list[str], store: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    done = _run(tmp_path, *command, "--bootstrap", NOBODY, UYTHAC_KAFKA_CONNECT_TIMEOUT_S="1")
    _one_line(done, f"Kafka at {NOBODY} did not answer within 1 s")
    assert time.monotonic() - started < 15  # the command's start-up and one second; kafka-python's own wait: 31 s


@pytest.mark.parametrize(
    ("content", "kind"), [('[{"event_id": "e1"}]\n', "a JSON array"), ("event_id,type\ne1,loan.disbursed\n", "CSV")]
)
@pytest.mark.parametrize("command", ["publish", "replay"])
def test_a_file_that_is_not_json_lines_is_named_as_such(command: str, content: str, kind: str, tmp_path: Path) -> None:
    (tmp_path / "events.txt").write_text(content, encoding="utf-8")
    extra = ["--report", "r.json"] if command == "replay" else ["--bootstrap", NOBODY]
    _one_line(_run(tmp_path, command, "events.txt", *extra), "expected JSON Lines", kind, "line 1")


def test_publish_of_a_missing_file_is_status_2(tmp_path: Path) -> None:
    _one_line(_run(tmp_path, "publish", "nope.jsonl", "--bootstrap", NOBODY), "nope.jsonl", "No such file")


def test_generate_events_honours_communes_and_comes_near_the_count(tmp_path: Path) -> None:
    done = _run(tmp_path, "generate", "--events", "5000", "--communes", "3", "--out", "p.jsonl")
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines()
    assert abs(len(lines) - 5000) <= 0.15 * 5000
    communes = {json.loads(line).get("commune_id") for line in lines if line.startswith('{"event_id"')}
    assert communes - {None} == {"C0001", "C0002", "C0003"}
    assert not done.stderr  # no note: it came near


def test_generate_says_when_it_cannot_come_near_the_count(tmp_path: Path) -> None:
    done = _run(tmp_path, "generate", "--events", "300", "--communes", "2", "--months", "2", "--out", "p.jsonl")
    assert done.returncode == 0, done.stderr
    written = len((tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines())
    assert written > 1.15 * 300 and f"note: {written} lines, not about 300" in done.stderr


def test_every_generate_option_has_a_help_text(tmp_path: Path) -> None:
    shown = _run(tmp_path, "generate", "--help").stdout
    options = [line.split()[0] for line in shown.splitlines() if line.startswith("  --")]
    assert len(options) == 7
    for line in shown.split("options:")[1].split("\n  -")[2:]:  # after -h
        assert len(line.split()) > 2, line  # the option, its metavar and words


def test_replay_progress_stays_off_stdout(tmp_path: Path) -> None:
    events = write_lines(tmp_path / "events.jsonl", [loan("L1", "2023-03-01")])
    done = _run(tmp_path, "replay", str(events), "--report", "r.json")
    assert done.returncode == 0 and done.stdout.splitlines() == ["read 1 events: 1 accepted, 0 duplicates, 0 rejected"]
