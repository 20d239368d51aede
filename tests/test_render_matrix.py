"""Every template, read as its recipient would: each kind found in the templates folder,
rendered (text and HTML) across names as people write them, one and three counterparts, both
``thank_you.mode`` settings, both ``send_as`` voices, and an English, a German and a Chinese
thread (subject and ask).

A rendered mail fails on: template syntax left in it; two spaces in a row inside a text line
(the command table's one column gap excepted); a title read as a name ("Hi Dr.,", "Dr.?") or
a name left as an address book writes it ("Okafor, Jane", "JANE DOE"); HTML whose tags do not
close in order; anything loaded from outside the mail (``src=``, an ``http(s)`` link, ``<img>``,
CSS ``url(...)``); a text line over 78 characters (RFC 5322 section 2.1.1), unless it is one
unbreakable address or URL alone. The kinds come from the templates folder, so a new kind is
rendered here the day its templates are added, with the sample data every kind takes.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import re
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser

import pytest

from mailhelper.compose.render import TEMPLATE_PACKAGE, Renderer, RenderJob
from mailhelper.model.settings import Settings
from mailhelper.model.values import (
    Action,
    ActionKind,
    Address,
    Answer,
    Kind,
    Ledger,
    PersonFigures,
    Thread,
    ThreadState,
)
from tests.test_render import ASSISTANT, LONDON, NOW, SAM, T0, flat, parts

PEOPLE = {
    "José": Address("jose@example.org", "José Núñez"),
    "Okafor": Address("jane@example.org", "Okafor, Jane"),
    "Dr.": Address("priya@uni.example", "Dr. Priya Raman"),
    "王": Address("wang@example.cn", "王小明"),
    "CAPS": Address("jdoe@example.com", "JANE DOE"),
    "jane.park@": Address("jane.park@example.net", ""),
    "info@": Address("info@acme.example", ""),
}
GROUPS = [(key,) for key in PEOPLE] + [("José", "Okafor", "Dr."), ("王", "CAPS", "info@")]
#: A thread's subject and the owner's ask, in English and not.
THREADS = {
    "en": ("Could you look over the Q4 plan before Thursday?",
           "Hi all, could you look over the Q4 plan before Thursday? Thanks!"),
    "de": ("Könntest du dir den Q4-Plan bis Donnerstag ansehen?",
           "Hallo, könntest du dir bitte den Plan bis Donnerstag ansehen? Danke!"),
    # Chinese is written without spaces: a sentence longer than a line must still be cut.
    "zh": ("周四之前能帮我看一下第四季度的计划吗？",
           "你好，能不能在周四之前帮我看一下第四季度的计划？如果有什么遗漏的地方，请告诉我。"
           "我们下周一要把它交给管理层，所以时间有点紧。如果你这周太忙，也没关系，"
           "告诉我一声就好，我再找别人看看。非常感谢你的帮助！"),
}
MODES = ("draft", "send")
VOICES = ("assistant", "owner")


def template_kinds() -> list[str]:
    """Every kind the templates folder has a subject template for (``_`` files are parts)."""
    root = importlib.resources.files(TEMPLATE_PACKAGE)
    return sorted(entry.name.removesuffix(".subject.j2") for entry in root.iterdir()
                  if entry.name.endswith(".subject.j2") and not entry.name.startswith("_"))


def renderer_for(mode: str, voice: str) -> Renderer:
    base = Settings(owners=(SAM,), assistant=ASSISTANT, timezone=LONDON,
                    send_as="owner" if voice == "owner" else "assistant")
    schedules = dataclasses.replace(base.schedules, thank_you=dataclasses.replace(
        base.schedules.thank_you, mode=mode))
    return Renderer(dataclasses.replace(base, schedules=schedules))


RENDERERS = {(mode, voice): renderer_for(mode, voice) for mode in MODES for voice in VOICES}


# -- the mails ---------------------------------------------------------------------------


def thread(people: tuple[Address, ...], language: str, kind: Kind = Kind.ASK,
           state: ThreadState = ThreadState.OPEN, answered: int = 0) -> Thread:
    subject, excerpt = THREADS[language]
    reply = {"de": "Gern, ich schaue es mir morgen an.", "zh": "没问题，我明天看。"}.get(
        language, "Happy to, tomorrow.")
    answers = tuple(Answer(p.email, T0 + timedelta(hours=5 + i), True, reply)
                    for i, p in enumerate(people[:answered]))
    return Thread(
        id=7, kind=kind, state=state, subject=subject, owner=SAM, counterparts=people,
        created=T0, root_message_id="ask-1@mail.example.com", last_owner_activity=T0,
        excerpt=excerpt, answers=answers,
        answered_at=answers[-1].at if answers and answered == len(people) else None,
        closed_at=(T0 + timedelta(days=1)
                   if state in (ThreadState.DONE, ThreadState.DECLINED) else None),
        reply_excerpt=reply if answers else "",
    )


def jobs(kind: str, people: tuple[Address, ...], language: str) -> Iterator[tuple[str, RenderJob]]:
    """(label, job) for each way a mail of ``kind`` is sent; a kind this test does not know
    yet gets a mail about an open ask and one about no thread."""
    every = ",".join(p.email for p in people)
    first = people[0].email
    rest = ",".join(p.email for p in people[1:]) or first
    open_ask = thread(people, language)
    partly = thread(people, language, answered=1)
    answered = thread(people, language, Kind.ASK, ThreadState.ANSWERED, answered=len(people))
    done = thread(people, language, Kind.ASK, ThreadState.DONE, answered=len(people))
    offer = thread(people, language, Kind.OFFER)
    declined = thread(people, language, Kind.OFFER, ThreadState.DECLINED)
    helped = thread(people, language, Kind.OFFER, ThreadState.ANSWERED)
    subject = THREADS[language][0]
    header = ", ".join(p.formatted() for p in people)
    due = (NOW + timedelta(days=3)).isoformat()
    ledger = Ledger(
        PersonFigures(None, asks_made=5, asks_answered=3, median_hours_to_answer=30.0,
                      offers_received=2, thanks_sent=2, favours_returned=1, thanks_drafted=1),
        tuple(PersonFigures(p, asks_made=2, asks_answered=1, median_hours_to_answer=5.0,
                            offers_received=1, thanks_sent=1) for p in people),
    )
    threads = (open_ask, partly, answered, done, offer, declined)
    note = dataclasses.replace(thread((), language, Kind.NOTE), counterparts=())
    weekly = dataclasses.replace(note, repeat="FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0")
    keep_in_touch = dataclasses.replace(open_ask, repeat="FREQ=MONTHLY;INTERVAL=3;BYHOUR=9;"
                                                         "BYMINUTE=0")

    def job(thread: Thread | None, data: dict[str, str], **extra: object) -> RenderJob:
        named = data.get("people", every).split(",")
        to_them = kind in ("nudge", "thank_you", "letter")
        recipients = tuple(p for p in people if p.email in named) if to_them else (SAM,)
        action = Action(f"t7/{kind}/matrix", ActionKind(kind), NOW,
                        thread.id if thread else None, recipients, data)
        return RenderJob(action, thread, NOW, references=("ask-1@mail.example.com",),
                         **extra)  # type: ignore[arg-type]

    samples: dict[str, list[tuple[str, RenderJob]]] = {
        "receipt": [
            ("ask", job(open_ask, {"kind": "ask", "subject": subject, "counterparts": header,
                                   "next_kind": "follow_up", "next_due": due})),
            ("offer", job(offer, {"kind": "offer", "subject": subject, "counterparts": header,
                                  "next_kind": "offer_follow_up", "next_due": due})),
            ("note", job(weekly, {"kind": "note", "subject": subject,
                                  "repeat": weekly.repeat or "", "next_kind": "note_reminder",
                                  "next_due": due})),
            ("problem", job(None, {"kind": "ask", "subject": subject,
                                   "problem": "I could not find who you asked",
                                   "left_out": '["info@acme.example, because it is a role"]'})),
        ],
        "follow_up": [
            ("first", job(open_ask, {"number": "1", "of": "2"})),
            ("second-partly", job(partly, {"number": "2", "of": "2", "people": rest})),
        ],
        "offer_follow_up": [("first", job(offer, {"number": "1", "of": "2"})),
                            ("second", job(offer, {"number": "2", "of": "2"}))],
        "closing_note": [("partly", job(partly, {"people": rest})),
                         ("none", job(open_ask, {"people": every}))],
        "nudge": [("first", job(open_ask, {"number": "1", "people": every})),
                  ("check-in", job(keep_in_touch, {"flavour": "check_in", "people": every})),
                  ("own-words", job(open_ask, {"number": "1", "people": every,
                                               "text": "Any news? A no is fine too.\n\nSam"})),
                  ("second-partly", job(partly, {"number": "2", "people": rest}))],
        "thank_you_draft": [
            ("partly", job(partly, {"flavour": "helped", "people": first})),
            ("all", job(answered, {"flavour": "helped", "people": every})),
            ("declined", job(declined, {"flavour": "declined", "people": every})),
            ("offer-helped", job(helped, {"flavour": "helped", "people": every})),
        ],
        "thank_you": [
            ("partly", job(partly, {"flavour": "helped", "people": first})),
            ("all-requested", job(answered, {"flavour": "helped", "requested": "send",
                                             "people": every})),
            ("declined", job(declined, {"flavour": "declined", "people": every})),
            ("offer-helped", job(helped, {"flavour": "helped", "people": every})),
        ],
        "return_favor": [("done", job(done, {"people": every}))],
        "note_reminder": [
            ("once", job(note, {"answering": note.root_message_id})),
            ("weekly", job(weekly, {"answering": note.root_message_id,
                                    "occurrence": NOW.isoformat()})),
        ],
        "check_in": [("every-3-months", job(keep_in_touch, {"occurrence": NOW.isoformat()}))],
        "letter": [
            ("return-favour", job(done, {"about": "return_favor", "requested": "send",
                                         "people": every})),
            ("offer-words", job(offer, {"about": "offer", "requested": "send", "people": every,
                                        "text": "Hi,\n\nThe van on Saturday at 10 would help "
                                                "most.\n  - boxes first\n\nSam"})),
        ],
        "digest": [
            ("schedule", job(None, {"reason": "schedule"}, open_threads=threads,
                             ledger=ledger)),
            ("status-empty", job(None, {"reason": "status"})),
        ],
        "help": [("asked", job(None, {})),
                 ("unknown", job(open_ask, {"unknown_command": "frobnicate",
                                            "note": "I did not understand that."}))],
        "command_reply": [
            ("snooze", job(open_ask, {"command": "snooze 3 days",
                                      "result": f"snoozed until {due}"})),
            ("send", job(answered, {"command": "send", "result": f"sent to {every}"})),
            ("no-thread", job(None, {"command": "done", "result": "marked done"})),
        ],
        "error_notice": [
            ("unreadable", job(None, {"reason": "it has no From address", "subject": subject,
                                      "folder": "mailhelper/errors"})),
            ("refused", job(open_ask, {"reason": "550 5.1.1 no such user",
                                       "failed_kind": "nudge", "failed_to": first})),
            ("compose", job(open_ask, {"reason": "no header can carry it",
                                       "failed_kind": "thank_you", "failed_to": first,
                                       "failed_stage": "compose"})),
            ("filed", job(None, {"filed_day": "2026-12-02", "filed_unreadable": "3",
                                 "filed_too_large": "1", "filed_failed": "0",
                                 "folder": "mailhelper/errors"})),
        ],
    }
    yield from samples.get(kind, [("thread", job(open_ask, {})), ("alone", job(None, {}))])


# -- what a recipient must never see ------------------------------------------------------

LEFTOVER = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}")
TITLES = r"(?:Dr|Prof|Mr|Mrs|Ms|Mx|Sir|Dame|Herr|Frau|Mme)"
#: A title standing for a name: "Hi Dr.,", "Dr.?", "Dr.'s", "from Dr. and Jane" (a title
#: before a word in lower case), "Dr. Priya" (a title before a first name).
TITLE_AS_NAME = re.compile(
    rf"\b{TITLES}\.?(?:[,:;?!)]|'s\b|\s+[a-z]|$)|\bDr\.? Priya\b(?! Raman)", re.MULTILINE)
#: A name as an address book files it, or a role read as a name.
RAW_NAME = re.compile(r"Okafor, Jane|JANE DOE|\b(?:Hi|Hello|Dear|Thanks,?) (?:Info|info)\b|"
                      r"\b(?:Hi|Hello|Dear) [,.:?]|\bHi there\b")
#: The command table of the owner's mails: a word or two, one gap, what it does.
COLUMNS = re.compile(r"  \S+(?: \S+)* {2,}\S+(?: \S+)*")
UNBREAKABLE = re.compile(r"\s*(?:<?[a-z][a-z0-9+.-]*://\S+|<?mailto:\S+|<?[^\s@]+@[^\s@]+>?)")
EXTERNAL = re.compile(r"""\b(?:src|background|srcset)\s*=|<img\b|url\s*\(|@import|"""
                      r"""\bhref\s*=\s*["']?\s*(?!mailto:|#)[a-z][a-z0-9+.-]*:""",
                      re.IGNORECASE)
VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                  "source", "track", "wbr"})


class _Balance(HTMLParser):
    """Every non-void tag opened is closed, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[tuple[str, int]] = []
        self.problems: list[str] = []
        self.text: list[str] = []
        self.skip = 0

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.text.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.open.append((tag, self.getpos()[0]))
        if tag in ("title", "style", "head"):
            self.skip += 1
        elif tag in ("p", "br", "div", "tr", "li", "h3"):
            self.text.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("title", "style", "head"):
            self.skip -= 1
        if tag in VOID:
            self.problems.append(f"line {self.getpos()[0]}: </{tag}> closes a void tag")
        elif not self.open or self.open[-1][0] != tag:
            top = f"<{self.open[-1][0]}> of line {self.open[-1][1]}" if self.open else "nothing"
            self.problems.append(f"line {self.getpos()[0]}: </{tag}> while {top} is open")
            if any(name == tag for name, _ in self.open):
                while self.open and self.open.pop()[0] != tag:
                    pass
        else:
            self.open.pop()


def html_problems(html: str) -> list[str]:
    checker = _Balance()
    checker.feed(html)
    checker.close()
    found = list(checker.problems)
    found += reading_problems("".join(checker.text), "")
    found += [f"<{tag}> of line {line} is never closed" for tag, line in checker.open]
    found += [f"loads from outside: {m[0]!r}" for m in EXTERNAL.finditer(html)]
    return found


def text_problems(text: str) -> list[str]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if len(line) > 78 and not UNBREAKABLE.fullmatch(line):
            found.append(f"line {number} has {len(line)} characters: {line!r}")
        if "  " in line.strip() and not COLUMNS.fullmatch(line):
            found.append(f"line {number} has two spaces in a row: {line!r}")
    return found


def reading_problems(text: str, subject: str) -> list[str]:
    readable = flat(text) + "\n" + flat(subject)
    found = [f"a title read as a name: {m[0]!r}" for m in TITLE_AS_NAME.finditer(readable)]
    found += [f"a name as an address book files it: {m[0]!r}"
              for m in RAW_NAME.finditer(readable)]
    if "  " in subject:
        found.append(f"two spaces in a row in the subject: {subject!r}")
    return found


def problems(renderer: Renderer, job: RenderJob) -> list[str]:
    message = renderer.render(job)
    text, html = parts(message)
    subject = str(message["Subject"])
    found = [f"template syntax left in the {name}"
             for name, part in (("subject", subject), ("text", text), ("HTML", html))
             if LEFTOVER.search(part)]
    return (found + text_problems(text) + [f"HTML: {p}" for p in html_problems(html)]
            + reading_problems(text, subject))


# -- the matrix --------------------------------------------------------------------------


@pytest.mark.parametrize("language", sorted(THREADS))
@pytest.mark.parametrize("group", GROUPS, ids="+".join)
@pytest.mark.parametrize("kind", template_kinds())
def test_every_template_reads_right(kind: str, group: tuple[str, ...], language: str) -> None:
    people = tuple(PEOPLE[key] for key in group)
    failures = []
    for (mode, voice), renderer in RENDERERS.items():
        for label, job in jobs(kind, people, language):
            failures += [f"{kind}/{label} thank_you.mode={mode} send_as={voice}: {problem}"
                         for problem in problems(renderer, job)]
    assert not failures, "\n".join(dict.fromkeys(failures))


def test_every_template_kind_is_an_action_the_assistant_sends() -> None:
    kinds = template_kinds()
    assert set(kinds) == {k.value for k in ActionKind}, "a kind without templates, or templates"
    assert "nudge" in kinds and "digest" in kinds


# -- the checks themselves catch what they are for ----------------------------------------


@pytest.mark.parametrize("html", [
    "<p>Hi <b>Jane</p></b>",
    "<div><p>unclosed</div>",
    "<p>ok</p><img alt=x>",
    '<a href="https://tracker.example/x">x</a>',
    '<div style="background:url(https://x.example/a.png)">x</div>',
    '<img src="cid:logo">',
])
def test_the_html_check_catches(html: str) -> None:
    assert html_problems(html)


def test_the_html_check_passes_mailto_links_and_void_tags() -> None:
    assert html_problems('<p>Reply <a href="mailto:helper@example.com?subject=Re%3A%20x&amp;'
                         'body=done">done</a><br><meta charset="utf-8"></p>') == []


@pytest.mark.parametrize(("text", "subject"), [
    ("Hi Dr.,\n", "x"), ("No reply from Dr. yet\n", "x"), ("x\n", "Follow up with Dr.?"),
    ("Hi Dr. Priya,\n", "x"), ("Tracking your ask to Okafor, Jane\n", "x"),
    ("Hi JANE DOE,\n", "x"), ("Hi Info,\n", "x"), ("Hi ,\n", "x"),
])
def test_the_name_check_catches(text: str, subject: str) -> None:
    assert reading_problems(text, subject)


def test_the_name_check_passes_names_written_right() -> None:
    assert reading_problems("Hi Priya,\nTracking your ask to Dr. Priya Raman and Dr. Raman's "
                            "offer; Jane Okafor and Jane Doe.\n", "Re: Dr. Raman") == []


def test_the_text_check_catches_long_lines_and_doubled_spaces_but_not_columns() -> None:
    assert text_problems("x" * 40 + " " + "y" * 40)
    assert text_problems("Two  spaces")
    assert text_problems("  snooze  3  days  remind you")
    assert text_problems("  snooze 3 days  remind you\n  https://example.org/" + "a" * 90
                         + "\n    <jane.park@example.net>") == []
