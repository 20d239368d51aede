"""A time budget that really stops pure-Python work in the thread that runs it.

    >>> budget = TimeBudget(5)
    >>> with budget.limit():
    ...     sum(range(10))
    45

Why this design: the reading of one message (the header check,
:func:`~mailhelper.read.parse.parse_mail`, :func:`~mailhelper.decide.classify.classify`) is pure
Python in whatever thread runs the cycle, and under ``mailhelper run`` that is a worker thread (the
main thread waits for signals). A thread cannot be killed, and ``SIGALRM`` is delivered to the main
thread only, so an alarm could not stop the worker. A subprocess per message would cost more
than reading most messages and cannot share the state store. Checks of a deadline inside the
converters' loops would miss the stdlib parsers (``html.parser``, ``email``), where the time
goes. What does stop the worker: CPython can make another thread raise an exception at its next
bytecode (``PyThreadState_SetAsyncExc``); a watchdog thread does that when the deadline passes.
A long C call (a regular expression over a huge string) is not interrupted, but every stage of
the reading is capped in input size, so the next bytecode is never far off.

Where that call does not exist (not CPython), the budget is not enforced; the input caps
still bound the reading.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: A watchdog with nothing to watch for this long ends (the next :meth:`TimeBudget.limit`
#: starts a new one), so idle Assistants keep no thread alive.
IDLE_SECONDS = 30.0


class OverBudget(BaseException):
    """The work went over its time budget. A BaseException, not an Exception: the readers
    guard each field with ``except Exception`` (one unreadable field must not cost the mail),
    and must not swallow this."""


def _async_raiser() -> Callable[[int, type[BaseException] | None], int] | None:
    function = getattr(getattr(ctypes, "pythonapi", None), "PyThreadState_SetAsyncExc", None)
    if function is None:
        return None

    def raise_in(thread: int, exc: type[BaseException] | None) -> int:
        # None goes down as NULL, which withdraws an exception set but not yet raised.
        return int(function(ctypes.c_ulong(thread), ctypes.py_object(exc) if exc else None))

    return raise_in


_RAISE_IN = _async_raiser()


class TimeBudget:
    """At most ``seconds`` of wall-clock time for each ``with budget.limit():`` block; past
    it, :class:`OverBudget` is raised inside the block. One block at a time per budget."""

    def __init__(self, seconds: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._monotonic = monotonic
        self._lock = threading.Condition()
        self._target: int | None = None  # the thread inside limit(), while it is there
        self._deadline = 0.0
        self._fired = False
        self._watchdog: threading.Thread | None = None
        #: The watchdog waits with nothing to watch: only then must a new block wake it.
        #: Waiting for an earlier block's deadline, it wakes before this block's (each
        #: deadline is later than the one before) and waits on, so a block costs no wake-up
        #: of another thread (a message is read in about a millisecond; the budget is seconds).
        self._idle = False
        #: The deadline the watchdog waits for: one set under a longer budget may lie beyond
        #: a new block's, and then it is woken too.
        self._until = 0.0

    @property
    def enforced(self) -> bool:
        """Whether the budget can interrupt the work (CPython), not only time it."""
        return _RAISE_IN is not None

    @contextmanager
    def limit(self) -> Iterator[None]:
        """Run the block under the budget; :class:`OverBudget` comes out of it when the
        budget runs out, and never after the block is left."""
        if _RAISE_IN is None or self.seconds <= 0:
            yield
            return
        me = threading.get_ident()
        with self._lock:
            self._target, self._fired = me, False
            self._deadline = self._monotonic() + self.seconds
            if self._watchdog is None:
                self._watchdog = threading.Thread(target=self._watch, daemon=True,
                                                  name="mailhelper-budget")
                self._watchdog.start()
            elif self._idle or self._deadline < self._until:
                self._lock.notify()
        try:
            yield
        finally:
            with self._lock:
                self._target = None
                fired = self._fired
            if fired:  # raised in the block already, or still pending: withdraw it
                _RAISE_IN(me, None)

    def _watch(self) -> None:
        with self._lock:
            while True:
                if self._target is None or self._fired:
                    self._idle = True
                    woken = self._lock.wait(IDLE_SECONDS)
                    self._idle = False
                    if not woken and self._target is None:
                        self._watchdog = None
                        return
                    continue
                left = self._deadline - self._monotonic()
                if left > 0:
                    self._until = self._deadline
                    self._lock.wait(left)
                    continue
                assert _RAISE_IN is not None
                _RAISE_IN(self._target, OverBudget)
                self._fired = True
