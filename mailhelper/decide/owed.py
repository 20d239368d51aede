"""What the owner still owes: thanks due and favours due, defined once.

A thread's thanks are *due* while a thank-you (a draft to the owner or the mail to the
counterpart, :data:`mailhelper.model.kinds.THANKS`) is pending for it; a favour is due while its
return-the-favour reminder is pending. Once the assistant has sent it, it is due no more and
the ledger counts it. The status table (:mod:`mailhelper.cli.status`), the digest's sections
(:mod:`mailhelper.decide.digest`) and the digest mail's lists (:mod:`mailhelper.compose.render`) all
ask here, so they cannot disagree. Pure: threads and their actions in, threads out::

    >>> thanks_due([], {}), favours_due([], {})
    ((), ())
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from mailhelper.model.kinds import THANKS
from mailhelper.model.values import Action, ActionKind, ActionStatus, Thread


def _pending(history: Iterable[Action], kinds: Iterable[ActionKind]) -> bool:
    wanted = frozenset(kinds)
    return any(a.kind in wanted and a.status is ActionStatus.PENDING for a in history)


def owes_thanks(history: Iterable[Action]) -> bool:
    """Whether a thread with these actions has a thank-you still to go (draft or mail)."""
    return _pending(history, THANKS)


def owes_favour(history: Iterable[Action]) -> bool:
    """Whether a thread with these actions has a return-the-favour reminder still to go."""
    return _pending(history, (ActionKind.RETURN_FAVOR,))


def thanks_due(threads: Iterable[Thread],
               history: Mapping[int, Sequence[Action]]) -> tuple[Thread, ...]:
    """The threads whose thanks are due, oldest first; ``history`` maps a thread id to its
    actions (a thread missing from it has none)."""
    due = [t for t in threads if owes_thanks(history.get(t.id, ()))]
    return tuple(sorted(due, key=lambda t: (t.created, t.id)))


def favours_due(threads: Iterable[Thread],
                history: Mapping[int, Sequence[Action]]) -> tuple[Thread, ...]:
    """The threads whose favour is due, most recently settled first."""
    due = [t for t in threads if owes_favour(history.get(t.id, ()))]
    return tuple(sorted(due, key=lambda t: (t.closed_at or t.created, t.id), reverse=True))
