"""What the assistant writes, read as its recipient gets it, end to end through Dovecot and the
SMTP sink (issue 10): notes to self and a pause in the digest, an ask only some answered,
and the owner's own words sent in the assistant's voice."""

from __future__ import annotations

import re
from email.message import EmailMessage

from tests.rig.assistant import OWNER, OWNER_NAME, RigAssistant
from tests.test_lifecycle import JANE_EMAIL, Walk, addresses, at, html_of, kinds, text_of

SAM = f"{OWNER_NAME} <{OWNER}>"
BOB = "Bob Lee <bob@example.net>"


def flat(text: str) -> str:
    return " ".join(text.split())


def status(walk: Walk, stamp: str) -> EmailMessage:
    walk.deliver(SAM, walk.assistant, "status please", "status", stamp)
    [digest] = walk.poll(stamp)
    assert kinds([digest]) == ["digest"]
    return digest


def shown(html: str) -> list[str]:
    """The HTML part's visible lines, one per paragraph or table row."""
    body = html.split("<body", 1)[1]
    body = re.sub(r"</(?:p|li|tr|h\d|div)>|<br>", "\n", body)
    return [line.strip() for line in re.sub(r"<[^>]+>", "", body).splitlines() if line.strip()]


def test_the_digest_lists_notes_and_a_pause_and_says_when_only_some_answered(
    rig_assistant: RigAssistant,
) -> None:
    """A note to self and an ask to Jane and Bob; only Bob answers. The digest lists the
    note under "Notes to self" with a number that ``cancel N`` acts on, says the ask was
    answered only by some, counts each person; once the owner pauses, it says until when."""
    walk = Walk(rig_assistant)
    walk.deliver(SAM, rig_assistant.address.replace("@", "+1week@"), "Renew the passport",
                 "Forms at the post office.", at("2026-12-07 08:30"))
    assert kinds(walk.poll(at("2026-12-07 08:30"))) == ["receipt"]
    ask_id = walk.ask(at("2026-12-07 09:00"), to=f"Jane Doe <{JANE_EMAIL}>, {BOB}")
    assert kinds(walk.poll(at("2026-12-07 09:00"))) == ["receipt"]
    walk.reply(ask_id, at("2026-12-08 10:00"), body="Happy to, Sam.", from_=BOB)
    walk.poll(at("2026-12-08 10:00"))

    digest = status(walk, at("2026-12-08 11:00"))
    text = flat(text_of(digest))
    assert ("NOTES TO SELF (1) 2. “Renew the passport”, comes back Mon 14 Dec, 08:30 "
            "done 2 · snooze 2 3 days · cancel 2") in text, text
    assert "offered" not in text, "a note is no offer"
    assert "ALL TIME: 1 ask, 1 answered, by only some of those asked" in text
    assert "- Jane Doe: 1 ask, 0 answered" in text and "- Bob Lee: 1 ask, 1 answered" in text
    assert "Ask away" not in text and "from some of those you asked" in text
    assert "Notes to self (1)" in html_of(digest)

    walk.command(digest, "cancel 2", at("2026-12-08 11:30"))
    walk.poll(at("2026-12-08 11:30"))
    note = next(t for t in rig_assistant.status() if t["kind"] == "note")
    assert note["state"] == "cancelled"
    # The week is up: the cancelled note never comes back (Jane's follow-ups may).
    assert "note_reminder" not in kinds(walk.poll(at("2026-12-14 09:00")))

    walk.deliver(SAM, walk.assistant, "Away", "pause until 21 December", at("2026-12-14 10:00"))
    walk.poll(at("2026-12-14 10:00"))
    paused = flat(text_of(status(walk, at("2026-12-14 10:30"))))
    assert "You're paused until Mon 21 Dec, 09:00" in paused, paused
    assert 'Reply "resume" to end it sooner.' in paused
    assert "NOTES TO SELF" not in paused
    walk.check_sent_folder()


def test_own_words_in_the_assistants_voice_end_with_who_sent_them(
    rig_assistant: RigAssistant,
) -> None:
    """The follow-up reminder offers ``send`` with own words, not a copy of the assistant's
    letter; the letter that reaches Jane is the owner's words, and its last line, in the text
    and in the HTML, says once that the owner's assistant sent it on their behalf."""
    walk = Walk(rig_assistant)
    walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    [reminder] = walk.poll(at("2026-12-10 09:05"))
    assert kinds([reminder]) == ["follow_up"]
    said = flat(text_of(reminder).split("-" * 63)[-1])
    assert "copy it" not in said and 'own words below "send"' in said
    walk.command(reminder, "send\nJane, any news on the intro? A name is plenty.\n\nSam",
                 at("2026-12-10 10:00"))
    letter, confirmation = walk.poll(at("2026-12-10 10:00"))
    assert kinds([confirmation]) == ["command_reply"]
    assert addresses(letter, "To") == [JANE_EMAIL]
    text = text_of(letter).replace("\r\n", "\n").strip()
    assert text.startswith("Jane, any news on the intro? A name is plenty.")
    wanted = f"{OWNER_NAME}'s mail assistant, on {OWNER_NAME.split()[0]}'s behalf"
    assert text.splitlines()[-1].startswith(wanted), text
    assert text.lower().count("assistant") == 1
    lines = shown(html_of(letter))
    assert lines[-1].startswith(wanted), lines
    assert " ".join(lines).lower().count("assistant") == 1
    walk.check_sent_folder()
