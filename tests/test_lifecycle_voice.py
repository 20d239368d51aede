"""Letters to a counterpart in a person's voice, end to end: an ask through Dovecot, ``poll
--once --now``, and the nudge and the sent thank-you read from the SMTP sink as the
counterpart gets them, with ``send_as: assistant`` and ``send_as: owner``; and a German
thread's nudge, which carries no English recap."""

from __future__ import annotations

import re
from email.message import EmailMessage

import pytest

from tests.rig.assistant import OWNER, OWNER_NAME, RigAssistant
from tests.test_lifecycle import JANE_EMAIL, Walk, addresses, at, html_of, kinds, text_of

#: Mail to the counterpart switched on: a nudge a day after the ask, thank-yous sent.
TO_THEM = {"schedules": {"ask": {"nudge_counterpart": ["1 day"]},
                         "thank_you": {"mode": "send", "after": "2 hours"}}}
BEHALF = "Sam Rivera's mail assistant, on Sam's behalf (Sam is in Cc)"
FIRST_PERSON = re.compile(r"\b(?:I|I'm|I'd|I'll|me|my)\b")


def lines(message: EmailMessage) -> list[str]:
    return [line for line in text_of(message).splitlines() if line.strip()]


def unquoted(message: EmailMessage) -> str:
    return re.sub(r"“[^”]*”", "", text_of(message))


def nudge_then_thanks(rig: RigAssistant) -> tuple[EmailMessage, EmailMessage]:
    """The ask on Monday, the nudge on Tuesday, Jane's answer, the thank-you two hours on."""
    walk = Walk(rig)
    walk.ask(at("2026-12-07 09:00"))
    assert kinds(walk.poll(at("2026-12-07 09:00"))) == ["receipt"]
    [nudge] = walk.poll(at("2026-12-08 09:00"))
    assert kinds([nudge]) == ["nudge"] and addresses(nudge, "To") == [JANE_EMAIL]
    walk.reply(str(nudge["Message-ID"]), at("2026-12-08 10:00"),
               body="Sure, I'll introduce you to Priya.")
    walk.quiet(at("2026-12-08 10:00"))
    [thanks] = walk.poll(at("2026-12-08 12:00"))
    assert kinds([thanks]) == ["thank_you"] and addresses(thanks, "To") == [JANE_EMAIL]
    walk.check_sent_folder()
    return nudge, thanks


def test_as_the_assistant_the_letters_speak_of_the_owner_and_say_who_wrote_them(
        rig_assistant: RigAssistant) -> None:
    rig_assistant.configure(TO_THEM)
    nudge, thanks = nudge_then_thanks(rig_assistant)
    for letter in (nudge, thanks):
        assert addresses(letter, "From") == [rig_assistant.address]
        assert addresses(letter, "Cc") == [OWNER]
        assert lines(letter)[0] == "Hi Jane,"
        assert lines(letter)[-1] == BEHALF, "the last line says who wrote it, for whom"
        assert text_of(letter).count("assistant") == 1, "said once"
        assert html_of(letter).count("mail assistant") == 1
        assert not FIRST_PERSON.search(unquoted(letter)), "never speaks as the owner"
        assert "Intro to Acme" not in text_of(letter), "the subject stays in the Re: line"
    assert "A gentle follow-up to Sam's mail of Mon 7 Dec" in " ".join(lines(nudge))
    # The recap drops the greeting (issue 10, item 4).
    assert "Sam asked: “Could you introduce me to someone at Acme?”" in text_of(nudge)
    assert "Thank you so much for getting back to Sam" in " ".join(lines(thanks))


def test_as_the_owner_the_letters_are_the_owners_own(rig_assistant: RigAssistant) -> None:
    rig_assistant.configure({**TO_THEM, "send_as": "owner"})
    nudge, thanks = nudge_then_thanks(rig_assistant)
    for letter in (nudge, thanks):
        assert addresses(letter, "From") == [OWNER]
        assert addresses(letter, "Cc") == [rig_assistant.address]
        assert "assistant" not in text_of(letter).lower()
        assert "assistant" not in html_of(letter).lower()
        assert lines(letter)[0] == "Hi Jane," and lines(letter)[-1] == "Sam"
        assert FIRST_PERSON.search(unquoted(letter)), "the owner's first person"
    assert "I wanted to follow up on my mail of Mon 7 Dec" in " ".join(lines(nudge))
    assert "To recap: “Could you introduce me to someone at Acme?”" in text_of(nudge)
    assert "Thank you so much for getting back to me." in " ".join(lines(thanks))


@pytest.mark.parametrize("send_as", ["assistant", "owner"])
def test_a_german_threads_nudge_has_no_english_recap(rig_assistant: RigAssistant,
                                                     send_as: str) -> None:
    # No name in the config: the owner is named as their own mail names them.
    rig_assistant.configure({**TO_THEM, "send_as": send_as, "owners": [{"email": OWNER}]})
    walk = Walk(rig_assistant)
    walk.ask(at("2026-12-07 09:00"), to="Jana Weber <jana@example.de>",
             subject="Kaffee nächste Woche?",
             body="Hallo Jana, hast du nächste Woche Zeit für einen Kaffee? Ich würde gern "
                  "mit dir über das Projekt sprechen. Viele Grüße, Sam")
    walk.poll(at("2026-12-07 09:00"))
    [nudge] = walk.poll(at("2026-12-08 09:00"))
    assert kinds([nudge]) == ["nudge"] and addresses(nudge, "To") == ["jana@example.de"]
    assert nudge["Subject"] == "Re: Kaffee nächste Woche?"
    text = text_of(nudge)
    assert "“" not in text and "Kaffee" not in text and "recap" not in text.lower()
    assert "Kaffee" not in html_of(nudge).partition("<body")[2]
    assert lines(nudge)[0] == "Hi Jana,"
    assert len(lines(nudge)) <= 6, "short and neutral"
    assert lines(nudge)[-1] == (BEHALF if send_as == "assistant" else "Sam")
    assert f"{OWNER_NAME}" in str(nudge["From"] if send_as == "owner" else nudge["Cc"])
    walk.check_sent_folder()
