"""UID sets for IMAP commands that name many messages (RFC 3501 9, ``sequence-set``).

A settling flags or moves every message read since the last one: a second of a backlog is a
thousand UIDs or more. Written one by one they make a command line of some 7 octets a
message, and servers limit lines (RFC 7162 4 asks clients to stay near 8,192 octets; RFC 2683
3.2.1.5 advises 1,000). :func:`uid_sets` writes runs of UIDs as ranges (``201:1400``), the
usual case being one run, and cuts what remains into sets of bounded length, one command
each.
"""

from __future__ import annotations

from collections.abc import Iterable

#: The longest UID set :func:`uid_sets` puts in one command, in octets (RFC 2683 3.2.1.5).
MAX_SET_OCTETS = 1000


def uid_sets(uids: Iterable[int], limit: int | None = None) -> list[str]:
    """``uids`` as IMAP sequence sets in ascending order (``"3:7,9,12:40"``), each at most
    ``limit`` octets (:data:`MAX_SET_OCTETS` when None) unless a single range is longer,
    naming every UID once between them.

    >>> uid_sets([5, 3, 4, 9, 12, 10, 11, 4])
    ['3:5,9:12']
    >>> uid_sets([1, 3, 5, 7], limit=3)
    ['1,3', '5,7']
    >>> uid_sets([])
    []
    """
    bound = MAX_SET_OCTETS if limit is None else limit
    runs: list[str] = []
    start = previous = None
    for uid in sorted(set(uids)):
        if previous is not None and uid == previous + 1:
            previous = uid
            continue
        if start is not None:
            runs.append(_run(start, previous))
        start = previous = uid
    if start is not None:
        runs.append(_run(start, previous))
    sets: list[str] = []
    current: list[str] = []
    size = 0
    for run in runs:
        if current and size + 1 + len(run) > bound:
            sets.append(",".join(current))
            current, size = [], 0
        size += len(run) + (1 if current else 0)
        current.append(run)
    if current:
        sets.append(",".join(current))
    return sets


def _run(first: int, last: int | None) -> str:
    return str(first) if last is None or last == first else f"{first}:{last}"
