"""The state's failures reach the rest of the program as one error, StateError, whatever the
database says: a cycle stops on it with nothing committed, and the message in hand stays in
INBOX, unflagged, to be read again (SPEC safety rule 4: an inbox message counts as handled only
after its effects are committed). It is never taken for the message's fault."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailhelper.mail.mailbox import HANDLED_FLAG
from mailhelper.model.errors import StateError
from mailhelper.state.store import Store
from tests.rig.assistant import RigAssistant
from tests.rig.mailboxes import folders

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def test_a_driver_error_comes_out_as_state_error_with_the_driver_error_as_cause(
        tmp_path: Path) -> None:
    store = Store.open(tmp_path / "state.db", "example.com")
    try:
        with pytest.raises(StateError, match="state file cannot be used") as raised:
            store.db.execute("SELECT * FROM no_such_table")
        assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
    finally:
        store.close()


def test_a_write_to_a_read_only_state_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    Store.open(path, "example.com").close()
    store = Store.open_readonly(path, "example.com")
    try:
        with pytest.raises(StateError, match="readonly"), store.transaction():
            store.set_meta("probe", "1")
    finally:
        store.close()


def test_an_error_sqlite_rolled_back_itself_is_the_one_reported(tmp_path: Path) -> None:
    """After some errors SQLite ends the transaction itself; the store's ROLLBACK then must not
    replace the error with "no transaction is active"."""
    store = Store.open(tmp_path / "state.db", "example.com")
    # RAISE(ROLLBACK) ends the whole transaction inside SQLite, as SQLITE_FULL may
    store.db.execute("CREATE TEMP TABLE boom (x)")
    store.db.execute("CREATE TEMP TRIGGER boom BEFORE INSERT ON boom "
                     "BEGIN SELECT RAISE(ROLLBACK, 'injected'); END")
    try:
        with pytest.raises(StateError, match="injected") as raised, store.transaction():
            store.set_meta("probe", "1")
            store.db.execute("INSERT INTO boom VALUES (1)")
        assert "no transaction" not in str(raised.value)
        assert store.get_meta("probe") is None
    finally:
        store.close()


def test_a_state_error_mid_cycle_leaves_the_message_unflagged_in_inbox(
        rig_assistant: RigAssistant) -> None:
    rig_assistant.poll(NOW)  # the state exists, with the first start recorded
    with sqlite3.connect(rig_assistant.state) as db:
        # The real SQLite failing the message's own commit, after it was read and classified
        db.execute("CREATE TRIGGER fail BEFORE INSERT ON threads "
                   "BEGIN SELECT RAISE(ABORT, 'injected: disk I/O error'); END")
    db.close()
    rig_assistant.ask(date="Mon, 07 Dec 2026 09:30:00 +0000")

    code, out, err = rig_assistant.cli("poll", "--once", "--now", "2026-12-07T10:00:00+00:00")

    assert code == 1, out + err
    assert "the state file cannot be used (injected: disk I/O error)" in err
    assert "could not be handled" not in out + err
    assert "Traceback" not in err
    [flags] = rig_assistant.flags()
    assert HANDLED_FLAG not in flags and b"\\Seen" not in flags
    assert "mailhelper/errors" not in folders(rig_assistant.dovecot, rig_assistant.account)
    assert rig_assistant.sent() == []  # no receipt, and no "could not understand" notice

    with sqlite3.connect(rig_assistant.state) as db:
        db.execute("DROP TRIGGER fail")
    db.close()
    rig_assistant.poll("2026-12-07T10:05:00+00:00")
    [receipt] = rig_assistant.sent()
    assert "Intro to Acme?" in str(receipt["Subject"])
    [flags] = rig_assistant.flags()
    assert HANDLED_FLAG in flags
    assert len(rig_assistant.status()) == 1
