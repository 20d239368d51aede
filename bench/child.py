"""The process a benchmark measures, run as ``python -m bench.child poll|raw ...``.

A separate process, so its peak RSS is its own (the parent reads it with ``os.wait4``). It
prints one JSON line with its own timings; the parent adds the process's wall time and RSS.

- ``poll --config PATH --now ISO``: mailhelper's first poll through its real code path:
  the settings loaded and the log set up as the CLI does them (INFO, a line a message, to
  standard error, which the parent sends to a file), then ``Assistant.poll_once(now)``
  (connect, log in, read the whole backlog, update threads, send what is due, log out).
- ``raw --config PATH [--batch 500]``: the floor to compare with: imapclient connects and logs
  in the same way (mailhelper's own ``open_imap``), SELECTs INBOX read-only, and ``UID FETCH``es
  ``BODY.PEEK[]`` of every message in batches, keeping nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any


def _vm_hwm_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _settings(config: str) -> Any:
    from mailhelper.cli.config import load_settings

    return load_settings(Path(config), os.environ)


def run_poll(config: str, now: str) -> dict[str, Any]:
    from mailhelper.cli.main import build_parser, parse_args, setup_logging
    from mailhelper.compose.render import Renderer
    from mailhelper.engine.daemon import Assistant
    from mailhelper.mail.connect import open_imap, open_smtp
    from mailhelper.state.store import Store

    # Logged as ``mailhelper poll --once`` logs (a line a message, at INFO, to standard
    # error, which measure() sends to a file): the lines are part of what a poll costs.
    setup_logging(parse_args(build_parser(), ["poll", "--once", "--config", config]))
    settings = _settings(config)
    store = Store.open(settings.state, settings.assistant.email.rpartition("@")[2])
    assistant = Assistant(settings, store, Renderer(settings), lambda: open_imap(settings.imap),
                          lambda: open_smtp(settings.smtp))
    began, cpu = time.perf_counter(), time.process_time()
    children = _children_cpu()
    report = assistant.poll_once(datetime.fromisoformat(now))
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    store.close()
    # The reading worker (mailhelper/engine/pipeline.py) is this process's child: its CPU
    # time is the kernel's account of it, once it has ended (it ends with the read).
    return {"seconds": seconds, "cpu_seconds": cpu,
            "worker_cpu_seconds": _children_cpu() - children,
            "worker_max_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
            "read": report.read,
            "duplicates": report.duplicates,
            "errors": report.errors, "sent": len(report.sent.sent),
            "held": len(report.sent.held), "vm_hwm_kb": _vm_hwm_kb()}


def run_raw(config: str, batch: int, shipped_trace: bool = False) -> dict[str, Any]:
    """``shipped_trace``: imaplib's protocol trace as IMAPClient sets it on every connection
    (level 5, each line formatted before its logger drops it), the baseline issue 15's goals
    and first figures were measured against; without it, the trace as mailhelper leaves it
    (off unless logged: :func:`mailhelper.mail.connect.trace_protocol_only_when_logged`)."""
    from mailhelper.mail.connect import open_imap

    settings = _settings(config)
    began, cpu = time.perf_counter(), time.process_time()
    client = open_imap(settings.imap)
    if shipped_trace:
        client._imap.debug = 5
    client.select_folder(settings.imap.folder, readonly=True)
    uids = client.search(["ALL"])
    fetched = total = 0
    for start in range(0, len(uids), batch):
        response = client.fetch(uids[start : start + batch], [b"BODY.PEEK[]"])
        for data in response.values():
            fetched += 1
            total += len(data[b"BODY[]"])
    client.logout()
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    return {"seconds": seconds, "cpu_seconds": cpu, "fetched": fetched, "bytes": total,
            "vm_hwm_kb": _vm_hwm_kb()}


@dataclass(frozen=True)
class ChildRun:
    """A finished child: its own JSON report, its wall time and its peak RSS (from wait4)."""

    report: dict[str, Any]
    wall_seconds: float
    max_rss_kb: int


def measure(*args: str, timeout: float = 7200) -> ChildRun:
    """Run ``python -m bench.child ARGS`` and return what it reported and what it used."""
    repo = Path(__file__).resolve().parents[1]
    began = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([sys.executable, "-m", "bench.child", *args], cwd=repo,
                                   stdout=subprocess.PIPE, stderr=log)
        try:
            out, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        log.seek(max(0, log.seek(0, os.SEEK_END) - 3000))
        err = log.read()
    # communicate() already reaped the child; its rusage is in RUSAGE_CHILDREN only in sum,
    # so the child reports its own VmHWM (the same figure as ru_maxrss, from the kernel).
    wall = time.perf_counter() - began
    if process.returncode != 0:
        raise RuntimeError(f"bench.child {' '.join(args)} exited {process.returncode}:\n"
                           f"{err.decode(errors='replace')}")
    report = json.loads(out.decode().strip().splitlines()[-1])
    return ChildRun(report, wall, int(report["vm_hwm_kb"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.child")
    verbs = parser.add_subparsers(dest="verb", required=True)
    poll = verbs.add_parser("poll")
    poll.add_argument("--config", required=True)
    poll.add_argument("--now", required=True)
    raw = verbs.add_parser("raw")
    raw.add_argument("--config", required=True)
    raw.add_argument("--batch", type=int, default=500)
    raw.add_argument("--shipped-trace", action="store_true",
                     help="imaplib's trace level as IMAPClient sets it (see run_raw)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.verb == "poll":
        result = run_poll(args.config, args.now)
    else:
        result = run_raw(args.config, args.batch, args.shipped_trace)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
