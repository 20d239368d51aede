"""A poll with no news on a big mailbox already read: IMAP commands per cycle, and its time.

    .venv/bin/python -m bench.nonews --messages 100000

Loads N messages (bench/mailgen.py) into a rig Dovecot, makes the assistant's state "already
read" (``--prime poll``: mailhelper's real first poll over all of them; ``--prime position``:
the sync position set to the folder's last UID and every message flagged handled, as the real
poll leaves it, without the hours a 100,000-message first poll takes), then runs
``Assistant.cycle`` again and again with nothing new:

- ``fresh``: connect and log in (timed apart), one cycle, log out: what ``poll --once`` does
  (also timed whole, logout included);
- ``warm``: cycles on one logged-in connection: what ``mailhelper run`` does after each IDLE;
  the folder stays selected, so a cycle costs a NOOP and one UID SEARCH instead of a SELECT.

IMAP commands are counted at the client (bench/imapcount.py). Goals (issue 7): commands per
cycle constant and <= 4; cycle time < 50 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.child import measure
from bench.imapcount import CommandLog
from bench.mailgen import FIRST_DATE
from bench.results import RESULTS_DIR, Report
from bench.servers import BenchServers
from mailhelper.cli.config import load_settings
from mailhelper.compose.render import Renderer
from mailhelper.engine.daemon import Assistant
from mailhelper.mail.connect import open_imap, open_smtp
from mailhelper.mail.mailbox import HANDLED_FLAG, Mailbox
from mailhelper.mail.source import ImapCursor
from mailhelper.state.store import Store

COMMANDS_GOAL = 4
CYCLE_GOAL_MS = 50
#: The digest on (a default-like rule), so planning it is part of every cycle as in real use.
DIGEST = {"schedules": {"digest": {"rrule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=8"}}}


def assistant_for(config: Path) -> Assistant:
    settings = load_settings(config, {})
    store = Store.open(settings.state, settings.assistant.email.rpartition("@")[2])
    return Assistant(settings, store, Renderer(settings), lambda: open_imap(settings.imap),
                     lambda: open_smtp(settings.smtp))


def _prime_position(servers: BenchServers, assistant: Any, config: Path, now: datetime) -> None:
    """The state a finished first poll leaves: sync position at the last UID, all flagged."""
    status = servers.index(assistant)
    servers.dovecot.doveadm("flags", "add", "-u", assistant.address,
                            f"\\Seen {HANDLED_FLAG.decode()}", "mailbox", "INBOX", "all")
    helper = assistant_for(config)
    with helper.store.transaction():
        helper.store.set_cursor(
            "INBOX", ImapCursor(status["uidvalidity"], status["uidnext"] - 1).text())
    helper.store.close()


def run(messages: int, cycles: int = 30, prime: str = "auto",
        results_dir: Path | None = RESULTS_DIR, stem: str | None = None) -> Report:
    prime = prime if prime != "auto" else ("poll" if messages <= 20_000 else "position")
    report = Report("nonews", {"messages": messages, "cycles": cycles, "prime": prime})
    first = FIRST_DATE + timedelta(minutes=messages + 1)
    with BenchServers() as servers:
        rig = servers.assistant({"confirm": False, **DIGEST})
        loaded = servers.load_backlog(rig, messages)
        config = Path(rig.config_path)
        if prime == "poll":
            primed = measure("poll", "--config", str(config), "--now", first.isoformat())
            report.notes.append(f"primed by a real first poll: {primed.report['read']} "
                                f"messages in {primed.report['seconds']:.1f} s")
        else:
            _prime_position(servers, rig, config, first)
            report.notes.append("primed by setting the sync position and flags (no first poll)")
        report.notes.append(f"mailbox: {loaded.messages} messages, "
                            f"{loaded.total_bytes / 1e6:.1f} MB")
        assistant = assistant_for(config)
        try:
            _measure_cycles(assistant, report, first, cycles)
        finally:
            assistant.store.close()
    report.finish(results_dir, stem)
    return report


def _measure_cycles(assistant: Assistant, report: Report, first: datetime, cycles: int) -> None:
    now = first + timedelta(minutes=1)
    # One unmeasured cycle: the first run after priming records the schedule fingerprint.
    warmup = Mailbox(assistant.imap_factory(), assistant.settings.imap.folder)
    assistant.cycle(warmup, now)
    logins: list[float] = []
    fresh: list[float] = []
    whole: list[float] = []
    fresh_commands: list[list[str]] = []
    with CommandLog() as commands:
        for n in range(cycles):
            tick = now + timedelta(seconds=n)
            began = time.perf_counter()
            mailbox = Mailbox(assistant.imap_factory(), assistant.settings.imap.folder)
            logged_in = time.perf_counter()
            commands.clear()
            result = assistant.cycle(mailbox, tick)
            done = time.perf_counter()
            fresh_commands.append(list(commands.names))
            mailbox.logout()
            whole.append(time.perf_counter() - began)
            assert result.read == 0, "a no-news cycle read mail"
            logins.append(logged_in - began)
            fresh.append(done - logged_in)
        warm: list[float] = []
        warm_commands: list[list[str]] = []
        for n in range(cycles):
            commands.clear()
            began = time.perf_counter()
            assistant.cycle(warmup, now + timedelta(minutes=5, seconds=n))
            warm.append(time.perf_counter() - began)
            warm_commands.append(list(commands.names))
    warmup.logout()
    ms = 1000.0
    most = max(len(c) for c in fresh_commands + warm_commands)
    report.add("IMAP commands per cycle (max)", most, "", ("<=", COMMANDS_GOAL))
    report.add("IMAP commands per cycle (min)", min(len(c) for c in fresh_commands + warm_commands))
    report.add("commands (fresh connection)", " ".join(fresh_commands[-1]) or "-")
    report.add("commands (same connection)", " ".join(warm_commands[-1]) or "-")
    report.add("cycle time, fresh connection (median)", statistics.median(fresh) * ms, "ms",
               ("<", CYCLE_GOAL_MS))
    report.add("cycle time, fresh connection (max)", max(fresh) * ms, "ms")
    report.add("cycle time, same connection (median)", statistics.median(warm) * ms, "ms",
               ("<", CYCLE_GOAL_MS))
    report.add("cycle time, same connection (max)", max(warm) * ms, "ms")
    report.add("connect + STARTTLS + login (median)", statistics.median(logins) * ms, "ms")
    # Dovecot does part of its work on a read-write mailbox when it is closed (LOGOUT, or the
    # next SELECT): the whole poll --once shows it where the fresh cycle alone does not.
    report.add("poll --once: login + cycle + logout (median)", statistics.median(whole) * ms,
               "ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.nonews", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--cycles", type=int, default=30)
    parser.add_argument("--prime", choices=("auto", "poll", "position"), default="auto",
                        help="auto: a real first poll up to 20,000 messages, else position")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    run(args.messages, args.cycles, args.prime, None if args.no_write else args.results_dir,
        f"nonews-{args.messages}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
