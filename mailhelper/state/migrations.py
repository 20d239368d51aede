"""The state file's schema as numbered steps: step ``N`` takes a file of schema ``N - 1`` to
schema ``N``; a new file is schema 0 and takes them all, so a new file and an upgraded one have
the same shape by construction.

:meth:`mailhelper.state.store.Store.open` runs the steps a file lacks, and records the new version,
in one transaction: a crash or an error part way leaves the file as it was, at its old version.
A file of a schema newer than :data:`SCHEMA_VERSION` is refused (:func:`pending` says why), as
this version cannot know what the newer one stored.

The version is the ``schema_version`` row of the ``meta`` table: every release has read it
there, so an older release still refuses a file a newer one has upgraded.

To change the schema: append one function ``_vN_what_it_adds`` to :data:`MIGRATIONS` (SQL
that works inside a transaction: no ``VACUUM``, no ``executescript``; SQL both SQLite and
PostgreSQL run: write the DDL with SQLite's types, which :mod:`mailhelper.state.sqldriver`
translates for PostgreSQL, and ``INSERT ... ON CONFLICT DO NOTHING``, not ``INSERT OR
IGNORE``), and a test that makes a
file of the version before (``migrate(db, 0, upto=N - 1)``), fills it as that version would
and opens it with the store. Never edit a step once released: files out there have run it.
A step must not use the store's code (it changes; the step must not), so it reads and writes
with SQL alone.

    >>> import sqlite3
    >>> db = sqlite3.connect(":memory:")
    >>> version_of(db)
    0
    >>> migrate(db, version_of(db))
    >>> version_of(db) == SCHEMA_VERSION
    True
    >>> pending(99, "state.db")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mailhelper.state.migrations.NewerSchema: state.db is of schema 99, newer than this mailhelper \
knows (schema ... at most): a newer mailhelper has used it; upgrade mailhelper
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol


class Database(Protocol):
    """What a step needs of a connection: ``execute`` (sqlite3's, or the store's wrapper)."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...


class NewerSchema(Exception):
    """The file is of a schema newer than this code knows (the store reports it as a
    :class:`~mailhelper.model.errors.StateError`)."""


def _run(db: Database, script: str) -> None:
    """Each statement of ``script`` (no ``;`` inside a statement), in the caller's transaction
    (``executescript`` would commit first)."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _v1_first_release(db: Database) -> None:
    """Schema 1: the tables of the first release."""
    _run(db, """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS threads (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    subject TEXT NOT NULL,
    match_subject TEXT NOT NULL,
    owner_email TEXT NOT NULL,
    owner_name TEXT NOT NULL,
    counterparts TEXT NOT NULL,
    created TEXT NOT NULL,
    root_message_id TEXT NOT NULL,
    last_owner_activity TEXT NOT NULL,
    answered_at TEXT,
    closed_at TEXT,
    excerpt TEXT NOT NULL DEFAULT '',
    reply_excerpt TEXT NOT NULL DEFAULT '',
    away_until TEXT,
    follow_up_at TEXT,
    snoozed_until TEXT
);
CREATE INDEX IF NOT EXISTS threads_by_subject ON threads (match_subject);
CREATE TABLE IF NOT EXISTS thread_participants (
    thread_id INTEGER NOT NULL REFERENCES threads (id),
    email TEXT NOT NULL,
    PRIMARY KEY (email, thread_id)
);
CREATE TABLE IF NOT EXISTS thread_messages (
    message_id TEXT PRIMARY KEY,
    thread_id INTEGER NOT NULL REFERENCES threads (id)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    thread_id INTEGER,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    message_id TEXT,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS events_by_thread ON events (thread_id);
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    thread_id INTEGER,
    due TEXT NOT NULL,
    recipients TEXT NOT NULL,
    data TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    message_id TEXT NOT NULL UNIQUE,
    next_attempt TEXT,
    last_error TEXT,
    created TEXT NOT NULL,
    sent_at TEXT,
    appended INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS actions_by_due ON actions (status, due);
CREATE INDEX IF NOT EXISTS actions_by_thread ON actions (thread_id);
CREATE TABLE IF NOT EXISTS deliveries (
    action_id INTEGER NOT NULL,
    recipient TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_by_recipient ON deliveries (recipient, at);
CREATE TABLE IF NOT EXISTS processed (
    message_id TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    folder TEXT,
    uid INTEGER,
    at TEXT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS processed_by_hash ON processed (content_hash);
CREATE TABLE IF NOT EXISTS sync (
    folder TEXT PRIMARY KEY,
    uidvalidity INTEGER NOT NULL,
    last_uid INTEGER NOT NULL,
    highestmodseq INTEGER
)
""")


def _v2_answer_trust(db: Database) -> None:
    """Schema 2: whether a thread's answer was really the counterpart's (answers recorded
    before cannot tell, so they count as untrusted: their thank-you is a draft), and whether
    an out-of-office return date was capped.

    Also what came while the schema was still 1, so a file of 1 may lack it: the bytes of a
    mail being sent (``outgoing``) and three indexes the cycle's queries need."""
    _run(db, """
ALTER TABLE threads ADD COLUMN answer_trusted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE threads ADD COLUMN away_capped INTEGER NOT NULL DEFAULT 0;
-- Every cycle asks for sent mail not yet filed in Sent: without this partial index that
-- scans every action ever sent (200 ms a cycle at 100,000 threads).
CREATE INDEX IF NOT EXISTS actions_unappended ON actions (status, appended) WHERE appended=0;
-- next_due() reads next_attempt of every pending action: from this index, not the table.
CREATE INDEX IF NOT EXISTS actions_pending_times ON actions (status, due, next_attempt);
-- The hourly cap counts every delivery since a time: without it, a scan per mail sent.
CREATE INDEX IF NOT EXISTS deliveries_by_time ON deliveries (at);
CREATE TABLE IF NOT EXISTS outgoing (
    action_id INTEGER PRIMARY KEY,
    raw BLOB NOT NULL
)
""")


def _v3_answers_per_person(db: Database) -> None:
    """Schema 3: each counterpart's answer, so a thread with several counterparts tracks each
    one. Before, an answered ask counted as answered by all its counterparts: each of them
    gets the thread's answer (time, trust, excerpt), so nothing reopens and nobody is thanked
    twice."""
    _run(db, """
CREATE TABLE IF NOT EXISTS thread_answers (
    thread_id INTEGER NOT NULL REFERENCES threads (id),
    email TEXT NOT NULL,
    at TEXT NOT NULL,
    trusted INTEGER NOT NULL DEFAULT 0,
    excerpt TEXT NOT NULL DEFAULT '',
    position INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (thread_id, email)
)
""")
    rows = db.execute(
        "SELECT id, counterparts, answered_at, answer_trusted, reply_excerpt FROM threads "
        "WHERE answered_at IS NOT NULL AND kind='ask'"
    ).fetchall()
    for thread_id, counterparts, answered_at, trusted, excerpt in rows:
        for position, (email, _name) in enumerate(json.loads(counterparts)):
            db.execute(
                "INSERT INTO thread_answers (thread_id, email, at, trusted, excerpt, "
                "position) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (thread_id, email, answered_at, trusted, excerpt, position),
            )


def _v4_other_addresses(db: Database) -> None:
    """Schema 4: a counterpart's other addresses (a forward of their answer came from one),
    for matching their mail to them only (never a recipient: recipients come from
    ``threads.counterparts``). It came while the schema was still 3, so a file of
    3 may have it already."""
    _run(db, """
CREATE TABLE IF NOT EXISTS other_addresses (
    address TEXT PRIMARY KEY,
    email TEXT NOT NULL
)
""")


def _v5_pauses(db: Database) -> None:
    """Schema 5: each owner's pause (``pause until …``) not yet released."""
    _run(db, """
CREATE TABLE IF NOT EXISTS pauses (
    owner TEXT PRIMARY KEY,
    since TEXT NOT NULL,
    until TEXT NOT NULL,
    release TEXT NOT NULL
)
""")


def _v6_repeats(db: Database) -> None:
    """Schema 6: a note's or an ask's repeat (an RFC 5545 RRULE); NULL: it does not repeat."""
    db.execute("ALTER TABLE threads ADD COLUMN repeat TEXT")


def _v7_written_and_followed_up(db: Database) -> None:
    """Schema 7: when a forwarded ask or offer was written (its original's own Date) and when
    the owner last followed up in the thread; NULL: not known (words fall back to when the
    assistant saw the mail)."""
    db.execute("ALTER TABLE threads ADD COLUMN written_at TEXT")
    db.execute("ALTER TABLE threads ADD COLUMN followed_up_at TEXT")


def _v8_expected(db: Database) -> None:
    """Schema 8: how many yeses the owner expected (``expect 2`` on an ask's first line);
    NULL: unsaid."""
    db.execute("ALTER TABLE threads ADD COLUMN expected INTEGER")


def legacy_cursor(uidvalidity: int | None, last_uid: int, first_start: str | None) -> str:
    """The IMAP cursor of a folder that schema 8 kept as a ``sync`` row (``uidvalidity``
    None: no row) and a ``first_start/<folder>`` meta record (its JSON, or None), in the
    format of the IMAP source of schema 9 (``"<UIDVALIDITY>:<last UID>"``, ``-`` for no
    position, then `` first <time> <UIDVALIDITY>:<UIDNEXT>``). Written out here, not taken
    from the source: a step never changes, whatever the source does later.

        >>> legacy_cursor(7, 500, None)
        '7:500'
        >>> legacy_cursor(None, 0, '{"at": "2026-12-07T09:00:00+00:00", "uidvalidity": 7, '
        ...               '"boundary": 501}')
        '- first 2026-12-07T09:00:00+00:00 7:501'
    """
    where = "-" if uidvalidity is None else f"{int(uidvalidity)}:{int(last_uid)}"
    if first_start is None:
        return where
    start = json.loads(first_start)
    return f"{where} first {start['at']} {int(start['uidvalidity'])}:{int(start['boundary'])}"


def _v9_reading_cursors(db: Database) -> None:
    """Schema 9: where each folder was read to, as the mail source's cursor, an opaque string
    the store keeps as it came, instead of IMAP's numbers (``sync``) and the first-start
    record (``first_start/<folder>`` in ``meta``), which both go into it
    (:func:`legacy_cursor`); watched folders' positions too."""
    _run(db, """
CREATE TABLE IF NOT EXISTS cursors (
    folder TEXT PRIMARY KEY,
    value TEXT NOT NULL
)
""")
    positions = {str(folder): (int(validity), int(last)) for folder, validity, last
                 in db.execute("SELECT folder, uidvalidity, last_uid FROM sync").fetchall()}
    prefix = "first_start/"
    starts = {str(key)[len(prefix):]: str(value) for key, value
              in db.execute("SELECT key, value FROM meta").fetchall()
              if str(key).startswith(prefix)}
    for folder in sorted(set(positions) | set(starts)):
        validity, last = positions.get(folder, (None, 0))
        db.execute("INSERT INTO cursors (folder, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
                   (folder, legacy_cursor(validity, last, starts.get(folder))))
    for folder in starts:
        db.execute("DELETE FROM meta WHERE key=?", (prefix + folder,))
    db.execute("DROP TABLE sync")


def _v10_thread_child_indexes(db: Database) -> None:
    """Schema 10: the tables that refer to a thread (its messages, its participants) indexed
    by it. With foreign keys on, SQLite looks for rows referring to a thread each time one is
    written, and without these indexes it scanned both tables to do so: a cost per thread
    saved that grew with every thread ever tracked (a backlog of 100,000 messages). The
    References of each mail sent read a thread's messages by thread too."""
    _run(db, """
CREATE INDEX IF NOT EXISTS thread_messages_by_thread ON thread_messages (thread_id);
CREATE INDEX IF NOT EXISTS thread_participants_by_thread ON thread_participants (thread_id)
""")


def _v11_deliveries_by_kind(db: Database) -> None:
    """Schema 11: the digests among the actions indexed, and deliveries by action. When the
    last digest went to an owner (asked on every cycle, to plan the next one) was found
    through all the deliveries to that owner, a receipt and reminder each: a quiet cycle's
    store side took 124 ms at 100,000 threads, and grew with every mail the owner got. With
    these, it reads the owner's digests alone
    (:meth:`~mailhelper.state.store.Store.last_digest`). Partial, so that no other query's
    plan turns to all the actions of a kind, the sent ones included."""
    _run(db, """
CREATE INDEX IF NOT EXISTS actions_digests ON actions (id) WHERE kind = 'digest';
CREATE INDEX IF NOT EXISTS deliveries_by_action ON deliveries (action_id)
""")


#: The steps, in order: ``MIGRATIONS[N - 1]`` takes a file from schema ``N - 1`` to ``N``.
MIGRATIONS: tuple[Callable[[Database], None], ...] = (
    _v1_first_release,
    _v2_answer_trust,
    _v3_answers_per_person,
    _v4_other_addresses,
    _v5_pauses,
    _v6_repeats,
    _v7_written_and_followed_up,
    _v8_expected,
    _v9_reading_cursors,
    _v10_thread_child_indexes,
    _v11_deliveries_by_kind,
)

#: The schema this code reads and writes: the number of steps.
SCHEMA_VERSION = len(MIGRATIONS)


def version_of(db: Database) -> int:
    """The file's schema (0: a new, empty file)."""
    has_table = getattr(db, "has_table", None)  # the store's connection knows its dialect
    if has_table is not None:
        if not has_table("meta"):
            return 0
    elif db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone() is None:
        return 0
    row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    return 0 if row is None else int(row[0])


def pending(version: int, where: str) -> range:
    """The numbers of the steps a file of ``version`` lacks (none for the current schema).

    Raises :class:`NewerSchema`, naming ``where`` (the file), for a version newer than
    :data:`SCHEMA_VERSION`."""
    if version > SCHEMA_VERSION:
        raise NewerSchema(
            f"{where} is of schema {version}, newer than this mailhelper knows (schema "
            f"{SCHEMA_VERSION} at most): a newer mailhelper has used it; upgrade mailhelper")
    return range(version + 1, SCHEMA_VERSION + 1)


def migrate(db: Database, version: int, upto: int = SCHEMA_VERSION) -> None:
    """Run the steps after ``version`` up to ``upto`` and record ``upto``, in the caller's
    transaction (the store's: all of it commits, or none)."""
    steps = [n for n in pending(version, "the state file") if n <= upto]
    for number in steps:
        MIGRATIONS[number - 1](db)
    if steps:
        db.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT (key) DO UPDATE SET value=excluded.value",
            (str(upto),),
        )
