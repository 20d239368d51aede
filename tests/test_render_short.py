"""Short owner mail, rendered without any server: a receipt fits a phone screen (at most 10
non-empty text lines, the HTML no longer), a confirmation is one line, and the subject is never
pasted into the sentences of receipts, reminders, closing notes or confirmations."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import timedelta

import pytest

from mailhelper.compose.render import Renderer, RenderJob, _sample_jobs
from mailhelper.model.values import Action, ActionKind, Kind, Thread
from tests.test_render import NOW, SAM, parts, settings
from tests.test_render_people import GROUPS, NAMES, SUBJECTS, thread_for

MAX_RECEIPT_LINES = 10
RENDERER = Renderer(settings())


def flat(text: str) -> str:
    """Text as one line: a subject wrapped over two lines is still found."""
    return " ".join(text.split())


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def visible(html: str) -> list[str]:
    """The lines an HTML part shows: one per paragraph, line break, list item or table row."""
    body = html.split("<body", 1)[1].split(">", 1)[1]
    body = re.sub(r"</(?:p|li|tr|h\d|blockquote|div)>|<br>", "\n", body)
    return lines(re.sub(r"<[^>]+>", "", body))


def receipt(thread: Thread | None, **data: str) -> RenderJob:
    people = thread.counterparts if thread is not None else ()
    values = {"kind": thread.kind.value if thread is not None else "ask",
              "counterparts": ", ".join(p.formatted() for p in people),
              "next_due": (NOW + timedelta(days=3)).isoformat(), **data}
    action = Action("r/1", ActionKind.RECEIPT, NOW, thread.id if thread else None, (SAM,),
                    values)
    return RenderJob(action, thread, NOW)


def cases() -> list[tuple[str, RenderJob]]:
    out = []
    for group in GROUPS:
        people = tuple(NAMES[key] for key in group)
        for subject in SUBJECTS:
            for kind, first in ((Kind.ASK, "follow_up"), (Kind.ASK, "nudge"),
                                (Kind.ASK, "closing_note"), (Kind.OFFER, "offer_follow_up")):
                out.append((f"{kind.value}/{first}/{'+'.join(group)}/{subject[:6]}",
                            receipt(thread_for(people, subject, kind), next_kind=first)))
    many = json.dumps([f"bad{i}..x@example.org, because it is not a valid address"
                       for i in range(7)])
    out.append(("left out", receipt(thread_for((NAMES["José"],), SUBJECTS[0]),
                                    next_kind="follow_up", left_out=many)))
    out.append(("problem", receipt(None, subject=SUBJECTS[0], left_out=many,
                                   problem="I could not find who you asked: nobody but you "
                                           "and me is on the mail")))
    return out


@pytest.mark.parametrize(("name", "job"), cases(), ids=[name for name, _ in cases()])
def test_a_receipt_fits_a_phone_screen(name: str, job: RenderJob) -> None:
    message = RENDERER.render(job)
    text, html = parts(message)
    assert len(lines(text)) <= MAX_RECEIPT_LINES, text
    assert len(visible(html)) <= len(lines(text)), visible(html)
    commands = text.split("Reply with one of these on the first line:")[1]
    words = [line.split()[0] for line in lines(commands) if not line.startswith("   ")]
    assert len(words) == (1 if job.thread is None else 2), "the likeliest and help (the rest)"
    if job.thread is not None:
        subject = job.thread.subject
        shown = flat(" ".join(visible(html)))
        assert subject in str(message["Subject"])
        assert subject not in flat(text) and subject not in shown


@pytest.mark.parametrize("kind", [ActionKind.FOLLOW_UP, ActionKind.OFFER_FOLLOW_UP,
                                  ActionKind.CLOSING_NOTE, ActionKind.RETURN_FAVOR,
                                  ActionKind.THANK_YOU_DRAFT])
@pytest.mark.parametrize("number", ["1", "2"])
def test_reminders_keep_the_subject_out_of_their_sentences(kind: ActionKind, number: str) -> None:
    subject = SUBJECTS[0]
    thread = thread_for((NAMES["José"], NAMES["Okafor"]), subject,
                        Kind.OFFER if kind is ActionKind.OFFER_FOLLOW_UP else Kind.ASK)
    action = Action("a/1", kind, NOW, thread.id, (SAM,), {"number": number, "of": "2"})
    text, _ = parts(RENDERER.render(RenderJob(action, thread, NOW)))
    own = text.split("-" * 63)[0] + text.split("-" * 63)[-1]  # the draft is a letter to them
    assert subject not in flat(own)


def test_a_confirmation_is_one_line() -> None:
    thread = thread_for((NAMES["José"],), SUBJECTS[0])
    for result in ("done: no more reminders on this thread", "snoozed until "
                   f"{(NOW + timedelta(days=3)).isoformat()} (first sending time after "
                   f"{(NOW + timedelta(days=2, hours=13)).isoformat()})",
                   "sent the draft to jose@example.org, jane@example.org"):
        action = Action("c/1", ActionKind.COMMAND_REPLY, NOW, thread.id, (SAM,),
                        {"command": "x", "result": result})
        message = RENDERER.render(RenderJob(action, thread, NOW))
        text, html = parts(message)
        assert len(lines(text)) == 1 and len(visible(html)) == 1, text
        assert SUBJECTS[0] not in flat(text) and SUBJECTS[0] in str(message["Subject"])



SAMPLE_SUBJECTS = ("Intro to Acme", "CV review", "Moving house", "Flat viewing",
                   "Renew passport", "Hello")
#: Where a subject may stand, on an indented line of its own: alone (a note's own words) or
#: as a label after a name or a day ("1.  Jane Doe: “Intro to Acme”, asked …").
LABEL = re.compile(r"^\s+(?:\d+\.?\s*)?(?:[^“”:]+[:,]\s)?“[^”]*”(?:[,:]\s.*)?$")


def prose(text: str) -> list[str]:
    """The text's paragraphs of prose, each made one line (a wrapped sentence is one)."""
    paragraphs, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.strip() and not line.startswith(" "):
            current.append(line)
            continue
        if current:
            paragraphs.append(" ".join(current))
            current = []
    return paragraphs


@pytest.mark.parametrize("send_as", ["assistant", "owner"])
def test_no_mail_pastes_a_subject_into_a_sentence(send_as: str) -> None:
    """Every kind, in the branches the sample jobs take (receipts, reminders, drafts,
    letters, notes, check-ins, the digest, help, confirmations, error notices): the subject
    may stand in the Subject header and as an indented label, never inside a sentence of the
    text or the HTML."""
    base = settings()
    renderer = Renderer(dataclasses.replace(base, send_as=send_as))
    for job in _sample_jobs(base):
        text, html = parts(renderer.render(job))
        labels = [line for line in text.splitlines() if line.startswith(" ")]
        for line in prose(text) + [line for line in labels if not LABEL.match(line)]:
            for subject in SAMPLE_SUBJECTS:
                assert subject not in line, (job.action.kind.value, line)
        for line in visible(html):
            if not LABEL.match(" " + line):
                for subject in SAMPLE_SUBJECTS:
                    assert subject not in line, (job.action.kind.value, line)


def test_help_names_notes_repeats_pause_and_expect() -> None:
    """The help mail may be long: it is where everything a receipt leaves out is told, in
    the text and in the HTML."""
    action = Action("h/1", ActionKind.HELP, NOW, None, (SAM,), {})
    text, html = parts(RENDERER.render(RenderJob(action, None, NOW)))
    shown = flat(" ".join(visible(html)))
    for words in ("a note to yourself", "helper+5d@example.com and nobody else", "every monday",
                  "check in with them", "pause until 6 April", "resume", "expect 2",
                  "send 2", "done 3", "cancel 1", "own words"):
        assert words in flat(text), words
        assert words in shown, words
