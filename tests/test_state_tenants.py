"""Several assistants in one PostgreSQL database, each in a schema of its own (named after its
address), on a real cluster (tests/rig/postgres.py):

- at the store: each assistant sees its own threads, actions, messages and meta only; the
  lock of a daemon is the assistant's (a second process for the same assistant is refused,
  another assistant is not), and both the schema and the lock come back after the server
  restarts;
- a database of the one-assistant-per-database layout (its state in ``public``) is taken by
  the first assistant opened on it, in one transaction, logged once; the others start empty;
  an older process still using it is waited for;
- two addresses that give one schema name are refused, never mixed;
- ``state copy`` copies one assistant's state out of a shared database, says which to name
  when there are several, and refuses while a daemon holds that assistant's lease;
- end to end, through Dovecot and the SMTP sink: two assistants, two mailboxes, one database
  (``poll --once --config-dir``): each answers its own mail, a reply to one's mail in the
  other's mailbox is not the first one's thread, and ``status --config-dir`` shows both.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from mailhelper.cli.main import main
from mailhelper.model.errors import StateError, StateLockedError
from mailhelper.model.settings import assistant_schema
from mailhelper.model.values import Action, ActionKind, Address, Kind, Thread, ThreadState
from mailhelper.state.lease import Holder, Lease, mailbox_key
from mailhelper.state.migrations import SCHEMA_VERSION, migrate
from mailhelper.state.sqldriver import PostgresConnection
from mailhelper.state.store import _DAEMON_LOCK, Store, state_tables
from tests.rig.assistant import RigAssistant
from tests.rig.dovecot import DovecotServer
from tests.rig.mailboxes import make_message
from tests.rig.postgres import PostgresServer
from tests.rig.smtpsink import SmtpSink
from tests.test_lifecycle import at

T0 = datetime(2026, 12, 7, 9, tzinfo=UTC)
SAM = Address("sam@example.com", "Sam")
ANN = "helper@example.org"
BEN = "assistant@example.net"
_USERS = itertools.count(1)


def _thread(store: Store, subject: str, message_id: str) -> Thread:
    thread = Thread(store.next_thread_id(), Kind.ASK, ThreadState.OPEN, subject, SAM,
                    (Address("jane@example.org", "Jane"),), T0, message_id, T0)
    with store.transaction():
        store.save_thread(thread)
        store.add_thread_messages(thread.id, [message_id])
        store.add_action(Action(f"t{thread.id}/follow_up/1", ActionKind.FOLLOW_UP,
                                T0 + timedelta(days=2), thread.id), T0)
        store.mark_processed(message_id, f"hash-{subject}", "INBOX", 1, T0, "asked")
        store.set_meta("digest_anchor", subject)
    return thread


def _schemas(url: str) -> dict[str, list[str]]:
    """Each schema of the database but the system's, with its tables."""
    with psycopg.connect(url) as db:
        rows = db.execute(
            "SELECT n.nspname, c.relname FROM pg_namespace n LEFT JOIN pg_class c "
            "ON c.relnamespace = n.oid AND c.relkind = 'r' WHERE n.nspname NOT LIKE 'pg\\_%' "
            "AND n.nspname <> 'information_schema' ORDER BY 1, 2").fetchall()
    found: dict[str, list[str]] = {}
    for schema, table in rows:
        found.setdefault(schema, [])
        if table is not None:
            found[schema].append(table)
    return found


def test_two_assistants_in_one_database_see_only_their_own_state(
    postgres: PostgresServer,
) -> None:
    url = postgres.new_database()
    ann = Store.open(url, "example.org", assistant=ANN)
    ben = Store.open(url, "example.net", assistant=BEN)
    try:
        mine = _thread(ann, "Intro to Acme?", "<ask-1@example.com>")
        theirs = _thread(ben, "Lunch?", "<ask-2@example.com>")
        assert mine.id == theirs.id == 1  # each schema its own ids

        assert [t.subject for t in ann.threads()] == ["Intro to Acme?"]
        assert [t.subject for t in ben.threads()] == ["Lunch?"]
        assert ann.thread_for(("<ask-2@example.com>",)) is None
        assert ben.thread_for(("<ask-1@example.com>",)) is None
        assert not ann.is_processed("<ask-2@example.com>", "hash-Lunch?")
        assert [a.key for a in ann.due(T0 + timedelta(days=3))] == ["t1/follow_up/1"]
        assert len(ben.due(T0 + timedelta(days=3))) == 1
        assert (ann.get_meta("digest_anchor"), ben.get_meta("digest_anchor")) == (
            "Intro to Acme?", "Lunch?")
        assert ann.get_meta("message_id_secret") != ben.get_meta("message_id_secret")
        assert (ann.get_meta("assistant"), ben.get_meta("assistant")) == (ANN, BEN)
    finally:
        ann.close()
        ben.close()
    schemas = _schemas(url)
    assert schemas["public"] == []  # nothing of anyone's in the shared schema
    assert "threads" in schemas["mailhelper_helper_example_org"]
    assert schemas["mailhelper_assistant_example_net"] == schemas[
        "mailhelper_helper_example_org"]


def test_the_daemon_lock_is_the_assistants_and_survives_a_restart(
    postgres: PostgresServer,
) -> None:
    url = postgres.new_database()
    ann = Store.open(url, "example.org", exclusive=True, assistant=ANN)
    try:
        _thread(ann, "Intro to Acme?", "<ask-1@example.com>")
        ben = Store.open(url, "example.net", exclusive=True, assistant=BEN)  # not refused
        with pytest.raises(StateLockedError,
                           match="using the state mailhelper_helper_example_org"):
            Store.open(url, "example.org", exclusive=True, assistant=ANN)
        _thread(ben, "Lunch?", "<ask-2@example.com>")

        postgres.restart()
        for store in (ann, ben):
            with pytest.raises(StateError):  # the statement the restart cut
                store.threads()
        # Connected again: the same schema (not public, not the other's), the lock taken again.
        assert [t.subject for t in ann.threads()] == ["Intro to Acme?"]
        assert [t.subject for t in ben.threads()] == ["Lunch?"]
        with pytest.raises(StateLockedError):
            Store.open(url, "example.org", exclusive=True, assistant=ANN)
        ben.close()
        Store.open(url, "example.net", exclusive=True, assistant=BEN).close()
    finally:
        ann.close()


def _legacy_state(url: str, version: int = SCHEMA_VERSION) -> None:
    """A state as the one-assistant-per-database version left it: in ``public``."""
    if version == SCHEMA_VERSION:
        old = Store.open(url, "example.org")  # no assistant: the public layout
        _thread(old, "Intro to Acme?", "<ask-1@example.com>")
        old.close()
        return
    db = PostgresConnection.connect(url)
    db.begin()
    migrate(db, 0, upto=version)
    db.execute(
        "INSERT INTO threads (id, kind, state, subject, match_subject, owner_email, owner_name, "
        "counterparts, created, root_message_id, last_owner_activity) VALUES (1, 'ask', "
        "'open', 'Intro to Acme?', 'intro to acme?', 'sam@example.com', 'Sam', "
        "'[[\"jane@example.org\", \"Jane\"]]', '2026-12-07T09:00:00+00:00', "
        "'<ask-1@example.com>', '2026-12-07T09:00:00+00:00')")
    db.execute("INSERT INTO thread_messages (message_id, thread_id) "
               "VALUES ('<ask-1@example.com>', 1)")
    db.commit()
    db.close()


@pytest.mark.parametrize("version", [SCHEMA_VERSION, 1])
def test_a_state_in_public_moves_to_the_first_assistants_schema_once(
    postgres: PostgresServer, caplog: pytest.LogCaptureFixture, version: int,
) -> None:
    url = postgres.new_database()
    _legacy_state(url, version)
    before = _schemas(url)["public"]
    with caplog.at_level(logging.WARNING, logger="mailhelper.state.store"):
        ann = Store.open(url, "example.org", exclusive=True, assistant=ANN)
    try:
        [thread] = ann.threads()
        assert thread.subject == "Intro to Acme?"
        assert ann.thread_for(("<ask-1@example.com>",)) is not None
        assert ann.get_meta("schema_version") == str(SCHEMA_VERSION)  # migrated there
        with ann.transaction():  # the id sequences moved with their tables
            ann.save_thread(Thread(ann.next_thread_id(), Kind.ASK, ThreadState.OPEN, "New",
                                   SAM, (), T0, "<new@example.com>", T0))
        assert sorted(t.id for t in ann.threads()) == [1, 2]
    finally:
        ann.close()
    [moved] = [r for r in caplog.records if "schema public" in r.getMessage()]
    assert "mailhelper_helper_example_org" in moved.getMessage()
    schemas = _schemas(url)
    assert schemas["public"] == []
    # Every table moved; those a later step drops (sync, at schema 9) were upgraded away.
    assert set(before) & set(state_tables()) <= set(schemas["mailhelper_helper_example_org"])

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mailhelper.state.store"):
        Store.open(url, "example.org", assistant=ANN).close()  # once only
        ben = Store.open(url, "example.net", assistant=BEN)  # another: starts empty
    assert not caplog.records
    try:
        assert ben.threads() == []
    finally:
        ben.close()


def test_a_state_in_public_still_used_by_an_older_process_is_not_moved(
    postgres: PostgresServer,
) -> None:
    url = postgres.new_database()
    _legacy_state(url)
    older = psycopg.connect(url, autocommit=True)  # the older version's daemon
    older.execute("SELECT pg_advisory_lock(%s)", (_DAEMON_LOCK,))
    try:
        with pytest.raises(StateLockedError, match="an older mailhelper is using it"):
            Store.open(url, "example.org", assistant=ANN)
        assert "threads" in _schemas(url)["public"]  # left as it was
        assert "mailhelper_helper_example_org" not in _schemas(url)
    finally:
        older.close()
    ann = Store.open(url, "example.org", assistant=ANN)
    try:
        assert [t.subject for t in ann.threads()] == ["Intro to Acme?"]
    finally:
        ann.close()


def test_two_addresses_of_one_schema_name_are_refused_not_mixed(
    postgres: PostgresServer,
) -> None:
    url = postgres.new_database()
    assert assistant_schema("a.b@example.org") == assistant_schema("a_b@example.org")
    first = Store.open(url, "example.org", assistant="a.b@example.org")
    _thread(first, "Intro to Acme?", "<ask-1@example.com>")
    first.close()
    with pytest.raises(StateError, match=re.escape("is a.b@example.org's, not a_b@example.org's")):
        Store.open(url, "example.org", assistant="a_b@example.org")
    Store.open(url, "example.org", assistant="A.B@Example.ORG").close()  # the same, folded


def test_long_addresses_get_distinct_names_postgresql_keeps(postgres: PostgresServer) -> None:
    domain = "department-of-very-long-names.example.org"
    one, two = (f"assistant-for-the-team-{n}@{domain}" for n in (1, 2))
    assert assistant_schema(one) != assistant_schema(two)
    assert len(assistant_schema(one).encode()) == 63
    url = postgres.new_database()
    for address in (one, two):
        store = Store.open(url, "example.org", assistant=address)
        _thread(store, address, f"<{address}>")
        store.close()
    for address in (one, two):
        store = Store.open(url, "example.org", assistant=address)
        assert [t.subject for t in store.threads()] == [address]
        store.close()


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def test_state_copy_takes_one_assistants_state_out_of_a_shared_database(
    postgres: PostgresServer, tmp_path: Path,
) -> None:
    url = postgres.new_database()
    for address, subject in ((ANN, "Intro to Acme?"), (BEN, "Lunch?")):
        store = Store.open(url, "example.org", assistant=address)
        _thread(store, subject, f"<{subject}>")
        store.close()

    code, _, err = _cli("state", "copy", url, str(tmp_path / "x.db"))
    assert code != 0 and not (tmp_path / "x.db").exists()
    assert ("holds the states of several assistants (the schemas "
            "mailhelper_assistant_example_net, mailhelper_helper_example_org)") in err
    assert "--assistant ADDRESS" in err

    code, _, err = _cli("state", "copy", url, str(tmp_path / "ben.db"), "--assistant", BEN)
    assert code == 0, err
    copied = Store.open(tmp_path / "ben.db", "example.net")
    try:
        assert [t.subject for t in copied.threads()] == ["Lunch?"]
        assert copied.get_meta("assistant") == BEN
    finally:
        copied.close()

    # Into another database: the state records its assistant, so none need be named.
    other = postgres.new_database()
    code, _, err = _cli("state", "copy", url, other, "--assistant", ANN)
    assert code == 0, err
    code, _, err = _cli("state", "copy", str(tmp_path / "ben.db"), other)
    assert code == 0, err
    assert set(_schemas(other)) >= {"mailhelper_helper_example_org",
                                    "mailhelper_assistant_example_net"}
    code, _, err = _cli("state", "copy", str(tmp_path / "ben.db"), other, "--assistant", ANN)
    assert code != 0 and f"is the state of {BEN}, not of {ANN}" in err


def test_state_copy_never_writes_where_a_public_state_waits_for_its_assistant(
    postgres: PostgresServer, tmp_path: Path,
) -> None:
    source = tmp_path / "ann.db"
    Store.open(source, "example.org").close()
    url = postgres.new_database()
    _legacy_state(url)
    code, _, err = _cli("state", "copy", str(source), url, "--assistant", ANN)
    assert code != 0 and "one-assistant-per-database layout" in err
    assert "mailhelper_helper_example_org" not in _schemas(url)


@pytest.fixture
def shared(dovecot: DovecotServer, smtp_sink: SmtpSink, postgres: PostgresServer,
           tmp_path: Path) -> Callable[[str], RigAssistant]:
    """``shared(name)``: an assistant with a mailbox of its own, its state in the one
    database all of them share, its config in ``tmp_path/configs/NAME.yaml``."""
    configs = tmp_path / "configs"
    configs.mkdir()
    url = postgres.new_database()

    def make(name: str) -> RigAssistant:
        account = dovecot.account(dovecot.add_user(f"tenant-{name}{next(_USERS)}@example.com"))
        workdir = tmp_path / name
        workdir.mkdir()
        rig = RigAssistant(dovecot, account, smtp_sink, workdir)
        rig.configure({"imap": {"password_file": str(workdir / "imap-password")},
                       "state": url})
        (configs / f"{name}.yaml").write_text(rig.config_path.read_text())
        return rig
    return make


def test_two_assistants_two_mailboxes_one_database_end_to_end(
    shared: Callable[[str], RigAssistant], smtp_sink: SmtpSink, tmp_path: Path,
) -> None:
    a, b = shared("a"), shared("b")
    configs = str(tmp_path / "configs")

    def poll(now: str) -> list[tuple[str, str]]:
        before = len(smtp_sink.messages())
        code, _, err = _cli("poll", "--once", "--now", at(now), "--config-dir", configs)
        assert code == 0, err
        assert "2 of 2 assistant(s) polled" in err
        return sorted((m["From"].addresses[0].addr_spec, str(m["X-Mailhelper-Action"]))
                      for m in smtp_sink.messages()[before:])

    ask = a.ask(subject="Intro to Acme?")
    b.ask(subject="Lunch next week?", to="Bob <bob@example.org>",
          body="Bob, could you join us for lunch next week?")
    sent = poll("2026-12-07 09:10")
    assert [(who, kind.split()[0]) for who, kind in sent] == sorted(
        [(a.address, "receipt"), (b.address, "receipt")]), sent
    intro = next(m for m in smtp_sink.messages() if "Intro to Acme?" in str(m["Subject"]))
    assert intro["From"].addresses[0].addr_spec == a.address

    # Jane answers a's ask to all, b Cc'd by mistake: the answer is a's thread alone; b
    # knows neither its Message-IDs nor its subject, so it is nothing to b.
    reply = make_message("Jane Doe <jane@example.org>", "Sam <sam@example.com>",
                         "Re: Intro to Acme?", "Happy to help! I'll write to Priya.",
                         cc=[a.address, b.address], in_reply_to=ask, references=ask,
                         date="Tue, 08 Dec 2026 10:00:00 +0000")
    a.deliver(reply)
    b.deliver(reply)
    assert poll("2026-12-08 10:00") == []
    sent = poll("2026-12-08 12:00")
    assert [(who, kind.split()[0]) for who, kind in sent] == [(a.address, "thank_you_draft")]

    code, out, err = _cli("status", "--json", "--config-dir", configs)
    assert code == 0, err
    shown = json.loads(out)
    assert [(t["subject"], t["state"]) for t in shown["a.yaml"]["threads"]] == [
        ("Intro to Acme?", "answered")]
    assert [(t["subject"], t["state"]) for t in shown["b.yaml"]["threads"]] == [
        ("Lunch next week?", "open")]
    assert shown["a.yaml"]["state"]["schema"] == assistant_schema(a.address)
    assert shown["b.yaml"]["state"]["schema"] == assistant_schema(b.address)
    assert shown["a.yaml"]["state"]["database"] == shown["b.yaml"]["state"]["database"]

    code, out, _ = _cli("status", "--config-dir", configs)
    assert code == 0
    assert f"== a.yaml ({a.address}) ==" in out and f"== b.yaml ({b.address}) ==" in out
    assert f"(schema {assistant_schema(a.address)})" in out
    assert f"(schema {assistant_schema(b.address)})" in out
    assert set(_schemas(a.config["state"])) >= {assistant_schema(a.address),
                                                 assistant_schema(b.address)}


def test_two_files_of_one_assistant_on_one_database_the_later_is_refused(
    shared: Callable[[str], RigAssistant], tmp_path: Path,
) -> None:
    a, b = shared("a"), shared("b")
    configs = tmp_path / "configs"
    b.configure({"assistant": {"email": a.address}})
    (configs / "b.yaml").write_text(b.config_path.read_text())
    code, _, err = _cli("poll", "--once", "--now", at("2026-12-07 09:10"),
                        "--config-dir", str(configs))
    assert code == 0, err
    assert "b.yaml: state: " in err and "is a.yaml's state too" in err


def test_state_copy_refuses_an_assistant_a_daemon_is_serving(
    postgres: PostgresServer, tmp_path: Path,
) -> None:
    url = postgres.new_database()
    store = Store.open(url, "example.org", assistant=ANN)
    _thread(store, "Intro to Acme?", "<ask-1@example.com>")
    lease = Lease(store.db, mailbox_key(ANN), Holder("db-host-2", 777), 30)
    try:
        assert lease.take()
        code, _, err = _cli("state", "copy", url, str(tmp_path / "ann.db"))
        assert code != 0 and not (tmp_path / "ann.db").exists()
        assert f"a mailhelper is serving {ANN} on " in err and "db-host-2 (pid 777)" in err
        lease.retire()
        code, _, err = _cli("state", "copy", url, str(tmp_path / "ann.db"))
        assert code == 0, err
    finally:
        store.close()


def test_explain_reads_as_with_no_state_for_an_assistant_new_to_a_shared_database(
    rig_assistant: RigAssistant, postgres: PostgresServer,
) -> None:
    """A database other assistants use, where this one has no schema yet: ``explain`` reads
    the message as with no state file yet (nothing tracked), rather than fail on tables that
    are not there."""
    url = postgres.new_database()
    Store.open(url, "example.org", assistant=ANN).close()  # another assistant's state
    rig_assistant.configure({"state": url})
    message = rig_assistant.workdir / "ask.eml"
    message.write_bytes(make_message("Sam <sam@example.com>", "Jane <jane@example.org>",
                                     "Intro to Acme?", "Jane, could you introduce me?",
                                     cc=rig_assistant.address))
    code, out, err = rig_assistant.cli("explain", str(message))
    assert code == 0, out + err
    assert "ask" in out.lower()
    assert assistant_schema(rig_assistant.address) not in _schemas(url)  # nothing created
