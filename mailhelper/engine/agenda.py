"""What is still to go: each thread's next action, the thanks and favours due, and the
calendar of the reminders (``status --ics`` and ``calendar_file``).

A thank-you or a return-the-favour reminder is *due* while its mail is pending; once the
assistant has sent it it is due no more. :func:`thanks_due` and :func:`favours_due` answer that
question from the store with :mod:`mailhelper.decide.owed`, the one definition the digest and
``mailhelper status`` share, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from mailhelper.compose.ics import Entry, calendar
from mailhelper.compose.terminal import one_line
from mailhelper.decide import owed
from mailhelper.model.addresses import fold
from mailhelper.model.kinds import ACTIONS, KINDS
from mailhelper.model.settings import Settings
from mailhelper.model.values import Action, ActionKind, ActionStatus, Pause, Thread
from mailhelper.read.names import join_names
from mailhelper.state.roles import Schedule
from mailhelper.state.store import Store


def _pending(store: Store, thread: Thread) -> list[Action]:
    return [a for a in store.actions_for(thread.id) if a.status is ActionStatus.PENDING]


def next_action(store: Store, thread: Thread) -> Action | None:
    """The thread's pending action that falls due first (None: nothing more is planned)."""
    return min(_pending(store, thread), key=lambda a: (a.due, a.id or 0), default=None)


def _owned(store: Store, owner: str | None) -> list[Thread]:
    return [t for t in store.threads() if owner is None or t.owner.email == owner]


def histories(store: Schedule, threads: Iterable[Thread]) -> dict[int, Sequence[Action]]:
    """Each thread's actions by its id: what :mod:`mailhelper.decide.owed` and the digest
    read, loaded once."""
    return {t.id: store.actions_for(t.id) for t in threads}


def thanks_due(store: Store, owner: str | None = None) -> tuple[Thread, ...]:
    """Threads whose thank-you (draft or mail) is still to go, oldest first
    (:func:`mailhelper.decide.owed.thanks_due`)."""
    threads = _owned(store, owner)
    return owed.thanks_due(threads, histories(store, threads))


def favours_due(store: Store, owner: str | None = None) -> tuple[Thread, ...]:
    """Threads whose return-the-favour reminder is still to go, most recently settled first
    (:func:`mailhelper.decide.owed.favours_due`)."""
    threads = _owned(store, owner)
    return owed.favours_due(threads, histories(store, threads))


def goes_at(action: Action, pause: Pause | None) -> datetime:
    """When ``action`` will really go: its due time, or later when a retry, a sending limit
    or the owner's pause holds it."""
    at = max(action.due, action.next_attempt or action.due)
    if pause is not None and at < pause.release:
        at = pause.release
    return at


#: The kinds the calendar shows: reminders to the owner and thanks, not answers to mail.
CALENDAR_KINDS = frozenset({
    ActionKind.FOLLOW_UP, ActionKind.OFFER_FOLLOW_UP, ActionKind.CLOSING_NOTE,
    ActionKind.NUDGE, ActionKind.THANK_YOU_DRAFT, ActionKind.THANK_YOU,
    ActionKind.RETURN_FAVOR,
})


def calendar_entries(store: Store) -> list[Entry]:
    """Every pending reminder and due thank-you of every thread, at the time it will go
    (:func:`goes_at`), for :func:`mailhelper.compose.ics.calendar`."""
    pauses = {p.owner: p for p in store.pauses()}
    entries = []
    for thread in store.threads():
        names = join_names([c.name or c.email for c in thread.counterparts]) or "them"
        pause = pauses.get(fold(thread.owner.email))
        for action in _pending(store, thread):
            if action.kind not in CALENDAR_KINDS:
                continue
            words = ACTIONS[action.kind].words
            summary = f"{words[:1].upper()}{words[1:]}: {one_line(thread.subject)} ({names})"
            entries.append(Entry(action.key, goes_at(action, pause), summary,
                                 _calendar_description(action, thread, names)))
    return entries


def _calendar_description(action: Action, thread: Thread, names: str) -> str:
    subject = one_line(thread.subject)
    if ACTIONS[action.kind].to_counterpart:  # of CALENDAR_KINDS: a nudge or a thank-you
        return (f"The assistant writes to {names} in the thread \"{subject}\", with you in "
                "Cc.")
    kind = KINDS[thread.kind].calendar_words
    return (f"The assistant mails you a {ACTIONS[action.kind].words} about your {kind} "
            f"{names}, \"{subject}\". Reply to that mail with done, snooze or cancel.")


def status_ics(store: Store, settings: Settings, stamp: datetime) -> str:
    """``status --ics``: the iCalendar of :func:`calendar_entries`, written at ``stamp``."""
    return calendar(calendar_entries(store), stamp, settings.assistant.email)
