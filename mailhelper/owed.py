"""What the owner still owes: thank-yous and favours to return. Pure: threads and their
actions in, threads out.

The one definition behind the digest (:mod:`mailhelper.sending`) and ``mailhelper status``
(:mod:`mailhelper.status`), so the two cannot disagree. A thank-you or a return-the-favour
reminder is *due* while its action is pending; once the assistant has sent it, it is due no
more, and the ledger counts it.

    >>> thanks_due((), {}), favours_due((), {})
    ((), ())
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from mailhelper.models import Action, ActionKind, ActionStatus, Thread

#: The action kinds that settle help received with a thanks.
THANKS = frozenset({ActionKind.THANK_YOU, ActionKind.THANK_YOU_DRAFT})


def _pending(actions: Sequence[Action]) -> list[Action]:
    return [a for a in actions if a.status is ActionStatus.PENDING]


def thanks_due(
    threads: Iterable[Thread], actions: Mapping[int, Sequence[Action]],
) -> tuple[Thread, ...]:
    """Threads whose thank-you (draft or mail) is still to go, oldest first; ``actions`` holds
    each thread's actions by its id (a thread missing from it has none)."""
    due = [t for t in threads
           if any(a.kind in THANKS for a in _pending(actions.get(t.id, ())))]
    return tuple(sorted(due, key=lambda t: (t.created, t.id)))


def favours_due(
    threads: Iterable[Thread], actions: Mapping[int, Sequence[Action]],
) -> tuple[Thread, ...]:
    """Threads whose return-the-favour reminder is still to go, most recently settled first."""
    due = [t for t in threads
           if any(a.kind is ActionKind.RETURN_FAVOR for a in _pending(actions.get(t.id, ())))]
    return tuple(sorted(due, key=lambda t: (t.closed_at or t.created, t.id), reverse=True))
