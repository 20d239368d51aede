"""A :class:`~mailhelper.mail.transport.Transport`, a Sent folder and a
:class:`~mailhelper.mail.source.MailSource` in memory, for engine tests and demos that need no
server: what is sent is kept as bytes, each answer of the transport can be scripted (a
refusal, an unknown outcome) to play a fault, and the source's folder is a list of messages.

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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.policy import default as DEFAULT_POLICY
from typing import TYPE_CHECKING, Any

from mailhelper.mail.mailbox import MAX_MESSAGE_BYTES, Dates
from mailhelper.mail.source import FolderReading, Reading
from mailhelper.mail.transport import Accepted, Envelope, Outcome, Unknown
from mailhelper.model.values import FirstStart


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


@dataclass(frozen=True)
class MemoryMail:
    """A message in a :class:`MemorySource`'s folder, and when it arrived (None: unknown)."""

    raw: bytes
    arrival: datetime | None = None


@dataclass
class MemorySource:
    """A folder in memory: ``messages`` in the order they arrived, the id of each its place in
    the list counted from 1, and a Sent folder (``sent``). Settled messages are in
    ``handled`` (as a keyword would mark them) or ``failed`` (moved to the error folder: out
    of the folder). ``size_limit`` and ``batch_size`` play those of
    :class:`~mailhelper.mail.mailbox.Mailbox`.

    Its cursor is the last id read, then the first start's time and the first id that came
    after it:

        >>> from datetime import UTC
        >>> from mailhelper.mail.source import OldMailRule
        >>> source = MemorySource()
        >>> source.deliver(b"Subject: hi\\r\\n\\r\\nhello\\r\\n")
        1
        >>> reading = source.read(None, datetime(2026, 12, 7, 9, tzinfo=UTC))
        >>> reading.cursor
        '0 first 2026-12-07T09:00:00+00:00 2'
        >>> never_old = OldMailRule(lambda *_: False, lambda *_: reading.now, lambda *_: "")
        >>> reading.choose(never_old, None)
        >>> [message.id for message in reading]
        [1]
        >>> reading.finish([1], [])
        '1 first 2026-12-07T09:00:00+00:00 2'
    """

    messages: list[MemoryMail] = field(default_factory=list)
    handled: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    sent: MemorySentFolder = field(default_factory=MemorySentFolder)
    size_limit: int = MAX_MESSAGE_BYTES
    batch_size: int = 200
    folder: str = "INBOX"

    def deliver(self, raw: bytes, arrival: datetime | None = None) -> int:
        """Put a message in the folder; its id."""
        self.messages.append(MemoryMail(raw, arrival))
        return len(self.messages)

    def present(self) -> list[int]:
        """The ids of the messages in the folder (not moved to the error folder)."""
        return [n for n in range(1, len(self.messages) + 1) if n not in self.failed]

    @property
    def pushes(self) -> bool:
        return False

    def has_news(self, cursor: str | None) -> bool:
        last, _start = _memory_cursor(cursor)
        return any(n > last for n in self.present())

    def wait_for_news(self, seconds: float, asked: Callable[[], bool]) -> str:
        return "nothing to wait on in memory"

    def read(self, cursor: str | None, now: datetime, *, readonly: bool = False,
             fresh: bool = False) -> Reading:
        last, start = _memory_cursor(cursor)
        first = cursor is None
        if first:
            start = FirstStart(now, 0, len(self.messages) + 1)
            cursor = _memory_text(0, start)
        return _MemoryReading(self, folder=self.folder, now=now, cursor=cursor,
                              new=[n for n in self.present() if n > last], last=last,
                              newest=len(self.messages), start=start, generation=0,
                              announce=first, size_limit=self.size_limit,
                              batch_size=self.batch_size)

    def sent_name(self) -> str:
        return self.sent.sent_name()

    def sent_contains(self, message_id: str) -> bool:
        return self.sent.sent_contains(message_id)

    def file_sent(self, raw: bytes, when: datetime | None) -> None:
        self.sent.file_sent(raw, when)


def _memory_cursor(cursor: str | None) -> tuple[int, FirstStart | None]:
    if not cursor:
        return 0, None
    last, *rest = cursor.split()
    start = None
    if rest[:1] == ["first"] and len(rest) == 3:
        start = FirstStart(datetime.fromisoformat(rest[1]), 0, int(rest[2]))
    return int(last), start


def _memory_text(last: int, start: FirstStart | None) -> str:
    if start is None:
        return str(last)
    return f"{last} first {start.at.isoformat()} {start.boundary}"


class _MemoryReading(FolderReading):
    def __init__(self, source: MemorySource, **fields: Any) -> None:
        super().__init__(**fields)
        self._source = source

    def _flagged(self, ids: Sequence[int]) -> set[int]:
        return set(ids) & self._source.handled

    def _unhandled_upto(self, last: int) -> list[int]:
        return [n for n in self._source.present() if n <= last and n not in self._source.handled]

    def _dates(self, ids: Sequence[int]) -> dict[int, Dates]:
        from mailhelper.read.parse import written_at  # as Mailbox.dates: only for old mail

        messages = self._source.messages
        return {n: Dates(messages[n - 1].arrival, written_at(messages[n - 1].raw))
                for n in ids if n not in self._source.failed}

    def _fetch(self, ids: Sequence[int]) -> Iterator[tuple[int, bytes, int, bool]]:
        for n in ids:
            if n in self._source.failed:
                continue
            raw = self._source.messages[n - 1].raw
            if len(raw) > self._source.size_limit:
                head, sep, _body = raw.partition(b"\r\n\r\n")
                yield n, head + sep, len(raw), True
            else:
                yield n, raw, len(raw), False

    def _mark(self, handled: Sequence[int], failed: Sequence[int]) -> None:
        self._source.handled.update(handled)
        self._source.failed.update(failed)

    def _text(self, highest: int) -> str:
        return _memory_text(highest, self._start)


if TYPE_CHECKING:  # mypy holds the in-memory edges to the interfaces; nothing runs here
    from mailhelper.mail.source import MailSource, SentFolder
    from mailhelper.mail.transport import Transport

    def _plays_the_roles(t: MemoryTransport, s: MemorySentFolder,
                         m: MemorySource) -> tuple[Transport, SentFolder, MailSource]:
        return t, s, m
