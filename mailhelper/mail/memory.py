"""A :class:`~mailhelper.mail.transport.Transport` and a Sent folder in memory, for engine tests
and demos that need no server: what is sent is kept as bytes, and each answer of the
transport can be scripted (a refusal, an unknown outcome) to play a fault.

    >>> from mailhelper.mail.transport import Envelope, Refused
    >>> transport = MemoryTransport()
    >>> transport.answers.append(Refused(451, "try later"))
    >>> transport.send(Envelope("a@x", ("b@y",)), b"Message-ID: <1@x>\\r\\n\\r\\nhi")
    Refused(code=451, text='try later', reason=None)
    >>> transport.send(Envelope("a@x", ("b@y",)), b"Message-ID: <1@x>\\r\\n\\r\\nhi")
    Accepted()
    >>> [mail.message_id for mail in transport.sent]
    ['<1@x>']
"""

from __future__ import annotations

import email
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.policy import default as DEFAULT_POLICY
from typing import TYPE_CHECKING

from mailhelper.mail.transport import Accepted, Envelope, Outcome, Unknown


@dataclass(frozen=True)
class Delivered:
    """One mail the transport accepted (or may have, for :class:`Unknown`)."""

    envelope: Envelope
    raw: bytes

    @property
    def message_id(self) -> str:
        return str(email.message_from_bytes(self.raw, policy=DEFAULT_POLICY)["Message-ID"])


@dataclass
class MemoryTransport:
    """Accepts every mail unless ``answers`` holds scripted outcomes, used first to last.
    A mail answered :class:`~mailhelper.mail.transport.Unknown` is kept in ``sent`` too (the
    server got it; the answer was lost). ``files_in``: a Sent folder the server files
    accepted mail in itself, as Gmail does."""

    answers: list[Outcome] = field(default_factory=list)
    sent: list[Delivered] = field(default_factory=list)
    files_in: MemorySentFolder | None = None
    opened: int = 0
    #: Called before a mail is taken: a test's way to fail the connection (ConnectError).
    on_open: Callable[[], None] | None = None

    def open(self) -> None:
        if self.on_open is not None:
            self.on_open()
        self.opened += 1

    def send(self, envelope: Envelope, raw: bytes) -> Outcome:
        outcome = self.answers.pop(0) if self.answers else Accepted()
        if isinstance(outcome, Accepted | Unknown):
            self.sent.append(Delivered(envelope, raw))
            if self.files_in is not None:
                self.files_in.file_sent(raw, None)
        return outcome

    def close(self) -> None:
        pass


@dataclass
class MemorySentFolder:
    """A Sent folder: the bytes filed, looked up by Message-ID."""

    name: str = "Sent"
    mails: list[bytes] = field(default_factory=list)

    def sent_name(self) -> str:
        return self.name

    def sent_contains(self, message_id: str) -> bool:
        wanted = message_id if message_id.startswith("<") else f"<{message_id}>"
        return any(Delivered(Envelope("", ()), raw).message_id == wanted for raw in self.mails)

    def file_sent(self, raw: bytes, when: datetime | None) -> None:
        self.mails.append(raw)


if TYPE_CHECKING:  # mypy holds the in-memory edges to the interfaces; nothing runs here
    from mailhelper.mail.source import SentFolder
    from mailhelper.mail.transport import Transport

    def _plays_the_roles(t: MemoryTransport, s: MemorySentFolder) -> tuple[Transport, SentFolder]:
        return t, s
