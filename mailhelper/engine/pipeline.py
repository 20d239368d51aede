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
told to, when this process is gone, or when killed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailhelper.decide.prefilter import Candidate, Lookup
    from mailhelper.mail.mailbox import Fetched
    from mailhelper.model.settings import Settings
    from mailhelper.model.values import Mail

log = logging.getLogger(__name__)

#: A folder with fewer new messages than this is read in-process: the worker's start (a new
#: interpreter importing the reading modules, some 0.2 s) costs what reading ~200 takes.
MIN_MESSAGES = 300
#: The worker reads at most this many messages ahead of the one being applied ...
AHEAD = 32
#: ... and at most this many bytes of them (at least one message, whatever its size).
AHEAD_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Early:
    """What the pure half of the reading found for one message: its content key, the
    prefilter's candidate when the header alone may let it be ignored (subject to the state),
    and unless it is a candidate naming no other mail, its
    :class:`~mailhelper.model.values.Mail` or the reason it is no mail."""

    key: str
    candidate: Candidate | None = None
    mail: Mail | None = None
    unparseable: str | None = None
    #: :func:`~mailhelper.read.replytext.strip_reply` of the mail's reply text (else its
    #: text): what the excerpt of it starts from (:func:`~mailhelper.read.replytext.recap`).
    stripped: str | None = None


def read_early(raw: bytes, settings: Settings) -> Early:
    """The pure half of :meth:`mailhelper.engine.daemon.Assistant.handle`'s reading, in its
    order: the content key, the prefilter's header check, and when that leaves the message to
    the full reading or may (it names other mail), :func:`~mailhelper.read.parse.parse_mail`
    and the stripped reply text an excerpt of the mail starts from.
    Exceptions other than :class:`~mailhelper.read.parse.UnparseableMail` go to the caller."""
    from mailhelper.decide.prefilter import header_check
    from mailhelper.mail.mailbox import content_key
    from mailhelper.read.parse import UnparseableMail, parse_mail
    from mailhelper.read.replytext import strip_reply

    key = content_key(raw)
    candidate = header_check(raw, settings)
    if candidate is not None and len(candidate.ids) == 1:
        return Early(key, candidate=candidate)
    # A candidate that refers to other mail is parsed too: whether it can be ignored depends
    # on the state (a reply to a tracked thread cannot), and the caller must not have to
    # parse it in its turn.
    try:
        mail = parse_mail(raw)
    except UnparseableMail as exc:
        return Early(key, candidate=candidate, unparseable=str(exc))
    return Early(key, candidate=candidate, mail=mail,
                 stripped=strip_reply(mail.reply_text or mail.text))


def import_reading() -> None:
    """Import what :func:`early_verdict` and :func:`early_mail` may call, so that a caller
    timing them (the per-message budget) times the reading, not an import."""
    import mailhelper.decide.prefilter
    import mailhelper.read.parse  # noqa: F401


def early_verdict(early: Early | None, raw: bytes, settings: Settings,
                  lookup: Lookup) -> tuple[str, str] | None:
    """:func:`~mailhelper.decide.prefilter.ignorable` for ``raw``, its header check taken
    from ``early`` when the worker did it."""
    from mailhelper.decide.prefilter import confirmed, ignorable

    if early is None:
        return ignorable(raw, settings, lookup)
    return confirmed(early.candidate, lookup) if early.candidate is not None else None


def early_mail(early: Early | None, raw: bytes) -> Mail:
    """:func:`~mailhelper.read.parse.parse_mail` of ``raw``, taken from ``early`` when the
    worker parsed it (its :class:`~mailhelper.read.parse.UnparseableMail` raised again; its
    stripped reply text handed to :func:`~mailhelper.read.replytext.recap`)."""
    from mailhelper.read.parse import UnparseableMail, parse_mail
    from mailhelper.read.replytext import hand_over

    if early is not None:
        if early.mail is not None:
            if early.stripped is not None:
                hand_over(early.mail.reply_text or early.mail.text, early.stripped)
            return early.mail
        if early.unparseable is not None:
            raise UnparseableMail(early.unparseable)
    return parse_mail(raw)


#: How the worker is started: a new interpreter that imports only this module (a
#: multiprocessing spawn would import the parent's main module again, which a script
#: without a ``__name__`` guard would run a second time).
_ENTRY = "from mailhelper.engine.pipeline import serve; serve()"
_LENGTH = struct.Struct("<Q")


def _send(stream: IO[bytes], item: object) -> None:
    _write(stream, pickle.dumps(item, pickle.HIGHEST_PROTOCOL))


def _write(stream: IO[bytes], data: bytes) -> None:
    stream.write(_LENGTH.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    """The next item on ``stream``; EOFError at its end."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError
    (size,) = _LENGTH.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


def serve(requests: IO[bytes] | None = None, answers: IO[bytes] | None = None) -> None:
    """The worker's loop, on its standard input and output: the settings first, then
    (number, raw bytes) in and (number, :class:`Early` or None) out, in order, until its
    input ends (the parent closed it, or is gone)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's Ctrl-C is the parent's
    requests = requests or sys.stdin.buffer
    answers = answers or sys.stdout.buffer
    try:
        settings = _receive(requests)
        while True:
            number, raw = _receive(requests)
            try:
                data = pickle.dumps((number, read_early(raw, settings)),
                                    pickle.HIGHEST_PROTOCOL)
            except Exception:  # the in-process reading meets it again, and reports it as it does
                data = pickle.dumps((number, None), pickle.HIGHEST_PROTOCOL)
            _write(answers, data)
    except (EOFError, BrokenPipeError):
        return


class Worker:
    """One worker process, a thread feeding it and one reading its answers. Once broken
    (died, too slow, could not start) it answers None to everything and the caller reads
    in-process."""

    def __init__(self, settings: Settings) -> None:
        self.broken = False
        self._next = 0
        self._requests: queue.SimpleQueue[tuple[int, bytes] | None] = queue.SimpleQueue()
        self._answers: queue.SimpleQueue[tuple[int, Early | None] | None] = \
            queue.SimpleQueue()
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH")) if p)
        try:
            self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
                [sys.executable, "-c", _ENTRY], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        except OSError as exc:  # no processes left, no interpreter to be found
            self._process = None
            self._break(f"could not start ({exc})")
            return
        assert self._process.stdin is not None and self._process.stdout is not None
        threading.Thread(target=self._feed, args=(self._process.stdin, settings),
                         name="mailhelper-reader-feed", daemon=True).start()
        threading.Thread(target=self._collect, args=(self._process.stdout,),
                         name="mailhelper-reader-collect", daemon=True).start()

    def _feed(self, stream: IO[bytes], settings: Settings) -> None:
        # Writing in a thread of its own: a write to a full pipe waits for the worker, and
        # the worker's own writes wait for _collect, never for the cycle.
        try:
            _send(stream, settings)
            while (item := self._requests.get()) is not None:
                _send(stream, item)
        except (OSError, ValueError):
            pass  # the worker is gone: _collect sees its end
        finally:
            with contextlib.suppress(OSError, ValueError):
                stream.close()

    def _collect(self, stream: IO[bytes]) -> None:
        try:
            while True:
                self._answers.put(_receive(stream))
        except (EOFError, OSError, ValueError, pickle.UnpicklingError):
            self._answers.put(None)

    def submit(self, raw: bytes) -> int | None:
        """Queue ``raw`` for reading; its ticket, or None when the worker is broken."""
        if self.broken:
            return None
        number = self._next
        self._next += 1
        self._requests.put((number, raw))
        return number

    def result(self, ticket: int, seconds: float | None) -> Early | None:
        """What the worker read for ``ticket``, waiting at most ``seconds`` (None: as long as
        the worker lives); None when it cannot say (the worker broke, or took longer)."""
        if self.broken:
            return None
        try:
            while True:
                answer = self._answers.get(timeout=seconds)
                if answer is None:
                    code = self._process.poll() if self._process is not None else None
                    self._break(f"stopped (exit code {code})")
                    return None
                number, early = answer
                if number == ticket:
                    return early
                # an answer to a message nobody waits for any more: the next one
        except queue.Empty:
            self._break(f"spent more than {seconds:g} s on one message")
            return None

    def _break(self, why: str) -> None:
        log.warning("the reading worker %s: the rest of this cycle is read in this process",
                    why)
        if self._process is not None and self._process.poll() is None:
            self._process.kill()  # it may be stuck on that message: it is of no more use
        self.close()

    def close(self) -> None:
        """Stop the worker: end its input, kill it if it has not ended within a second."""
        self.broken = True
        self._requests.put(None)
        if self._process is None:
            return
        try:
            self._process.wait(1.0)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()


def _least_messages() -> int:
    """:data:`MIN_MESSAGES`, or what ``MAILHELPER_READ_AHEAD`` says: a number of new
    messages from which a worker reads ahead, or ``off`` (for tests and measurements)."""
    wanted = os.environ.get("MAILHELPER_READ_AHEAD", "").strip().lower()
    if wanted == "off":
        return sys.maxsize
    return int(wanted) if wanted.isdigit() else MIN_MESSAGES


def read_ahead(
    messages: Iterable[Fetched], settings: Settings, count: int, seconds: float | None,
    stop: threading.Event | None = None,
) -> Iterator[tuple[Fetched, Early | None]]:
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
    worker = Worker(settings)
    pending: deque[tuple[Fetched, int | None]] = deque()
    held = 0
    source = iter(messages)
    exhausted = False
    done = 0
    try:
        while True:
            while not exhausted and (not pending or (len(pending) < AHEAD
                                                     and held < AHEAD_BYTES)):
                fetched = next(source, None)
                if fetched is None:
                    exhausted = True
                    break
                ticket = None if fetched.too_large else worker.submit(fetched.raw)
                pending.append((fetched, ticket))
                held += len(fetched.raw)
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
