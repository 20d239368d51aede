"""The assistant's memory: threads, the messages that belong to them, events, scheduled actions,
processed messages and where each folder was read to (its cursor), in one SQLite file.

One method per question (STYLE.md): ``due(now)``, ``thread_for(message_ids)``,
``mark_sent(action)``. Writes happen inside :meth:`Store.transaction`, one transaction per
message handled (a savepoint of one transaction for several messages inside
:meth:`Store.grouped`), so a message's effects are committed together or not at all.

Times are stored as UTC ISO-8601 text (``2026-12-03T09:00:00+00:00``), which sorts in time
order, so the due-query is an index range scan.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailhelper.model.addresses import fold
from mailhelper.model.errors import StateError, StateLockedError
from mailhelper.model.kinds import ACTIONS, LedgerEffect
from mailhelper.model.message_id import make_message_id, new_secret
from mailhelper.model.settings import Settings, assistant_schema
from mailhelper.model.values import (
    Action,
    ActionKind,
    ActionStatus,
    Address,
    Answer,
    Kind,
    Ledger,
    Pause,
    PersonFigures,
    Thread,
    ThreadState,
    thanked_people,
)
from mailhelper.state.migrations import SCHEMA_VERSION as SCHEMA_VERSION  # the store's, re-exported
from mailhelper.state.migrations import NewerSchema, legacy_cursor, migrate, pending, version_of
from mailhelper.state.sqldriver import (
    Connection,
    PostgresConnection,
    SQLiteConnection,
    is_database_url,
    redact,
    sqlite_error,
)

log = logging.getLogger(__name__)

#: The meta key of the installation's Message-ID secret (hex): see mailhelper.model.message_id.
MESSAGE_ID_SECRET = "message_id_secret"
# The schema: numbered steps in mailhelper.state.migrations, run by Store.open. A new column or
# table is a new step there (no list of added columns here any more).


def to_text(moment: datetime | None) -> str | None:
    """A stored time: UTC, ISO-8601, seconds precision.

        >>> from zoneinfo import ZoneInfo
        >>> to_text(datetime(2026, 12, 3, 10, 0, 30, 999, tzinfo=ZoneInfo("Europe/Berlin")))
        '2026-12-03T09:00:30+00:00'
    """
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def from_text(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _addresses_json(addresses: Sequence[Address]) -> str:
    return json.dumps([[a.email, a.name] for a in addresses], ensure_ascii=False)


def _addresses(text: str) -> tuple[Address, ...]:
    return tuple(Address(email, name) for email, name in json.loads(text))


def match_subject(subject: str) -> str:
    """The subject as the reply fallback compares it: case and spacing folded.

        >>> match_subject("  Intro to\tACME? ")
        'intro to acme?'
    """
    return " ".join(subject.lower().split())


def private_state_path(path: Path, create_file: bool = False) -> None:
    """Make ``path``'s folder (and, with ``create_file``, the file itself) exist, private to
    this user: the state holds excerpts of mail and the addresses of everyone written to.

    - a missing folder is created ``0700`` (missing folders above it get the usual mode);
      an existing folder keeps the mode its owner gave it;
    - a missing state file is created empty with ``0600`` before SQLite opens it; SQLite
      then gives its ``-wal`` and ``-shm`` files the same mode;
    - an existing state file that the group or others may read is left as it is, with a
      warning that says how to fix it.

    The umask still applies, but can only take permissions away.
    """
    folder = path.parent
    if not folder.is_dir():
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir(mode=0o700, exist_ok=True)
    if not create_file:
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        if mode & 0o044:
            log.warning("the state file %s can be read by other users (mode %04o), though it "
                        "holds excerpts of mail; make it private: chmod 600 %s", path, mode, path)


#: The advisory lock that makes two processes migrating one PostgreSQL database take turns
#: (the legacy layout's, in ``public``; also taken while a ``public`` state moves to its
#: assistant's schema, so two assistants never both take it).
_MIGRATION_LOCK = 0x6D61696C68656C70  # "mailhelp"

#: The advisory lock the one process reading a ``public`` state (the layout of the version
#: with one assistant per database) held; an assistant's schema has a lock of its own.
_DAEMON_LOCK = 0x6D61696C68656C71

#: Where a PostgreSQL state is when no assistant is named: the one-assistant-per-database
#: layout of the first PostgreSQL version (kept for it, for tests and tools).
LEGACY_SCHEMA = "public"


def _lock_key(purpose: str, schema: str) -> int:
    """A 64-bit advisory lock key for ``purpose`` on ``schema``'s state (the fixed keys of the
    one-assistant-per-database version for ``public``, so an older process still conflicts)."""
    if schema == LEGACY_SCHEMA:
        return _DAEMON_LOCK if purpose == "daemon" else _MIGRATION_LOCK
    digest = hashlib.sha256(f"mailhelper {purpose} {schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def assistant_lock(schema: str) -> int:
    """The advisory lock that the one process serving the assistant whose state is in
    ``schema`` holds (``Store.open(exclusive=True)``): a second process for the same
    assistant is refused, on any machine, while other assistants share the database."""
    return _lock_key("daemon", schema)


def state_tables(every_schema: bool = False) -> list[str]:
    """The tables of today's schema, in the order they are created (from the migrations
    run on an empty in-memory SQLite state: the steps are the one source of truth);
    ``every_schema``: also those of older schemas a later step dropped (``sync`` before the
    cursors of schema 9), which an old state may still hold."""
    db = sqlite3.connect(":memory:", isolation_level=None)
    try:
        names: list[str] = []
        for version in range(1 if every_schema else SCHEMA_VERSION, SCHEMA_VERSION + 1):
            migrate(db, version_of(db), upto=version)
            rows = db.execute("SELECT name FROM sqlite_master WHERE type='table' "
                              "AND name NOT LIKE 'sqlite_%' ORDER BY rowid").fetchall()
            names += [str(r[0]) for r in rows if str(r[0]) not in names]
        return names
    finally:
        db.close()

#: The :class:`StateError` for an error of SQLite (its home is :mod:`mailhelper.state.sqldriver`).
state_error = sqlite_error


class Group:
    """The transactions of several messages as one transaction of the database, each message
    still atomic on its own (a SAVEPOINT): see :meth:`Store.grouped`.

    Its transaction begins with the first write (``BEGIN IMMEDIATE``, SQLite's write lock)
    and ends at :meth:`commit` (or :meth:`rollback`); the next write begins another. A group
    of a store that cannot group (PostgreSQL, or any store with a :attr:`Store.fence`) is
    never open: each :meth:`Store.transaction` commits on its own, and :meth:`commit` does
    nothing.
    """

    def __init__(self, db: Connection, enabled: bool,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self.enabled = enabled
        self._monotonic = monotonic
        #: False while :meth:`paused`: transactions then commit one by one, as without it.
        self.active = enabled
        self._began: float | None = None
        self._lost = False

    @property
    def open(self) -> bool:
        """Whether writes are waiting for :meth:`commit`."""
        return self._began is not None

    @property
    def age(self) -> float:
        """Seconds since its transaction began (0 when none is open)."""
        return 0.0 if self._began is None else self._monotonic() - self._began

    def commit(self) -> None:
        """Commit what the group holds, if anything; on failure roll it back and raise."""
        if self._lost:
            raise StateError("the state database rolled back a group of messages' "
                             "transactions after an error; none of them was kept, and all "
                             "are read again next time")
        if self._began is None:
            return
        self._began = None
        try:
            self._db.commit()
        except BaseException:
            self._db.rollback()
            raise

    def rollback(self) -> None:
        """Undo everything the group holds (nothing of it was committed)."""
        self._began = None
        self._db.rollback()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Transactions inside commit one by one (:meth:`commit` first: nothing may be open)."""
        if self.open:
            raise RuntimeError("a group must be committed before it is paused")
        self.active = False
        try:
            yield
        finally:
            self.active = self.enabled

    def begin(self) -> None:
        """Begin the group's transaction unless one is open (:meth:`Store.transaction`)."""
        if self._lost:
            self.commit()  # raises: what the group held is gone
        if self._began is None:
            self._db.begin()
            self._began = self._monotonic()

    def undo(self, savepoint: str) -> None:
        """Roll back one message's savepoint after an error. When the database dropped the
        whole transaction (SQLite does after a full disk or an I/O error), the messages
        before it in the group are gone too: the group is marked lost, so that no commit
        claims them."""
        if not self._db.in_transaction:
            self._began, self._lost = None, True
            return
        try:
            self._db.execute(f"ROLLBACK TO {savepoint}")
            self._db.execute(f"RELEASE {savepoint}")
        except StateError:
            self._began, self._lost = None, True
            self._db.rollback()


class Store:
    """One SQLite state file. Not thread-safe: one process, one connection.

    Every error of SQLite comes out of it as :class:`~mailhelper.model.errors.StateError`.
    """

    def __init__(self, connection: sqlite3.Connection | Connection,
                 assistant_domain: str) -> None:
        self.db: Connection = (SQLiteConnection(connection)
                               if isinstance(connection, sqlite3.Connection) else connection)
        self.domain = assistant_domain
        self._depth = 0
        self._message_id_secret: bytes | None = None
        #: Run first in every transaction (a leased PostgreSQL state's
        #: :meth:`~mailhelper.state.lease.Lease.fence`): it raises, and the transaction rolls
        #: back, when this process may no longer write.
        self.fence: Callable[[], None] | None = None
        #: The group of :meth:`grouped`, while one is.
        self._group: Group | None = None

    @classmethod
    def open_readonly(cls, path: Path | str, assistant_domain: str,
                      password: str | None = None, assistant: str | None = None) -> Store:
        """The state at ``path`` (a file, or a ``postgresql://`` URL) for reading only:
        nothing is created or migrated, and any write fails (``explain`` looks threads up
        while ``run`` may be using the state). ``assistant``: as for :meth:`open`."""
        if isinstance(path, str) and is_database_url(path):
            return cls(PostgresConnection.connect(path, password, read_only=True,
                                                  schema=_schema(assistant)),
                       assistant_domain)
        try:
            connection = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise state_error(exc) from exc
        connection.row_factory = sqlite3.Row
        store = cls(connection, assistant_domain)
        try:
            version = version_of(store.db)
        except (StateError, sqlite3.Error, ValueError):
            return store  # not a state file, or unreadable: the first read says so
        if not 0 < version < SCHEMA_VERSION:
            return store  # today's schema, an empty file, or a newer one (read as it is)
        # A file of an older schema (the daemon not yet restarted on a new release): read an
        # upgraded copy in memory, so every reader sees today's shape; the file is untouched.
        # If the upgrade fails, the file is read as it is, as before there were copies.
        copy = store.snapshot()
        try:
            copy._migrate(str(path))
        except StateError:
            copy.close()
            return store
        store.close()
        return copy

    def snapshot(self) -> Store:
        """An in-memory copy of the whole state, to work on without touching the file or the
        database (a dry run): what is written to the copy is gone when it is closed. The copy
        of a PostgreSQL state is an in-memory SQLite one: the store's SQL runs on both."""
        copy = sqlite3.connect(":memory:", isolation_level=None)
        copy.row_factory = sqlite3.Row
        try:
            if isinstance(self.db, SQLiteConnection):
                self.db.backup(copy)
            else:
                target = type(self)(copy, self.domain)
                target._migrate(":memory:")
                copy_rows(self.db, target.db)
        except BaseException:
            copy.close()
            raise
        return type(self)(copy, self.domain)

    @classmethod
    def open(cls, path: Path | str, assistant_domain: str, password: str | None = None,
             exclusive: bool = False, assistant: str | None = None) -> Store:
        """Open and migrate the state: a ``postgresql://`` URL names a PostgreSQL database
        (``password``, if given, overrides what libpq finds: ``PGPASSWORD``, ``~/.pgpass``);
        anything else is the path of an SQLite file, created with its folder if needed (see
        :func:`private_state_path`).

        PostgreSQL: several assistants share one database, each in a schema of its own
        named after ``assistant`` (its address; :func:`~mailhelper.model.settings.
        assistant_schema`), created on first use; every statement of the store sees that
        schema alone. The schema records the address it was made for, and refuses another
        (two addresses that give one name). A database of the one-assistant-per-database
        version, its state in ``public``, is taken over by the first assistant opened on it
        (its tables moved into that assistant's schema). Without ``assistant`` the state is
        ``public`` itself, as in that version.

        ``exclusive`` (PostgreSQL): hold the assistant's lock for this process, as
        :class:`~mailhelper.engine.daemon.StateLock` does beside an SQLite file, on any machine:
        :class:`StateLockedError` when another mailhelper serves the same assistant."""
        if isinstance(path, str) and is_database_url(path):
            return cls._open_postgres(path, assistant_domain, password, exclusive, assistant)
        path = Path(path)
        try:
            if str(path) != ":memory:":
                private_state_path(path, create_file=True)
            connection = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        except OSError as exc:
            raise StateError(f"the state file {path} cannot be created ({exc}); fix the "
                             "cause (permissions, disk space) or set `state` to another "
                             "file") from exc
        except sqlite3.Error as exc:
            raise state_error(exc) from exc
        connection.row_factory = sqlite3.Row
        store = cls(connection, assistant_domain)
        try:
            store.db.execute("PRAGMA journal_mode=WAL")
            store.db.execute("PRAGMA synchronous=FULL")
            store.db.execute("PRAGMA foreign_keys=ON")
            store._migrate(str(path))
        except BaseException:
            connection.close()
            raise
        return store

    @classmethod
    def _open_postgres(cls, url: str, assistant_domain: str, password: str | None,
                       exclusive: bool, assistant: str | None) -> Store:
        schema = _schema(assistant)
        connection = PostgresConnection.connect(url, password, schema=schema)
        store = cls(connection, assistant_domain)
        where = redact(url) if schema == LEGACY_SCHEMA else f"{schema} in {redact(url)}"
        try:
            if exclusive:
                hold_assistant(connection, url)
            # Two processes opening a new state at once must not both create its tables: the
            # lock is the transaction's, so it goes with the migration's commit. Each
            # assistant's schema has its own: assistants migrate on their own.
            with store.transaction():
                store.db.execute("SELECT pg_advisory_xact_lock(?)",
                                 (_lock_key("migrate", schema),))
                if schema != LEGACY_SCHEMA:
                    store._make_schema(schema, redact(url))
                store._migrate(where)
                if assistant is not None:
                    store._claim_schema(assistant, where)
        except BaseException:
            connection.close()
            raise
        return store

    def _make_schema(self, schema: str, where: str) -> None:
        """Create the assistant's ``schema`` when it is not there yet, in the caller's
        transaction. A database of the one-assistant-per-database version holds its state
        in ``public``: its tables move into this schema (ALTER TABLE ... SET SCHEMA, with
        their indexes and id sequences), in the same transaction, logged once."""
        if self.db.execute("SELECT 1 FROM pg_namespace WHERE nspname = ?",
                           (schema,)).fetchone() is not None:
            return
        # One assistant at a time looks at public, so only the first takes its state; and
        # no process of the older version may be reading it (it held _DAEMON_LOCK).
        self.db.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
        self.db.execute(f"CREATE SCHEMA {schema}")
        if self.db.execute("SELECT to_regclass('public.meta') IS NOT NULL").fetchone()[0] \
                and self.db.execute("SELECT 1 FROM public.meta WHERE key='schema_version'"
                                    ).fetchone() is not None:
            if not self.db.execute("SELECT pg_try_advisory_xact_lock(?)",
                                   (_DAEMON_LOCK,)).fetchone()[0]:
                raise StateLockedError(
                    f"the state database {where} holds a state of the older layout (in "
                    "public), and an older mailhelper is using it; stop it first, then start "
                    "this version, which moves that state into its assistant's schema")
            known = set(state_tables(every_schema=True))
            moved = [str(r[0]) for r in self.db.execute(
                "SELECT relname FROM pg_class WHERE relkind = 'r' "
                "AND relnamespace = 'public'::regnamespace ORDER BY oid").fetchall()
                if str(r[0]) in known]
            for table in moved:
                self.db.execute(f"ALTER TABLE public.{table} SET SCHEMA {schema}")
            log.warning("the state in %s was in the schema public (one assistant per "
                        "database, as before); it is now in the schema %s, this "
                        "assistant's (%d tables moved)", where, schema, len(moved))

    def _claim_schema(self, assistant: str, where: str) -> None:
        """Record the assistant a schema is for, or refuse another whose address gives the
        same schema name: one assistant must never read another's mail."""
        address = fold(assistant.strip())
        owner = self.get_meta("assistant")
        if owner is None:
            self.set_meta("assistant", address)
        elif owner != address:
            raise StateError(
                f"the state {where} is {owner}'s, not {address}'s: both addresses give the "
                "schema the same name; give one of the assistants a database of its own")

    def close(self) -> None:
        self.db.close()

    def is_empty(self) -> bool:
        """Whether there is no state here at all yet (no tables: a database, or an
        assistant's schema, that no run has used)."""
        return version_of(self.db) == 0

    @property
    def reconnects(self) -> bool:
        """Whether a :class:`StateError` may pass, as a server's outage does (PostgreSQL: the
        store connects again by itself), rather than need a person (a file's full disk)."""
        return self.db.dialect == "postgresql"

    @contextmanager
    def batched_durability(self) -> Iterator[None]:
        """Inside, commits stay atomic but are not synced to disk one by one (WAL with
        ``synchronous=NORMAL``): a power cut may undo the last ones, a killed process never.
        :meth:`make_durable` then syncs them all at once. Reading a backlog commits once per
        message, and a sync each time cost more than everything else done for the message.
        """
        self.db.set_durable(False)
        try:
            yield
        finally:
            self.db.set_durable(True)

    def make_durable(self) -> None:
        """Sync every commit so far to disk: a commit with ``synchronous=FULL`` syncs the whole
        write-ahead log, earlier commits included. Call it before telling the mail server that
        messages are handled; never inside a :meth:`grouped` group unless it is committed
        and :meth:`Group.paused` (:class:`RuntimeError`: what it holds is not on disk)."""
        if self._group is not None and (self._group.open or self._group.active):
            raise RuntimeError("make_durable inside a group of messages not committed "
                               "and paused")
        self.db.set_durable(True)
        try:
            with self.transaction():
                self.set_meta("durable_mark", os.urandom(8).hex())  # a write, so a sync
        finally:
            self.db.set_durable(False)

    def _migrate(self, where: str) -> None:
        """Bring the file to :data:`SCHEMA_VERSION` in one transaction (see
        :mod:`mailhelper.state.migrations`), or refuse a newer one with a :class:`StateError`
        that names ``where``."""
        with self.transaction():
            try:
                version = version_of(self.db)
                pending(version, where)
            except NewerSchema as exc:
                raise StateError(str(exc)) from None
            except ValueError as exc:
                raise StateError(f"{where}: its schema_version is not a number ({exc}); "
                                 "is it a mailhelper state file?") from None
            migrate(self.db, version)
            self._secret()  # a state without one (new, or from before it) gets one now

    @contextmanager
    def grouped(self) -> Iterator[Group]:
        """Inside, each :meth:`transaction` is a SAVEPOINT of one transaction that commits at
        :meth:`Group.commit`: the effects of several messages are committed at once, each
        message still atomic (an error inside one rolls back its own writes only). SQLite
        only: a commit there costs more than handling a simple message, and one process owns
        the file (:class:`~mailhelper.engine.daemon.StateLock`). On PostgreSQL (and with a
        :attr:`fence`) each transaction stays its own, so the lease's fence runs before each
        message's writes, as without a group.

        The caller commits before anything outside the state relies on what the group holds
        (flagging mail as handled, sending): :meth:`make_durable` refuses an open group.
        On leaving: a :class:`StateError` rolls the open group back (the database is at
        fault, and may have dropped it already); anything else, and a normal end, commits
        what the messages applied (each was whole), as their own commits did without a
        group."""
        group = Group(self.db, enabled=self.db.dialect == "sqlite" and self.fence is None)
        if self._group is not None:
            raise RuntimeError("a store has one group at a time")
        self._group = group
        try:
            yield group
        except StateError:
            if group.open:
                group.rollback()
            raise
        except BaseException:
            group.commit()
            raise
        else:
            group.commit()
        finally:
            self._group = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together; nested use joins the outer transaction. With a
        :attr:`fence`, it runs first: a :class:`~mailhelper.model.errors.LeaseLost` there rolls
        the transaction back before anything is written. Inside :meth:`grouped`, it is a
        SAVEPOINT of the group's transaction, committed with the group."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        group = self._group
        if group is not None and group.active:
            group.begin()
            self.db.execute("SAVEPOINT message")
            self._depth = 1
            try:
                yield
            except BaseException:
                group.undo("message")
                raise
            else:
                self.db.execute("RELEASE message")
            finally:
                self._depth = 0
            return
        self.db.begin()
        self._depth = 1
        try:
            if self.fence is not None:
                self.fence()
            yield
        except BaseException:
            # SQLite has rolled back already after some errors (a full disk, an I/O error),
            # and a lost server connection has no transaction left: rollback() then does
            # nothing, as a second ROLLBACK would fail and hide the error that caused it.
            self.db.rollback()
            raise
        else:
            self.db.commit()
        finally:
            self._depth = 0

    # -- meta -------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def delete_meta(self, key: str) -> None:
        self.db.execute("DELETE FROM meta WHERE key=?", (key,))

    # -- processed messages and sync position ----------------------------------------------
    def is_processed(self, message_id: str, content_hash: str) -> bool:
        """True when this message (by Message-ID, or by content for the same bytes) was handled."""
        row = self.db.execute(
            "SELECT 1 FROM processed WHERE message_id=? OR content_hash=? LIMIT 1",
            (message_id, content_hash),
        ).fetchone()
        return row is not None

    def mark_processed(
        self, message_id: str, content_hash: str, folder: str | None, uid: int | None,
        at: datetime, outcome: str,
    ) -> None:
        self.db.execute(
            "INSERT INTO processed (message_id, content_hash, folder, uid, at, outcome) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (message_id, content_hash, folder, uid, to_text(at), outcome[:500]),
        )

    def processed_outcome(self, message_id: str, content_hash: str | None = None) -> str | None:
        """The outcome recorded for this message (by Message-ID, or by content for the same
        bytes; by Message-ID alone without ``content_hash``), None when it was never handled:
        :meth:`is_processed` and the outcome in one look-up."""
        if content_hash is None:
            row = self.db.execute("SELECT outcome FROM processed WHERE message_id=?",
                                  (message_id,)).fetchone()
        else:
            row = self.db.execute(
                "SELECT outcome FROM processed WHERE message_id=? OR content_hash=? LIMIT 1",
                (message_id, content_hash),
            ).fetchone()
        return None if row is None else str(row["outcome"])

    def processed_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM processed").fetchone()[0])

    def cursor(self, folder: str) -> str | None:
        """Where ``folder`` was read to: the mail source's cursor as it was kept (an opaque
        string, its first-start record in it), or None before the first reading."""
        row = self.db.execute("SELECT value FROM cursors WHERE folder=?", (folder,)).fetchone()
        return None if row is None else str(row["value"])

    def set_cursor(self, folder: str, cursor: str) -> None:
        self.db.execute(
            "INSERT INTO cursors (folder, value) VALUES (?, ?) "
            "ON CONFLICT (folder) DO UPDATE SET value=excluded.value",
            (folder, cursor),
        )

    # -- threads ----------------------------------------------------------------------------
    def _answers(self, thread_id: int | None = None) -> dict[int, tuple[Answer, ...]]:
        """Every thread's answers (or one thread's), in the order they came."""
        where, args = ("WHERE thread_id=?", (thread_id,)) if thread_id is not None else ("", ())
        found: dict[int, list[Answer]] = {}
        for row in self.db.execute(
            f"SELECT * FROM thread_answers {where} ORDER BY thread_id, position", args
        ):
            found.setdefault(int(row["thread_id"]), []).append(
                Answer(row["email"], _req(row["at"]), bool(row["trusted"]), row["excerpt"])
            )
        return {key: tuple(value) for key, value in found.items()}

    def _thread(self, row: Any, answers: tuple[Answer, ...] = ()) -> Thread:
        return Thread(
            id=int(row["id"]),
            kind=Kind(row["kind"]),
            state=ThreadState(row["state"]),
            subject=row["subject"],
            owner=Address(row["owner_email"], row["owner_name"]),
            counterparts=_addresses(row["counterparts"]),
            created=_req(row["created"]),
            root_message_id=row["root_message_id"],
            last_owner_activity=_req(row["last_owner_activity"]),
            answered_at=from_text(row["answered_at"]),
            closed_at=from_text(row["closed_at"]),
            excerpt=row["excerpt"],
            reply_excerpt=row["reply_excerpt"],
            away_until=from_text(row["away_until"]),
            follow_up_at=from_text(row["follow_up_at"]),
            snoozed_until=from_text(row["snoozed_until"]),
            away_capped=bool(row["away_capped"]),
            answers=answers,
            repeat=row["repeat"],
            written_at=from_text(row["written_at"]),
            followed_up_at=from_text(row["followed_up_at"]),
            expected=row["expected"],
        )

    def thread(self, thread_id: int) -> Thread | None:
        row = self.db.execute("SELECT * FROM threads WHERE id=?", (thread_id,)).fetchone()
        if row is None:
            return None
        return self._thread(row, self._answers(thread_id).get(thread_id, ()))

    def threads(self) -> list[Thread]:
        """Every thread, finished ones included, newest first."""
        rows = self.db.execute("SELECT * FROM threads ORDER BY created DESC, id DESC").fetchall()
        answers = self._answers()
        return [self._thread(r, answers.get(int(r["id"]), ())) for r in rows]

    def next_thread_id(self) -> int:
        row = self.db.execute("SELECT coalesce(max(id), 0) + 1 FROM threads").fetchone()
        return int(row[0])

    def save_thread(self, thread: Thread) -> None:
        """Insert or update a thread and its participants."""
        values = {
            "id": thread.id,
            "kind": thread.kind.value,
            "state": thread.state.value,
            "subject": thread.subject,
            "match_subject": match_subject(thread.subject),
            "owner_email": thread.owner.email,
            "owner_name": thread.owner.name,
            "counterparts": _addresses_json(thread.counterparts),
            "created": to_text(thread.created),
            "root_message_id": thread.root_message_id,
            "last_owner_activity": to_text(thread.last_owner_activity),
            "answered_at": to_text(thread.answered_at),
            "closed_at": to_text(thread.closed_at),
            "excerpt": thread.excerpt,
            "reply_excerpt": thread.reply_excerpt,
            "away_until": to_text(thread.away_until),
            "follow_up_at": to_text(thread.follow_up_at),
            "snoozed_until": to_text(thread.snoozed_until),
            # Kept for a state file opened by an older mailhelper: every answer trusted.
            "answer_trusted": int(bool(thread.replies) and all(a.trusted for a in thread.replies)),
            "away_capped": int(thread.away_capped),
            "repeat": thread.repeat,
            "written_at": to_text(thread.written_at),
            "followed_up_at": to_text(thread.followed_up_at),
            "expected": thread.expected,
        }
        columns = ", ".join(values)
        marks = ", ".join(f":{c}" for c in values)
        updates = ", ".join(f"{c}=excluded.{c}" for c in values if c != "id")
        self.db.execute(
            f"INSERT INTO threads ({columns}) VALUES ({marks}) "
            f"ON CONFLICT (id) DO UPDATE SET {updates}",
            values,
        )
        for person in thread.counterparts:
            self.db.execute(
                "INSERT INTO thread_participants (thread_id, email) VALUES (?, ?) "
                "ON CONFLICT DO NOTHING",
                (thread.id, person.email),
            )
        for position, answer in enumerate(thread.replies):
            self.db.execute(
                "INSERT INTO thread_answers (thread_id, email, at, trusted, excerpt, position) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (thread_id, email) DO UPDATE SET "
                "at=excluded.at, trusted=excluded.trusted, excerpt=excluded.excerpt, "
                "position=excluded.position",
                (thread.id, answer.email, to_text(answer.at), int(answer.trusted),
                 answer.excerpt, position),
            )

    def add_thread_messages(self, thread_id: int, message_ids: Sequence[str]) -> None:
        for message_id in message_ids:
            if message_id:
                self.db.execute(
                    "INSERT INTO thread_messages (message_id, thread_id) VALUES (?, ?) "
                    "ON CONFLICT DO NOTHING",
                    (message_id, thread_id),
                )

    def thread_message_ids(self, thread_id: int) -> tuple[str, ...]:
        """The thread's Message-IDs in the order they were seen (for References)."""
        rows = self.db.execute(
            "SELECT message_id FROM thread_messages WHERE thread_id=? ORDER BY rowid",
            (thread_id,),
        ).fetchall()
        return tuple(r["message_id"] for r in rows)

    # ThreadIndex (mailhelper.decide.classify) ----------------------------------------------------
    def thread_for(self, message_ids: tuple[str, ...]) -> Thread | None:
        thread_id = self.thread_id_for(message_ids)
        return None if thread_id is None else self.thread(thread_id)

    def thread_id_for(self, message_ids: tuple[str, ...]) -> int | None:
        """The id of the thread :meth:`thread_for` finds, without reading the thread."""
        ids = [m for m in message_ids if m]
        if not ids:
            return None
        marks = ", ".join("?" for _ in ids)
        # Each look-up finds at most one row an id (both columns are unique), and the newest
        # is picked here: an ORDER BY over several ids costs SQLite a sort (a temporary
        # B-tree) several times the look-ups.
        row = self.db.execute(
            f"SELECT max(thread_id) FROM thread_messages WHERE message_id IN ({marks})", ids,
        ).fetchone()
        if row[0] is not None:
            return int(row[0])
        rows = self.db.execute(
            f"SELECT id, thread_id FROM actions WHERE message_id IN ({marks}) "
            "AND thread_id IS NOT NULL",
            ids,
        ).fetchall()
        return int(max(rows, key=lambda r: int(r["id"]))["thread_id"]) if rows else None

    def sent_mail(self, message_ids: tuple[str, ...]) -> tuple[int | None, ActionKind] | None:
        ids = [m for m in message_ids if m]
        if not ids:
            return None
        marks = ", ".join("?" for _ in ids)
        rows = self.db.execute(
            f"SELECT id, thread_id, kind FROM actions WHERE message_id IN ({marks}) "
            "AND status IN ('sent', 'sending')",
            ids,
        ).fetchall()
        if not rows:
            return None
        row = max(rows, key=lambda r: int(r["id"]))  # the newest; see thread_id_for
        thread_id = None if row["thread_id"] is None else int(row["thread_id"])
        return thread_id, ActionKind(row["kind"])

    def tapped_mail(
        self, token: str, owner: str
    ) -> tuple[str, tuple[int | None, ActionKind]] | None:
        """(Message-ID, (thread id, kind)) of the assistant's sent mail to ``owner`` whose
        Message-ID starts with ``token`` (a ``mailto:`` link's, see :mod:`mailhelper.decide.tap`);
        None when there is none, or more than one."""
        low = f"mh.{token.lower()}"
        rows = self.db.execute(
            "SELECT message_id, thread_id, kind, recipients FROM actions "
            "WHERE message_id >= ? AND message_id < ? AND status IN ('sent', 'sending') "
            "LIMIT 3",
            (low, low + "~"),
        ).fetchall()
        mine = [r for r in rows
                if any(fold(a.email) == fold(owner) for a in _addresses(r["recipients"]))]
        if len(rows) != 1 or len(mine) != 1:
            return None
        row = mine[0]
        thread_id = None if row["thread_id"] is None else int(row["thread_id"])
        return str(row["message_id"]), (thread_id, ActionKind(row["kind"]))

    def is_participant(self, email: str) -> bool:
        """Whether ``email`` is on any thread, whatever its state."""
        row = self.db.execute(
            "SELECT 1 FROM thread_participants WHERE email=? LIMIT 1", (fold(email),)
        ).fetchone()
        return row is not None

    def thread_by_subject(self, subject: str, participant: str) -> Thread | None:
        row = self.db.execute(
            "SELECT t.id FROM threads t JOIN thread_participants p ON p.thread_id = t.id "
            "WHERE t.match_subject=? AND p.email=? AND t.state IN ('open', 'answered') "
            "ORDER BY t.id DESC LIMIT 1",
            (match_subject(subject), fold(participant)),
        ).fetchone()
        return None if row is None else self.thread(int(row["id"]))

    def threads_by_subject(self, subject: str) -> tuple[Thread, ...]:
        """The unfinished threads with this clean subject, newest first (at most 20)."""
        rows = self.db.execute(
            "SELECT id FROM threads WHERE match_subject=? AND state IN ('open', 'answered') "
            "ORDER BY id DESC LIMIT 20",
            (match_subject(subject),),
        ).fetchall()
        found = (self.thread(int(r["id"])) for r in rows)
        return tuple(t for t in found if t is not None)

    def person_for(self, address: str) -> str | None:
        """The counterpart address ``address`` was recorded as another address of."""
        row = self.db.execute(
            "SELECT email FROM other_addresses WHERE address=?", (fold(address),)
        ).fetchone()
        return None if row is None else str(row["email"])

    def add_other_address(self, address: str, email: str) -> None:
        """Record ``address`` as another address of the counterpart ``email`` (the first
        record stands: an address is one person's)."""
        self.db.execute(
            "INSERT INTO other_addresses (address, email) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (fold(address), fold(email)),
        )

    # -- events -----------------------------------------------------------------------------
    def log_event(
        self, thread_id: int | None, at: datetime, kind: str, message_id: str | None, detail: str
    ) -> None:
        self.db.execute(
            "INSERT INTO events (thread_id, at, kind, message_id, detail) VALUES (?, ?, ?, ?, ?)",
            (thread_id, to_text(at), kind, message_id, detail[:2000]),
        )

    def events(self, thread_id: int) -> list[tuple[datetime, str, str]]:
        rows = self.db.execute(
            "SELECT at, kind, detail FROM events WHERE thread_id=? ORDER BY id", (thread_id,)
        ).fetchall()
        return [(_req(r["at"]), r["kind"], r["detail"]) for r in rows]

    # -- actions ----------------------------------------------------------------------------
    def _action(self, row: Any) -> Action:
        return Action(
            key=row["key"],
            kind=ActionKind(row["kind"]),
            due=_req(row["due"]),
            thread_id=None if row["thread_id"] is None else int(row["thread_id"]),
            recipients=_addresses(row["recipients"]),
            data=json.loads(row["data"]),
            status=ActionStatus(row["status"]),
            attempts=int(row["attempts"]),
            id=int(row["id"]),
            sent_at=from_text(row["sent_at"]),
            next_attempt=from_text(row["next_attempt"]),
            last_error=row["last_error"],
        )

    def _secret(self) -> bytes:
        """The installation's Message-ID secret, made (32 random bytes) the first time."""
        if self._message_id_secret is None:
            stored = self.get_meta(MESSAGE_ID_SECRET)
            if stored is None:
                stored = new_secret().hex()
                with self.transaction():
                    self.set_meta(MESSAGE_ID_SECRET, stored)
            self._message_id_secret = bytes.fromhex(stored)
        return self._message_id_secret

    def message_id_for(self, action: Action) -> str:
        """The action's deterministic Message-ID (without angle brackets): the one recorded
        when it was planned, else the one :func:`make_message_id` gives its key under this
        installation's secret. Reading the recorded one keeps ids made before the secret
        (or under an older formula) valid for the Sent-folder check after a crash."""
        row = self.db.execute(
            "SELECT message_id FROM actions WHERE key=?", (action.key,)
        ).fetchone()
        if row is not None:
            return str(row["message_id"])
        return self._new_message_id(action.key)

    def _new_message_id(self, key: str) -> str:
        """The Message-ID (without angle brackets) :func:`make_message_id` gives the action
        key ``key`` under this installation's secret."""
        return make_message_id(key, self.domain, self._secret()).strip("<>")

    def add_action(self, action: Action, now: datetime) -> bool:
        """Record a new pending action; False when its key exists already (planned before)."""
        cursor = self.db.execute(
            "INSERT INTO actions (key, kind, thread_id, due, recipients, data, status, "
            "attempts, message_id, created) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (
                action.key,
                action.kind.value,
                action.thread_id,
                to_text(action.due),
                _addresses_json(action.recipients),
                json.dumps(dict(action.data), ensure_ascii=False),
                # Made, not looked up as message_id_for does: an action with this key
                # already recorded is not inserted again, whatever its Message-ID.
                self._new_message_id(action.key),
                to_text(now),
            ),
        )
        return cursor.rowcount == 1

    def record_sent_by_owner(self, action: Action) -> bool:
        """Record mail the owner sent by hand (e.g. a thank-you seen in their Sent folder) as
        a sent action: the ledger counts it and planning treats its key as spent. Nothing is
        ever sent or filed for it, and it counts toward no sending limit. False when its key
        exists already."""
        cursor = self.db.execute(
            "INSERT INTO actions (key, kind, thread_id, due, recipients, data, status, "
            "attempts, message_id, created, sent_at, appended) "
            "VALUES (?, ?, ?, ?, ?, ?, 'sent', 0, ?, ?, ?, 1) ON CONFLICT DO NOTHING",
            (
                action.key,
                action.kind.value,
                action.thread_id,
                to_text(action.due),
                _addresses_json(action.recipients),
                json.dumps(dict(action.data), ensure_ascii=False),
                # A Message-ID of the assistant's making, never the owner's: sent_mail() must
                # not take the owner's own mail for the assistant's.
                self.message_id_for(action),
                to_text(action.due),
                to_text(action.sent_at or action.due),
            ),
        )
        return cursor.rowcount == 1

    def set_action_data(self, action_id: int, data: dict[str, str]) -> None:
        """Replace a pending action's data (the daily summary's counts grow during its day)."""
        self.db.execute("UPDATE actions SET data=? WHERE id=? AND status='pending'",
                        (json.dumps(data, ensure_ascii=False), action_id))

    def last_action_id(self) -> int:
        """The highest action id so far (0: none): a mark for :meth:`added_after`."""
        return int(self.db.execute("SELECT coalesce(max(id), 0) FROM actions").fetchone()[0])

    def added_after(self, action_id: int) -> list[Action]:
        """Pending actions recorded after the mark ``action_id``, oldest first."""
        rows = self.db.execute(
            "SELECT * FROM actions WHERE id>? AND status='pending' ORDER BY id", (action_id,)
        ).fetchall()
        return [self._action(r) for r in rows]

    def actions_for(self, thread_id: int) -> list[Action]:
        rows = self.db.execute(
            "SELECT * FROM actions WHERE thread_id=? ORDER BY id", (thread_id,)
        ).fetchall()
        return [self._action(r) for r in rows]

    def action(self, action_id: int) -> Action | None:
        row = self.db.execute("SELECT * FROM actions WHERE id=?", (action_id,)).fetchone()
        return None if row is None else self._action(row)

    def action_by_key(self, key: str) -> Action | None:
        row = self.db.execute("SELECT * FROM actions WHERE key=?", (key,)).fetchone()
        return None if row is None else self._action(row)

    def action_by_message_id(self, message_id: str) -> Action | None:
        """The assistant's mail with this Message-ID (with or without angle brackets)."""
        bare = message_id.strip().strip("<>")
        row = self.db.execute("SELECT * FROM actions WHERE message_id IN (?, ?)",
                              (bare, f"<{bare}>")).fetchone()
        return None if row is None else self._action(row)

    def pending(self, kind: ActionKind | None = None) -> list[Action]:
        if kind is None:
            rows = self.db.execute(
                "SELECT * FROM actions WHERE status='pending' ORDER BY due, id"
            ).fetchall()
        else:
            rows = self.db.execute(
                "SELECT * FROM actions WHERE status='pending' AND kind=? ORDER BY due, id",
                (kind.value,),
            ).fetchall()
        return [self._action(r) for r in rows]

    def due(self, now: datetime) -> list[Action]:
        """Pending actions due at ``now`` and not waiting for a retry, oldest first."""
        stamp = to_text(now)
        rows = self.db.execute(
            "SELECT * FROM actions WHERE status='pending' AND due <= ? "
            "AND (next_attempt IS NULL OR next_attempt <= ?) ORDER BY due, id",
            (stamp, stamp),
        ).fetchall()
        return [self._action(r) for r in rows]

    def next_due(self) -> datetime | None:
        """When the next pending action falls due, a retry is next tried, or a send whose
        outcome is unknown is next checked (see :meth:`in_flight`)."""
        row = self.db.execute(
            "SELECT min(CASE WHEN next_attempt > due THEN next_attempt ELSE due END) FROM actions "
            "WHERE status IN ('pending', 'sending')"
        ).fetchone()
        return from_text(row[0]) if row and row[0] else None

    def in_flight(self, now: datetime | None = None) -> list[Action]:
        """Actions whose send was attempted but whose outcome was never recorded: a crash
        after :meth:`mark_sending`, or a connection lost after the mail was handed over. With
        ``now``, only those whose check is due (a lost connection waits for its backoff)."""
        if now is None:
            rows = self.db.execute(
                "SELECT * FROM actions WHERE status='sending' ORDER BY id"
            ).fetchall()
        else:
            rows = self.db.execute(
                "SELECT * FROM actions WHERE status='sending' "
                "AND (next_attempt IS NULL OR next_attempt <= ?) ORDER BY id",
                (to_text(now),),
            ).fetchall()
        return [self._action(r) for r in rows]

    def set_status(self, action_id: int, status: ActionStatus, **fields: Any) -> None:
        """Set an action's status and any of its columns (``next_attempt=``, ``last_error=``
        ...). A status that ends or restarts the attempt also forgets the composed bytes."""
        assignments = ["status=?"]
        values: list[Any] = [status.value]
        for name, value in fields.items():
            assignments.append(f"{name}=?")
            values.append(to_text(value) if isinstance(value, datetime) else value)
        values.append(action_id)
        self.db.execute(f"UPDATE actions SET {', '.join(assignments)} WHERE id=?", values)
        if status in (ActionStatus.FAILED, ActionStatus.CANCELLED):
            self.forget_outgoing(action_id)

    def mark_sending(self, action: Action, raw: bytes | None = None) -> Action | None:
        """Record the attempt, and the exact bytes about to go, in a transaction of its own
        (committed before a byte reaches the SMTP server). Returns the action as now stored.

        On PostgreSQL the action is claimed first (``SELECT ... FOR UPDATE SKIP LOCKED``, still
        pending): None when another connection holds it or it is no longer pending (another
        process claimed it), and nothing is recorded: two processes never send one action."""
        assert action.id is not None
        with self.transaction():
            if self.db.dialect == "postgresql":
                claimed = self.db.execute(
                    "SELECT id FROM actions WHERE id=? AND status='pending' "
                    "FOR UPDATE SKIP LOCKED", (action.id,)).fetchone()
                if claimed is None:
                    return None
            self.db.execute(
                "UPDATE actions SET status='sending', attempts=attempts+1, next_attempt=NULL "
                "WHERE id=?",
                (action.id,),
            )
            if raw is not None:
                self.db.execute(
                    "INSERT INTO outgoing (action_id, raw) VALUES (?, ?) "
                    "ON CONFLICT (action_id) DO UPDATE SET raw=excluded.raw",
                    (action.id, raw),
                )
        stored = self.action(action.id)
        assert stored is not None
        return stored

    def outgoing(self, action_id: int) -> bytes | None:
        """The bytes composed for the action's attempt, while its outcome or filing is open."""
        row = self.db.execute("SELECT raw FROM outgoing WHERE action_id=?", (action_id,)).fetchone()
        return None if row is None else bytes(row["raw"])

    def forget_outgoing(self, action_id: int) -> None:
        self.db.execute("DELETE FROM outgoing WHERE action_id=?", (action_id,))

    def mark_sent(self, action: Action, at: datetime) -> None:
        """Record the server's acceptance and count the delivery for the sending limits."""
        assert action.id is not None
        self.set_status(action.id, ActionStatus.SENT, sent_at=at, last_error=None,
                        next_attempt=None)
        for person in action.recipients:
            self.db.execute(
                "INSERT INTO deliveries (action_id, recipient, at) VALUES (?, ?, ?)",
                (action.id, person.email, to_text(at)),
            )

    def mark_appended(self, action: Action) -> None:
        """The Sent folder holds the mail: its bytes are no longer needed."""
        assert action.id is not None
        self.db.execute("UPDATE actions SET appended=1 WHERE id=?", (action.id,))
        self.forget_outgoing(action.id)

    def unappended(self) -> list[Action]:
        """Sent actions not yet filed in the Sent folder."""
        rows = self.db.execute(
            "SELECT * FROM actions WHERE status='sent' AND appended=0 ORDER BY id"
        ).fetchall()
        return [self._action(r) for r in rows]

    def deliveries_since(self, since: datetime, recipient: str | None = None) -> int:
        """Mails accepted since ``since``: to ``recipient`` (each mail counted once per
        recipient), or in all (each mail counted once, whoever it went to)."""
        if recipient is None:
            row = self.db.execute(
                "SELECT count(DISTINCT action_id) FROM deliveries WHERE at >= ?", (to_text(since),)
            ).fetchone()
        else:
            row = self.db.execute(
                "SELECT count(*) FROM deliveries WHERE recipient=? AND at >= ?",
                (recipient, to_text(since)),
            ).fetchone()
        return int(row[0])

    def delivery_times_since(self, since: datetime, recipient: str | None = None,
                             notices: bool | None = None) -> list[datetime]:
        """When each mail accepted after ``since`` was accepted, oldest first: to
        ``recipient``, or in all (each mail once, whoever it went to). In all, ``notices``
        True counts only error notices, False everything else, None every mail."""
        if recipient is None and notices is not None:
            # The join looks up only the last hour's deliveries' actions, by primary key:
            # CROSS JOIN keeps SQLite to that order (not every error notice ever, by kind),
            # and "+" keeps it from reading every delivery in action order for the GROUP BY.
            kind = "=" if notices else "!="
            rows = self.db.execute(
                "SELECT min(d.at) FROM deliveries d CROSS JOIN actions a "
                f"WHERE a.id = d.action_id AND d.at > ? AND a.kind {kind} 'error_notice' "
                "GROUP BY +d.action_id ORDER BY 1",
                (to_text(since),),
            ).fetchall()
        elif recipient is None:
            rows = self.db.execute(  # "+": the last hour's by time, as above
                "SELECT min(at) FROM deliveries WHERE at > ? GROUP BY +action_id ORDER BY 1",
                (to_text(since),),
            ).fetchall()
        else:
            rows = self.db.execute(
                "SELECT at FROM deliveries WHERE recipient=? AND at > ? ORDER BY at",
                (recipient, to_text(since)),
            ).fetchall()
        return [_req(row[0]) for row in rows]

    def last_digest(self, recipient: str) -> datetime | None:
        """When the latest digest accepted for ``recipient`` went (None: none yet)."""
        # From the digests (a partial index of schema 11: one a day or a week) to their
        # deliveries; CROSS JOIN keeps SQLite to that order, not through every mail the
        # recipient ever got.
        row = self.db.execute(
            "SELECT max(d.at) FROM actions a CROSS JOIN deliveries d "
            "WHERE d.action_id = a.id AND a.kind = 'digest' AND d.recipient = ?",
            (recipient,),
        ).fetchone()
        return None if row is None or row[0] is None else _req(row[0])

    def cancel_pending(self, thread_id: int) -> None:
        self.db.execute(
            "DELETE FROM outgoing WHERE action_id IN "
            "(SELECT id FROM actions WHERE thread_id=? AND status='pending')",
            (thread_id,),
        )
        self.db.execute(
            "UPDATE actions SET status='cancelled' WHERE thread_id=? AND status='pending'",
            (thread_id,),
        )

    def apply_reconciliation(
        self, add: Sequence[Action], cancel: Sequence[Action], move: Sequence[Action],
        now: datetime,
    ) -> None:
        for action in add:
            self.add_action(action, now)
        for action in cancel:
            assert action.id is not None
            cursor = self.db.execute(
                "UPDATE actions SET status='cancelled' WHERE id=? AND status='pending'",
                (action.id,),
            )
            if cursor.rowcount:
                self.forget_outgoing(action.id)
        for action in move:
            assert action.id is not None
            cursor = self.db.execute(
                "UPDATE actions SET kind=?, due=?, recipients=?, data=? "
                "WHERE id=? AND status='pending'",
                (
                    action.kind.value,
                    to_text(action.due),
                    _addresses_json(action.recipients),
                    json.dumps(dict(action.data), ensure_ascii=False),
                    action.id,
                ),
            )
            if cursor.rowcount:  # bytes composed before the change are stale now
                self.forget_outgoing(action.id)

    # -- pauses -----------------------------------------------------------------------------
    def pauses(self) -> list[Pause]:
        """Every owner's pause not yet released, by owner."""
        rows = self.db.execute("SELECT * FROM pauses ORDER BY owner").fetchall()
        return [Pause(r["owner"], _req(r["since"]), _req(r["until"]), _req(r["release"]))
                for r in rows]

    def pause_for(self, owner: str) -> Pause | None:
        """The owner's pause (``owner`` folded), or None."""
        return next((p for p in self.pauses() if p.owner == fold(owner)), None)

    def set_pause(self, pause: Pause) -> None:
        self.db.execute(
            "INSERT INTO pauses (owner, since, until, release) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (owner) DO UPDATE SET since=excluded.since, until=excluded.until, "
            "release=excluded.release",
            (fold(pause.owner), to_text(pause.since), to_text(pause.until),
             to_text(pause.release)),
        )

    def end_pause(self, owner: str) -> None:
        self.db.execute("DELETE FROM pauses WHERE owner=?", (fold(owner),))

    # -- the help ledger --------------------------------------------------------------------
    def ledger(self, owner: str | None = None) -> Ledger:
        """Asks made and answered, median time to answer, offers and thanks (sent to the
        counterpart, or drafted for the owner only): overall, counting threads, and per
        person, counting every counterpart of every thread on their own (an ask to José and
        Jane is one ask to each; it is answered for the one who answered).

        A favour returned is a letter the owner had sent from a return-the-favour reminder
        (``send`` on it): the reminder itself is the assistant's nudge to the owner, not a
        favour, and counts for nothing.
        """
        threads = [t for t in self.threads() if owner is None or t.owner.email == owner]
        by_id = {t.id: t for t in threads}
        thanked: dict[int, set[str]] = {}
        drafted: dict[int, set[str]] = {}
        thanks = ledger_kinds(LedgerEffect.THANKS_SENT, LedgerEffect.THANKS_DRAFTED)
        for row in self.db.execute(
            "SELECT thread_id, kind, recipients, data FROM actions WHERE status='sent' "
            f"AND thread_id IS NOT NULL AND kind IN ({', '.join('?' for _ in thanks)})",
            thanks,
        ):
            thread = by_id.get(int(row["thread_id"]))
            if thread is None:
                continue
            kind = ActionKind(row["kind"])
            covered = thanked_people(thread, kind, json.loads(row["data"]),
                                     _addresses(row["recipients"]))
            target = thanked if ACTIONS[kind].ledger is LedgerEffect.THANKS_SENT else drafted
            target.setdefault(thread.id, set()).update(covered)

        returned: dict[int, set[str]] = {}
        favours = ledger_kinds(LedgerEffect.FAVOUR_RETURNED)
        for row in self.db.execute(
            "SELECT thread_id, data FROM actions WHERE status='sent' AND thread_id IS NOT NULL "
            f"AND kind IN ({', '.join('?' for _ in favours)})",
            favours,
        ):
            data = json.loads(row["data"])
            if data.get("about") == ActionKind.RETURN_FAVOR.value:
                returned.setdefault(int(row["thread_id"]), set()).update(
                    str(data.get("people", "")).split(","))

        def figures(person: Address | None, group: list[Thread]) -> PersonFigures:
            def among(thread: Thread, found: dict[int, set[str]]) -> bool:
                covered = found.get(thread.id, set())
                return bool(covered) if person is None else person.email in covered

            asks = [t for t in group if t.kind is Kind.ASK]
            hours = []
            partly = 0
            for thread in asks:
                answer = (thread.replies[0] if person is None and thread.replies
                          else thread.answer_from(person.email) if person is not None
                          else None)
                if answer is not None:
                    hours.append((answer.at - thread.created).total_seconds() / 3600)
                    partly += 1 if person is None and thread.silent else 0
            sent = [t for t in group if among(t, thanked)]
            return PersonFigures(
                person=person,
                asks_made=len(asks),
                asks_answered=len(hours),
                median_hours_to_answer=round(statistics.median(hours), 1) if hours else None,
                offers_received=sum(1 for t in group if t.kind is Kind.OFFER),
                thanks_sent=len(sent),
                # a draft the owner then had sent counts once, as sent
                thanks_drafted=sum(1 for t in group if among(t, drafted) and t not in sent),
                favours_returned=sum(1 for t in group if among(t, returned)),
                asks_partly=partly,
            )

        by_person: dict[str, list[Thread]] = {}
        names: dict[str, Address] = {}
        for thread in threads:
            for person in thread.counterparts:
                by_person.setdefault(person.email, []).append(thread)
                names.setdefault(person.email, person)
        people = tuple(figures(names[email], group) for email, group in sorted(by_person.items()))
        return Ledger(figures(None, threads), people)

    def integrity_ok(self) -> bool:
        return self.db.integrity_ok()


def ledger_kinds(*effects: LedgerEffect) -> list[str]:
    """The stored names of the action kinds whose sent mail counts as one of ``effects`` in
    the ledger, from the registry (:data:`mailhelper.model.kinds.ACTIONS`): a kind given a
    ledger effect there is counted without touching the SQL.

        >>> ledger_kinds(LedgerEffect.THANKS_SENT, LedgerEffect.THANKS_DRAFTED)
        ['thank_you', 'thank_you_draft']
        >>> ledger_kinds(LedgerEffect.FAVOUR_RETURNED)
        ['letter']
    """
    return sorted(kind.value for kind, spec in ACTIONS.items() if spec.ledger in effects)


def _schema(assistant: str | None) -> str:
    return LEGACY_SCHEMA if assistant is None else assistant_schema(assistant)


def hold_assistant(connection: PostgresConnection, url: str) -> None:
    """Hold the lock of the assistant whose state ``connection`` sees, for this process
    (until it closes; taken again on reconnecting): :class:`StateLockedError` when another
    process serves that assistant. Other assistants of the database are not concerned."""
    if not connection.hold(assistant_lock(connection.schema)):
        what = ("the state database" if connection.schema == LEGACY_SCHEMA
                else f"the state {connection.schema} in")
        raise StateLockedError(
            f"another mailhelper is using {what} {redact(url)} (on this machine or "
            "another); stop it first: one process per assistant, or the same mail is "
            "answered twice")


def state_name(settings: Settings) -> str:
    """The state for people: the file's path, or the URL without a password and the
    assistant's schema in it."""
    if settings.state_url:
        return f"{redact(settings.state_url)} (schema {settings.state_schema})"
    return str(settings.state)


def copy_rows(source: Connection, target: Connection) -> None:
    """Copy every row of every table of the state from ``source`` to ``target`` (both of the
    same schema), in one transaction of ``target``'s; its rows before are replaced. Only the
    tables ``target`` has are copied, and only the columns ``source`` has."""
    target.begin()
    try:
        for table in target.tables():
            rows = source.execute(f"SELECT * FROM {table}").fetchall()
            target.execute(f"DELETE FROM {table}")
            for row in rows:
                columns = [c for c in row.keys() if c != "rowid"]  # noqa: SIM118 (a row, not a dict)
                target.execute(
                    f"INSERT INTO {table} ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' for _ in columns)})",
                    [row[c] for c in columns])
    except BaseException:
        target.rollback()
        raise
    target.commit()


def folder_cursor(path: Path | str, folder: str, password: str | None = None,
                  assistant: str | None = None) -> str | None:
    """The cursor ``folder`` was read to in the state at ``path`` (a file or a
    ``postgresql://`` URL, there the state of ``assistant``), without creating, migrating or
    locking anything (``check`` asks while ``run`` may be running); None when it never read
    the folder. A missing or unreadable state has read nothing; a file not yet upgraded to
    cursors (schema 8 or older) answers as its upgrade will
    (:func:`~mailhelper.state.migrations.legacy_cursor`)."""
    if isinstance(path, str) and is_database_url(path):
        try:
            store = Store.open_readonly(path, "", password, assistant)
        except StateError:
            return None
        try:
            return store.cursor(folder)
        except StateError:
            return None
        finally:
            with contextlib.suppress(StateError):
                store.close()
    path = Path(path)
    if not path.exists():
        return None
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return None
    try:
        if connection.execute("SELECT 1 FROM sqlite_master WHERE type='table' "
                              "AND name='cursors'").fetchone() is not None:
            row = connection.execute("SELECT value FROM cursors WHERE folder=?",
                                     (folder,)).fetchone()
            return None if row is None else str(row[0])
        start = connection.execute("SELECT value FROM meta WHERE key=?",
                                   (f"first_start/{folder}",)).fetchone()
        synced = connection.execute("SELECT uidvalidity, last_uid FROM sync WHERE folder=?",
                                    (folder,)).fetchone()
        if start is None and synced is None:
            return None
        validity, last = (None, 0) if synced is None else (int(synced[0]), int(synced[1]))
        return legacy_cursor(validity, last, None if start is None else str(start[0]))
    except sqlite3.Error:
        return None
    finally:
        connection.close()


def _req(text: str) -> datetime:
    value = from_text(text)
    assert value is not None
    return value
