"""The store's layout under Alembic (`adapters.sql.layout`): a store of the previous layout (4, before the inspection
duties) is upgraded by `uythac db upgrade` to the report a replay of the same events makes, byte for byte; the
commands that read or write a store refuse one that needs the upgrade, naming it; the revisions, run one after
the other on an empty database, make the tables a new store has."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tests.examples import CARD
from tests.support import ev, follow_up, group, loan, new_store, periodic, replay_into, report_at, tick
from uythac.adapters.sql import layout
from uythac.adapters.sql.schema import metadata
from uythac.adapters.sql.store import Store
from uythac.core.report import render
from uythac.devtools import generate
from uythac.entrypoints import cli

pytestmark = pytest.mark.usefixtures("store_kind")

HERE = {"district_id": "D99", "commune_id": "C9901", "org": "HND"}
ELSEWHERE = {"district_id": "D99", "commune_id": "C9902", "org": "HND"}


def _events() -> list[dict[str, Any] | str]:
    """A generated province (inactive loans' duties done, missed and pending) and groups whose duty of the year
    and of last year need the years of their periodic inspections, some of them naming another unit."""
    province: list[dict[str, Any] | str] = list(
        generate.events(generate.GenerateOptions(communes=4, districts=2, months=14, seed=3))
    )
    return [
        *province,
        group("GY1", "2022-01-10", **HERE),
        periodic("GY1", "2022-11-05", **HERE),
        periodic("GY1", "2023-06-01", **HERE),
        periodic("GY1", "2024-01-05", **HERE),
        group("GY2", "2022-01-10", **HERE),
        periodic("GY2", "2023-04-01", **HERE),
        periodic("GY2", "2023-03-01", **ELSEWHERE),
        periodic("GY2", "2024-01-06", **ELSEWHERE),
        loan("LY1", "2023-06-01", group_id="GY1", **HERE),
        follow_up("LY1", "2023-10-15", **HERE),
        ev("savings.deposited", "2024-01-20", group_id="GY1", amount=50_000, **HERE),
        tick("2024-01-31"),
    ]


def _back_to_layout_4(url: str) -> None:
    """The store as uythac made it before Alembic and the duties: layout 4's tables, no alembic_version."""
    store = Store.at(url, prepare=False)
    try:
        with store._locked() as connection:
            scripts = layout.config()
            scripts.attributes.update(connection=connection, scorecard=CARD)
            command.downgrade(scripts, "4")
            connection.execute(sa.text("DROP TABLE alembic_version"))
            bound = {"digest": CARD.digest_before_duties}  # the card had no duties' window then
            connection.execute(sa.text("UPDATE meta SET value = :digest WHERE key = 'scorecard'"), bound)
        scripts.attributes.clear()
    finally:
        store.close()


def _db(*args: str) -> int:
    return cli.main(["db", *args])


def test_a_store_of_layout_4_is_upgraded_to_a_replays_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = new_store(tmp_path)
    replay_into(url, _events())
    replayed = render(report_at(url))
    _back_to_layout_4(url)
    assert _db("current", "--db", url) == 0
    assert capsys.readouterr().out == "layout 4; this uythac reads 6: run `uythac db upgrade`\n"

    assert _db("upgrade", "--db", url) == 0
    assert capsys.readouterr().out == "layout 4 upgraded to 6\n"
    assert render(report_at(url)) == replayed
    assert _db("current", "--db", url) == 0
    assert capsys.readouterr().out == "layout 6 (head)\n"
    assert _db("upgrade", "--db", url) == 0
    assert capsys.readouterr().out == "layout 6: already the newest\n"


def test_an_upgrade_that_fails_leaves_the_store_as_it_was(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = new_store(tmp_path)
    replay_into(url, [group("G1", "2023-01-10"), tick("2023-02-01")])
    _back_to_layout_4(url)
    packaged = (Path(__file__).parents[2] / "rules" / "scorecard.yaml").read_text(encoding="utf-8")
    other = tmp_path / "other.yaml"
    other.write_text(packaged.replace("inactive_days: 90", "inactive_days: 91"), encoding="utf-8")
    assert _db("upgrade", "--db", url, "--scorecard", str(other)) == 2
    assert "the store was built with scorecard" in capsys.readouterr().err
    assert _db("current", "--db", url) == 0
    assert capsys.readouterr().out == "layout 4; this uythac reads 6: run `uythac db upgrade`\n"
    store = Store.at(url, prepare=False)
    try:
        with store.engine.connect() as connection:
            assert "duty_status" not in {column["name"] for column in sa.inspect(connection).get_columns("loans")}
    finally:
        store.close()
    assert _db("upgrade", "--db", url) == 0


def test_commands_refuse_a_store_that_needs_the_upgrade(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = new_store(tmp_path)
    replay_into(url, [group("G1", "2023-01-10"), tick("2023-02-01")])
    _back_to_layout_4(url)
    replay = ["replay", str(tmp_path / "none.jsonl"), "--report", str(tmp_path / "r.json")]
    for args in (["report"], ["worker"], ["api"], replay):
        assert cli.main([*args, "--db", url]) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and "run `uythac db upgrade`" in error, (args, error)


def test_the_revisions_make_the_tables_of_a_new_store(tmp_path: Path) -> None:
    url = new_store(tmp_path)
    store = Store.at(url, prepare=False)
    try:
        assert store.upgrade(CARD) == layout.Layout(None, "6")
        with store.engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), metadata) == []
        assert store.layout() == layout.Layout("6", "6")
    finally:
        store.close()
    assert report_at(url)["units"] == []  # and the store opens for any command


@pytest.mark.parametrize(
    ("marked", "refusal"),
    [
        ("3", "made by an older uythac (table layout 3, which cannot be upgraded; this one reads 6): replay"),
        ("9", "made by a newer uythac (table layout 9; this one reads 6): run that version"),
    ],
)
def test_a_layout_without_a_way_up_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], marked: str, refusal: str
) -> None:
    url = new_store(tmp_path)
    replay_into(url, [tick("2023-02-01")])
    store = Store.at(url, prepare=False)
    try:
        with store.engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE alembic_version"))
            connection.execute(sa.text("UPDATE meta SET value = :marked WHERE key = 'layout'"), {"marked": marked})
    finally:
        store.close()
    for args in (["report", "--db", url], ["db", "upgrade", "--db", url]):
        assert cli.main(args) == 2
        assert refusal in capsys.readouterr().err


def test_db_names_a_store_that_is_not_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.db"
    assert _db("current", "--db", str(missing)) == 2
    error = capsys.readouterr().err
    assert error == f"uythac: error: {missing}: no store there (give its path with --db or UYTHAC_DB)\n"
    assert not missing.exists()
