"""The one place that opens connections: an IMAP client and an SMTP client, logged in.

Everything else receives the connected object. TLS is verified by default (the system's CAs,
or ``ca_file``); ``security: none`` is only accepted for loopback hosts (config checks that).
Passwords and tokens are read here, at login, and never kept or logged.

Each connection is made in steps (connect, STARTTLS, log in) so that ``mailhelper check`` can
say which step failed; :func:`open_imap` and :func:`open_smtp` run them all::

    client = open_imap(settings.imap)       # connected, secured, logged in
    smtp = open_smtp(settings.smtp)         # EHLO'd, secured, authenticated

Every failure is a :class:`~mailhelper.model.errors.ConnectError` whose message names the server,
the step and what to do, never a secret. OAuth2 logins use XOAUTH2 on both protocols (the
SASL mechanism Gmail and Microsoft 365 document; RFC 7628 describes its OAUTHBEARER sibling).
"""

from __future__ import annotations

import contextlib
import logging
import re
import smtplib
import socket
import ssl
from pathlib import Path

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import IMAPClientError, LoginError

from mailhelper.mail import secrets
from mailhelper.model.errors import ConnectError
from mailhelper.model.settings import ImapSettings, SmtpSettings

__all__ = [
    "LoginRefused", "TlsFailed", "imap_connect", "imap_login", "imap_starttls", "open_imap",
    "open_smtp", "smtp_connect", "smtp_login", "smtp_starttls", "tls_context", "xoauth2_string",
]  # fmt: skip


class LoginRefused(ConnectError):
    """The server was reached but refused the login (password or token)."""


class TlsFailed(ConnectError):
    """TLS could not be set up or the server's certificate could not be verified."""


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """A verifying client context; ``ca_file`` adds a CA (e.g. a self-signed server's)."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def xoauth2_string(username: str, token: str) -> str:
    """The XOAUTH2 initial client response (before base64), as Google documents it.

        >>> xoauth2_string("helper@example.com", "ya29.abc")
        'user=helper@example.com\\x01auth=Bearer ya29.abc\\x01\\x01'
    """
    return f"user={username}\x01auth=Bearer {token}\x01\x01"


def _where(protocol: str, host: str, port: int) -> str:
    return f"{protocol} {host}:{port}"


#: A server greets within a second or two. A client that waits for a greeting on a port that
#: speaks TLS from the first byte waits for ever (the server waits for its TLS hello), so the
#: greeting gets less time than the other reads, and its absence is explained.
GREETING_SECONDS = 15.0

#: The usual ports, for the advice on a wrong ``security`` (RFC 8314 for 993 and 465).
_TLS_PORTS = {"imap": 993, "smtp": 465}
_PLAIN_PORTS = {"imap": 143, "smtp": 587}


def _greeting_timeout(timeout: float) -> float:
    return min(timeout, GREETING_SECONDS)


def _plain_on_tls_port(protocol: str, port: int, waited: float) -> str:
    """The advice when a plain (or STARTTLS) connection got no greeting."""
    return (f"no greeting within {waited:g} s: port {port} may expect TLS from the first byte; "
            f"use security: ssl (usually port {_TLS_PORTS[protocol]}), or starttls on port "
            f"{_PLAIN_PORTS[protocol]}")


# -- IMAP ------------------------------------------------------------------------------------
def open_imap(settings: ImapSettings) -> IMAPClient:
    """Connect, secure and log in; raise ConnectError with the failing step named."""
    client = imap_connect(settings)
    try:
        imap_starttls(client, settings)
        imap_login(client, settings)
    except BaseException:
        _quietly_close(client)
        raise
    return client


def imap_connect(settings: ImapSettings) -> IMAPClient:
    """Open the TCP connection (TLS from the first byte with ``security: ssl``)."""
    where = _where("IMAP", settings.host, settings.port)
    greeting = _greeting_timeout(settings.timeout)
    try:
        # The connect timeout also bounds the greeting (imaplib reads it while connecting).
        client = IMAPClient(
            settings.host,
            port=settings.port,
            ssl=settings.security == "ssl",
            ssl_context=tls_context(settings.ca_file),
            timeout=SocketTimeout(connect=greeting, read=settings.timeout),
        )
    except ssl.SSLError as exc:
        raise TlsFailed(f"{where}: TLS failed: {_tls_reason(exc, 'imap', settings.port)}",
                        ) from None
    except TimeoutError as exc:
        if settings.security != "ssl" and _connected_before_timeout(exc):
            raise ConnectError(f"{where}: cannot connect: "
                               f"{_plain_on_tls_port('imap', settings.port, greeting)}") from None
        raise ConnectError(f"{where}: cannot connect: {_reason(exc)}") from None
    except (OSError, IMAPClientError) as exc:
        raise ConnectError(f"{where}: cannot connect: {_reason(exc)}") from None
    trace_protocol_only_when_logged(client)
    return client


def trace_protocol_only_when_logged(client: IMAPClient) -> None:
    """Have imaplib format its protocol trace only when the ``imapclient.imaplib`` logger
    shows debug lines.

    IMAPClient sets imaplib's trace level to 5 on every connection and sends the trace to
    that logger. imaplib formats each trace line before the logger can drop it, including
    ``%r`` of every literal, twice: each fetched message's bytes were turned into their
    ``repr`` for nothing, about a tenth of a backlog poll's CPU. The logger is at WARNING
    unless someone lowered it: then the trace stays as IMAPClient made it."""
    imap = getattr(client, "_imap", None)  # IMAPClient's imaplib connection (no public name)
    if imap is not None and not logging.getLogger("imapclient.imaplib").isEnabledFor(
            logging.DEBUG):
        imap.debug = 0


def imap_starttls(client: IMAPClient, settings: ImapSettings) -> None:
    """STARTTLS (RFC 3501 6.2.1) where ``security: starttls``; nothing otherwise."""
    if settings.security != "starttls":
        return
    where = _where("IMAP", settings.host, settings.port)
    if b"STARTTLS" not in {c.upper() for c in client.capabilities()}:
        raise ConnectError(f"{where}: the server does not offer STARTTLS; use security: ssl "
                           "(usually port 993)")
    try:
        client.starttls(tls_context(settings.ca_file))
    except ssl.SSLError as exc:
        raise TlsFailed(f"{where}: STARTTLS failed: {_tls_reason(exc, 'imap', settings.port)}",
                        ) from None
    except (OSError, IMAPClientError) as exc:
        raise ConnectError(f"{where}: STARTTLS failed: {_reason(exc)}") from None


def imap_login(client: IMAPClient, settings: ImapSettings) -> None:
    """LOGIN with the password, or AUTHENTICATE XOAUTH2 with a fresh token; no username: none."""
    if not settings.username:
        return
    where = _where("IMAP", settings.host, settings.port)
    try:
        if settings.auth == "oauth2":
            token = secrets.oauth2_token(settings.oauth2_token_cmd or "", "imap: oauth2_token_cmd")
            client.oauth2_login(settings.username, token)
        else:
            client.login(settings.username, secrets.resolve(settings.password, "imap"))
    except LoginError as exc:
        raise LoginRefused(f"{where}: {_refused(settings.username, settings.auth, exc)}",
                           ) from None
    except (OSError, IMAPClientError) as exc:
        raise ConnectError(f"{where}: login failed: {_reason(exc)}") from None


# -- SMTP ------------------------------------------------------------------------------------
def open_smtp(settings: SmtpSettings) -> smtplib.SMTP:
    """Connect, EHLO, STARTTLS where set, AUTH where a username is set."""
    smtp = smtp_connect(settings)
    try:
        smtp_starttls(smtp, settings)
        smtp_login(smtp, settings)
    except BaseException:
        _quietly_quit(smtp)
        raise
    return smtp


def smtp_connect(settings: SmtpSettings) -> smtplib.SMTP:
    """Open the connection (TLS from the first byte with ``security: ssl``) and EHLO."""
    where = _where("SMTP", settings.host, settings.port)
    greeting = _greeting_timeout(settings.timeout)
    if settings.security == "ssl":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(timeout=greeting,
                                              context=tls_context(settings.ca_file))
    else:
        smtp = smtplib.SMTP(timeout=greeting)
    # What SMTP(host, port) would do, in two steps so the greeting's wait is bounded apart
    # from later reads; _host is the name TLS verifies (SMTP_SSL's wrap, starttls).
    smtp._host = settings.host  # type: ignore[attr-defined]
    try:
        smtp.connect(settings.host, settings.port)  # connects, then reads the greeting
    except ssl.SSLError as exc:
        _quietly_quit(smtp)
        raise TlsFailed(f"{where}: TLS failed: {_tls_reason(exc, 'smtp', settings.port)}",
                        ) from None
    except smtplib.SMTPServerDisconnected as exc:
        _quietly_quit(smtp)
        # getreply() turns a timeout while waiting for the greeting into this error.
        if settings.security != "ssl" and isinstance(exc.__context__, TimeoutError):
            raise ConnectError(f"{where}: cannot connect: "
                               f"{_plain_on_tls_port('smtp', settings.port, greeting)}") from None
        raise ConnectError(f"{where}: cannot connect: {_reason(exc)}") from None
    except (OSError, smtplib.SMTPException) as exc:
        _quietly_quit(smtp)
        raise ConnectError(f"{where}: cannot connect: {_reason(exc)}") from None
    smtp.timeout = settings.timeout
    if smtp.sock is not None:
        smtp.sock.settimeout(settings.timeout)
    try:
        code, text = smtp.ehlo()
    except (OSError, smtplib.SMTPException) as exc:
        _quietly_quit(smtp)
        raise ConnectError(f"{where}: EHLO failed: {_reason(exc)}") from None
    if not 200 <= code < 300:
        _quietly_quit(smtp)
        raise ConnectError(f"{where}: EHLO refused: {code} {_decode(text)}")
    return smtp


def smtp_starttls(smtp: smtplib.SMTP, settings: SmtpSettings) -> None:
    """STARTTLS (RFC 3207) and EHLO again, where ``security: starttls``."""
    if settings.security != "starttls":
        return
    where = _where("SMTP", settings.host, settings.port)
    if not smtp.has_extn("starttls"):
        raise ConnectError(f"{where}: the server does not offer STARTTLS; use security: ssl "
                           "(usually port 465) or check the port")
    try:
        smtp.starttls(context=tls_context(settings.ca_file))
        smtp.ehlo()
    except ssl.SSLError as exc:
        raise TlsFailed(f"{where}: STARTTLS failed: {_tls_reason(exc, 'smtp', settings.port)}",
                        ) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise ConnectError(f"{where}: STARTTLS failed: {_reason(exc)}") from None


def smtp_login(smtp: smtplib.SMTP, settings: SmtpSettings) -> None:
    """AUTH (RFC 4954) with the password, or XOAUTH2 with a fresh token; no username: none."""
    if not settings.username:
        return
    where = _where("SMTP", settings.host, settings.port)
    if not smtp.has_extn("auth"):
        raise ConnectError(
            f"{where}: the server does not offer AUTH here; use the submission port (587 or "
            "465) with TLS, or remove smtp.username if it takes mail without a login"
        )
    offered = smtp.esmtp_features.get("auth", "").upper().split()
    try:
        if settings.auth == "oauth2":
            if "XOAUTH2" not in offered:
                raise ConnectError(f"{where}: the server does not offer AUTH XOAUTH2 (it "
                                   f"offers {' '.join(offered) or 'nothing'}); use a password")
            token = secrets.oauth2_token(settings.oauth2_token_cmd or "", "smtp: oauth2_token_cmd")
            initial = xoauth2_string(settings.username, token)

            def respond(challenge: bytes | None = None) -> str:
                # The first call gives the initial response; a later challenge is the
                # server's error report, which wants an empty answer before its 535.
                return initial if challenge is None else ""

            smtp.auth("XOAUTH2", respond, initial_response_ok=True)
        else:
            smtp.login(settings.username, secrets.resolve(settings.password, "smtp"))
    except smtplib.SMTPAuthenticationError as exc:
        raise LoginRefused(f"{where}: {_refused(settings.username, settings.auth, exc)}",
                           ) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise ConnectError(f"{where}: AUTH failed: {_reason(exc)}") from None


# -- words for people ------------------------------------------------------------------------
def _refused(username: str, auth: str, exc: BaseException) -> str:
    said = _server_said(exc)
    if auth == "oauth2":
        return (f"XOAUTH2 login refused for {username}{said}; the token from oauth2_token_cmd "
                "was not accepted (expired, revoked, or for another account)")
    return f"login refused for {username}{said}; check the password and the username"


def _server_said(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        text = f"{exc.smtp_code} {_decode(exc.smtp_error)}"
    else:
        text = str(exc)
    # imapclient puts the server's bytes into the message as their repr: b'[...] ...'
    quoted = re.fullmatch(r"b(['\"])(.*)\1", text.strip(), re.DOTALL)
    if quoted:
        text = quoted[2]
    text = text.strip().splitlines()[0][:200] if text.strip() else ""
    return f" (the server said: {text})" if text else ""


def _tls_reason(exc: ssl.SSLError, protocol: str, port: int) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"the server's certificate is not trusted ({exc.verify_message}); if the "
                f"server uses its own CA, set {protocol}.ca_file to that CA's certificate")
    if exc.reason in ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNKNOWN_PROTOCOL"):
        # The first bytes back were the server's plain-text greeting, not a TLS record.
        return (f"port {port} speaks plain {protocol.upper()}, not TLS: use security: "
                f"starttls (usually port {_PLAIN_PORTS[protocol]}), or security: ssl on port "
                f"{_TLS_PORTS[protocol]}")
    return str(exc.reason or exc)


def _connected_before_timeout(exc: BaseException) -> bool:
    """Whether a timeout came after the TCP connection was made (waiting for the greeting),
    not while connecting; imaplib does both in one call, so tell them apart by the text of
    the traceback's last frame: ``create_connection`` means connecting."""
    trace = exc.__traceback__
    while trace is not None and trace.tb_next is not None:
        trace = trace.tb_next
    return trace is None or trace.tb_frame.f_code.co_name != "create_connection"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running, and is the port right?)"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"host name not found ({exc.strerror})"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"the server closed the connection ({exc or 'no reason given'})"
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _quietly_close(client: IMAPClient) -> None:
    with contextlib.suppress(Exception):
        client.shutdown()


def _quietly_quit(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(Exception):
        smtp.close()


