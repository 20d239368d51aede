"""State files of every earlier schema open with today's code, upgraded in one transaction and
with nothing lost; a file of a newer schema is refused (tests/test_store.py). The tests taking
``state_location`` run the same steps on SQLite and on PostgreSQL. The file of
schema 3 in tests/data was written by the release of the day, through Dovecot and the SMTP
sink (scripts/make_state_fixture.py regenerates it)."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mailhelper.model.errors import StateError
from mailhelper.model.values import ActionKind, ActionStatus, Answer, Kind, ThreadState
from mailhelper.state.migrations import MIGRATIONS, SCHEMA_VERSION, migrate, version_of
from mailhelper.state.sqldriver import Connection, PostgresConnection, SQLiteConnection
from mailhelper.state.store import Store, folder_cursor
from tests.rig.assistant import RigAssistant
from tests.rig.mailboxes import uidvalidity
from tests.test_old_mail import ask, deliver_at, old_inbox

FIXTURE = Path(__file__).parent / "data" / "state-v3.sqlite"
DOMAIN = "example.com"


def tables(path: Path) -> dict[str, list[str]]:
    """Each table's column names, in order."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        names = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {n: [c[1] for c in db.execute(f"PRAGMA table_info({n})")] for n in names}


def rows(path: Path, columns: dict[str, list[str]]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the given tables, only the given columns, in rowid order."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {table: db.execute(f"SELECT {', '.join(names)} FROM {table} ORDER BY rowid")
                .fetchall() for table, names in columns.items()}


def shape(path: Path) -> dict[str, Any]:
    """What the schema is: each table's columns (name, type, not null, default, key) and
    each index's definition."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        found: dict[str, Any] = {}
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'"):
            found[name] = [tuple(c[1:]) for c in db.execute(f"PRAGMA table_info({name})")]
        for name, sql in db.execute(
                "SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL"):
            found[f"index {name}"] = " ".join(sql.split())
        return found


def old_file(path: Path, version: int) -> sqlite3.Connection:
    """A state file of schema ``version``, made by the steps up to it (as that release made
    it); the caller fills it as that release would and closes it."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    migrate(db, 0, upto=version)
    db.execute("COMMIT")
    return db


def test_a_state_file_of_todays_release_upgrades_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    shutil.copy(FIXTURE, path)
    columns = tables(path)
    before = rows(path, columns)
    meta = dict(before["meta"])
    assert meta["schema_version"] == "3"

    Store.open(path, DOMAIN).close()

    # Schema 9 keeps the sync row and the first-start record as the folder's cursor (checked
    # below); every other row is as it was.
    moved = {"sync"}
    after = rows(path, {t: c for t, c in columns.items() if t not in moved})
    assert dict(after.pop("meta")) == {
        **{k: v for k, v in meta.items() if not k.startswith("first_start/")},
        "schema_version": str(SCHEMA_VERSION)}
    for table, old in before.items():
        if table not in moved and table != "meta":
            assert after[table] == old, table
    [(validity, last)] = [(r[0], r[1]) for r in rows(FIXTURE, {"sync": ["uidvalidity",
                                                                         "last_uid"]})["sync"]]
    start = json.loads(meta["first_start/INBOX"])
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT folder, value FROM cursors").fetchall() == [
            ("INBOX", f"{validity}:{last} first {start['at']} {start['uidvalidity']}:"
                      f"{start['boundary']}")]
    assert before["threads"] and before["thread_answers"] and before["processed"]

    # Read back through the store: the story the file holds goes on from where it was.
    store = Store.open(path, DOMAIN)
    try:
        threads = {t.subject: t for t in store.threads()}
        assert {(s, t.kind, t.state) for s, t in threads.items()} == {
            ("Intro to Acme?", Kind.ASK, ThreadState.OPEN),
            ("Review my draft?", Kind.ASK, ThreadState.ANSWERED),
            ("Help with the move", Kind.OFFER, ThreadState.OPEN),
        }
        answered = threads["Review my draft?"]
        assert answered.answers == (Answer("bob@example.net",
                                           datetime(2026, 12, 8, 10, 15, tzinfo=UTC), True,
                                           "Sure, send it over, I'll read it tonight."),)
        pending = {(a.kind, a.thread_id, a.due) for a in store.pending()}
        assert (ActionKind.THANK_YOU_DRAFT, answered.id,
                datetime(2026, 12, 8, 12, 15, tzinfo=UTC)) in pending
        assert ActionKind.FOLLOW_UP in {kind for kind, _, _ in pending}
        recorded = dict((r[0], r[1]) for r in rows(path, {"actions": ["key", "message_id"]})
                        ["actions"])
        for action in [*store.pending(), *store.actions_for(answered.id)]:
            assert store.message_id_for(action) == recorded[action.key]
        assert store.get_meta("message_id_secret") == meta["message_id_secret"]
        assert sum(a.status is ActionStatus.SENT for t in threads.values()
                   for a in store.actions_for(t.id)) == 4
    finally:
        store.close()


def test_a_new_file_has_the_shape_todays_release_made(tmp_path: Path) -> None:
    """A new file runs every step from the first; it ends as today's release made a new
    file (tests/data), and as an upgraded file of schema 1 ends."""
    Store.open(tmp_path / "new.db", DOMAIN).close()
    shutil.copy(FIXTURE, tmp_path / "today.db")
    Store.open(tmp_path / "today.db", DOMAIN).close()
    old_file(tmp_path / "v1.db", 1).close()
    Store.open(tmp_path / "v1.db", DOMAIN).close()
    new = shape(tmp_path / "new.db")
    assert shape(tmp_path / "today.db") == new
    assert shape(tmp_path / "v1.db") == new


def old_state(location: Path | str, version: int) -> Connection:
    """A state of schema ``version`` on either backend (a path or a ``postgresql://`` URL),
    made by the steps up to it; the caller fills it as that release would and closes it."""
    if isinstance(location, str):
        db: Connection = PostgresConnection.connect(location)
    else:
        location.parent.mkdir(parents=True, exist_ok=True)
        db = SQLiteConnection(sqlite3.connect(location, isolation_level=None))
    db.begin()
    migrate(db, 0, upto=version)
    db.commit()
    return db


def test_a_state_file_of_schema_1_keeps_its_threads_and_actions(
        state_location: Callable[[], Path | str]) -> None:
    """Schema 1 had no per-person answers and no trust: an answered ask's answer goes to each
    counterpart, untrusted (its thank-you is a draft); nothing else changes."""
    path = state_location()
    db = old_state(path, 1)
    people = [["jane@example.org", "Jane Doe"], ["bob@example.net", "Bob Lee"]]
    db.execute(
        "INSERT INTO threads (id, kind, state, subject, match_subject, owner_email, owner_name, "
        "counterparts, created, root_message_id, last_owner_activity, answered_at, "
        "reply_excerpt) VALUES (7, 'ask', 'answered', 'Intro?', 'intro?', 'sam@example.com', "
        "'Sam', ?, '2026-11-30T09:00:00+00:00', 'a@x', '2026-11-30T09:00:00+00:00', "
        "'2026-11-30T14:00:00+00:00', 'Happy to')", (json.dumps(people),))
    db.execute(
        "INSERT INTO actions (key, kind, thread_id, due, recipients, data, status, message_id, "
        "created) VALUES ('t7/thank_you_draft/1', 'thank_you_draft', 7, "
        "'2026-11-30T16:00:00+00:00', '[]', '{}', 'pending', 'mh.old@example.com', "
        "'2026-11-30T14:00:00+00:00')")
    db.execute("INSERT INTO processed VALUES ('a@x', 'hash', 'INBOX', 1, "
               "'2026-11-30T09:00:00+00:00', 'thread 7')")
    db.close()

    store = Store.open(path, DOMAIN)
    try:
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
        thread = store.thread(7)
        assert thread is not None and thread.state is ThreadState.ANSWERED
        at = datetime(2026, 11, 30, 14, tzinfo=UTC)
        assert thread.answers == (Answer("jane@example.org", at, False, "Happy to"),
                                  Answer("bob@example.net", at, False, "Happy to"))
        [action] = store.pending()
        assert (action.key, store.message_id_for(action)) == ("t7/thank_you_draft/1",
                                                               "mh.old@example.com")
        assert store.is_processed("a@x", "other")
        assert store.get_meta("message_id_secret") is not None  # made now
    finally:
        store.close()


def test_a_state_file_of_schema_2_gives_each_counterpart_the_trusted_answer(
        state_location: Callable[[], Path | str]) -> None:
    path = state_location()
    db = old_state(path, 2)
    db.execute(
        "INSERT INTO threads (id, kind, state, subject, match_subject, owner_email, owner_name, "
        "counterparts, created, root_message_id, last_owner_activity, answered_at, "
        "reply_excerpt, answer_trusted) VALUES (3, 'ask', 'answered', 'Intro?', 'intro?', "
        "'sam@example.com', 'Sam', '[[\"jane@example.org\", \"Jane\"]]', "
        "'2026-11-30T09:00:00+00:00', 'a@x', '2026-11-30T09:00:00+00:00', "
        "'2026-11-30T14:00:00+00:00', 'Sure', 1)")
    db.close()
    store = Store.open(path, DOMAIN)
    try:
        thread = store.thread(3)
        assert thread is not None
        assert thread.answers == (Answer("jane@example.org",
                                         datetime(2026, 11, 30, 14, tzinfo=UTC), True, "Sure"),)
    finally:
        store.close()


def test_an_upgrade_that_fails_part_way_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    """All the steps commit together or not at all: here step 3 fails after step 2 changed
    the threads table, and the file is still of schema 1, without step 2's columns."""
    path = tmp_path / "state.db"
    db = old_file(path, 1)
    db.execute(
        "INSERT INTO threads (id, kind, state, subject, match_subject, owner_email, owner_name, "
        "counterparts, created, root_message_id, last_owner_activity, answered_at) VALUES "
        "(1, 'ask', 'answered', 'S', 's', 'sam@example.com', 'Sam', '[[\"j@x.org\", \"J\"]]', "
        "'2026-11-30T09:00:00+00:00', 'a@x', '2026-11-30T09:00:00+00:00', "
        "'2026-11-30T10:00:00+00:00')")
    # A table in the way of step 3, whose copy of the answers then fails inside SQLite
    db.execute("CREATE TABLE thread_answers (thread_id, email, at, trusted, excerpt, position)")
    db.execute("CREATE TRIGGER fail BEFORE INSERT ON thread_answers "
               "BEGIN SELECT RAISE(ABORT, 'injected'); END")
    db.close()
    before = tables(path)

    with pytest.raises(StateError, match="injected"):
        Store.open(path, DOMAIN)

    assert tables(path) == before
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert version_of(db) == 1


def test_an_upgrade_that_fails_part_way_leaves_the_state_as_it_was_on_either_backend(
        state_location: Callable[[], Path | str]) -> None:
    """As above, with a check constraint both databases enforce in the way of step 3."""
    path = state_location()
    db = old_state(path, 1)
    db.execute(
        "INSERT INTO threads (id, kind, state, subject, match_subject, owner_email, owner_name, "
        "counterparts, created, root_message_id, last_owner_activity, answered_at) VALUES "
        "(1, 'ask', 'answered', 'S', 's', 'sam@example.com', 'Sam', '[[\"j@x.org\", \"J\"]]', "
        "'2026-11-30T09:00:00+00:00', 'a@x', '2026-11-30T09:00:00+00:00', "
        "'2026-11-30T10:00:00+00:00')")
    db.execute("CREATE TABLE thread_answers (thread_id INTEGER, email TEXT CHECK (email = 'x'), "
               "at TEXT, trusted INTEGER, excerpt TEXT, position INTEGER)")
    db.close()

    with pytest.raises(StateError):
        Store.open(path, DOMAIN)

    reader = Store.open_readonly(path, DOMAIN)
    try:
        assert version_of(reader.db) == 1
        with pytest.raises(StateError):  # step 2's column was not added either
            reader.db.execute("SELECT answer_trusted FROM threads").fetchall()
    finally:
        reader.close()


def test_a_schema_version_that_is_not_a_number_is_a_state_error(
        state_location: Callable[[], Path | str]) -> None:
    path = state_location()
    db = old_state(path, 1)
    db.execute("UPDATE meta SET value='x' WHERE key='schema_version'")
    db.close()
    with pytest.raises(StateError, match="schema_version is not a number"):
        Store.open(path, DOMAIN)


def test_the_steps_are_numbered_from_one_without_gaps() -> None:
    """MIGRATIONS[N - 1] makes schema N: each step's name says which (``_vN_...``)."""
    assert [int(step.__name__.split("_")[1][1:]) for step in MIGRATIONS] == list(
        range(1, SCHEMA_VERSION + 1))


def test_a_state_file_of_schema_4_gains_the_pauses_and_keeps_its_threads(
        tmp_path: Path) -> None:
    """Schema 5 adds each owner's pause: a file of 4 opens with no pause and its threads as
    they were, and a pause can then be recorded and read back."""
    shutil.copy(FIXTURE, tmp_path / "v4.db")
    Store.open(tmp_path / "v4.db", DOMAIN).close()  # 3 -> current
    with contextlib.closing(sqlite3.connect(tmp_path / "v4.db")) as db:
        db.execute("CREATE TABLE sync (folder TEXT PRIMARY KEY, uidvalidity INTEGER NOT NULL, "
                   "last_uid INTEGER NOT NULL, highestmodseq INTEGER)")
        db.execute("DROP TABLE cursors")
        db.execute("DROP TABLE pauses")
        db.execute("ALTER TABLE threads DROP COLUMN repeat")
        db.execute("ALTER TABLE threads DROP COLUMN written_at")
        db.execute("ALTER TABLE threads DROP COLUMN followed_up_at")
        db.execute("ALTER TABLE threads DROP COLUMN expected")
        db.execute("UPDATE meta SET value='4' WHERE key='schema_version'")
        db.commit()
        assert version_of(db) == 4
    before = rows(tmp_path / "v4.db", {"threads": ["id", "kind", "state", "subject"]})
    store = Store.open(tmp_path / "v4.db", DOMAIN)
    try:
        assert store.pauses() == []
        assert rows(tmp_path / "v4.db", {"threads": ["id", "kind", "state", "subject"]}) \
            == before
    finally:
        store.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "v4.db")) as db:
        assert version_of(db) == SCHEMA_VERSION


def test_a_state_file_of_schema_5_gains_repeats_and_its_threads_do_not_repeat(
        tmp_path: Path) -> None:
    """Schema 6 adds a thread's repeat: every thread of a file of 5 reads as not repeating,
    with nothing else changed."""
    db = old_file(tmp_path / "v5.db", 5)
    db.execute(
        "INSERT INTO threads (id, kind, state, subject, match_subject, owner_email, owner_name,"
        " counterparts, created, root_message_id, last_owner_activity) VALUES (1, 'ask', 'open',"
        " 'Intro', 'intro', 'sam@example.com', 'Sam', '[[\"Jane\", \"jane@example.org\"]]',"
        " '2026-12-01T09:00:00+00:00', '<a@example.com>', '2026-12-01T09:00:00+00:00')")
    db.commit()
    db.close()
    store = Store.open(tmp_path / "v5.db", DOMAIN)
    try:
        [thread] = store.threads()
        assert (thread.subject, thread.repeat) == ("Intro", None)
    finally:
        store.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "v5.db")) as db2:
        assert version_of(db2) == SCHEMA_VERSION


def test_a_state_of_schema_8_keeps_where_each_folder_was_read_as_its_cursor(
        state_location: Callable[[], Path | str]) -> None:
    """Schema 9 keeps each folder's reading position and first start as one cursor string,
    on either backend: a folder with both, a watched folder with a position alone, a folder
    whose first start was recorded before anything was read."""
    path = state_location()
    db = old_state(path, 8)
    at = "2026-12-07T09:00:00+00:00"
    for folder, validity, last in (("INBOX", 1796279723, 4_294_967_290),
                                   ("watch/sam@example.com/Sent", 9, 3)):
        db.execute("INSERT INTO sync (folder, uidvalidity, last_uid) VALUES (?, ?, ?)",
                   (folder, validity, last))
    for folder, validity, boundary in (("INBOX", 1796279723, 4_294_967_291), ("Other", 5, 1)):
        db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (
            f"first_start/{folder}",
            json.dumps({"at": at, "uidvalidity": validity, "boundary": boundary})))
    db.close()

    if isinstance(path, Path):  # check reads a file not yet upgraded as its upgrade will
        assert folder_cursor(path, "INBOX") == (f"1796279723:4294967290 first {at} "
                                                "1796279723:4294967291")
        assert folder_cursor(path, "Other") == f"- first {at} 5:1"
        assert folder_cursor(path, "Never") is None
    store = Store.open(path, DOMAIN)
    try:
        assert store.cursor("INBOX") == f"1796279723:4294967290 first {at} 1796279723:4294967291"
        assert store.cursor("watch/sam@example.com/Sent") == "9:3"
        assert store.cursor("Other") == f"- first {at} 5:1"
        assert store.cursor("Never") is None
        assert store.get_meta("first_start/INBOX") is None, "kept once, in the cursor"
        assert not store.db.has_table("sync")
        assert version_of(store.db) == SCHEMA_VERSION
    finally:
        store.close()
    if isinstance(path, Path):
        assert folder_cursor(path, "Other") == f"- first {at} 5:1"


def test_a_state_of_schema_9_gains_the_indexes_by_thread_and_keeps_its_threads(
        state_location: Callable[[], Path | str]) -> None:
    """Schema 10 indexes a thread's messages and participants by thread, on either backend;
    on SQLite the look-ups by thread use them (before, each write of a thread scanned both
    tables for its foreign keys)."""
    path = state_location()
    db = old_state(path, 9)
    db.execute("INSERT INTO threads (id, kind, state, subject, match_subject, owner_email, "
               "owner_name, counterparts, created, root_message_id, last_owner_activity) "
               "VALUES (7, 'ask', 'open', 'Intro', 'intro', 'sam@example.com', 'Sam', "
               "'[[\"jane@example.org\", \"Jane\"]]', '2026-12-07T09:00:00+00:00', "
               "'ask-7@example.com', '2026-12-07T09:00:00+00:00')")
    db.execute("INSERT INTO thread_messages (message_id, thread_id) VALUES "
               "('ask-7@example.com', 7), ('reply-7@example.org', 7)")
    db.execute("INSERT INTO thread_participants (thread_id, email) VALUES "
               "(7, 'jane@example.org')")
    db.close()

    store = Store.open(path, DOMAIN)
    try:
        assert version_of(store.db) == SCHEMA_VERSION
        assert store.thread_message_ids(7) == ("ask-7@example.com", "reply-7@example.org")
        assert store.is_participant("jane@example.org")
        thread = store.thread(7)
        assert thread is not None and thread.subject == "Intro"
        with store.transaction():  # written again: its children looked up by the indexes
            store.save_thread(thread)
        if isinstance(path, Path):
            for table, index in (("thread_messages", "thread_messages_by_thread"),
                                 ("thread_participants", "thread_participants_by_thread")):
                plan = " ".join(str(row[3]) for row in store.db.execute(
                    f"EXPLAIN QUERY PLAN SELECT * FROM {table} WHERE thread_id=?", (7,)))
                assert index in plan, plan
    finally:
        store.close()


def test_a_state_of_schema_10_finds_the_last_digest_among_its_deliveries_by_kind(
        state_location: Callable[[], Path | str]) -> None:
    """Schema 11 indexes the digests and deliveries by action, on either backend; the last
    digest sent to an owner is found from the digests (on SQLite the plan starts there), not
    by reading every mail the owner ever got."""
    path = state_location()
    db = old_state(path, 10)
    for n, (kind, at) in enumerate([("receipt", "2026-12-01T09:00:00+00:00"),
                                    ("digest", "2026-12-02T08:00:00+00:00"),
                                    ("follow_up", "2026-12-03T09:00:00+00:00")], start=1):
        db.execute("INSERT INTO actions (id, key, kind, due, recipients, data, status, "
                   "message_id, created) VALUES (?, ?, ?, ?, '[]', '{}', 'sent', ?, ?)",
                   (n, f"key-{n}", kind, at, f"m{n}@example.com", at))
        db.execute("INSERT INTO deliveries (action_id, recipient, at) VALUES (?, ?, ?)",
                   (n, "sam@example.com", at))
    db.close()

    store = Store.open(path, DOMAIN)
    try:
        assert version_of(store.db) == SCHEMA_VERSION
        assert store.last_digest("sam@example.com") == datetime(
            2026, 12, 2, 8, 0, tzinfo=UTC)
        assert store.last_digest("jane@example.org") is None
        if isinstance(path, Path):
            plan = [str(row[3]) for row in store.db.execute(
                "EXPLAIN QUERY PLAN SELECT max(d.at) FROM actions a CROSS JOIN deliveries d "
                "WHERE d.action_id = a.id AND a.kind = 'digest' AND d.recipient = ?",
                ("sam@example.com",))]
            assert "actions_digests" in plan[0] and "deliveries_by_action" in plan[1], plan
    finally:
        store.close()


def test_a_state_of_schema_8_reads_on_through_dovecot_exactly_where_it_was(
        rig_assistant: RigAssistant) -> None:
    """A state of schema 8 that read INBOX up to a UID (a first poll stopped part way), with
    its first start, goes on from there after the upgrade: the message it read is not read
    again, none after it is skipped, and old mail that was there at the first start is still
    left alone."""
    rig = rig_assistant
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    count, _span = old_inbox(rig, now)  # UIDs 1 .. count, months old
    deliver_at(rig, ask(rig, 50, now - timedelta(hours=1)), now)  # read before the upgrade
    long_ago = now - timedelta(days=200)
    deliver_at(rig, ask(rig, 51, long_ago), long_ago)  # old: there at the first start
    deliver_at(rig, ask(rig, 52, now - timedelta(minutes=30)), now)  # there, recent, unread
    validity = uidvalidity(rig.dovecot, rig.account)
    db = old_state(rig.state, 8)
    db.execute("INSERT INTO sync (folder, uidvalidity, last_uid) VALUES ('INBOX', ?, ?)",
               (validity, count + 1))
    db.execute("INSERT INTO meta (key, value) VALUES ('first_start/INBOX', ?)", (json.dumps(
        {"at": now.isoformat(), "uidvalidity": validity, "boundary": count + 4}),))
    db.close()
    rig.deliver(ask(rig, 53, now + timedelta(minutes=5)))  # new since

    rig.poll(now + timedelta(minutes=10))

    assert sorted(t["subject"] for t in rig.status()) == ["Intro number 52?",
                                                          "Intro number 53?"]
    assert "already here" not in rig.last_output, "the first start was not made again"
    store = Store.open(rig.state, rig.address.rpartition("@")[2])
    try:
        assert store.cursor("INBOX") == (f"{validity}:{count + 4} first {now.isoformat()} "
                                         f"{validity}:{count + 4}")
    finally:
        store.close()
