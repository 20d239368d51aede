"""The engine without servers: reading a mail source by its cursor, the exactly-once protocol
and the bookkeeping after a send, run on a real SQLite store with the in-memory source,
Transport and Sent folder (:mod:`mailhelper.mail.memory`).

These are fast (no Dovecot, no SMTP sink) and pin the engine's side of SPEC.md safety rule 3;
the same promises are held against real servers by tests/test_outbox.py and test_crash.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as DEFAULT_POLICY
from pathlib import Path

import pytest

from mailhelper.compose.render import Renderer
from mailhelper.decide import owed
from mailhelper.engine import sending
from mailhelper.engine.daemon import Assistant, CycleReport
from mailhelper.engine.outbox import Outbox
from mailhelper.mail.memory import MemorySentFolder, MemorySource, MemoryTransport
from mailhelper.mail.transport import Refused, Unknown
from mailhelper.model.settings import Settings
from mailhelper.model.values import (
    Action,
    ActionKind,
    ActionStatus,
    Address,
    Kind,
    Thread,
    ThreadState,
)
from mailhelper.state.store import Store

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
SAM = Address("sam@example.com", "Sam Owner")
JANE = Address("jane@example.org", "Jane Doe")
HELPER = Address("helper@example.com", "Sam's assistant")


class Engine:
    """An assistant with a store on disk and in-memory edges; ``outbox()`` is one cycle's."""

    def __init__(self, tmp_path: Path) -> None:
        self.settings = Settings(owners=(SAM,), assistant=HELPER, state=tmp_path / "state.db")
        self.store = Store.open(self.settings.state, "example.com")
        self.renderer = Renderer(self.settings)
        self.transport = MemoryTransport()
        self.sent = MemorySentFolder()
        self.source = MemorySource(sent=self.sent)

        def no_server() -> object:
            raise AssertionError("the engine opens no connection here")

        self.assistant = Assistant(self.settings, self.store, self.renderer, no_server,
                                   no_server)

    def outbox(self) -> Outbox:
        return Outbox(self.store, self.settings, self.renderer, self.transport, self.sent)

    def cycle(self, now: datetime = NOW) -> CycleReport:
        """One whole cycle reading :attr:`source` and sending through :attr:`transport`."""
        return self.assistant.cycle_on(self.source, now, transport=self.transport)

    def cursor(self) -> str | None:
        return self.store.cursor(self.settings.imap.folder)

    def receive(self, raw: bytes, now: datetime = NOW) -> str:
        outcome, line = self.assistant.handle(raw, None, now)
        assert outcome == "handled", line
        return line

    def delivered_to(self, email: str) -> list[str]:
        """The subjects of the mails the transport took for ``email``."""
        return [str(message_from_bytes(d.raw, policy=DEFAULT_POLICY)["Subject"])
                for d in self.transport.sent if email in d.envelope.recipients]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = Engine(tmp_path)
    yield made
    made.store.close()


def mail(sender: Address, to: Address, subject: str, body: str, message_id: str, *,
         cc: Address | None = None, in_reply_to: str | None = None) -> bytes:
    lines = [f"From: {sender.formatted()}", f"To: {to.formatted()}",
             *([f"Cc: {cc.formatted()}"] if cc else []), f"Subject: {subject}",
             f"Message-ID: <{message_id}>", "Date: Mon, 07 Dec 2026 09:00:00 +0000",
             *([f"In-Reply-To: {in_reply_to}", f"References: {in_reply_to}"]
               if in_reply_to else []),
             "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8"]
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


ASK = mail(SAM, JANE, "Intro to Acme?", "Hi Jane, could you introduce me to someone at Acme?",
           "ask-1@example.com", cc=HELPER)


def test_an_ask_a_reply_and_a_command_make_one_cycle_each_without_servers(
        engine: Engine) -> None:
    engine.receive(ASK)
    report = engine.outbox().send_due(NOW)
    assert [a.kind for a in report.sent] == [ActionKind.RECEIPT]
    [receipt] = engine.transport.sent
    assert receipt.envelope.recipients == (SAM.email,)
    assert engine.sent.sent_contains(receipt.message_id), "filed in Sent after the record"
    [thread] = engine.store.threads()
    assert thread.kind is Kind.ASK and thread.state is ThreadState.OPEN

    later = NOW + timedelta(hours=3)
    engine.receive(mail(JANE, SAM, "Re: Intro to Acme?", "Sure, I'll write to Bob at Acme.",
                        "reply-1@example.org", cc=HELPER, in_reply_to="<ask-1@example.com>"),
                   later)
    answered = engine.store.thread(thread.id)
    assert answered is not None and answered.answers, "the counterpart's reply is counted"

    engine.receive(mail(SAM, HELPER, "Re: " + str(
        message_from_bytes(receipt.raw, policy=DEFAULT_POLICY)["Subject"]), "cancel",
        "cancel-1@example.com", in_reply_to=receipt.message_id), later)
    cancelled = engine.store.thread(thread.id)
    assert cancelled is not None and cancelled.state is ThreadState.CANCELLED
    engine.outbox().send_due(later)
    assert not [a for a in engine.store.actions_for(thread.id)
                if a.status is ActionStatus.PENDING and a.kind is not ActionKind.COMMAND_REPLY]
    assert all(JANE.email not in d.envelope.recipients for d in engine.transport.sent)


def test_a_crash_between_send_and_record_is_settled_by_the_sent_folder(
        engine: Engine) -> None:
    """The server took the mail and filed it itself (as Gmail does); the process died before
    recording it. The next cycle asks the Sent folder, records it as sent, sends nothing."""
    engine.receive(ASK)
    engine.transport.files_in = engine.sent

    class Killed(BaseException):
        pass

    real_send = engine.transport.send

    def send_then_die(*args: object) -> object:
        real_send(*args)  # type: ignore[arg-type]
        raise Killed  # a kill after the server's acceptance, before the record

    engine.transport.send = send_then_die  # type: ignore[method-assign,assignment]
    with pytest.raises(Killed):
        engine.outbox().send_due(NOW)
    [attempt] = engine.store.in_flight()
    assert attempt.status is ActionStatus.SENDING

    engine.transport.send = real_send  # type: ignore[method-assign]
    engine.outbox().recover_in_flight(NOW + timedelta(minutes=1))
    assert engine.store.in_flight() == []
    settled = engine.store.action(attempt.id or 0)
    assert settled is not None and settled.status is ActionStatus.SENT
    assert len(engine.transport.sent) == 1, "sent once, never again"
    assert engine.store.unappended() == [], "already in Sent: not filed twice"
    assert len(engine.sent.mails) == 1


def test_an_unknown_outcome_not_in_sent_goes_again_byte_for_byte(engine: Engine) -> None:
    engine.receive(ASK)
    engine.transport.answers.append(Unknown("connection lost during DATA"))
    report = engine.outbox().send_due(NOW)
    assert report.retried and not report.sent
    first = engine.transport.sent[0].raw
    retry_at = NOW + timedelta(hours=1)
    outbox = engine.outbox()
    outbox.recover_in_flight(retry_at)
    outbox.send_due(retry_at)
    assert [d.raw for d in engine.transport.sent] == [first, first]
    assert not [a for a in engine.store.pending() if a.kind is ActionKind.RECEIPT]
    receipt = engine.store.action_by_key(report.retried[0].key)
    assert receipt is not None and receipt.status is ActionStatus.SENT


def test_a_permanent_refusal_fails_the_action_and_tells_the_owner_once(engine: Engine) -> None:
    engine.receive(ASK)
    engine.transport.answers.append(Refused(550, "mailbox unavailable"))
    report = engine.outbox().send_due(NOW)
    assert [a.kind for a in report.failed] == [ActionKind.RECEIPT]
    assert [a.kind for a in report.sent] == [ActionKind.ERROR_NOTICE]
    failed = engine.store.action_by_key(report.failed[0].key)
    assert failed is not None and failed.last_error == "550 mailbox unavailable"


def test_a_temporary_refusal_waits_with_backoff_and_sends_once(engine: Engine) -> None:
    engine.receive(ASK)
    engine.transport.answers.append(Refused(451, "try later"))
    report = engine.outbox().send_due(NOW)
    assert report.retried and not engine.transport.sent
    assert engine.outbox().send_due(NOW + timedelta(seconds=30)).sent == []
    assert len(engine.outbox().send_due(NOW + timedelta(minutes=1)).sent) == 1
    assert len(engine.transport.sent) == 1


# -- the bookkeeping alone: a store, no transport, no mailbox --------------------------------
def _thread(store: Store, state: ThreadState = ThreadState.OPEN) -> Thread:
    made = Thread(id=store.next_thread_id(), kind=Kind.ASK, state=state,
                  subject="Intro to Acme", owner=SAM, counterparts=(JANE,),
                  created=NOW - timedelta(days=9), root_message_id="ask@example.com",
                  last_owner_activity=NOW - timedelta(days=9))
    with store.transaction():
        store.save_thread(made)
    return made


def test_a_closing_note_sent_expires_the_ask(engine: Engine) -> None:
    thread = _thread(engine.store)
    with engine.store.transaction():
        engine.store.add_action(Action(key=f"t/{thread.id}/closing_note",
                                       kind=ActionKind.CLOSING_NOTE, due=NOW,
                                       thread_id=thread.id, recipients=(SAM,)), NOW)
    [note] = engine.store.due(NOW)
    with engine.store.transaction():
        sending.record_sent(engine.store, engine.settings, note, NOW)
    expired = engine.store.thread(thread.id)
    assert expired is not None and expired.state is ThreadState.EXPIRED
    assert expired.closed_at == NOW
    assert engine.store.pending() == [], "an expired ask plans nothing more"


def test_thanks_and_favours_due_have_one_definition(engine: Engine) -> None:
    open_ask = _thread(engine.store)
    done = _thread(engine.store, ThreadState.DONE)
    with engine.store.transaction():
        engine.store.add_action(Action(key="thanks", kind=ActionKind.THANK_YOU_DRAFT, due=NOW,
                                       thread_id=open_ask.id, recipients=(SAM,)), NOW)
        engine.store.add_action(Action(key="favour", kind=ActionKind.RETURN_FAVOR, due=NOW,
                                       thread_id=done.id, recipients=(SAM,)), NOW)
    history = {t.id: engine.store.actions_for(t.id) for t in engine.store.threads()}
    threads = engine.store.threads()
    assert owed.thanks_due(threads, history) == (open_ask,)
    assert owed.favours_due(threads, history) == (done,)
    digest = Action(key="digest", kind=ActionKind.DIGEST, due=NOW, recipients=(SAM,))
    job = sending.render_job(engine.store, engine.settings, digest, NOW)
    assert job.thanks_due == (open_ask,) and job.favours_due == (done,)


# -- reading through the mail source, by its cursor ----------------------------------------------
def _thread_subjects(store: Store) -> list[str]:
    return sorted(t.subject for t in store.threads())


def test_new_mail_is_read_by_the_cycle_settled_and_the_cursor_moves(engine: Engine) -> None:
    first = engine.cycle()
    assert first.read == 0 and engine.cursor() is not None, "the first start is recorded"
    engine.source.deliver(ASK, arrival=NOW)
    report = engine.cycle(NOW + timedelta(minutes=1))
    assert (report.read, report.errors, report.duplicates) == (1, 0, 0)
    assert engine.source.handled == {1} and not engine.source.failed
    assert _thread_subjects(engine.store) == ["Intro to Acme?"]
    assert engine.delivered_to(SAM.email), "the receipt went in the same cycle"
    again = engine.cycle(NOW + timedelta(minutes=2))
    assert (again.read, again.duplicates) == (0, 0), "nothing past the cursor: nothing read"


def test_a_failing_message_in_a_batch_is_filed_and_the_rest_read_once(engine: Engine) -> None:
    engine.source.batch_size = 2
    engine.cycle()
    asks = [mail(SAM, JANE, f"Ask {n}", f"Hi Jane, could you send me report {n}?",
                 f"ask-{n}@example.com", cc=HELPER) for n in range(1, 5)]
    for raw in (asks[0], b"no header at all, not a mail\r\n", *asks[1:]):
        engine.source.deliver(raw, arrival=NOW)
    report = engine.cycle(NOW + timedelta(minutes=1))
    assert (report.read, report.errors) == (4, 1)
    assert engine.source.failed == {2}, "the unreadable one went to the error folder"
    assert engine.source.handled == {1, 3, 4, 5}
    assert _thread_subjects(engine.store) == ["Ask 1", "Ask 2", "Ask 3", "Ask 4"]
    assert str(engine.cursor()).startswith("5 "), "read up to the last message"
    again = engine.cycle(NOW + timedelta(minutes=2))
    assert (again.read, again.errors, again.duplicates) == (0, 0, 0)


def test_a_restart_reads_on_from_the_saved_cursor(engine: Engine, tmp_path: Path) -> None:
    engine.cycle()
    engine.source.deliver(ASK, arrival=NOW)
    engine.cycle(NOW + timedelta(minutes=1))
    saved = engine.cursor()
    engine.store.close()

    later = Engine(tmp_path)  # the same state file, a new process
    later.source = engine.source
    later.transport = engine.transport
    assert later.cursor() == saved
    engine.source.handled.clear()  # no keyword to fall back on: only the cursor tells
    engine.source.deliver(mail(JANE, SAM, "Re: Intro to Acme?", "Sure, I'll ask Bob.",
                               "reply-1@example.org", cc=HELPER,
                               in_reply_to="<ask-1@example.com>"), arrival=NOW)
    try:
        report = later.cycle(NOW + timedelta(hours=1))
    finally:
        later.store.close()
        engine.store = Store.open(engine.settings.state, "example.com")
    assert (report.read, report.duplicates) == (1, 0), "only the mail after the cursor"
    assert engine.source.handled == {2}


OLD_ASK = (b"From: Sam Owner <sam@example.com>\r\nTo: Jane Doe <jane@example.org>\r\n"
           b"Cc: Sam's assistant <helper@example.com>\r\nSubject: Old news\r\n"
           b"Message-ID: <old-1@example.com>\r\nDate: Sun, 01 Nov 2026 09:00:00 +0000\r\n"
           b"\r\nHi Jane, could you look at this?\r\n")


def test_old_mail_at_the_first_start_is_left_alone_for_good(engine: Engine) -> None:
    engine.source.deliver(OLD_ASK, arrival=datetime(2026, 11, 1, 9, 1, tzinfo=UTC))
    engine.source.deliver(ASK, arrival=NOW - timedelta(hours=2))  # sent just before starting
    report = engine.cycle()
    assert report.read == 1 and _thread_subjects(engine.store) == ["Intro to Acme?"]
    assert 1 not in engine.source.handled and not engine.source.failed, "left alone, untouched"
    engine.source.deliver(mail(SAM, JANE, "New ask", "Hi Jane, could you call Bob?",
                               "ask-2@example.com", cc=HELPER), arrival=NOW)
    later = engine.cycle(NOW + timedelta(days=3))
    assert later.read == 1
    assert _thread_subjects(engine.store) == ["Intro to Acme?", "New ask"]
