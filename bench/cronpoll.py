"""A cron poll with nothing new, timed as a whole process: ``mailhelper poll --once``.

    .venv/bin/python -m bench.cronpoll --runs 15

Cron and systemd timers start ``mailhelper poll --once`` every minute; with nothing new, all
its cost is the process: interpreter start-up, imports, reading the config, opening the
state, one IMAP session, planning, exit. This bench loads a few messages (bench/mailgen.py)
into a rig Dovecot, primes the state with a real first poll, then starts ``mailhelper poll
--once --config ... --now ...`` (the console script, as cron starts it) ``--runs`` times and
times each from its start to its exit (wall clock, in this process). ``python -c pass`` is
timed the same way, beside it: the floor no Python program goes under. The digest is on (a
weekly rule, as a real config has it), so its planning is part of every cycle. The runs see
the bytecode cache an installed package has (the priming run writes it if need be).

Goal (issue 15): the median no-news ``poll --once`` <= 0.3 s wall.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from bench.mailgen import FIRST_DATE
from bench.nonews import DIGEST
from bench.results import RESULTS_DIR, Report
from bench.servers import BenchServers

WALL_GOAL_S = 0.3
#: The environment of the timed processes: as an installed mailhelper runs, with its modules'
#: bytecode cached (pip writes it at install time): PYTHONDONTWRITEBYTECODE, set in some
#: development and CI shells, would have every run compile all of mailhelper from source.
_INSTALLED = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _script() -> list[str]:
    """``mailhelper`` as installed beside this interpreter (what cron runs)."""
    script = Path(sys.executable).with_name("mailhelper")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from mailhelper.cli.main import main; "
            "sys.exit(main())"]


def _timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one run of ``command``. The CPU time
    is the kernel's account of the process: on a machine shared with other work it moves
    far less than the wall time does."""
    began = time.perf_counter()
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env=_INSTALLED)
    assert process.stderr is not None
    err = process.stderr.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - began
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}:\n"
                           f"{err.decode(errors='replace')[-3000:]}")
    return seconds, usage.ru_utime + usage.ru_stime


def run(runs: int = 15, messages: int = 100, results_dir: Path | None = RESULTS_DIR,
        stem: str | None = None) -> Report:
    report = Report("cronpoll", {"runs": runs, "messages": messages})
    now = (FIRST_DATE + timedelta(minutes=messages + 1)).isoformat()
    with BenchServers() as servers:
        rig = servers.assistant({"confirm": False, **DIGEST})
        servers.load_backlog(rig, messages)
        poll = [*_script(), "poll", "--once", "--config", str(rig.config_path), "--now", now,
                "--quiet"]
        primed, _ = _timed(poll)  # the first poll reads the backlog: not what is measured
        report.notes.append(f"primed by a first poll of {messages} messages in {primed:.2f} s")
        _timed(poll)  # warm: the page cache holds the interpreter and the libraries
        polls, floor = [], []
        for _ in range(runs):
            polls.append(_timed(poll))
            floor.append(_timed([sys.executable, "-c", "pass"]))
    walls = [wall for wall, _ in polls]
    report.add("poll --once, no news: median wall", statistics.median(walls), "s",
               ("<=", WALL_GOAL_S))
    report.add("poll --once, no news: fastest wall", min(walls), "s")
    report.add("poll --once, no news: slowest wall", max(walls), "s")
    report.add("poll --once, no news: median CPU (user + system)",
               statistics.median(cpu for _, cpu in polls), "s")
    report.add("python -c pass: median wall", statistics.median(w for w, _ in floor), "s")
    report.finish(results_dir, stem)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cronpoll", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--messages", type=int, default=100,
                        help="messages read by the priming poll")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    run(args.runs, args.messages, None if args.no_write else args.results_dir, "cronpoll")
    return 0


if __name__ == "__main__":
    sys.exit(main())
