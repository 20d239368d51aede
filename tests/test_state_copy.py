"""``mailhelper state copy SRC DEST``: a whole state from an SQLite file to PostgreSQL and back.

- a state with live threads (an answered ask, a pending one with its reminders) goes SQLite →
  PostgreSQL → SQLite with every row of every table equal, the Message-ID secret and the
  schema version with them;
- the assistant goes on on the copied database: new rows get new ids (no clash with the copied
  ones) and a reply to mail sent before the copy is still matched;
- a destination that is not empty, a source of an older schema and a missing source are
  refused with the reason, and leave the destination as it was.
"""

from __future__ import annotations

import contextlib
import io
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from mailhelper.cli.main import main
from mailhelper.model.settings import assistant_schema
from mailhelper.state.migrations import SCHEMA_VERSION, migrate
from mailhelper.state.sqldriver import Connection, PostgresConnection, SQLiteConnection
from tests.rig.assistant import RigAssistant
from tests.rig.postgres import PostgresServer
from tests.test_lifecycle import JANE, Walk, at, kinds


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def _open(location: str, schema: str = "public") -> Connection:
    if location.startswith("postgresql://"):
        return PostgresConnection.connect(location, schema=schema)
    raw = sqlite3.connect(location)
    raw.row_factory = sqlite3.Row
    return SQLiteConnection(raw)


def _contents(location: str, schema: str = "public") -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (of ``schema``, in a database), in insertion order, without
    the row numbers themselves."""
    db = _open(location, schema)
    try:
        shown = {}
        for table in sorted(db.tables()):
            rows = db.execute(f"SELECT * FROM {table} ORDER BY rowid"
                              if isinstance(db, SQLiteConnection) else
                              f"SELECT * FROM {table}").fetchall()
            shown[table] = [tuple(bytes(v) if isinstance(v, memoryview) else v
                                  for k, v in zip(row.keys(), row, strict=True) if k != "rowid")
                            for row in rows]
        return shown
    finally:
        db.close()


def _sorted(contents: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    return {table: sorted(rows, key=repr) for table, rows in contents.items()}


def test_a_live_state_goes_to_postgresql_and_back_with_every_row_equal(
    rig_assistant: RigAssistant, postgres: PostgresServer, tmp_path: Path,
) -> None:
    rig = rig_assistant
    walk = Walk(rig)
    answered = walk.ask(at("2026-12-07 09:00"))
    walk.ask(at("2026-12-07 09:05"), subject="Lunch next week?", to="Bob <bob@example.org>",
             body="Bob, could you join us for lunch next week?")
    assert kinds(walk.poll(at("2026-12-07 09:10"))) == ["receipt", "receipt"]
    walk.reply(answered, at("2026-12-08 10:00"), from_=JANE)
    walk.quiet(at("2026-12-08 10:00"))
    assert kinds(walk.poll(at("2026-12-08 12:00"))) == ["thank_you_draft"]
    original = _contents(str(rig.state))
    assert len(original["threads"]) == 2 and original["actions"] and original["processed"]

    url = postgres.new_database()
    code, out, err = _cli("state", "copy", str(rig.state), url, "--assistant", rig.address)
    assert code == 0, err
    assert "copied" in out and "threads: 2 rows" in err  # progress on stderr
    schema = assistant_schema(rig.address)
    assert f"(the state in schema {schema})" in err
    back = tmp_path / "back.db"
    code, _, err = _cli("state", "copy", url, str(back))
    assert code == 0, err

    on_postgres = _contents(url, schema)
    assert _contents(url) == {}  # nothing in public
    assert on_postgres.keys() == original.keys()
    assert _sorted(on_postgres) == _sorted(original)
    assert _contents(str(back)) == original  # same rows, same order, same secret and version

    # The assistant goes on with the database: new ids after the copied ones, and the
    # reminder of the ask still open goes out under the recorded Message-ID.
    rig.configure({"state": url})
    walk.ask(at("2026-12-09 09:00"), subject="Slides?", to="Carol <carol@example.org>",
             body="Carol, could you send me the slides?")
    assert "receipt" in kinds(walk.poll(at("2026-12-09 09:05")))
    threads = {t["subject"]: t for t in rig.status()}
    assert len(threads) == 3 and threads["Slides?"]["id"] == 3


def test_a_destination_that_is_not_empty_is_refused_and_left_as_it_was(
    rig_assistant: RigAssistant, postgres: PostgresServer, tmp_path: Path,
) -> None:
    rig = rig_assistant
    walk = Walk(rig)
    walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:10"))
    url = postgres.new_database()
    schema = assistant_schema(rig.address)
    assert _cli("state", "copy", str(rig.state), url, "--assistant", rig.address)[0] == 0
    before = _contents(url, schema)

    code, _, err = _cli("state", "copy", str(rig.state), url, "--assistant", rig.address)
    assert code != 0
    assert "is not empty" in err and "never over a state" in err
    assert _contents(url, schema) == before

    other = tmp_path / "other.db"
    other.write_bytes(rig.state.read_bytes())
    code, _, err = _cli("state", "copy", url, str(other))
    assert code != 0 and f"{other} exists and is not empty" in err


def test_a_source_of_another_schema_or_none_is_refused_with_the_reason(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    db = sqlite3.connect(old, isolation_level=None)
    migrate(db, 0, upto=SCHEMA_VERSION - 1)
    db.close()
    code, _, err = _cli("state", "copy", str(old), str(tmp_path / "new.db"))
    assert code != 0
    assert f"schema {SCHEMA_VERSION - 1}, older than this mailhelper's" in err
    assert "open it once with this version first" in err
    assert not (tmp_path / "new.db").exists()

    code, _, err = _cli("state", "copy", str(tmp_path / "missing.db"), str(tmp_path / "x.db"))
    assert code != 0 and "does not exist" in err


@pytest.mark.parametrize("words", [["state"], ["state", "copy", "only-one"]])
def test_state_copy_needs_both_places(words: list[str]) -> None:
    with pytest.raises(SystemExit) as stopped, contextlib.redirect_stderr(io.StringIO()):
        main(words)
    assert stopped.value.code == 2


def test_a_copy_that_fails_part_way_leaves_the_database_empty_for_another_try(
    rig_assistant: RigAssistant, postgres: PostgresServer,
) -> None:
    rig = rig_assistant
    walk = Walk(rig)
    walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:10"))
    # SQLite keeps what it is given; PostgreSQL refuses text in a number column.
    db = sqlite3.connect(rig.state, isolation_level=None)
    db.execute("UPDATE threads SET expected='many'")
    url = postgres.new_database()
    code, _, err = _cli("state", "copy", str(rig.state), url, "--assistant", rig.address)
    assert code == 1 and "cannot be used" in err
    schema = assistant_schema(rig.address)
    assert _contents(url, schema) == {}

    db.execute("UPDATE threads SET expected=NULL")
    db.close()
    code, _, err = _cli("state", "copy", str(rig.state), url, "--assistant", rig.address)
    assert code == 0, err
    assert _sorted(_contents(url, schema)) == _sorted(_contents(str(rig.state)))
