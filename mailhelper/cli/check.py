"""`mailhelper check`: the config is valid, and both servers take the assistant's login.

One line per step, ``OK`` or ``FAIL`` (and ``INFO`` for facts that need no action), then a
closing line. A failed step says what to do. Nothing is sent: the SMTP check stops after AUTH,
and the IMAP check opens folders read-only. Passwords and tokens never appear.

Example (a working setup)::

    OK    config /home/sam/.config/mailhelper/config.yaml: valid (1 owner, ...)
    OK    IMAP imap.example.com:993: connected (TLS, certificate verified)
    OK    IMAP login as helper@example.com (password)
    OK    IMAP folder INBOX: 3 message(s)
    INFO  IMAP old mail in INBOX: 0 message(s) would be left alone as old at the first ...
    INFO  IMAP error folder mailhelper/errors: missing, created when first needed
    OK    IMAP IDLE: offered (new mail is seen at once)
    ...
    OK    SMTP smtp.example.com:587: connected, EHLO answered
    OK    SMTP STARTTLS: certificate verified
    OK    SMTP AUTH as helper@example.com (password)
    All checks passed; nothing was sent.

Exit codes (as for every command, see :mod:`mailhelper.cli.main`): 0 every step passed; 2 the
config is wrong or a password cannot be read; 3 a server cannot be reached, its TLS cannot be
verified, or it refused the login.
"""

from __future__ import annotations

import contextlib
import smtplib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from mailhelper.decide.backlog import DEFAULT_BACKFILL_DAYS, is_old, own_date
from mailhelper.mail import secrets
from mailhelper.mail.connect import (
    imap_connect,
    imap_login,
    imap_starttls,
    smtp_connect,
    smtp_login,
    smtp_starttls,
)  # fmt: skip
from mailhelper.mail.mailbox import Mailbox
from mailhelper.mail.secrets import state_password
from mailhelper.mail.source import ImapCursor
from mailhelper.model.errors import ConfigError, ConnectError, MailhelperError, SecretError
from mailhelper.model.settings import ImapSettings, Settings, SmtpSettings, WatchSettings
from mailhelper.model.values import GRACE, FirstStart
from mailhelper.state.migrations import SCHEMA_VERSION, version_of
from mailhelper.state.sqldriver import PostgresConnection
from mailhelper.state.store import Store, folder_cursor, state_name

#: The IMAP extensions mailhelper uses when offered, and what it does without each.
EXTENSIONS = {
    "IDLE": ("new mail is seen at once", "polling every {poll} instead"),
    "MOVE": ("messages are moved in one step", "COPY, then \\Deleted and expunge instead"),
    "UIDPLUS": ("UID EXPUNGE touches only our own messages",
                "moved messages stay flagged \\Deleted in the inbox"),
    "CONDSTORE": ("offered; not needed, as new mail is found by UIDNEXT",
                  "not needed: new mail is found by UIDNEXT"),
    "SPECIAL-USE": ("the Sent folder is found by its \\Sent flag",
                    "the Sent folder is imap.sent_folder, else one named Sent"),
}  # fmt: skip

_TRANSPORT = {"ssl": "TLS", "starttls": "plain, STARTTLS next", "none": "plain, loopback only"}


class _Report:
    """The lines printed so far and the exit code they add up to."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.code = 0

    def ok(self, text: str) -> None:
        self._line("OK", text)

    def info(self, text: str) -> None:
        self._line("INFO", text)

    def fail(self, text: str, code: int) -> None:
        self._line("FAIL", text)
        self.code = max(self.code, code) if self.code != 2 else 2

    def _line(self, verdict: str, text: str) -> None:
        print(f"{verdict:<5} {text}", file=self.out, flush=True)


def run_check(load: Callable[[], Settings], out: TextIO, now: datetime | None = None) -> int:
    """Load the config with ``load``, then check IMAP and SMTP step by step; print a verdict
    per step to ``out`` and return the exit code (0, 2 or 3). ``now`` (default: the system
    clock) judges which mail a first start would leave alone as old."""
    report = _Report(out)
    try:
        settings = load()
    except ConfigError as exc:
        report.fail(f"config: {exc}", 2)
        print("The config must be fixed first; no server was contacted.", file=out)
        return report.code
    owners = len(settings.owners)
    report.ok(f"config {settings.source}: valid ({owners} owner{'' if owners == 1 else 's'}, "
              f"assistant {settings.assistant.email}, timezone {settings.timezone.key}, state "
              f"{state_name(settings)})")
    # Secrets first: a missing password is the user's to fix whether or not a server answers.
    imap_secret = _check_secret(settings.imap, "imap", report)
    smtp_secret = _check_secret(settings.smtp, "smtp", report)
    if settings.state_url is not None:
        _check_state_database(settings, report)
    _check_imap(settings.imap, settings, report, imap_secret, now or datetime.now(UTC))
    _check_smtp(settings.smtp, report, smtp_secret)
    for watch in settings.watches:
        _check_watch(watch, report)
    if report.code == 0:
        print("All checks passed; nothing was sent.", file=out)
    else:
        print("Some checks failed (see the FAIL lines); nothing was sent.", file=out)
    return report.code


def _check_secret(part: ImapSettings | SmtpSettings, what: str, report: _Report) -> bool:
    """Read the password (or get a token) now, without printing it; False when it cannot be
    read (the login step is then skipped rather than failed twice)."""
    if not part.username:
        return True
    try:
        if part.auth == "oauth2":
            secrets.oauth2_token(part.oauth2_token_cmd or "", f"{what}.oauth2_token_cmd")
            report.ok(f"{what}: oauth2_token_cmd printed a token")
        else:
            secrets.resolve(part.password, what)
            report.ok(f"{what}: password readable from {_source(part)}")
    except MailhelperError as exc:
        _failed(report, exc)
        return False
    return True


def _source(part: ImapSettings | SmtpSettings) -> str:
    secret = part.password
    if secret.env:
        return f"${secret.env}"
    if secret.file:
        return str(secret.file)
    return f"the output of {secret.cmd!r}"


def _failed(report: _Report, exc: MailhelperError) -> None:
    report.fail(str(exc), 2 if isinstance(exc, SecretError | ConfigError) else 3)


def _login_words(username: str, auth: str) -> str:
    return f"as {username} ({'XOAUTH2 token' if auth == 'oauth2' else 'password'})"


def _secure_and_log_in(client: IMAPClient, server: ImapSettings, where: str, secret: bool,
                       report: _Report) -> bool:
    """STARTTLS where set, then the login where a username is set, a verdict line for each;
    False when the login was skipped because its password cannot be read."""
    if server.security == "starttls":
        imap_starttls(client, server)
        report.ok(f"{where}: STARTTLS, certificate verified")
    if server.username and not secret:
        report.info(f"{where}: login skipped, as its password cannot be read (see above)")
        return False
    if server.username:
        imap_login(client, server)
        report.ok(f"{where}: logged in {_login_words(server.username, server.auth)}")
    return True


def _check_state_database(settings: Settings, report: _Report) -> None:
    """The PostgreSQL state: its password, the connection, the server's version and the
    schema (created or upgraded by the first run; a newer one is refused)."""
    where = f"state {state_name(settings)}"
    try:
        store = Store.open_readonly(settings.state_location, "", state_password(settings),
                                    settings.assistant.email)
    except MailhelperError as exc:
        report.fail(f"{where}: {exc}", 3)
        return
    try:
        assert isinstance(store.db, PostgresConnection)
        version = version_of(store.db)
        server = f"PostgreSQL {store.db.server_version()}"
        if version > SCHEMA_VERSION:
            report.fail(f"{where}: connected ({server}), but of schema {version}, newer than "
                        f"this mailhelper knows ({SCHEMA_VERSION}); upgrade mailhelper", 3)
        elif version == 0 and store.db.execute(
                "SELECT to_regclass('public.meta') IS NOT NULL").fetchone()[0]:
            report.ok(f"{where}: connected ({server}); the database holds a state of the "
                      "one-assistant-per-database layout (in the schema public), which the "
                      f"first run moves into {settings.state_schema} if no other assistant "
                      "has taken it by then")
        elif version == 0:
            report.ok(f"{where}: connected ({server}); no state for this assistant yet, its "
                      "tables are made by the first run")
        elif version < SCHEMA_VERSION:
            report.ok(f"{where}: connected ({server}), schema {version}: upgraded to "
                      f"{SCHEMA_VERSION} by the next run")
        else:
            report.ok(f"{where}: connected ({server}), schema {version}")
    except MailhelperError as exc:
        report.fail(f"{where}: {exc}", 3)
    finally:
        with contextlib.suppress(MailhelperError):
            store.close()


def _check_imap(imap: ImapSettings, settings: Settings, report: _Report, secret: bool,
                now: datetime) -> None:
    where = f"IMAP {imap.host}:{imap.port}"
    try:
        client = imap_connect(imap)
    except MailhelperError as exc:
        _failed(report, exc)
        return
    try:
        verified = ", certificate verified" if imap.security == "ssl" else ""
        report.ok(f"{where}: connected ({_TRANSPORT[imap.security]}{verified})")
        if not _secure_and_log_in(client, imap, where, secret, report):
            return
        if not imap.username:
            report.info(f"{where}: no imap.username, so no login")
        _check_folders(client, imap, report, settings, now)
        caps = {c.decode().upper() for c in client.capabilities()}
        for name, (present, absent) in EXTENSIONS.items():
            if name in caps:
                report.ok(f"IMAP {name}: offered ({present})")
            else:
                fallback = absent.format(poll=settings.poll_interval)
                report.info(f"IMAP {name}: not offered ({fallback})")
    except MailhelperError as exc:
        _failed(report, exc)
    except (IMAPClientError, OSError) as exc:
        report.fail(f"{where}: {exc}", 3)
    finally:
        with contextlib.suppress(Exception):
            client.logout()


def _check_watch(watch: WatchSettings, report: _Report) -> None:
    """``owners[].watch``: the password, each step of the login, then each folder the watch
    reads (STATUS only: nothing is opened, read or changed)."""
    server = watch.server
    what = f"watch of {watch.owner}"
    secret = _check_secret(server, what, report)
    where = f"{what}: IMAP {server.host}:{server.port}"
    try:
        client = imap_connect(server)
    except MailhelperError as exc:
        report.fail(f"{what}: {exc}", 3)
        return
    try:
        report.ok(f"{where}: connected ({_TRANSPORT[server.security]})")
        if not _secure_and_log_in(client, server, where, secret, report):
            return
        folders = list(watch.folders)
        if not folders:
            try:
                sent = client.find_special_folder(b"\\Sent")
            except IMAPClientError:
                sent = None
            folders = ["INBOX", str(sent) if sent else "Sent"]
        for folder in folders:
            try:
                client.folder_status(folder, [b"MESSAGES"])
            except IMAPClientError as exc:
                report.fail(f"{where}: folder {folder!r} cannot be read ({exc}); name the "
                            "right one under owners[].watch.folders", 3)
            else:
                report.ok(f"{where}: folder {folder!r} readable (it is only ever EXAMINEd)")
    except MailhelperError as exc:
        report.fail(f"{what}: {exc}", 3)
    except (IMAPClientError, OSError) as exc:
        report.fail(f"{where}: {exc}", 3)
    finally:
        with contextlib.suppress(Exception):
            client.logout()


def _check_folders(client: IMAPClient, imap: ImapSettings, report: _Report, state: Settings,
                   now: datetime) -> None:
    try:
        info = client.select_folder(imap.folder, readonly=True)
    except IMAPClientError as exc:
        report.fail(f"IMAP folder {imap.folder}: cannot open it ({exc}); check imap.folder "
                    "against the folders your mail program shows", 3)
        return
    report.ok(f"IMAP folder {imap.folder}: {int(info.get(b'EXISTS', 0))} message(s)")
    _check_old_mail(client, imap, state, now, report)
    for key, name in (("error_folder", imap.error_folder), ("processed_folder",
                                                           imap.processed_folder)):
        if name is None:
            continue
        if client.folder_exists(name):
            report.ok(f"IMAP {key} {name}: exists")
        else:
            report.info(f"IMAP {key} {name}: missing, created when first needed")


def _check_old_mail(client: IMAPClient, imap: ImapSettings, state: Settings, now: datetime,
                    report: _Report) -> None:
    """How much mail the assistant leaves alone as old (:mod:`mailhelper.decide.backlog`): what the
    first poll will leave alone, or what the first start did; and how to read it."""
    try:
        password = state_password(state)
    except MailhelperError:
        password = None  # reported by the state step
    cursor = folder_cursor(state.state_location, imap.folder, password,
                           state.assistant.email)
    has_read, start = cursor is not None, ImapCursor.parse(cursor).first_start
    if has_read and start is None:
        return  # read before first starts were recorded: nothing is left alone
    mailbox = Mailbox(client, imap.folder)
    folder = mailbox.select(imap.folder, readonly=True)
    if start is None:
        start = FirstStart(now, folder.uidvalidity, folder.uidnext or 2**32)
    uids = mailbox.new_uids(folder, 0)
    flagged = mailbox.flagged_among(uids)
    judged = [u for u in uids if u not in flagged and start.was_there(u, folder.uidvalidity)]
    dates = mailbox.dates(judged)
    old = [own_date(d.arrival, d.written, now) for d in dates.values()
           if is_old(d.arrival, d.written, start.cutoff)]
    hint = (f"read them with: mailhelper poll --once --backfill DAYS (e.g. --backfill "
            f"{DEFAULT_BACKFILL_DAYS})")
    span = f" (from {min(old).date()} to {max(old).date()})" if old else ""
    if not has_read:
        report.info(f"IMAP old mail in {imap.folder}: {len(old)} message(s){span} would be left "
                    f"alone as old at the first start (more than {GRACE.days} day before it); "
                    f"{len(flagged)} flagged as handled by an earlier state file"
                    + (f"; {hint}" if old else ""))
    elif old:
        report.info(f"IMAP old mail in {imap.folder}: {len(old)} message(s){span} left alone as "
                    f"old at the first start ({start.at.isoformat(timespec='minutes')}); "
                    f"{hint}")


def _check_smtp(smtp_settings: SmtpSettings, report: _Report, secret: bool) -> None:
    where = f"SMTP {smtp_settings.host}:{smtp_settings.port}"
    try:
        smtp = smtp_connect(smtp_settings)
    except MailhelperError as exc:
        _failed(report, exc)
        return
    try:
        verified = ", certificate verified" if smtp_settings.security == "ssl" else ""
        report.ok(f"{where}: connected ({_TRANSPORT[smtp_settings.security]}{verified}), EHLO "
                  "answered")
        if smtp_settings.security == "starttls":
            smtp_starttls(smtp, smtp_settings)
            report.ok(f"{where}: STARTTLS, certificate verified")
        if smtp_settings.username and not secret:
            report.info(f"{where}: AUTH skipped, as its password cannot be read (see above)")
        elif smtp_settings.username:
            smtp_login(smtp, smtp_settings)
            report.ok(f"{where}: AUTH {_login_words(smtp_settings.username, smtp_settings.auth)}")
        else:
            report.info(f"{where}: no smtp.username, so no AUTH (the server must accept mail "
                        "from this machine without it)")
    except (ConnectError, SecretError) as exc:
        _failed(report, exc)
    finally:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.quit()
