"""The watch of an owner's own mailbox (issue 11): what it costs a cycle with no news, and what
its first look reads.

    .venv/bin/python -m bench.watch --messages 100000

Loads N messages (bench/mailgen.py) into the *owner's* INBOX on a rig Dovecot (the assistant's
own INBOX stays empty), records one open thread that began ``--recent`` messages before the
newest (one message a minute), and configures ``owners[].watch`` with its default folders
(INBOX and the ``\\Sent`` folder). Then:

- *first look*: :meth:`Watcher.look` once on a fresh state for the watch: the IMAP commands,
  the messages whose header fields were fetched (``UID SEARCH SINCE`` the thread's day) and
  the bytes the server sent for them, beside the mailbox's size;
- *no news*: ``Assistant.cycle`` C times on one connection with the watch on, and C times with
  it off (what ``mailhelper run`` does each cycle); the difference in IMAP commands and in the
  median time is what the watch adds. :meth:`Watcher.look` alone is timed too.

IMAP commands are counted at the client (bench/imapcount.py); bytes by wrapping imaplib's
reads. Goals (issue 11): at most 2 commands and 20 ms added to a no-news cycle.
"""

from __future__ import annotations

import argparse
import imaplib
import os
import pwd
import statistics
import sys
import time
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from bench.imapcount import CommandLog
from bench.mailgen import FIRST_DATE, generate, load_maildir
from bench.results import RESULTS_DIR, Report
from bench.servers import BenchServers
from mailhelper.cli.config import load_settings
from mailhelper.compose.render import Renderer
from mailhelper.decide.events import NewThread
from mailhelper.engine import tracker
from mailhelper.engine.daemon import Assistant
from mailhelper.engine.watch import Watcher
from mailhelper.mail.connect import open_imap, open_smtp
from mailhelper.mail.mailbox import Mailbox
from mailhelper.model.values import Address, Kind
from mailhelper.state.store import Store

COMMANDS_GOAL = 2
ADDED_MS_GOAL = 20
OWNER_LOGIN = "sam-own@example.com"


class ByteCount:
    """Bytes imaplib reads from the server while active (literals and lines)."""

    def __init__(self) -> None:
        self.bytes = 0
        self._saved: tuple[Any, Any] | None = None

    def __enter__(self) -> ByteCount:
        read, readline = imaplib.IMAP4.read, imaplib.IMAP4.readline
        counter = self

        def counted_read(client: imaplib.IMAP4, size: int) -> bytes:
            data: bytes = read(client, size)
            counter.bytes += len(data)
            return data

        def counted_readline(client: imaplib.IMAP4) -> bytes:
            data: bytes = readline(client)
            counter.bytes += len(data)
            return data

        self._saved = (read, readline)
        imaplib.IMAP4.read = counted_read  # type: ignore[method-assign]
        imaplib.IMAP4.readline = counted_readline  # type: ignore[method-assign]
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._saved is not None
        imaplib.IMAP4.read, imaplib.IMAP4.readline = self._saved  # type: ignore[method-assign]


def assistant_for(config: Path) -> Assistant:
    settings = load_settings(config, {})
    store = Store.open(settings.state, settings.assistant.email.rpartition("@")[2])
    return Assistant(settings, store, Renderer(settings), lambda: open_imap(settings.imap),
                     lambda: open_smtp(settings.smtp))


def run(messages: int, cycles: int = 30, recent: int = 1000,
        results_dir: Path | None = RESULTS_DIR, stem: str | None = None) -> Report:
    report = Report("watch", {"messages": messages, "cycles": cycles, "recent": recent})
    newest = FIRST_DATE + timedelta(minutes=messages - 1)
    now = newest + timedelta(minutes=5)
    with BenchServers() as servers:
        rig = servers.assistant({"confirm": False})
        owner = servers.dovecot.add_user(OWNER_LOGIN)
        loaded = _load_owner(servers, messages)
        password = Path(rig.workdir) / "owner-password"
        password.write_text(owner.password)
        password.chmod(0o600)
        imap = rig.config["imap"]
        rig.configure({"owners": [{"name": "Sam Rivera", "email": "sam@example.com", "watch": {
            "host": imap["host"], "port": imap["port"], "security": imap["security"],
            "username": owner.username, "password_file": str(password),
            "ca_file": imap["ca_file"], "timeout": "30 seconds"}}]})
        assistant = assistant_for(Path(rig.config_path))
        began = max(FIRST_DATE, newest - timedelta(minutes=recent))
        _open_thread(assistant, began)
        report.notes.append(f"owner's INBOX: {loaded.messages} messages, "
                            f"{loaded.total_bytes / 1e6:.1f} MB; one open thread since "
                            f"{began.isoformat()}")
        try:
            _first_look(assistant, report, now, loaded.total_bytes)
            _no_news(assistant, report, now + timedelta(minutes=1), cycles)
        finally:
            assistant.watcher.close()
            assistant.store.close()
    report.finish(results_dir, stem)
    return report


def _load_owner(servers: BenchServers, messages: int) -> Any:
    maildir = servers.dovecot.maildir(OWNER_LOGIN)
    if os.geteuid() == 0:
        entry = pwd.getpwnam("nobody")
        uid, gid = entry.pw_uid, entry.pw_gid
    else:
        uid, gid = os.geteuid(), os.getegid()
    loaded = load_maildir(maildir, generate(messages, "helper-x@example.com"), uid, gid)
    servers.dovecot.doveadm("mailbox", "status", "-u", OWNER_LOGIN, "messages", "INBOX")
    return loaded


def _open_thread(assistant: Assistant, began: datetime) -> None:
    owner = assistant.settings.owners[0]
    event = NewThread(message_id="bench-ask@example.com", kind=Kind.ASK, owner=owner,
                      counterparts=(Address("jane@example.org", "Jane"),),
                      subject="A bench ask", thread_ids=("bench-ask@example.com",))
    with assistant.store.transaction():
        tracker.apply_event(assistant.store, assistant.settings, event, began)


def _first_look(assistant: Assistant, report: Report, now: datetime, size: int) -> None:
    watcher = Watcher(assistant.settings)
    with CommandLog() as commands, ByteCount() as received:
        began = time.perf_counter()
        result = watcher.look(assistant.store, now)
        seconds = time.perf_counter() - began
    names = [n for n in commands.names if n not in ("CAPABILITY", "STARTTLS", "LOGIN")]
    report.add("first look: messages whose headers were read", result.seen)
    report.add("first look: bytes received (login included)", received.bytes, "B")
    report.add("owner's mailbox size", size, "B")
    report.add("first look: bytes / mailbox size", round(received.bytes / size, 5))
    report.add("first look: commands", " ".join(names))
    report.add("first look: time (login included)", seconds * 1000.0, "ms")
    assistant.watcher = watcher  # the same connection goes on in the no-news cycles


def _no_news(assistant: Assistant, report: Report, now: datetime, cycles: int) -> None:
    mailbox = Mailbox(assistant.imap_factory(), assistant.settings.imap.folder)
    watching = assistant.watcher
    blind = Watcher(replace(assistant.settings, watches=()))
    assistant.cycle(mailbox, now)  # records the schedule fingerprint; unmeasured
    timings: dict[str, list[float]] = {"on": [], "off": [], "look": []}
    counts: dict[str, list[list[str]]] = {"on": [], "off": [], "look": []}
    with CommandLog() as commands:
        for n in range(cycles):
            for mode in ("off", "on"):
                assistant.watcher = watching if mode == "on" else blind
                commands.clear()
                began = time.perf_counter()
                result = assistant.cycle(mailbox, now + timedelta(seconds=2 * n))
                timings[mode].append(time.perf_counter() - began)
                counts[mode].append(list(commands.names))
                assert result.read == 0
            commands.clear()
            began = time.perf_counter()
            looked = watching.look(assistant.store, now + timedelta(seconds=2 * n + 1))
            timings["look"].append(time.perf_counter() - began)
            counts["look"].append(list(commands.names))
            assert looked.seen == 0
    assistant.watcher = watching
    mailbox.logout()
    ms = 1000.0
    added = max(len(on) - len(off) for on, off in zip(counts["on"], counts["off"], strict=True))
    report.add("no news: commands the watch adds (max)", added, "", ("<=", COMMANDS_GOAL))
    report.add("no news: the watch's commands", " ".join(counts["look"][-1]) or "-")
    report.add("no news: cycle without the watch (median)",
               statistics.median(timings["off"]) * ms, "ms")
    report.add("no news: cycle with the watch (median)", statistics.median(timings["on"]) * ms,
               "ms")
    report.add("no news: time the watch adds (median)",
               (statistics.median(timings["on"]) - statistics.median(timings["off"])) * ms, "ms",
               ("<", ADDED_MS_GOAL))
    report.add("no news: Watcher.look alone (median)", statistics.median(timings["look"]) * ms,
               "ms", ("<", ADDED_MS_GOAL))
    report.add("no news: Watcher.look alone (max)", max(timings["look"]) * ms, "ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.watch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--recent", type=int, default=1000,
                        help="the open thread began this many minutes (messages) ago")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    run(args.messages, args.cycles, args.recent,
        None if args.no_write else args.results_dir, f"watch-{args.messages}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
