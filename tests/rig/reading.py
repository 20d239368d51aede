"""The whole reading of mail (content key, header check, parse, classify: what
:meth:`mailhelper.engine.daemon.Assistant.handle` does before its transaction), or the HTML
converter alone, measured in a child process: CPU seconds per message (``time.process_time``) and
the child's peak RSS.

A child, not the test process, so that the peak RSS is the reading's and not pytest's, and so
that a reading that never ends is stopped by a timeout instead of hanging the suite::

    results = read_in_child([("a bomb", path)], timeout=60)
    assert results["a bomb"].cpu < 2 and results["a bomb"].peak_mb < 200

The child prints one JSON line per file *before* it reads the next, so a timeout still tells
which file it was stuck on.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Reading:
    """How one file was read: CPU seconds, and the child's peak RSS (MB) once it was read."""

    cpu: float
    peak_mb: float


def read_in_child(
    cases: list[tuple[str, Path]], timeout: float, what: str = "mail"
) -> dict[str, Reading]:
    """Read each ``(name, path)`` in one child process (``what``: ``mail`` for parse_mail +
    classify, ``html`` for html_to_text on the file's text); fails the calling test, naming
    the case, when the child dies or is still reading after ``timeout`` seconds."""
    request = json.dumps([[name, str(path)] for name, path in cases])
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tests.rig.reading", what], input=request, text=True,
            capture_output=True, timeout=timeout, cwd=REPO_ROOT, check=False,
        )
        output, error = done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        started = [record["reading"] for record in records if "reading" in record]
        stuck = started[-1] if started else cases[0][0]
        raise AssertionError(f"still reading {stuck!r} after {timeout:.0f} s") from None
    results: dict[str, Reading] = {}
    for line in output.splitlines():
        record = json.loads(line)
        if "cpu" in record:
            results[record["name"]] = Reading(record["cpu"], record["peak_mb"])
    missing = [name for name, _ in cases if name not in results]
    assert not missing, f"the child died reading {missing[0]!r}: {error[-2000:]}"
    return results


def _peak_mb() -> float:
    """The peak RSS of this process so far, in MB. Linux's VmHWM, because ``ru_maxrss``
    keeps the parent's peak across fork and exec (a pytest of 300 MB would count)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def _reader(what: str) -> Callable[[bytes], object]:
    from mailhelper.decide.classify import Context, classify
    from mailhelper.decide.prefilter import ignorable
    from mailhelper.mail.mailbox import content_key
    from mailhelper.model.settings import Settings
    from mailhelper.model.values import Address
    from mailhelper.read.htmltext import html_to_text
    from mailhelper.read.parse import UnparseableMail, parse_mail
    from mailhelper.state.store import Store

    if what == "html":
        return lambda raw: html_to_text(raw.decode("utf-8", "replace"))
    settings = Settings(owners=(Address("sam@example.com", "Sam"),),
                        assistant=Address("helper@example.com", "Sam's assistant"),
                        timezone=ZoneInfo("UTC"))
    store = Store.open(Path(":memory:"), "example.com")
    now = datetime(2026, 12, 1, 9, 0, tzinfo=ZoneInfo("UTC"))

    def read(raw: bytes) -> object:
        # What Assistant.handle reads before its transaction, in the same order.
        content_key(raw)
        quick = ignorable(raw, settings, store)
        if quick is not None:
            return quick
        try:
            return classify(parse_mail(raw), Context(settings, store, now))
        except UnparseableMail:
            return None

    return read


def main() -> None:
    read = _reader(sys.argv[1])
    for name, path in json.loads(sys.stdin.read()):
        print(json.dumps({"reading": name}), flush=True)
        raw = Path(path).read_bytes()
        began = time.process_time()
        read(raw)
        cpu = time.process_time() - began
        del raw
        print(json.dumps({"name": name, "cpu": round(cpu, 3), "peak_mb": round(_peak_mb(), 1)}),
              flush=True)


if __name__ == "__main__":
    main()
