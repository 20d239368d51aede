"""IMAP helpers for tests: log in, put mail in, read it back, reshape folders, build messages.

Every helper takes the server and a user, opens its own short connection and logs out, so a test
can interleave them with the code under test without sharing IMAP state. Flags come back as
imapclient gives them: ``bytes`` such as ``b"\\Seen"``.

Example::

    raw = make_message("jane@example.org", "helper@example.com", "Re: Intro", "Happy to help!")
    uid = append(dovecot, account, raw)
    [(uid, flags, body)] = read_folder(dovecot, account, "INBOX")
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from typing import Protocol

from imapclient import IMAPClient

from .dovecot import DovecotServer

__all__ = [
    "Folder",
    "Login",
    "append",
    "connect",
    "folders",
    "make_message",
    "read_folder",
    "recreate_folder",
    "uidvalidity",
]


class Login(Protocol):
    """Anything with a username and a password (Credentials, ImapAccount, ...)."""

    @property
    def username(self) -> str: ...

    @property
    def password(self) -> str: ...


def _login_of(server: DovecotServer, user: Login | str) -> Login:
    if isinstance(user, str):
        try:
            return server.users[user.lower()]
        except KeyError:
            raise KeyError(f"{user!r} is not a user of this Dovecot (add_user() it)") from None
    return user


def connect(
    server: DovecotServer,
    user: Login | str,
    *,
    tls: bool = True,
    starttls: bool = False,
    timeout: float = 10.0,
) -> IMAPClient:
    """An :class:`IMAPClient` logged in as ``user`` (a :class:`Login` or a username).

    ``tls=True`` (the default) uses the implicit-TLS port; ``tls=False`` the plain port,
    upgraded with STARTTLS when ``starttls``. Certificates are verified against the rig's CA.
    The caller logs out, best with the client as a context manager (``with connect(...) as c``).
    """
    login = _login_of(server, user)
    context = server.client_context()
    if tls:
        client = IMAPClient(server.host, server.tls_port, ssl_context=context, timeout=timeout)
    else:
        client = IMAPClient(server.host, server.port, ssl=False, timeout=timeout)
        if starttls:
            client.starttls(context)
    try:
        client.login(login.username, login.password)
    except BaseException:
        client.shutdown()
        raise
    return client


def append(
    server: DovecotServer,
    user: Login | str,
    raw: bytes,
    folder: str = "INBOX",
    flags: Iterable[str | bytes] = (),
    msg_time: datetime | None = None,
) -> int:
    """APPEND ``raw`` to ``folder`` (RFC 3501 6.3.11) and return its UID (RFC 4315 APPENDUID).

    ``msg_time`` sets the INTERNALDATE (the server's arrival time); None means now.
    """
    with connect(server, user) as client:
        response = client.append(folder, raw, flags=tuple(flags), msg_time=msg_time)
    text = response.decode(errors="replace") if isinstance(response, bytes) else str(response)
    match = re.search(r"\[APPENDUID (\d+) (\d+)\]", text)
    if match is None:
        raise AssertionError(f"server did not answer APPENDUID: {text!r}")
    return int(match.group(2))


def read_folder(
    server: DovecotServer, user: Login | str, folder: str = "INBOX"
) -> list[tuple[int, tuple[bytes, ...], bytes]]:
    """Every message in ``folder`` as ``(uid, flags, raw_bytes)``, in UID order.

    Reads with ``BODY.PEEK[]`` on a read-only selection, so it never sets ``\\Seen``.
    """
    with connect(server, user) as client:
        client.select_folder(folder, readonly=True)
        uids = client.search("ALL")
        fetched = client.fetch(uids, ["FLAGS", "BODY.PEEK[]"]) if uids else {}
    return [
        (uid, tuple(fetched[uid][b"FLAGS"]), bytes(fetched[uid][b"BODY[]"]))
        for uid in sorted(fetched)
    ]


@dataclass(frozen=True)
class Folder:
    """One LIST entry: the folder name, its flags (special-use ones included) and separator."""

    name: str
    flags: tuple[bytes, ...]
    delimiter: str

    @property
    def special_use(self) -> bytes | None:
        """The RFC 6154 special-use flag (``b"\\Sent"``, ...), or None."""
        for flag in self.flags:
            if flag in (b"\\All", b"\\Archive", b"\\Drafts", b"\\Flagged", b"\\Junk", b"\\Sent",
                        b"\\Trash"):  # fmt: skip
                return bytes(flag)
        return None


def folders(server: DovecotServer, user: Login | str) -> dict[str, Folder]:
    """Every folder of ``user`` by name (LIST "" "*"), flags included."""
    with connect(server, user) as client:
        listed = client.list_folders()
    result: dict[str, Folder] = {}
    for flags, delimiter, name in listed:
        sep = delimiter.decode() if isinstance(delimiter, bytes) else str(delimiter or "")
        result[name] = Folder(name=name, flags=tuple(flags), delimiter=sep)
    return result


def uidvalidity(server: DovecotServer, user: Login | str, folder: str = "INBOX") -> int:
    """The folder's current UIDVALIDITY (RFC 3501 2.3.1.1), from STATUS."""
    with connect(server, user) as client:
        status = client.folder_status(folder, [b"UIDVALIDITY"])
    return int(status[b"UIDVALIDITY"])


def recreate_folder(
    server: DovecotServer, user: Login | str, folder: str, *, keep_messages: bool = True
) -> tuple[int, int]:
    """Give ``folder`` a new, greater UIDVALIDITY, as a server rebuild or migration does.

    Returns ``(old_uidvalidity, new_uidvalidity)``. With ``keep_messages`` the same messages
    (bytes, flags, INTERNALDATE) come back under new UIDs; clients must then treat everything
    in the folder as unseen (RFC 3501 2.3.1.1) and dedupe by content.

    Any folder but INBOX is deleted and created again, so its UIDs restart at 1 and collide
    with the old ones (the case that catches a client ignoring UIDVALIDITY). INBOX cannot be
    deleted (RFC 3501 6.3.4): it is emptied, given a new UIDVALIDITY with
    ``doveadm mailbox update``, and refilled; its new UIDs continue after the old UIDNEXT.
    Sessions that have the folder selected may be disconnected by the server.
    """
    login = _login_of(server, user)
    with connect(server, login) as client:
        selected = client.select_folder(folder)
        old = int(selected[b"UIDVALIDITY"])
        uids = client.search("ALL")
        saved = client.fetch(uids, ["FLAGS", "INTERNALDATE", "BODY.PEEK[]"]) if uids else {}
        if folder.upper() == "INBOX":
            if uids:
                client.delete_messages(uids)
                client.expunge()
            client.close_folder()
            new = max(old + 1, int(datetime.now(UTC).timestamp()))
            server.doveadm(
                "mailbox", "update", "-u", login.username, "--uid-validity", str(new), "INBOX"
            )
        else:
            client.close_folder()
            client.delete_folder(folder)
            client.create_folder(folder)
            client.subscribe_folder(folder)
        if keep_messages:
            for uid in sorted(saved):
                data = saved[uid]
                flags = [f for f in data[b"FLAGS"] if f != b"\\Recent"]
                client.append(folder, data[b"BODY[]"], flags=flags, msg_time=data[b"INTERNALDATE"])
        new = int(client.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"])
    if new == old:
        raise AssertionError(f"UIDVALIDITY of {folder!r} did not change ({old})")
    return old, new


def make_message(
    from_: str,
    to: str | Sequence[str],
    subject: str,
    body: str,
    cc: str | Sequence[str] = (),
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | Sequence[str] | None = None,
    date: datetime | str | None = None,
    extra_headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
) -> bytes:
    """A realistic RFC 5322 message as bytes with CRLF line endings, ready to APPEND or send.

    Addresses may carry display names (``"Jane Doe <jane@example.org>"``); non-ASCII names,
    subjects and bodies are encoded (RFC 2047 headers, UTF-8 body). ``message_id`` defaults
    to a fresh ``<...@sender-domain>``; ``date`` (a datetime, naive meaning UTC, or a ready
    header string) defaults to now. ``references`` may be one string or a list of Message-IDs.
    ``extra_headers`` are added as given, after the standard ones (repeats allowed as pairs).

    Example::

        make_message("Sam <sam@example.com>", "jane@example.org", "Intro to Acme?",
                     "Hi Jane, could you introduce me to ...", cc="helper@example.com")
    """
    message = EmailMessage()
    message["From"] = from_
    message["To"] = to if isinstance(to, str) else ", ".join(to)
    if cc:
        message["Cc"] = cc if isinstance(cc, str) else ", ".join(cc)
    message["Subject"] = subject
    if isinstance(date, str):
        message["Date"] = date
    else:
        when = date or datetime.now(UTC)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        message["Date"] = email.utils.format_datetime(when)
    if message_id is None:
        domain = email.utils.parseaddr(from_)[1].rpartition("@")[2] or "rig.invalid"
        message_id = email.utils.make_msgid(domain=domain)
    message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references if isinstance(references, str) else " ".join(references)
    message["MIME-Version"] = "1.0"
    pairs = extra_headers.items() if isinstance(extra_headers, Mapping) else extra_headers or ()
    for name, value in pairs:
        message[name] = value
    message.set_content(body)
    return message.as_bytes(policy=SMTP)
