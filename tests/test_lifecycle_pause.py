"""Pause and resume (SPEC.md "How a person uses it", 5; issue 12, item 6), end to end through
Dovecot and the SMTP sink: while an owner is paused nothing goes out on the assistant's own
for them; what fell due comes the morning after, one mail per thread."""

from __future__ import annotations

from tests.rig.assistant import OWNER, OWNER_NAME, RigAssistant
from tests.test_lifecycle import Walk, addresses, at, kinds, text_of

BOB = "Bob Lee <bob@example.net>"


def pauses(rig: RigAssistant) -> list[dict[str, str]]:
    code, out, err = rig.cli("status", "--json")
    assert code == 0, err
    import json

    return list(json.loads(out).get("pauses", []))


def test_a_pause_holds_reminders_and_thanks_and_sends_one_mail_per_thread_the_morning_after(
    rig_assistant: RigAssistant,
) -> None:
    walk = Walk(rig_assistant)
    walk.ask(at("2026-12-07 09:00"))
    bob_ask = walk.ask(at("2026-12-07 09:00"), to=BOB, subject="CV review")
    assert kinds(walk.poll(at("2026-12-07 09:00"))) == ["receipt", "receipt"]
    # A new mail to the assistant whose first line is the command.
    walk.deliver(f"{OWNER_NAME} <{OWNER}>", walk.assistant, "Away", "pause 1 week\n\nSam",
                 at("2026-12-08 10:00"))
    [confirmation] = walk.poll(at("2026-12-08 10:00"))
    assert kinds([confirmation]) == ["command_reply"]
    assert addresses(confirmation, "To") == [OWNER]
    assert str(confirmation["Subject"]) == "Paused until Tue 15 Dec, 10:00"
    words = " ".join(text_of(confirmation).split())
    assert "comes on Wed 16 Dec, 09:00, at most one mail per thread" in words
    assert pauses(rig_assistant) == [{
        "owner": OWNER, "since": "2026-12-08T10:00:00+00:00",
        "until": "2026-12-15T10:00:00+00:00", "release": "2026-12-16T09:00:00+00:00"}]
    code, table, _ = rig_assistant.cli("status")
    assert code == 0 and "Paused: sam@example.com until Tue 15 Dec, 10:00" in table

    # Bob answers during the pause: his thank-you draft (due 2 hours later) is held too.
    walk.reply(bob_ask, at("2026-12-09 11:00"), from_=BOB, subject="Re: CV review")
    walk.quiet(at("2026-12-09 11:00"), at("2026-12-09 13:00"),  # the thank-you draft's time
               at("2026-12-10 09:00"),  # Jane's first reminder
               at("2026-12-14 09:00"),  # Jane's second reminder
               at("2026-12-15 10:00"), at("2026-12-16 08:59"))

    # The morning after: one mail per thread. Jane's thread sends its second reminder only
    # (the first is superseded), Bob's its thank-you draft.
    sent = walk.poll(at("2026-12-16 09:00"))
    assert sorted(kinds(sent)) == ["follow_up", "thank_you_draft"]
    [reminder] = [m for m in sent if kinds([m]) == ["follow_up"]]
    assert "Still no reply" in str(reminder["Subject"])
    assert pauses(rig_assistant) == []
    jane = walk.status(1)
    assert jane["next_action"] == {"kind": "closing_note", "due": "2026-12-21T09:00:00+00:00"}
    assert "superseded" in rig_assistant.last_output
    walk.quiet(at("2026-12-16 12:00"), at("2026-12-21 08:59"))
    assert kinds(walk.poll(at("2026-12-21 09:00"))) == ["closing_note"]
    walk.check_sent_folder()


def test_resume_by_reply_ends_the_pause_and_what_it_held_comes_the_next_morning(
    rig_assistant: RigAssistant,
) -> None:
    walk = Walk(rig_assistant)
    walk.ask(at("2026-12-07 09:00"))
    [receipt] = walk.poll(at("2026-12-07 09:00"))
    walk.command(receipt, "Pause until 6 January", at("2026-12-08 10:00"))
    [confirmation] = walk.poll(at("2026-12-08 10:00"))
    # A pause is the owner's, not the thread's: the answer names no thread.
    assert str(confirmation["Subject"]) == "Paused until Wed 6 Jan 2027, 09:00"
    walk.quiet(at("2026-12-10 09:00"), at("2026-12-11 14:00"))
    walk.command(receipt, "resume", at("2026-12-11 15:00"))
    [answer] = walk.poll(at("2026-12-11 15:00"))
    assert kinds([answer]) == ["command_reply"]
    assert "Resumed" in str(answer["Subject"])
    assert "comes on Sat 12 Dec, 09:00" in " ".join(text_of(answer).split())
    walk.quiet(at("2026-12-12 08:59"))
    [reminder] = walk.poll(at("2026-12-12 09:00"))
    assert kinds([reminder]) == ["follow_up"] and "Follow up with Jane" in str(reminder["Subject"])
    # The schedule goes on from the reminder that went: the second keeps its spacing.
    assert walk.status()["next_action"] == {"kind": "follow_up",
                                            "due": "2026-12-16T09:00:00+00:00"}
    # A second resume changes nothing.
    walk.command(receipt, "resume", at("2026-12-12 10:00"))
    [again] = walk.poll(at("2026-12-12 10:00"))
    assert "Nothing changed" in str(again["Subject"])
    walk.check_sent_folder()


def test_a_pause_in_the_past_or_longer_than_a_year_is_refused_with_the_reason(
    rig_assistant: RigAssistant,
) -> None:
    walk = Walk(rig_assistant)
    walk.ask(at("2026-12-07 09:00"))
    [receipt] = walk.poll(at("2026-12-07 09:00"))
    walk.command(receipt, "pause 2 years", at("2026-12-08 10:00"))
    [help_mail] = walk.poll(at("2026-12-08 10:00"))
    assert kinds([help_mail]) == ["help"]
    assert "a pause lasts at most a year" in " ".join(text_of(help_mail).split())
    assert '"resume" ends it sooner' in " ".join(text_of(help_mail).split())
    walk.deliver(f"{OWNER_NAME} <{OWNER}>", walk.assistant, "pause", "pause until 1 December 2026",
                 at("2026-12-08 11:00"))
    [refusal] = walk.poll(at("2026-12-08 11:00"))
    assert kinds([refusal]) == ["help"]
    assert "has already passed" in " ".join(text_of(refusal).split())
    assert pauses(rig_assistant) == []
    assert kinds(walk.poll(at("2026-12-10 09:00"))) == ["follow_up"]


def test_two_owners_on_one_assistant_each_in_their_own_zone(
    rig_assistant: RigAssistant,
) -> None:
    """Sam in New York and Lena in Berlin share one assistant (top-level zone UTC): each one's
    quiet hours, mail times and digest hour are their own, and a pause is one owner's only."""
    lena = "lena@example.de"
    rig_assistant.configure({
        "owners": [
            {"name": OWNER_NAME, "email": OWNER, "timezone": "America/New_York"},
            {"name": "Lena Vogel", "email": lena, "timezone": "Europe/Berlin"},
        ],
        "sending": {"quiet_hours": "20:00-08:00"},
        "schedules": {"digest": {"rrule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=8"}},
    })
    walk = Walk(rig_assistant)
    # Sam at 09:00 in New York (14:00 UTC); Lena at 07:30 in Berlin (06:30 UTC): three days
    # later is 07:30 in Berlin, in her quiet hours, so 08:00 Berlin (07:00 UTC). In UTC it
    # would have been 06:30 UTC, quiet, so 08:00 UTC: an hour late for her.
    walk.deliver(f"Lena Vogel <{lena}>", "Jane Doe <jane@example.org>", "Wohnung",
                 "Hallo Jane, kannst du mir helfen?", at("2026-12-08 06:30"),
                 cc=walk.assistant)
    [lena_receipt] = walk.poll(at("2026-12-08 06:30"))
    walk.ask(at("2026-12-08 14:00"))
    assert addresses(lena_receipt, "To") == [lena]
    assert "I'll remind you on Fri 11 Dec, 08:00" in " ".join(text_of(lena_receipt).split())
    assert lena_receipt["Date"].endswith("+0100")
    [sam_receipt] = walk.poll(at("2026-12-08 14:00"))
    assert "I'll remind you on Fri 11 Dec, 09:00" in " ".join(text_of(sam_receipt).split())
    assert sam_receipt["Date"].endswith("-0500")
    by_owner = {t["subject"]: t["next_action"]["due"] for t in rig_assistant.status()}
    assert by_owner == {"Wohnung": "2026-12-11T07:00:00+00:00",
                        "Intro to Acme?": "2026-12-11T14:00:00+00:00"}

    # Lena pauses until Monday; Sam's reminder still comes.
    walk.deliver(f"Lena Vogel <{lena}>", walk.assistant, "Urlaub", "Pause bis Montag",
                 at("2026-12-10 09:00"))
    [paused] = walk.poll(at("2026-12-10 09:00"))
    assert addresses(paused, "To") == [lena]
    assert str(paused["Subject"]) == "Paused until Mon 14 Dec, 09:00"
    walk.quiet(at("2026-12-11 07:00"))
    [sam_reminder] = walk.poll(at("2026-12-11 14:00"))
    assert addresses(sam_reminder, "To") == [OWNER]
    # Monday: Lena's digest at 08:00 Berlin is held by her pause; it goes at her release
    # (09:00 Berlin, 08:00 UTC) with her reminder. Sam's digest is at 08:00 New York.
    walk.quiet(at("2026-12-14 07:00"))
    released = walk.poll(at("2026-12-14 08:00"))
    assert sorted(kinds(released)) == ["digest", "follow_up"]
    assert all(addresses(m, "To") == [lena] for m in released)
    walk.quiet(at("2026-12-14 12:59"))
    [sam_digest] = walk.poll(at("2026-12-14 13:00"))
    assert kinds([sam_digest]) == ["digest"] and addresses(sam_digest, "To") == [OWNER]
    walk.check_sent_folder()
