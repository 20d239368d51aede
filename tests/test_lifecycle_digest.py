"""A digest to act on and to look at (issue 10, item 6), end to end through Dovecot and the
SMTP sink: the digest lists unsent drafts and answered threads with numbers, a reply with
``send 1`` / ``snooze 2 3 days`` acts on those items, and the figures are the owner's own."""

from __future__ import annotations

import re
from email.message import EmailMessage

from tests.rig.assistant import OWNER, OWNER_NAME, RigAssistant
from tests.test_lifecycle import JANE_EMAIL, Walk, addresses, at, html_of, kinds, text_of
from tests.test_lifecycle_tap import tap

SAM = f"{OWNER_NAME} <{OWNER}>"
BOB = "Bob Lee <bob@example.net>"


def flat(text: str) -> str:
    return " ".join(text.split())


def status(walk: Walk, stamp: str) -> EmailMessage:
    """The owner asks for the digest now, in a fresh mail."""
    walk.deliver(SAM, walk.assistant, "status please", "status", stamp)
    [digest] = walk.poll(stamp)
    assert kinds([digest]) == ["digest"]
    return digest


def two_asks(walk: Walk) -> None:
    """Mon 7 Dec: an ask to Jane and one to Bob (who is expected to say yes twice over);
    Jane answers on Wed; on Thu both have a draft waiting: the thank-you, the follow-up."""
    ask_id = walk.ask(at("2026-12-07 09:00"))
    walk.deliver(SAM, BOB, "Q4 plan", "expect 2\nBob, could you look over the Q4 plan?",
                 at("2026-12-07 09:05"), cc=walk.assistant)
    walk.poll(at("2026-12-07 09:05"))
    walk.reply(ask_id, at("2026-12-09 11:00"))
    walk.poll(at("2026-12-09 11:00"))
    assert kinds(walk.poll(at("2026-12-09 13:00"))) == ["thank_you_draft"]
    assert kinds(walk.poll(at("2026-12-10 09:05"))) == ["follow_up"]


def test_the_digest_numbers_the_drafts_and_a_reply_acts_on_them(
    rig_assistant: RigAssistant,
) -> None:
    walk = Walk(rig_assistant)
    two_asks(walk)
    digest = status(walk, at("2026-12-10 10:00"))
    # Before: "Status: 1 open ask", the answered ask and both drafts left out.
    assert str(digest["Subject"]) == "Status: 2 drafts to send"
    text = flat(text_of(digest))
    assert ("DRAFTS READY TO SEND (2) 1. Jane Doe: “Intro to Acme?”, your thank-you is "
            "drafted (Jane answered Wed 9 Dec) send 1 · done 1 · cancel 1 2. Bob Lee: "
            "“Q4 plan”, your follow-up is drafted") in text
    assert "send 2 · done 2 · snooze 2 3 days · cancel 2" in text
    assert "WAITING FOR AN ANSWER" not in text  # empty sections are left out

    walk.command(digest, "send 1\nsnooze 2 3 days\ndone 7\nfrobnicate 2",
                 at("2026-12-10 10:30"))
    thanks, answer = walk.poll(at("2026-12-10 10:30"))
    assert kinds([thanks, answer]) == ["thank_you", "command_reply"]
    assert addresses(thanks, "To") == [JANE_EMAIL]
    said = flat(text_of(answer))
    # A short letter under the digest's own subject, one line per command, in words.
    assert str(answer["Subject"]) == "Re: Status: 2 drafts to send"
    assert said.startswith("Hi Sam, send 1: sent your thank-you to Jane Doe. ")
    assert "snooze 2 3 days: snoozed until Sun 13 Dec, 10:30. " in said
    assert "done 7: that digest has items 1 to 2, so nothing was done. " in said
    assert "frobnicate 2: not a command I know (send, done, " in said
    assert "jane@example.org" not in said and '"' not in said
    assert walk.status(2)["next_action"] == {"kind": "follow_up",
                                             "due": "2026-12-13T10:30:00+00:00"}
    assert walk.status(1)["state"] == "answered"
    # The same numbers by tap, on the same digest: done 1.
    tap(walk, digest, "done 1", at("2026-12-10 11:00"))
    [done] = walk.poll(at("2026-12-10 11:00"))
    assert kinds([done]) == ["command_reply"]
    assert str(done["Subject"]) == "Re: Status: 2 drafts to send"  # the tap's token dropped
    assert "done 1: done, no more reminders on this thread." in flat(text_of(done))
    assert walk.status(1)["state"] == "done"
    # send 1 again (the thank-you went already): nothing goes twice.
    walk.command(digest, "send 1", at("2026-12-10 11:30"))
    assert kinds(walk.poll(at("2026-12-10 11:30"))) == ["command_reply"]
    walk.check_sent_folder()


def test_the_digest_figures_and_its_chart(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    two_asks(walk)
    digest = status(walk, at("2026-12-10 10:00"))
    text = text_of(digest).replace("\r\n", "\n")
    assert "THIS WEEK (from Mon 7 Dec): 2 asks, 1 answered ▇░ 1/2" in text
    assert "ALL TIME: 2 asks, 1 answered ▇░ 1/2" in text
    assert "Asks made and answered, last 8 weeks:" in text
    assert "  7 Dec   ▇░ 1/2" in text and "  19 Oct  · 0/0" in text
    assert "Answered before a follow-up: 1; after one: 0" in text
    assert "Time to a first answer: same day 0 · 1–3 days 1 · later 0 · none yet 1" in text
    assert "You expected 2 yeses and got 0 answers:" in text
    assert "Mon 7 Dec, “Q4 plan”: expected 2, got 0" in text
    assert flat(text).endswith("Ask away. — Sam's assistant Reply with one command per line, "
                               "each naming an item by its number: \"send 1\", \"done 2\", "
                               "\"snooze 2 3 days\", \"cancel 1\". Or on the "
                               "first line: status get a digest of everything open, right away "
                               "help how I work: all the commands and tags")
    assert "1 of your 2 asks was answered" in flat(text)
    html = html_of(digest)
    # A chart of table cells: one green cell (answered), one grey (not yet), no images and
    # nothing fetched from elsewhere; every style inline.
    assert html.count("background:#2da44e;") == 1 and html.count("background:#d0d7de;") == 1
    assert "<img" not in html and "<style" not in html and "<link" not in html
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", html)
    # expect 2 was no tag: the ask was read and tracked as usual, its excerpt without it.
    assert walk.status(2)["kind"] == "ask"


def test_the_closing_line_never_cheers_over_silence(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    digest = status(walk, at("2026-12-08 10:00"))
    text = flat(text_of(digest))
    assert "Your ask has no answer yet. A short, specific follow-up is often all it takes." in (
        text)
    assert "Ask away" not in text and "Ask away" not in html_of(digest)
    assert "1. Jane Doe: “Intro to Acme?”, asked Mon 7 Dec" in text
    # A week on, with nothing asked since: the period says so.
    walk.quiet(at("2026-12-10 08:59"))
    walk.poll(at("2026-12-10 09:00"))
    walk.poll(at("2026-12-14 09:00"))
    later = flat(text_of(status(walk, at("2026-12-15 10:00"))))
    assert "THIS WEEK (from Mon 14 Dec): no asks" in later
    assert "ALL TIME: 1 ask, 0 answered" in later
    assert "No asks this week. Your ask has no answer yet." in later


def test_a_declined_offers_thank_you_draft_is_listed_until_sent(
    rig_assistant: RigAssistant,
) -> None:
    """``decline`` is what makes an offer's thank-you draft: the digest and ``status`` list it
    under drafts to send (before: left out, Bob under "Nothing to do"), until it is sent."""
    walk = Walk(rig_assistant)
    walk.deliver(SAM, BOB, "Re: Help with the move", "Thanks Bob, let me think about it.",
                 at("2026-12-07 09:00"), cc=walk.assistant.replace("@", "+offer@"))
    [receipt] = walk.poll(at("2026-12-07 09:00"))
    walk.command(receipt, "decline", at("2026-12-07 12:00"))
    assert kinds(walk.poll(at("2026-12-07 12:00"))) == ["command_reply"]
    assert kinds(walk.poll(at("2026-12-07 14:00"))) == ["thank_you_draft"]
    code, table, _ = rig_assistant.cli("status")
    assert code == 0
    assert table.index("Drafts to send") < table.index("bob@example.net")
    assert "Nothing to do" not in table
    digest = status(walk, at("2026-12-07 15:00"))
    text = flat(text_of(digest))
    assert "DRAFTS READY TO SEND (1) 1. Bob Lee" in text
    walk.command(digest, "send 1", at("2026-12-07 15:30"))
    thanks, answer = walk.poll(at("2026-12-07 15:30"))
    assert kinds([thanks, answer]) == ["thank_you", "command_reply"]
    assert addresses(thanks, "To") == ["bob@example.net"]
    assert "DRAFTS READY TO SEND" not in flat(text_of(status(walk, at("2026-12-07 16:00"))))
    walk.check_sent_folder()


def test_done_settles_a_declined_offers_thank_you_draft(rig_assistant: RigAssistant) -> None:
    """The owner who thanked Bob by hand says ``done``: the draft is listed no more."""
    walk = Walk(rig_assistant)
    walk.deliver(SAM, BOB, "Re: Help with the move", "Thanks Bob, let me think about it.",
                 at("2026-12-07 09:00"), cc=walk.assistant.replace("@", "+offer@"))
    [receipt] = walk.poll(at("2026-12-07 09:00"))
    walk.command(receipt, "decline", at("2026-12-07 12:00"))
    walk.poll(at("2026-12-07 12:00"))
    [draft] = walk.poll(at("2026-12-07 14:00"))
    walk.command(draft, "done", at("2026-12-07 15:00"))
    [answer] = walk.poll(at("2026-12-07 15:00"))
    assert "thank-you draft is settled" in flat(text_of(answer))
    assert walk.status()["state"] == "declined"
    code, table, _ = rig_assistant.cli("status")
    assert code == 0
    assert "Drafts to send" not in table and "Nothing to do" in table
    assert "DRAFTS READY TO SEND" not in flat(text_of(status(walk, at("2026-12-07 16:00"))))


def test_send_by_digest_number_replans_the_reminder_already_due(
    rig_assistant: RigAssistant,
) -> None:
    """``send 1`` to a digest, read after reminder 2 fell due: the follow-up goes to Jane and
    no "still no reply" reminder goes with it in the same cycle: it comes 4 days later."""
    walk = Walk(rig_assistant)
    walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    assert kinds(walk.poll(at("2026-12-10 09:00"))) == ["follow_up"]
    digest = status(walk, at("2026-12-10 10:00"))
    walk.command(digest, "send 1", at("2026-12-14 10:00"))
    sent = walk.poll(at("2026-12-14 10:00"))
    assert kinds(sent) == ["nudge", "command_reply"]
    assert addresses(sent[0], "To") == [JANE_EMAIL]
    assert walk.status()["next_action"] == {"kind": "follow_up",
                                            "due": "2026-12-18T10:00:00+00:00"}


def test_an_earlier_clock_never_plans_a_digest_before_the_last_one_sent(
    rig_assistant: RigAssistant,
) -> None:
    """Mon 7 Dec's digest, missed while the assistant was down, went at Mon 14 Dec 08:00
    (``--now``). A poll on a clock behind that (Sun 13 Dec) must not plan one for Mon 14 Dec
    08:00 (before: it did, dropping Mon 21 Dec's, and the next poll sent a second digest the
    same Monday). The next one stays Mon 21 Dec."""
    rig_assistant.configure({"schedules": {"digest": {"rrule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=8"}}})
    walk = Walk(rig_assistant)
    walk.ask(at("2026-12-01 09:00"))
    walk.poll(at("2026-12-01 09:00"))
    assert kinds(walk.poll(at("2026-12-14 08:00"))).count("digest") == 1
    assert "digest" not in kinds(walk.poll(at("2026-12-13 12:00")))  # a clock behind
    assert "digest" not in kinds(walk.poll(at("2026-12-14 09:00")))
    assert "digest" not in kinds(walk.poll(at("2026-12-20 12:00")))
    assert "digest" in kinds(walk.poll(at("2026-12-21 08:00")))
