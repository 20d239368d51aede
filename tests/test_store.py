"""The store's contract: it answers its questions and keeps its promises across re-opening,
on both backends (each test taking ``store`` or ``state_location`` runs on SQLite and on
PostgreSQL; see tests/conftest.py)."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailhelper.model.errors import StateError
from mailhelper.model.kinds import ACTIONS, LedgerEffect
from mailhelper.model.message_id import make_message_id
from mailhelper.model.values import (
    Action,
    ActionKind,
    ActionStatus,
    Address,
    Answer,
    Kind,
    Thread,
    ThreadState,
)
from mailhelper.state.sqldriver import redact
from mailhelper.state.store import SCHEMA_VERSION, Store

NOW = datetime(2026, 12, 3, 9, tzinfo=UTC)

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
SAM = Address("sam@example.com", "Sam")
JANE = Address("jane@example.org", "Jane Doe")


Location = Callable[..., Path | str]


@pytest.fixture
def store(state_location: Location) -> Iterator[Store]:
    opened = Store.open(state_location(), "example.com")
    yield opened
    opened.close()


#: What each numbered step after 4 added, undone: ``as_schema`` turns a file of today into a
#: file of an older schema, as that release left it (steps 1-4 are undone by hand in the
#: tests that need it; tests/test_migrations.py builds older files step by step).
_UNDO = {
    5: ("DROP TABLE pauses",),
    6: ("ALTER TABLE threads DROP COLUMN repeat",),
    7: ("ALTER TABLE threads DROP COLUMN written_at",
        "ALTER TABLE threads DROP COLUMN followed_up_at"),
    8: ("ALTER TABLE threads DROP COLUMN expected",),
    9: ("CREATE TABLE sync (folder TEXT PRIMARY KEY, uidvalidity INTEGER NOT NULL, "
        "last_uid INTEGER NOT NULL, highestmodseq INTEGER)",
        "DROP TABLE cursors"),
    10: ("DROP INDEX thread_messages_by_thread", "DROP INDEX thread_participants_by_thread"),
    11: ("DROP INDEX actions_digests", "DROP INDEX deliveries_by_action"),
}


def as_schema(store: Store, version: int) -> None:
    """Undo the steps after ``version`` (at least 4) and stamp the file with it."""
    assert set(_UNDO) == set(range(5, SCHEMA_VERSION + 1)), "a new step: add its undo here"
    for step in sorted(_UNDO, reverse=True):
        if step > version:
            for sql in _UNDO[step]:
                store.db.execute(sql)
    store.set_meta("schema_version", str(version))


def thread(store: Store, **changes: object) -> Thread:
    values: dict[str, object] = dict(
        id=store.next_thread_id(), kind=Kind.ASK, state=ThreadState.OPEN, subject="Intro to Acme",
        owner=SAM, counterparts=(JANE,), created=T0, root_message_id="ask@example.com",
        last_owner_activity=T0,
    )
    values.update(changes)
    made = Thread(**values)  # type: ignore[arg-type]
    with store.transaction():
        store.save_thread(made)
        store.add_thread_messages(made.id, [made.root_message_id])
    return made


def test_a_thread_round_trips(store: Store) -> None:
    made = thread(store, answered_at=T0 + timedelta(hours=5), excerpt="Could you…",
                  answers=(Answer(JANE.email, T0 + timedelta(hours=5), True, "Sure"),))
    assert store.thread(made.id) == made
    assert store.threads() == [made]


def test_when_it_was_written_and_the_owners_follow_up_round_trip(store: Store) -> None:
    made = thread(store, written_at=T0 - timedelta(days=3),
                  followed_up_at=T0 + timedelta(days=2), last_owner_activity=T0 + timedelta(days=2))
    assert store.thread(made.id) == made


def test_thread_for_matches_any_known_message_id(store: Store) -> None:
    made = thread(store)
    assert store.thread_for(("nothing@x", "ask@example.com")) == made
    assert store.thread_for(("nothing@x",)) is None
    assert store.thread_for(()) is None


def test_subject_fallback_needs_the_participant_and_an_unfinished_thread(store: Store) -> None:
    made = thread(store)
    assert store.thread_by_subject("intro  to ACME", "jane@example.org") == made
    assert store.thread_by_subject("Intro to Acme", "stranger@example.net") is None
    with store.transaction():
        store.save_thread(Thread(**{**made.__dict__, "state": ThreadState.DONE}))
    assert store.thread_by_subject("Intro to Acme", "jane@example.org") is None


def test_an_action_key_is_planned_once(store: Store) -> None:
    made = thread(store)
    action = Action("t1/follow_up/x/1", ActionKind.FOLLOW_UP, T0, made.id, (SAM,))
    with store.transaction():
        assert store.add_action(action, T0)
        assert not store.add_action(action, T0)
    assert len(store.actions_for(made.id)) == 1


def test_due_respects_time_and_retry(store: Store) -> None:
    made = thread(store)
    with store.transaction():
        store.add_action(Action("a", ActionKind.FOLLOW_UP, T0, made.id, (SAM,)), T0)
        store.add_action(Action("b", ActionKind.FOLLOW_UP, T0 + timedelta(days=1), made.id,
                                (SAM,)), T0)
    assert [a.key for a in store.due(T0)] == ["a"]
    a = store.due(T0)[0]
    assert a.id is not None
    with store.transaction():
        store.set_status(a.id, ActionStatus.PENDING, next_attempt=T0 + timedelta(minutes=2))
    assert store.due(T0 + timedelta(minutes=1)) == []
    assert [x.key for x in store.due(T0 + timedelta(minutes=2))] == ["a"]
    assert store.next_due() == T0 + timedelta(minutes=2)


def test_sending_then_sent_is_remembered_after_reopening(state_location: Location) -> None:
    path = state_location()
    store = Store.open(path, "example.com")
    made = thread(store)
    with store.transaction():
        store.add_action(Action("a", ActionKind.FOLLOW_UP, T0, made.id, (SAM,)), T0)
    action = store.due(T0)[0]
    store.mark_sending(action)
    store.close()
    again = Store.open(path, "example.com")
    [in_flight] = again.in_flight()
    assert in_flight.key == "a" and in_flight.attempts == 1
    with again.transaction():
        again.mark_sent(in_flight, T0)
    assert again.in_flight() == [] and again.due(T0) == []
    assert again.deliveries_since(T0 - timedelta(days=1), "sam@example.com") == 1
    assert again.integrity_ok()


def test_sent_mail_maps_the_message_id_back_to_its_thread(store: Store) -> None:
    made = thread(store)
    action = Action("a", ActionKind.FOLLOW_UP, T0, made.id, (SAM,))
    with store.transaction():
        store.add_action(action, T0)
    stored = store.action_by_key("a")
    assert stored is not None
    message_id = store.message_id_for(stored)
    assert store.sent_mail((message_id,)) is None  # not sent yet
    with store.transaction():
        store.mark_sent(stored, T0)
    assert store.sent_mail(("x@y", message_id)) == (made.id, ActionKind.FOLLOW_UP)
    assert store.thread_for((message_id,)) == made


def test_processed_messages_are_recognised_by_id_or_content(store: Store) -> None:
    with store.transaction():
        store.mark_processed("m1@x", "hash1", "INBOX", 4, T0, "handled")
    assert store.is_processed("m1@x", "other")
    assert store.is_processed("other@x", "hash1")
    assert not store.is_processed("m2@x", "hash2")


def test_a_failed_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.mark_processed("m1@x", "hash1", "INBOX", 4, T0, "handled")
        raise RuntimeError("crash in the middle")
    assert not store.is_processed("m1@x", "hash1")


def test_the_ledger_counts_asks_answers_and_median(store: Store) -> None:
    thread(store, answered_at=T0 + timedelta(hours=2))
    thread(store, answered_at=T0 + timedelta(hours=4), root_message_id="b@x")
    thread(store, root_message_id="c@x")
    thread(store, kind=Kind.OFFER, root_message_id="d@x")
    overall = store.ledger().overall
    assert (overall.asks_made, overall.asks_answered, overall.offers_received) == (3, 2, 1)
    assert overall.median_hours_to_answer == 3.0
    [jane] = store.ledger().people
    assert jane.person == JANE and jane.asks_made == 3


def test_a_newer_schema_is_refused(state_location: Location) -> None:
    path = state_location()
    store = Store.open(path, "example.com")
    with store.transaction():
        store.set_meta("schema_version", "999")
    store.close()
    with pytest.raises(StateError, match="newer mailhelper") as refused:
        Store.open(path, "example.com")
    # the file, its version, this code's and what to do
    where = path if isinstance(path, Path) else redact(path)
    assert str(refused.value) == (
        f"{where} is of schema 999, newer than this mailhelper knows (schema "
        f"{SCHEMA_VERSION} at most): a newer mailhelper has used it; upgrade mailhelper")
    left = Store.open_readonly(path, "example.com")  # left as it was
    assert left.get_meta("schema_version") == "999"
    left.close()


def test_a_state_file_of_schema_1_gains_the_new_columns(state_location: Location) -> None:
    path = state_location()
    store = Store.open(path, "example.com")
    as_schema(store, 4)
    store.db.execute("ALTER TABLE threads DROP COLUMN answer_trusted")
    store.db.execute("ALTER TABLE threads DROP COLUMN away_capped")
    store.set_meta("schema_version", "1")
    store.close()
    again = Store.open(path, "example.com")
    again.db.execute("SELECT answer_trusted, away_capped, repeat, written_at, followed_up_at, "
                     "expected FROM threads").fetchall()
    assert again.get_meta("schema_version") == str(SCHEMA_VERSION)


def test_a_state_file_of_schema_2_gives_each_counterpart_the_threads_answer(
    state_location: Location,
) -> None:
    """Before schema 3 an answered ask counted as answered by all its counterparts: after the
    upgrade each has that answer (time, trust, excerpt), so nothing reopens or is lost."""
    path = state_location()
    store = Store.open(path, "example.com")
    bob = Address("bob@example.net", "Bob Lee")
    answered = thread(store, counterparts=(JANE, bob), state=ThreadState.ANSWERED,
                      answered_at=T0 + timedelta(hours=5), reply_excerpt="Sure",
                      answers=(Answer(JANE.email, T0 + timedelta(hours=5), True, "Sure"),
                               Answer(bob.email, T0 + timedelta(hours=5), True, "Sure")))
    still_open = thread(store, root_message_id="b@x")
    as_schema(store, 4)
    store.db.execute("DROP TABLE thread_answers")  # as schema 2 had it
    store.set_meta("schema_version", "2")
    store.close()
    again = Store.open(path, "example.com")
    assert again.get_meta("schema_version") == str(SCHEMA_VERSION)
    assert again.thread(answered.id) == answered
    assert again.thread(still_open.id) == still_open
    assert again.thread(still_open.id).answers == ()  # type: ignore[union-attr]


def test_message_ids_carry_the_installations_secret_and_survive_a_restart(
    state_location: Location,
) -> None:
    action = Action("t1/follow_up/20261203T090000Z/1", ActionKind.FOLLOW_UP, NOW, 1)
    first = Store.open(state_location("a"), "example.com")
    planned = first.message_id_for(action)
    first.close()
    again = Store.open(state_location("a"), "example.com")
    assert again.message_id_for(action) == planned  # stable across restarts
    other = Store.open(state_location("b"), "example.com")
    assert other.message_id_for(action) != planned  # another installation, another id
    assert f"<{planned}>" != make_message_id(action.key, "example.com", b"")
    secret = again.get_meta("message_id_secret")
    assert secret is not None and len(bytes.fromhex(secret)) == 32
    assert f"<{planned}>" == make_message_id(action.key, "example.com", bytes.fromhex(secret))


def test_a_state_from_before_the_secret_gets_one_and_keeps_its_recorded_ids(
    state_location: Location,
) -> None:
    path = state_location()
    store = Store.open(path, "example.com")
    action = Action("t1/nudge/20261203T090000Z/1", ActionKind.NUDGE, NOW, 1)
    store.add_action(action, NOW)
    # As an older version recorded it: the key's plain hash, and no secret in the state.
    store.db.execute("UPDATE actions SET message_id='mh.0123456789abcdef01234567@example.com'")
    store.db.execute("DELETE FROM meta WHERE key='message_id_secret'")
    store.close()
    again = Store.open(path, "example.com")
    assert again.get_meta("message_id_secret") is not None
    assert again.message_id_for(action) == "mh.0123456789abcdef01234567@example.com"


def test_a_repeat_round_trips_and_an_older_state_file_gains_its_column(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = Store.open(path, "example.com")
    made = thread(store, kind=Kind.NOTE, counterparts=(),
                  repeat="FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0")
    assert store.thread(made.id) == made
    as_schema(store, 5)
    store.close()
    # Read before any migration (explain opens the state read-only): an upgraded copy in
    # memory, the file itself untouched.
    reader = Store.open_readonly(path, "example.com")
    assert reader.thread(made.id) == dataclasses.replace(made, repeat=None)
    reader.close()
    with sqlite3.connect(path) as db:
        assert "repeat" not in {r[1] for r in db.execute("PRAGMA table_info(threads)")}
    again = Store.open(path, "example.com")
    assert {r["name"] for r in again.db.execute("PRAGMA table_info(threads)")} >= {"repeat"}
    assert again.thread(made.id) == dataclasses.replace(made, repeat=None)


# -- what a second database could get wrong ---------------------------------------------------
def test_a_threads_message_ids_come_back_in_the_order_they_were_seen(store: Store) -> None:
    made = thread(store)
    with store.transaction():
        store.add_thread_messages(made.id, ["z@x", "a@x", "m@x", "a@x"])
    assert store.thread_message_ids(made.id) == ("ask@example.com", "z@x", "a@x", "m@x")


def test_next_due_is_the_later_of_due_and_the_retry(store: Store) -> None:
    made = thread(store)
    with store.transaction():
        store.add_action(Action("a", ActionKind.FOLLOW_UP, T0, made.id, (SAM,)), T0)
        store.add_action(Action("b", ActionKind.FOLLOW_UP, T0 + timedelta(hours=3), made.id,
                                (SAM,)), T0)
    [a] = store.due(T0)
    assert a.id is not None
    with store.transaction():
        store.set_status(a.id, ActionStatus.PENDING, next_attempt=T0 + timedelta(hours=5))
    assert store.next_due() == T0 + timedelta(hours=3)


def test_the_bytes_being_sent_and_32_bit_uids_round_trip(store: Store) -> None:
    made = thread(store)
    with store.transaction():
        store.add_action(Action("a", ActionKind.FOLLOW_UP, T0, made.id, (SAM,)), T0)
        store.set_cursor("INBOX", "4294967295:4294967290")
        store.mark_processed("m1@x", "hash1", "INBOX", 4_294_967_290, T0, "handled 100% ?")
    raw = bytes(range(256)) * 4
    sending = store.mark_sending(store.due(T0)[0], raw)
    assert sending is not None and sending.id is not None
    assert store.outgoing(sending.id) == raw
    assert store.cursor("INBOX") == "4294967295:4294967290"
    assert store.processed_outcome("other", "hash1") == "handled 100% ?"


def test_a_failed_statement_rolls_its_transaction_back_and_the_store_goes_on(
    store: Store,
) -> None:
    with pytest.raises(StateError) as failed, store.transaction():
        store.mark_processed("m1@x", "hash1", "INBOX", 4, T0, "handled")
        store.db.execute("SELECT * FROM no_such_table")
    assert failed.value.__cause__ is not None  # the driver's own error
    assert not store.is_processed("m1@x", "hash1")
    with store.transaction():
        store.mark_processed("m1@x", "hash1", "INBOX", 4, T0, "handled")
    assert store.is_processed("m1@x", "hash1")


def test_a_snapshot_is_a_copy_whose_writes_stay_in_it(store: Store) -> None:
    made = thread(store)
    with store.transaction():
        store.add_action(Action("a", ActionKind.FOLLOW_UP, T0, made.id, (SAM,)), T0)
    copy = store.snapshot()
    assert copy.thread(made.id) == made and [a.key for a in copy.due(T0)] == ["a"]
    assert copy.get_meta("message_id_secret") == store.get_meta("message_id_secret")
    with copy.transaction():
        copy.mark_processed("m1@x", "hash1", "INBOX", 4, T0, "handled")
    copy.close()
    assert not store.is_processed("m1@x", "hash1")


def test_a_read_only_state_refuses_writes(state_location: Location) -> None:
    Store.open(state_location(), "example.com").close()
    reader = Store.open_readonly(state_location(), "example.com")
    assert reader.get_meta("schema_version") == str(SCHEMA_VERSION)
    with pytest.raises(StateError), reader.transaction():
        reader.set_meta("x", "y")
    reader.close()


def test_a_bool_is_stored_as_an_integer_as_sqlite_does(store: Store) -> None:
    made = thread(store)
    with store.transaction():
        store.add_action(Action("a", ActionKind.FOLLOW_UP, T0, made.id, (SAM,)), T0)
        store.mark_sent(store.due(T0)[0], T0)
    assert [a.key for a in store.unappended()] == ["a"]
    with store.transaction():
        store.db.execute("UPDATE actions SET appended=? WHERE key=?", (True, "a"))
    assert store.unappended() == []


def _sent(store: Store, made: Thread, kind: ActionKind, data: dict[str, str]) -> None:
    with store.transaction():
        store.add_action(Action(f"t{made.id}/{kind.value}", kind, T0, made.id, (JANE,),
                                data=data), T0)
    action = store.mark_sending(store.due(T0)[0])
    store.mark_sent(action, T0)


def test_the_ledger_counts_what_the_registry_says_each_kind_counts_as(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Which sent mail the ledger counts as thanks (sent or drafted) or a favour returned is
    the registry's (``ActionSpec.ledger``), not a list of kinds in the SQL: every kind with a
    ledger effect is counted for it, and a kind given one is counted without touching the
    store."""
    figure = {LedgerEffect.THANKS_SENT: "thanks_sent",
              LedgerEffect.THANKS_DRAFTED: "thanks_drafted",
              LedgerEffect.FAVOUR_RETURNED: "favours_returned"}
    assert set(figure) == set(LedgerEffect) - {LedgerEffect.NONE}, "a new effect: count it"
    counted = {kind: spec.ledger for kind, spec in ACTIONS.items()
               if spec.ledger is not LedgerEffect.NONE}
    assert counted, "the registry gives some kinds a ledger effect"
    for n, (kind, effect) in enumerate(sorted(counted.items())):
        made = thread(store, answered_at=T0 + timedelta(hours=1), root_message_id=f"{n}@x")
        _sent(store, made, kind, {"people": JANE.email, "about": ActionKind.RETURN_FAVOR.value})
        overall = store.ledger().overall
        assert getattr(overall, figure[effect]) >= 1, (kind, effect, overall)

    made = thread(store, answered_at=T0 + timedelta(hours=1), root_message_id="nudge@x")
    _sent(store, made, ActionKind.NUDGE, {"people": JANE.email})
    before = store.ledger().overall.thanks_sent
    monkeypatch.setitem(ACTIONS, ActionKind.NUDGE, dataclasses.replace(
        ACTIONS[ActionKind.NUDGE], ledger=LedgerEffect.THANKS_SENT))
    assert store.ledger().overall.thanks_sent == before + 1
