"""A configured mailhelper pointed at the rig's Dovecot and SMTP sink, driven by its CLI.

:class:`RigAssistant` writes a real YAML config (so config loading is exercised too), delivers
mail into the assistant's INBOX by APPEND, runs ``mailhelper poll --once --now ...`` (in this
process through :func:`mailhelper.cli.main.main`, or as a subprocess where a test needs to kill it),
and reads back what was sent (the sink), what was filed (Sent, the error folder) and
``status --json``.

Example::

    def test_receipt(rig_assistant):
        rig_assistant.deliver(ask_mail)
        assert rig_assistant.poll("2026-12-07T09:00:00+00:00") == 0
        [receipt] = rig_assistant.sent()
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import io
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import yaml

from tests.rig import LOOPBACK
from tests.rig.mailboxes import append, make_message, read_folder
from tests.rig.smtpsink import SmtpSink

OWNER = "sam@example.com"
OWNER_NAME = "Sam Rivera"
REPO = Path(__file__).resolve().parents[2]


def merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``extra``, nested mappings merged key by key."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


class RigAssistant:
    """One assistant account on the rig, with its own config, state file and sink."""

    def __init__(self, dovecot: Any, account: Any, sink: SmtpSink, workdir: Path,
                 overrides: Mapping[str, Any] | None = None) -> None:
        self.dovecot = dovecot
        self.account = account
        self.sink = sink
        self.workdir = workdir
        self.address = account.username
        self.state = workdir / "state.db"
        self.config_path = workdir / "mailhelper.yaml"
        (workdir / "imap-password").write_text(account.password)
        (workdir / "imap-password").chmod(0o600)
        self.config: dict[str, Any] = {
            "timezone": "UTC",
            "owners": [{"name": OWNER_NAME, "email": OWNER}],
            "assistant": {"name": "Sam's assistant", "email": self.address},
            "imap": {
                "host": LOOPBACK, "port": account.port, "security": "starttls",
                "username": account.username, "password_file": "imap-password",
                "ca_file": str(account.ca_file), "timeout": "10 seconds",
            },
            "smtp": {
                "host": LOOPBACK, "port": sink.port, "security": "none", "timeout": "10 seconds",
            },
            "state": str(self.state),
            "sending": {"business_days": False, "quiet_hours": None,
                        "max_per_recipient_per_day": 10},
            "schedules": {"digest": {"rrule": None}},
        }
        self.configure(overrides or {})

    # -- config -----------------------------------------------------------------------------
    def configure(self, overrides: Mapping[str, Any]) -> None:
        """Merge ``overrides`` into the config and write it out."""
        self.config = merge(self.config, overrides)
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))

    # -- mail in ----------------------------------------------------------------------------
    def deliver(self, raw: bytes | EmailMessage, folder: str = "INBOX") -> None:
        """APPEND a message to the assistant's mailbox, as delivery would."""
        data = raw.as_bytes() if isinstance(raw, EmailMessage) else raw
        append(self.dovecot, self.account, data, folder=folder)

    def ask(self, to: str = "Jane Doe <jane@example.org>", subject: str = "Intro to Acme?",
            body: str = "Hi Jane, could you introduce me to someone at Acme?",
            date: str = "Mon, 07 Dec 2026 09:00:00 +0000", **headers: Any) -> str:
        """Deliver an owner's ask with the assistant in Cc; return its Message-ID."""
        raw = make_message(f"{OWNER_NAME} <{OWNER}>", to, subject, body, cc=self.address,
                           date=date, **headers)
        self.deliver(raw)
        return _message_id(raw)

    # -- running it -------------------------------------------------------------------------
    def cli(self, *args: str) -> tuple[int, str, str]:
        """Run ``mailhelper ARGS --config ...`` in this process: (exit code, stdout, stderr)."""
        out, err = io.StringIO(), io.StringIO()
        from mailhelper.cli.main import main

        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([*args, "--config", str(self.config_path)])
        return code, out.getvalue(), err.getvalue()

    def poll(self, now: str | datetime, *extra: str) -> int:
        """``mailhelper poll --once --now NOW``; fails the test on a non-zero exit."""
        stamp = now.isoformat() if isinstance(now, datetime) else now
        code, out, err = self.cli("poll", "--once", "--now", stamp, *extra)
        self.last_output = out + err
        assert code == 0, f"poll --now {stamp} exited {code}:\n{out}{err}"
        return code

    def poll_process(self, now: str, env: Mapping[str, str] | None = None,
                     timeout: float = 60, kill_after: float | None = None,
                     ) -> subprocess.CompletedProcess[str]:
        """The same as a separate process (for crash tests): returns the finished process.

        ``kill_after``: SIGKILL it after that many seconds if it is still running (its
        ``returncode`` is then ``-9``; a process that finished first is left alone)."""
        command = [sys.executable, "-m", "mailhelper.cli", "poll", "--once", "--now", now,
                   "--config", str(self.config_path)]
        if kill_after is None:
            return subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                env={**os.environ, **(env or {})},
            )
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=REPO, env={**os.environ, **(env or {})}) as process:
            try:
                out, err = process.communicate(timeout=kill_after)
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = process.communicate(timeout=timeout)
            return subprocess.CompletedProcess(command, process.returncode, out, err)

    def status(self) -> list[dict[str, Any]]:
        code, out, err = self.cli("status", "--json")
        assert code == 0, err
        threads: list[dict[str, Any]] = json.loads(out)["threads"]
        return threads

    # -- mail out ---------------------------------------------------------------------------
    def sent(self) -> list[EmailMessage]:
        """Every message the SMTP sink accepted, oldest first."""
        return self.sink.messages()

    def folder(self, name: str) -> list[EmailMessage]:
        """The messages in one of the assistant's folders, parsed."""
        return [_parse(raw) for _uid, _flags, raw in read_folder(self.dovecot, self.account, name)]

    def flags(self, name: str = "INBOX") -> list[tuple[bytes, ...]]:
        """The flags of each message in one of the assistant's folders, in UID order."""
        return [flags for _uid, flags, _raw in read_folder(self.dovecot, self.account, name)]


def _parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _message_id(raw: bytes) -> str:
    return str(_parse(raw)["Message-ID"])
