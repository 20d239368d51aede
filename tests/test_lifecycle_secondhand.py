"""Answers seen second-hand, end to end (issue 11, item 3): Jane answered Sam alone, and the
assistant learns it only from Sam's own mail, with it in Cc, that quotes her or names her
mail. Through Dovecot and the SMTP sink, with no watch of the owner's mailbox."""

from __future__ import annotations

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
