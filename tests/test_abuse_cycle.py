"""One bad mail never stops the others, and strangers cannot flood the owner (issue 16).

Against the real rig (Dovecot, the SMTP sink, ``poll --once --now``):

- a counterpart address no header can carry, in a thread made by an older version (mail can
  no longer make one), fails that one action with one notice; every poll still exits 0 and
  every other thread's mail goes on time; an internationalised address goes with SMTPUTF8
  where the server offers it and fails clearly where it does not;
- junk from strangers (header-less, too large, unparseable) is filed and counted in one
  summary a day that quotes none of it, and never holds back a due reminder;
- the owner's own mail that cannot be read still gets its own notice.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mailhelper.cli.config import load_settings
from mailhelper.engine.outbox import NOTICES_PER_HOUR, hold_reason
from mailhelper.engine.tracker import replan
from mailhelper.mail.mailbox import MAX_MESSAGE_BYTES
from mailhelper.model.settings import SendingSettings, Settings
from mailhelper.model.values import Action, ActionKind, Address, Kind, Thread, ThreadState
from mailhelper.state.store import Store
from tests.rig.assistant import OWNER, OWNER_NAME, RigAssistant
from tests.rig.dovecot import DovecotServer, ImapAccount
from tests.rig.mailboxes import make_message
from tests.rig.smtpsink import SmtpSink

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # a Monday
DATE = "Mon, 07 Dec 2026 09:00:00 +0000"
JANE = "jane@example.org"
#: Addresses no header can carry (an older version let them into threads), and one that is
#: valid but international: it needs SMTPUTF8 (RFC 6531).
UNWRITABLE = ["a..b@example.org", "x@foo_bar.test", "l" * 65 + "@example.org"]
INTERNATIONAL = "jöhn@example.de"


def at(days: float = 0, hours: float = 0, minutes: float = 0) -> str:
    return (T0 + timedelta(days=days, hours=hours, minutes=minutes)).isoformat()


def kind_of(message: EmailMessage) -> str:
    return str(message["X-Mailhelper-Action"])


def actions(rig: RigAssistant) -> list[sqlite3.Row]:
    with sqlite3.connect(rig.state) as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM actions ORDER BY id").fetchall()


def owner_ask(rig: RigAssistant, n: int, to: str) -> None:
    """Sam's ask to ``to`` with the assistant in Cc, written as raw bytes so that any address
    (even one no header should carry) reaches the assistant as it would from a lax client."""
    raw = (f"From: {OWNER_NAME} <{OWNER}>\r\nTo: Someone <{to}>\r\nCc: {rig.address}\r\n"
           f"Subject: Intro number {n}?\r\nDate: {DATE}\r\n"
           f"Message-ID: <ask-{n}@example.com>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n\r\n"
           f"Could you introduce me to someone at Acme? ({n})\r\n").encode()
    rig.deliver(raw)


def legacy_thread(rig: RigAssistant, n: int, to: str) -> None:
    """A thread with ``to`` as its counterpart, written into the state as an older version
    (whose address reader let such addresses in) left it, with its actions planned. Mail can
    no longer make one: a new thread refuses an address no header can carry."""
    settings = load_settings(rig.config_path)
    store = Store.open(rig.state, rig.address.partition("@")[2])
    try:
        with store.transaction():
            thread = Thread(
                id=store.next_thread_id(), kind=Kind.ASK, state=ThreadState.OPEN,
                subject=f"Intro number {n}?", owner=Address(OWNER, OWNER_NAME),
                counterparts=(Address(to, "Someone"),), created=T0,
                root_message_id=f"ask-{n}@example.com", last_owner_activity=T0,
            )
            store.save_thread(thread)
            store.add_thread_messages(thread.id, [thread.root_message_id])
            replan(store, thread, settings, T0)
    finally:
        store.close()


def nudging(rig: RigAssistant) -> None:
    """A polite follow-up to the counterpart a day after the ask, and the owner's reminder
    the day after: the first goes to every counterpart, good or bad."""
    rig.configure({"schedules": {"ask": {"nudge_counterpart": ["1 day"],
                                         "follow_up": ["2 days"]}}})


def test_an_unwritable_counterpart_fails_alone_with_one_notice_and_every_poll_exits_0(
    rig_assistant: RigAssistant,
) -> None:
    rig = rig_assistant
    nudging(rig)
    owner_ask(rig, 0, JANE)
    rig.poll(at())
    for n, address in enumerate([*UNWRITABLE, INTERNATIONAL], start=1):
        legacy_thread(rig, n, address)
    threads = rig.status()
    assert len(threads) == 5
    assert [kind_of(m) for m in rig.sent()] == ["receipt"]

    # The nudges fall due: Jane's goes; each bad one fails, with one notice each.
    rig.poll(at(days=1))  # exits 0 (rig.poll asserts it)
    sent = rig.sent()[1:]
    nudges = [m for m in sent if kind_of(m) == "nudge"]
    assert [str(m["To"].addresses[0].addr_spec) for m in nudges] == [JANE]
    notices = [m for m in sent if kind_of(m) == "error_notice"]
    assert len(notices) == 4 and {m["To"].addresses[0].addr_spec for m in notices} == {OWNER}
    rows = {r["key"]: r for r in actions(rig)}
    failed = [r for r in rows.values() if r["status"] == "failed"]
    assert sorted(r["kind"] for r in failed) == ["nudge"] * 4
    for row in failed:
        assert row["last_error"], "the reason is kept"
    unwritable = [r for r in failed if INTERNATIONAL not in r["recipients"]]
    assert all("could not be written" in r["last_error"] for r in unwritable)
    [international] = [r for r in failed if INTERNATIONAL in r["recipients"]]
    assert "SMTPUTF8" in international["last_error"]
    for notice in notices:
        body = notice.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        assert "I couldn't send the follow-up to" in text and "won't try again" in text
    assert any("No mail can be written to that address" in str(n.get_body(("plain",)))
               for n in notices)
    assert any("SMTPUTF8" in str(n.get_body(("plain",))) for n in notices)

    # Every later poll exits 0, tells nobody again, and the other mail goes on time: the
    # owner's reminders of all five asks, at two days.
    rig.poll(at(days=1, hours=1))
    assert len(rig.sent()) == 1 + len(sent)
    rig.poll(at(days=2))
    reminders = [m for m in rig.sent()[1 + len(sent):] if kind_of(m) == "follow_up"]
    assert len(reminders) == 5
    assert all(m["To"].addresses[0].addr_spec == OWNER for m in reminders)
    rig.poll(at(days=3))
    assert [kind_of(m) for m in rig.sent()].count("error_notice") == 4


def test_an_international_counterpart_gets_mail_with_smtputf8_where_the_server_offers_it(
    dovecot: DovecotServer, imap_account: ImapAccount,
    smtp_sink_factory: Callable[..., SmtpSink], tmp_path: Path,
) -> None:
    workdir = tmp_path / "assistant"
    workdir.mkdir()
    sink = smtp_sink_factory(smtputf8=True)
    rig = RigAssistant(dovecot, imap_account, sink, workdir)
    nudging(rig)
    rig.poll(at())
    legacy_thread(rig, 1, INTERNATIONAL)
    rig.poll(at(days=1))
    [nudge] = [raw for raw in sink.raw() if b"X-Mailhelper-Action: nudge" in raw]
    # RFC 6532: the address as UTF-8 in the header itself, not an encoded-word.
    assert f"<{INTERNATIONAL}>".encode() in nudge.partition(b"\r\n\r\n")[0]
    [envelope] = [e for e in sink.envelopes() if INTERNATIONAL in e.rcpt_tos]
    assert "SMTPUTF8" in envelope.mail_options
    assert [r["status"] for r in actions(rig) if r["kind"] == "nudge"] == ["sent"]
    assert not [m for m in rig.sent() if kind_of(m) == "error_notice"]


def test_a_failing_template_fails_its_mail_alone(rig_assistant: RigAssistant) -> None:
    """Not only addresses: whatever makes one mail impossible to write (here an override
    template that fails on real values) fails that action with a notice; poll exits 0."""
    rig = rig_assistant
    templates = rig.workdir / "templates"
    templates.mkdir()
    # Passes the start-up check (the samples' subject is another) and fails on this one
    # thread's reminder: a division by zero in the sandbox.
    (templates / "follow_up.subject.j2").write_text(
        "Reminder: {{ (1 // 0) if 'number 1' in about else about }}\n")
    rig.configure({"templates_dir": str(templates),
                   "schedules": {"ask": {"follow_up": ["1 day"]}}})
    owner_ask(rig, 1, JANE)
    owner_ask(rig, 2, "bob@example.org")
    rig.poll(at())
    rig.poll(at(days=1))
    kinds = [kind_of(m) for m in rig.sent()]
    assert kinds == ["receipt", "receipt", "follow_up", "error_notice"]
    assert str(rig.sent()[2]["Subject"]) == "Reminder: Intro number 2?"
    [row] = [r for r in actions(rig) if r["status"] == "failed"]
    assert row["kind"] == "follow_up" and "could not be written" in row["last_error"]
    rig.poll(at(days=2))
    assert [kind_of(m) for m in rig.sent()].count("error_notice") == 1


# -- strangers' junk -----------------------------------------------------------------------

PHISH = "URGENT: verify your account now"


def headerless(n: int) -> bytes:
    """What some MTAs relay as is: no header at all, only text."""
    return f"\r\n{PHISH} ({n}) click http://evil.test/{n}\r\n".encode()


def unparseable(n: int) -> bytes:
    """Header fields, but none of From, Sender, Message-ID or Subject: not a mail."""
    return (f"X-Spam: {PHISH} {n}\r\nContent-Type: text/plain\r\n\r\n"
            f"{PHISH} http://evil.test/{n}\r\n").encode()


def too_large(from_: str, subject: str, message_id: str) -> bytes:
    head = make_message(from_, f"Someone <{OWNER}>", subject, "see attached\n",
                        message_id=message_id, date=DATE)
    header = [line for line in head.partition(b"\r\n\r\n")[0].split(b"\r\n")
              if not line.lower().startswith((b"content-type", b"content-transfer-encoding"))]
    header.append(b'Content-Type: multipart/mixed; boundary="b1"')
    line = base64.b64encode(os.urandom(57)) + b"\r\n"
    return (b"\r\n".join(header) + b"\r\n\r\n--b1\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n"
            + line * (MAX_MESSAGE_BYTES // 57 + 20_000) + b"--b1--\r\n")


def test_an_owners_mail_failing_require_auth_gets_no_notice_of_its_own(
    rig_assistant: RigAssistant,
) -> None:
    """Owner mail without the trusted server's verdict is a stranger's (SPEC.md safety
    rule 1): when it cannot be read, it is counted in the summary, never answered."""
    rig = rig_assistant
    rig.configure({"require_auth": True, "trusted_authserv_id": "mx.example.com"})
    rig.deliver(too_large(f"{OWNER_NAME} <{OWNER}>", "Wire the money", "<forged@evil.test>"))
    rig.poll(at())
    assert rig.sent() == []
    assert "not an owner's" in rig.last_output
    rig.poll(at(days=1))
    [summary] = rig.sent()
    assert str(summary["Subject"]) == "1 message from others filed as errors (Mon 7 Dec)"
    assert b"Wire the money" not in summary.as_bytes()


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Auckland"])
def test_the_summary_is_one_action_per_day_of_the_configured_zone(
    rig_assistant: RigAssistant, zone: str,
) -> None:
    rig = rig_assistant
    rig.configure({"timezone": zone})
    times = [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=3)]  # the last: Tue in Auckland
    for n, moment in enumerate(times):
        rig.deliver(headerless(n))
        rig.poll(moment.isoformat())
    days = [moment.astimezone(ZoneInfo(zone)).date().isoformat() for moment in times]
    rows = [r for r in actions(rig) if r["key"].startswith("errors/")]
    assert [r["key"] for r in rows] == [f"errors/{day}/summary" for day in sorted(set(days))]
    assert all(r["status"] == "pending" for r in rows)
    assert [json.loads(r["data"])["filed_unreadable"] for r in rows] == [
        str(days.count(day)) for day in sorted(set(days))]


def test_sixty_junk_mails_give_one_summary_a_day_and_never_delay_a_reminder(
    rig_assistant: RigAssistant,
) -> None:
    rig = rig_assistant
    # A small hourly budget, so that notices drawing on it would show at once.
    rig.configure({"sending": {"max_per_hour": 3},
                   "schedules": {"ask": {"follow_up": ["3 days"]}}})
    for n in range(3):
        owner_ask(rig, n, f"person{n}@example.org")
    rig.poll(at())
    assert [kind_of(m) for m in rig.sent()] == ["receipt"] * 3

    # Thursday 08:30: sixty junk mails, one of them too large, from strangers; and the
    # owner's own mail that is too large to read.
    for n in range(30):
        rig.deliver(headerless(n))
        rig.deliver(unparseable(n))
    rig.deliver(too_large("Mallory <mallory@evil.test>", PHISH, "<big-evil@evil.test>"))
    rig.deliver(too_large(f"{OWNER_NAME} <{OWNER}>", "The whole archive", "<big-1@example.com>"))
    rig.poll(at(days=3, minutes=-30))
    new = rig.sent()[3:]
    assert [kind_of(m) for m in new] == ["error_notice"], "only the owner's own mail is told"
    [own] = new
    assert own["To"].addresses[0].addr_spec == OWNER
    assert str(own["Subject"]) == "Couldn't understand your mail “The whole archive”"
    assert own["In-Reply-To"] == "<big-1@example.com>"
    assert rig.last_output.count("moved to mailhelper/errors") == 62

    # 09:00: the three reminders fall due, in the hour after the notice, with more junk
    # arriving in the same cycle: none is held back.
    for n in range(30, 60):
        rig.deliver(headerless(n))
    rig.poll(at(days=3))
    new = rig.sent()[4:]
    assert [kind_of(m) for m in new] == ["follow_up"] * 3, rig.last_output
    assert "held" not in rig.last_output.replace("held 0", "")

    # Friday 09:00: one summary of Thursday, counts and folder only.
    rig.poll(at(days=4))
    rig.poll(at(days=4, hours=5))
    [summary] = rig.sent()[7:]
    assert kind_of(summary) == "error_notice"
    assert summary["To"].addresses[0].addr_spec == OWNER
    assert str(summary["Subject"]) == "91 messages from others filed as errors (Thu 10 Dec)"
    text = summary.get_body(("plain",))
    assert text is not None
    content = text.get_content()
    assert "90 could not be parsed, 1 too large to read" in content
    assert '"mailhelper/errors"' in content
    whole = summary.as_bytes()
    for quoted in (PHISH.encode(), b"evil.test", b"mallory", b"Mallory", b"X-Spam"):
        assert quoted not in whole, quoted
    assert [kind_of(m) for m in rig.sent()].count("error_notice") == 2


# -- the hourly budgets ----------------------------------------------------------------------


def test_notices_and_other_mail_draw_on_two_hourly_budgets(tmp_path: Path) -> None:
    """Notices to the owner never use up what reminders need, nor the other way round."""
    owner = Address(OWNER, OWNER_NAME)
    settings = Settings(owners=(owner,), assistant=Address("helper@example.com"),
                        sending=SendingSettings(max_per_hour=3))
    store = Store.open(tmp_path / "state.db", "example.com")
    now = T0 + timedelta(days=3)

    def sent(key: str, kind: ActionKind, minutes_ago: int) -> None:
        with store.transaction():
            store.add_action(Action(key=key, kind=kind, due=T0, recipients=(owner,)), T0)
            stored = store.action_by_key(key)
            assert stored is not None
            store.mark_sent(stored, now - timedelta(minutes=minutes_ago))

    def reason(kind: ActionKind) -> tuple[str, datetime] | None:
        return hold_reason(store, settings, Action(key=f"due/{kind.value}", kind=kind, due=now,
                                                   recipients=(owner,)), now)

    for n in range(NOTICES_PER_HOUR):
        sent(f"notice/{n}", ActionKind.ERROR_NOTICE, 50 - n)
    assert reason(ActionKind.FOLLOW_UP) is None, "a full budget of notices holds no reminder"
    assert reason(ActionKind.ERROR_NOTICE) == (
        f"{NOTICES_PER_HOUR} notices sent in the last hour", now + timedelta(minutes=10))
    for n in range(3):
        sent(f"reminder/{n}", ActionKind.FOLLOW_UP, 40 - n)
    assert reason(ActionKind.FOLLOW_UP) == ("3 mails sent in the last hour",
                                           now + timedelta(minutes=20))
    store.close()
