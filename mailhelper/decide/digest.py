"""What the digest says: its numbered items and the owner's own figures, as pure functions of
the threads, their actions, ``now`` and the owner's zone (SPEC.md "digest"; issue 10, item 6).

Items are numbered once per digest, in the order the mail lists them, so that a reply with
``send 2`` or ``done 3`` names one thread (and, for ``send``, the draft it means); the numbers
are stored with the digest's Message-ID (:func:`items_data`, :func:`items_of`). A thread is
listed once, in the first section that fits:

1. ``drafts``: a draft the assistant mailed the owner (a reminder's follow-up, a thank-you)
   that has not gone out: ``send N`` sends it;
2. ``thanks``: a thank-you still to come; ``answered``: answered, not yet done (reply
   ``done N`` when it is settled);
3. ``asks``: open asks; ``offers``: offers waiting;
4. ``favours``: a return-the-favour reminder still to come.

The figures count asks by thread (an ask to two people is one ask, answered when either
answered) over the last :data:`WEEKS` weeks and all time::

    >>> bar(4, 5), bar(0, 0), bar(2, 10, width=5)
    ('▇▇▇▇░ 4/5', '· 0/0', '▇░░░░ 2/10')
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from mailhelper.decide.owed import favours_due, owes_favour, owes_thanks, thanks_due
from mailhelper.model.kinds import KINDS
from mailhelper.model.values import (
    Action,
    ActionKind,
    ActionStatus,
    Kind,
    Pause,
    Thread,
    ThreadState,
    thanked_people,
)

#: How many weeks the chart of asks made and answered covers (the current week last).
WEEKS = 8
#: An offer left open this long without an answer or a decline has lapsed.
OFFER_LAPSES = timedelta(days=14)
#: Sections in the order the digest lists them.
SECTIONS = ("drafts", "thanks", "answered", "asks", "offers", "notes", "favours")
_SPENT = frozenset({ActionStatus.SENT, ActionStatus.SENDING})


@dataclass(frozen=True)
class Item:
    """One numbered line of the digest. ``draft`` is the unsent draft's action (``send N``
    answers it), None when the item has none."""

    number: int
    section: str
    thread: Thread
    draft: Action | None = None
    #: A note's next reminder (the pending one's due time); None for any other item.
    due: datetime | None = None


def unsent_draft(thread: Thread, history: Sequence[Action]) -> Action | None:
    """The latest draft mailed to the owner about ``thread`` that has not gone out: a
    reminder (follow-up draft) of an ask still open with someone silent and no nudge sent
    since; a thank-you draft covering someone no thank-you went to since, on a thread not yet
    done or declined, or mailed after it was (an offer's thanks follow its done or decline;
    a later ``done`` settles them)."""
    spent = [a for a in history if a.status in _SPENT]
    if thread.state is ThreadState.CANCELLED:
        return None
    for draft in sorted(spent, key=lambda a: a.id or 0, reverse=True):
        later = [a for a in spent if (a.id or 0) > (draft.id or 0)]
        if draft.kind is ActionKind.FOLLOW_UP:
            if (thread.state is not ThreadState.OPEN or not thread.silent
                    or any(a.kind is ActionKind.NUDGE for a in later)):
                continue
            return draft
        if draft.kind is ActionKind.THANK_YOU_DRAFT:
            if thread.state not in (ThreadState.OPEN, ThreadState.ANSWERED) and not (
                    thread.closed_at is not None
                    and (draft.sent_at or draft.due) >= thread.closed_at):
                # Done or declined before the draft: the owner settled it (perhaps thanked by
                # hand). A draft the closing itself made (an offer's thanks follow its done or
                # decline) waits for send, or for a later done.
                continue
            thanked = set().union(*(thanked_people(thread, a.kind, a.data, a.recipients)
                                    for a in spent if a.kind is ActionKind.THANK_YOU))
            if thanked_people(thread, draft.kind, draft.data, draft.recipients) - thanked:
                return draft
    return None


def section_of(thread: Thread, history: Sequence[Action]) -> tuple[str, Action | None] | None:
    """The section ``thread`` is listed in, and its unsent draft; None: not listed."""
    draft = unsent_draft(thread, history)
    if draft is not None:
        return "drafts", draft
    if owes_thanks(history):  # the one definition of thanks due (mailhelper.decide.owed)
        return "thanks", None
    if thread.kind is Kind.NOTE:
        # A note to self is never answered, thanked or returned: it waits to come back.
        return ("notes", None) if thread.state is ThreadState.OPEN else None
    if thread.state is ThreadState.ANSWERED:
        return "answered", None
    if thread.state is ThreadState.OPEN:
        return KINDS[thread.kind].digest_section, None
    if owes_favour(history):
        return "favours", None
    return None


def number_items(threads: Iterable[Thread],
                 history: Mapping[int, Sequence[Action]]) -> tuple[Item, ...]:
    """Every thread the digest lists, numbered from 1 in the order of :data:`SECTIONS`,
    oldest first within a section."""
    placed: dict[str, list[tuple[Thread, Action | None]]] = {s: [] for s in SECTIONS}
    for thread in sorted(threads, key=lambda t: (t.created, t.id)):
        found = section_of(thread, history.get(thread.id, ()))
        if found is not None:
            placed[found[0]].append((thread, found[1]))
    items: list[Item] = []
    for section in SECTIONS:
        for thread, draft in placed[section]:
            due = (_next_reminder(history.get(thread.id, ()), ActionKind.NOTE_REMINDER)
                   if section == "notes" else None)
            items.append(Item(len(items) + 1, section, thread, draft, due))
    return tuple(items)


def _next_reminder(history: Sequence[Action], kind: ActionKind) -> datetime | None:
    return min((a.due for a in history if a.kind is kind and a.status is ActionStatus.PENDING),
               default=None)


def items_data(items: Sequence[Item]) -> str:
    """The numbering as the digest's action data keeps it: ``[[number, thread id, draft
    action id or null], ...]``."""
    return json.dumps([[i.number, i.thread.id, i.draft.id if i.draft else None] for i in items])


def items_of(data: Mapping[str, str]) -> dict[int, tuple[int, int | None]]:
    """number -> (thread id, draft action id) from a digest's action data ({} when it has
    none: a digest from before numbering, or a preview)."""
    try:
        rows = json.loads(data.get("items", "[]"))
        return {int(n): (int(t), None if d is None else int(d)) for n, t, d in rows}
    except (ValueError, TypeError):
        return {}


# -- figures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Week:
    """Asks made in the week starting ``start`` (a Monday, in the owner's zone) and how many
    of them are answered by now."""

    start: date
    made: int
    answered: int


def bar(done: int, total: int, width: int | None = None) -> str:
    """A text bar of ``done`` out of ``total``: one block per ask (``width`` blocks when given,
    or when there are more than 10), then the figures."""
    if total <= 0:
        return "· 0/0"
    cells = width or min(total, 10)
    full = round(cells * done / total)
    if done and not full:
        full = 1
    return "▇" * full + "░" * (cells - full) + f" {done}/{total}"


def written(thread: Thread) -> datetime:
    """When the ask or offer was written: the forwarded original's own date when the thread
    has one (``written_at``), else when the assistant first saw it."""
    return thread.written_at or thread.created


def _asks(threads: Iterable[Thread]) -> list[Thread]:
    return [t for t in threads if t.kind is Kind.ASK]


def _first_answer(thread: Thread) -> datetime | None:
    return min((a.at for a in thread.replies), default=None)


def week_start(moment: datetime, zone: tzinfo) -> date:
    """The Monday of ``moment``'s week, in ``zone``."""
    day = moment.astimezone(zone).date()
    return day - timedelta(days=day.weekday())


def weekly(threads: Iterable[Thread], now: datetime, zone: tzinfo,
           weeks: int = WEEKS) -> tuple[Week, ...]:
    """Asks made and answered in each of the last ``weeks`` weeks, oldest first, this week
    last (a week with none has zeros)."""
    this_week = week_start(now, zone)
    starts = [this_week - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]
    made = dict.fromkeys(starts, 0)
    answered = dict.fromkeys(starts, 0)
    for thread in _asks(threads):
        start = week_start(written(thread), zone)
        if start in made:
            made[start] += 1
            answered[start] += 1 if thread.replies else 0
    return tuple(Week(s, made[s], answered[s]) for s in starts)


@dataclass(frozen=True)
class Period:
    """Asks made and answered in a period, and the answers that came in it."""

    label: str
    made: int
    answered: int
    #: Of ``answered``, asks that some of the people asked have not answered.
    partly: int = 0


def period(threads: Iterable[Thread], since: datetime | None, label: str) -> Period:
    """Asks made since ``since`` (all time: None) and how many of them are answered."""
    asks = [t for t in _asks(threads) if since is None or written(t) >= since]
    answered = [t for t in asks if t.replies]
    return Period(label, len(asks), len(answered), sum(1 for t in answered if t.silent))


def follow_up_effect(threads: Iterable[Thread],
                     history: Mapping[int, Sequence[Action]]) -> tuple[int, int]:
    """(answered before any follow-up, answered after one) over answered asks. A follow-up
    is a nudge that went to the counterpart, or the owner writing again in the thread."""
    before = after = 0
    for thread in _asks(threads):
        answer = _first_answer(thread)
        if answer is None:
            continue
        moments = [a.sent_at or a.due for a in history.get(thread.id, ())
                   if a.kind is ActionKind.NUDGE and a.status in _SPENT]
        if thread.last_owner_activity > thread.created:
            moments.append(thread.last_owner_activity)
        first = min(moments, default=None)
        if first is not None and first < answer:
            after += 1
        else:
            before += 1
    return before, after


#: The bands of time to a first answer, in the order the digest shows them.
BANDS = ("same day", "1–3 days", "later", "none yet")


def answer_bands(threads: Iterable[Thread], zone: tzinfo) -> dict[str, int]:
    """How many asks were first answered the same calendar day (in the owner's zone), one to
    three days later, later than that, or not yet."""
    counts = dict.fromkeys(BANDS, 0)
    for thread in _asks(threads):
        answer = _first_answer(thread)
        if answer is None:
            counts["none yet"] += 1
            continue
        days = (answer.astimezone(zone).date() - written(thread).astimezone(zone).date()).days
        counts["same day" if days <= 0 else "1–3 days" if days <= 3 else "later"] += 1
    return counts


#: What became of offers, in the order the digest shows them.
OFFER_OUTCOMES = ("taken up", "declined", "lapsed", "waiting")


def offer_outcomes(threads: Iterable[Thread], now: datetime) -> dict[str, int]:
    """Offers taken up (the owner answered them), declined, lapsed (cancelled, or open
    :data:`OFFER_LAPSES` and more with no answer) and still waiting."""
    counts = dict.fromkeys(OFFER_OUTCOMES, 0)
    for thread in threads:
        if thread.kind is not Kind.OFFER:
            continue
        if thread.state in (ThreadState.ANSWERED, ThreadState.DONE):
            counts["taken up"] += 1
        elif thread.state is ThreadState.DECLINED:
            counts["declined"] += 1
        elif thread.state is ThreadState.OPEN and now - written(thread) < OFFER_LAPSES:
            counts["waiting"] += 1
        else:
            counts["lapsed"] += 1
    return counts


@dataclass(frozen=True)
class Expectation:
    """An ask on which the owner wrote ``expect N``: how many yeses they expected, how many
    people answered."""

    thread: Thread
    expected: int
    got: int


def expectations(threads: Iterable[Thread]) -> tuple[Expectation, ...]:
    """Asks with an ``expect N``, oldest first."""
    return tuple(Expectation(t, t.expected, len(t.replies))
                 for t in sorted(_asks(threads), key=lambda t: (written(t), t.id))
                 if t.expected is not None)


def closing_line(week: Period, overall: Period) -> str:
    """The digest's last word, true to the figures: never "ask away" over none answered.

        >>> closing_line(Period("this week", 0, 0), Period("all time", 0, 0))
        'Nothing asked yet. The first ask is the hardest; people say yes more often than we expect.'
        >>> closing_line(Period("this week", 5, 0), Period("all time", 5, 0))
        'None of your 5 asks has an answer yet. A short, specific follow-up is often all it takes.'
        >>> closing_line(Period("this week", 0, 0), Period("all time", 4, 4))
        'No asks this week. All 4 of your asks so far were answered: people do help. Ask away.'
    """
    if overall.made == 0:
        return ("Nothing asked yet. The first ask is the hardest; people say yes more often "
                "than we expect.")
    lead = "No asks this week. " if week.made == 0 else ""
    asks = "ask" if overall.made == 1 else "asks"
    if overall.answered == 0:
        none = ("Your ask has no answer yet" if overall.made == 1
                else f"None of your {overall.made} {asks} has an answer yet")
        return f"{lead}{none}. A short, specific follow-up is often all it takes."
    if overall.answered == overall.made and overall.partly:
        some = ("Your one ask so far has an answer, from some of those you asked"
                if overall.made == 1 else
                f"All {overall.made} of your asks so far have an answer, {overall.partly} of "
                "them from only some of those you asked")
        return f"{lead}{some}: people do help, and a follow-up often brings the rest."
    if overall.answered == overall.made:
        every = ("Your one ask so far was answered" if overall.made == 1
                 else f"All {overall.made} of your asks so far were answered")
        return f"{lead}{every}: people do help. Ask away."
    were = "was" if overall.answered == 1 else "were"
    share = f"{overall.answered} of your {overall.made} asks {were} answered"
    if overall.answered * 2 >= overall.made:
        return (f"{lead}{share}: we tend to expect about half as many yeses as we get "
                "(Flynn & Lake, 2008). Ask away.")
    return (f"{lead}{share} so far. Silence is rarely a no: a follow-up often brings the "
            "answer.")


def week_began(now: datetime, zone: tzinfo) -> datetime:
    """The moment ``now``'s calendar week began: Monday 00:00 in ``zone``. "This week" in
    the digest, in its THIS WEEK line and in its chart's last row alike, is this week.

    >>> from datetime import UTC
    >>> from zoneinfo import ZoneInfo
    >>> week_began(datetime(2026, 12, 14, 8, 0, tzinfo=UTC), ZoneInfo("Europe/London"))
    datetime.datetime(2026, 12, 14, 0, 0, tzinfo=zoneinfo.ZoneInfo(key='Europe/London'))
    """
    return datetime.combine(week_start(now, zone), time(0), tzinfo=zone)


@dataclass(frozen=True)
class Digest:
    """Everything a digest shows, computed once: the numbered items and the figures."""

    items: tuple[Item, ...]
    weeks: tuple[Week, ...]
    #: The calendar week so far (from :func:`week_began`), as the chart's last row.
    week: Period
    overall: Period
    #: (answered before any follow-up, answered after one)
    follow_ups: tuple[int, int]
    bands: Mapping[str, int]
    offers: Mapping[str, int]
    expectations: tuple[Expectation, ...]
    closing: str
    #: Thanks and favours due (:mod:`mailhelper.decide.owed`), as the status table lists them.
    thanks_due: tuple[Thread, ...] = ()
    favours_due: tuple[Thread, ...] = ()
    #: When the owner's pause ends; None when they are not paused.
    paused_until: datetime | None = None


def build(threads: Sequence[Thread], history: Mapping[int, Sequence[Action]], now: datetime,
          zone: tzinfo, pause: Pause | None = None) -> Digest:
    """The digest of ``threads`` (one owner's) at ``now``; ``history`` maps a thread id to
    every action of that thread; ``pause`` is the owner's pause, when one holds at ``now``
    (the digest says so)."""
    week = period(threads, week_began(now, zone), "this week")
    overall = period(threads, None, "all time")
    return Digest(
        items=number_items(threads, history),
        weeks=weekly(threads, now, zone),
        week=week,
        overall=overall,
        follow_ups=follow_up_effect(threads, history),
        bands=answer_bands(threads, zone),
        offers=offer_outcomes(threads, now),
        expectations=expectations(threads),
        closing=closing_line(week, overall),
        thanks_due=thanks_due(threads, history),
        favours_due=favours_due(threads, history),
        paused_until=pause.until if pause is not None and pause.holds(now) else None,
    )
