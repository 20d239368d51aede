"""The life of an ask, end to end: Dovecot in, the SMTP sink out, weeks walked on the --now clock.

Each test drives ``mailhelper poll --once --now ...`` through the rig (see
``tests/rig/assistant.py``) and asserts on two things: what the sink received, and what
``status --json`` says. Every mail the assistant sends is checked by :func:`check_mail` (the
headers every mail carries, both parts, no template left-overs) and, at the end of each test,
matched against the Sent folder.

The shared walking kit (:class:`Walk`, :func:`at`, :func:`reply`, ...) lives here and the other
``test_lifecycle_*.py`` files import it.
"""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from tests.rig.assistant import OWNER, OWNER_NAME, RigAssistant
from tests.rig.mailboxes import make_message

JANE = "Jane Doe <jane@example.org>"
JANE_EMAIL = "jane@example.org"


def at(text: str) -> str:
    """``"2026-12-07 09:00"`` (UTC) as the ISO-8601 stamp ``--now`` takes."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).isoformat()


def header_date(stamp: str) -> str:
    return format_datetime(datetime.fromisoformat(stamp))


def kinds(messages: list[EmailMessage]) -> list[str]:
    return [str(m["X-Mailhelper-Action"]) for m in messages]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None, "no text/plain part"
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None, "no text/html part"
    return str(part.get_content())


def addresses(message: EmailMessage, name: str) -> list[str]:
    value = message.get(name)
    return [] if value is None else [a.addr_spec.lower() for a in value.addresses]


def check_mail(message: EmailMessage, assistant: str) -> None:
    """What every mail the assistant sends must carry (SPEC.md safety rules 2 and 3)."""
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Auto-Response-Suppress"] == "All"
    domain = assistant.rpartition("@")[2]
    assert re.fullmatch(rf"<mh\.[0-9a-f]{{24}}@{re.escape(domain)}>", str(message["Message-ID"]))
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    for body in (text_of(message), html_of(message), str(message["Subject"])):
        assert "{{" not in body and "{%" not in body and "}}" not in body, body
    assert message["Date"] is not None and message["X-Mailhelper-Action"] is not None


class Walk:
    """One assistant walked through time: ``poll`` returns only the mail that poll sent."""

    def __init__(self, rig: RigAssistant) -> None:
        self.rig = rig
        self.seen = 0

    @property
    def assistant(self) -> str:
        return self.rig.address

    def poll(self, now: str, *extra: str) -> list[EmailMessage]:
        self.rig.poll(now, *extra)
        raw = self.rig.sink.raw()
        new = [_parse(data) for data in raw[self.seen:]]
        self.seen = len(raw)
        for message in new:
            check_mail(message, self.assistant)
        return new

    def quiet(self, *stamps: str) -> None:
        """Poll at each time and assert that nothing at all was sent."""
        for stamp in stamps:
            sent = self.poll(stamp)
            assert sent == [], f"at {stamp}: {kinds(sent)}"

    def status(self, thread_id: int = 1) -> dict[str, Any]:
        return next(t for t in self.rig.status() if t["id"] == thread_id)

    @property
    def log(self) -> str:
        return self.rig.last_output

    def check_sent_folder(self) -> None:
        """Every mail the sink got is in the Sent folder, byte-for-byte the same headers."""
        sink = self.rig.sent()
        filed = {str(m["Message-ID"]): m for m in self.rig.folder("Sent")}
        assert len(filed) == len(sink)
        for message in sink:
            copy = filed[str(message["Message-ID"])]
            check_mail(copy, self.assistant)
            for name in ("Subject", "From", "To", "Cc", "Reply-To", "In-Reply-To",
                         "References"):
                assert str(copy.get(name, "")) == str(message.get(name, "")), name
            assert text_of(copy) == text_of(message)

    # -- mail in ----------------------------------------------------------------------------
    def ask(self, stamp: str, **kwargs: Any) -> str:
        return self.rig.ask(date=header_date(stamp), **kwargs)

    def deliver(self, from_: str, to: str | list[str], subject: str, body: str, stamp: str,
                **kwargs: Any) -> str:
        raw = make_message(from_, to, subject, body, date=header_date(stamp), **kwargs)
        self.rig.deliver(raw)
        return str(_parse_id(raw))

    def reply(self, to_id: str, stamp: str, body: str = "Happy to help! I'll write to Priya.",
              from_: str = JANE, subject: str = "Re: Intro to Acme?",
              **kwargs: Any) -> str:
        """The counterpart replies to all (owner in To, the assistant still in Cc)."""
        kwargs.setdefault("cc", self.assistant)
        return self.deliver(from_, f"{OWNER_NAME} <{OWNER}>", subject, body, stamp,
                            in_reply_to=to_id, references=to_id, **kwargs)

    def command(self, mail: EmailMessage, word: str, stamp: str) -> str:
        """The owner replies to one of the assistant's mails with ``word`` on the first line."""
        quoted = "\n".join("> " + line for line in text_of(mail).splitlines()[:6])
        body = f"{word}\n\nOn Mon, {mail['From']} wrote:\n{quoted}\n"
        mid = str(mail["Message-ID"])
        return self.deliver(f"{OWNER_NAME} <{OWNER}>", self.assistant, f"Re: {mail['Subject']}",
                            body, stamp, in_reply_to=mid, references=mid)


def _parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _parse_id(raw: bytes) -> str:
    match = re.search(rb"^Message-ID:\s*(<[^>]+>)", raw, re.MULTILINE | re.IGNORECASE)
    assert match is not None
    return match.group(1).decode()


# -- 1. a cc'd ask: receipt, two reminders, the closing note ---------------------------------


def test_ask_receipt_reminders_closing_note_then_expired(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    ask_id = walk.ask(at("2026-12-07 09:00"))
    [receipt] = walk.poll(at("2026-12-07 09:00"))
    assert kinds([receipt]) == ["receipt"]
    assert addresses(receipt, "To") == [OWNER]
    assert "I'll remind you on Thu 10 Dec, 09:00, if Jane hasn't replied" in " ".join(
        text_of(receipt).split())
    assert receipt["In-Reply-To"] == ask_id, "the receipt threads under the owner's ask"
    state = walk.status()
    assert (state["state"], state["next_action"]) == (
        "open", {"kind": "follow_up", "due": "2026-12-10T09:00:00+00:00"})

    walk.quiet(at("2026-12-08 09:00"), at("2026-12-10 08:59"))
    [first] = walk.poll(at("2026-12-10 09:00"))
    assert kinds([first]) == ["follow_up"] and "Follow up with Jane" in str(first["Subject"])
    assert walk.status()["next_action"] == {"kind": "follow_up",
                                            "due": "2026-12-14T09:00:00+00:00"}
    walk.quiet(at("2026-12-10 12:00"), at("2026-12-13 09:00"))
    [second] = walk.poll(at("2026-12-14 09:30"))
    assert kinds([second]) == ["follow_up"] and "Still no reply" in str(second["Subject"])
    assert walk.status()["next_action"] == {"kind": "closing_note",
                                            "due": "2026-12-21T09:00:00+00:00"}
    walk.quiet(at("2026-12-15 09:00"), at("2026-12-21 08:59"))
    [closing] = walk.poll(at("2026-12-21 09:00"))
    assert kinds([closing]) == ["closing_note"]
    assert "snooze" in text_of(closing)
    state = walk.status()
    assert (state["state"], state["next_action"]) == ("expired", None)
    walk.quiet(at("2026-12-28 09:00"))
    assert kinds(rig_assistant.sent()) == ["receipt", "follow_up", "follow_up", "closing_note"]
    # A late answer is still an answer: the thank-you comes all the same.
    walk.reply(ask_id, at("2027-01-04 10:00"))
    walk.quiet(at("2027-01-04 10:00"))
    state = walk.status()
    assert (state["state"], state["next_action"]) == (
        "answered", {"kind": "thank_you_draft", "due": "2027-01-04T12:00:00+00:00"})
    assert kinds(walk.poll(at("2027-01-04 12:00"))) == ["thank_you_draft"]
    walk.check_sent_folder()


def test_receipt_names_the_due_time_in_the_owners_zone(rig_assistant: RigAssistant) -> None:
    """London in winter is UTC+0, so the clock is given in New York time to tell them apart."""
    rig_assistant.configure({"timezone": "Europe/London"})
    walk = Walk(rig_assistant)
    walk.ask(at("2026-12-07 14:00"))
    [receipt] = walk.poll("2026-12-07T09:00:00-05:00")
    assert "I'll remind you on Thu 10 Dec, 14:00" in " ".join(text_of(receipt).split())
    assert walk.status()["next_action"]["due"] == "2026-12-10T14:00:00+00:00"
    assert walk.status()["created"] == "2026-12-07T14:00:00+00:00"
    walk.quiet("2026-12-10T13:59:00+00:00")
    assert kinds(walk.poll("2026-12-10T14:00:00+00:00")) == ["follow_up"]
    walk.check_sent_folder()


def test_receipt_and_reminders_across_the_march_dst_change(rig_assistant: RigAssistant) -> None:
    """Europe/London goes to summer time on Sun 29 Mar 2026. An ask on Saturday 19:30 GMT:
    three calendar days later is Tuesday 19:30 *BST* (18:30 UTC), before the 20:00 quiet
    hours; 72 hours would be 20:30 BST, quiet, and land on Wednesday. The second reminder
    (Saturday 4 Apr) moves to Monday at the end of the quiet hours, 08:00 BST."""
    rig_assistant.configure({
        "timezone": "Europe/London",
        "sending": {"business_days": True, "quiet_hours": "20:00-08:00"},
    })
    walk = Walk(rig_assistant)
    walk.ask(at("2026-03-28 19:30"))
    [receipt] = walk.poll(at("2026-03-28 19:30"))
    assert "I'll remind you on Tue 31 Mar, 19:30" in " ".join(text_of(receipt).split())
    assert walk.status()["next_action"]["due"] == "2026-03-31T18:30:00+00:00"
    walk.quiet(at("2026-03-31 18:29"))
    assert kinds(walk.poll(at("2026-03-31 18:30"))) == ["follow_up"]
    assert walk.status()["next_action"] == {"kind": "follow_up",
                                            "due": "2026-04-06T07:00:00+00:00"}
    walk.quiet(at("2026-04-04 19:30"), at("2026-04-06 06:59"))
    assert kinds(walk.poll(at("2026-04-06 07:00"))) == ["follow_up"]
    # 14 days after the ask is Sat 11 Apr 19:30 BST: Monday 13 Apr 08:00 BST.
    assert walk.status()["next_action"] == {"kind": "closing_note",
                                            "due": "2026-04-13T07:00:00+00:00"}
    walk.check_sent_folder()


def test_confirm_false_turns_the_receipt_off(rig_assistant: RigAssistant) -> None:
    rig_assistant.configure({"confirm": False})
    walk = Walk(rig_assistant)
    walk.ask(at("2026-12-07 09:00"))
    walk.quiet(at("2026-12-07 09:00"))
    state = walk.status()
    assert (state["state"], state["next_action"]["kind"]) == ("open", "follow_up")
    assert kinds(walk.poll(at("2026-12-10 09:00"))) == ["follow_up"]
    # Mail it could not understand is answered all the same (an ask with nobody to ask; to
    # the assistant alone and untagged, it would be a note to self).
    walk.deliver(f"{OWNER_NAME} <{OWNER}>", walk.assistant.replace("@", "+ask@"),
                 "Ask who?", "Just me here.", at("2026-12-10 10:00"))
    [notice] = walk.poll(at("2026-12-10 10:00"))
    assert kinds([notice]) == ["receipt"] and "Not tracked yet" in str(notice["Subject"])
    walk.check_sent_folder()


def test_a_long_subject_folds_between_words(rig_assistant: RigAssistant) -> None:
    """The whole subject fits on a line of its own: it must not start that line (a reader
    would see a leading space, and the owner's reply would say "Re:  Tracking")."""
    walk = Walk(rig_assistant)
    walk.ask(at("2026-12-07 09:00"), to="Carlos Mendes <carlos@example.com>",
             subject="Would you read my talk abstract?")
    [receipt] = walk.poll(at("2026-12-07 09:00"))
    expected = "Tracking your ask to Carlos Mendes: “Would you read my talk abstract?”"
    assert receipt["Subject"] == expected
    [raw] = rig_assistant.sink.raw()
    assert b"\r\nSubject: Tracking your ask" in raw
    assert all(len(line) <= 78 for line in raw.split(b"\r\n\r\n")[0].split(b"\r\n"))
    walk.check_sent_folder()


# -- 2. the counterpart answers --------------------------------------------------------------


def test_reply_all_answers_cancels_follow_ups_and_drafts_thanks(
    rig_assistant: RigAssistant,
) -> None:
    walk = Walk(rig_assistant)
    ask_id = walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    walk.reply(ask_id, at("2026-12-09 11:00"))
    assert walk.poll(at("2026-12-09 11:00")) == [], "a reply sends nothing by itself"
    state = walk.status()
    assert (state["state"], state["next_action"]) == (
        "answered", {"kind": "thank_you_draft", "due": "2026-12-09T13:00:00+00:00"})
    walk.quiet(at("2026-12-09 12:59"))
    [draft] = walk.poll(at("2026-12-09 13:00"))
    assert kinds([draft]) == ["thank_you_draft"] and addresses(draft, "To") == [OWNER]
    assert "Happy to help" in text_of(draft), "the draft quotes the reply"
    walk.quiet(at("2026-12-10 09:00"), at("2026-12-14 09:00"), at("2026-12-21 09:00"))
    assert walk.status()["state"] == "answered"
    assert kinds(rig_assistant.sent()) == ["receipt", "thank_you_draft"]
    walk.check_sent_folder()


def test_reply_matched_by_subject_and_participants_is_logged_as_fallback(
    rig_assistant: RigAssistant,
) -> None:
    walk = Walk(rig_assistant)
    walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    # A client that drops In-Reply-To and References: only the subject and sender tie it.
    walk.deliver(JANE, f"{OWNER_NAME} <{OWNER}>", "RE: Intro to Acme?", "Sure, will do.",
                 at("2026-12-08 10:00"), cc=walk.assistant)
    walk.quiet(at("2026-12-08 10:00"))
    assert "matched by subject and sender" in walk.log
    state = walk.status()
    assert (state["state"], state["next_action"]["kind"]) == ("answered", "thank_you_draft")
    # A stranger writing with the same subject is not a reply.
    walk.deliver("Mallory <mallory@example.net>", f"{OWNER_NAME} <{OWNER}>", "Re: Intro to Acme?",
                 "Me too", at("2026-12-08 10:30"), cc=walk.assistant)
    walk.quiet(at("2026-12-08 10:30"))
    assert "not an owner and not a reply" in walk.log
    walk.check_sent_folder()


def test_owner_forwarding_the_reply_counts_as_the_reply(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    ask_id = walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    # Jane replied to Sam only; Sam forwards it (inline, as Gmail does) to the assistant.
    body = ("FYI, she said yes.\n\n"
            "---------- Forwarded message ---------\n"
            "From: Jane Doe <jane@example.org>\n"
            "Date: Wed, 9 Dec 2026 at 10:00\n"
            "Subject: Re: Intro to Acme?\n"
            "To: Sam Rivera <sam@example.com>\n\n"
            "Of course, I'll write to Priya today.\n")
    walk.deliver(f"{OWNER_NAME} <{OWNER}>", walk.assistant, "Fwd: Re: Intro to Acme?", body,
                 at("2026-12-09 10:30"), references=ask_id)
    walk.quiet(at("2026-12-09 10:30"))
    state = walk.status()
    assert (state["state"], state["next_action"]) == (
        "answered", {"kind": "thank_you_draft", "due": "2026-12-09T12:30:00+00:00"})
    [draft] = walk.poll(at("2026-12-09 12:30"))
    assert "write to Priya" in text_of(draft)
    walk.check_sent_folder()
