"""``mailhelper state copy SRC DEST``: the whole state (every table, so the Message-ID secret
and the schema version too, both rows of ``meta``) copied into an empty destination, from an
SQLite file to a PostgreSQL database or back.

The contract:

- SRC must be of this code's schema: an older one is refused with how to upgrade it (open it
  once with this version: ``mailhelper status``), a newer one with "upgrade mailhelper"; the
  copy never migrates the source, so what it reads is what a daemon left;
- DEST must be empty (a missing or empty file, a database without tables): an existing state
  is never merged into nor overwritten; the refusal names what is there;
- both are held as a daemon holds them (the lock file beside an SQLite state; on PostgreSQL the
  assistant's lock, and a live lease on the assistant's mailbox is refused), so a running
  daemon is refused instead of copied half-way;
- a PostgreSQL database holds one state per assistant, each in its own schema (see
  :meth:`mailhelper.state.store.Store.open`): the copy is of one assistant's. ``assistant``
  (``--assistant ADDRESS``) names it; without it, a source database must hold one state
  only (several are refused with their names), and a destination database takes the
  assistant the source's state records (a file copied from an older version records none:
  then ``--assistant`` is needed). A state of the one-assistant-per-database layout (in
  ``public``) is read as the source when the named assistant has no schema yet;
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

from mailhelper.model.addresses import fold
from mailhelper.model.errors import StateError
from mailhelper.model.settings import assistant_schema
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


def states_in(db: Connection) -> list[str]:
    """The schemas of ``db``'s database that hold a mailhelper state (each assistant's, and
    ``public`` for the one-assistant-per-database layout), by name."""
    rows = db.execute(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'meta' "
        "AND (table_schema = 'public' OR table_schema LIKE 'mailhelper\\_%') "
        "ORDER BY table_schema").fetchall()
    return [str(r[0]) for r in rows]


def _source_schema(location: str, password: str | None, assistant: str | None) -> str:
    """The schema of the state to copy out of the database at ``location``."""
    db = PostgresConnection.connect(location, password, read_only=True)
    try:
        found = states_in(db)
    finally:
        db.close()
    if assistant is not None:
        wanted = assistant_schema(assistant)
        if wanted in found:
            return wanted
        if "public" in found:
            return "public"  # the older layout, not yet moved into its assistant's schema
        raise StateError(
            f"state copy: the source {redact(location)} has no state of {assistant} (the "
            f"schema {wanted}); it holds {', '.join(found) or 'no state at all'}")
    if len(found) > 1:
        raise StateError(
            f"state copy: the source {redact(location)} holds the states of several "
            f"assistants (the schemas {', '.join(found)}); name the one to copy: "
            "--assistant ADDRESS (the assistant's address, as in its config)")
    return found[0] if found else "public"


def _open_source(location: str, password: str | None, schema: str = "public") -> Connection:
    if is_database_url(location):
        return PostgresConnection.connect(location, password, read_only=True, schema=schema)
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


def _check_empty(location: str, password: str | None, schema: str = "public") -> None:
    """Refuse a destination that holds anything: a copy never merges into a state."""
    if is_database_url(location):
        db = PostgresConnection.connect(location, password, schema=schema)
        try:
            tables = db.tables()
            legacy = schema != "public" and not tables and "public" in states_in(db)
        finally:
            db.close()
        if tables:
            raise StateError(
                f"state copy: the destination {redact(location)} is not empty (the schema "
                f"{schema} has the tables {', '.join(tables[:5])}"
                f"{', ...' if len(tables) > 5 else ''}); copy into a new, empty database "
                "(createdb) or for another assistant, never over a state")
        if legacy:
            # Its assistant's first open would take that state into its own schema: a
            # copy made for this assistant could be that one and be written over.
            raise StateError(
                f"state copy: the destination {redact(location)} holds a state of the "
                "one-assistant-per-database layout (in the schema public); start its "
                "assistant once with this version first (it moves it into its own schema), "
                "or copy into another database")
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


def _schema_words(location: str, schema: str) -> str:
    return f" (the state in schema {schema})" if is_database_url(location) else ""


def _value(value: Any) -> Any:
    # psycopg reads BYTEA as memoryview on some paths; both drivers write bytes.
    return bytes(value) if isinstance(value, memoryview) else value


def _recorded_assistant(db: Connection) -> str | None:
    """The assistant a state records it is for (states of a PostgreSQL schema do; a file,
    or a state of an older version, does not)."""
    row = db.execute("SELECT value FROM meta WHERE key='assistant'").fetchone()
    return None if row is None else str(row[0])


def _destination_assistant(source: Connection, destination: str,
                           assistant: str | None) -> str | None:
    """The assistant whose schema the copy goes into (None: a file, which needs none)."""
    recorded = _recorded_assistant(source)
    if assistant is not None and recorded is not None and fold(assistant.strip()) != recorded:
        raise StateError(f"state copy: the source is the state of {recorded}, not of "
                         f"{assistant}; name the assistant it is for, or none")
    if not is_database_url(destination):
        return None
    if assistant is None and recorded is None:
        raise StateError(
            f"state copy: name the assistant whose state this is, with --assistant ADDRESS "
            f"(its address, as in its config): in {redact(destination)} each assistant's "
            "state is a schema of its own, named after that address")
    return assistant if assistant is not None else recorded


def _check_not_served(db: PostgresConnection, location: str, assistant: str | None) -> None:
    """Refuse while a daemon holds the lease on ``assistant``'s mailbox in that database: it
    writes the state the copy reads (or would read the one it writes)."""
    from mailhelper.state.lease import lease_of, mailbox_key

    if assistant is None:
        return
    info = lease_of(db, mailbox_key(assistant))
    if info is not None and info.live:
        raise StateError(f"state copy: a mailhelper is serving {assistant} on "
                         f"{redact(location)} ({info.line()}); stop it first, so the copy "
                         "is the whole state")


def copy_state(source: str, destination: str, password: str | None = None,
               progress: Callable[[str], None] = lambda line: None,
               assistant: str | None = None) -> Copied:
    """Copy the state at ``source`` into the empty ``destination`` (each an SQLite path or a
    ``postgresql://`` URL), for ``assistant`` (its address: which state of a database);
    see the module's docstring for what is refused and why."""
    from mailhelper.engine.daemon import StateLock
    from mailhelper.state.store import Store, assistant_lock

    if not is_database_url(source) and not is_database_url(destination) and (
            Path(source).resolve() == Path(destination).resolve()):
        raise StateError("state copy: the source and the destination are the same state")
    locks = [StateLock(Path(p)) for p in (source, destination) if not is_database_url(p)]
    taken: list[Any] = []
    try:
        for lock in locks:
            lock.acquire()
            taken.append(lock)
        schema = (_source_schema(source, password, assistant) if is_database_url(source)
                  else "public")
        db = _open_source(source, password, schema)
        try:
            if isinstance(db, PostgresConnection) and not db.hold(assistant_lock(schema)):
                raise StateError(f"state copy: a mailhelper is using {redact(source)} "
                                 f"(schema {schema}); stop it first, so the copy is the "
                                 "whole state")
            _check_source(db, source)
            owner = _destination_assistant(db, destination, assistant)
            if isinstance(db, PostgresConnection):
                _check_not_served(db, source, assistant or _recorded_assistant(db))
            if owner is not None:
                served = PostgresConnection.connect(destination, password, schema="public")
                try:
                    _check_not_served(served, destination, owner)
                finally:
                    served.close()
            target_schema = assistant_schema(owner) if owner is not None else "public"
            if _name(source) == _name(destination) and schema == target_schema:
                raise StateError("state copy: the source and the destination are the same "
                                 "state")
            _check_empty(destination, password, target_schema)
            progress(f"copying {_name(source)}{_schema_words(source, schema)} to "
                     f"{_name(destination)}{_schema_words(destination, target_schema)} "
                     f"(schema version {SCHEMA_VERSION})")
            # The destination gets today's schema the usual way, then the source's rows
            # (its meta too: the schema version and the Message-ID secret).
            target = Store.open(destination, "copy.invalid", password, exclusive=True,
                                assistant=owner)
            try:
                copied = copy_tables(db, target.db, progress)
            except BaseException:
                # The destination was empty: make it so again, so a second try is not
                # refused for the schema this one made.
                if is_database_url(destination) and target_schema != "public":
                    with contextlib.suppress(StateError):
                        target.db.execute(f"DROP SCHEMA IF EXISTS {target_schema} CASCADE")
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
