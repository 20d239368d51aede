"""Every mail about people, read as its recipient would, across a matrix of names as people
write them, one and three counterparts, both ``send_as`` modes and two subjects. Fails on
leftover template syntax, doubled spaces, a title used as a name ("Hi Dr.,"), a name left
"Last, First" or in capitals, a verb that disagrees with its people and text lines over 78
characters."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta

import pytest

from mailhelper.compose.render import Renderer, RenderJob
from mailhelper.model.values import Action, ActionKind, Address, Answer, Kind, Thread, ThreadState
from tests.test_render import NOW, SAM, T0, flat, parts, settings

NAMES = {
    "José": Address("jose@example.org", "José Núñez"),
    "Okafor": Address("jane@example.org", "Okafor, Jane"),
    "Dr.": Address("priya@uni.example", "Dr. Priya Raman"),
    "王": Address("wang@example.cn", "王小明"),
    "CAPS": Address("jdoe@example.com", "JANE DOE"),
    "bare": Address("jparker@example.net", ""),
}
GREETING = {"José": "José", "Okafor": "Jane", "Dr.": "Priya", "王": "王小明", "CAPS": "Jane",
            "bare": ""}
GROUPS = [(key,) for key in NAMES] + [("José", "Okafor", "Dr."), ("王", "CAPS", "bare")]
SUBJECTS = ("Could you look over the Q4 plan before Thursday?", "Привет — café à Zürich")

LEFTOVER = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}")
TITLE_AS_NAME = re.compile(
    r"\b(?:Dr|Prof|Mr|Mrs|Ms|Mx|Sir|Dame|Herr|Frau|Mme|Sr|Sra|Dra)\.?(?:[,:?!]|'s)")
EMPTY_NAME = re.compile(r"\b(?:Hi|Hello|Dear|from|to) [,.:?]|\s[,.:;?]\s|\bfrom[,.:?]")
DISAGREE = re.compile(r"\band (?:\w[\w.]* ){1,3}(?:replies|hasn't|has answered)\b")


def thread_for(people: tuple[Address, ...], subject: str, kind: Kind = Kind.ASK,
               state: ThreadState = ThreadState.OPEN, answered: int = 0) -> Thread:
    answers = tuple(Answer(p.email, T0 + timedelta(hours=5 + i), True, "Happy to help.")
                    for i, p in enumerate(people[:answered]))
    return Thread(
        id=7, kind=kind, state=state, subject=subject, owner=SAM, counterparts=people,
        created=T0, root_message_id="ask-1@mail.example.com", last_owner_activity=T0,
        excerpt="Could you look over the plan and tell me what is missing?",
        answers=answers,
        answered_at=answers[-1].at if answers and answered == len(people) else None,
        closed_at=T0 + timedelta(days=1) if state in (ThreadState.DONE,
                                                      ThreadState.DECLINED) else None,
        reply_excerpt="Happy to help." if answers else "",
    )


def jobs(people: tuple[Address, ...], subject: str) -> list[RenderJob]:
    every = ",".join(p.email for p in people)
    first = people[0].email
    rest = ",".join(p.email for p in people[1:]) or first
    open_ask = thread_for(people, subject)
    partly = thread_for(people, subject, answered=1)
    answered = thread_for(people, subject, state=ThreadState.ANSWERED, answered=len(people))
    done = thread_for(people, subject, state=ThreadState.DONE, answered=len(people))
    declined = thread_for(people, subject, kind=Kind.OFFER, state=ThreadState.DECLINED)
    offer = thread_for(people, subject, kind=Kind.OFFER)
    header = ", ".join(p.formatted() for p in people)
    K = ActionKind

    def job(kind: ActionKind, thread: Thread | None, data: dict[str, str]) -> RenderJob:
        to = tuple(p for p in people if p.email in data.get("people", every).split(","))
        recipients = to if kind in (K.NUDGE, K.THANK_YOU) else (SAM,)
        action = Action(f"t7/{kind.value}/m", kind, NOW, 7 if thread else None, recipients,
                        data)
        return RenderJob(action, thread, NOW, references=("ask-1@mail.example.com",),
                         open_threads=(open_ask, partly, answered, done, declined, offer))

    due = (T0 + timedelta(days=3)).isoformat()
    return [
        job(K.RECEIPT, open_ask, {"kind": "ask", "subject": subject, "counterparts": header,
                                  "next_kind": "follow_up", "next_due": due}),
        job(K.RECEIPT, offer, {"kind": "offer", "subject": subject, "counterparts": header,
                               "next_kind": "offer_follow_up", "next_due": due}),
        job(K.FOLLOW_UP, open_ask, {"number": "1", "of": "2"}),
        job(K.FOLLOW_UP, partly, {"number": "2", "of": "2", "people": rest}),
        job(K.OFFER_FOLLOW_UP, offer, {"number": "1", "of": "2"}),
        job(K.CLOSING_NOTE, partly, {"people": rest}),
        job(K.NUDGE, partly, {"number": "1", "people": rest}),
        job(K.THANK_YOU_DRAFT, partly, {"flavour": "helped", "people": first}),
        job(K.THANK_YOU_DRAFT, answered, {"flavour": "helped", "people": every}),
        job(K.THANK_YOU_DRAFT, declined, {"flavour": "declined", "people": every}),
        job(K.THANK_YOU, partly, {"flavour": "helped", "people": first}),
        job(K.THANK_YOU, answered, {"flavour": "helped", "people": every}),
        job(K.RETURN_FAVOR, done, {"people": every}),
        job(K.DIGEST, None, {"reason": "schedule"}),
    ]


RENDERERS = {mode: Renderer(settings(send_as=mode)) for mode in ("assistant", "owner")}


@pytest.mark.parametrize("mode", sorted(RENDERERS))
@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("group", GROUPS, ids="+".join)
def test_every_mail_about_people_reads_right(mode: str, subject: str,
                                             group: tuple[str, ...]) -> None:
    people = tuple(NAMES[key] for key in group)
    for job in jobs(people, subject):
        message = RENDERERS[mode].render(job)
        text, html = parts(message)
        what = f"{job.action.kind.value} {job.action.data}"
        for part in (text, html, str(message["Subject"])):
            assert not LEFTOVER.search(part.replace(subject, "")), what
        lines = text.splitlines()
        for before, line in zip(["", *lines], lines, strict=False):
            assert len(line) <= 78, f"{what}: {line!r}"
            if line.startswith("— "):
                assert before == "", f"{what}: the sign-off runs into {before!r}"
            prose = line.strip()
            if not line.startswith(" "):  # indented lines align columns on purpose
                assert "  " not in prose, f"{what}: {line!r}"
        readable = flat(text) + " " + str(message["Subject"])
        assert not TITLE_AS_NAME.search(readable), what
        assert not EMPTY_NAME.search(readable), f"{what}: {EMPTY_NAME.search(readable)}"
        assert not DISAGREE.search(readable), f"{what}: {DISAGREE.search(readable)}"
        assert "Okafor, Jane" not in readable and "JANE DOE" not in readable, what
        assert "Hi there" not in readable and "Hi ," not in readable, what


@pytest.mark.parametrize("group", GROUPS, ids="+".join)
def test_a_letter_greets_exactly_the_people_it_goes_to(group: tuple[str, ...]) -> None:
    people = tuple(NAMES[key] for key in group)
    renderer = RENDERERS["assistant"]
    for job in jobs(people, SUBJECTS[0]):
        if job.action.kind not in (ActionKind.NUDGE, ActionKind.THANK_YOU):
            continue
        text = parts(renderer.render(job))[0]
        names = [GREETING[key] for key, person in zip(group, people, strict=True)
                 if person in job.action.recipients]
        expected = ("Hi " + (" and ".join(names) if len(names) < 3 else
                             f"{names[0]}, {names[1]} and {names[2]}") + ","
                    if all(names) else "Hello,")
        assert text.splitlines()[0] == expected, job.action.data


def test_one_and_several_people_agree_with_their_verbs() -> None:
    people = tuple(NAMES[key] for key in ("José", "Okafor", "Dr."))
    renderer = RENDERERS["assistant"]
    receipt = jobs(people, SUBJECTS[0])[0]
    text = flat(parts(renderer.render(receipt))[0])
    assert "When they reply" in text and "if they haven't replied" in text
    assert "Tracking your ask to José Núñez, Jane Okafor and Dr. Priya Raman" in text
    one = jobs(people[:1], SUBJECTS[0])[0]
    assert "When José replies" in flat(parts(renderer.render(one))[0])
    reminder = jobs(people, SUBJECTS[0])[3]
    text = flat(parts(renderer.render(reminder))[0])
    assert "José has answered; Jane and Priya haven't yet." in text


def test_the_matrix_covers_the_names_the_issue_names() -> None:
    assert {p.name for p in NAMES.values()} >= {"José Núñez", "Okafor, Jane", "Dr. Priya Raman",
                                                "王小明", "JANE DOE", ""}
    assert any(len(g) == 3 for g in GROUPS) and dataclasses.is_dataclass(RenderJob)


def test_done_says_plainly_that_the_thread_is_settled() -> None:
    """``done`` on a partly answered ask ends the reminders for the silent too: said plainly,
    as on an ask nobody answered yet (once "it's sorted for everyone: no more reminders,
    about Jane and Priya either")."""
    people = (NAMES["José"], NAMES["Okafor"], NAMES["Dr."])
    [draft] = [j for j in jobs(people, SUBJECTS[0])
               if j.action.kind is ActionKind.THANK_YOU_DRAFT and j.thread is not None
               and j.thread.kind is Kind.ASK and j.thread.silent]
    text, html = parts(RENDERERS["assistant"].render(draft))
    assert "done it's settled; no more reminders on this thread" in flat(text)
    assert "either" not in text and "sorted" not in text and "either" not in html
    [fresh] = [j for j in jobs(people, SUBJECTS[0]) if j.action.kind is ActionKind.FOLLOW_UP
               and j.thread is not None and not j.thread.answers]
    assert "done it's settled; no more reminders on this thread" in flat(parts(
        RENDERERS["assistant"].render(fresh))[0])


def test_a_reminder_about_the_silent_says_the_answer_so_far_may_settle_it() -> None:
    """A follow-up reminder about Jane and Priya after José said yes tells the owner that
    José's answer may be enough; the letter to Jane and Priya does not mention it."""
    people = (NAMES["José"], NAMES["Okafor"], NAMES["Dr."])
    reminder = jobs(people, SUBJECTS[0])[3]
    text, html = parts(RENDERERS["assistant"].render(reminder))
    said = ('What José said may settle it: if it does, reply "done" and I\'ll stop reminding '
            "you.")
    assert said in flat(text)
    assert "What José said may settle it" in html
    letter = text.split("-" * 63)[1]
    assert "Jane" in letter and "settle" not in letter and "José" not in letter
