"""The watch of the owner's own mailbox (issue 11, SPEC.md "answers seen anywhere"), end to end.

Two users on the rig's Dovecot: the assistant's mailbox (``rig_assistant``) and the owner's
own (``owner_box``), which the assistant watches read-only. Each scenario drives
``poll --once --now`` and reads what reached the SMTP sink; each ends by checking that the
owner's mailbox holds exactly the same messages with the same flags as before.
"""

from __future__ import annotations

import email
import email.policy
import itertools
import json
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import pytest

from tests.rig import LOOPBACK
from tests.rig.assistant import OWNER, OWNER_NAME, RigAssistant
from tests.rig.mailboxes import append, make_message, read_folder, recreate_folder

JANE = "Jane Doe <jane@example.org>"
ASK_DATE = "Mon, 07 Dec 2026 09:00:00 +0000"
_owners = itertools.count(1)


class OwnerBox:
    """The owner's own mailbox on the rig, and the snapshot the scenarios compare."""

    def __init__(self, dovecot: Any) -> None:
        self.dovecot = dovecot
        self.credentials = dovecot.add_user(f"sam-own-{next(_owners)}@example.com")

    def put(self, raw: bytes, folder: str = "INBOX", when: str | None = None,
            flags: tuple[bytes, ...] = ()) -> None:
        moment = datetime.fromisoformat(when) if when else None
        append(self.dovecot, self.credentials, raw, folder=folder, msg_time=moment,
               flags=flags)

    def snapshot(self) -> dict[str, list[tuple[int, tuple[bytes, ...], bytes]]]:
        return {folder: read_folder(self.dovecot, self.credentials, folder)
                for folder in ("INBOX", "Sent", "Drafts", "Trash")}


@pytest.fixture
def owner_box(dovecot: Any) -> OwnerBox:
    return OwnerBox(dovecot)


def watch_config(rig: RigAssistant, box: OwnerBox, **extra: Any) -> dict[str, Any]:
    password = rig.workdir / "owner-password"
    password.write_text(box.credentials.password)
    password.chmod(0o600)
    return {
        "host": LOOPBACK, "port": rig.account.port, "security": "starttls",
        "username": box.credentials.username, "password_file": str(password),
        "ca_file": str(rig.account.ca_file), "timeout": "10 seconds", **extra,
    }


@pytest.fixture
def watched(rig_assistant: RigAssistant, owner_box: OwnerBox) -> Iterator[RigAssistant]:
    """The rig assistant watching ``owner_box``; checks the owner's mailbox is unchanged
    at the end of the test, whatever it did."""
    rig_assistant.configure({"owners": [{"name": OWNER_NAME, "email": OWNER,
                                         "watch": watch_config(rig_assistant, owner_box)}]})
    yield rig_assistant


def kinds(rig: RigAssistant) -> list[str]:
    return [str(m["X-Mailhelper-Action"]) for m in rig.sent()]


def reply(from_: str, to: str, subject: str, body: str, answering: str, date: str,
          **extra: Any) -> bytes:
    return make_message(from_, to, subject, body, in_reply_to=answering,
                        references=answering, date=date, **extra)


def test_a_direct_answer_in_the_owners_inbox_stops_reminders_and_brings_the_thank_you(
        watched: RigAssistant, owner_box: OwnerBox) -> None:
    ask = watched.ask(date=ASK_DATE)
    owner_box.put(make_message(f"{OWNER_NAME} <{OWNER}>", JANE, "Intro to Acme?", "Hi Jane",
                               message_id=ask, date=ASK_DATE), "Sent", "2026-12-07T09:00:00+00:00",
                  flags=(b"\\Seen",))
    watched.poll("2026-12-07T09:05:00+00:00")
    assert kinds(watched) == ["receipt"]
    # Jane clicks Reply, not Reply-all: her answer reaches only Sam's own mailbox. A
    # stranger's mail naming the thread and an unrelated message land there too.
    owner_box.put(reply(JANE, OWNER, "Re: Intro to Acme?", "Yes, of course! Meet Ann.",
                        ask, "Tue, 08 Dec 2026 10:00:00 +0000"),
                  when="2026-12-08T10:00:00+00:00")
    owner_box.put(reply("Mallory <mallory@evil.test>", OWNER, "Re: Intro to Acme?", "Me!",
                        ask, "Tue, 08 Dec 2026 10:30:00 +0000"), when="2026-12-08T10:30:00+00:00")
    owner_box.put(make_message("News <news@shop.test>", OWNER, "Sale", "50% off",
                               date="Tue, 08 Dec 2026 10:40:00 +0000"),
                  when="2026-12-08T10:40:00+00:00")
    before = owner_box.snapshot()
    watched.poll("2026-12-08T11:00:00+00:00")
    [thread] = watched.status()
    assert thread["state"] == "answered"
    watched.poll("2026-12-08T12:30:00+00:00")  # the thank-you draft: 2 hours after the answer
    watched.poll("2026-12-11T10:00:00+00:00")  # past the first reminder's day (10 Dec)
    assert kinds(watched) == ["receipt", "thank_you_draft"]
    assert "Yes, of course" in watched.sent()[1].get_body().get_content()  # type: ignore[union-attr]
    assert owner_box.snapshot() == before


def test_a_thank_you_by_hand_in_sent_cancels_the_draft(
        watched: RigAssistant, owner_box: OwnerBox) -> None:
    ask = watched.ask(date=ASK_DATE)
    watched.poll("2026-12-07T09:05:00+00:00")
    answer = make_message(JANE, [f"{OWNER_NAME} <{OWNER}>", watched.address],
                          "Re: Intro to Acme?", "Yes, happy to.", in_reply_to=ask,
                          references=ask, date="Tue, 08 Dec 2026 10:00:00 +0000")
    watched.deliver(answer)
    watched.poll("2026-12-08T10:00:00+00:00")
    answer_id = str(_parse(answer)["Message-ID"])
    owner_box.put(answer, when="2026-12-08T10:00:00+00:00")  # Reply-all: Sam has it too
    owner_box.put(reply(f"{OWNER_NAME} <{OWNER}>", JANE, "Re: Intro to Acme?",
                        "Thank you so much, Jane!", answer_id, "Tue, 08 Dec 2026 11:00:00 +0000"),
                  "Sent", "2026-12-08T11:00:00+00:00", flags=(b"\\Seen",))
    before = owner_box.snapshot()
    watched.poll("2026-12-08T11:30:00+00:00")
    watched.poll("2026-12-09T12:00:00+00:00")  # the draft was due at 12:00 on the 8th
    assert kinds(watched) == ["receipt"]
    code, out, _ = watched.cli("status")
    assert code == 0
    [ledger] = [line for line in out.splitlines() if line.startswith("Ledger:")]
    assert "thank-yous: 1 sent" in ledger, ledger  # the owner's own thank-you counts as sent
    assert owner_box.snapshot() == before


def test_a_thank_you_by_hand_with_the_assistant_in_cc_cancels_the_draft(
        watched: RigAssistant, owner_box: OwnerBox) -> None:
    ask = watched.ask(date=ASK_DATE)
    watched.poll("2026-12-07T09:05:00+00:00")
    answer = make_message(JANE, [f"{OWNER_NAME} <{OWNER}>", watched.address],
                          "Re: Intro to Acme?", "Yes, happy to.", in_reply_to=ask,
                          references=ask, date="Tue, 08 Dec 2026 10:00:00 +0000")
    watched.deliver(answer)
    watched.poll("2026-12-08T10:00:00+00:00")
    thanks = reply(f"{OWNER_NAME} <{OWNER}>", JANE, "Re: Intro to Acme?", "Thanks, Jane!",
                   str(_parse(answer)["Message-ID"]), "Tue, 08 Dec 2026 11:00:00 +0000",
                   cc=watched.address)
    watched.deliver(thanks)  # the assistant reads it first, in its own inbox
    owner_box.put(thanks, "Sent", flags=(b"\\Seen",))
    before = owner_box.snapshot()
    watched.poll("2026-12-08T11:30:00+00:00")
    watched.poll("2026-12-09T12:00:00+00:00")
    assert kinds(watched) == ["receipt"]
    assert owner_box.snapshot() == before


def test_an_owner_follow_up_in_sent_resets_the_reminder_clock(
        watched: RigAssistant, owner_box: OwnerBox) -> None:
    ask = watched.ask(date=ASK_DATE)
    watched.poll("2026-12-07T09:05:00+00:00")
    owner_box.put(reply(f"{OWNER_NAME} <{OWNER}>", JANE, "Re: Intro to Acme?",
                        "Jane, any news on this?", ask, "Wed, 09 Dec 2026 09:00:00 +0000"),
                  "Sent", "2026-12-09T09:00:00+00:00", flags=(b"\\Seen",))
    before = owner_box.snapshot()
    watched.poll("2026-12-09T10:00:00+00:00")
    watched.poll("2026-12-10T10:00:00+00:00")  # 3 days after the ask: no reminder now
    assert kinds(watched) == ["receipt"]
    watched.poll("2026-12-12T10:00:00+00:00")  # 3 days after the follow-up
    assert kinds(watched) == ["receipt", "follow_up"]
    assert owner_box.snapshot() == before


def test_a_watched_mailbox_that_is_down_does_not_stop_the_assistant(
        rig_assistant: RigAssistant, owner_box: OwnerBox) -> None:
    bad = watch_config(rig_assistant, owner_box)
    (rig_assistant.workdir / "owner-password").write_text("wrong")
    rig_assistant.configure({"owners": [{"name": OWNER_NAME, "email": OWNER, "watch": bad}]})
    rig_assistant.ask(date=ASK_DATE)
    rig_assistant.poll("2026-12-07T09:05:00+00:00")
    assert kinds(rig_assistant) == ["receipt"]
    first = rig_assistant.last_output
    assert "login refused" in first
    code, out, _ = rig_assistant.cli("status", "--json")
    [state] = json.loads(out)["watch"]
    assert state["state"] == "down: login refused" and state["next_try"]
    # The same fault again is not logged again (the retry waits for its time, too).
    rig_assistant.poll("2026-12-07T09:06:00+00:00")
    rig_assistant.poll("2026-12-07T10:30:00+00:00")
    assert "login refused" not in rig_assistant.last_output
    # Fixed: it is read again, and says so once.
    (rig_assistant.workdir / "owner-password").write_text(owner_box.credentials.password)
    rig_assistant.poll("2026-12-07T12:00:00+00:00")
    code, out, _ = rig_assistant.cli("status", "--json")
    assert code == 0
    [state] = json.loads(out)["watch"]
    assert state["state"] == "up"


def test_a_missing_folder_is_reported_and_the_others_are_read(
        rig_assistant: RigAssistant, owner_box: OwnerBox) -> None:
    config = watch_config(rig_assistant, owner_box, folders=["INBOX", "Nowhere"])
    rig_assistant.configure({"owners": [{"name": OWNER_NAME, "email": OWNER, "watch": config}]})
    ask = rig_assistant.ask(date=ASK_DATE)
    rig_assistant.poll("2026-12-07T09:05:00+00:00")
    owner_box.put(reply(JANE, OWNER, "Re: Intro to Acme?", "Sure.", ask,
                        "Tue, 08 Dec 2026 10:00:00 +0000"), when="2026-12-08T10:00:00+00:00")
    rig_assistant.poll("2026-12-08T11:00:00+00:00")
    [thread] = rig_assistant.status()
    assert thread["state"] == "answered"
    code, out, _ = rig_assistant.cli("status")
    assert code == 0
    assert "folder missing (Nowhere)" in out


def test_a_recreated_folder_is_read_again_from_the_oldest_open_thread(
        watched: RigAssistant, owner_box: OwnerBox) -> None:
    # Dates before the machine's clock: the server stamps each APPEND with its arrival now
    # (it refuses a future one), and the first look after a new UIDVALIDITY searches SINCE
    # the day the thread began.
    ask = watched.ask(date="Mon, 06 Jan 2020 09:00:00 +0000")
    watched.poll("2020-01-06T09:05:00+00:00")
    owner_box.put(make_message(f"{OWNER_NAME} <{OWNER}>", "bob@example.net", "Lunch?", "Hi",
                               date="Mon, 06 Jan 2020 12:00:00 +0000"), "Sent")
    watched.poll("2020-01-06T12:05:00+00:00")  # Sent is at UID 1 now
    recreate_folder(watched.dovecot, owner_box.credentials, "Sent", keep_messages=False)
    # The owner's follow-up gets UID 1 again, in the new folder.
    owner_box.put(reply(f"{OWNER_NAME} <{OWNER}>", JANE, "Re: Intro to Acme?", "Any news?",
                        ask, "Wed, 08 Jan 2020 09:00:00 +0000"), "Sent")
    watched.poll("2020-01-08T09:30:00+00:00")
    watched.poll("2020-01-09T10:00:00+00:00")  # 3 days after the ask: no reminder now
    assert kinds(watched) == ["receipt"]
    watched.poll("2020-01-11T10:00:00+00:00")  # 3 days after the follow-up
    assert kinds(watched) == ["receipt", "follow_up"]


def test_check_logs_in_to_the_watched_mailbox(watched: RigAssistant) -> None:
    code, out, _ = watched.cli("check")
    assert code == 0, out
    assert f"watch of {OWNER}" in out
    assert "folder 'INBOX' readable" in out and "folder 'Sent' readable" in out


def _parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed

