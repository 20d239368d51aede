"""Reading ahead in a second process while this one fetches, decides and commits.

The reading of a message splits in two. The pure part (its content key, the prefilter's
look at its header, :func:`~mailhelper.read.parse.parse_mail`) needs nothing but the bytes
and the settings; it is most of the CPU a new message costs. The rest (the prefilter's
look-ups, classifying, applying the event, committing) needs the state and stays here, in
fetch order. :func:`read_ahead` hands each fetched message to one worker process up to
:data:`AHEAD` messages (and :data:`AHEAD_BYTES` bytes) before this process gets to it, and
yields each message with what the worker read (:class:`Early`), in fetch order: the order of
effects, the one transaction a message, and the settling of the fetch loop do not change;
the worker only saves this process the work.

What it changes nowhere: a reading. :func:`read_early` is the in-process reading's first half
as a function (the same calls in the same order), and :func:`early_verdict` and
:func:`early_mail` pick up where it stopped. A message the worker could not read (the worker
died, an exception other than :class:`~mailhelper.read.parse.UnparseableMail`, a result that
would not pickle) has no :class:`Early` and goes the in-process way, as if there were no
worker. So does a message the worker spent longer on than the per-message time budget
(``limits.message_seconds``): the worker is stopped then (a process can be killed, the
reading in a thread cannot), the rest of the cycle is read in-process, and that message's
budget decides as it always has (:mod:`mailhelper.engine.budget`).

Why a process per cycle and not per message: a new interpreter and the reading modules cost
some 0.2 s, a message about 1 ms. Folders with fewer than :data:`MIN_MESSAGES` new messages
are read in-process (``MAILHELPER_READ_AHEAD=N`` in the environment moves that bound, ``off``
turns the worker off: a hook for tests and measurements, like ``MAILHELPER_CRASH_AT``). The
worker is a new interpreter (no fork of a process that holds an
SQLite connection, an IMAP socket and threads) that imports this module and the reading,
talks over its standard input and output (pickles, each after its length), ignores SIGINT
(the terminal's Ctrl-C is this process's to act on), and ends at the end of its input: when
told to, when this process is gone, or when killed (:mod:`mailhelper.engine.readworker`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Protocol, TypeVar

from mailhelper.engine.early import (
    Early,
    early_mail,
    early_verdict,
    import_reading,
    read_early,
)

if TYPE_CHECKING:
    import threading

    from mailhelper.model.settings import Settings


class Fetched(Protocol):
    """What the pipeline needs of a fetched message (an IMAP source's
    :class:`~mailhelper.mail.source.Incoming`, or a test's)."""

    @property
    def raw(self) -> bytes: ...

    @property
    def too_large(self) -> bool: ...


M = TypeVar("M", bound=Fetched)

#: The pure half of the reading and its use here (:mod:`mailhelper.engine.early`), for the
#: cycle to find beside :func:`read_ahead`.
__all__ = ["AHEAD", "AHEAD_BYTES", "MIN_MESSAGES", "Early", "early_mail", "early_verdict",
           "import_reading", "read_ahead", "read_early"]

log = logging.getLogger(__name__)

#: A folder with fewer new messages than this is read in-process: the worker's start (a new
#: interpreter importing the reading modules, some 0.2 s) costs what reading ~200 takes.
MIN_MESSAGES = 300
#: The worker reads at most this many messages ahead of the one being applied (and at least
#: half as many, as the window is topped up from half-full): deep enough that it is not left
#: without work while this process waits for a FETCH or a settling, nor this process waiting
#: for it when a few large messages come together (32 left twice as much waiting) ...
AHEAD = 96
#: ... and at most this many bytes of them (at least one message, whatever its size).
AHEAD_BYTES = 16 * 1024 * 1024


def _least_messages() -> int:
    """:data:`MIN_MESSAGES`, or what ``MAILHELPER_READ_AHEAD`` says: a number of new
    messages from which a worker reads ahead, or ``off`` (for tests and measurements)."""
    wanted = os.environ.get("MAILHELPER_READ_AHEAD", "").strip().lower()
    if wanted == "off":
        return sys.maxsize
    return int(wanted) if wanted.isdigit() else MIN_MESSAGES


def read_ahead(
    messages: Iterable[M], settings: Settings, count: int, seconds: float | None,
    stop: threading.Event | None = None,
) -> Iterator[tuple[M, Early | None]]:
    """Each of ``messages`` (``count`` of them) with what the worker read of it, in their
    order. None for a message read in-process: every one when ``count`` is below
    :data:`MIN_MESSAGES`, one too large to read, and every one once the worker broke.
    ``seconds``: the per-message time budget (None or 0: none), the longest wait for one
    message. After ``stop`` is set, the message in hand is the last one yielded (what the
    worker read beyond it is dropped, and read again at the next start)."""
    if count < _least_messages():
        for message in messages:
            yield message, None
        return
    # Loaded only here: a cycle with little or nothing new (a cron poll) does not pay for
    # the process and pipe machinery.
    from mailhelper.engine.readworker import Worker

    worker = Worker(settings)
    pending: deque[tuple[M, int | None]] = deque()
    held = 0
    source = iter(messages)
    exhausted = False
    done = 0
    try:
        while True:
            # Topped up in bursts, from half-full: the worker takes several messages a write.
            topping = not pending or len(pending) <= AHEAD // 2
            while not exhausted and topping and (not pending or (len(pending) < AHEAD
                                                                 and held < AHEAD_BYTES)):
                fetched = next(source, None)
                if fetched is None:
                    exhausted = True
                    break
                ticket = None if fetched.too_large else worker.submit(fetched.raw)
                pending.append((fetched, ticket))
                held += len(fetched.raw)
            worker.send()
            if not pending:
                return
            message, ticket = pending.popleft()
            held -= len(message.raw)
            early = worker.result(ticket, seconds or None) if ticket is not None else None
            yield message, early
            done += 1
            if stop is not None and stop.is_set() and (pending or not exhausted):
                log.info("stopping: %d of %d new message(s) handled; the rest at the next "
                         "start", done, count)
                return
    finally:
        worker.close()
        close = getattr(source, "close", None)
        if close is not None:
            close()
