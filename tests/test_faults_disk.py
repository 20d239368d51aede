"""A full disk under the state file stops the assistant cleanly: nothing corrupt, nothing
sent twice, and everything done once there is room again (SPEC safety rules 3 and 4)."""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.rig.assistant import OWNER, REPO, RigAssistant
from tests.rig.mailboxes import make_message

NOW = "2026-12-07T09:00:00+00:00"


def _poll_with_file_limit(assistant: RigAssistant, now: str, limit: int) -> (
        subprocess.CompletedProcess[str]):
    """``poll --once`` in a process that cannot grow any file past ``limit`` bytes, as on a
    full disk (writes fail with EFBIG; Python ignores SIGXFSZ)."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "mailhelper.cli", "poll", "--once", "--now", now,
         "--config", str(assistant.config_path)],
        capture_output=True, text=True, timeout=120, cwd=REPO, env=dict(os.environ),
        preexec_fn=cap,
    )


def _largest_state_file(state: Path) -> int:
    sizes = [p.stat().st_size for p in state.parent.glob(state.name + "*") if p.is_file()]
    return max(sizes)


def test_a_full_disk_stops_the_cycle_and_the_next_poll_finishes_the_job(
        rig_assistant: RigAssistant) -> None:
    rig_assistant.ask(subject="First ask")
    rig_assistant.poll(NOW)
    assert len(rig_assistant.sent()) == 1

    for n in range(40):
        rig_assistant.deliver(make_message(
            f"Sam Rivera <{OWNER}>", f"Person {n} <person{n}@example.org>", f"Ask number {n}",
            "Could you help me with this? " + "Some detail. " * 200, cc=rig_assistant.address,
            date="Mon, 07 Dec 2026 09:30:00 +0000"))
    limit = _largest_state_file(rig_assistant.state) + 8 * 1024
    failed = _poll_with_file_limit(rig_assistant, "2026-12-07T10:00:00+00:00", limit)

    assert failed.returncode != 0, failed.stdout + failed.stderr
    assert "state file" in failed.stderr
    assert "Traceback" not in failed.stderr
    with sqlite3.connect(rig_assistant.state) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    sent_while_full = len(rig_assistant.sent())
    assert sent_while_full < 41, "the full disk did not stop the cycle"

    rig_assistant.poll("2026-12-07T10:05:00+00:00")
    rig_assistant.poll("2026-12-07T11:10:00+00:00")  # past the hourly cap (max_per_hour)
    receipts = Counter(str(m["Message-ID"]) for m in rig_assistant.sent())
    assert len(receipts) == 41, "every ask gets its receipt once there is room again"
    assert set(receipts.values()) == {1}, "nothing was sent twice"
    assert len(rig_assistant.status()) == 41
    with sqlite3.connect(rig_assistant.state) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
