"""`mailhelper status`: every thread and what happens next, as JSON or a table for people.

The status, the digest and the ledger tell one story. A thank-you or a return-the-favour
reminder is *due* while its mail is pending; once the assistant has sent it it is due no more,
and the ledger counts it: a thank-you that went to the counterpart as *sent*, one mailed to the
owner as a draft (in ``draft`` mode the draft is the whole of the assistant's job) as
*drafted*, a letter from a return-the-favour reminder as a favour returned.
:func:`mailhelper.engine.agenda.thanks_due` and :func:`mailhelper.engine.agenda.favours_due` answer
that question from the store with :mod:`mailhelper.decide.owed`, the one definition the digest and
the table share, so the two cannot disagree.

Times and figures read as the mails write them (:mod:`mailhelper.compose.render`): ``Thu 10 Dec,
09:00``, ``2.1 days``, and actions by name ("reminder", "thank-you draft").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from mailhelper.compose.render import (
    answered_words,
    duration_words,
    format_when,
    plural,
    thanks_words,
)
from mailhelper.compose.terminal import one_line
from mailhelper.decide import owed
from mailhelper.decide.digest import unsent_draft
from mailhelper.decide.timewords import describe_repeat
from mailhelper.engine.agenda import histories, next_action
from mailhelper.engine.watch import describe, watch_states
from mailhelper.model.kinds import ACTIONS, KINDS
from mailhelper.model.settings import Settings
from mailhelper.model.values import Kind, PersonFigures, Thread, ThreadState
from mailhelper.state.store import Store


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def status_json(store: Store) -> dict[str, Any]:
    """``{"threads": [...]}`` with exactly SPEC.md's keys, newest first (a repeating note or
    ask shows its next time as ``next_action``; the table shows the repeat); times ISO-8601
    with their UTC offset::

        {"id": 1, "kind": "ask", "state": "open", "subject": "Intro to Acme",
         "counterparts": ["jane@example.org"], "created": "2026-12-07T09:00:00+00:00",
         "next_action": {"kind": "follow_up", "due": "2026-12-10T09:00:00+00:00"}}
    """
    threads = []
    for thread in store.threads():
        action = next_action(store, thread)
        threads.append({
            "id": thread.id,
            "kind": thread.kind.value,
            "state": thread.state.value,
            "subject": thread.subject,
            "counterparts": [c.email for c in thread.counterparts],
            "created": _iso(thread.created),
            "next_action": None if action is None else {
                "kind": action.kind.value, "due": _iso(action.due),
            },
        })
    return {"threads": threads}


def pause_json(store: Store) -> list[dict[str, Any]]:
    """The owners' pauses for ``status --json`` (key ``pauses``): each owner's ``since``,
    ``until`` (the end), ``release`` (when what it held goes out)."""
    return [{"owner": p.owner, "since": _iso(p.since), "until": _iso(p.until),
             "release": _iso(p.release)} for p in store.pauses()]


def pause_lines(store: Store, settings: Settings) -> list[str]:
    """One line per paused owner, in their zone."""
    lines = []
    for pause in store.pauses():
        zone = settings.zone_for(pause.owner)
        lines.append(f"Paused: {pause.owner} until {format_when(pause.until.astimezone(zone))}"
                     f"; what falls due meanwhile goes on "
                     f"{format_when(pause.release.astimezone(zone))}, at most one mail per "
                     "thread")
    return lines


def _groups(store: Store) -> list[tuple[str, Callable[[Thread], bool]]]:
    """What the owner should do, most pressing first; a thread goes in the first that fits."""
    # Every thread's actions, read once for the three tests below (each used to read them).
    threads = store.threads()
    history = histories(store, threads)
    thanks = {t.id for t in owed.thanks_due(threads, history)}
    favours = {t.id for t in owed.favours_due(threads, history)}

    def open_of(kind: Kind) -> Callable[[Thread], bool]:
        return lambda t: t.state is ThreadState.OPEN and t.kind is kind

    # Each kind's open threads have a group (kinds.KindSpec.status_group); a kind not placed
    # here comes after the notes.
    open_groups = {kind: (KINDS[kind].status_group, open_of(kind)) for kind in Kind}
    # The digest's own test (digest.unsent_draft), so the two list the same drafts.
    drafts = {t.id for t in threads if unsent_draft(t, history[t.id]) is not None}
    return [
        ("Drafts to send: reply send to the draft", lambda t: t.id in drafts),
        open_groups.pop(Kind.OFFER),
        ("Thanks to say", lambda t: t.id in thanks),
        open_groups.pop(Kind.ASK),
        open_groups.pop(Kind.NOTE),
        *open_groups.values(),
        ("Answered: reply done when it's settled", lambda t: t.state is ThreadState.ANSWERED),
        ("Favours to return", lambda t: t.id in favours),
        ("Nothing to do", lambda t: True),
    ]


def watch_lines(store: Store, settings: Settings) -> list[str]:
    """One line per watched mailbox (``owners[].watch``): up, or down and why, since when."""
    owners = [w.owner for w in settings.watches]
    return describe(list(watch_states(store, owners).items()))


def watch_json(store: Store, settings: Settings) -> list[dict[str, Any]]:
    """The watched mailboxes' states for ``status --json`` (key ``watch``)."""
    owners = [w.owner for w in settings.watches]
    return [{"owner": owner, "state": state.state, "since": state.since,
             "reason": state.reason, "last_look": state.last_look,
             "next_try": state.next_try, "missing_folders": state.missing}
            for owner, state in watch_states(store, owners).items()]


def status_table(store: Store, settings: Settings) -> str:
    """A readable table, grouped by what the owner should do, newest first within a group,
    then the ledger's figures (the same the digest gives), then the watched mailboxes; the
    owners' pauses first."""
    watching = watch_lines(store, settings)
    table = _threads_table(store, settings)
    paused = pause_lines(store, settings)
    if paused:
        table = "\n".join([*paused, "", table])
    return "\n".join([table, "", *watching]) if watching else table


def _threads_table(store: Store, settings: Settings) -> str:
    threads = store.threads()  # newest first
    if not threads:
        return "No threads yet: nothing is being tracked."
    placed: set[int] = set()
    lines: list[str] = []
    for title, belongs in _groups(store):
        group = [t for t in threads if t.id not in placed and belongs(t)]
        if not group:
            continue
        placed.update(t.id for t in group)
        lines.append(f"{title} ({len(group)})")
        lines.append(f"  {'id':>4}  {'kind':5}  {'state':9}  {'with':28}  {'subject':32}  "
                     f"{'created':10}  next")
        for thread in group:
            action = next_action(store, thread)
            who = ", ".join(c.email for c in thread.counterparts) or "-"
            upcoming = "-"
            zone = settings.zone_for(thread.owner.email)  # each owner reads their own
            # The day it was created (SPEC.md: status shows "created"), in the owner's zone.
            created = f"{thread.created.astimezone(zone):%Y-%m-%d}"
            if action is not None:
                words = ACTIONS[action.kind].words
                upcoming = f"{words} {format_when(action.due.astimezone(zone))}"
            if thread.repeat:
                upcoming += f" (repeats {describe_repeat(thread.repeat)})"
            lines.append(
                f"  {thread.id:>4}  {thread.kind.value:5}  {thread.state.value:9}  "
                f"{_cut(who, 28):28}  {_cut(thread.subject, 32):32}  {created:10}  {upcoming}"
            )
        lines.append("")
    lines.append(f"Ledger: {ledger_line(store.ledger().overall)}")
    return "\n".join(lines)


def ledger_line(figures: PersonFigures) -> str:
    """One line of ledger figures, as the status table and the demo print them:

        >>> print(ledger_line(PersonFigures(None, asks_made=2, asks_answered=1,
        ...     median_hours_to_answer=50.4, offers_received=1, thanks_sent=1,
        ...     thanks_drafted=1, favours_returned=0)))  # doctest: +NORMALIZE_WHITESPACE
        2 asks, 1 answered (median 2.1 days); 1 offer; thank-yous: 1 sent, 1 drafted;
        0 favours returned
        >>> print(ledger_line(PersonFigures(None, asks_made=1, asks_answered=1,
        ...     asks_partly=1)))  # doctest: +NORMALIZE_WHITESPACE
        1 ask, 1 answered, by only some of those asked; 0 offers; thank-yous: none yet;
        0 favours returned

    Every count is a number ("0 asks", "0 offers"); thank-yous are named only once there is
    something to thank for (an answer, an offer) or one went: for someone who never answered
    "none yet" would read as a thank-you owed::

        >>> print(ledger_line(PersonFigures(None, asks_made=1)))
        1 ask, 0 answered; 0 offers; 0 favours returned
    """
    asks = plural(figures.asks_made, "ask")
    if figures.asks_made:
        asks += f", {answered_words(figures.asks_answered, figures.asks_partly)}"
        median = duration_words(figures.median_hours_to_answer)
        if median:
            asks += f" (median {median})"
    owed = (figures.asks_answered or figures.offers_received or figures.thanks_sent
            or figures.thanks_drafted)
    thanks = ([f"thank-yous: {thanks_words(figures.thanks_sent, figures.thanks_drafted)}"]
              if owed else [])
    return "; ".join([
        asks,
        plural(figures.offers_received, "offer"),
        *thanks,
        f"{plural(figures.favours_returned, 'favour')} returned",
    ])


def _cut(text: str, width: int) -> str:
    """``text`` (a mail's words) on one line of the table, cut to ``width``."""
    text = one_line(text)
    return text if len(text) <= width else text[: width - 1] + "…"
