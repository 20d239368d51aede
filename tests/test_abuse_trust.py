"""What a stranger's mail may change, against the real rig (Dovecot, SMTP sink, the CLI).

A stranger's mail never answers an ask, whatever it references; a counterpart's answer thanks
them directly (``thank_you.mode: send``) only when it is really theirs; a forged out-of-office
cannot park an ask for years or crash the cycle; and mail text never reaches a terminal as
control sequences.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from email.message import EmailMessage
from pathlib import Path

from mailhelper.model.message_id import make_message_id
from tests.rig.assistant import OWNER, RigAssistant
from tests.rig.mailboxes import make_message

DATE = "Mon, 07 Dec 2026 09:00:00 +0000"
T0 = "2026-12-07T09:00:00+00:00"
SAM = f"Sam Rivera <{OWNER}>"
JANE = "Jane Doe <jane@example.org>"
EVE = "Eve <eve@evil.test>"
SEND_MODE = {"schedules": {"thank_you": {"after": "2 hours", "mode": "send"}}}


def kinds_to(rig: RigAssistant) -> list[tuple[str, set[str]]]:
    """(action kind, recipients) of every mail the sink accepted, oldest first."""
    return [(str(m["X-Mailhelper-Action"]), _to(m)) for m in rig.sent()]


def _to(message: EmailMessage) -> set[str]:
    return {a.addr_spec for a in message["To"].addresses}


def test_a_strangers_mail_referencing_the_ask_does_not_answer_it(
    rig_assistant: RigAssistant,
) -> None:
    rig_assistant.configure(SEND_MODE)
    ask_id = rig_assistant.ask(date=DATE)
    rig_assistant.poll(T0)
    # Eve saw the ask (a forward, a list, a Cc) and answers it, quoting it properly.
    rig_assistant.deliver(make_message(EVE, SAM, "Re: Intro to Acme?", "Done, all sorted!",
                                       date=DATE, in_reply_to=ask_id, references=ask_id))
    rig_assistant.poll("2026-12-07T10:00:00+00:00")
    [thread] = rig_assistant.status()
    assert thread["state"] == "open"
    assert "not a counterpart of thread 1" in rig_assistant.last_output
    rig_assistant.poll("2026-12-10T09:00:00+00:00")  # the first reminder's time
    assert kinds_to(rig_assistant) == [("receipt", {OWNER}), ("follow_up", {OWNER})]


def test_a_forged_counterpart_answer_by_subject_alone_thanks_nobody_directly(
    rig_assistant: RigAssistant,
) -> None:
    rig_assistant.configure(SEND_MODE)
    rig_assistant.ask(date=DATE)
    rig_assistant.poll(T0)
    # "From: Jane" is easy to forge; with no reference to the ask it is a subject-only match.
    rig_assistant.deliver(make_message(JANE, SAM, "Re: Intro to Acme?", "Happy to help.",
                                       date=DATE))
    rig_assistant.poll("2026-12-07T10:00:00+00:00")
    assert "answered by jane@example.org (matched by subject and sender)" in (
        rig_assistant.last_output)
    [thread] = rig_assistant.status()
    assert thread["state"] == "answered"  # reminders stop: it does come from her address
    rig_assistant.poll("2026-12-07T12:30:00+00:00")
    rig_assistant.poll("2026-12-11T09:00:00+00:00")
    assert kinds_to(rig_assistant) == [("receipt", {OWNER}), ("thank_you_draft", {OWNER})]
    draft = rig_assistant.sent()[-1].get_body(("plain",)).get_content()
    assert "Jane" in draft and "forged" not in draft.lower()


def test_a_genuine_answer_still_thanks_the_counterpart_in_send_mode(
    rig_assistant: RigAssistant,
) -> None:
    rig_assistant.configure(SEND_MODE)
    ask_id = rig_assistant.ask(date=DATE)
    rig_assistant.poll(T0)
    rig_assistant.deliver(make_message(JANE, SAM, "Re: Intro to Acme?", "Happy to help.",
                                       date=DATE, in_reply_to=ask_id, references=ask_id))
    rig_assistant.poll("2026-12-07T10:00:00+00:00")
    assert "answered by jane@example.org" in rig_assistant.last_output
    rig_assistant.poll("2026-12-07T12:30:00+00:00")
    assert kinds_to(rig_assistant) == [("receipt", {OWNER}), ("thank_you", {"jane@example.org"})]


def _out_of_office(rig: RigAssistant, ask_id: str, text: str) -> None:
    rig.deliver(make_message(JANE, SAM, "Automatic reply: Intro to Acme?", text, date=DATE,
                             in_reply_to=ask_id, references=ask_id,
                             extra_headers={"Auto-Submitted": "auto-replied"}))


def test_a_far_out_of_office_holds_reminders_at_most_60_days_and_the_owner_is_told(
    rig_assistant: RigAssistant,
) -> None:
    ask_id = rig_assistant.ask(date=DATE)
    rig_assistant.poll(T0)
    _out_of_office(rig_assistant, ask_id, "I am out of the office until 1 January 2400.")
    rig_assistant.poll("2026-12-07T10:00:00+00:00")
    assert "away until 2027-02-05 (a later date named" in rig_assistant.last_output
    [thread] = rig_assistant.status()
    # 60 days after the auto-reply came, and the reminder the morning after.
    assert thread["next_action"] == {"kind": "follow_up", "due": "2027-02-06T09:00:00+00:00"}
    rig_assistant.poll("2026-12-10T09:00:00+00:00")
    assert kinds_to(rig_assistant) == [("receipt", {OWNER})]
    rig_assistant.poll("2027-02-06T09:00:00+00:00")
    assert kinds_to(rig_assistant) == [("receipt", {OWNER}), ("follow_up", {OWNER})]
    text = rig_assistant.sent()[-1].get_body(("plain",)).get_content()
    assert "away until" in text and "no more than 60 days" in text
    html = rig_assistant.sent()[-1].get_body(("html",)).get_content()
    assert "no more than 60 days" in html


def test_an_out_of_office_until_the_end_of_the_calendar_does_not_crash(
    rig_assistant: RigAssistant,
) -> None:
    ask_id = rig_assistant.ask(date=DATE)
    rig_assistant.poll(T0)
    _out_of_office(rig_assistant, ask_id, "Out of office. Back on 9999-12-31.")
    rig_assistant.poll("2026-12-07T10:00:00+00:00")  # fails the test on a non-zero exit
    [thread] = rig_assistant.status()
    assert thread["next_action"] == {"kind": "follow_up", "due": "2027-02-06T09:00:00+00:00"}
    rig_assistant.poll("2027-02-06T09:00:00+00:00")
    assert kinds_to(rig_assistant)[-1] == ("follow_up", {OWNER})


def test_an_out_of_office_date_in_the_past_moves_nothing(rig_assistant: RigAssistant) -> None:
    ask_id = rig_assistant.ask(date=DATE)
    rig_assistant.poll(T0)
    _out_of_office(rig_assistant, ask_id, "I was out until 1 December 2026.")
    rig_assistant.poll("2026-12-07T10:00:00+00:00")
    [thread] = rig_assistant.status()
    assert thread["next_action"] == {"kind": "follow_up", "due": "2026-12-10T09:00:00+00:00"}
    rig_assistant.poll("2026-12-10T09:00:00+00:00")
    assert kinds_to(rig_assistant) == [("receipt", {OWNER}), ("follow_up", {OWNER})]
    text = rig_assistant.sent()[-1].get_body(("plain",)).get_content()
    assert "away until" not in text


def test_a_command_forged_from_a_guessed_message_id_does_nothing(
    rig_assistant: RigAssistant,
) -> None:
    """Eve saw the ask (its Message-ID), knows how action keys read, and forges Sam's
    "cancel" in reply to the receipt; with require_auth off only the Message-ID protects."""
    ask_id = rig_assistant.ask(date=DATE)
    rig_assistant.poll(T0)
    [receipt] = rig_assistant.sent()
    domain = rig_assistant.address.rpartition("@")[2]
    key = f"msg/{ask_id.strip('<>')}/receipt"
    guesses = {f"<mh.{hashlib.sha256(key.encode()).hexdigest()[:24]}@{domain}>",
               make_message_id(key, domain, b"")}
    assert str(receipt["Message-ID"]) not in guesses
    with sqlite3.connect(rig_assistant.state) as db:
        [(secret,)] = db.execute("SELECT value FROM meta WHERE key='message_id_secret'")
    assert str(receipt["Message-ID"]) == make_message_id(key, domain, bytes.fromhex(secret))
    for n, guess in enumerate(sorted(guesses)):
        rig_assistant.deliver(make_message(SAM, rig_assistant.address, "Re: Tracking your ask",
                                           "cancel", date=DATE, in_reply_to=guess,
                                           message_id=f"<forged-{n}@evil.test>"))
    rig_assistant.poll("2026-12-07T10:00:00+00:00")
    [thread] = rig_assistant.status()
    assert thread["state"] == "open"
    assert "command_reply" not in [k for k, _ in kinds_to(rig_assistant)]


def test_status_and_explain_print_no_escape_sequence_from_a_subject(
    rig_assistant: RigAssistant, tmp_path: Path
) -> None:
    raw = make_message(SAM, JANE, "Intro=?", "Hi Jane, an intro?", cc=rig_assistant.address,
                       date=DATE)
    hostile = (b"=?utf-8?q?Intro=1B[2J=1B]0;pwned=07_to_Acme=C2=9B31m_now?= "
               b"\x1b[31mred\x1b[0m")
    raw = raw.replace(b"Subject: Intro=?", b"Subject: " + hostile)
    raw = raw.replace(b"From: Sam Rivera", b"From: =?utf-8?q?Sam=1B[2J_Rivera?=")
    rig_assistant.deliver(raw)
    rig_assistant.poll(T0)
    assert "\x1b" not in rig_assistant.last_output and "\x9b" not in rig_assistant.last_output
    code, table, _ = rig_assistant.cli("status")
    assert code == 0 and "Intro" in table and "to Acme" in table
    code, as_json, _ = rig_assistant.cli("status", "--json")
    assert code == 0
    mail = tmp_path / "hostile.eml"
    mail.write_bytes(raw)
    code, summary, _ = rig_assistant.cli("explain", str(mail))
    assert code == 0 and "Subject:" in summary
    code, reading, _ = rig_assistant.cli("explain", str(mail), "--json")
    assert code == 0
    for printed in (table, as_json, summary, reading):
        assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", printed), repr(printed)
    [thread] = json.loads(as_json)["threads"]
    assert "\x1b[2J" in thread["subject"]  # JSON keeps the value, escaped: "\u001b[2J"
