"""One tap, one reply (issue 10, item 5), end to end through Dovecot and the SMTP sink: the
commands in HTML parts are mailto: links whose mail the assistant matches by a token alone,
and ``send`` with the owner's own words sends those words instead of the draft."""

from __future__ import annotations

import re
from email.message import EmailMessage
from html import unescape
from urllib.parse import parse_qs, unquote, urlsplit

from tests.rig.assistant import OWNER, OWNER_NAME, RigAssistant
from tests.test_lifecycle import JANE, JANE_EMAIL, Walk, addresses, at, html_of, kinds, text_of
from tests.test_lifecycle_commands import answered_ask, first_reminder

SAM = f"{OWNER_NAME} <{OWNER}>"


def link(mail: EmailMessage, body: str) -> tuple[str, str, str]:
    """(address, subject, body) of the mailto: link in ``mail``'s HTML whose body is ``body``,
    decoded as a mail client decodes it (RFC 6068)."""
    for href in re.findall(r'href="(mailto:[^"]*)"', html_of(mail)):
        url = urlsplit(unescape(href))
        query = parse_qs(url.query, keep_blank_values=True)
        if query["body"] == [body]:
            return unquote(url.path), query["subject"][0], query["body"][0]
    raise AssertionError(f"no mailto: link with body {body!r}")


def lines(mail: EmailMessage) -> str:
    """The text part with plain newlines."""
    return text_of(mail).replace("\r\n", "\n")


def tap(walk: Walk, mail: EmailMessage, body: str, stamp: str, from_: str = SAM) -> str:
    """The mail a phone writes when the link is tapped: no In-Reply-To, no References."""
    to, subject, text = link(mail, body)
    assert to == walk.assistant
    return walk.deliver(from_, to, subject, text, stamp)


def test_every_command_link_is_a_percent_encoded_mailto_with_the_token(
    rig_assistant: RigAssistant,
) -> None:
    walk = Walk(rig_assistant)
    reminder = first_reminder(walk)
    hrefs = [unescape(h) for h in re.findall(r'href="(mailto:[^"]*)"', html_of(reminder))]
    assert len(hrefs) == 6  # done, send, snooze, cancel, status, help
    for href in hrefs:
        assert re.fullmatch(r"mailto:[^?]+\?subject=[A-Za-z0-9%._~-]+&body=[A-Za-z0-9%._~-]+",
                            href), href
    _, subject, _ = link(reminder, "snooze 3 days")
    assert re.fullmatch(r"Re: .*Intro to Acme.* \[#[0-9a-f]{10}\]", subject), subject
    assert subject.startswith("Re: " + str(reminder["Subject"]).removeprefix("Re: "))


def test_a_tapped_snooze_acts_on_the_mail_it_was_tapped_in(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    reminder = first_reminder(walk)
    command_id = tap(walk, reminder, "snooze 3 days", at("2026-12-10 10:00"))
    [answer] = walk.poll(at("2026-12-10 10:00"))
    assert kinds([answer]) == ["command_reply"] and answer["In-Reply-To"] == command_id
    assert walk.status()["next_action"] == {"kind": "follow_up",
                                            "due": "2026-12-13T10:00:00+00:00"}
    walk.check_sent_folder()


def test_a_tapped_send_sends_the_draft_once(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    reminder = first_reminder(walk)
    tap(walk, reminder, "send", at("2026-12-10 10:00"))
    nudge, answer = walk.poll(at("2026-12-10 10:00"))
    assert kinds([nudge, answer]) == ["nudge", "command_reply"]
    assert addresses(nudge, "To") == [JANE_EMAIL]
    tap(walk, reminder, "send", at("2026-12-10 10:05"))
    assert kinds(walk.poll(at("2026-12-10 10:05"))) == ["command_reply"]  # no second nudge


def test_the_token_from_anyone_but_an_owner_does_nothing(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    reminder = first_reminder(walk)
    tap(walk, reminder, "cancel", at("2026-12-10 10:00"), from_=JANE)
    tap(walk, reminder, "cancel", at("2026-12-10 10:01"), from_="Eve <eve@example.net>")
    walk.quiet(at("2026-12-10 10:05"))
    assert walk.status()["state"] == "open"


def test_a_token_no_mail_carries_is_a_fresh_mail_not_a_command(
    rig_assistant: RigAssistant,
) -> None:
    walk = Walk(rig_assistant)
    first_reminder(walk)
    walk.deliver(SAM, walk.assistant, "Re: Intro to Acme? [#0123456789]", "cancel",
                 at("2026-12-10 10:00"))
    walk.poll(at("2026-12-10 10:00"))
    assert walk.status()["state"] == "open"


OWN_WORDS = "Dear Jane,\n\nThat intro was gold.\nLunch is on me.\n\nSam"


def test_send_with_own_words_on_the_thank_you_draft(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    _, reply_id, draft = answered_ask(walk)
    walk.command(draft, f"send\n{OWN_WORDS}\n\n-- \nSam Rivera\nSent from my phone",
                 at("2026-12-09 14:00"))
    thanks, answer = walk.poll(at("2026-12-09 14:05"))
    assert kinds([thanks, answer]) == ["thank_you", "command_reply"]
    assert addresses(thanks, "To") == [JANE_EMAIL] and addresses(thanks, "Cc") == [OWNER]
    assert thanks["In-Reply-To"] == reply_id
    body = lines(thanks)
    assert body.startswith(OWN_WORDS + "\n"), body  # the owner's line breaks, nothing added
    assert "Sam Rivera" not in body.split("\n-- \n")[0]  # their signature stripped
    assert "On Mon" not in body and "Happy to help" not in body  # no quoted history
    assert "<p>That intro was gold.<br>" in html_of(thanks)
    assert "Sent your words to jane@example.org" in str(answer["Subject"]) + text_of(answer)
    # Exactly once: a second send, with other words, thanks nobody again.
    walk.command(draft, "send\nThanks again!", at("2026-12-09 15:00"))
    assert kinds(walk.poll(at("2026-12-09 15:00"))) == ["command_reply"]
    walk.check_sent_folder()


def test_send_with_own_words_on_the_follow_up_reminder(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    reminder = first_reminder(walk)
    walk.command(reminder, "Send: Jane, any luck with Acme? No rush.", at("2026-12-10 10:00"))
    nudge, _ = walk.poll(at("2026-12-10 10:00"))
    assert kinds([nudge]) == ["nudge"]
    assert lines(nudge).startswith("Jane, any luck with Acme? No rush.\n")


def offer_reminder(walk: Walk) -> EmailMessage:
    walk.deliver(SAM, "Bob Lee <bob@example.net>", "Re: Help with the move",
                 "Thanks Bob, let me think about it.", at("2026-12-07 09:00"),
                 cc=walk.assistant.replace("@", "+offer@"))
    walk.poll(at("2026-12-07 09:00"))
    [reminder] = walk.poll(at("2026-12-08 09:00"))
    assert kinds([reminder]) == ["offer_follow_up"]
    return reminder


def test_send_with_own_words_answers_an_offer(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    reminder = offer_reminder(walk)
    walk.command(reminder, "send\nHi Bob,\n\nThe van on Saturday at 10 would help most.\n\nSam",
                 at("2026-12-08 10:00"))
    letter, answer = walk.poll(at("2026-12-08 10:00"))
    assert kinds([letter, answer]) == ["letter", "command_reply"]
    assert addresses(letter, "To") == ["bob@example.net"]
    assert addresses(letter, "Cc") == [OWNER] and addresses(letter, "Reply-To")[0] == OWNER
    assert str(letter["Subject"]) == "Re: Help with the move"
    assert lines(letter).startswith("Hi Bob,\n\nThe van on Saturday at 10 would help most.\n")
    assert walk.status()["state"] == "answered"  # the owner told them what would help
    walk.quiet(at("2026-12-11 09:00"))  # so the second offer reminder does not come
    walk.check_sent_folder()


def test_a_bare_send_on_an_offer_reminder_asks_for_the_words(
    rig_assistant: RigAssistant,
) -> None:
    walk = Walk(rig_assistant)
    reminder = offer_reminder(walk)
    walk.command(reminder, "send", at("2026-12-08 10:00"))
    [answer] = walk.poll(at("2026-12-08 10:00"))
    assert kinds([answer]) == ["help"] and "blanks to fill in" in text_of(answer)
    assert walk.status()["state"] == "open"


def test_send_on_the_return_the_favour_reminder(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    _, _, draft = answered_ask(walk)
    walk.command(draft, "done", at("2026-12-09 15:00"))
    walk.poll(at("2026-12-09 15:00"))
    [favour] = walk.poll(at("2027-01-08 15:00"))
    assert kinds([favour]) == ["return_favor"]
    walk.command(favour, "send Jane, your launch is next week: can I help with testing?",
                 at("2027-01-08 16:00"))
    letter, _ = walk.poll(at("2027-01-08 16:00"))
    assert kinds([letter]) == ["letter"] and addresses(letter, "To") == [JANE_EMAIL]
    assert lines(letter).startswith("Jane, your launch is next week: can I help")
    walk.command(favour, "send", at("2027-01-08 17:00"))
    assert kinds(walk.poll(at("2027-01-08 17:00"))) == ["command_reply"]  # once per reminder
    # The letter is a favour offered back; the reminder alone never counted as one.
    assert "1 favour returned" in rig_assistant.cli("status")[1]
    walk.check_sent_folder()
