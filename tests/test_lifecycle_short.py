"""Short mail, right about dates and about what happened: end to end through Dovecot and the
SMTP sink on the --now clock, each mail read as the owner gets it.

- a forwarded offer or ask is dated by the original's own Date, in every forward format;
- reminder 2 (and the closing note) knows that a follow-up went out, or that the owner wrote;
- an offer's second reminder says something new;
- receipts fit a phone screen; confirmations are one line and can be turned off;
- no subject is pasted into a sentence, and recaps quote what was said, not the greeting.
"""

from __future__ import annotations

import email
import re
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from tests.rig.assistant import OWNER, OWNER_NAME, RigAssistant
from tests.rig.mailboxes import make_message
from tests.test_lifecycle import Walk, at, header_date, html_of, kinds, text_of

SAM = f"{OWNER_NAME} <{OWNER}>"
BOB = "Bob Lee <bob@example.net>"
JOSE = "José Núñez <jose@example.org>"
JANE = '"Okafor, Jane" <jane@example.org>'
SUBJECT = "Help with the move"
ASK_SUBJECT = "Q4 plan before Thursday?"
OFFER_BODY = "Hi Sam,\n\nI have a van on Saturday if that helps. Happy to drive.\n\nCheers,\nBob"


def flat(text: str) -> str:
    return " ".join(text.split())


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def html_lines(html: str) -> list[str]:
    """The visible lines of an HTML part: a line per paragraph, list item and table row."""
    body = html.split("<body", 1)[1].split(">", 1)[1]
    body = re.sub(r"</(?:p|li|tr|h\d|blockquote|div)>|<br>", "\n", body)
    return lines(re.sub(r"<[^>]+>", "", body))


def own_words(text: str) -> str:
    """What a reminder says in its own words: without the draft, signature and commands."""
    before, _, rest = text.partition("-" * 63)
    after = rest.partition("-" * 63)[2].partition("\n— ")[0]
    return flat(before + " " + after)


def no_subject_in_sentences(message: EmailMessage, subject: str) -> None:
    """The subject is the mail's own subject line: never inside the text (SPEC.md receipts)."""
    assert subject in str(message["Subject"])
    assert subject not in flat(text_of(message)).split("----")[0], "pasted into a sentence"


# -- 1. dates from the source ----------------------------------------------------------------


def attached(original: bytes, to: str) -> bytes:
    forward = EmailMessage()
    forward["From"], forward["To"] = SAM, to
    forward["Subject"] = f"Fwd: {SUBJECT}"
    forward["Date"] = header_date(at("2026-11-30 09:00"))
    forward["Message-ID"] = "<fwd-1@example.com>"
    forward.set_content("See below.")
    forward.add_attachment(email.message_from_bytes(original, policy=SMTP))
    return forward.as_bytes(policy=SMTP)


#: The inline forwards of the clients the parser reads, Bob's offer of Fri 27 Nov 18:00 UTC.
INLINE = {
    "gmail": ("---------- Forwarded message ---------\nFrom: Bob Lee <bob@example.net>\n"
              "Date: Fri, Nov 27, 2026 at 6:00 PM\nSubject: Help with the move\n"
              f"To: {SAM}\n\n"),
    "outlook": ("________________________________\nFrom: Bob Lee <bob@example.net>\n"
                "Sent: Friday, November 27, 2026 6:00 PM\nTo: Sam Rivera <sam@example.com>\n"
                "Subject: Help with the move\n\n"),
    "apple": ("Begin forwarded message:\n\nFrom: Bob Lee <bob@example.net>\n"
              "Subject: Help with the move\nDate: 27 November 2026 at 18:00:00 GMT\n"
              f"To: {SAM}\n\n"),
    "thunderbird": ("-------- Forwarded Message --------\nSubject: \tHelp with the move\n"
                    "Date: \tFri, 27 Nov 2026 18:00:00 +0000\nFrom: \tBob Lee <bob@example.net>\n"
                    f"To: \t{SAM}\n\n"),
}


@pytest.mark.parametrize("form", ["attached", *INLINE])
def test_a_forwarded_offer_is_dated_by_the_original_and_its_reminders_differ(
    rig_assistant: RigAssistant, form: str,
) -> None:
    """Bob offered on Fri 27 Nov; Sam forwards it on Mon 30 Nov. The reminders (counted from
    Mon, when the assistant saw it) say "offered to help on Fri 27 Nov", and the second says
    something new: how long the offer has waited and what happens next."""
    walk = Walk(rig_assistant)
    to = walk.assistant.replace("@", "+offer@")
    if form == "attached":
        original = make_message(BOB, SAM, SUBJECT, OFFER_BODY, message_id="<offer-1@example.net>",
                                date=header_date(at("2026-11-27 18:00")))
        walk.rig.deliver(attached(original, to))
    else:
        walk.deliver(SAM, to, f"Fwd: {SUBJECT}", "See below.\n\n" + INLINE[form] + OFFER_BODY,
                     at("2026-11-30 09:00"))
    [receipt] = walk.poll(at("2026-11-30 09:00"))
    assert "I'll remind you on Tue 1 Dec, 09:00, to tell Bob" in flat(text_of(receipt))
    no_subject_in_sentences(receipt, SUBJECT)

    [first] = walk.poll(at("2026-12-01 09:00"))
    assert kinds([first]) == ["offer_follow_up"]
    body = flat(text_of(first))
    assert "Bob Lee offered to help on Fri 27 Nov (4 days ago)." in body
    assert "Mon 30 Nov" not in body and "yesterday" not in body
    assert "“I have a van on Saturday if that helps. Happy to drive.”" in body, "the recap"
    no_subject_in_sentences(first, SUBJECT)
    assert "Fri 27 Nov" in html_of(first)

    walk.quiet(at("2026-12-03 09:00"))
    [second] = walk.poll(at("2026-12-04 09:00"))
    later = flat(text_of(second))
    assert "Bob Lee's offer of Fri 27 Nov has waited 7 days for your answer." in later
    assert "This is my last reminder about it" in later
    said = [s for s in re.split(r"(?<=[.:!?])\s", own_words(text_of(first))) if len(s) > 20]
    again = own_words(text_of(second))
    assert [s for s in said if s in again and "van on Saturday" not in s] == [], "repeated"
    walk.check_sent_folder()


def test_a_forwarded_ask_is_dated_by_the_original(rig_assistant: RigAssistant) -> None:
    """Sam asked Jane on Fri 27 Nov and forwards his own mail (attached) on Mon 30 Nov: the
    reminder, due 3 days after the forward, speaks of "your ask of Fri 27 Nov"."""
    walk = Walk(rig_assistant)
    original = make_message(SAM, JANE, ASK_SUBJECT,
                            "Hi Jane,\n\nCould you look over the Q4 plan?\n\nThanks,\nSam",
                            message_id="<ask-27@example.com>",
                            date=header_date(at("2026-11-27 16:00")))
    walk.rig.deliver(attached(original, walk.assistant))
    [receipt] = walk.poll(at("2026-11-30 09:00"))
    assert "I'll remind you on Thu 3 Dec, 09:00, if Jane hasn't replied." in flat(
        text_of(receipt))
    [reminder] = walk.poll(at("2026-12-03 09:00"))
    body = flat(text_of(reminder))
    assert "No reply yet from Jane Okafor to your ask of Fri 27 Nov (6 days ago)." in body
    assert "“Could you look over the Q4 plan?”" in body and "Hi Jane," not in body.split("---")[0]
    no_subject_in_sentences(reminder, ASK_SUBJECT)


# -- 2. reminder 2 knows what happened since reminder 1 ----------------------------------------


def test_reminder_2_and_the_closing_note_know_a_follow_up_went_out(
    rig_assistant: RigAssistant,
) -> None:
    walk = Walk(rig_assistant)
    walk.ask(at("2026-12-07 09:00"), to=JANE, subject=ASK_SUBJECT,
             body="Hi Jane,\n\nCould you look over the Q4 numbers by Thursday?\n\nBest,\nSam")
    walk.poll(at("2026-12-07 09:00"))
    [first] = walk.poll(at("2026-12-10 09:00"))
    body = flat(text_of(first))
    assert "No reply yet from Jane Okafor to your ask of Mon 7 Dec (3 days ago)." in body
    assert "“Could you look over the Q4 numbers by Thursday?”" in body
    no_subject_in_sentences(first, ASK_SUBJECT)

    walk.command(first, "send", at("2026-12-10 10:00"))
    nudge, confirmation = walk.poll(at("2026-12-10 10:00"))
    assert kinds([nudge, confirmation]) == ["nudge", "command_reply"]
    assert text_of(confirmation).strip() == "Sent the draft to jane@example.org."

    # Reminder 2 keeps the schedule's 4 days from the follow-up Sam had sent at 10:00.
    walk.quiet(at("2026-12-14 09:00"))
    [second] = walk.poll(at("2026-12-14 10:00"))
    assert kinds([second]) == ["follow_up"]
    text = flat(text_of(second))
    assert ("Still no reply from Jane Okafor to your ask of Mon 7 Dec (7 days ago), even after "
            "the follow-up that went to Jane on Thu 10 Dec.") in text
    assert "One more short follow-up" in text
    assert "even after the follow-up that went to Jane on Thu 10 Dec" in html_of(second)
    no_subject_in_sentences(second, ASK_SUBJECT)

    [closing] = walk.poll(at("2026-12-21 09:00"))
    assert kinds([closing]) == ["closing_note"]
    assert ("Jane Okafor hasn't replied to your ask of Mon 7 Dec, even after the follow-up of "
            "Thu 10 Dec, so I'll stop tracking it now.") in flat(text_of(closing))
    no_subject_in_sentences(closing, ASK_SUBJECT)
    walk.check_sent_folder()


def test_the_reminder_after_the_owners_own_follow_up_says_so(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    ask_id = walk.ask(at("2026-12-07 09:00"), to=JANE, subject=ASK_SUBJECT)
    walk.poll(at("2026-12-07 09:00"))
    assert kinds(walk.poll(at("2026-12-10 09:00"))) == ["follow_up"]
    walk.deliver(SAM, JANE, f"Re: {ASK_SUBJECT}", "Jane, just bumping this up.",
                 at("2026-12-10 15:00"), cc=walk.assistant, in_reply_to=ask_id,
                 references=ask_id)
    walk.quiet(at("2026-12-10 15:00"))
    [reminder] = walk.poll(at("2026-12-13 15:00"))
    body = flat(text_of(reminder))
    assert ("No reply yet from Jane Okafor to your ask of Mon 7 Dec (6 days ago), even after "
            "your follow-up of Thu 10 Dec.") in body
    assert "Following up is part of asking" not in body, "Sam has followed up already"


# -- 3. short receipts ---------------------------------------------------------------------------


@pytest.mark.parametrize("people", [[JOSE], [JOSE, JANE, '"Dr. Priya Raman" <priya@uni.example>'],
                                    ['王小明 <wang@example.cn>']])
def test_the_receipt_fits_a_phone_screen(rig_assistant: RigAssistant, people: list[str]) -> None:
    walk = Walk(rig_assistant)
    walk.ask(at("2026-12-07 09:00"), to=people, subject=ASK_SUBJECT,
             body="Hi all,\n\nCould you look over the Q4 numbers by Thursday?\n\nThanks,\nSam")
    [receipt] = walk.poll(at("2026-12-07 09:00"))
    text, html = text_of(receipt), html_of(receipt)
    assert len(lines(text)) <= 10, text
    assert len(html_lines(html)) <= len(lines(text)), html_lines(html)
    one = flat(text)
    if len(people) == 1:
        name = people[0].split(" <")[0]
        first = name if name == "王小明" else "José"
        assert (f"Tracking your ask to {name}: I'll remind you on Thu 10 Dec, 09:00, if "
                f"{first} hasn't replied.") in one
    else:
        assert ("Tracking your ask to José Núñez, Jane Okafor and Dr. Priya Raman: I'll remind "
                "you on Thu 10 Dec, 09:00, if they haven't replied.") in one
    assert "Thu 10 Dec, 09:00" in html
    commands = text.split("Reply with one of these on the first line:")[1]
    assert [line.split()[0] for line in lines(commands)] == ["cancel", "help"]
    no_subject_in_sentences(receipt, ASK_SUBJECT)


# -- 4. one-line confirmations, and confirm_commands: false ----------------------------------------


def test_confirmations_are_one_line(rig_assistant: RigAssistant) -> None:
    walk = Walk(rig_assistant)
    walk.ask(at("2026-12-07 09:00"), to=JANE, subject=ASK_SUBJECT)
    [receipt] = walk.poll(at("2026-12-07 09:00"))
    walk.command(receipt, "snooze 5 days", at("2026-12-07 10:00"))
    [snoozed] = walk.poll(at("2026-12-07 10:00"))
    assert text_of(snoozed).strip() == "Snoozed until Sat 12 Dec, 10:00."
    walk.command(receipt, "done", at("2026-12-07 11:00"))
    [done] = walk.poll(at("2026-12-07 11:00"))
    assert kinds([done]) == ["command_reply"]
    assert text_of(done).strip() == "Done. No more reminders on this thread."
    assert html_lines(html_of(done)) == ["Done. No more reminders on this thread."]
    assert str(done["Subject"]) == f"Done: “{ASK_SUBJECT}”"
    walk.check_sent_folder()


def test_confirm_commands_false_answers_only_what_failed(rig_assistant: RigAssistant) -> None:
    rig_assistant.configure({"confirm_commands": False})
    walk = Walk(rig_assistant)
    walk.ask(at("2026-12-07 09:00"), to=JANE, subject=ASK_SUBJECT)
    [receipt] = walk.poll(at("2026-12-07 09:00"))
    walk.command(receipt, "snooze 5 days", at("2026-12-07 10:00"))
    walk.quiet(at("2026-12-07 10:00"))
    assert walk.status()["next_action"] == {"kind": "follow_up",
                                            "due": "2026-12-12T10:00:00+00:00"}
    walk.command(receipt, "frobnicate", at("2026-12-07 11:00"))
    assert kinds(walk.poll(at("2026-12-07 11:00"))) == ["help"], "unknown: still answered"
    walk.command(receipt, "snooze", at("2026-12-07 12:00"))
    assert kinds(walk.poll(at("2026-12-07 12:00"))) == ["help"], "failed: still answered"
    walk.command(receipt, "done", at("2026-12-07 13:00"))
    walk.quiet(at("2026-12-07 13:00"))
    assert walk.status()["state"] == "done"
    walk.command(receipt, "done", at("2026-12-07 14:00"))
    [again] = walk.poll(at("2026-12-07 14:00"))
    assert text_of(again).strip() == "Nothing changed. It is already done.", "did nothing: answered"
    walk.check_sent_folder()
