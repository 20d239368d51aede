"""Composing outgoing mail: every kind renders, headers thread and cannot be injected, templates
are data-safe, overrides are checked at start-up. All times are passed in; no clock is read."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mailhelper.compose.render import (
    CompositionError,
    Renderer,
    RenderJob,
    TemplateProblem,
    one_line,
    paragraphs,
)
from mailhelper.decide.digest import build as build_digest
from mailhelper.model.message_id import bracketed, looks_like_ours, make_message_id
from mailhelper.model.settings import Settings
from mailhelper.model.values import (
    COUNTERPART_ACTIONS,
    Action,
    ActionKind,
    ActionStatus,
    Address,
    Kind,
    Ledger,
    PersonFigures,
    Thread,
    ThreadState,
)

LONDON = ZoneInfo("Europe/London")
SAM = Address("sam@example.com", "Sam Rivera")
JANE = Address("jane@example.org", "Jane Doe")
BOB = Address("bob@example.net", "Bob Lee")
ASSISTANT = Address("helper@example.com", "Sam's assistant")
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=LONDON)  # a Monday
NOW = T0 + timedelta(days=3)  # Thu 3 Dec, 09:00


def settings(**changes: object) -> Settings:
    base = Settings(owners=(SAM,), assistant=ASSISTANT, timezone=LONDON)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(settings())


def ask(**changes: object) -> Thread:
    thread = Thread(
        id=7, kind=Kind.ASK, state=ThreadState.OPEN, subject="Intro to Acme", owner=SAM,
        counterparts=(JANE,), created=T0, root_message_id="ask-1@mail.example.com",
        last_owner_activity=T0,
        excerpt="Could you introduce me to someone on the platform team at Acme?",
    )
    return dataclasses.replace(thread, **changes)  # type: ignore[arg-type]


def offer(**changes: object) -> Thread:
    thread = Thread(
        id=8, kind=Kind.OFFER, state=ThreadState.OPEN, subject="Moving house", owner=SAM,
        counterparts=(BOB,), created=T0, root_message_id="offer-1@mail.example.net",
        last_owner_activity=T0, excerpt="I have a van on Saturday if that helps.",
    )
    return dataclasses.replace(thread, **changes)  # type: ignore[arg-type]


ANSWERED = ask(state=ThreadState.ANSWERED, answered_at=T0 + timedelta(hours=5),
               reply_excerpt="Happy to! I'll write to Priya today.")
DECLINED = offer(state=ThreadState.DECLINED, closed_at=NOW - timedelta(hours=2))
DONE = ask(state=ThreadState.DONE, answered_at=T0 + timedelta(hours=5),
           closed_at=T0 + timedelta(days=1), reply_excerpt="Happy to!")
NOTE = Thread(
    id=10, kind=Kind.NOTE, state=ThreadState.OPEN, subject="Renew passport", owner=SAM,
    counterparts=(), created=T0, root_message_id="note-1@mail.example.com",
    last_owner_activity=T0, excerpt="The forms are at the post office.",
)
WEEKLY_NOTE = dataclasses.replace(NOTE, repeat="FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0")
KEEP_IN_TOUCH = ask(repeat="FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=3;BYHOUR=9;BYMINUTE=0")
LEDGER = Ledger(
    PersonFigures(None, asks_made=5, asks_answered=4, median_hours_to_answer=6.5,
                  offers_received=2, thanks_sent=3, favours_returned=1, thanks_drafted=1),
    (
        PersonFigures(JANE, asks_made=3, asks_answered=3, median_hours_to_answer=5.0,
                      thanks_sent=2, favours_returned=1),
        PersonFigures(BOB, asks_made=2, asks_answered=1, median_hours_to_answer=30.0,
                      offers_received=2, thanks_sent=1),
    ),
)


def action(kind: ActionKind, thread: Thread | None, data: dict[str, str] | None = None,
           recipients: tuple[Address, ...] | None = None, key: str | None = None) -> Action:
    if recipients is None:
        to_counterpart = kind in COUNTERPART_ACTIONS
        recipients = thread.counterparts if to_counterpart and thread else (SAM,)
    return Action(
        key=key or f"t{thread.id if thread else 0}/{kind.value}/test",
        kind=kind,
        due=NOW,
        thread_id=thread.id if thread else None,
        recipients=recipients,
        data=data or {},
    )


def job(kind: ActionKind, thread: Thread | None, data: dict[str, str] | None = None,
        **extra: object) -> RenderJob:
    refs = extra.pop("references", (thread.root_message_id,) if thread else ())
    return RenderJob(action(kind, thread, data), thread, NOW, references=refs,  # type: ignore[arg-type]
                     **extra)  # type: ignore[arg-type]


def pending(kind: ActionKind, thread_id: int, **fields: object) -> Action:
    return dataclasses.replace(Action(f"t{thread_id}/{kind.value}", kind, NOW, thread_id),
                               **fields)  # type: ignore[arg-type]


#: A digest's threads: an open ask, an offer, an answered ask, a declined offer whose
#: thank-you is due, a done ask whose favour is to return, an ask with an unsent draft.
DIGEST_THREADS = (
    ask(id=1, expected=1), offer(id=2), ask(id=3, state=ThreadState.ANSWERED, subject="CV review",
                                            answered_at=T0 + timedelta(hours=5)),
    offer(id=4, state=ThreadState.DECLINED, closed_at=NOW - timedelta(hours=2)),
    ask(id=5, state=ThreadState.DONE, subject="Flat viewing", answered_at=T0 + timedelta(days=2),
        closed_at=T0 + timedelta(days=2, hours=1)),
    ask(id=6, subject="Q4 plan", created=T0 - timedelta(days=14),
        last_owner_activity=T0 - timedelta(days=14), expected=2),
)
DIGEST_HISTORY = {
    4: [pending(ActionKind.THANK_YOU_DRAFT, 4, id=40)],
    5: [pending(ActionKind.RETURN_FAVOR, 5, id=50)],
    6: [pending(ActionKind.FOLLOW_UP, 6, id=60, status=ActionStatus.SENT)],
}


#: One realistic job per kind (and the main variants), as the planner and outbox build them.
JOBS = {
    "receipt": job(ActionKind.RECEIPT, ask(), {
        "kind": "ask", "subject": "Intro to Acme", "counterparts": "Jane Doe <jane@example.org>",
        "next_kind": "follow_up", "next_due": (T0 + timedelta(days=3)).isoformat()}),
    "receipt-offer": job(ActionKind.RECEIPT, offer(), {
        "kind": "offer", "next_kind": "offer_follow_up",
        "next_due": (T0 + timedelta(days=1)).isoformat()}),
    "receipt-problem": job(ActionKind.RECEIPT, None, {
        "kind": "ask", "subject": "Intro to Acme",
        "problem": "I could not find who you asked: nobody but you and me is on the mail"}),
    "follow_up": job(ActionKind.FOLLOW_UP, ask(), {"number": "1", "of": "2"}),
    "follow_up-2": job(ActionKind.FOLLOW_UP, ask(), {"number": "2", "of": "2"}),
    "offer_follow_up": job(ActionKind.OFFER_FOLLOW_UP, offer(), {"number": "1", "of": "2"}),
    "closing_note": job(ActionKind.CLOSING_NOTE, ask()),
    "nudge": job(ActionKind.NUDGE, ask(), {"number": "1"}),
    "thank_you_draft": job(ActionKind.THANK_YOU_DRAFT, ANSWERED, {"flavour": "helped"}),
    "thank_you_draft-declined": job(ActionKind.THANK_YOU_DRAFT, DECLINED,
                                    {"flavour": "declined"}),
    "thank_you": job(ActionKind.THANK_YOU, ANSWERED, {"flavour": "helped", "requested": "send"}),
    "thank_you-declined": job(ActionKind.THANK_YOU, DECLINED, {"flavour": "declined"}),
    "return_favor": job(ActionKind.RETURN_FAVOR, DONE),
    "note_reminder": job(ActionKind.NOTE_REMINDER, NOTE, {"answering": NOTE.root_message_id}),
    "note_reminder-repeat": job(ActionKind.NOTE_REMINDER, WEEKLY_NOTE, {
        "answering": NOTE.root_message_id, "occurrence": NOW.isoformat()}),
    "receipt-note": job(ActionKind.RECEIPT, WEEKLY_NOTE, {
        "kind": "note", "subject": "Renew passport", "repeat": WEEKLY_NOTE.repeat or "",
        "next_kind": "note_reminder", "next_due": (T0 + timedelta(days=7)).isoformat()}),
    "check_in": job(ActionKind.CHECK_IN, KEEP_IN_TOUCH, {
        "people": "jane@example.org", "occurrence": NOW.isoformat()}),
    "nudge-check_in": job(ActionKind.NUDGE, KEEP_IN_TOUCH, {"flavour": "check_in",
                                                           "requested": "send"}),
    "letter": job(ActionKind.LETTER, DONE, {"about": "return_favor", "requested": "send"}),
    "letter-words": job(ActionKind.LETTER, offer(), {
        "about": "offer", "requested": "send",
        "text": "Hi Bob,\n\nThe van on Saturday at 10 would help most.\n  - boxes first\n\nSam"}),
    "thank_you-words": job(ActionKind.THANK_YOU, ANSWERED, {
        "requested": "send", "text": "Jane, you star. Thank you!\n\nSam"}),
    "digest": job(ActionKind.DIGEST, None, {"reason": "schedule"},
                  open_threads=DIGEST_THREADS, ledger=LEDGER,
                  digest=build_digest(DIGEST_THREADS, DIGEST_HISTORY, NOW, LONDON),
                  message_id="mh.0123456789abcdef01234567@example.com"),
    "digest-empty": job(ActionKind.DIGEST, None, {"reason": "status"}),
    "help": job(ActionKind.HELP, None),
    "help-unknown": job(ActionKind.HELP, ask(), {"unknown_command": "frobnicate"}),
    "command_reply": job(ActionKind.COMMAND_REPLY, ask(), {
        "command": "snooze 3 days", "result": "snoozed until 2026-12-06T09:00:00+00:00"}),
    "error_notice": job(ActionKind.ERROR_NOTICE, None, {
        "reason": "the mail has no From address", "subject": "Fwd: Intro",
        "folder": "mailhelper/errors"}),
    "error_notice-send": job(ActionKind.ERROR_NOTICE, ask(), {
        "reason": "The mail server refused it: 550 5.1.1 no such user",
        "failed_kind": "nudge", "failed_to": "jane@example.org"}),
}


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def flat(text: str) -> str:
    """Text with its line breaks and runs of spaces made single spaces."""
    return " ".join(text.split())


def reparse(message: EmailMessage) -> EmailMessage:
    parsed = BytesParser(policy=policy.default).parsebytes(message.as_bytes())
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_every_kind_has_a_realistic_job() -> None:
    assert {j.action.kind for j in JOBS.values()} == set(ActionKind)


def test_a_note_comes_back_in_its_own_thread_to_the_owner_alone(renderer: Renderer) -> None:
    message = reparse(renderer.render(JOBS["note_reminder"]))
    assert [a.addr_spec for a in message["To"].addresses] == ["sam@example.com"]
    assert message["Cc"] is None
    assert message["In-Reply-To"] == "<note-1@mail.example.com>"
    text, _ = parts(message)
    assert "The forms are at the post office." in flat(text)
    for command in ("done", "snooze 3 days", "cancel"):
        assert f"  {command} " in text


def test_a_check_in_carries_a_draft_and_send_sends_that_draft(renderer: Renderer) -> None:
    reminder, _ = parts(renderer.render(JOBS["check_in"]))
    letter, _ = parts(renderer.render(JOBS["nudge-check_in"]))
    assert "every 3 months on the 3rd at 09:00" in flat(reminder)
    draft = "wanted to check in: how are things with you?"
    assert draft in flat(reminder) and draft in flat(letter)
    assert "follow up" not in flat(letter)


@pytest.mark.parametrize("name", sorted(JOBS))
def test_every_kind_renders_a_complete_mail(renderer: Renderer, name: str) -> None:
    job_ = JOBS[name]
    message = reparse(renderer.render(job_))
    kind = job_.action.kind

    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    for part in (text, html, str(message["Subject"])):
        assert "{{" not in part and "{%" not in part and "{#" not in part
    assert text.strip() and "<html" in html and "</html>" in html
    subject = str(message["Subject"])
    assert subject and "\n" not in subject and "\r" not in subject

    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["X-Mailhelper-Action"] == kind.value
    assert message["MIME-Version"] == "1.0"
    assert message["Message-ID"] == (f"<{job_.message_id}>" if job_.message_id
                                     else make_message_id(job_.action.key, "example.com", b""))
    assert parsedate_to_datetime(str(message["Date"])) == NOW
    if job_.thread is not None:
        assert message["X-Mailhelper-Thread"] == str(job_.thread.id)
    else:
        assert message["X-Mailhelper-Thread"] is None

    if kind in COUNTERPART_ACTIONS:
        assert message["To"].addresses[0].addr_spec == job_.thread.counterparts[0].email  # type: ignore[union-attr]
        assert "snooze" not in text  # no commands for the counterpart
    else:
        assert message["From"].addresses[0].addr_spec == "helper@example.com"
        assert message["From"].addresses[0].display_name == "Sam's assistant"
        assert [a.addr_spec for a in message["To"].addresses] == ["sam@example.com"]
        assert message["Cc"] is None and message["Reply-To"] is None
        if kind is ActionKind.COMMAND_REPLY:
            # A confirmation is one line; the thread is its subject line.
            assert len(text.strip().splitlines()) == 1 and html.count("<p>") == 1
            return
        assert text.startswith("Hi Sam,")
        if kind is ActionKind.DIGEST:
            # The digest's commands name its numbered items; status and help stay words. An
            # empty digest has no items to name, so it shows no numbered examples.
            numbered = "Reply with one command per line, each naming an item by its number"
            assert (numbered in text) == (name != "digest-empty"), text
            assert 'href="mailto:helper@example.com?subject=Re%3A%20' in html
            assert "&amp;body=status" in html and "&amp;body=help" in html
            return
        # The commands close every mail to the owner, one line each with what it does: about
        # one thread only those that fit its state, without a thread all of them.
        # (The help mail's note on the digest's numbered commands is not a list of them.)
        tail = text[text.index("Reply with one of these"):].split("On the digest")[0]
        table = html[html.index("Reply with one of these"):].split("On the digest")[0]
        offered = commands_for(job_)
        for word in ("done", "send", "snooze", "decline", "cancel", "status", "help"):
            listed = any(line.strip().startswith(word) and len(line.split()) > 2
                         for line in tail.splitlines())
            assert listed == (word in offered), word
            assert (f">{word}" in table) == (word in offered), word
        # Every command is a link that writes it back to the assistant (one tap, one reply).
        assert table.count('<a href="mailto:helper@example.com?subject=Re%3A%20') == len(
            offered)


def commands_for(job_: RenderJob) -> set[str]:
    """The commands a mail to the owner should offer (SPEC.md "commands by reply")."""
    thread = job_.thread
    if job_.action.kind is ActionKind.RECEIPT:
        # The likeliest command and help, which lists the rest.
        if thread is None:
            return {"help"}
        return {"decline" if thread.kind is Kind.OFFER else "cancel", "help"}
    if thread is None:
        return {"done", "send", "snooze", "decline", "cancel", "status", "help"}
    # The help mail about a thread offers what fits its state, as every other mail does.
    live = thread.state in (ThreadState.OPEN, ThreadState.ANSWERED)
    words = {"status", "help"}
    if live:
        words.add("done")
    if job_.action.kind in (ActionKind.FOLLOW_UP, ActionKind.THANK_YOU_DRAFT, ActionKind.CHECK_IN,
                            ActionKind.OFFER_FOLLOW_UP, ActionKind.RETURN_FAVOR):
        words.add("send")  # the draft, or the owner's own words below "send"
    if thread.state is ThreadState.OPEN:
        words.add("snooze")
    if live and thread.kind is Kind.OFFER:
        words.add("decline")
    if thread.state is not ThreadState.CANCELLED:
        words.add("cancel")
    return words


def test_the_receipt_says_what_was_understood_and_when_it_will_act(renderer: Renderer) -> None:
    text, html = parts(renderer.render(JOBS["receipt"]))
    text = flat(text)  # text parts are wrapped at 78 characters
    assert ("Tracking your ask to Jane Doe: I'll remind you on "
            "Thu 3 Dec, 09:00, if Jane hasn't replied.") in text
    assert "Intro to Acme" not in text, "the subject is the mail's own subject line"
    assert "Intro to Acme" in str(renderer.render(JOBS["receipt"])["Subject"])
    assert "Thu 3 Dec, 09:00" in html


def test_a_receipt_that_could_not_understand_says_why_and_what_to_do(renderer: Renderer) -> None:
    message = renderer.render(JOBS["receipt-problem"])
    text, _ = parts(message)
    assert message["Subject"] == "Not tracked yet: “Intro to Acme”"
    assert "I could not find who you asked" in text
    assert "helper@example.com) in Cc" in text and "helper+offer@example.com" in text
    assert sum(1 for line in text.splitlines() if line.strip()) <= 10


def test_the_follow_up_carries_a_ready_draft_and_says_how_to_send_it(renderer: Renderer) -> None:
    text, _ = parts(renderer.render(JOBS["follow_up"]))
    assert "Hi Jane," in text and "Thanks,\nSam" in text
    assert 'Reply "send"' in text and "write to Jane yourself" in flat(text)
    assert "copy it" not in text, "the draft is signed by the assistant: not the owner's to copy"
    second, _ = parts(renderer.render(JOBS["follow_up-2"]))
    assert "last reminder" in second and "14 days" in second


def test_the_nudge_sends_the_same_words_the_reminder_showed(renderer: Renderer) -> None:
    reminder, _ = parts(renderer.render(JOBS["follow_up"]))
    nudge, nudge_html = parts(renderer.render(JOBS["nudge"]))
    assert nudge.strip() in reminder, "the whole letter, its last line too, is the draft"
    assert nudge.strip().endswith("Sam Rivera's mail assistant, on Sam's behalf (Sam is in Cc)")
    assert "Sam Rivera&#39;s mail assistant, on Sam&#39;s behalf" in nudge_html


def test_thanks_for_help_and_thanks_for_an_offer_declined_differ(renderer: Renderer) -> None:
    helped, _ = parts(renderer.render(JOBS["thank_you"]))
    declined, _ = parts(renderer.render(JOBS["thank_you-declined"]))
    assert "Hi Jane," in helped and "Hi Bob," in declined
    assert "didn't need to take you up on it" in flat(declined)
    assert "didn't need" not in helped
    # The first thanks in the thread is no "thanks again"; the aside takes its comma.
    assert "Thank you for offering to help. As it turned out, Sam didn't need" in flat(declined)
    assert "again" not in declined
    draft, _ = parts(renderer.render(JOBS["thank_you_draft-declined"]))
    assert "offer you didn't use" in flat(draft) and 'Reply "send"' in draft


def test_the_closing_note_lets_snooze_keep_the_ask_alive(renderer: Renderer) -> None:
    message = renderer.render(JOBS["closing_note"])
    text, _ = parts(message)
    assert "stop tracking it" in text and 'Reply "snooze 1 week"' in text
    assert "  snooze 1 week  " in text


def test_return_the_favour_names_who_helped_with_what_and_when(renderer: Renderer) -> None:
    message = renderer.render(JOBS["return_favor"])
    text = flat(parts(message)[0])
    assert message["Subject"] == "Return the favour: Jane helped with “Intro to Acme”"
    assert "Jane Doe helped you: you asked on" in text
    assert "Intro to Acme" not in text.split("----")[0], "the subject is the mail's subject line"
    assert "(Mon 30 Nov)" in text and "Is there anything I could help you with" in text


def test_the_digest_numbers_what_waits_on_the_owner_and_shows_the_figures(
    renderer: Renderer,
) -> None:
    message = renderer.render(JOBS["digest"])
    text, html = parts(message)
    assert message["Subject"] == ("Your digest: 1 draft to send, 1 thank-you due, 1 answered, "
                                  "1 open ask, 1 offer waiting, 1 favour to return")
    lines = [line.strip() for line in text.splitlines()]
    # Numbered in the order listed, a section for each kind of thing to do, each item with
    # the commands that would act on it.
    for heading, entry, commands in [
        ("DRAFTS READY TO SEND (1)", "1. Jane Doe: “Q4 plan”, your follow-up is drafted",
         "send 1 · done 1 · snooze 1 3 days · cancel 1"),
        ("THANKS DUE (1)", "2. Bob Lee: “Moving house”, offer not taken up",
         "cancel 2"),
        ("ANSWERED: SAY DONE WHEN IT'S SETTLED (1)", "3. Jane Doe: “CV review”, answered",
         "done 3 · cancel 3"),
        ("WAITING FOR AN ANSWER (1)", "4. Jane Doe: “Intro to Acme”, asked Mon 30 Nov",
         "done 4 · snooze 4 3 days · cancel 4"),
        ("OFFERS WAITING ON YOU (1)", "5. Bob Lee: “Moving house”, offered 3 days ago",
         "done 5 · snooze 5 3 days · decline 5 · cancel 5"),
        ("FAVOURS TO RETURN (1)", "6. Jane Doe: “Flat viewing”, helped Wed 2 Dec",
         "cancel 6"),
    ]:
        # (text parts wrap at 78 characters: read the item as one line)
        assert re.search(re.escape(f"{heading} {entry}") + r"[^·]*? " + re.escape(commands)
                         + r"( [A-Z]|$)", flat(text)), heading
    assert "THIS WEEK (from Mon 30 Nov): 3 asks, 2 answered ▇▇░ 2/3" in lines
    assert "ALL TIME: 4 asks, 2 answered ▇▇░░ 2/4" in lines
    assert "30 Nov  ▇▇░ 2/3" in text and "16 Nov  ░ 0/1" in text
    assert "Answered before a follow-up: 2; after one: 0" in text
    assert "Time to a first answer: same day 1 · 1–3 days 1 · later 0 · none yet 2" in text
    assert "Offers: taken up 0 · declined 1 · lapsed 0 · waiting 1" in text
    assert "You expected 3 yeses and got 0 answers:" in text
    assert "Mon 16 Nov, “Q4 plan”: expected 2, got 0" in text
    assert flat(text).endswith(
        "2 of your 4 asks were answered: we tend to expect about half as many yeses as we "
        "get (Flynn & Lake, 2008). Ask away. — Sam's assistant Reply with one command per "
        "line, each naming an item by its number: \"send 1\", \"done 3\", \"snooze 4 3 days\", "
        "\"decline 5\", \"cancel 2\". Or on the first line: status get a digest of everything "
        "open, right away help how I work: all the commands and tags")
    # The HTML: every item command a mailto: link, the chart table cells, no image.
    assert html.count('<a href="mailto:helper@example.com?subject=Re%3A%20Your%20digest') == (
        4 + 2 + 1 + 3 + 4 + 1 + 2)
    assert "&amp;body=snooze%204%203%20days" in html
    assert "%5B%230123456789%5D" in html  # the token of the digest's Message-ID
    assert html.count("background:#2da44e;") == 2  # the answered asks, both this week
    assert "<img" not in html and "http" not in html.replace("http-equiv", "")
    assert "Thank-yous</td><td><b>3 sent, 1 drafted</b>" in html


def test_an_empty_digest_says_so_and_ends_truthfully(renderer: Renderer) -> None:
    message = renderer.render(JOBS["digest-empty"])
    text, _ = parts(message)
    assert message["Subject"] == "Status: nothing open"
    assert "Nothing is waiting on you." in text and "THIS WEEK (from Mon 30 Nov): no asks" in text
    assert "Ask away" not in text and "Nothing asked yet." in text
    assert "WAITING FOR AN ANSWER" not in text  # empty sections are left out


def test_command_replies_write_times_for_people(renderer: Renderer) -> None:
    message = renderer.render(JOBS["command_reply"])
    text, _ = parts(message)
    assert "Snoozed until Sun 6 Dec, 09:00." in text
    assert "2026-12-06T" not in text


def test_an_error_notice_says_which_mail_and_why(renderer: Renderer) -> None:
    message = renderer.render(JOBS["error_notice"])
    text, _ = parts(message)
    assert "“Fwd: Intro”" in str(message["Subject"]), "the subject names the mail"
    assert "“Fwd: Intro”" not in text and "the mail has no From address." in text
    assert '"mailhelper/errors"' in text
    sent, _ = parts(renderer.render(JOBS["error_notice-send"]))
    assert "couldn't send the follow-up to jane@example.org" in sent and "550 5.1.1" in sent


def test_help_for_an_unknown_command_quotes_it(renderer: Renderer) -> None:
    message = renderer.render(JOBS["help-unknown"])
    text, _ = parts(message)
    assert "frobnicate" in str(message["Subject"])
    assert 'I didn\'t understand "frobnicate"' in text and "TAGS" in text


# -- threading and addressing ------------------------------------------------------------


def test_counterpart_mail_goes_out_in_thread(renderer: Renderer) -> None:
    refs = ("ask-1@mail.example.com", "<reply-2@mail.example.org>", "ask-3@mail.example.com")
    message = reparse(renderer.render(job(ActionKind.NUDGE, ask(), references=refs)))
    assert message["In-Reply-To"] == "<ask-3@mail.example.com>"
    assert str(message["References"]).split() == [
        "<ask-1@mail.example.com>", "<reply-2@mail.example.org>", "<ask-3@mail.example.com>"
    ]
    assert message["Subject"] == "Re: Intro to Acme"
    assert message["From"].addresses[0].addr_spec == "helper@example.com"
    assert [a.addr_spec for a in message["To"].addresses] == ["jane@example.org"]
    assert [a.addr_spec for a in message["Cc"].addresses] == ["sam@example.com"]
    reply_to = [a.addr_spec for a in message["Reply-To"].addresses]
    assert reply_to[0] == "sam@example.com" and "helper@example.com" in reply_to


def test_without_references_the_thread_root_is_replied_to(renderer: Renderer) -> None:
    message = renderer.render(job(ActionKind.THANK_YOU, ANSWERED, references=()))
    assert message["In-Reply-To"] == "<ask-1@mail.example.com>"
    assert message["References"] == "<ask-1@mail.example.com>"


def test_unsafe_and_long_message_ids(renderer: Renderer) -> None:
    long_id = "AM0PR01MB" + "1234567890ABCDEF" * 4 + "@AM0PR01MB1234.eurprd01.prod.outlook.com"
    refs = (long_id, "bad id@x\r\nBcc: evil@x.com", "", "<>")
    raw = renderer.render(job(ActionKind.NUDGE, ask(), references=refs)).as_bytes()
    assert b"=?utf-8?" not in raw.split(b"\r\n\r\n")[0]  # headers: no encoded words
    assert b"Bcc" not in raw
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert message["In-Reply-To"] == f"<{long_id}>"
    assert str(message["References"]).split() == [f"<{long_id}>"]


def test_send_as_owner_sends_counterpart_mail_from_the_owner() -> None:
    renderer = Renderer(settings(send_as="owner"))
    message = reparse(renderer.render(JOBS["nudge"]))
    assert message["From"].addresses[0].addr_spec == "sam@example.com"
    assert message["From"].addresses[0].display_name == "Sam Rivera"
    assert [a.addr_spec for a in message["Cc"].addresses] == ["helper@example.com"]
    assert message["Reply-To"] is None
    text, _ = parts(message)
    assert "Sent for" not in text
    owner_mail = renderer.render(JOBS["follow_up"])
    assert owner_mail["From"].addresses[0].addr_spec == "helper@example.com"
    reminder, _ = parts(owner_mail)
    assert "from your address" in reminder


def test_answers_to_the_owner_thread_under_the_mail_they_answer(renderer: Renderer) -> None:
    reply = dataclasses.replace(JOBS["command_reply"], answering="cmd-9@mail.example.com")
    message = renderer.render(reply)
    assert message["In-Reply-To"] == "<cmd-9@mail.example.com>"
    assert renderer.render(JOBS["follow_up"])["In-Reply-To"] is None


def test_date_is_in_the_configured_zone() -> None:
    renderer = Renderer(settings(timezone=ZoneInfo("America/New_York")))
    message = renderer.render(JOBS["help"])
    assert str(message["Date"]).endswith("-0500")
    assert parsedate_to_datetime(str(message["Date"])) == NOW


def test_non_ascii_names_and_subjects_round_trip(renderer: Renderer) -> None:
    zoe = Address("zoe@example.org", "Zoë Ågren-Łukasz")
    owner = Address("sam@example.com", "Sám Rivéra")
    thread = ask(subject="Café ☕ introductions — 日本語", counterparts=(zoe,), owner=owner,
                 excerpt="Könntest du mich vorstellen?")
    raw = renderer.render(job(ActionKind.NUDGE, thread)).as_bytes()
    assert raw.isascii()  # RFC 2047 headers, transfer-encoded bodies
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert str(message["Subject"]) == "Re: Café ☕ introductions — 日本語"
    assert message["To"].addresses[0].display_name == "Zoë Ågren-Łukasz"
    assert message["Cc"].addresses[0].display_name == "Sám Rivéra"
    text, html = parts(message)
    assert "Hi Zoë," in text and "Zoë" in html
    # A German ask gets no English recap in the letter; the owner's reminder still quotes it.
    assert "Könntest" not in text and "Könntest" not in html
    assert "Könntest du mich vorstellen?" in parts(renderer.render(job(ActionKind.FOLLOW_UP,
                                                                       thread)))[0]


def test_an_idn_domain_is_sent_in_its_ascii_form(renderer: Renderer) -> None:
    thread = ask(counterparts=(Address("anna@bücher.de", "Anna"),))
    message = reparse(renderer.render(job(ActionKind.NUDGE, thread)))
    assert message["To"].addresses[0].addr_spec == "anna@xn--bcher-kva.de"


# -- hostile input -----------------------------------------------------------------------

HOSTILE_NAME = 'Doe, "JD" Jane\r\nBcc: evil@x.com'
HOSTILE_SUBJECT = "Hi\r\nBcc: evil@x.com\r\n\r\nbody"


def test_no_header_can_be_injected(renderer: Renderer) -> None:
    evil = Address("jane@example.org", HOSTILE_NAME)
    thread = ask(subject=HOSTILE_SUBJECT, counterparts=(evil,),
                 owner=Address("sam@example.com", "Sam\nX-Evil: 1"))
    for kind in (ActionKind.NUDGE, ActionKind.FOLLOW_UP, ActionKind.RETURN_FAVOR):
        raw = renderer.render(job(kind, thread)).as_bytes()
        head = raw.split(b"\r\n\r\n")[0]
        assert b"\r\nBcc:" not in head and b"\r\nX-Evil:" not in head
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert message["Bcc"] is None and message["X-Evil"] is None
        assert "\n" not in str(message["Subject"]) and "Bcc: evil@x.com" in str(message["Subject"])
        if kind is ActionKind.NUDGE:
            [to] = message["To"].addresses
            assert to.addr_spec == "jane@example.org"
            assert to.display_name == 'Doe, "JD" Jane Bcc: evil@x.com'


def test_mail_content_is_never_template_source(renderer: Renderer) -> None:
    subject = "{{ config }} {% raw %}{{ 7*7 }}{% endraw %} {{ ''.__class__ }}"
    thread = ask(subject=subject, excerpt="{% for x in range(3) %}{{ x }}{% endfor %}",
                 counterparts=(Address("jane@example.org", "{{ owner.email }}"),))
    message = renderer.render(job(ActionKind.FOLLOW_UP, thread))
    text, html = parts(message)
    text = flat(text)
    assert subject in str(message["Subject"])
    # The subject is the mail's Subject line, never pasted into the text (issue: short mail);
    # the ask's own words and the name are shown as they are.
    assert "{% for x in range(3) %}{{ x }}{% endfor %}" in text
    assert "{{ owner.email }}" in text
    assert "49" not in text and "012" not in text and "sam@example.com" not in text
    assert "{{ config }}" in html


def test_html_is_escaped_and_text_is_not(renderer: Renderer) -> None:
    thread = ask(subject="<script>alert(1)</script>",
                 counterparts=(Address("jane@example.org", "<b>Jane</b>"),),
                 excerpt="Could you check that a < b & c > d for me?")
    for kind in (ActionKind.FOLLOW_UP, ActionKind.NUDGE, ActionKind.THANK_YOU_DRAFT):
        message = renderer.render(job(kind, thread))
        text, html = parts(message)
        assert "<script>" not in html and "&lt;script&gt;" in html
        assert "<b>Jane</b>" not in html and "&lt;b&gt;Jane&lt;/b&gt;" in html
        if kind is not ActionKind.THANK_YOU_DRAFT:  # that one quotes the reply, not the ask
            assert "a &lt; b &amp; c &gt; d" in html and "a < b & c > d" in text
        assert "<b>Jane</b>" in text
        # The subject stays on its Subject line; a text part never escapes anything.
        assert "&lt;" not in text and "&amp;" not in text
        assert "<script>" in str(message["Subject"])


def test_one_line_flattens_everything_that_could_break_a_line() -> None:
    assert one_line("a\r\nb\x00c\u2028d\u202ee\tf") == "a b c d e f"
    assert one_line("word " * 100, 20).endswith("…") and len(one_line("word " * 100, 20)) <= 20


def test_paragraphs_escape_even_markup() -> None:
    from markupsafe import Markup

    assert str(paragraphs(Markup("<i>x</i>\n\ny"))) == "<p>&lt;i&gt;x&lt;/i&gt;</p>\n<p>y</p>"


# -- composition errors ------------------------------------------------------------------


def test_counterpart_mail_needs_its_thread(renderer: Renderer) -> None:
    lonely = RenderJob(action(ActionKind.NUDGE, None, recipients=(JANE,)), None, NOW)
    with pytest.raises(CompositionError, match="thread"):
        renderer.render(lonely)


def test_an_address_no_header_can_carry_is_refused(renderer: Renderer) -> None:
    thread = ask(counterparts=(Address("jane@example.org>, evil@x.com", "Jane"),))
    with pytest.raises(CompositionError, match="not an address"):
        renderer.render(job(ActionKind.NUDGE, thread))


def test_now_must_be_aware(renderer: Renderer) -> None:
    naive = dataclasses.replace(JOBS["help"], now=datetime(2026, 12, 3, 9, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        renderer.render(naive)


# -- Message-IDs -------------------------------------------------------------------------


def test_message_ids_are_deterministic_per_action_key(renderer: Renderer) -> None:
    key, secret = "t7/follow_up/20261130T090000Z/1", bytes(range(32))
    assert make_message_id(key, "example.com", secret) == make_message_id(key, "EXAMPLE.com",
                                                                          secret)
    assert make_message_id(key, "example.com", secret) != make_message_id(key + "x",
                                                                          "example.com", secret)
    mid = make_message_id(key, "example.com", secret)
    assert mid.startswith("<mh.") and mid.endswith("@example.com>")
    assert looks_like_ours(mid, "example.com") and looks_like_ours(mid.strip("<>"), "example.com")
    assert not looks_like_ours(mid, "other.example") and not looks_like_ours("x@example.com",
                                                                              "example.com")
    first = renderer.render(JOBS["nudge"]).as_bytes()
    again = renderer.render(JOBS["nudge"]).as_bytes()
    assert first == again  # same job, same bytes: a re-composed mail is the same mail


def test_bracketed_refuses_ids_that_could_break_a_header() -> None:
    assert bracketed(" <a@b> ") == "<a@b>" and bracketed("a@b") == "<a@b>"
    for bad in ("", "<>", "a b@c", "a@b\r\nBcc: x", "a<b@c", "x" * 300):
        assert bracketed(bad) is None


# -- templates_dir overrides -------------------------------------------------------------


def test_an_override_replaces_the_default(tmp_path: Path) -> None:
    (tmp_path / "follow_up.subject.j2").write_text("Custom: {{ thread.subject }}\n")
    renderer = Renderer(settings(templates_dir=tmp_path))
    assert renderer.render(JOBS["follow_up"])["Subject"] == "Custom: Intro to Acme"
    assert renderer.render(JOBS["closing_note"])["Subject"].startswith("Closing:")
    assert renderer.overrides == (tmp_path / "follow_up.subject.j2",)


def test_a_broken_override_fails_at_start_up_naming_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "receipt.txt.j2"
    broken.write_text("Hi {{ owner.first }},\n\n{% if %}\nOops.\n")
    with pytest.raises(TemplateProblem) as caught:
        Renderer(settings(templates_dir=tmp_path))
    assert caught.value.template == str(broken) and caught.value.line == 3
    assert str(broken) in str(caught.value) and "line 3" in str(caught.value)

    broken.write_text("Hi {{ owner.first }},\n\n{% if problem %}\nOops.\n")
    with pytest.raises(TemplateProblem) as caught:
        Renderer(settings(templates_dir=tmp_path))
    assert caught.value.template == str(broken)
    assert caught.value.line == 4  # where the file ends with the if still open
    assert "endif" in str(caught.value)


def test_an_override_with_an_unknown_variable_fails_at_start_up(tmp_path: Path) -> None:
    broken = tmp_path / "digest.txt.j2"
    broken.write_text("Hi,\n\n{{ no_such_thing }}\n")
    with pytest.raises(TemplateProblem) as caught:
        Renderer(settings(templates_dir=tmp_path))
    assert caught.value.template == str(broken) and caught.value.line == 3
    assert "no_such_thing" in str(caught.value)


def test_an_override_cannot_escape_the_sandbox(tmp_path: Path) -> None:
    (tmp_path / "help.txt.j2").write_text("{{ owner.__class__.__init__.__globals__ }}\n")
    with pytest.raises(TemplateProblem, match=r"help\.txt\.j2.*unsafe"):
        Renderer(settings(templates_dir=tmp_path))


def test_a_misnamed_override_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "reciept.txt.j2").write_text("Hi\n")
    (tmp_path / "_mine.txt.j2").write_text("{% macro x() %}x{% endmacro %}\n")
    with pytest.raises(TemplateProblem, match=r"reciept\.txt\.j2"):
        Renderer(settings(templates_dir=tmp_path))


def test_a_missing_templates_dir_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(TemplateProblem, match="not a folder"):
        Renderer(settings(templates_dir=tmp_path / "nope"))


def test_a_cut_excerpt_is_not_quoted_back_to_the_counterpart(renderer: Renderer) -> None:
    thread = ask(excerpt="Could you introduce me to someone at Acme who works on…")
    letter, _ = parts(renderer.render(job(ActionKind.NUDGE, thread)))
    reminder, _ = parts(renderer.render(job(ActionKind.FOLLOW_UP, thread)))
    assert "who works on" not in letter and "“" not in letter
    assert "who works on…" in reminder  # the owner still sees what they asked
