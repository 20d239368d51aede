"""The reading worker of :mod:`mailhelper.engine.pipeline`: the process, the pipes to it and
the loop it runs. Imported only when a worker is started.
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
