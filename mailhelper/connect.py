"""The one place that opens connections: an IMAP client and an SMTP client, logged in.

Everything else receives the connected object. TLS is verified by default (the system's CAs,
or ``ca_file``); ``security: none`` is only accepted for loopback hosts (config checks that).
Passwords and tokens are read here, at login, and never kept or logged.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl
from pathlib import Path

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from mailhelper import secrets
from mailhelper.errors import ConnectError
from mailhelper.settings import ImapSettings, SmtpSettings


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """A verifying client context; ``ca_file`` adds a CA (e.g. a self-signed server's)."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def _where(host: str, port: int) -> str:
    return f"{host}:{port}"


def open_imap(settings: ImapSettings) -> IMAPClient:
    """Connect, secure and log in; raise ConnectError with the failing step named."""
    where = _where(settings.host, settings.port)
    context = tls_context(settings.ca_file)
    try:
        client = IMAPClient(
            settings.host,
            port=settings.port,
            ssl=settings.security == "ssl",
            ssl_context=context,
            timeout=settings.timeout,
        )
    except ssl.SSLError as exc:
        raise ConnectError(f"IMAP {where}: TLS failed: {exc.reason or exc}") from None
    except (OSError, IMAPClientError) as exc:
        raise ConnectError(f"IMAP {where}: cannot connect: {_reason(exc)}") from None
    try:
        if settings.security == "starttls":
            client.starttls(context)
        if settings.username:
            if settings.auth == "oauth2":
                token = secrets.oauth2_token(settings.oauth2_token_cmd or "")
                client.oauth2_login(settings.username, token)
            else:
                client.login(settings.username, secrets.resolve(settings.password, "imap"))
    except ssl.SSLError as exc:
        _quietly_close(client)
        raise ConnectError(f"IMAP {where}: STARTTLS failed: {exc.reason or exc}") from None
    except LoginError:
        _quietly_close(client)
        raise ConnectError(
            f"IMAP {where}: login refused for {settings.username} (check the password)"
        ) from None
    except (OSError, IMAPClientError) as exc:
        _quietly_close(client)
        raise ConnectError(f"IMAP {where}: {_reason(exc)}") from None
    return client


def open_smtp(settings: SmtpSettings) -> smtplib.SMTP:
    """Connect, EHLO, STARTTLS where set, AUTH where a username is set."""
    where = _where(settings.host, settings.port)
    context = tls_context(settings.ca_file)
    try:
        if settings.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        smtp.ehlo()
    except ssl.SSLError as exc:
        raise ConnectError(f"SMTP {where}: TLS failed: {exc.reason or exc}") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise ConnectError(f"SMTP {where}: cannot connect: {_reason(exc)}") from None
    try:
        if settings.security == "starttls":
            if not smtp.has_extn("starttls"):
                raise ConnectError(f"SMTP {where}: the server does not offer STARTTLS")
            smtp.starttls(context=context)
            smtp.ehlo()
        if settings.username:
            if settings.auth == "oauth2":
                token = secrets.oauth2_token(settings.oauth2_token_cmd or "")
                payload = f"user={settings.username}\x01auth=Bearer {token}\x01\x01"
                smtp.auth("XOAUTH2", lambda challenge=None: payload, initial_response_ok=True)
            else:
                smtp.login(settings.username, secrets.resolve(settings.password, "smtp"))
    except ConnectError:
        _quietly_quit(smtp)
        raise
    except ssl.SSLError as exc:
        _quietly_quit(smtp)
        raise ConnectError(f"SMTP {where}: STARTTLS failed: {exc.reason or exc}") from None
    except smtplib.SMTPAuthenticationError:
        _quietly_quit(smtp)
        raise ConnectError(
            f"SMTP {where}: login refused for {settings.username} (check the password)"
        ) from None
    except (OSError, smtplib.SMTPException) as exc:
        _quietly_quit(smtp)
        raise ConnectError(f"SMTP {where}: {_reason(exc)}") from None
    return smtp


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running, and is the port right?)"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"host name not found ({exc.strerror})"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]


def _quietly_close(client: IMAPClient) -> None:
    with contextlib.suppress(Exception):
        client.shutdown()


def _quietly_quit(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(Exception):
        smtp.close()
