"""A stranger's mail cannot stall the cycle, against the real rig (Dovecot, the SMTP sink and
``poll --once`` in its own process, so a reading that never ends is a subprocess timeout).

Before the HTML converter was made linear, a 1 MB HTML-only mail of unclosed tags without a
Message-ID kept ``poll`` reading for hours: nothing after it was read or sent, and after a
restart the same message was read again.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.rig.assistant import OWNER, RigAssistant
from tests.test_abuse import DATE, JANE, T0, assert_consistent, headers_of

#: A poll with a 1 MB bomb and one ask: seconds on the fixed code, hours on the old one.
POLL_TIMEOUT = 60


def _stranger_html(rig: RigAssistant, html: bytes, extra: bytes = b"") -> bytes:
    """A stranger's HTML-only mail to the assistant, without a Message-ID (so the header
    check cannot skip it: only a full reading can tell what it is)."""
    return (
        b"From: Eve <eve@evil.test>\r\n" + f"To: {rig.address}\r\nDate: {DATE}\r\n".encode()
        + b"Subject: hello\r\n" + extra + b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n" + html
    )


def _ask(rig: RigAssistant) -> bytes:
    return (
        f"From: Sam Rivera <{OWNER}>\r\nTo: {JANE}\r\nCc: {rig.address}\r\n".encode()
        + f"Subject: Intro to Acme?\r\nDate: {DATE}\r\n".encode()
        + b"Message-ID: <ask-bomb@example.com>\r\n\r\nHi Jane, an intro?\r\n"
    )


def _poll(rig: RigAssistant, **env: str) -> subprocess.CompletedProcess[str]:
    try:
        return rig.poll_process(T0, env=env, timeout=POLL_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"poll --once still reading after {POLL_TIMEOUT} s")


def test_a_megabyte_html_bomb_ahead_of_an_ask_does_not_stall_the_cycle(
    rig_assistant: RigAssistant,
) -> None:
    rig_assistant.deliver(_stranger_html(rig_assistant, b"<a " * 350_000))
    rig_assistant.deliver(_ask(rig_assistant))
    done = _poll(rig_assistant)
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "<ask-bomb@example.com> new ask to jane@example.org" in output
    [receipt] = rig_assistant.sent()
    assert receipt["X-Mailhelper-Action"] == "receipt"
    assert receipt["To"].addresses[0].addr_spec == OWNER
    # The bomb was read (a stranger's mail: ignored) and is not read again.
    assert "@mailhelper.invalid> ignored" in output
    again = _poll(rig_assistant)
    assert again.returncode == 0 and "mailhelper.invalid" not in again.stdout + again.stderr
    assert len(rig_assistant.sent()) == 1
    assert_consistent(rig_assistant, delivered=2)


#: The slowest reading the caps allow, about 2 s of CPU: 400,000 characters of address fields
#: that the stdlib parser reads at its slowest, then 1.5 MB of nested quotes.
SLOW_HEADERS = b"".join(b"%s: %s\r\n" % (name, b"@" * 100_000)
                        for name in (b"Cc", b"Bcc", b"Reply-To", b"Sender"))
SLOW_HTML = b"<blockquote><br>" * 95_000


def test_a_message_over_the_time_budget_is_filed_and_never_read_again(
    rig_assistant: RigAssistant,
) -> None:
    # Half a second: the bomb takes about a second of CPU on this machine (every stage is
    # capped, and reading got faster), an ask a few milliseconds.
    rig_assistant.configure({"limits": {"message_seconds": 0.5}})
    rig_assistant.deliver(_stranger_html(rig_assistant, SLOW_HTML, SLOW_HEADERS))
    rig_assistant.deliver(_ask(rig_assistant))
    # Killed right after the bomb's outcome is committed, before it is moved: the restart
    # fetches it again, and must know it by its content key without reading it.
    killed = rig_assistant.poll_process(T0, env={"MAILHELPER_CRASH_AT": "after_commit"},
                                        timeout=POLL_TIMEOUT)
    assert killed.returncode == -9, killed.stderr
    assert "took longer than 0.5 s to read" in killed.stderr
    done = _poll(rig_assistant)
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "not read again" not in output, "read a second time"
    assert "@mailhelper.invalid> error: took longer than 0.5 s to read" in output
    assert "<ask-bomb@example.com> new ask to jane@example.org" in output
    [(_flags, header)] = headers_of(rig_assistant, "mailhelper/errors")
    assert b"From: Eve <eve@evil.test>" in header
    actions = sorted(m["X-Mailhelper-Action"] for m in rig_assistant.sent())
    assert "receipt" in actions
    assert_consistent(rig_assistant, delivered=2)
