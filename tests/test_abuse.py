"""Hostile and broken mail against the real rig (Dovecot, SMTP sink, the CLI's poll --once).

Each case checks what reaches the outside (the sink: who got mail, with which headers), that
the reason is logged, and that the state stays consistent: ``status --json`` sane, SQLite's
``PRAGMA integrity_check`` ok, and every message handled (flagged) or in the error folder,
never lost.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterable
from email.message import EmailMessage

import pytest

from mailhelper.mail.mailbox import HANDLED_FLAG
from tests.rig.assistant import OWNER, REPO, RigAssistant
from tests.rig.mailboxes import connect, folders, make_message

DATE = "Mon, 07 Dec 2026 09:00:00 +0000"
T0 = "2026-12-07T09:00:00+00:00"
SAM = f"Sam Rivera <{OWNER}>"
JANE = "Jane Doe <jane@example.org>"
TRUSTED = "mx.example.com"
#: Every header name a mail from the assistant may carry; anything else would be injected.
SENT_HEADERS = {
    "from", "to", "cc", "reply-to", "subject", "date", "message-id", "in-reply-to",
    "references", "auto-submitted", "x-auto-response-suppress", "x-mailhelper-action",
    "x-mailhelper-thread", "mime-version", "content-type", "content-transfer-encoding",
}


def assert_consistent(rig: RigAssistant, delivered: int) -> None:
    """status --json sane, the SQLite file intact, every delivered message handled or filed."""
    threads = rig.status()
    for thread in threads:
        assert {"id", "kind", "state", "subject", "counterparts", "created",
                "next_action"} <= set(thread)
        assert thread["state"] in {"open", "answered", "done", "declined", "expired",
                                   "cancelled"}
        assert all("@" in c and c == c.lower() for c in thread["counterparts"])
        json.dumps(thread)
    with sqlite3.connect(rig.state) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    inbox = [flags for flags, _ in headers_of(rig, "INBOX")]
    error_folder = rig.config["imap"].get("error_folder", "mailhelper/errors")
    existing = folders(rig.dovecot, rig.account)
    errors = headers_of(rig, error_folder) if error_folder in existing else []
    handled = [flags for flags in inbox if HANDLED_FLAG in flags or b"\\Seen" in flags]
    assert len(handled) + len(errors) == delivered, (inbox, errors)


def headers_of(rig: RigAssistant, folder: str) -> list[tuple[tuple[bytes, ...], bytes]]:
    """(flags, header bytes) of each message in ``folder``: never the bodies, some are big."""
    with connect(rig.dovecot, rig.account) as client:
        client.select_folder(folder, readonly=True)
        uids = client.search("ALL")
        fetched = client.fetch(uids, ["FLAGS", "BODY.PEEK[HEADER]"]) if uids else {}
    return [(tuple(fetched[uid][b"FLAGS"]), bytes(fetched[uid][b"BODY[HEADER]"]))
            for uid in sorted(fetched)]


def header_names(message: EmailMessage) -> set[str]:
    return {name.lower() for name in message}


def assert_clean_headers(messages: Iterable[EmailMessage]) -> None:
    """No header was injected, and no value carries a line break or a control character."""
    for message in messages:
        assert header_names(message) <= SENT_HEADERS, header_names(message) - SENT_HEADERS
        for name, value in message.items():
            text = str(value)
            assert not re.search(r"[\x00-\x08\x0a-\x1f\x7f]", text), (name, text)


def recipients_of(rig: RigAssistant) -> set[str]:
    return {rcpt.lower() for envelope in rig.sink.envelopes() for rcpt in envelope.rcpt_tos}


# -- strangers and forgers ------------------------------------------------------------------


def test_a_stranger_ccing_the_assistant_on_mail_to_fifty_people_sends_nothing(
    rig_assistant: RigAssistant,
) -> None:
    people = [f"Person {n} <person{n}@example.net>" for n in range(50)]
    raw = make_message("Mallory <mallory@evil.test>", people, "[offer] Great deal",
                       "offer\n\nBuy now!", cc=rig_assistant.address, date=DATE,
                       message_id="<spam-1@evil.test>")
    rig_assistant.deliver(raw)
    rig_assistant.poll(T0)
    assert rig_assistant.sent() == []
    assert "<spam-1@evil.test> ignored: from mallory@evil.test: not an owner" in (
        rig_assistant.last_output)
    assert rig_assistant.status() == []
    assert_consistent(rig_assistant, delivered=1)


def test_a_forged_owner_without_a_passing_verdict_is_ignored_and_nobody_is_told(
    rig_assistant: RigAssistant,
) -> None:
    rig_assistant.configure({"require_auth": True, "trusted_authserv_id": TRUSTED})
    forgeries = [
        [],
        [("Authentication-Results", "mx.evil.test; dmarc=pass header.from=example.com")],
        # The receiving server's verdict on top; the forger's own "pass" below it.
        [("Authentication-Results", f"{TRUSTED}; dmarc=fail header.from=example.com"),
         ("Authentication-Results", f"{TRUSTED}; dmarc=pass header.from=example.com")],
        [("Authentication-Results", f"{TRUSTED}; dkim=pass header.d=evil.test")],
    ]
    for n, headers in enumerate(forgeries):
        rig_assistant.deliver(make_message(
            SAM, JANE, f"Wire the money {n}", "Jane, please wire it.", cc=rig_assistant.address,
            date=DATE, message_id=f"<forged-{n}@evil.test>", extra_headers=headers))
    rig_assistant.poll(T0)
    assert rig_assistant.sent() == [], "nobody is told: not Jane, not the owner"
    assert rig_assistant.status() == []
    for n in range(len(forgeries)):
        assert (f"<forged-{n}@evil.test> ignored: From an owner address (sam@example.com) "
                f"without a passing Authentication-Results verdict from {TRUSTED}") in (
            rig_assistant.last_output)
    # The owner's real mail, vouched for by the trusted server, still works.
    rig_assistant.deliver(make_message(
        SAM, JANE, "Intro to Acme?", "Hi Jane", cc=rig_assistant.address, date=DATE,
        extra_headers=[("Authentication-Results",
                        f"{TRUSTED}; dkim=pass header.d=example.com; dmarc=pass")]))
    rig_assistant.poll("2026-12-07T09:05:00+00:00")
    [receipt] = rig_assistant.sent()
    assert receipt["To"].addresses[0].addr_spec == OWNER
    assert recipients_of(rig_assistant) == {OWNER}
    assert_consistent(rig_assistant, delivered=len(forgeries) + 1)


# -- loops ----------------------------------------------------------------------------------


def _auto_answer(rig: RigAssistant, sent: EmailMessage, variant: str, n: int) -> bytes:
    """What an auto-responder (or a bouncing server) sends back for ``sent``."""
    subject = str(sent["Subject"])
    mid = str(sent["Message-ID"])
    reply: dict[str, object] = {"in_reply_to": mid, "references": mid, "date": DATE,
                                "message_id": f"<auto-{variant}-{n}@example.com>"}
    if variant == "auto-submitted":
        return make_message(SAM, rig.address, f"Re: {subject}", "I am away.", **reply,
                            extra_headers={"Auto-Submitted": "auto-replied"})  # type: ignore[arg-type]
    if variant == "exchange":  # no Auto-Submitted, only the subject and Exchange's header
        return make_message(SAM, rig.address, f"Automatic reply: {subject}",
                            "I am out of the office until 14 December.", **reply,  # type: ignore[arg-type]
                            extra_headers={"X-Auto-Response-Suppress": "All"})
    if variant == "helpdesk":  # a stranger's responder that marks nothing at all
        return make_message("Support <support@helpdesk.example.net>", rig.address,
                            f"Re: {subject} [ticket #{n}]", "We got your message.", **reply)  # type: ignore[arg-type]
    assert variant == "bounce"
    raw = make_message("Mail Delivery System <MAILER-DAEMON@mx.example.com>", rig.address,
                       "Undelivered Mail Returned to Sender", "It did not go.", **reply)  # type: ignore[arg-type]
    return raw.replace(b"Content-Type: text/plain",
                       b"Content-Type: multipart/report; report-type=delivery-status;"
                       b" boundary=x\r\nX-Was: text/plain", 1)


@pytest.mark.parametrize("variant", ["auto-submitted", "exchange", "helpdesk", "bounce"])
def test_an_auto_responder_answering_the_assistant_never_gets_an_answer(
    rig_assistant: RigAssistant, variant: str
) -> None:
    rig_assistant.ask(date=DATE)
    rig_assistant.poll(T0)
    [receipt] = rig_assistant.sent()
    delivered = 1
    for n in range(1, 5):
        # A misbehaving responder: it answers everything the assistant ever sent, every time.
        for message in rig_assistant.sent():
            rig_assistant.deliver(_auto_answer(rig_assistant, message, variant, n))
            delivered += 1
        rig_assistant.poll(f"2026-12-07T09:{n:02d}:00+00:00")
        assert f"<auto-{variant}-{n}@example.com> ignored:" in rig_assistant.last_output
    assert [m["Message-ID"] for m in rig_assistant.sent()] == [receipt["Message-ID"]]
    [thread] = rig_assistant.status()
    assert thread["state"] == "open", "an auto-reply never answers the ask"
    assert_consistent(rig_assistant, delivered=delivered)


def test_a_responder_that_marks_nothing_gets_the_command_list_once_then_silence(
    rig_assistant: RigAssistant,
) -> None:
    """From the owner's own address, a "Re:" subject and no header at all: the assistant
    cannot tell it from the owner writing an unknown command, so the list of commands goes
    once; the responder's answer to that list is not answered again."""
    rig_assistant.ask(date=DATE)
    rig_assistant.poll(T0)
    answered: set[str] = set()
    for n in range(1, 5):
        for message in rig_assistant.sent():
            if str(message["Message-ID"]) not in answered:
                answered.add(str(message["Message-ID"]))
                rig_assistant.deliver(make_message(
                    SAM, rig_assistant.address, f"Re: {message['Subject']}",
                    "Thank you for your e-mail. I will answer as soon as I can.", date=DATE,
                    in_reply_to=str(message["Message-ID"]),
                    message_id=f"<plain-{n}@example.com>"))
        rig_assistant.poll(f"2026-12-07T09:{n:02d}:00+00:00")
    kinds = [m["X-Mailhelper-Action"] for m in rig_assistant.sent()]
    assert kinds == ["receipt", "help"]
    assert "not answered again" in rig_assistant.last_output or len(answered) == 2
    assert_consistent(rig_assistant, delivered=1 + len(answered))


# -- malformed and oversized mail ----------------------------------------------------------


def _owner_ask(rig: RigAssistant, headers: bytes, body: bytes = b"Hi Jane, an intro?\r\n",
               message_id: str = "<odd-1@example.com>") -> bytes:
    return (
        b"From: Sam Rivera <sam@example.com>\r\nTo: Jane Doe <jane@example.org>\r\n"
        + f"Cc: {rig.address}\r\nDate: {DATE}\r\nMessage-ID: {message_id}\r\n".encode()
        + headers + b"MIME-Version: 1.0\r\n\r\n" + body
    )


def test_header_injection_in_names_and_subjects_adds_no_header(
    rig_assistant: RigAssistant,
) -> None:
    rig_assistant.configure({"schedules": {"thank_you": {"after": "1 hour", "mode": "send"}}})
    raw = (
        b"From: =?utf-8?q?Sam=0D=0ABcc=3A_evil=40evil.test?= <sam@example.com>\r\n"
        b"To: =?utf-8?q?Jane=0D=0ABcc=3A_victim=40evil.test=0D=0AX-Evil=3A_1?= "
        b"<jane@example.org>, \"Bob\r\n Bcc: other@evil.test\" <bob@example.org>\r\n"
        + f"Cc: {rig_assistant.address}\r\nDate: {DATE}\r\n".encode()
        + b"Message-ID: <inject-1@example.com>\r\n"
        b"Subject: =?utf-8?q?Intro=0D=0ABcc=3A_victim=40evil.test=0D=0A=0D=0Abody?= plain\r\n"
        b"\x07bell \x1b[31mred\x00nul\rbare-cr\r\n"
        b"X-Note: line one\rX-Injected: bare CR\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHi Jane\r\n"
    )
    rig_assistant.deliver(raw)
    rig_assistant.poll(T0)
    assert "<inject-1@example.com> new ask to" in rig_assistant.last_output
    [receipt] = rig_assistant.sent()
    assert recipients_of(rig_assistant) == {OWNER}
    assert_clean_headers([receipt])
    assert "Intro" in str(receipt["Subject"])

    rig_assistant.deliver(make_message(JANE, SAM, "Re: Intro", "Sure!", date=DATE,
                                       in_reply_to="<inject-1@example.com>"))
    rig_assistant.poll("2026-12-07T12:00:00+00:00")
    assert "answered by jane@example.org" in rig_assistant.last_output
    # Bob answers too, before the thank-you goes: it thanks both (only who answered).
    rig_assistant.deliver(make_message("Bob <bob@example.org>", SAM, "Re: Intro", "Yes!",
                                       date=DATE, in_reply_to="<inject-1@example.com>"))
    rig_assistant.poll("2026-12-07T12:30:00+00:00")
    assert "answered by bob@example.org" in rig_assistant.last_output
    rig_assistant.poll("2026-12-07T13:00:00+00:00")
    sent = rig_assistant.sent()
    assert [m["X-Mailhelper-Action"] for m in sent] == ["receipt", "thank_you"]
    assert_clean_headers(sent)
    thank_you = sent[-1]
    assert {a.addr_spec for a in thank_you["To"].addresses} == {"jane@example.org",
                                                                 "bob@example.org"}
    assert recipients_of(rig_assistant) == {OWNER, "jane@example.org", "bob@example.org"}
    # The words are data, shown on one line inside a name or a subject, never a header.
    for raw in rig_assistant.sink.raw():
        head = raw.split(b"\r\n\r\n", 1)[0]
        assert not re.search(rb"^(?:bcc|x-evil|x-injected)\s*:", head, re.I | re.M), head
    assert_consistent(rig_assistant, delivered=3)


def test_a_subject_of_template_syntax_comes_out_literally(rig_assistant: RigAssistant) -> None:
    trap = "{{ config }} {{ 7*7 }} {% for x in range(3) %}loop{% endfor %} {# c #}"
    ask_id = rig_assistant.ask(subject=trap, body=f"Hi Jane, {trap}", date=DATE)
    rig_assistant.poll(T0)
    assert f"{ask_id} new ask to jane@example.org" in rig_assistant.last_output
    [receipt] = rig_assistant.sent()
    subject = str(receipt["Subject"])
    assert "{{ config }}" in subject and "{{ 7*7 }}" in subject
    assert "{% for x in range(3) %}loop{% endfor %}" in subject
    # The receipt keeps the subject out of its sentences (issue 10); the reminder quotes the
    # ask, so the owner's words reach a mail body there, and must come out as written.
    rig_assistant.poll("2026-12-10T09:05:00+00:00")
    reminder = rig_assistant.sent()[-1]
    assert reminder["X-Mailhelper-Action"] == "follow_up"
    for mail in (receipt, reminder):
        text = mail.get_body(("plain",)).get_content()
        html = mail.get_body(("html",)).get_content()
        # (without the links' random-looking tokens: a token may well hold the digits "49")
        for body in (text, re.sub(r'href="mailto:[^"]*"', "", html)):
            assert "looplooploop" not in body and "49" not in body
            assert "Settings(" not in body and "password" not in body.lower()
    quoted = reminder.get_body(("plain",)).get_content()
    assert "{{ config }}" in " ".join(quoted.split())
    [thread] = rig_assistant.status()
    assert thread["subject"] == trap
    assert_consistent(rig_assistant, delivered=1)


def test_control_characters_and_bad_charsets_are_read_not_fatal(
    rig_assistant: RigAssistant,
) -> None:
    headers = (
        b"Subject: =?x-no-such-charset?q?Caf=E9?= and =?utf-8?b?!!!broken?= \xff\xfe raw\r\n"
        b"Content-Type: text/plain; charset=\"utf-99\"\r\nContent-Transfer-Encoding: 8bit\r\n"
    )
    rig_assistant.deliver(_owner_ask(rig_assistant, headers, b"Caf\xe9 \xff\xfe \x00 ok\r\n"))
    rig_assistant.deliver(_owner_ask(
        rig_assistant, b"Subject: =?utf-16?b?//5IAGkA?= \x01\x02\x03\r\n"
        b"Content-Type: text/plain; charset=unicode_escape\r\n",
        b"\\N{BELL} \\x41\r\n", message_id="<odd-2@example.com>"))
    rig_assistant.poll(T0)
    sent = rig_assistant.sent()
    assert [m["X-Mailhelper-Action"] for m in sent] == ["receipt", "receipt"]
    assert_clean_headers(sent)
    for mid in ("<odd-1@example.com>", "<odd-2@example.com>"):
        assert f"{mid} new ask to jane@example.org" in rig_assistant.last_output
    assert_consistent(rig_assistant, delivered=2)


def test_a_two_megabyte_subject(rig_assistant: RigAssistant) -> None:
    words = b" ".join(b"word%d" % n for n in range(300_000))
    assert len(words) > 2_000_000
    folded = re.sub(rb"(.{1,70})(?: |$)", rb"\1\r\n ", words).rstrip(b" \r\n")
    rig_assistant.deliver(_owner_ask(rig_assistant, b"Subject: Intro " + folded + b"\r\n"))
    rig_assistant.poll(T0)
    assert "<odd-1@example.com> new ask to jane@example.org" in rig_assistant.last_output
    [receipt] = rig_assistant.sent()
    assert len(str(receipt["Subject"])) < 1000
    assert_clean_headers([receipt])
    [thread] = rig_assistant.status()
    assert thread["subject"].startswith("Intro word0 word1") and len(thread["subject"]) <= 4096
    assert_consistent(rig_assistant, delivered=1)


def test_ten_thousand_recipients(rig_assistant: RigAssistant) -> None:
    many = ", ".join(f"p{n}@example.net" for n in range(10_000))
    stranger = (b"From: Mallory <mallory@evil.test>\r\nTo: " + many.encode()
                + f"\r\nCc: {rig_assistant.address}\r\nSubject: hi\r\nDate: {DATE}\r\n".encode()
                + b"Message-ID: <many-1@evil.test>\r\n\r\nhi\r\n")
    owner = (b"From: Sam Rivera <sam@example.com>\r\nTo: " + many.encode()
             + f"\r\nCc: {rig_assistant.address}\r\nSubject: Anyone?\r\nDate: {DATE}\r\n"
               .encode() + b"Message-ID: <many-2@example.com>\r\n\r\nCan anyone help?\r\n")
    rig_assistant.deliver(stranger)
    rig_assistant.deliver(owner)
    rig_assistant.poll(T0)
    assert "<many-1@evil.test> ignored" in rig_assistant.last_output
    assert ("<many-2@example.com> not understood: it is addressed to 10000 people; I track "
            "asks and offers to at most 100") in rig_assistant.last_output
    assert rig_assistant.status() == []
    sent = rig_assistant.sent()
    assert recipients_of(rig_assistant) <= {OWNER}, "the owner is told, nobody else"
    assert len(sent) == 1
    assert_clean_headers(sent)
    assert sent[0]["X-Mailhelper-Action"] == "receipt"
    assert "10000 people" in sent[0].get_body(("plain",)).get_content()
    assert len(sent[0].as_bytes()) < 100_000
    assert_consistent(rig_assistant, delivered=2)


def test_two_hundred_nested_multiparts(rig_assistant: RigAssistant) -> None:
    depth = 200
    body = b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n" % (n, n + 1)
        for n in range(depth)
    ) + b"--b%d\r\nContent-Type: text/plain\r\n\r\ndeep text\r\n--b%d--\r\n" % (depth, depth)
    body += b"".join(b"--b%d--\r\n" % n for n in reversed(range(depth)))
    headers = b"Subject: Deep\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n"
    rig_assistant.deliver(_owner_ask(rig_assistant, headers, body))
    rig_assistant.poll(T0)
    assert "<odd-1@example.com> new ask to jane@example.org" in rig_assistant.last_output
    [receipt] = rig_assistant.sent()
    assert_clean_headers([receipt])
    assert_consistent(rig_assistant, delivered=1)


def test_a_fifty_megabyte_attachment_is_filed_with_memory_kept_sane(
    rig_assistant: RigAssistant,
) -> None:
    # Built by hand: the stdlib's generator takes many seconds over 50 MB of base64.
    encoded = base64.encodebytes(os.urandom(50 * 1024 * 1024)).replace(b"\n", b"\r\n")
    raw = b"".join([
        f"From: {SAM}\r\nTo: {JANE}\r\nCc: {rig_assistant.address}\r\n".encode(),
        f"Subject: Intro to Acme, deck attached\r\nDate: {DATE}\r\n".encode(),
        b"Message-ID: <big-1@example.com>\r\nMIME-Version: 1.0\r\n",
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n',
        b"Content-Type: text/plain\r\n\r\nHi Jane, deck attached. An intro?\r\n--b\r\n",
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n",
        b'Content-Disposition: attachment; filename="deck.bin"\r\n\r\n', encoded,
        b"--b--\r\n",
    ])
    del encoded
    rig_assistant.deliver(raw)
    size = len(raw)
    del raw
    # VmHWM, the peak of this process's own memory: getrusage's ru_maxrss would carry over
    # the peak of the (large) test process it was forked from.
    probe = (
        "import re, sys\n"
        "from mailhelper.cli.main import main\n"
        "code = main(sys.argv[1:])\n"
        "status = open('/proc/self/status').read()\n"
        "print('MAXRSS-KB', re.search(r'VmHWM:\\s+(\\d+)', status)[1], file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "poll", "--once", "--now", T0, "--config",
         str(rig_assistant.config_path)],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    peak_kb = int(re.search(r"MAXRSS-KB (\d+)", done.stderr)[1])  # type: ignore[index]
    # The mail is never held whole: only its header is read.
    assert peak_kb * 1024 < size, f"peak {peak_kb // 1024} MB for a {size >> 20} MB mail"
    # Too large to read: filed in the error folder with the reason, and the owner is told.
    assert "too large to read" in done.stderr
    [notice] = rig_assistant.sent()
    assert notice["X-Mailhelper-Action"] == "error_notice"
    assert notice["To"].addresses[0].addr_spec == OWNER
    assert len(notice.as_bytes()) < 200_000, "the attachment is not sent back"
    assert_clean_headers([notice])
    [(_flags, header)] = headers_of(rig_assistant, "mailhelper/errors")
    assert b"Subject: Intro to Acme, deck attached" in header
    assert headers_of(rig_assistant, "INBOX") == []
    assert_consistent(rig_assistant, delivered=1)
