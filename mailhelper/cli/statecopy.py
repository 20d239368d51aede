"""``mailhelper state copy SRC DEST``: the whole state (every table, so the Message-ID secret
and the schema version too, both rows of ``meta``) copied into an empty destination, from an
SQLite file to a PostgreSQL database or back.

The contract:

- SRC must be of this code's schema: an older one is refused with how to upgrade it (open it
  once with this version: ``mailhelper status``), a newer one with "upgrade mailhelper"; the
  copy never migrates the source, so what it reads is what a daemon left;
- DEST must be empty (a missing or empty file, a database without tables): an existing state
  is never merged into nor overwritten; the refusal names what is there;
- both are held as a daemon holds them (the lock file beside an SQLite state, the database's
  lock on PostgreSQL), so a running daemon is refused instead of copied half-way;
- the source is read in one snapshot, the destination written in one transaction: a failure
  part way leaves it empty (its new schema taken away again); ids are kept, rows go in the
  source's insertion order;
- progress, for large states, goes to the ``progress`` callable (the command line: stderr).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailhelper.model.errors import StateError
from mailhelper.state.migrations import SCHEMA_VERSION, version_of
from mailhelper.state.sqldriver import (
    Connection,
    PostgresConnection,
    SQLiteConnection,
    is_database_url,
    redact,
    sqlite_error,
)

#: Rows read and written per round: a large state never sits whole in memory.
BATCH = 2000
#: A progress line at least every this many rows of one table.
PROGRESS_EVERY = 50_000


@dataclass(frozen=True)
class Copied:
    """What a copy did: rows per table, in the order copied."""

    rows: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _name(location: str) -> str:
    return redact(location) if is_database_url(location) else location


def _open_source(location: str, password: str | None) -> Connection:
    if is_database_url(location):
        return PostgresConnection.connect(location, password, read_only=True)
    path = Path(location)
    if not path.is_file():
        raise StateError(f"state copy: the source {location} does not exist; name the state "
                         "file the config's `state` points at")
    try:
        raw = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                              isolation_level=None)
    except sqlite3.Error as exc:
        raise sqlite_error(exc) from exc
    raw.row_factory = sqlite3.Row
    return SQLiteConnection(raw)


def _check_source(db: Connection, location: str) -> None:
    try:
        version = version_of(db)
    except (StateError, ValueError) as exc:
        raise StateError(f"state copy: the source {_name(location)} is not a mailhelper state "
                         f"({exc})") from None
    if version == SCHEMA_VERSION:
        return
    if version == 0:
        raise StateError(f"state copy: the source {_name(location)} is empty (no mailhelper "
                         "state in it); nothing to copy")
    if version < SCHEMA_VERSION:
        raise StateError(
            f"state copy: the source {_name(location)} is of schema {version}, older than this "
            f"mailhelper's ({SCHEMA_VERSION}); the copy never upgrades its source: open it "
            "once with this version first (`mailhelper status` with its config), then copy")
    raise StateError(
        f"state copy: the source {_name(location)} is of schema {version}, newer than this "
        f"mailhelper's ({SCHEMA_VERSION}); copy it with the newer mailhelper that wrote it")


def _check_empty(location: str, password: str | None) -> None:
    """Refuse a destination that holds anything: a copy never merges into a state."""
    if is_database_url(location):
        db: Connection = PostgresConnection.connect(location, password)
        try:
            tables = db.tables()
        finally:
            db.close()
        if tables:
            raise StateError(
                f"state copy: the destination {redact(location)} is not empty (it has the "
                f"tables {', '.join(tables[:5])}{', ...' if len(tables) > 5 else ''}); copy "
                "into a new, empty database (createdb), never over a state")
        return
    path = Path(location)
    if path.exists() and (not path.is_file() or path.stat().st_size > 0):
        raise StateError(
            f"state copy: the destination {location} exists and is not empty; copy into a "
            "new file, never over a state (move the old one away if it is not needed)")


def _key(db: Connection, table: str) -> str:
    """The column that orders ``table``'s rows as they were inserted."""
    if isinstance(db, SQLiteConnection):
        return "rowid"
    row = db.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(?) "
        "AND attidentity <> '' AND NOT attisdropped", (table,)).fetchone()
    if row is None:
        raise StateError(f"state copy: the table {table} has no identity column; is this a "
                         "mailhelper state?")
    return str(row[0])


def _begin_snapshot(db: Connection) -> None:
    """One consistent view of the source for the whole copy, taking no write lock."""
    if isinstance(db, SQLiteConnection):
        db.execute("BEGIN")
    else:
        db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")


def _catch_up_identities(db: Connection, table: str) -> None:
    """PostgreSQL: the identity sequences go on after the copied ids (rows were inserted
    with their ids, which does not advance them)."""
    if isinstance(db, SQLiteConnection):
        return
    rows = db.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(?) "
        "AND attidentity = 'd' AND NOT attisdropped", (table,)).fetchall()
    for (column,) in rows:
        db.execute(f"SELECT setval(pg_get_serial_sequence(?, ?), "
                   f"COALESCE((SELECT max({column}) FROM {table}), 0) + 1, false)",
                   (table, column))


def copy_tables(source: Connection, target: Connection,
                progress: Callable[[str], None] = lambda line: None) -> Copied:
    """Copy every row of every table ``target`` has from ``source`` (of the same schema), in
    batches, in one transaction of ``target``'s that first empties each table; ids kept, rows
    in insertion order. Tables in creation order, so a row's references are there before it."""
    copied: dict[str, int] = {}
    _begin_snapshot(source)
    target.begin()
    try:
        for table in target.tables():
            key = _key(source, table)
            total = int(source.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            progress(f"{table}: {total} rows")
            target.execute(f"DELETE FROM {table}")
            done, last, shown = 0, None, 0
            while True:
                where = "" if last is None else f"WHERE {key} > ? "
                batch = source.execute(
                    f"SELECT {key} AS mh_copy_key, * FROM {table} {where}"
                    f"ORDER BY {key} LIMIT {BATCH}", () if last is None else (last,)).fetchall()
                if not batch:
                    break
                names = batch[0].keys()  # a row, not a dict: its names come from keys()
                columns = [c for c in names if c not in ("mh_copy_key", "rowid")]
                insert = (f"INSERT INTO {table} ({', '.join(columns)}) "
                          f"VALUES ({', '.join('?' for _ in columns)})")
                target.executemany(insert, [[_value(row[c]) for c in columns] for row in batch])
                done += len(batch)
                last = batch[-1]["mh_copy_key"]
                if done - shown >= PROGRESS_EVERY:
                    progress(f"{table}: {done} of {total} rows copied")
                    shown = done
            _catch_up_identities(target, table)
            copied[table] = done
        target.commit()
    except BaseException:
        target.rollback()
        raise
    finally:
        source.rollback()
    return Copied(copied)


def _value(value: Any) -> Any:
    # psycopg reads BYTEA as memoryview on some paths; both drivers write bytes.
    return bytes(value) if isinstance(value, memoryview) else value


def copy_state(source: str, destination: str, password: str | None = None,
               progress: Callable[[str], None] = lambda line: None) -> Copied:
    """Copy the state at ``source`` into the empty ``destination`` (each an SQLite path or a
    ``postgresql://`` URL); see the module's docstring for what is refused and why."""
    from mailhelper.engine.daemon import StateLock
    from mailhelper.state.lease import leases
    from mailhelper.state.store import _DAEMON_LOCK, Store

    if _name(source) == _name(destination) or (
            not is_database_url(source) and not is_database_url(destination)
            and Path(source).resolve() == Path(destination).resolve()):
        raise StateError("state copy: the source and the destination are the same state")
    locks = [StateLock(Path(p)) for p in (source, destination) if not is_database_url(p)]
    taken: list[Any] = []
    try:
        for lock in locks:
            lock.acquire()
            taken.append(lock)
        db = _open_source(source, password)
        try:
            if isinstance(db, PostgresConnection) and not db.hold(_DAEMON_LOCK):
                raise StateError(f"state copy: a mailhelper is using {redact(source)}; stop "
                                 "it first, so the copy is the whole state")
            if isinstance(db, PostgresConnection):
                # Daemons sharing a database hold leases, not that lock.
                reading = [info for info in leases(db) if info.live]
                if reading:
                    raise StateError(f"state copy: a mailhelper is reading {redact(source)} "
                                     f"({reading[0].mailbox}: {reading[0].line()}); stop it "
                                     "first, so the copy is the whole state")
            _check_source(db, source)
            _check_empty(destination, password)
            progress(f"copying {_name(source)} to {_name(destination)} "
                     f"(schema {SCHEMA_VERSION})")
            # The destination gets today's schema the usual way, then the source's rows
            # (its meta too: the schema version and the Message-ID secret).
            target = Store.open(destination, "copy.invalid", password, exclusive=True)
            try:
                copied = copy_tables(db, target.db, progress)
            except BaseException:
                # The destination was empty: make it so again, so a second try is not
                # refused for the schema this one made.
                if is_database_url(destination):
                    with contextlib.suppress(StateError):
                        for table in reversed(target.db.tables()):
                            target.db.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
                target.close()
                if not is_database_url(destination):
                    for suffix in ("", "-wal", "-shm"):
                        Path(destination + suffix).unlink(missing_ok=True)
                raise
            target.close()
        finally:
            db.close()
    finally:
        for lock in taken:
            lock.release()
    return copied
