"""`mailhelper check`: the config is valid, and both servers take the assistant's login.

Each step prints one line with OK or FAIL and, on failure, what to do. Nothing is sent: the
SMTP check stops after AUTH.
"""

from __future__ import annotations

import contextlib
import smtplib
from typing import TextIO

from imapclient.exceptions import IMAPClientError

from mailhelper.connect import open_imap, open_smtp
from mailhelper.errors import MailhelperError
from mailhelper.settings import Settings

WATCHED = ("IDLE", "MOVE", "UIDPLUS", "CONDSTORE", "SPECIAL-USE")


def run_check(settings: Settings, out: TextIO) -> int:
    """Print a verdict per step; 0 when every step passed, 3 otherwise."""
    ok = True

    def say(good: bool, text: str) -> None:
        print(f"{'OK  ' if good else 'FAIL'}  {text}", file=out)

    say(True, f"config {settings.source}: valid ({len(settings.owners)} owner(s), "
              f"assistant {settings.assistant.email}, timezone {settings.timezone.key})")

    imap = settings.imap
    try:
        client = open_imap(imap)
    except MailhelperError as exc:
        say(False, f"IMAP: {exc}")
        ok = False
    else:
        try:
            security = {"ssl": "TLS", "starttls": "STARTTLS", "none": "no TLS (loopback)"}
            who = f" as {imap.username}" if imap.username else ""
            say(True, f"IMAP {imap.host}:{imap.port}: connected with "
                      f"{security[imap.security]}, logged in{who}")
            caps = {c.decode().upper() for c in client.capabilities()}
            listed = ", ".join(f"{c} {'yes' if c in caps else 'no'}" for c in WATCHED)
            say(True, f"IMAP extensions: {listed}")
            try:
                info = client.select_folder(imap.folder, readonly=True)
                say(True, f"IMAP folder {imap.folder}: {int(info.get(b'EXISTS', 0))} message(s)")
            except IMAPClientError as exc:
                say(False, f"IMAP folder {imap.folder}: cannot open it ({exc}); check "
                           "imap.folder")
                ok = False
            error_folder = imap.error_folder
            exists = client.folder_exists(error_folder)
            say(True, f"IMAP error folder {error_folder}: "
                      f"{'exists' if exists else 'missing, will be created when needed'}")
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    smtp_settings = settings.smtp
    try:
        smtp = open_smtp(smtp_settings)
    except MailhelperError as exc:
        say(False, f"SMTP: {exc}")
        ok = False
    else:
        steps = ["EHLO"]
        if smtp_settings.security == "starttls":
            steps.append("STARTTLS")
        elif smtp_settings.security == "ssl":
            steps.insert(0, "TLS")
        if smtp_settings.username:
            steps.append(f"AUTH as {smtp_settings.username}")
        say(True, f"SMTP {smtp_settings.host}:{smtp_settings.port}: " + ", ".join(steps) +
            " (nothing sent)")
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.quit()
    print("All checks passed." if ok else "Some checks failed: see FAIL lines above.", file=out)
    return 0 if ok else 3
