"""``run --config-dir``: many assistants in one process, one thread each.

:class:`Fleet` keeps one thread per assistant, each running ``serve(name, settings, stop)``
until its own ``stop`` is set (the daemon's loop: IDLE, timers and reconnects as for one
assistant). It knows nothing of mail: the command line hands it the serving function, the
folder's configs (:mod:`mailhelper.cli.configdir`) and the signals.

- :meth:`Fleet.apply` makes the running set match a reading of the folder: a new file starts,
  a removed one stops, a changed one restarts (its old thread ends, and lets go of its state,
  before the new one starts); a file that became bad keeps its old config running;
- :meth:`Fleet.stop_all` asks every assistant to finish the message in hand and stop;
- a thread that ends on an error ends that assistant alone (logged); the next
  :meth:`apply` (SIGHUP) starts it again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mailhelper.cli.configdir import Folder, Found
from mailhelper.model.errors import MailhelperError

log = logging.getLogger("mailhelper.cli.fleet")

Serve = Callable[[str, Any, threading.Event], None]


@dataclass
class _Running:
    found: Found
    stop: threading.Event
    thread: threading.Thread
    failure: list[BaseException] = field(default_factory=list)


class NameEachLine(logging.Filter):
    """Each log line of an assistant's thread starts with its file name (``a.yaml: ...``), so
    the lines of many assistants in one log can be told apart."""

    def filter(self, record: logging.LogRecord) -> bool:
        thread = record.threadName or ""
        if thread.startswith(THREAD_PREFIX):
            name = thread[len(THREAD_PREFIX):]
            message = record.getMessage()
            if not message.startswith(name):
                record.msg, record.args = f"{name}: {message}", None
        return True


#: An assistant's thread is named this and its file name.
THREAD_PREFIX = "mailhelper-"


class Fleet:
    """The assistants of one ``run --config-dir`` (see the module's docstring)."""

    def __init__(self, serve: Serve) -> None:
        self._serve = serve
        self._running: dict[str, _Running] = {}
        self._waiting: dict[str, Found] = {}  # to start once their old thread has ended
        self._stopping = False

    def apply(self, folder: Folder) -> None:
        """Start, stop and restart assistants so the fleet serves ``folder``'s configs."""
        for name, problem in folder.problems.items():
            if name in self._running or name in self._waiting:
                log.error("%s is refused and its old config stays in use: %s", name, problem)
            else:
                log.error("%s is skipped: %s", name, problem)
        kept = set(folder.assistants) | set(folder.problems)
        for name in list(self._running):
            if name not in kept:
                log.info("%s: its file is gone; stopping that assistant", name)
                self._running[name].stop.set()
                self._waiting.pop(name, None)
        for name, found in folder.assistants.items():
            running = self._running.get(name)
            if running is None:
                self._start(name, found)
            elif running.found.fingerprint != found.fingerprint:
                log.info("%s changed; restarting that assistant with it", name)
                running.stop.set()
                self._waiting[name] = found
            elif not running.thread.is_alive():
                log.info("%s: starting it again", name)
                self._waiting[name] = found
        self.reap()

    def _start(self, name: str, found: Found) -> None:
        stop = threading.Event()
        running = _Running(found, stop, threading.Thread())

        def work() -> None:
            try:
                self._serve(name, found.settings, stop)
            except BaseException as exc:  # this assistant's alone: the others go on
                running.failure.append(exc)
                if isinstance(exc, MailhelperError):
                    log.error("%s stopped: %s", name, exc)
                else:
                    log.exception("%s stopped on an unexpected error", name)

        running.thread = threading.Thread(target=work, name=f"{THREAD_PREFIX}{name}", daemon=True)
        self._running[name] = running
        running.thread.start()

    def reap(self) -> None:
        """Forget the threads that ended, and start what waited for them."""
        for name, running in list(self._running.items()):
            if running.thread.is_alive():
                continue
            found = self._waiting.pop(name, None)
            if found is not None and not self._stopping:
                self._start(name, found)
            elif running.stop.is_set() or self._stopping:
                del self._running[name]

    def stop_all(self) -> None:
        self._stopping = True
        self._waiting.clear()
        for running in self._running.values():
            running.stop.set()

    def alive(self) -> list[str]:
        """The names of the assistants whose thread is running."""
        return [n for n, r in self._running.items() if r.thread.is_alive()]

    def failures(self) -> list[BaseException]:
        return [exc for r in self._running.values() for exc in r.failure]

    def join(self, timeout: float | None = None) -> None:
        for running in list(self._running.values()):
            running.thread.join(timeout)
