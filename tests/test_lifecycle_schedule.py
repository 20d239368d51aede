"""Offers, the owner's own follow-ups, tag times, out-of-office replies, mail to the counterpart
and the sending limits, end to end through Dovecot and the SMTP sink on the --now clock."""

from __future__ import annotations

import email
from email.message import EmailMessage
from email.policy import SMTP

from tests.rig.assistant import OWNER, OWNER_NAME, RigAssistant
from tests.rig.mailboxes import make_message
from tests.test_lifecycle import (
    JANE,
    JANE_EMAIL,
    Walk,
    addresses,
    at,
    header_date,
    kinds,
    text_of,
)

SAM = f"{OWNER_NAME} <{OWNER}>"
BOB = "Bob Lee <bob@example.net>"
BOB_EMAIL = "bob@example.net"


def plus(walk: Walk, tag: str) -> str:
    return walk.assistant.replace("@", f"+{tag}@")


# -- 4. offers ------------------------------------------------------------------------------


def test_offer_forwarded_to_the_plus_address(rig_assistant: RigAssistant) -> None:
    """Sam forwards Bob's offer (as an attached message) to helper+offer@: reminders at 1 and 4
    days; Sam's answer to Bob with the assistant in Cc settles it."""
    walk = Walk(rig_assistant)
    offer_id = "<offer-1@example.net>"
    original = make_message(BOB, SAM, "Help with the move",
                            "Sam, I have a van on Saturday if that helps. Bob",
                            message_id=offer_id, date=header_date(at("2026-12-06 18:00")))
    forward = EmailMessage()
    forward["From"], forward["To"] = SAM, plus(walk, "offer")
    forward["Subject"] = "Fwd: Help with the move"
    forward["Date"] = header_date(at("2026-12-07 09:00"))
    forward["Message-ID"] = "<fwd-1@example.com>"
    forward.set_content("See below.")
    forward.add_attachment(email.message_from_bytes(original, policy=SMTP))
    walk.rig.deliver(forward.as_bytes(policy=SMTP))
    [receipt] = walk.poll(at("2026-12-07 09:00"))
    assert str(receipt["Subject"]) == "Tracking Bob Lee's offer: “Help with the move”"
    assert "I'll remind you on Tue 8 Dec, 09:00" in " ".join(text_of(receipt).split())
    state = walk.status()
    assert (state["kind"], state["counterparts"], state["next_action"]) == (
        "offer", [BOB_EMAIL], {"kind": "offer_follow_up", "due": "2026-12-08T09:00:00+00:00"})
    walk.quiet(at("2026-12-08 08:59"))
    [first] = walk.poll(at("2026-12-08 09:00"))
    assert kinds([first]) == ["offer_follow_up"] and "what would help" in str(first["Subject"])
    assert walk.status()["next_action"]["due"] == "2026-12-11T09:00:00+00:00"
    walk.quiet(at("2026-12-10 09:00"))
    assert kinds(walk.poll(at("2026-12-11 09:00"))) == ["offer_follow_up"]
    walk.deliver(SAM, BOB, "Re: Help with the move", "Bob, yes please: the van at 10?",
                 at("2026-12-11 12:00"), cc=walk.assistant, in_reply_to=offer_id,
                 references=offer_id)
    walk.quiet(at("2026-12-11 12:00"), at("2026-12-15 09:00"), at("2026-12-30 09:00"))
    state = walk.status()
    assert (state["state"], state["next_action"]) == ("answered", None)
    walk.check_sent_folder()


def test_offer_by_subject_tag_answered_by_the_owner(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    offer_id = "<offer-2@example.net>"
    walk.deliver(SAM, BOB, "Re: Help with the move [offer]", "Thanks Bob! Let me check.",
                 at("2026-12-07 09:00"), cc=walk.assistant, in_reply_to=offer_id,
                 references=offer_id)
    [receipt] = walk.poll(at("2026-12-07 09:00"))
    state = walk.status()
    assert (state["kind"], state["subject"], state["next_action"]["due"]) == (
        "offer", "Help with the move", "2026-12-08T09:00:00+00:00")
    assert "[offer]" not in str(receipt["Subject"])
    [first] = walk.poll(at("2026-12-08 09:00"))
    assert kinds([first]) == ["offer_follow_up"]
    # Sam writes to Bob in the same thread with the assistant in Cc: the offer is answered.
    walk.deliver(SAM, BOB, "Re: Help with the move", "Bob: could you bring the van at 10?",
                 at("2026-12-09 10:00"), cc=walk.assistant, in_reply_to=offer_id,
                 references=offer_id)
    walk.quiet(at("2026-12-09 10:00"), at("2026-12-11 09:00"))
    assert walk.status()["state"] == "answered"
    assert kinds(rig_assistant.sent()) == ["receipt", "offer_follow_up"]


# -- 5. the owner follows up ----------------------------------------------------------------


def test_owners_own_follow_up_restarts_the_clock(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    ask_id = walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    walk.deliver(SAM, JANE, "Re: Intro to Acme?", "Jane, just bumping this up.",
                 at("2026-12-09 15:00"), cc=walk.assistant, in_reply_to=ask_id,
                 references=ask_id)
    walk.quiet(at("2026-12-09 15:00"))
    assert "reminders count from now" in walk.log
    state = walk.status()
    assert (state["state"], state["next_action"]) == (
        "open", {"kind": "follow_up", "due": "2026-12-12T15:00:00+00:00"})
    walk.quiet(at("2026-12-10 09:00"), at("2026-12-12 14:59"))
    [first] = walk.poll(at("2026-12-12 15:00"))
    assert kinds([first]) == ["follow_up"]
    assert walk.status()["next_action"]["due"] == "2026-12-16T15:00:00+00:00"
    walk.check_sent_folder()


# -- 6. a time in the tag --------------------------------------------------------------------


def test_plus_address_time_replaces_the_first_follow_up(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    walk.deliver(SAM, JANE, "Intro to Acme?", "Could you introduce me?",
                 at("2026-12-07 09:00"), cc=plus(walk, "5d"))
    [receipt] = walk.poll(at("2026-12-07 09:00"))
    assert "I'll remind you on Sat 12 Dec, 09:00" in " ".join(text_of(receipt).split())
    assert walk.status()["next_action"] == {"kind": "follow_up",
                                            "due": "2026-12-12T09:00:00+00:00"}
    walk.quiet(at("2026-12-10 09:00"), at("2026-12-12 08:59"))
    assert kinds(walk.poll(at("2026-12-12 09:00"))) == ["follow_up"]


def test_first_line_remind_monday_9am(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    walk.deliver(SAM, JANE, "Intro to Acme?", "remind monday 9am\n\nHi Jane, could you...",
                 at("2026-12-09 16:00"), cc=walk.assistant)
    [receipt] = walk.poll(at("2026-12-09 16:00"))
    assert "I'll remind you on Mon 14 Dec, 09:00" in " ".join(text_of(receipt).split())
    assert walk.status()["next_action"]["due"] == "2026-12-14T09:00:00+00:00"
    walk.quiet(at("2026-12-12 16:00"))  # the default 3-day reminder is gone
    assert kinds(walk.poll(at("2026-12-14 09:00"))) == ["follow_up"]


# -- 7. out of office -----------------------------------------------------------------------


def test_out_of_office_is_no_reply_and_moves_follow_ups(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    ask_id = walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    walk.deliver(JANE, SAM, "Automatic reply: Intro to Acme?",
                 "I am out of the office and back on 15 December.", at("2026-12-07 09:01"),
                 in_reply_to=ask_id, references=ask_id,
                 extra_headers={"Auto-Submitted": "auto-replied"})
    walk.quiet(at("2026-12-07 09:05"))
    assert "away until 2026-12-15" in walk.log
    state = walk.status()
    assert (state["state"], state["next_action"]) == (
        "open", {"kind": "follow_up", "due": "2026-12-16T09:00:00+00:00"})
    walk.quiet(at("2026-12-10 09:00"), at("2026-12-14 09:00"), at("2026-12-16 08:59"))
    assert kinds(walk.poll(at("2026-12-16 09:00"))) == ["follow_up"]
    assert all(JANE_EMAIL not in addresses(m, "To") for m in rig_assistant.sent())


# -- 8. mail to the counterpart ------------------------------------------------------------


def test_nudge_counterpart_sends_a_polite_follow_up_in_thread(
    rig_assistant: RigAssistant,
) -> None:
    rig_assistant.configure({"schedules": {"ask": {"nudge_counterpart": ["5 days"]}}})
    walk = Walk(rig_assistant)
    ask_id = walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    assert kinds(walk.poll(at("2026-12-10 09:00"))) == ["follow_up"]
    [nudge] = walk.poll(at("2026-12-12 09:00"))
    assert kinds([nudge]) == ["nudge"]
    assert addresses(nudge, "To") == [JANE_EMAIL] and addresses(nudge, "Cc") == [OWNER]
    assert addresses(nudge, "From") == [walk.assistant]
    assert addresses(nudge, "Reply-To")[0] == OWNER
    assert (nudge["In-Reply-To"], nudge["References"]) == (ask_id, ask_id)
    assert nudge["Subject"] == "Re: Intro to Acme?"
    assert "Jane" in text_of(nudge)
    # Jane answers the nudge: that is the reply.
    walk.reply(str(nudge["Message-ID"]), at("2026-12-12 10:00"))
    walk.quiet(at("2026-12-12 10:00"))
    assert walk.status()["state"] == "answered"
    walk.check_sent_folder()


def test_thank_you_mode_send_thanks_the_counterpart_directly(
    rig_assistant: RigAssistant,
) -> None:
    rig_assistant.configure({"schedules": {"thank_you": {"mode": "send", "after": "2 hours"}}})
    walk = Walk(rig_assistant)
    ask_id = walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    reply_id = walk.reply(ask_id, at("2026-12-08 10:00"))
    walk.quiet(at("2026-12-08 10:00"), at("2026-12-08 11:59"))
    [thanks] = walk.poll(at("2026-12-08 12:00"))
    assert kinds([thanks]) == ["thank_you"]
    assert addresses(thanks, "To") == [JANE_EMAIL] and addresses(thanks, "Cc") == [OWNER]
    assert thanks["In-Reply-To"] == reply_id
    walk.quiet(at("2026-12-09 12:00"))
    assert walk.status()["next_action"] is None
    walk.check_sent_folder()


# -- 9. limits ------------------------------------------------------------------------------


def test_per_recipient_cap_holds_mail_until_the_next_day(rig_assistant: RigAssistant) -> None:
    rig_assistant.configure({
        "sending": {"max_per_recipient_per_day": 1},
        "schedules": {"ask": {"nudge_counterpart": ["1 day"]}},
    })
    walk = Walk(rig_assistant)
    walk.ask(at("2026-12-07 09:00"), subject="Intro to Acme?")
    walk.ask(at("2026-12-07 09:05"), subject="Coffee next week?")
    walk.poll(at("2026-12-07 09:05"))
    [nudge] = walk.poll(at("2026-12-08 09:10"))
    assert kinds([nudge]) == ["nudge"] and nudge["Subject"] == "Re: Intro to Acme?"
    assert "held" in walk.log and "it goes at 2026-12-09T09:10+00:00" in walk.log
    held = walk.status(2)["next_action"]
    assert held == {"kind": "nudge", "due": "2026-12-08T09:05:00+00:00"}, "held, not dropped"
    # Held until the day since the first nudge is up (09:10), then sent at the next poll.
    walk.quiet(at("2026-12-08 12:00"), at("2026-12-09 09:09"))
    [later] = walk.poll(at("2026-12-09 09:10"))
    assert later["Subject"] == "Re: Coffee next week?"
    assert walk.status(2)["next_action"]["kind"] == "follow_up"
    walk.check_sent_folder()


def test_hourly_cap_holds_mail_for_the_next_hour(rig_assistant: RigAssistant) -> None:
    rig_assistant.configure({"sending": {"max_per_hour": 2}})
    walk = Walk(rig_assistant)
    for number, subject in enumerate(("One?", "Two?", "Three?")):
        walk.ask(at(f"2026-12-07 09:0{number}"), subject=subject)
    assert len(walk.poll(at("2026-12-07 09:05"))) == 2
    walk.quiet(at("2026-12-07 09:30"))
    [third] = walk.poll(at("2026-12-07 10:06"))
    assert kinds([third]) == ["receipt"] and "Three?" in str(third["Subject"])
    walk.check_sent_folder()


def test_nothing_goes_to_an_address_outside_the_owners_thread(
    rig_assistant: RigAssistant,
) -> None:
    """Jane's answer names other people (Reply-To, Cc) and a stranger writes in the thread:
    the thank-you and nudges still go to Jane alone, with the owner in copy."""
    rig_assistant.configure({"schedules": {"thank_you": {"mode": "send"},
                                           "ask": {"nudge_counterpart": ["1 day"]}}})
    walk = Walk(rig_assistant)
    ask_id = walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    assert kinds(walk.poll(at("2026-12-08 09:00"))) == ["nudge"]
    walk.deliver("Mallory <mallory@example.net>", SAM, "Re: Intro to Acme?", "Buy my course",
                 at("2026-12-08 09:30"), cc=[walk.assistant, "list@example.net"],
                 in_reply_to=ask_id, references=ask_id,
                 extra_headers={"Reply-To": "spam@example.net"})
    walk.reply(ask_id, at("2026-12-08 10:00"),
               cc=[walk.assistant, "colleague@example.org"],
               extra_headers={"Reply-To": "other@example.org"})
    walk.poll(at("2026-12-08 10:00"))
    walk.poll(at("2026-12-08 13:00"))
    assert "thank_you" in kinds(rig_assistant.sent())
    for envelope in rig_assistant.sink.envelopes():
        assert set(envelope.rcpt_tos) <= {OWNER, JANE_EMAIL}, envelope.rcpt_tos
    for message in rig_assistant.sent():
        people = {a for h in ("To", "Cc", "Reply-To") for a in addresses(message, h)}
        assert people <= {OWNER, JANE_EMAIL, walk.assistant}, people


def test_an_inline_forwarded_offer_is_answered_by_the_owners_reply_to_the_original(
        rig_assistant: RigAssistant) -> None:
    """The assistant never saw Bob's own mail (an inline forward carries no Message-ID), so
    Sam's reply to it, the assistant in Cc, is matched by subject and Bob: the offer is
    answered, and no new ask to Bob is made of it."""
    walk = Walk(rig_assistant)
    walk.deliver(SAM, plus(walk, "offer"), "Fwd: Help with the move",
                 "---------- Forwarded message ---------\n"
                 f"From: {BOB}\nDate: Sun, 6 Dec 2026 at 18:00\nSubject: Help with the move\n"
                 f"To: {SAM}\n\nSam, I have a van on Saturday if that helps. Bob\n",
                 at("2026-12-07 09:00"))
    assert kinds(walk.poll(at("2026-12-07 09:00"))) == ["receipt"]
    walk.deliver(SAM, BOB, "Re: Help with the move", "Bob, yes please: Saturday at 10?",
                 at("2026-12-07 12:00"), cc=walk.assistant,
                 in_reply_to="<never-seen@example.net>", references="<never-seen@example.net>")
    assert walk.poll(at("2026-12-07 12:00")) == []
    [offer] = rig_assistant.status()
    assert (offer["kind"], offer["state"], offer["counterparts"]) == (
        "offer", "answered", [BOB_EMAIL])
    walk.quiet(at("2026-12-08 09:00"), at("2026-12-11 09:00"))  # no reminder after an answer
