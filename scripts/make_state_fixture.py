"""Make tests/data/state-v3.sqlite: a state file written by mailhelper as it was at a given
commit (default: main), with live threads in it, for the migration test
(tests/test_migrations.py) to upgrade.

It exports that commit's ``mailhelper`` and ``templates`` into a temporary folder, starts the
test rig (Dovecot and the SMTP sink, from this checkout's tests/rig) and drives that code with
``mailhelper poll --once --now ...`` as separate processes through a short story:

- Mon 7 Dec 09:00: the owner asks Jane for an intro (stays open: follow-ups pending), asks
  Bob to review a draft, and offers Carol help with her move (``[offer]``); the 09:30 poll
  sends three receipts;
- Tue 8 Dec 09:30: the offer's first reminder goes out;
- Tue 8 Dec 10:00: Bob answers (reply-all); the 10:15 poll marks the ask answered, and its
  thank-you draft falls due at 12:15, so it is pending in the file.

The file is copied with SQLite's backup API (a consistent copy while nothing runs) and set to
``journal_mode=DELETE`` so it is one self-contained file; its rows are as that code wrote them.
Beside it, ``state-v3.sqlite.txt`` names the commit and the command.

Run from the repository root, with Dovecot installed::

    .venv/bin/python scripts/make_state_fixture.py [--rev main] [--out tests/data/state-v3.sqlite]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.rig import SelfSignedCert  # noqa: E402
from tests.rig.assistant import OWNER, OWNER_NAME, RigAssistant  # noqa: E402
from tests.rig.dovecot import DovecotServer  # noqa: E402
from tests.rig.mailboxes import make_message  # noqa: E402
from tests.rig.smtpsink import SmtpSink  # noqa: E402


def export(rev: str, into: Path) -> str:
    """``rev``'s mailhelper package, with its templates as ``mailhelper/templates`` (as the
    wheel installs them), in ``into``; returns the full commit hash."""
    commit = subprocess.run(["git", "rev-parse", rev], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout.strip()
    archive = subprocess.run(["git", "archive", commit, "mailhelper", "templates"], cwd=REPO,
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    (into / "templates").rename(into / "mailhelper" / "templates")
    return commit


def poll(code: Path, assistant: RigAssistant, now: str) -> None:
    """``mailhelper poll --once --now NOW`` run by the exported code (its folder is the
    working folder, so ``python -m`` finds that mailhelper first)."""
    done = subprocess.run(
        [sys.executable, "-m", "mailhelper.cli", "poll", "--once", "--now", now,
         "--config", str(assistant.config_path)],
        cwd=code, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(code)},
    )
    if done.returncode != 0:
        raise SystemExit(f"poll --now {now} exited {done.returncode}:\n{done.stdout}"
                         f"{done.stderr}")


def story(code: Path, assistant: RigAssistant) -> None:
    jane = assistant.ask(subject="Intro to Acme?",
                         body="Hi Jane, could you introduce me to someone at Acme?")
    bob = assistant.ask(to="Bob Lee <bob@example.net>", subject="Review my draft?",
                        body="Hi Bob, would you have time to review my draft this week?")
    assistant.deliver(make_message(
        f"{OWNER_NAME} <{OWNER}>", "Carol King <carol@example.org>", "[offer] Help with the move",
        "Hi Carol, I'd be glad to help with your move, just tell me what would help.",
        cc=assistant.address, date="Mon, 07 Dec 2026 09:00:00 +0000"))
    poll(code, assistant, "2026-12-07T09:30:00+00:00")
    poll(code, assistant, "2026-12-08T09:30:00+00:00")
    assistant.deliver(make_message(
        "Bob Lee <bob@example.net>", f"{OWNER_NAME} <{OWNER}>", "Re: Review my draft?",
        "Sure, send it over, I'll read it tonight.", cc=assistant.address,
        date="Tue, 08 Dec 2026 10:00:00 +0000", in_reply_to=bob, references=bob))
    poll(code, assistant, "2026-12-08T10:15:00+00:00")
    del jane


def copy_state(source: Path, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    with contextlib.closing(sqlite3.connect(source)) as src, \
            contextlib.closing(sqlite3.connect(out)) as dst:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default="main", help="the commit whose code writes the file")
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "data" / "state-v3.sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mailhelper-fixture-") as tmp:
        work = Path(tmp)
        code = work / "code"
        code.mkdir()
        commit = export(args.rev, code)
        cert = SelfSignedCert.create(work / "tls")
        server = DovecotServer(cert=cert)
        sink = SmtpSink(work / "sink", cert=cert)
        try:
            server.start()
            sink.start()
            account = server.account(server.add_user("helper-1@example.com"))
            (work / "assistant").mkdir()
            assistant = RigAssistant(server, account, sink, work / "assistant")
            poll(code, assistant, "2026-12-07T08:00:00+00:00")  # the first start
            story(code, assistant)
            copy_state(assistant.state, args.out)
            sent = len(sink.messages())
        finally:
            sink.stop()
            server.close()
    note = (f"{args.out.name}: written by mailhelper at commit {commit} ({sent} mails sent in "
            "the story);\nregenerate with: .venv/bin/python scripts/make_state_fixture.py "
            f"--rev {commit[:12]}\n")
    args.out.with_name(args.out.name + ".txt").write_text(note)
    print(note, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
