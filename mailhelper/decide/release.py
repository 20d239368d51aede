"""A pause's release: which of the mails a pause held each thread sends, and which are
superseded (the "one mail per thread" rule of :mod:`mailhelper.decide.pause`). Pure, like the
planner whose schedule it walks; :mod:`mailhelper.engine.tracker` writes what it decides.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime

from mailhelper.decide.pause import SUPERSEDED
from mailhelper.decide.plan import after_sent, desired_actions
from mailhelper.model.settings import Settings
from mailhelper.model.values import Action, ActionKind, ActionStatus, Thread

#: Kinds a later mail of the thread never supersedes.
NEVER_SUPERSEDED = frozenset({ActionKind.THANK_YOU, ActionKind.THANK_YOU_DRAFT})
# A thread's schedule has a handful of steps; never walk for ever.
_MAX_STEPS = 50


def superseded(thread: Thread, history: Sequence[Action], settings: Settings,
               release: datetime) -> tuple[list[Action], Thread]:
    """The thread's scheduled mails the pause held that the release must skip, earliest first,
    and the thread as it stands after them (a skipped closing note expired the ask).

    The schedule is walked as :func:`mailhelper.decide.plan.desired_actions` plans it, each skipped
    step counted as done at its due time, until at most one mail (thank-yous aside) falls due
    before ``release``: that one goes.
    """
    skipped: list[Action] = []
    walked = list(history)
    for _step in range(_MAX_STEPS):
        held = _held(desired_actions(thread, walked, settings), release)
        if not held:
            break
        victim = held[0]
        if len(held) == 1:
            # The only one left: skip it only when a later step would fall in the pause too.
            trial = [*walked, _skip(victim)]
            later = _held(desired_actions(after_sent(thread, victim, victim.due), trial,
                                          settings), release)
            if not [a for a in later if a.key != victim.key]:
                break
        skipped.append(_skip(victim))
        walked.append(_skip(victim))
        thread = after_sent(thread, victim, victim.due)
    return skipped, thread


def _held(planned: Sequence[Action], release: datetime) -> list[Action]:
    """The planned mails due before ``release`` a later one may supersede, earliest first."""
    return sorted((a for a in planned if _utc(a.due) < _utc(release)
                   and a.kind not in NEVER_SUPERSEDED), key=lambda a: (_utc(a.due), a.key))


def _skip(action: Action) -> Action:
    return dataclasses.replace(action, status=ActionStatus.SKIPPED, last_error=SUPERSEDED)


def _utc(moment: datetime) -> datetime:
    # Same-zone datetimes compare by wall time, wrong in the autumn overlap: compare in UTC.
    return moment.astimezone(UTC)
