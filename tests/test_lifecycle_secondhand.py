"""Answers seen second-hand, end to end (issue 11, item 3): Jane answered Sam alone, and the
assistant learns it only from Sam's own mail, with it in Cc, that quotes her or names her
mail. Through Dovecot and the SMTP sink, with no watch of the owner's mailbox."""

from __future__ import annotations

from email.message import EmailMessage

from tests.rig.assistant import OWNER, OWNER_NAME, RigAssistant
from tests.test_lifecycle import JANE, JANE_EMAIL, Walk, addresses, at, kinds, text_of

SAM = f"{OWNER_NAME} <{OWNER}>"
#: Jane's answer, which reached only Sam's mailbox: a webmail Message-ID, so only the quote
#: (not its domain) can tell the assistant whose it was.
JANES_ANSWER = "<CAJane4nswer0001@mail.gmail.com>"


def sam_answers_jane(walk: Walk, ask_id: str, stamp: str, body: str,
                     answered: str = JANES_ANSWER) -> str:
    """Sam's reply to Jane's answer, the assistant in Cc, threaded under her answer."""
    return walk.deliver(SAM, JANE, "Re: Intro to Acme?", body, stamp, cc=walk.assistant,
                        in_reply_to=answered, references=[ask_id, answered])


def test_a_quoting_reply_answers_the_ask_at_the_quoted_time(rig_assistant: RigAssistant) -> None:
    """Send mode: the quote is Sam's, not Jane's own mail, so the thanks is only a draft."""
    rig_assistant.configure({"schedules": {"thank_you": {"mode": "send"}}})
    walk = Walk(rig_assistant)
    ask_id = walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    sam_answers_jane(walk, ask_id, at("2026-12-08 10:00"),
                     "Thank you so much, Jane!\n\n"
                     "On Tue, 8 Dec 2026 at 09:30, Jane Doe <jane@example.org> wrote:\n"
                     "> Happy to help! I'll write to Priya today.\n>\n> Jane\n")
    walk.quiet(at("2026-12-08 10:00"))
    state = walk.status()
    assert (state["state"], state["next_action"]) == (
        "answered", {"kind": "thank_you_draft", "due": "2026-12-08T11:30:00+00:00"}), \
        "answered when Jane wrote (09:30), and only a draft: the quote is not her own mail"
    [draft] = walk.poll(at("2026-12-08 11:30"))
    assert kinds([draft]) == ["thank_you_draft"] and addresses(draft, "To") == [OWNER]
    assert "Hi Jane," in text_of(draft)
    walk.quiet(at("2026-12-10 09:00"), at("2026-12-14 09:30"), at("2026-12-21 09:00"))
    assert all(JANE_EMAIL not in e.rcpt_tos for e in rig_assistant.sink.envelopes())
    walk.check_sent_folder()


def test_a_reply_outlook_style_quoting_answers_the_ask(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    ask_id = walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    sam_answers_jane(walk, ask_id, at("2026-12-08 10:00"),
                     "Great, thanks!\n\n-----Original Message-----\n"
                     "From: Jane Doe <jane@example.org>\nSent: Tuesday, December 8, 2026 9:30 AM\n"
                     f"To: {SAM}\nSubject: Re: Intro to Acme?\n\nHappy to help!\n")
    walk.quiet(at("2026-12-08 10:00"))
    assert walk.status()["state"] == "answered"
    assert kinds(walk.poll(at("2026-12-08 11:30"))) == ["thank_you_draft"]
    walk.quiet(at("2026-12-10 09:00"), at("2026-12-14 09:30"))


def test_references_to_unseen_mail_from_janes_domain_answer_the_ask(
    rig_assistant: RigAssistant,
) -> None:
    """No quote at all (Sam cut it), but his reply answers a message from Jane's domain that
    the assistant never saw: hers."""
    walk = Walk(rig_assistant)
    ask_id = walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    sam_answers_jane(walk, ask_id, at("2026-12-08 10:00"), "Thank you so much, Jane!",
                     answered="<reply-77.jane@example.org>")
    walk.quiet(at("2026-12-08 10:00"))
    state = walk.status()
    assert (state["state"], state["next_action"]) == (
        "answered", {"kind": "thank_you_draft", "due": "2026-12-08T12:00:00+00:00"})
    assert kinds(walk.poll(at("2026-12-08 12:00"))) == ["thank_you_draft"]
    walk.quiet(at("2026-12-10 09:00"), at("2026-12-14 09:30"))


def test_a_plain_follow_up_only_resets_the_reminder_clock(rig_assistant: RigAssistant) -> None:
    """Sam writes again under his own ask, nothing quoted: the ask stays open and the first
    reminder counts from his mail (three days after 8 Dec 10:00)."""
    walk = Walk(rig_assistant)
    ask_id = walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    walk.deliver(SAM, JANE, "Re: Intro to Acme?", "Any news, Jane?", at("2026-12-08 10:00"),
                 cc=walk.assistant, in_reply_to=ask_id, references=ask_id)
    walk.quiet(at("2026-12-08 10:00"))
    state = walk.status()
    assert (state["state"], state["next_action"]) == (
        "open", {"kind": "follow_up", "due": "2026-12-11T10:00:00+00:00"})
    walk.quiet(at("2026-12-11 09:59"))
    assert kinds(walk.poll(at("2026-12-11 10:00"))) == ["follow_up"]


def test_a_quote_of_a_stranger_answers_nothing(rig_assistant: RigAssistant) -> None:
    """Sam quotes Bob, who was never asked, and answers Bob's mail from Bob's domain: the ask
    to Jane stays open, and nobody new is ever written to."""
    walk = Walk(rig_assistant)
    ask_id = walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    sam_answers_jane(walk, ask_id, at("2026-12-08 10:00"),
                     "Jane, see what Bob says below.\n\n"
                     "On Tue, 8 Dec 2026 at 09:30, Bob Stone <bob@elsewhere.test> wrote:\n"
                     "> Jane will know. Ask her.\n",
                     answered="<bob-1@elsewhere.test>")
    walk.quiet(at("2026-12-08 10:00"))
    state = walk.status()
    assert (state["state"], state["next_action"]) == (
        "open", {"kind": "follow_up", "due": "2026-12-11T10:00:00+00:00"})
    assert kinds(walk.poll(at("2026-12-11 10:00"))) == ["follow_up"]
    rcpts = {r for e in rig_assistant.sink.envelopes() for r in e.rcpt_tos}
    assert rcpts == {OWNER}


# -- a forward of Jane's answer from her private address --------------------------------------

JANE_PRIVATE = "jane.doe.home@gmail.test"


def sam_forwards_janes_private_answer(walk: Walk, stamp: str, written: str,
                                      references: str | list[str] | None = None) -> str:
    body = ("FYI, Jane answered from home.\n\n---------- Forwarded message ---------\n"
            f"From: Jane Doe <{JANE_PRIVATE}>\nDate: {written}\n"
            f"Subject: Re: Intro to Acme?\nTo: {SAM}\n\nHappy to help! I'll write to Priya.\n")
    return walk.deliver(SAM, walk.assistant, "Fwd: Re: Intro to Acme?", body, stamp,
                        references=references)


def test_a_forward_from_janes_other_address_answers_her_ask_without_a_new_thread(
    rig_assistant: RigAssistant,
) -> None:
    """Matched by the original's "Re:" subject and Jane's name; her private address is kept
    for matching only: the thank-you (send mode) is a draft, and nothing ever goes there."""
    rig_assistant.configure({"schedules": {"thank_you": {"mode": "send"}}})
    walk = Walk(rig_assistant)
    walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    sam_forwards_janes_private_answer(walk, at("2026-12-08 10:00"), "Tue, Dec 8, 2026 at 9:30 AM")
    walk.quiet(at("2026-12-08 10:00"))
    assert [t["id"] for t in rig_assistant.status()] == [1], "no new ask to the other address"
    state = walk.status()
    assert (state["state"], state["next_action"]["kind"]) == ("answered", "thank_you_draft")
    [draft] = walk.poll(at("2026-12-08 12:00"))
    assert kinds([draft]) == ["thank_you_draft"] and addresses(draft, "To") == [OWNER]
    assert JANE_PRIVATE not in text_of(draft)
    walk.command(draft, "send", at("2026-12-08 13:00"))
    thanks, _ = walk.poll(at("2026-12-08 13:00"))
    assert addresses(thanks, "To") == [JANE_EMAIL]
    walk.quiet(at("2026-12-10 09:00"), at("2026-12-14 09:30"), at("2026-12-21 09:00"))
    rcpts = {r for e in rig_assistant.sink.envelopes() for r in e.rcpt_tos}
    assert JANE_PRIVATE not in rcpts and rcpts <= {OWNER, JANE_EMAIL}
    walk.check_sent_folder()


def test_a_forward_from_an_unknown_namesake_of_nobody_starts_a_new_ask(
    rig_assistant: RigAssistant,
) -> None:
    """The same "Re:" subject from someone whose name is not a counterpart's: no match, the
    forward is a new ask as before, and Jane's ask stays open."""
    walk = Walk(rig_assistant)
    walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    body = ("Can you help too?\n\n---------- Forwarded message ---------\n"
            "From: Bob Stone <bob@elsewhere.test>\nDate: Tue, Dec 8, 2026 at 9:30 AM\n"
            f"Subject: Re: Intro to Acme?\nTo: {SAM}\n\nNot me, sorry.\n")
    walk.deliver(SAM, walk.assistant, "Fwd: Re: Intro to Acme?", body, at("2026-12-08 10:00"))
    walk.poll(at("2026-12-08 10:00"))
    assert walk.status()["state"] == "open"
    assert len(rig_assistant.status()) == 2


def test_a_forward_as_attachment_matches_by_the_originals_references(
    rig_assistant: RigAssistant,
) -> None:
    """Jane changed the subject in her answer from home; the attached original's References
    still name Sam's ask, and her name is a counterpart's."""
    walk = Walk(rig_assistant)
    ask_id = walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    original = EmailMessage()
    original["From"] = f"Jane Doe <{JANE_PRIVATE}>"
    original["To"] = SAM
    original["Subject"] = "Acme intro, from home"
    original["Date"] = "Tue, 08 Dec 2026 09:30:00 +0000"
    original["Message-ID"] = "<home-1@gmail.test>"
    original["In-Reply-To"] = ask_id
    original["References"] = ask_id
    original.set_content("Happy to help! I'll write to Priya.")
    forward = EmailMessage()
    forward["From"] = SAM
    forward["To"] = walk.assistant
    forward["Subject"] = "Fwd: Acme intro, from home"
    forward["Date"] = "Tue, 08 Dec 2026 10:00:00 +0000"
    forward["Message-ID"] = "<fwd-1@example.com>"
    forward.set_content("FYI, from Jane.")
    forward.add_attachment(original)
    rig_assistant.deliver(forward)
    walk.quiet(at("2026-12-08 10:00"))
    assert [t["id"] for t in rig_assistant.status()] == [1], "no new ask"
    assert walk.status()["state"] == "answered"
    assert kinds(walk.poll(at("2026-12-08 12:00"))) == ["thank_you_draft"]
    walk.quiet(at("2026-12-10 09:00"), at("2026-12-14 09:30"))
    rcpts = {r for e in rig_assistant.sink.envelopes() for r in e.rcpt_tos}
    assert rcpts == {OWNER}
