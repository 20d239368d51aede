"""The digest's items and figures: pure functions of threads, actions and a fixed clock."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mailhelper.decide.digest import (
    Period,
    answer_bands,
    bar,
    build,
    closing_line,
    expectations,
    follow_up_effect,
    items_data,
    items_of,
    number_items,
    offer_outcomes,
    period,
    weekly,
)
from mailhelper.model.values import (
    Action,
    ActionKind,
    ActionStatus,
    Address,
    Answer,
    Kind,
    Ledger,
    Pause,
    PersonFigures,
    Thread,
    ThreadState,
)

SAM = Address("sam@example.com", "Sam Rivera")
JANE = Address("jane@example.org", "Jane Doe")
JOSE = Address("jose@example.org", "José Núñez")
NOW = datetime(2026, 12, 10, 10, 0, tzinfo=UTC)  # a Thursday
MON = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def ask(id: int, created: datetime = MON, *answers: Answer, **changes: object) -> Thread:
    thread = Thread(id=id, kind=Kind.ASK, state=ThreadState.OPEN, subject=f"ask {id}",
                    owner=SAM, counterparts=(JANE, JOSE), created=created,
                    root_message_id=f"a{id}@x", last_owner_activity=created, answers=answers)
    if answers and "state" not in changes:
        changes["state"] = ThreadState.ANSWERED
    return dataclasses.replace(thread, **changes)  # type: ignore[arg-type]


def offer(id: int, state: ThreadState, created: datetime = MON) -> Thread:
    return Thread(id=id, kind=Kind.OFFER, state=state, subject=f"offer {id}", owner=SAM,
                  counterparts=(JANE,), created=created, root_message_id=f"o{id}@x",
                  last_owner_activity=created)


def sent(kind: ActionKind, thread_id: int, id: int, at: datetime = MON,
         **data: str) -> Action:
    return Action(f"t{thread_id}/{kind.value}/{id}", kind, at, thread_id, (SAM,), data,
                  ActionStatus.SENT, id=id, sent_at=at)


def test_bar_is_a_text_fallback_with_the_figures() -> None:
    assert bar(4, 5) == "▇▇▇▇░ 4/5"
    assert bar(0, 3) == "░░░ 0/3"
    assert bar(1, 40) == "▇░░░░░░░░░ 1/40"  # at most ten blocks, never hiding an answer
    assert bar(0, 0) == "· 0/0"


def test_weeks_run_monday_to_sunday_in_the_owners_zone_this_week_last() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    # Sun 6 Dec 20:00 UTC is already Monday 7 Dec in Tokyo.
    threads = [ask(1, datetime(2026, 12, 6, 20, 0, tzinfo=UTC),
                   Answer(JANE.email, NOW)),
               ask(2, datetime(2026, 11, 2, 9, 0, tzinfo=UTC)),
               ask(3, datetime(2026, 10, 1, 9, 0, tzinfo=UTC))]  # before the 8 weeks
    weeks = weekly(threads, NOW, tokyo)
    assert len(weeks) == 8 and weeks[-1].start.isoformat() == "2026-12-07"
    assert (weeks[-1].made, weeks[-1].answered) == (1, 1)
    assert [(w.start.isoformat(), w.made) for w in weeks if w.made] == [
        ("2026-11-02", 1), ("2026-12-07", 1)]
    assert weekly(threads, NOW, UTC)[-2].made == 1  # in UTC it was the week before


def test_an_ask_to_two_people_is_one_ask_answered_when_either_answers() -> None:
    threads = [ask(1, MON, Answer(JOSE.email, MON + timedelta(hours=2)), state=ThreadState.OPEN),
               ask(2)]
    # José answered, Jane did not: answered, and said to be only in part.
    assert period(threads, None, "all time") == Period("all time", 2, 1, partly=1)
    both = ask(3, MON, Answer(JOSE.email, MON), Answer(JANE.email, MON))
    assert period([both], None, "all time") == Period("all time", 1, 1, partly=0)
    assert period(threads, NOW - timedelta(days=7), "this week").made == 2
    assert period(threads, NOW, "since now").made == 0


def test_answers_before_and_after_a_follow_up() -> None:
    nudged = ask(1, MON, Answer(JANE.email, MON + timedelta(days=4)))
    followed = ask(2, MON, Answer(JANE.email, MON + timedelta(days=3)),
                   last_owner_activity=MON + timedelta(days=2))
    quick = ask(3, MON, Answer(JANE.email, MON + timedelta(hours=1)))
    silent = ask(4)
    history = {1: [sent(ActionKind.NUDGE, 1, 10, MON + timedelta(days=3))],
               3: [sent(ActionKind.NUDGE, 3, 30, MON + timedelta(days=3))]}
    assert follow_up_effect([nudged, followed, quick, silent], history) == (1, 2)


def test_time_to_a_first_answer_in_calendar_day_bands() -> None:
    late_evening = datetime(2026, 12, 7, 22, 30, tzinfo=UTC)
    threads = [
        ask(1, MON, Answer(JANE.email, MON + timedelta(hours=3))),
        # 23:30 in London the same evening, but already Tuesday in Berlin
        ask(2, MON, Answer(JANE.email, late_evening + timedelta(hours=1))),
        ask(3, MON, Answer(JANE.email, MON + timedelta(days=3))),
        ask(4, MON, Answer(JANE.email, MON + timedelta(days=4))),
        ask(5),
    ]
    assert answer_bands(threads, ZoneInfo("Europe/London")) == {
        "same day": 2, "1–3 days": 1, "later": 1, "none yet": 1}
    assert answer_bands(threads, ZoneInfo("Europe/Berlin"))["same day"] == 1


def test_offers_taken_up_declined_lapsed_or_waiting() -> None:
    threads = [offer(1, ThreadState.ANSWERED), offer(2, ThreadState.DONE),
               offer(3, ThreadState.DECLINED), offer(4, ThreadState.CANCELLED),
               offer(5, ThreadState.OPEN, NOW - timedelta(days=20)), offer(6, ThreadState.OPEN)]
    assert offer_outcomes(threads, NOW) == {"taken up": 2, "declined": 1, "lapsed": 2,
                                            "waiting": 1}


def test_expected_against_what_came() -> None:
    threads = [ask(2, MON, Answer(JANE.email, NOW), Answer(JOSE.email, NOW), expected=1),
               ask(1, MON - timedelta(days=1), expected=3), ask(3)]
    assert [(e.thread.id, e.expected, e.got) for e in expectations(threads)] == [
        (1, 3, 0), (2, 1, 2)]


@pytest.mark.parametrize(("week", "overall", "line"), [
    ((0, 0), (0, 0), "Nothing asked yet. The first ask is the hardest; people say yes more "
                     "often than we expect."),
    ((5, 0), (5, 0), "None of your 5 asks has an answer yet. A short, specific follow-up is "
                     "often all it takes."),
    ((1, 0), (1, 0), "Your ask has no answer yet. A short, specific follow-up is often all it "
                     "takes."),
    ((0, 0), (3, 3), "No asks this week. All 3 of your asks so far were answered: people do "
                     "help. Ask away."),
    ((1, 1), (1, 1), "Your one ask so far was answered: people do help. Ask away."),
    ((2, 1), (4, 2), "2 of your 4 asks were answered: we tend to expect about half as many "
                     "yeses as we get (Flynn & Lake, 2008). Ask away."),
    ((2, 0), (5, 1), "1 of your 5 asks was answered so far. Silence is rarely a no: a "
                     "follow-up often brings the answer."),
    # answered only by some of the people asked: never "was answered"
    ((1, 1, 1), (1, 1, 1), "Your one ask so far has an answer, from some of those you asked: "
                           "people do help, and a follow-up often brings the rest."),
    ((0, 0), (3, 3, 1), "No asks this week. All 3 of your asks so far have an answer, 1 of "
                        "them from only some of those you asked: people do help, and a "
                        "follow-up often brings the rest."),
])
def test_the_closing_line_is_true_to_the_figures(week: tuple[int, ...],
                                                 overall: tuple[int, ...], line: str) -> None:
    assert closing_line(Period("this week", *week), Period("all time", *overall)) == line
    if overall[1] * 2 < overall[0] or overall[0] == 0:
        assert "Ask away" not in line


def test_items_are_numbered_once_each_drafts_first() -> None:
    reminded = ask(1)  # its follow-up draft is unsent
    nudged = ask(2)  # its draft went as a nudge
    answered = ask(3, MON, Answer(JANE.email, NOW), Answer(JOSE.email, NOW))
    thanked = ask(4, MON, Answer(JANE.email, NOW))
    done = ask(5, MON, Answer(JANE.email, NOW), state=ThreadState.DONE)
    history = {
        1: [sent(ActionKind.FOLLOW_UP, 1, 11)],
        2: [sent(ActionKind.FOLLOW_UP, 2, 21), sent(ActionKind.NUDGE, 2, 22)],
        4: [sent(ActionKind.THANK_YOU_DRAFT, 4, 41, people=JANE.email)],
        5: [sent(ActionKind.THANK_YOU_DRAFT, 5, 51, people=JANE.email),
            dataclasses.replace(sent(ActionKind.RETURN_FAVOR, 5, 52),
                                status=ActionStatus.PENDING)],
    }
    items = number_items([done, thanked, answered, nudged, reminded], history)
    assert [(i.number, i.section, i.thread.id, i.draft.id if i.draft else None)
            for i in items] == [(1, "drafts", 1, 11), (2, "drafts", 4, 41),
                                (3, "answered", 3, None), (4, "asks", 2, None),
                                (5, "favours", 5, None)]
    assert items_of({"items": items_data(items)}) == {
        1: (1, 11), 2: (4, 41), 3: (3, None), 4: (2, None), 5: (5, None)}
    assert items_of({}) == {} and items_of({"items": "not json"}) == {}


def test_a_thank_you_sent_since_the_draft_settles_it() -> None:
    thread = ask(4, MON, Answer(JANE.email, NOW))
    history = {4: [sent(ActionKind.THANK_YOU_DRAFT, 4, 41, people=JANE.email),
                   dataclasses.replace(sent(ActionKind.THANK_YOU, 4, 42, people=JANE.email),
                                       recipients=(JANE,))]}
    [item] = number_items([thread], history)
    assert item.section == "answered" and item.draft is None


def test_build_puts_it_together_on_a_fixed_clock() -> None:
    digest = build([ask(1, MON, Answer(JANE.email, MON + timedelta(hours=1))), ask(2)], {},
                   NOW, UTC)
    assert (digest.week.made, digest.week.answered, digest.overall.made) == (2, 1, 2)
    assert digest.closing.startswith("1 of your 2 asks was answered: ")
    assert [i.section for i in digest.items] == ["answered", "asks"]


# -- what the rendered digest says -------------------------------------------------------------


def digest_text(threads: list[Thread], history: dict[int, list[Action]] | None = None,
                pause: Pause | None = None, ledger: Ledger | None = None) -> tuple[str, str]:
    from mailhelper.compose.render import Renderer, RenderJob
    from tests.test_render import parts, settings

    facts = build(threads, history or {}, NOW, UTC, pause)
    action = Action("d/1", ActionKind.DIGEST, NOW, None, (SAM,), {"reason": "schedule"})
    job = RenderJob(action, None, NOW, open_threads=tuple(threads), digest=facts,
                    ledger=ledger)
    message = Renderer(settings(timezone=UTC)).render(job)
    text, html = parts(message)
    return " ".join(f"Subject: {message['Subject']} {text}".split()), html


def test_asked_and_offered_are_dated_by_the_forwarded_original() -> None:
    """A forward seen on Mon 7 Dec of an ask written on Mon 23 Nov: the digest says it was
    asked on the 23rd, counts it in that week, and an offer forwarded long after it was made
    says how long ago it was made."""
    written = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    forwarded = ask(1, MON, written_at=written)
    old_offer = dataclasses.replace(offer(2, ThreadState.OPEN), written_at=written)
    text, _ = digest_text([forwarded, old_offer])
    assert "asked Mon 23 Nov (2 weeks ago)" in text, text
    assert "offered 2 weeks ago" in text, text
    weeks = weekly([forwarded], NOW, UTC)
    assert [w.made for w in weeks][-3:] == [1, 0, 0]
    assert period([forwarded], NOW - timedelta(days=7), "this week").made == 0


def test_notes_to_self_are_listed_with_numbers_that_take_commands() -> None:
    note = Thread(id=5, kind=Kind.NOTE, state=ThreadState.OPEN, subject="Renew passport",
                  owner=SAM, counterparts=(), created=MON, root_message_id="n5@x",
                  last_owner_activity=MON)
    weekly_note = dataclasses.replace(note, id=6, subject="Water the plants",
                                      repeat="FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0")
    done_note = dataclasses.replace(note, id=7, subject="Old", state=ThreadState.DONE)
    due = datetime(2026, 12, 14, 9, 0, tzinfo=UTC)
    history = {
        5: [Action("t5/note_reminder/x", ActionKind.NOTE_REMINDER, due, 5, (SAM,), {},
                   ActionStatus.PENDING, id=11)],
        6: [Action("t6/note_reminder/y", ActionKind.NOTE_REMINDER, due, 6, (SAM,), {},
                   ActionStatus.PENDING, id=12)],
    }
    threads = [ask(1), note, weekly_note, done_note]
    items = number_items(threads, history)
    assert [(i.number, i.section, i.thread.id) for i in items] == [
        (1, "asks", 1), (2, "notes", 5), (3, "notes", 6)]
    assert items[1].due == due
    text, html = digest_text(threads, history)
    assert "NOTES TO SELF (2)" in text and "Notes to self (2)" in html
    assert digest_text([note], history)[0].startswith("Subject: Your digest: 1 note to self ")
    assert "2. “Renew passport”, comes back Mon 14 Dec, 09:00" in text, text
    assert "“Water the plants”, every Monday at 09:00: next Mon 14 Dec, 09:00" in text, text
    assert "done 2 · snooze 2 3 days · cancel 2" in text
    assert "offered" not in text and "Old" not in text


def test_a_paused_owners_digest_says_so() -> None:
    until = datetime(2026, 12, 21, 9, 0, tzinfo=UTC)
    pause = Pause(SAM.email, MON, until, until)
    text, html = digest_text([ask(1)], pause=pause)
    assert "You're paused until Mon 21 Dec, 09:00" in text and 'Reply "resume"' in text
    assert "paused until" in html and "resume" in html
    unpaused, _ = digest_text([ask(1)])
    assert "paused" not in unpaused
    over, _ = digest_text([ask(1)], pause=Pause(SAM.email, MON, MON, MON))
    assert "paused" not in over


def test_an_ask_only_some_answered_is_answered_in_part_with_each_person_counted() -> None:
    """Jane and José were asked, only José answered: one ask, answered, and the words say
    it was only in part; each of them has their own figures."""
    threads = [ask(1, MON, Answer(JOSE.email, MON + timedelta(hours=2)))]
    ledger = Ledger(PersonFigures(None, asks_made=1, asks_answered=1, asks_partly=1),
                    (PersonFigures(JANE, asks_made=1), PersonFigures(JOSE, asks_made=1,
                                                                     asks_answered=1)))
    text, html = digest_text(threads, ledger=ledger)
    assert ("THIS WEEK (from Mon 7 Dec): 1 ask, 1 answered, by only some of those asked"
            in text), text
    assert "1 ask, 1 answered, by only some of those asked" in html
    assert "- Jane Doe: 1 ask, 0 answered" in text and "- José Núñez: 1 ask, 1 answered" in text


def test_the_footer_examples_are_this_digests_own_items() -> None:
    """A digest of one open ask: the footer's examples name item 1 and only the commands it
    takes (once "send 2", "done 3", "snooze 4 3 days", "decline 5" whatever the digest held)."""
    text, html = digest_text([ask(1)])
    assert ('Reply with one command per line, each naming an item by its number: "done 1", '
            '"snooze 1 3 days", "cancel 1". Or on the first line:') in text, text
    for stale in ("send 2", "done 3", "snooze 4", "decline 5"):
        assert stale not in text and stale not in html
    assert "<code>done 1</code>, <code>snooze 1 3 days</code>, <code>cancel 1</code>" in html
    empty, empty_html = digest_text([])
    assert "naming an item" not in empty and "naming an item" not in empty_html


def test_this_week_is_the_calendar_week_in_the_line_and_the_chart_alike() -> None:
    """A digest on Monday 14 Dec at 08:00 (London): the ask of Thu 10 Dec belongs to last
    week's row of the chart, and THIS WEEK, from Mon 14 Dec, counts what the chart's last row
    counts (it was a rolling 7 days: 1/1 this week beside 0/0 in the chart's current row)."""
    london = ZoneInfo("Europe/London")
    monday = datetime(2026, 12, 14, 8, 0, tzinfo=london)
    thursday = datetime(2026, 12, 10, 9, 0, tzinfo=london)
    threads = [ask(1, thursday, Answer(JANE.email, thursday + timedelta(hours=1)))]
    digest = build(threads, {}, monday, london)
    assert digest.weeks[-1].start.isoformat() == "2026-12-14"
    assert (digest.week.made, digest.week.answered) == (digest.weeks[-1].made,
                                                        digest.weeks[-1].answered) == (0, 0)
    assert (digest.weeks[-2].made, digest.weeks[-2].answered) == (1, 1)
    from mailhelper.compose.render import DigestView
    view = DigestView.of(digest, london, monday)
    assert view.week_from == "Mon 14 Dec"
    # Sunday 23:30 is still the week of the 7th; Monday 00:00 starts the 14th's.
    sunday = datetime(2026, 12, 13, 23, 30, tzinfo=london)
    assert build(threads, {}, sunday, london).week.made == 1
