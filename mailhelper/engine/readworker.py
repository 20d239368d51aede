"""The reading worker of :mod:`mailhelper.engine.pipeline`: the process, the pipes to it and
the loop it runs. Imported only when a worker is started.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mailhelper.engine.early import Early, read_early

if TYPE_CHECKING:
    from mailhelper.model.settings import Settings

log = logging.getLogger(__name__)

#: How the worker is started: a new interpreter that imports only this module (a
#: multiprocessing spawn would import the parent's main module again, which a script
#: without a ``__name__`` guard would run a second time).
_ENTRY = "from mailhelper.engine.readworker import serve; serve()"
_LENGTH = struct.Struct("<Q")


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
    """One worker process and the two pipes to it, driven from the calling thread alone: the
    requests wait in a buffer and go out as the pipe takes them (:meth:`_pump`, never
    blocking), and the answers are read as they come while :meth:`result` waits. No thread:
    threads feeding and collecting here took the interpreter's lock from the cycle at each of
    its SQLite statements (which let it go), and the cycle then waited to get it back. Once
    broken (died, too slow, could not start) it answers None to everything and the caller
    reads in-process."""

    def __init__(self, settings: Settings) -> None:
        self.broken = False
        self._closed = False
        self._next = 0
        self._outgoing = bytearray()
        self._incoming = bytearray()
        self._answers: dict[int, Early | None] = {}
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
        self._requests = self._process.stdin.fileno()
        self._replies = self._process.stdout.fileno()
        for fd in (self._requests, self._replies):
            os.set_blocking(fd, False)
            with contextlib.suppress(AttributeError, OSError):  # Linux: room for 1 MB, so
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)  # neither side waits for long
        self._queue(settings)

    def _queue(self, item: object) -> None:
        data = pickle.dumps(item, pickle.HIGHEST_PROTOCOL)
        self._outgoing += _LENGTH.pack(len(data))
        self._outgoing += data

    def submit(self, raw: bytes) -> int | None:
        """Queue ``raw`` for reading; its ticket, or None when the worker is broken. It goes
        out at the next :meth:`send` or :meth:`result`: a write for each message woke the
        worker (and cost this process a system call or two) each time."""
        if self.broken:
            return None
        number = self._next
        self._next += 1
        self._queue((number, raw))
        return number

    def send(self) -> None:
        """Write what the pipe to the worker takes of what is queued, without waiting."""
        if self._outgoing and not self.broken:
            self._pump(0.0)

    def result(self, ticket: int, seconds: float | None) -> Early | None:
        """What the worker read for ``ticket``, waiting at most ``seconds`` (None: as long as
        the worker lives); None when it cannot say (the worker broke, or took longer)."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while not self.broken:
            if ticket in self._answers:
                early = self._answers.pop(ticket)
                for stale in [n for n in self._answers if n < ticket]:
                    del self._answers[stale]  # answers to messages nobody waits for any more
                return early
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                self._break(f"spent more than {seconds:g} s on one message")
                break
            self._pump(left)
        return None

    def _pump(self, wait: float | None) -> None:
        """Write what the pipe to the worker takes and read what it answered, waiting at most
        ``wait`` seconds (None: until something moves) for either."""
        poller = select.poll()  # not select(): no bound on the descriptors' numbers
        poller.register(self._replies, select.POLLIN)
        if self._outgoing:
            poller.register(self._requests, select.POLLOUT)
        try:
            ready = dict(poller.poll(None if wait is None else max(0, int(wait * 1000))))
        except (OSError, ValueError) as exc:
            self._break(f"could not be reached ({exc})")
            return
        writable = self._requests in ready
        readable = self._replies in ready
        if writable:
            try:
                sent = os.write(self._requests, self._outgoing)
            except BlockingIOError:
                sent = 0
            except OSError:  # the worker is gone: its end shows on the answers' side
                sent, self._outgoing = 0, bytearray()
            del self._outgoing[:sent]
        if readable:
            try:
                chunk = os.read(self._replies, 1 << 20)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                code = self._process.poll() if self._process is not None else None
                self._break(f"stopped (exit code {code})")
                return
            self._incoming += chunk
            self._take_answers()

    def _take_answers(self) -> None:
        while len(self._incoming) >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(self._incoming)
            end = _LENGTH.size + size
            if len(self._incoming) < end:
                return
            try:
                number, early = pickle.loads(self._incoming[_LENGTH.size:end])
            except Exception as exc:  # a reply that cannot be read: the worker is of no use
                self._break(f"sent an answer that cannot be read ({exc})")
                return
            del self._incoming[:end]
            self._answers[number] = early

    def _break(self, why: str) -> None:
        log.warning("the reading worker %s: the rest of this cycle is read in this process",
                    why)
        if self._process is not None and self._process.poll() is None:
            self._process.kill()  # it may be stuck on that message: it is of no more use
        self.close()

    def close(self) -> None:
        """Stop the worker: end its input, kill it if it has not ended within a second."""
        self.broken = True
        self._outgoing = bytearray()
        process = self._process
        if process is None or self._closed:
            return
        self._closed = True
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            process.wait(1.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
