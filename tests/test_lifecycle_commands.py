"""Commands by reply (SPEC.md "How a person uses it", 5), end to end through Dovecot and the
SMTP sink: the owner answers one of the assistant's mails with one word on the first line."""

from __future__ import annotations

import re
from email.message import EmailMessage

from tests.rig.assistant import OWNER, OWNER_NAME, RigAssistant
from tests.test_lifecycle import JANE_EMAIL, Walk, addresses, at, kinds, text_of


def answered_ask(walk: Walk) -> tuple[str, str, EmailMessage]:
    """An ask on Mon 7 Dec answered on Wed 9 Dec 11:00: (ask id, reply id, thank-you draft)."""
    ask_id = walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    reply_id = walk.reply(ask_id, at("2026-12-09 11:00"))
    walk.poll(at("2026-12-09 11:00"))
    [draft] = walk.poll(at("2026-12-09 13:00"))
    assert kinds([draft]) == ["thank_you_draft"]
    return ask_id, reply_id, draft


def first_reminder(walk: Walk) -> EmailMessage:
    """An unanswered ask on Mon 7 Dec and its first reminder on Thu 10 Dec 09:00."""
    walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    [reminder] = walk.poll(at("2026-12-10 09:00"))
    assert kinds([reminder]) == ["follow_up"]
    return reminder


def test_done_then_a_return_the_favour_reminder_30_days_later(
    rig_assistant: RigAssistant,
) -> None:
    walk = Walk(rig_assistant)
    _, _, draft = answered_ask(walk)
    command_id = walk.command(draft, "Done, thanks", at("2026-12-09 15:00"))
    [answer] = walk.poll(at("2026-12-09 15:10"))
    assert kinds([answer]) == ["command_reply"] and "Done" in str(answer["Subject"])
    assert answer["In-Reply-To"] == command_id
    state = walk.status()
    assert (state["state"], state["next_action"]) == (
        "done", {"kind": "return_favor", "due": "2027-01-08T15:10:00+00:00"})
    walk.quiet(at("2026-12-20 09:00"), at("2027-01-08 15:09"))
    [favour] = walk.poll(at("2027-01-08 15:10"))
    assert kinds([favour]) == ["return_favor"] and addresses(favour, "To") == [OWNER]
    assert "Jane" in str(favour["Subject"])
    assert walk.status()["next_action"] is None
    walk.quiet(at("2027-03-01 09:00"))
    walk.check_sent_folder()


def test_send_mails_the_thank_you_to_the_counterpart_in_the_thread(
    rig_assistant: RigAssistant,
) -> None:
    walk = Walk(rig_assistant)
    ask_id, reply_id, draft = answered_ask(walk)
    walk.command(draft, "send", at("2026-12-09 14:00"))
    thanks, answer = walk.poll(at("2026-12-09 14:05"))
    assert kinds([thanks, answer]) == ["thank_you", "command_reply"]
    assert addresses(thanks, "From") == [walk.assistant]
    assert addresses(thanks, "To") == [JANE_EMAIL]
    assert addresses(thanks, "Cc") == [OWNER]
    assert addresses(thanks, "Reply-To")[0] == OWNER
    assert thanks["Subject"] == "Re: Intro to Acme?"
    assert thanks["In-Reply-To"] == reply_id
    assert str(thanks["References"]).split() == [ask_id, reply_id]
    envelope = rig_assistant.sink.envelopes()[-2]
    assert sorted(envelope.rcpt_tos) == [JANE_EMAIL, OWNER]
    assert "Sent the draft to jane@example.org" in str(answer["Subject"])
    # One thank-you per thread: a second "send" does not thank twice.
    walk.command(draft, "send", at("2026-12-09 15:00"))
    [again] = walk.poll(at("2026-12-09 15:00"))
    assert kinds([again]) == ["command_reply"]
    assert str(again["Subject"]) == "Nothing sent: “Intro to Acme?”"
    assert "Nothing sent. The thank-you went to jane@example.org on Wed 9 Dec, " in (
        text_of(again))
    assert walk.status()["state"] == "answered"
    walk.check_sent_folder()


def test_send_as_owner_sends_from_the_owner_with_the_assistant_in_cc(
    rig_assistant: RigAssistant,
) -> None:
    rig_assistant.configure({"send_as": "owner"})
    walk = Walk(rig_assistant)
    reminder = first_reminder(walk)
    assert "from your address" in text_of(reminder)
    walk.command(reminder, "send", at("2026-12-10 10:00"))
    nudge, answer = walk.poll(at("2026-12-10 10:00"))
    assert kinds([nudge, answer]) == ["nudge", "command_reply"]
    assert addresses(nudge, "From") == [OWNER]
    assert addresses(nudge, "To") == [JANE_EMAIL]
    assert addresses(nudge, "Cc") == [walk.assistant]
    assert nudge["Reply-To"] is None
    assert nudge["In-Reply-To"] is not None
    assert walk.status()["state"] == "open", "a nudge is no answer"
    walk.check_sent_folder()


def test_snooze_three_days_counts_from_when_the_command_is_read(
    rig_assistant: RigAssistant,
) -> None:
    walk = Walk(rig_assistant)
    reminder = first_reminder(walk)
    walk.command(reminder, "snooze 3 days", at("2026-12-10 10:00"))
    [answer] = walk.poll(at("2026-12-10 11:23"))  # read at 11:23, not sent at 10:00
    assert kinds([answer]) == ["command_reply"]
    assert "Sun 13 Dec, 11:23" in str(answer["Subject"]) + text_of(answer)
    assert walk.status()["next_action"] == {"kind": "follow_up",
                                            "due": "2026-12-13T11:23:00+00:00"}
    walk.quiet(at("2026-12-13 11:22"))
    [second] = walk.poll(at("2026-12-13 11:23"))
    assert kinds([second]) == ["follow_up"] and "Still no reply" in str(second["Subject"])
    walk.check_sent_folder()


def test_snooze_monday(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    reminder = first_reminder(walk)
    walk.command(reminder, "snooze monday", at("2026-12-10 10:00"))
    walk.poll(at("2026-12-10 11:23"))
    assert walk.status()["next_action"] == {"kind": "follow_up",
                                            "due": "2026-12-14T09:00:00+00:00"}
    walk.quiet(at("2026-12-14 08:59"))
    assert kinds(walk.poll(at("2026-12-14 09:00"))) == ["follow_up"]


def test_decline_an_offer_still_drafts_a_thank_you(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    walk.deliver(f"{OWNER_NAME} <{OWNER}>", "Bob Lee <bob@example.net>",
                 "Re: Help with the move", "Thanks Bob, let me think about it.",
                 at("2026-12-07 09:00"), cc=walk.assistant.replace("@", "+offer@"))
    [receipt] = walk.poll(at("2026-12-07 09:00"))
    assert "Tracking Bob Lee's offer" in str(receipt["Subject"])
    walk.command(receipt, "decline", at("2026-12-07 12:00"))
    [answer] = walk.poll(at("2026-12-07 12:00"))
    assert "Declined" in str(answer["Subject"])
    state = walk.status()
    assert (state["kind"], state["state"], state["next_action"]) == (
        "offer", "declined", {"kind": "thank_you_draft", "due": "2026-12-07T14:00:00+00:00"})
    [draft] = walk.poll(at("2026-12-07 14:00"))
    assert "for the offer anyway" in str(draft["Subject"])
    assert walk.status()["next_action"] is None
    walk.quiet(at("2026-12-08 09:00"), at("2026-12-11 09:00"))  # no offer reminders after
    walk.check_sent_folder()


def test_cancel_means_nothing_more_is_ever_sent(rig_assistant: RigAssistant) -> None:
    rig_assistant.configure({"schedules": {"ask": {"nudge_counterpart": ["5 days"]}}})
    walk = Walk(rig_assistant)
    reminder = first_reminder(walk)
    walk.command(reminder, "cancel", at("2026-12-10 10:00"))
    [answer] = walk.poll(at("2026-12-10 10:00"))
    assert kinds([answer]) == ["command_reply"]
    state = walk.status()
    assert (state["state"], state["next_action"]) == ("cancelled", None)
    ask_id = str(walk.rig.folder("INBOX")[0]["Message-ID"])
    walk.reply(ask_id, at("2026-12-11 09:00"))  # a late answer changes nothing
    walk.quiet(at("2026-12-11 09:00"), at("2026-12-12 09:00"), at("2026-12-14 09:00"),
               at("2026-12-21 09:00"), at("2027-02-01 09:00"))
    assert walk.status()["state"] == "cancelled"
    walk.check_sent_folder()


def test_status_command_replies_with_the_digest(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    reminder = first_reminder(walk)
    command_id = walk.command(reminder, "status", at("2026-12-10 10:00"))
    [digest] = walk.poll(at("2026-12-10 10:00"))
    # The reminder's follow-up draft is unsent: the ask is listed with it, numbered.
    assert kinds([digest]) == ["digest"]
    assert str(digest["Subject"]) == "Status: 1 draft to send"
    assert digest["In-Reply-To"] == command_id
    assert "DRAFTS READY TO SEND (1)" in text_of(digest) and "Intro to Acme?" in text_of(digest)
    assert walk.status()["next_action"]["kind"] == "follow_up"
    # A fresh mail saying "status" (no thread) works too.
    walk.deliver(f"{OWNER_NAME} <{OWNER}>", walk.assistant, "status", "status",
                 at("2026-12-10 11:00"))
    assert kinds(walk.poll(at("2026-12-10 11:00"))) == ["digest"]
    walk.check_sent_folder()


def test_help_command(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    reminder = first_reminder(walk)
    walk.command(reminder, "help", at("2026-12-10 10:00"))
    [help_mail] = walk.poll(at("2026-12-10 10:00"))
    assert kinds([help_mail]) == ["help"] and "How to use" in str(help_mail["Subject"])
    # About an open ask: what fits it (no "decline", for offers; no "send": no draft here).
    assert commands_offered(help_mail) == ["done", "snooze 3 days", "cancel", "status", "help"]
    assert walk.status()["next_action"] == {"kind": "follow_up",
                                            "due": "2026-12-14T09:00:00+00:00"}


def test_an_unknown_word_gets_help_and_changes_nothing(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    reminder = first_reminder(walk)
    before = walk.status()
    walk.command(reminder, "frobnicate the widget", at("2026-12-10 10:00"))
    [help_mail] = walk.poll(at("2026-12-10 10:00"))
    assert kinds([help_mail]) == ["help"]
    assert "frobnicate" in str(help_mail["Subject"])
    assert walk.status() == before
    walk.quiet(at("2026-12-14 08:59"))
    assert kinds(walk.poll(at("2026-12-14 09:00"))) == ["follow_up"]
    walk.check_sent_folder()


def test_send_on_a_late_reminder_replans_the_next_one_before_it_goes(
    rig_assistant: RigAssistant,
) -> None:
    """Sam answers reminder 1 with ``send`` only after reminder 2 fell due (Mon 14 Dec 09:00):
    the nudge goes, and reminder 2 keeps the schedule's spacing (4 days) from it (before:
    "Still no reply" in the same second as the nudge it asks for)."""
    walk = Walk(rig_assistant)
    reminder = first_reminder(walk)
    walk.command(reminder, "send", at("2026-12-14 10:00"))
    nudge, answer = walk.poll(at("2026-12-14 10:00"))
    assert kinds([nudge, answer]) == ["nudge", "command_reply"]
    assert addresses(nudge, "To") == [JANE_EMAIL]
    assert walk.status()["next_action"] == {"kind": "follow_up",
                                            "due": "2026-12-18T10:00:00+00:00"}
    walk.quiet(at("2026-12-15 09:00"), at("2026-12-18 09:59"))
    [later] = walk.poll(at("2026-12-18 10:00"))
    assert kinds([later]) == ["follow_up"]
    assert "even after the follow-up that went to Jane on Mon 14 Dec" in " ".join(
        text_of(later).split())
    walk.check_sent_folder()


def test_help_on_a_declined_offer_offers_only_what_fits_its_state(
    rig_assistant: RigAssistant,
) -> None:
    """Help asked in a declined offer's thread lists no "decline" and no "snooze" (before:
    every command, as if nothing were settled); help with no thread still lists them all."""
    walk = Walk(rig_assistant)
    walk.deliver(f"{OWNER_NAME} <{OWNER}>", "Bob Lee <bob@example.net>",
                 "Re: Help with the move", "Thanks Bob, let me think about it.",
                 at("2026-12-07 09:00"), cc=walk.assistant.replace("@", "+offer@"))
    [receipt] = walk.poll(at("2026-12-07 09:00"))
    walk.command(receipt, "decline", at("2026-12-07 12:00"))
    walk.poll(at("2026-12-07 12:00"))
    walk.command(receipt, "help", at("2026-12-07 12:30"))
    [help_mail] = walk.poll(at("2026-12-07 12:30"))
    assert kinds([help_mail]) == ["help"]
    offered = commands_offered(help_mail)
    assert "decline" not in offered and not any(w.startswith("snooze") for w in offered)
    assert {"cancel", "status", "help"} <= set(offered)
    walk.deliver(f"{OWNER_NAME} <{OWNER}>", walk.assistant, "help", "help",
                 at("2026-12-07 13:00"))
    [general] = walk.poll(at("2026-12-07 13:00"))
    assert {"done", "send", "decline", "cancel"} <= set(commands_offered(general))


def commands_offered(mail: EmailMessage) -> list[str]:
    """The commands listed after "Reply with one of these on the first line:" in the text
    part: each on a line of its own indented two spaces ("snooze 3 days" whole)."""
    text = text_of(mail).replace("\r\n", "\n")
    listed = text.split("Reply with one of these on the first line:\n")[1]
    return [re.split(r"\s{2,}", line.strip())[0] for line in listed.split("\n\n")[0].splitlines()
            if re.match(r"  \S", line)]
