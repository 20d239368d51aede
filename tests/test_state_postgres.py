"""The assistant with its state in PostgreSQL, end to end: Dovecot in, the SMTP sink out, a real
PostgreSQL cluster (tests/rig/postgres.py) holding the state.

- the same walk (an ask, its receipt, Jane's reply, the thank-you draft) sends the same mail
  with ``state: postgresql://...`` as with an SQLite file;
- the server going away stops the cycle with the state sentence, nothing committed and nothing
  sent, and the work resumes when it is back; a store open through a restart reconnects;
- a ``poll --once`` while a daemon on another machine holds the mailbox's lease is refused,
  naming it (status shows it too);
- ``check`` reports the state step: connected, the server's version, the schema.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailhelper.model.errors import StateError, StateLockedError
from mailhelper.model.values import Action, ActionKind
from mailhelper.state.lease import Holder, Lease
from mailhelper.state.store import Store
from tests.rig.assistant import RigAssistant
from tests.rig.dovecot import DovecotServer
from tests.rig.postgres import PostgresServer
from tests.rig.smtpsink import SmtpSink
from tests.test_lifecycle import JANE, Walk, at, kinds, text_of

HANDLED_FLAG = b"$MailhelperHandled"


def _walk_an_ask(rig: RigAssistant) -> list[EmailMessage]:
    walk = Walk(rig)
    ask_id = walk.ask(at("2026-12-07 09:00"))
    assert kinds(walk.poll(at("2026-12-07 09:00"))) == ["receipt"]
    walk.reply(ask_id, at("2026-12-08 10:00"), from_=JANE)
    walk.quiet(at("2026-12-08 10:00"))
    assert kinds(walk.poll(at("2026-12-08 12:00"))) == ["thank_you_draft"]
    assert [t["state"] for t in rig.status()] == ["answered"]
    walk.check_sent_folder()
    return rig.sent()


def _as_read(message: EmailMessage, assistant: str) -> tuple[str, str, str, str]:
    """What a person reads of a mail, with the assistant's own address (one per account)
    made the same."""
    user = assistant.partition("@")[0]

    def same(text: str) -> str:
        return text.replace(user, "helper")
    return (str(message["X-Mailhelper-Action"]), same(str(message["To"])),
            same(str(message["Subject"])), same(text_of(message)))


def test_the_same_walk_sends_the_same_mail_with_postgresql_as_with_sqlite(
    dovecot: DovecotServer, smtp_sink_factory: Callable[..., SmtpSink], postgres: PostgresServer,
    tmp_path: Path,
) -> None:
    sent = {}
    for backend in ("sqlite", "postgresql"):
        # Names of one length: the address in the text wraps the same way.
        account = dovecot.account(dovecot.add_user(f"walk-{backend[:2]}@example.com"))
        workdir = tmp_path / backend
        workdir.mkdir()
        rig = RigAssistant(dovecot, account, smtp_sink_factory(), workdir)
        if backend == "postgresql":
            rig.configure({"state": postgres.new_database()})
        sent[backend] = [_as_read(m, rig.address) for m in _walk_an_ask(rig)]
    for on_postgres, on_sqlite in zip(sent["postgresql"], sent["sqlite"], strict=True):
        assert on_postgres == on_sqlite, "\n".join(difflib.unified_diff(
            "\n".join(on_sqlite).splitlines(), "\n".join(on_postgres).splitlines(), lineterm=""))
    assert len(sent["sqlite"]) == 2
    assert not (tmp_path / "postgresql" / "state.db").exists()  # nothing went to a file


def test_the_server_going_away_stops_the_cycle_and_the_work_resumes_after(
    rig_assistant: RigAssistant, postgres: PostgresServer,
) -> None:
    rig_assistant.configure({"state": postgres.new_database()})
    rig_assistant.poll(at("2026-12-07 08:00"))  # the state exists, the first start recorded
    rig_assistant.ask(date="Mon, 07 Dec 2026 09:30:00 +0000")
    postgres.stop()
    try:
        code, out, err = rig_assistant.cli("poll", "--once", "--now", at("2026-12-07 10:00"))
    finally:
        postgres.start()
    assert code == 1, out + err
    assert re.search(r"the state database postgresql://mailhelper@127\.0\.0\.1:\d+/test_\d+ "
                     r"cannot be reached \(.*\); is the PostgreSQL server up", err), err
    assert "Traceback" not in err
    assert rig_assistant.sent() == []
    [flags] = rig_assistant.flags()
    assert HANDLED_FLAG not in flags  # read again next time

    rig_assistant.poll(at("2026-12-07 10:05"))
    [receipt] = rig_assistant.sent()
    assert "Intro to Acme?" in str(receipt["Subject"])
    [flags] = rig_assistant.flags()
    assert HANDLED_FLAG in flags
    assert len(rig_assistant.status()) == 1


def test_a_store_open_through_a_restart_fails_that_statement_then_reconnects(
    postgres: PostgresServer,
) -> None:
    """The statement (and the transaction) the restart cuts fails as a StateError, the
    cycle's stop; the next one connects again, with the lock and settings it had."""
    url = postgres.new_database()
    now = datetime(2026, 12, 7, 9, tzinfo=UTC)
    store = Store.open(url, "example.com", exclusive=True)
    try:
        with store.transaction():
            store.add_action(Action("a", ActionKind.FOLLOW_UP, now, None), now)
        postgres.restart()
        with pytest.raises(StateError, match="state database cannot be used"), \
                store.transaction():
            store.add_action(Action("b", ActionKind.FOLLOW_UP, now, None), now)
        with store.transaction():
            store.add_action(Action("c", ActionKind.FOLLOW_UP, now, None), now)
        assert [a.key for a in store.due(now + timedelta(hours=1))] == ["a", "c"]
        with pytest.raises(StateLockedError):  # the lock was taken again on reconnecting
            Store.open(url, "example.com", exclusive=True)
    finally:
        store.close()


def test_a_second_mailhelper_on_the_same_database_is_refused(
    rig_assistant: RigAssistant, postgres: PostgresServer,
) -> None:
    """The mailbox's lease is held by a daemon on another machine: ``poll --once`` refuses,
    naming it; ``status`` still reads, and shows the holder; once the daemon let the lease go,
    the poll runs."""
    url = postgres.new_database()
    rig_assistant.configure({"state": url})
    # A daemon of the same assistant, on another machine.
    holder = Store.open(url, "example.com", assistant=rig_assistant.address)
    lease = Lease(holder.db, rig_assistant.address, Holder("db-host-2", 777), 30)
    try:
        assert lease.take()
        code, out, err = rig_assistant.cli("poll", "--once", "--now", at("2026-12-07 10:00"))
        assert code == 4, out + err
        assert (f"another mailhelper is reading {rig_assistant.address} (lease: held by "
                "db-host-2 (pid 777) until ") in err
        code, out, err = rig_assistant.cli("status", "--json")  # reading is not refused
        assert code == 0, err
        shown = json.loads(out)["lease"]
        assert (shown["host"], shown["pid"], shown["live"]) == ("db-host-2", 777, True)
        code, out, err = rig_assistant.cli("status")
        assert "lease: held by db-host-2 (pid 777) until " in out, out
        lease.retire()
    finally:
        holder.close()
    rig_assistant.poll(at("2026-12-07 10:00"))


def test_check_reports_the_postgresql_state(
    rig_assistant: RigAssistant, postgres: PostgresServer,
) -> None:
    url = postgres.new_database()
    rig_assistant.configure({"state": url})
    code, out, err = rig_assistant.cli("check")
    assert code == 0, out + err
    assert re.search(r"state postgresql://\S+/test_\d+ \(schema mailhelper_helper_\w+\): "
                     r"connected \(PostgreSQL \d+[.\d]*\); no state for this assistant yet, "
                     r"its tables are made by the first run", out), out
    rig_assistant.poll(at("2026-12-07 10:00"))
    code, out, err = rig_assistant.cli("check")
    assert re.search(r"connected \(PostgreSQL [\d.]+\), schema \d+\n", out), out
    postgres.stop()
    try:
        code, out, err = rig_assistant.cli("check")
    finally:
        postgres.start()
    assert code == 3, out + err
    assert "cannot be reached" in out


def test_run_meets_a_server_restart_stops_that_cycle_and_goes_on(
    rig_assistant: RigAssistant, postgres: PostgresServer,
) -> None:
    """The daemon's connection dies with the restart while it waits in IDLE; the next cycle
    stops at its first statement with the state sentence, waits as for a mail server, and
    goes on: each ask gets its one receipt and the daemon never exits."""
    from tests.test_daemon import Daemon, ask, wait_for_mail

    rig_assistant.configure({"state": postgres.new_database()})
    run = Daemon(rig_assistant)
    try:
        run.wait_connected()
        ask(rig_assistant, "Intro to Acme?")
        wait_for_mail(rig_assistant, 1)
        # The cycle's end, its receipt recorded and filed: a restart before would cut the
        # accept-to-record window of SPEC rule 3 (one duplicate allowed), not this test's case.
        run.wait_for("; sent 1, held 0")
        postgres.restart()
        ask(rig_assistant, "Intro to Globex?")
        [sentence] = run.wait_for("the state database cannot be used")
        assert "trying again in 2 s" in sentence
        receipts = wait_for_mail(rig_assistant, 2)
        assert sorted(str(m["Subject"]).split(": ")[-1] for m in receipts) == [
            "“Intro to Acme?”", "“Intro to Globex?”"]
        assert run.process.poll() is None
        assert run.stop()[0] == 0
        assert len(rig_assistant.sent()) == 2  # nothing twice
    finally:
        run.close()


def test_a_url_without_the_driver_installed_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed: import fails
    with pytest.raises(StateError) as refused:
        Store.open("postgresql://helper@db.example.org/mh", "example.com")
    assert str(refused.value) == (
        "`state` names a PostgreSQL database, but the PostgreSQL driver is not installed: "
        "pip install 'mailhelper[postgres]'")


def test_a_dry_run_reads_the_database_and_writes_nothing_to_it(
    rig_assistant: RigAssistant, postgres: PostgresServer,
) -> None:
    """``poll --dry-run`` works on a copy (an in-memory SQLite one: the store's SQL runs on
    both): it shows the receipt it would send, and the database is as it was."""
    url = postgres.new_database()
    rig_assistant.configure({"state": url})
    rig_assistant.poll(at("2026-12-07 08:00"))
    rig_assistant.ask(date="Mon, 07 Dec 2026 09:30:00 +0000")
    code, out, err = rig_assistant.cli("poll", "--once", "--dry-run", "--now",
                                       at("2026-12-07 10:00"))
    assert code == 0, out + err
    assert "would send receipt to Sam Rivera <sam@example.com>" in out
    assert rig_assistant.sent() == [] and rig_assistant.status() == []
    rig_assistant.poll(at("2026-12-07 10:00"))
    assert kinds(rig_assistant.sent()) == ["receipt"]


def test_two_assistants_on_one_machine_each_with_its_database_run_side_by_side(
    rig_assistant: RigAssistant, dovecot: DovecotServer,
    smtp_sink_factory: Callable[..., SmtpSink], postgres: PostgresServer, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No lock file beside the default state path, which both configs share unused: each
    database is locked on its own."""
    from tests.test_daemon import Daemon, ask, wait_for_mail

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))  # the daemon's too
    rig_assistant.configure({"state": postgres.new_database()})
    workdir = tmp_path / "second"
    workdir.mkdir()
    account = dovecot.account(dovecot.add_user("second-pg@example.com"))
    second = RigAssistant(dovecot, account, smtp_sink_factory(), workdir)
    second.configure({"state": postgres.new_database()})
    run = Daemon(rig_assistant)
    try:
        run.wait_connected()
        ask(second, "Intro to Acme?")
        second.poll(at("2026-12-07 10:00"))
        assert kinds(second.sent()) == ["receipt"]
        ask(rig_assistant, "Intro to Globex?")
        wait_for_mail(rig_assistant, 1)
        assert run.stop()[0] == 0
    finally:
        run.close()


def test_text_compares_byte_by_byte_as_in_sqlite_whatever_the_databases_locale(
    postgres: PostgresServer,
) -> None:
    """A database made with a language's collation (most are: initdb takes the machine's
    locale) would put "a~" before "ab" and break prefix ranges and time comparisons made for
    SQLite's byte order; the schema's text columns compare in byte order ("C") instead."""
    import psycopg

    with psycopg.connect(postgres.url(), autocommit=True) as admin:
        admin.execute("CREATE DATABASE icu_test TEMPLATE template0 ENCODING 'UTF8' "
                      "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'")
        [[by_language]] = admin.execute(
            "SELECT array_agg(k ORDER BY k COLLATE \"en-US-x-icu\") "
            "FROM unnest(ARRAY['ab', 'a~']) k").fetchall()
    assert by_language == ["a~", "ab"]  # what the database's own order would say
    store = Store.open(postgres.url("icu_test"), "example.com")
    try:
        with store.transaction():
            store.set_meta("ab", "1")
            store.set_meta("a~", "2")
        rows = store.db.execute("SELECT key FROM meta WHERE key >= 'a' AND key < 'a~~' "
                                "ORDER BY key").fetchall()
        assert [r["key"] for r in rows] == ["ab", "a~"]
    finally:
        store.close()
