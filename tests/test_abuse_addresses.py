"""Addresses a stranger cannot choose, against the real rig (Dovecot, SMTP sink, poll --once).

Every case runs weeks of ``poll --once --now`` with mail to counterparts switched on (a nudge
and send-mode thank-yous), so an address that wrongly became a counterpart would receive mail;
the sink's envelopes are the proof that it never does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest

from tests.rig.assistant import OWNER, RigAssistant
from tests.rig.mailboxes import make_message
from tests.test_abuse import assert_clean_headers, assert_consistent, recipients_of
from tests.test_lifecycle import text_of

T0 = datetime(2026, 12, 7, 9, tzinfo=UTC)
DATE = "Mon, 07 Dec 2026 09:00:00 +0000"
SAM = f"Sam Rivera <{OWNER}>"
VICTIM = "jane.doe@victims.test"
EVE = "eve@evil.test"
#: Mail to counterparts switched on: a nudge after 2 days, thank-yous sent, not drafted.
SENDING_TO_COUNTERPARTS = {"schedules": {
    "ask": {"follow_up": ["3 days"], "give_up_after": "21 days", "nudge_counterpart": ["2 days"]},
    "thank_you": {"after": "1 hour", "mode": "send"},
}}


def weeks_of_polls(rig: RigAssistant, days: int = 24) -> None:
    """A poll at nine and at five every day for ``days`` days after T0."""
    for day in range(1, days + 1):
        for hour in (9, 17):
            rig.poll(T0 + timedelta(days=day, hours=hour - 9))


def forward_of(rig: RigAssistant, from_line: str, message_id: str = "<fwd-1@example.com>",
               attach: EmailMessage | None = None) -> bytes:
    """Sam forwarding Eve's mail inline, as Gmail writes it, the original's From as given."""
    body = (
        "Sam here: could you chase this for me?\n\n"
        "---------- Forwarded message ---------\n"
        f"From: {from_line}\n"
        "Date: Fri, Dec 4, 2026 at 4:02 PM\n"
        "Subject: Intro to Bob\n"
        f"To: {SAM}\n\n"
        "Hi Sam, could you introduce me to Bob? Reply to me any time.\n"
    )
    message = EmailMessage()
    message["From"] = SAM
    message["To"] = rig.address
    message["Subject"] = "Fwd: Intro to Bob"
    message["Date"] = DATE
    message["Message-ID"] = message_id
    message.set_content(body)
    if attach is not None:
        message.add_attachment(attach)
    return message.as_bytes()


def answer_the_nudge(rig: RigAssistant) -> None:
    """Eve answers the assistant's nudge, so that a thank-you is due to the counterparts."""
    [nudge] = [m for m in rig.sent() if m["X-Mailhelper-Action"] == "nudge"]
    rig.deliver(make_message(f"Eve <{EVE}>", str(nudge["From"]), f"Re: {nudge['Subject']}",
                             "Sure, happy to.", in_reply_to=str(nudge["Message-ID"]),
                             references=str(nudge["Message-ID"]), date=DATE))


def test_an_address_in_the_forwarded_display_name_never_gets_mail(
    rig_assistant: RigAssistant,
) -> None:
    rig_assistant.configure(SENDING_TO_COUNTERPARTS)
    rig_assistant.deliver(forward_of(rig_assistant, f'"Prof. Jane Doe <{VICTIM}>" <{EVE}>'))
    rig_assistant.poll(T0)
    assert f"new ask to {EVE}" in rig_assistant.last_output
    [thread] = rig_assistant.status()
    assert thread["counterparts"] == [EVE]
    weeks_of_polls(rig_assistant, days=3)
    answer_the_nudge(rig_assistant)
    weeks_of_polls(rig_assistant)
    sent = rig_assistant.sent()
    assert {"receipt", "nudge", "thank_you"} <= {str(m["X-Mailhelper-Action"]) for m in sent}
    assert VICTIM not in recipients_of(rig_assistant)
    assert recipients_of(rig_assistant) == {OWNER, EVE}
    for message in sent:  # not even as a header address
        assert VICTIM not in {a.addr_spec for h in ("To", "Cc") for a in
                              (message[h].addresses if message[h] else ())}
    assert_clean_headers(sent)
    assert_consistent(rig_assistant, delivered=2)


@pytest.mark.parametrize("from_line", [
    f"Prof. Jane Doe <{VICTIM}> <{EVE}>",  # Gmail prints the name without its quotes
    f"{VICTIM} <{EVE}>",
    f"Prof. Jane Doe [mailto:{VICTIM}] <{EVE}>",
    f"{VICTIM}, Jane <{EVE}>",
])
def test_an_ambiguous_forwarded_sender_is_nobody_and_the_owner_is_told(
    rig_assistant: RigAssistant, from_line: str,
) -> None:
    rig_assistant.configure(SENDING_TO_COUNTERPARTS)
    rig_assistant.deliver(forward_of(rig_assistant, from_line))
    rig_assistant.poll(T0)
    assert "<fwd-1@example.com> not understood: I could not find who you asked" in (
        rig_assistant.last_output)
    weeks_of_polls(rig_assistant, days=8)
    [notice] = rig_assistant.sent()
    assert notice["X-Mailhelper-Action"] == "receipt"
    assert "Why: I could not find who you asked" in text_of(notice)
    assert recipients_of(rig_assistant) == {OWNER}
    assert rig_assistant.status() == []
    assert_consistent(rig_assistant, delivered=1)


def test_a_message_a_stranger_attached_does_not_name_the_counterpart(
    rig_assistant: RigAssistant,
) -> None:
    """Eve's mail carried a .eml "from" Jane; Sam's client forwards Eve's mail inline and
    carries the attachment along. The counterpart is Eve, whose mail Sam forwarded."""
    rig_assistant.configure(SENDING_TO_COUNTERPARTS)
    planted = EmailMessage()
    planted["From"] = f"Jane Doe <{VICTIM}>"
    planted["To"] = SAM
    planted["Subject"] = "Intro to Bob"
    planted["Date"] = "Thu, 03 Dec 2026 10:00:00 +0000"
    planted["Message-ID"] = "<planted-1@victims.test>"
    planted.set_content("Sam, please do introduce Eve to Bob.")
    rig_assistant.deliver(forward_of(rig_assistant, f"Eve <{EVE}>", attach=planted))
    rig_assistant.poll(T0)
    assert f"new ask to {EVE}" in rig_assistant.last_output
    [thread] = rig_assistant.status()
    assert thread["counterparts"] == [EVE]
    weeks_of_polls(rig_assistant, days=3)
    answer_the_nudge(rig_assistant)
    weeks_of_polls(rig_assistant)
    assert recipients_of(rig_assistant) == {OWNER, EVE}
    assert_consistent(rig_assistant, delivered=2)


def _owner_ask(rig: RigAssistant, cc: bytes, message_id: str) -> bytes:
    """Sam's ask with raw UTF-8 headers (RFC 6532), as a client that knows SMTPUTF8 sends."""
    return (
        f"From: {SAM}\r\nTo: Jane Doe <jane@example.org>\r\n".encode()
        + b"Cc: " + cc + f", {rig.address}\r\n".encode()
        + f"Subject: Intro to Acme?\r\nDate: {DATE}\r\nMessage-ID: {message_id}\r\n".encode()
        + b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        + b"Content-Transfer-Encoding: 8bit\r\n\r\nCould you all introduce me to Acme?\r\n"
    )


def test_unwritable_addresses_are_left_out_and_the_owner_is_told(
    rig_assistant: RigAssistant,
) -> None:
    rig_assistant.configure(SENDING_TO_COUNTERPARTS)
    rig_assistant.deliver(_owner_ask(
        rig_assistant, "Jöhn <jöhn@example.de>, a..b@example.org, x@foo_bar.test".encode(),
        "<ask-1@example.com>"))
    assert rig_assistant.poll(T0) == 0
    assert "<ask-1@example.com> new ask to jane@example.org:" in rig_assistant.last_output
    [thread] = rig_assistant.status()
    assert thread["counterparts"] == ["jane@example.org"]
    [receipt] = rig_assistant.sent()
    text = " ".join(text_of(receipt).split())  # text parts wrap at 78 characters
    # A receipt fits a phone screen: the first two addresses with why, then how many more.
    assert "I left out " in text and "; and 1 more." in text
    for address, why in [("jöhn@example.de", "needs SMTPUTF8"),
                         ("a..b@example.org", "not a valid dot-atom")]:
        assert f"{address}, because" in text and why in text, (address, text)
    weeks_of_polls(rig_assistant)  # each poll exits 0 (poll() asserts it)
    kinds = [str(m["X-Mailhelper-Action"]) for m in rig_assistant.sent()]
    assert "nudge" in kinds and "follow_up" in kinds
    assert recipients_of(rig_assistant) == {OWNER, "jane@example.org"}
    assert_clean_headers(rig_assistant.sent())
    assert_consistent(rig_assistant, delivered=1)


def test_when_nobody_on_the_ask_can_be_written_to_the_owner_is_told(
    rig_assistant: RigAssistant,
) -> None:
    rig_assistant.configure(SENDING_TO_COUNTERPARTS)
    raw = _owner_ask(rig_assistant, b"x@foo_bar.test", "<ask-2@example.com>").replace(
        b"To: Jane Doe <jane@example.org>", "To: Jöhn <jöhn@example.de>".encode())
    rig_assistant.deliver(raw)
    assert rig_assistant.poll(T0) == 0
    assert ("<ask-2@example.com> not understood: I could not find anyone on the mail whom I "
            "can write to") in rig_assistant.last_output
    [notice] = rig_assistant.sent()
    text = " ".join(text_of(notice).split())  # text parts wrap at 78 characters
    assert "jöhn@example.de, because" in text and "x@foo_bar.test, because" in text
    weeks_of_polls(rig_assistant, days=4)
    assert recipients_of(rig_assistant) == {OWNER}
    assert rig_assistant.status() == []
    assert_consistent(rig_assistant, delivered=1)
