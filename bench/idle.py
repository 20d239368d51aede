"""IDLE latency: from the APPEND of an owner's ask to its effects committed in the state.

    .venv/bin/python -m bench.idle --samples 20

Starts ``mailhelper run`` (the real daemon, as its own process) on a rig Dovecot, waits until
it IDLEs, then, for each sample: APPENDs a new ask cc'd to the assistant over a connection that
is already logged in, and polls the state file (SQLite, read-only, every 2 ms) until the ask is
recorded as processed (its thread and scheduled actions commit in that same transaction), then
waits for its receipt to reach the SMTP sink. Samples are spaced by 0.3-1.0 s at random so
they do not lock step with Dovecot's notification batching. Dovecot reports new mail to an
IDLE client about 0.5 s after it lands (it batches notifications), so that is the floor.

Goal (issue 7): median APPEND-to-committed < 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from email.utils import format_datetime
from functools import partial
from pathlib import Path

from bench.mailgen import FIRST_DATE
from bench.results import RESULTS_DIR, Report
from bench.servers import BenchServers
from tests.rig.mailboxes import connect
from tests.rig.smtpsink import SmtpSink

GOAL_S = 1.0
REPO = Path(__file__).resolve().parents[1]


def _ask(n: int, assistant: str) -> tuple[str, bytes]:
    message_id = f"idle-{n}-{os.getpid()}@owner.example"
    date = format_datetime(FIRST_DATE + timedelta(minutes=n))
    raw = (f"From: Sam Rivera <sam@example.com>\r\nTo: Jane Doe <jane{n}@example.org>\r\n"
           f"Cc: {assistant}\r\nSubject: Intro to Acme, take {n}?\r\nDate: {date}\r\n"
           f"Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n\r\n"
           "Hi Jane,\r\n\r\nCould you introduce me to someone at Acme?\r\n\r\nSam\r\n")
    return message_id, raw.encode()


def _first_cycle_done(state: Path) -> bool:
    """The daemon has read INBOX once (its cursor holds a position): it IDLEs next."""
    if not state.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT value FROM cursors WHERE folder='INBOX'").fetchone()
            return row is not None and not str(row[0]).startswith("-")
    except sqlite3.Error:
        return False


def _processed(db: sqlite3.Connection, message_id: str) -> bool:
    row = db.execute("SELECT 1 FROM processed WHERE message_id=?", (message_id,)).fetchone()
    return row is not None


def _more_mail(sink: SmtpSink, count: int) -> bool:
    return len(sink.raw()) > count


def _wait(predicate: Callable[[], object], timeout: float, what: str) -> float:
    """Poll ``predicate()`` every 2 ms; return the perf_counter time it first held."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if predicate():
            return time.perf_counter()
        time.sleep(0.002)
    raise TimeoutError(f"{what} did not happen within {timeout} s")


def run(samples: int, results_dir: Path | None = RESULTS_DIR, stem: str | None = None) -> Report:
    report = Report("idle", {"samples": samples})
    rng = random.Random(5)
    with BenchServers() as servers:
        rig = servers.assistant({"confirm": True, "poll_interval": "1h"})
        log_path = Path(rig.workdir) / "daemon.log"
        with log_path.open("wb") as log:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "mailhelper.cli", "run", "--config", str(rig.config_path)],
                cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait(lambda: _first_cycle_done(Path(rig.state)), 30, "the daemon's first cycle")
            committed, received = _samples(servers, rig, samples, rng)
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(15)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        tail = log_path.read_text(errors="replace").strip().splitlines()
    report.add("samples", len(committed))
    report.add("APPEND -> committed (median)", statistics.median(committed), "s", ("<", GOAL_S))
    report.add("APPEND -> committed (min)", min(committed), "s")
    report.add("APPEND -> committed (max)", max(committed), "s")
    report.add("APPEND -> receipt at the SMTP sink (median)", statistics.median(received), "s")
    report.add("daemon exit code after SIGTERM", daemon.returncode)
    report.notes.append(f"daemon log, last line: {tail[-1] if tail else '(empty)'}")
    report.finish(results_dir, stem)
    return report


def _samples(servers: BenchServers, rig: object, samples: int,
             rng: random.Random) -> tuple[list[float], list[float]]:
    from tests.rig.assistant import RigAssistant

    assert isinstance(rig, RigAssistant)
    committed: list[float] = []
    received: list[float] = []
    time.sleep(0.5)  # let the first cycle finish and the IDLE begin
    with contextlib.closing(sqlite3.connect(f"file:{rig.state}?mode=ro", uri=True)) as db, \
            connect(servers.dovecot, rig.account) as client:
        for n in range(samples + 1):
            message_id, raw = _ask(n, rig.address)
            before = len(rig.sink.raw())
            began = time.perf_counter()
            client.append("INBOX", raw)
            done = _wait(partial(_processed, db, message_id), 30, f"ask {n} committed")
            sent = _wait(partial(_more_mail, rig.sink, before), 30, f"receipt {n} sent")
            if n:  # the first sample only warms up the daemon's connection
                committed.append(done - began)
                received.append(sent - began)
            time.sleep(rng.uniform(0.3, 1.0))
    return committed, received


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.idle", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    run(args.samples, None if args.no_write else args.results_dir, "idle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
