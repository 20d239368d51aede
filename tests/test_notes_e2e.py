"""Issue 12, items 4 and 5, end to end: notes to self and repeats. Owner mail delivered to the
real Dovecot, ``poll --once --now`` through the CLI, and what reached the SMTP sink (headers
and envelope) at which time."""

from __future__ import annotations

import email
import json
from email.message import EmailMessage

import pytest

from tests.rig.assistant import OWNER, OWNER_NAME, RigAssistant
from tests.rig.mailboxes import make_message
from tests.test_lifecycle import addresses, at, header_date, kinds, text_of

SAM = f"{OWNER_NAME} <{OWNER}>"
JANE = "Jane Doe <jane@example.org>"
MONDAY = "Mon, 07 Dec 2026 09:00:00 +0000"


def tagged(rig: RigAssistant, tag: str) -> str:
    return rig.address.replace("@", f"+{tag}@")


def flat(text: str) -> str:
    return " ".join(text.split())


def only_to_the_owner(rig: RigAssistant) -> None:
    """Nothing the assistant sent went to anyone but the owner: headers and envelope."""
    for message, envelope in zip(rig.sent(), rig.sink.envelopes(), strict=True):
        assert addresses(message, "To") == [OWNER], message["Subject"]
        assert addresses(message, "Cc") == [] and addresses(message, "Bcc") == []
        assert [r.lower() for r in envelope.rcpt_tos] == [OWNER]


def command(rig: RigAssistant, mail: EmailMessage, word: str, stamp: str) -> None:
    """The owner replies to one of the assistant's mails with ``word`` on the first line."""
    quoted = "\n".join("> " + line for line in text_of(mail).splitlines()[:6])
    mid = str(mail["Message-ID"])
    rig.deliver(make_message(SAM, rig.address, f"Re: {mail['Subject']}",
                             f"{word}\n\nOn Mon, {mail['From']} wrote:\n{quoted}\n",
                             in_reply_to=mid, references=mid, date=header_date(stamp)))


def test_a_note_to_self_comes_back_at_its_time_to_the_owner_alone(
        rig_assistant: RigAssistant) -> None:
    """``To: helper+3days@`` alone was answered "nobody but you and me is on the mail"."""
    note = make_message(SAM, tagged(rig_assistant, "3days"), "Renew the passport",
                        "The forms are at the post office.\nTake two photos.", date=MONDAY)
    rig_assistant.deliver(note)
    rig_assistant.poll(at("2026-12-07 09:00"))
    [receipt] = rig_assistant.sent()
    assert kinds([receipt]) == ["receipt"]
    body = flat(text_of(receipt))
    assert "nobody but you and me" not in body
    # The subject is the receipt's Subject line, not pasted into its sentence (issue 10).
    assert "Got your note: I'll send it back to you on Thu 10 Dec, 09:00." in body
    assert "Renew the passport" in str(receipt["Subject"])
    [thread] = rig_assistant.status()
    assert (thread["kind"], thread["state"], thread["counterparts"]) == ("note", "open", [])
    assert thread["next_action"] == {"kind": "note_reminder",
                                     "due": "2026-12-10T09:00:00+00:00"}

    rig_assistant.poll(at("2026-12-10 08:59"))
    assert kinds(rig_assistant.sent()) == ["receipt"]
    rig_assistant.poll(at("2026-12-10 09:00"))
    assert kinds(rig_assistant.sent()) == ["receipt", "note_reminder"]
    reminder = rig_assistant.sent()[-1]
    note_id = email.message_from_bytes(note)["Message-ID"]
    assert str(reminder["In-Reply-To"]) == note_id  # in the note's own thread
    text = text_of(reminder)
    assert "The forms are at the post office. Take two photos." in flat(text)
    for word in ("done", "snooze 3 days", "cancel"):
        assert f"  {word} " in text

    command(rig_assistant, reminder, "done", at("2026-12-10 10:00"))
    rig_assistant.poll(at("2026-12-10 10:00"))
    assert kinds(rig_assistant.sent())[-1] == "command_reply"
    [thread] = rig_assistant.status()
    assert (thread["state"], thread["next_action"]) == ("done", None)
    rig_assistant.poll(at("2027-02-10 10:00"))  # nothing more, ever
    assert kinds(rig_assistant.sent()) == ["receipt", "note_reminder", "command_reply"]
    only_to_the_owner(rig_assistant)


def test_a_note_without_a_time_comes_back_after_schedules_note_after(
        rig_assistant: RigAssistant) -> None:
    rig_assistant.configure({"schedules": {"note": {"after": "2 days"}}})
    rig_assistant.deliver(make_message(SAM, rig_assistant.address, "Call the plumber",
                                       "About the boiler", cc=SAM, date=MONDAY))
    rig_assistant.poll(at("2026-12-07 09:00"))
    [thread] = rig_assistant.status()
    assert thread["kind"] == "note"
    assert thread["next_action"] == {"kind": "note_reminder",
                                     "due": "2026-12-09T09:00:00+00:00"}
    rig_assistant.poll(at("2026-12-09 09:00"))
    assert kinds(rig_assistant.sent()) == ["receipt", "note_reminder"]
    only_to_the_owner(rig_assistant)


def test_a_weekly_note_reminds_at_each_occurrence_and_stops_on_cancel(
        rig_assistant: RigAssistant) -> None:
    rig_assistant.deliver(make_message(SAM, tagged(rig_assistant, "everymonday9am"),
                                       "Water the plants", "The ferns too.",
                                       date="Wed, 09 Dec 2026 12:00:00 +0000"))
    rig_assistant.poll(at("2026-12-09 12:00"))
    [receipt] = rig_assistant.sent()
    assert "and then every Monday at 09:00" in flat(text_of(receipt))
    [thread] = rig_assistant.status()
    assert thread["next_action"] == {"kind": "note_reminder",
                                     "due": "2026-12-14T09:00:00+00:00"}
    code, table, _ = rig_assistant.cli("status")
    assert code == 0 and "Notes to self (1)" in table
    assert "Mon 14 Dec, 09:00 (repeats every Monday at 09:00)" in table

    rig_assistant.poll(at("2026-12-14 09:05"))
    assert kinds(rig_assistant.sent()) == ["receipt", "note_reminder"]
    rig_assistant.poll(at("2026-12-14 10:00"))  # the same occurrence is never sent twice
    assert kinds(rig_assistant.sent()) == ["receipt", "note_reminder"]
    [thread] = rig_assistant.status()
    assert thread["next_action"]["due"] == "2026-12-21T09:00:00+00:00"

    # done ends this occurrence only: the next one still comes.
    command(rig_assistant, rig_assistant.sent()[-1], "done", at("2026-12-14 10:00"))
    rig_assistant.poll(at("2026-12-14 10:00"))
    answer = rig_assistant.sent()[-1]
    assert kinds([answer]) == ["command_reply"]
    assert "Done for this time. The next reminder is on Mon 21 Dec, 09:00" in flat(text_of(answer))
    [thread] = rig_assistant.status()
    assert thread["state"] == "open"

    rig_assistant.poll(at("2026-12-21 09:00"))
    assert kinds(rig_assistant.sent()) == ["receipt", "note_reminder", "command_reply",
                                           "note_reminder"]
    second = rig_assistant.sent()[-1]
    command(rig_assistant, second, "cancel", at("2026-12-21 09:30"))
    rig_assistant.poll(at("2026-12-21 09:30"))
    [thread] = rig_assistant.status()
    assert (thread["state"], thread["next_action"]) == ("cancelled", None)
    rig_assistant.poll(at("2026-12-28 09:00"))
    rig_assistant.poll(at("2027-01-04 09:00"))
    assert kinds(rig_assistant.sent()) == ["receipt", "note_reminder", "command_reply",
                                           "note_reminder", "command_reply"]
    only_to_the_owner(rig_assistant)
    # Each occurrence its own mail: two Message-IDs, two occurrences.
    reminders = [m for m in rig_assistant.sent() if kinds([m]) == ["note_reminder"]]
    assert len({str(m["Message-ID"]) for m in reminders}) == 2


def test_a_repeating_ask_reminds_the_owner_to_check_in_with_a_draft(
        rig_assistant: RigAssistant) -> None:
    rig_assistant.deliver(make_message(
        SAM, JANE, "Catching up", "Keep in touch every 3 months\n\nHi Jane, lovely to see you!",
        cc=rig_assistant.address, date=MONDAY))
    rig_assistant.poll(at("2026-12-07 09:00"))
    [receipt] = rig_assistant.sent()
    assert ("I'll remind you to check in with Jane every 3 months on the 7th at 09:00, first "
            "on Sun 7 Mar 2027, 09:00, each time with a draft.") in flat(text_of(receipt))
    [thread] = rig_assistant.status()
    assert (thread["kind"], thread["counterparts"]) == ("ask", ["jane@example.org"])
    # No follow-up series for a repeating ask: the next thing is the first check-in.
    assert thread["next_action"] == {"kind": "check_in", "due": "2027-03-07T09:00:00+00:00"}

    rig_assistant.poll(at("2026-12-10 09:00"))
    assert kinds(rig_assistant.sent()) == ["receipt"]
    rig_assistant.poll(at("2027-03-07 09:00"))
    assert kinds(rig_assistant.sent()) == ["receipt", "check_in"]
    check_in = rig_assistant.sent()[-1]
    assert addresses(check_in, "To") == [OWNER]
    draft = "wanted to check in: how are things with you?"
    assert draft in flat(text_of(check_in))
    assert "Catching up" not in flat(text_of(check_in)), "the subject is the Subject line"

    command(rig_assistant, check_in, "send", at("2027-03-07 10:00"))
    rig_assistant.poll(at("2027-03-08 10:00"))
    letter = next(m for m in rig_assistant.sent() if kinds([m]) == ["nudge"])
    assert addresses(letter, "To") == ["jane@example.org"]
    assert draft in flat(text_of(letter))
    [thread] = rig_assistant.status()
    assert thread["state"] == "open"
    assert thread["next_action"] == {"kind": "check_in", "due": "2027-06-07T09:00:00+00:00"}


def test_explain_shows_the_rrule_of_a_repeat_and_null_otherwise(
        rig_assistant: RigAssistant) -> None:
    path = rig_assistant.workdir / "repeat.eml"
    path.write_bytes(make_message(SAM, tagged(rig_assistant, "every-2-weeks"), "Plants", "",
                                  date=MONDAY))
    code, out, _ = rig_assistant.cli("explain", "--json", "--now", at("2026-12-07 09:00"),
                                     str(path))
    reading = json.loads(out)
    assert code == 0
    assert (reading["kind"], reading["repeat"], reading["problem"]) == (
        "note", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;BYHOUR=9;BYMINUTE=0", None)
    assert reading["when"] == "2026-12-21T09:00:00+00:00"
    path.write_bytes(make_message(SAM, JANE, "Intro", "Hi", cc=rig_assistant.address,
                                  date=MONDAY))
    code, out, _ = rig_assistant.cli("explain", "--json", "--now", at("2026-12-07 09:00"),
                                     str(path))
    assert json.loads(out)["repeat"] is None


@pytest.mark.parametrize("point", ["before_send", "after_record", "after_append"])
def test_a_kill_while_sending_an_occurrence_neither_repeats_it_nor_skips_the_next(
        rig_assistant: RigAssistant, point: str) -> None:
    """SPEC.md safety rule 3 for repeats: each occurrence is its own action (its UTC time in
    the key), so a poll SIGKILLed while sending one is followed by exactly that one, once,
    and then the next week's."""
    rig_assistant.deliver(make_message(SAM, tagged(rig_assistant, "every-monday"), "Plants",
                                       "Water them", date=MONDAY))
    rig_assistant.poll(at("2026-12-07 09:00"))
    killed = rig_assistant.poll_process(at("2026-12-14 09:00"),
                                        env={"MAILHELPER_CRASH_AT": f"{point}:1"})
    assert killed.returncode == -9, killed.stderr
    rig_assistant.poll(at("2026-12-14 09:10"))
    rig_assistant.poll(at("2026-12-14 09:20"))
    rig_assistant.poll(at("2026-12-21 09:00"))
    reminders = [m for m in rig_assistant.sent() if kinds([m]) == ["note_reminder"]]
    assert len(reminders) == 2, [m["Date"] for m in reminders]
    assert len({str(m["Message-ID"]) for m in reminders}) == 2
    filed = [m for m in rig_assistant.folder("Sent")
             if str(m["X-Mailhelper-Action"]) == "note_reminder"]
    assert sorted(str(m["Message-ID"]) for m in filed) == sorted(
        str(m["Message-ID"]) for m in reminders)
    [thread] = rig_assistant.status()
    assert thread["next_action"]["due"] == "2026-12-28T09:00:00+00:00"
    only_to_the_owner(rig_assistant)
