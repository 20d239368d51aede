"""`mailhelper demo` plays its whole story through the embedded servers."""

from __future__ import annotations

import imaplib
import io
import logging
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

pytest.importorskip("pymap", reason="the demo needs the demo extra (pymap, aiosmtpd)")

from mailhelper.cli.demo import program_words, run_demo


def sections(text: str) -> dict[str, str]:
    """The demo's output by heading ("Tue 8 Dec, 11:35 — ..." -> what is printed under it)."""
    parts = re.split(r"^== (.*)$", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def sent_subjects(block: str) -> list[str]:
    return re.findall(r"^       Subject: (.*)$", block, re.MULTILINE)


@dataclass(frozen=True)
class Played:
    text: str
    seconds: float
    logger_level_kept: bool


@pytest.fixture(scope="module")
def played() -> Played:
    """One run of the whole demo, shared by the tests that read its output."""
    out = io.StringIO()
    level = logging.getLogger("mailhelper").level
    started = time.monotonic()
    assert run_demo(out=out) == 0
    elapsed = time.monotonic() - started
    return Played(out.getvalue(), elapsed, logging.getLogger("mailhelper").level == level)


def test_demo_tells_the_whole_story_in_under_15_seconds(played: Played) -> None:
    assert played.logger_level_kept, "the demo leaves logging as it was"
    text = played.text
    elapsed = played.seconds
    subjects = sent_subjects(text)
    # The receipts for the ask (to Jane and Carlos) and the offer, the offer reminder, the
    # drafts, the thank-you to Jane in her thread, the reminder about Carlos and the digest:
    # eight mails; commands that worked are not confirmed (confirm_commands: false).
    assert len(subjects) <= 8, subjects
    assert "The assistant sent 8 mails" in text
    assert any(s.startswith("Tracking your ask to Jane Okafor and Carlos Mendes")
               for s in subjects)
    assert any(s.startswith("Tracking Bob Lindqvist's offer") for s in subjects)
    assert any(s.startswith("Tell Bob what would help") for s in subjects)
    assert any(s.startswith("Follow up with Carlos") for s in subjects)
    assert any(s.startswith("Say thanks to Jane") for s in subjects)
    assert "Re: Intro to someone at Acme?" in subjects
    assert any(s.startswith("Your digest") for s in subjects)
    assert len(subjects) == len(set(subjects)), "a mail was sent twice"
    # The thank-you went to Jane, From the assistant, with Sam in Cc.
    thanks = text.split("\n       Subject: Re: Intro to someone at Acme?")[0].rsplit("--> From:",
                                                                                   1)[1]
    assert "To: Jane Okafor <jane@example.net>" in thanks
    assert "Cc: Sam Rivera <sam@example.org>" in thanks
    assert "== mailhelper status" in text and "== the help ledger" in text
    assert re.search(r"1\s+ask\s+open\s+jane@example.net, carlos@", text)
    assert "{{" not in text and "{%" not in text
    assert elapsed < 15, f"the demo took {elapsed:.1f} s"


def test_each_mail_shows_up_under_the_heading_that_announces_it(played: Played) -> None:
    story = sections(played.text)
    headings = list(story)
    # One time style everywhere: "Tue 8 Dec, 11:35", no zero-padded days.
    assert all(re.match(r"[A-Z][a-z]{2} [1-9]\d? [A-Z][a-z]{2}, \d\d:\d\d — ", h)
               for h in headings[:-2]), headings
    decline, = (h for h in headings if "offer reminder is due" in h)
    assert "Tue 8 Dec, 09:30" in decline
    answer = story[decline]
    assert 'Sam answers the assistant\'s mail with "decline"' in answer
    # A command that worked is not confirmed: the thank-you draft it made due shows it.
    reply = answer.split('with "decline"', 1)[1]
    assert "(the assistant sent nothing)" in reply
    assert "Bob Lindqvist offered to help on Sun 6 Dec (2 days ago)." in answer, "the original"

    bob, = (h for h in headings if "thank-you draft for Bob" in h)
    assert bob.startswith("Tue 8 Dec, 11:35")
    assert sent_subjects(story[bob]) == ["Thank Bob for the offer anyway: “Happy to help with "
                                         "the move”"]
    jane_replies, = (h for h in headings if "Jane replies to all" in h)
    assert "<-- Jane replies to all" in story[jane_replies]
    assert "| Subject: Re: Intro to someone at Acme?" in story[jane_replies]
    assert "| Sam, happy to." in story[jane_replies]
    assert sent_subjects(story[jane_replies]) == []  # a reply sends nothing by itself
    jane, = (h for h in headings if "thank-you draft for Jane" in h)
    assert sent_subjects(story[jane])[0] == "Say thanks to Jane: “Intro to someone at Acme?”"

    carlos, = (h for h in headings if "Carlos has not answered" in h)
    assert sent_subjects(story[carlos]) == ["Follow up with Carlos? “Intro to someone at Acme?”"]
    assert "Jane has answered; Carlos hasn't yet." in story[carlos]

    table = story["mailhelper status"]
    assert "reminder Mon 14 Dec, 09:00" in table
    assert "follow_up" not in table and "return_favor" not in table
    # Jane's thank-you was sent (with "send"), Bob's only drafted: the ledger tells them apart.
    assert "thank-yous: 1 sent, 1 drafted; 0 favours returned" in table
    ledger = story["the help ledger"]
    # Counts as numbers alike; no "thank-yous: none yet" for Carlos, who never answered.
    assert re.search(r"Bob Lindqvist <bob@example.net>\s+0 asks; 1 offer; thank-yous: "
                     r"1 drafted; 0 favours returned", ledger)
    assert re.search(r"Carlos Mendes <carlos@example.com>\s+1 ask, 0 answered; 0 offers; "
                     r"0 favours returned\n", ledger)
    assert "none yet" not in ledger and "no asks" not in ledger
    # The mails are cut after their first lines: the closing words say so.
    assert "its first lines (the digest whole), and each is whole in its Sent folder" in \
        played.text
    assert "every one is above" not in played.text
    for wrong in ("1 offers", " h)", "(s)", "0 of 0", "''", "Mon 07"):
        assert wrong not in played.text, wrong


def test_the_digest_is_shown_whole_with_its_chart(played: Played) -> None:
    """The last of the eight mails is the digest, printed whole: its numbered item, the text
    chart of asks made and answered, the figures and a closing line true to them (Carlos has
    not answered: the ask is answered only in part)."""
    story = sections(played.text)
    digest, = (h for h in story if "Monday's digest" in h)
    shown = story[digest]
    assert "1.  Carlos Mendes: “Intro to someone at Acme?”, your follow-up is drafted" in shown
    assert "send 1 · done 1 · snooze 1 3 days · cancel 1" in shown
    assert "Asks made and answered, last 8 weeks:" in shown and "7 Dec   ▇ 1/1" in shown
    assert "1 ask, 1 answered, by only some of those asked" in shown
    assert "- Carlos Mendes: 1 ask, 0 answered" in shown
    # (the closing line wraps, each printed line behind a "|")
    closing = " ".join(shown.replace("|", " ").split())
    assert "from some of those you asked" in closing and "Ask away" not in shown
    assert "Reply with one of these" not in shown, "the command list is cut at the signature"
    assert "open it from the Sent folder" in played.text, "where to see the HTML chart"


def run_printed(command: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """One command line the demo printed, run exactly as printed (no PATH needed)."""
    argv = [*shlex.split(command), *extra]
    # Under pytest there is no mailhelper script in argv[0]: this interpreter, -m.
    assert argv[:3] == [sys.executable, "-m", "mailhelper.cli"], argv
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_program_words_name_the_script_that_runs_by_its_full_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    script = tmp_path / "bin" / "mailhelper"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    monkeypatch.setattr(sys, "argv", [str(script), "demo", "--keep"])
    assert program_words() == str(script.resolve())
    monkeypatch.setattr(sys, "argv", ["/somewhere/pytest"])
    assert program_words() == f"{sys.executable} -m mailhelper.cli"


def test_demo_keep_with_no_input_serves_until_sigterm() -> None:
    """``mailhelper demo --keep </dev/null``: end of input does not stop the servers (before:
    it said "Press Enter" and exited at once); SIGTERM does."""
    demo = subprocess.Popen([sys.executable, "-m", "mailhelper.cli", "demo", "--keep"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert demo.stdout is not None
        seen = ""
        for line in demo.stdout:
            seen += line
            if line.startswith("Press Enter"):
                break
        assert "until Ctrl-C or SIGTERM" in seen
        with pytest.raises(subprocess.TimeoutExpired):
            demo.wait(timeout=1)  # still serving after end of input
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=20) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()


def test_demo_keep_prints_commands_that_work_while_the_servers_are_up() -> None:
    out = io.StringIO()
    results: dict[str, subprocess.CompletedProcess[str]] = {}

    def while_up() -> None:
        text = out.getvalue()
        commands = re.findall(r"^  (\S.* (?:status|poll) .*--config .*)$", text, re.MULTILINE)
        status, = (c for c in commands if " status --config " in c)
        dry, = (c for c in commands if "--dry-run" in c)
        # The story's last moment, so a poll by hand keeps the story's schedule.
        poll, = (c for c in commands
                 if " poll --once --now 2026-12-14T08:00:00+00:00 --config " in c)
        # A mail client, logged in as the demo says, files a new ask in the inbox.
        found = re.search(r"IMAP (\S+) port (\d+), no TLS, user (\S+), password (\S+)$", text,
                          re.MULTILINE)
        assert found is not None
        host, port, user, password = found.groups()
        ask = EmailMessage()
        ask["From"] = "Sam Rivera <sam@example.org>"
        ask["To"] = "Dana Ito <dana@example.net>"
        ask["Cc"] = "helper@example.org"
        ask["Subject"] = "Lunch next week?"
        ask["Date"] = "Mon, 21 Dec 2026 07:30:00 +0000"
        ask["Message-ID"] = "<lunch-1@example.org>"
        ask.set_content("Dana, lunch next week?\n\nSam")
        client = imaplib.IMAP4(host, int(port), timeout=10)
        try:
            client.login(user, password)
            client.append("INBOX", None, None, bytes(ask))
        finally:
            client.logout()
        results["status"] = run_printed(status)
        results["dry"] = run_printed(dry)
        # The story's clock, not this machine's: the test must not depend on today's date.
        results["poll"] = run_printed(poll, "--now", "2026-12-21T07:45:00+00:00")
        results["status after"] = run_printed(status)

    assert run_demo(keep=True, out=out, wait=while_up) == 0
    text = out.getvalue()
    assert re.search(r"IMAP 127\.0\.0\.1 port \d+, no TLS, user helper@example\.org", text)
    assert "Press Enter to stop them (with no terminal to read, they run until Ctrl-C or " \
        "SIGTERM)." in text
    assert "(mailhelper status reads it)" not in text

    status = results["status"]
    assert status.returncode == 0, status.stderr
    assert re.search(r"1\s+ask\s+open\s+jane@example.net", status.stdout)
    assert "thank-yous: 1 sent, 1 drafted" in status.stdout

    dry = results["dry"]
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert not any(line.startswith("<") for line in lines), lines
    assert "new ask to dana@example.net: 'Lunch next week?'  (Message-ID <lunch-1@example.org>)" \
        in lines
    assert "would send receipt to Sam Rivera <sam@example.org>: Tracking your ask to Dana Ito: " \
        "“Lunch next week?”" in lines
    assert any(line.startswith("would send follow_up to Sam Rivera <sam@example.org>: Still no "
                               "reply from Carlos") for line in lines), lines
    # Each line of the plan once: not repeated by the log on stderr.
    assert "lunch-1@example.org" not in dry.stderr and "would send" not in dry.stderr

    assert results["poll"].returncode == 0, results["poll"].stderr
    after = results["status after"]
    assert after.returncode == 0 and "Lunch next week?" in after.stdout
