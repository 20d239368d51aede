"""The contract every store backend keeps, by role (:mod:`mailhelper.state.roles`).

One class of tests, run once per backend in :data:`BACKENDS`: a new backend (an in-memory
one) adds a factory there and must pass all of it unchanged. The tests use only the role
interfaces, never a backend's own SQL. PostgreSQL runs it twice: an assistant alone in a
fresh database, and an assistant beside another one with a full state in the same database
(each in its own schema), which must change nothing of the other's and see nothing of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import pytest

from mailhelper.model.values import (
    Action,
    ActionKind,
    ActionStatus,
    Address,
    Kind,
    Thread,
    ThreadState,
)
from mailhelper.state.roles import History, Journal, Schedule, Threads, Transactional
from mailhelper.state.store import Store

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
SAM = Address("sam@example.com", "Sam")
JANE = Address("jane@example.org", "Jane Doe")


class Backend(Threads, Journal, Schedule, History, Transactional, Protocol):
    """What a backend under test plays: every role, and ``close``."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class Place:
    """Where a factory may make its store: a fresh folder, and fresh PostgreSQL databases
    (the test skips when there is no PostgreSQL)."""

    folder: Path
    database: Callable[[], str]


@contextmanager
def _sqlite(place: Place) -> Iterator[Backend]:
    store = Store.open(place.folder / "state" / "state.db", "example.com")
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _postgresql(place: Place) -> Iterator[Backend]:
    """An assistant's schema in a fresh database."""
    store = Store.open(place.database(), "example.com", assistant="helper@example.com")
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _postgresql_shared(place: Place) -> Iterator[Backend]:
    """A second assistant's schema in a database where another assistant keeps a full state
    (a thread, due and sent actions, messages seen, the reading position, meta), open beside
    it: every test must pass as on an empty database, and the neighbour's state must be as
    it was after the test."""
    url = place.database()
    neighbour = Store.open(url, "example.org", assistant="other@example.org")
    store = Store.open(url, "example.com", assistant="helper@example.com")
    try:
        thread = _thread(neighbour, root_message_id="ask@example.com")
        with neighbour.transaction():
            neighbour.add_action(_action(thread, "t/1/follow_up/1", T0), T0)
            neighbour.add_action(_action(thread, "r", T0 - timedelta(days=1)), T0)
            neighbour.mark_processed("m1@x", "hash1", "INBOX", 7, T0, "neighbour's")
            neighbour.set_cursor("INBOX", "42:99")
            neighbour.set_meta("k", "neighbour's")
        [sent] = [a for a in neighbour.due(T0) if a.key == "r"]
        with neighbour.transaction():
            neighbour.mark_sent(neighbour.mark_sending(sent, b"x"), T0)
        before = (neighbour.threads(), neighbour.pending(), neighbour.processed_count(),
                  neighbour.cursor("INBOX"), neighbour.get_meta("k"),
                  neighbour.deliveries_since(T0 - timedelta(days=2)))
        yield store
        assert (neighbour.threads(), neighbour.pending(), neighbour.processed_count(),
                neighbour.cursor("INBOX"), neighbour.get_meta("k"),
                neighbour.deliveries_since(T0 - timedelta(days=2))) == before
    finally:
        store.close()
        neighbour.close()


#: One factory per backend: given a place, an empty store with every role (closed after).
BACKENDS: dict[str, Callable[[Place], AbstractContextManager[Backend]]] = {
    "sqlite": _sqlite,
    "postgresql": _postgresql,
    "postgresql-shared": _postgresql_shared,
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    def database() -> str:
        url: str = request.getfixturevalue("postgres").new_database()
        return url

    with BACKENDS[request.param](Place(tmp_path, database)) as store:
        yield store


def _thread(store: Backend, **changes: object) -> Thread:
    values: dict[str, object] = dict(
        id=store.next_thread_id(), kind=Kind.ASK, state=ThreadState.OPEN,
        subject="Intro to Acme", owner=SAM, counterparts=(JANE,), created=T0,
        root_message_id="ask@example.com", last_owner_activity=T0,
    )
    values.update(changes)
    made = Thread(**values)  # type: ignore[arg-type]
    with store.transaction():
        store.save_thread(made)
        store.add_thread_messages(made.id, [made.root_message_id])
    return made


def _action(thread: Thread, key: str, due: datetime,
            kind: ActionKind = ActionKind.FOLLOW_UP) -> Action:
    return Action(key=key, kind=kind, due=due, thread_id=thread.id, recipients=(SAM,))


class TestStoreContract:
    # -- threads --------------------------------------------------------------------------
    def test_a_thread_round_trips_and_is_found_by_its_messages(self, backend: Backend) -> None:
        made = _thread(backend)
        assert backend.thread(made.id) == made
        assert backend.threads() == [made]
        assert backend.thread_for(("other@x", "ask@example.com")) == made
        assert backend.thread_message_ids(made.id) == ("ask@example.com",)
        assert backend.next_thread_id() > made.id

    def test_a_saved_thread_replaces_the_old_one(self, backend: Backend) -> None:
        made = _thread(backend)
        closed = Thread(**{**made.__dict__, "state": ThreadState.DONE, "closed_at": T0})
        with backend.transaction():
            backend.save_thread(closed)
        assert backend.thread(made.id) == closed
        assert len(backend.threads()) == 1

    # -- journal --------------------------------------------------------------------------
    def test_a_message_seen_is_known_by_id_or_by_content(self, backend: Backend) -> None:
        assert not backend.is_processed("m1@x", "hash1")
        with backend.transaction():
            backend.mark_processed("m1@x", "hash1", "INBOX", 7, T0, "new ask")
        assert backend.is_processed("m1@x", "other")
        assert backend.is_processed("other@x", "hash1")
        assert backend.processed_outcome("m1@x", "hash1") == "new ask"
        assert backend.processed_count() == 1

    def test_the_reading_cursor_is_kept_as_it_came(self, backend: Backend) -> None:
        assert backend.cursor("INBOX") is None
        cursor = "42:17 first 2026-12-07T09:00:00+00:00 42:18"
        with backend.transaction():
            backend.set_cursor("INBOX", "- first 2026-12-07T09:00:00+00:00 42:18")
            backend.set_cursor("INBOX", cursor)
            backend.set_cursor("watch/other", "7:1")
            backend.set_meta("k", "v")
        assert backend.cursor("INBOX") == cursor and backend.cursor("watch/other") == "7:1"
        assert backend.get_meta("k") == "v"
        with backend.transaction():
            backend.delete_meta("k")
        assert backend.get_meta("k") is None

    # -- schedule -------------------------------------------------------------------------
    def test_an_action_goes_from_pending_to_sent_and_filed(self, backend: Backend) -> None:
        thread = _thread(backend)
        with backend.transaction():
            assert backend.add_action(_action(thread, "t/1/follow_up/1", T0), T0)
            assert not backend.add_action(_action(thread, "t/1/follow_up/1", T0), T0)
        [due] = backend.due(T0)
        assert due.key == "t/1/follow_up/1" and due.id is not None
        assert backend.due(T0 - timedelta(seconds=1)) == []
        assert backend.next_due() == T0
        message_id = backend.message_id_for(due)
        assert message_id == backend.message_id_for(due), "deterministic"
        with backend.transaction():
            sending = backend.mark_sending(due, b"the exact bytes")
        assert sending is not None and sending.status is ActionStatus.SENDING
        assert backend.outgoing(due.id) == b"the exact bytes"
        assert [a.key for a in backend.in_flight(T0)] == [due.key]
        with backend.transaction():
            backend.mark_sent(sending, T0)
        assert backend.in_flight(T0) == []
        assert [a.key for a in backend.unappended()] == [due.key]
        with backend.transaction():
            backend.mark_appended(sending)
        assert backend.unappended() == []
        sent = backend.action(due.id)
        assert sent is not None and sent.status is ActionStatus.SENT
        assert backend.action_by_key(due.key) == sent
        assert backend.action_by_message_id(message_id) == sent

    def test_reconciliation_adds_cancels_and_moves(self, backend: Backend) -> None:
        thread = _thread(backend)
        with backend.transaction():
            backend.add_action(_action(thread, "a", T0), T0)
            backend.add_action(_action(thread, "b", T0), T0)
        a, b = sorted(backend.actions_for(thread.id), key=lambda x: x.key)
        later = T0 + timedelta(days=2)
        with backend.transaction():
            backend.apply_reconciliation(
                [_action(thread, "c", T0)], [a], [Action(**{**b.__dict__, "due": later})], T0)
        now = {x.key: x for x in backend.actions_for(thread.id)}
        assert now["a"].status is ActionStatus.CANCELLED
        assert now["b"].due == later and now["b"].status is ActionStatus.PENDING
        assert now["c"].status is ActionStatus.PENDING
        assert [x.key for x in backend.pending()] == sorted(["b", "c"], key=lambda k: now[k].due)

    # -- history --------------------------------------------------------------------------
    def test_deliveries_are_counted_for_the_caps(self, backend: Backend) -> None:
        thread = _thread(backend)
        with backend.transaction():
            backend.add_action(
                Action(key="r", kind=ActionKind.FOLLOW_UP, due=T0, thread_id=thread.id,
                       recipients=(JANE,)), T0)
        [due] = backend.due(T0)
        with backend.transaction():
            sending = backend.mark_sending(due, b"x")
            assert sending is not None
            backend.mark_sent(sending, T0)
        assert backend.deliveries_since(T0 - timedelta(hours=1), JANE.email) == 1
        assert backend.delivery_times_since(T0 - timedelta(hours=1), JANE.email) == [T0]
        assert backend.deliveries_since(T0 + timedelta(seconds=1)) == 0
        assert backend.ledger(SAM.email) == backend.ledger(SAM.email)

    # -- transactions and snapshots ---------------------------------------------------------
    def test_a_failed_transaction_leaves_nothing(self, backend: Backend) -> None:
        with pytest.raises(RuntimeError), backend.transaction():
            backend.set_meta("half", "done")
            raise RuntimeError("stop")
        assert backend.get_meta("half") is None

    def test_a_snapshot_is_private(self, backend: Backend) -> None:
        made = _thread(backend)
        copy = backend.snapshot()
        try:
            with copy.transaction():
                copy.save_thread(Thread(**{**made.__dict__, "subject": "changed"}))
            changed = copy.thread(made.id)
            assert changed is not None and changed.subject == "changed"
        finally:
            copy.close()
        assert backend.thread(made.id) == made
