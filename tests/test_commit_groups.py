"""Grouped commits while reading a backlog (SQLite): one commit holds many messages, each
message stays atomic on its own (a savepoint), and a fault of the state rolls the group back.

Run on a real SQLite store with the in-memory source (:mod:`mailhelper.mail.memory`); the
statements are counted through the store's driver. A kill in mid-group, through Dovecot, is
in tests/test_faults_imap.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mailhelper.decide.events import Event
from mailhelper.engine import daemon, tracker
from mailhelper.model.errors import ConnectError, StateError
from mailhelper.model.settings import Settings
from mailhelper.state.sqldriver import Cursor, Parameters, SQLiteConnection
from mailhelper.state.store import Store
from tests.test_engine_memory import HELPER, JANE, NOW, SAM, Engine, mail

LATER = NOW + timedelta(minutes=1)


class CountingConnection(SQLiteConnection):
    """The store's SQLite connection, counting the statements it runs by their first word."""

    def __init__(self, connection: SQLiteConnection) -> None:
        super().__init__(connection.raw)
        self.statements: Counter[str] = Counter()

    def execute(self, sql: str, parameters: Parameters = ()) -> Cursor:
        self.statements[sql.split()[0].upper()] += 1
        return super().execute(sql, parameters)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = Engine(tmp_path)
    made.cycle()  # the first start: nothing is old after it
    yield made
    made.store.close()


def _ask(n: int) -> bytes:
    return mail(SAM, JANE, f"Ask {n}", f"Hi Jane, could you send me report {n}?",
                f"ask-{n}@example.com", cc=HELPER)


def _counting(engine: Engine) -> CountingConnection:
    assert isinstance(engine.store.db, SQLiteConnection)
    counting = CountingConnection(engine.store.db)
    engine.store.db = counting
    return counting


def _subjects(store: Store) -> list[str]:
    return sorted(t.subject for t in store.threads())


@pytest.mark.parametrize(("group_seconds", "settle_seconds", "commits"), [
    # Settled every batch: three groups (100, 100, 50 messages), each settled: a sync (one
    # commit, see Store.make_durable) and the cursor (another).
    (3600.0, 0.0, 3 + 3 * 2),
    # A group open as long as its bound is committed after the message in hand: with no
    # time at all, each message commits alone, as without groups.
    (0.0, 0.0, 250 + 3 * 2),
    # Batches read faster than SETTLE_SECONDS are not settled on their own: one group, and
    # one settling at the end.
    (3600.0, 3600.0, 1 + 1 * 2),
])
def test_a_backlog_commits_once_a_group_not_once_a_message(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, group_seconds: float,
    settle_seconds: float, commits: int,
) -> None:
    monkeypatch.setattr(daemon, "GROUP_SECONDS", group_seconds)
    monkeypatch.setattr(daemon, "SETTLE_SECONDS", settle_seconds)
    engine.source.batch_size = 100
    for n in range(250):
        engine.source.deliver(_ask(n), arrival=NOW)
    counting = _counting(engine)
    report = engine.assistant.read_inbox(engine.source, LATER)
    assert (report.read, report.errors) == (250, 0)
    assert counting.statements["COMMIT"] == commits
    assert counting.statements["BEGIN"] == commits
    assert engine.source.handled == set(range(1, 251))
    assert len(engine.store.threads()) == 250


def _failing_on(message_id: str, error: Exception) -> Any:
    """tracker.apply_event, failing with ``error`` for ``message_id`` after its writes."""
    real = tracker.apply_event

    def apply_event(store: Store, settings: Settings, event: Event, now: datetime) -> str:
        line = real(store, settings, event, now)
        if event.message_id == message_id:
            assert store.thread_for((message_id,)) is not None, "its writes were made"
            raise error
        return line

    return apply_event


def _four_asks_in_one_group(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Asks 1 to 4 in the inbox, and a group that stays open for all of them."""
    monkeypatch.setattr(daemon, "GROUP_SECONDS", 3600.0)
    for n in range(1, 5):
        engine.source.deliver(_ask(n), arrival=NOW)


def test_a_message_failing_in_mid_group_rolls_back_only_its_own_writes(
    engine: Engine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _four_asks_in_one_group(engine, monkeypatch)
    monkeypatch.setattr(tracker, "apply_event",
                        _failing_on("ask-3@example.com", RuntimeError("a fault of the code")))
    report = engine.assistant.read_inbox(engine.source, LATER)
    assert (report.read, report.errors) == (3, 1)
    assert _subjects(engine.store) == ["Ask 1", "Ask 2", "Ask 4"], "the group before it kept"
    assert engine.store.thread_for(("ask-3@example.com",)) is None, "its own writes undone"
    outcome = engine.store.processed_outcome("ask-3@example.com")
    assert outcome == "error: could not be handled: a fault of the code"
    assert engine.source.failed == {3} and engine.source.handled == {1, 2, 4}


def test_a_fault_of_the_state_in_mid_group_rolls_the_group_back(
    engine: Engine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _four_asks_in_one_group(engine, monkeypatch)
    monkeypatch.setattr(tracker, "apply_event",
                        _failing_on("ask-3@example.com", StateError("the disk is full")))
    with pytest.raises(StateError, match="the disk is full"):
        engine.assistant.read_inbox(engine.source, LATER)
    assert engine.store.processed_count() == 0 and engine.store.threads() == []
    assert engine.source.handled == set(), "nothing flagged: nothing was committed"

    monkeypatch.undo()  # room again: the next reading does it all, once
    report = engine.assistant.read_inbox(engine.source, LATER)
    assert (report.read, report.duplicates, report.errors) == (4, 0, 0)
    assert _subjects(engine.store) == ["Ask 1", "Ask 2", "Ask 3", "Ask 4"]


def test_a_connection_lost_in_mid_group_keeps_the_messages_applied_before(
    engine: Engine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _four_asks_in_one_group(engine, monkeypatch)
    real_read = engine.source.read

    def read(*args: Any, **kwargs: Any) -> Any:
        reading = real_read(*args, **kwargs)
        given = type(reading).__iter__

        def cut(self: Any) -> Iterator[Any]:
            for n, message in enumerate(given(self)):
                if n == 2:
                    raise OSError("connection reset by peer")
                yield message

        monkeypatch.setattr(type(reading), "__iter__", cut)
        return reading

    monkeypatch.setattr(engine.source, "read", read)
    with pytest.raises(ConnectError, match="connection reset by peer"):
        engine.assistant.read_inbox(engine.source, LATER)
    assert _subjects(engine.store) == ["Ask 1", "Ask 2"], "committed, as their own commits were"
    assert engine.source.handled == set(), "nothing flagged before the next reading"

    monkeypatch.undo()
    report = engine.assistant.read_inbox(engine.source, LATER)
    assert (report.read, report.duplicates) == (2, 2)
    assert engine.source.handled == {1, 2, 3, 4}


def test_nothing_is_made_durable_with_a_group_open(engine: Engine) -> None:
    with engine.store.grouped() as group:
        with engine.store.transaction():
            engine.store.set_meta("probe", "1")
        assert group.open
        with pytest.raises(RuntimeError, match="not committed"):
            engine.store.make_durable()
        group.commit()
        with pytest.raises(RuntimeError, match="paused"):
            engine.store.make_durable()  # its transaction would open the group again
        with group.paused():
            engine.store.make_durable()
    assert engine.store.get_meta("probe") == "1"
