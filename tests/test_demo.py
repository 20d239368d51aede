"""`mailhelper demo` plays its whole story through the embedded servers."""

from __future__ import annotations

import io
import re
import time

import pytest

pytest.importorskip("pymap", reason="the demo needs the demo extra (pymap, aiosmtpd)")

from mailhelper.demo import run_demo


def test_demo_tells_the_whole_story_in_under_15_seconds() -> None:
    out = io.StringIO()
    started = time.monotonic()
    assert run_demo(out=out) == 0
    elapsed = time.monotonic() - started
    text = out.getvalue()
    subjects = re.findall(r"^       Subject: (.*)$", text, re.MULTILINE)
    # Receipts for both asks and the offer, the offer reminder, the ask reminder, the drafts,
    # the thank-you to Jane in her thread, command confirmations and the digest.
    assert any(s.startswith("Tracking your ask to Jane") for s in subjects)
    assert any(s.startswith("Tracking Bob Lindqvist's offer") for s in subjects)
    assert any(s.startswith("Tell Bob what would help") for s in subjects)
    assert any(s.startswith("Follow up with Carlos") for s in subjects)
    assert any(s.startswith("Say thanks to Jane") for s in subjects)
    assert "Re: Intro to someone at Acme?" in subjects
    assert any(s.startswith("Your digest") for s in subjects)
    assert len(subjects) == len(set(subjects)), "a mail was sent twice"
    # The thank-you went to Jane, From the assistant, with Sam in Cc.
    thanks = text.split("Subject: Re: Intro to someone at Acme?")[0].rsplit("--> From:", 1)[1]
    assert "To: Jane Okafor <jane@example.net>" in thanks
    assert "Cc: Sam Rivera <sam@example.org>" in thanks
    assert "== mailhelper status" in text and "== the help ledger" in text
    assert re.search(r"1\s+ask\s+done\s+jane@example.net", text)
    assert "{{" not in text and "{%" not in text
    assert elapsed < 15, f"the demo took {elapsed:.1f} s"


def test_demo_keep_says_how_to_connect() -> None:
    out = io.StringIO()
    assert run_demo(keep=True, out=out, wait=lambda: None) == 0
    text = out.getvalue()
    assert re.search(r"IMAP 127\.0\.0\.1 port \d+, no TLS, user helper@example\.org", text)
    assert "Press Enter to stop them." in text
