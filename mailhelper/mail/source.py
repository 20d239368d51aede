"""The assistant's mailbox as the engine sees it: a :class:`MailSource`, never IMAP itself.

The engine asks a source whether news may have come since a *cursor* (an opaque string the
source made; the engine only keeps it), waits for news, settles what it read (handled, or
filed as an error), and asks the Sent folder whether a
mail went and files a copy there (:class:`SentFolder`, SPEC.md safety rule 3).
:class:`ImapSource` is the real one over :class:`~mailhelper.mail.mailbox.Mailbox`;
:mod:`mailhelper.mail.memory` has one in memory for engine tests.

An IMAP cursor is ``"<UIDVALIDITY>:<last UID read>"`` (RFC 3501 2.3.1.1): a changed
UIDVALIDITY makes every UID of the cursor meaningless, which only the source needs to know.

    >>> imap_cursor((1700000000, 42))
    '1700000000:42'
    >>> last_uid(imap_cursor((1700000000, 42))), last_uid(None)
    (42, 0)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from mailhelper.mail.mailbox import Mailbox
from mailhelper.model.settings import ImapSettings

#: How often a wait looks at the stop and reload requests, in seconds.
WAIT_SLICE = 0.5


class SentFolder(Protocol):
    """Where the assistant's own mail is filed, and asked about after a crash."""

    def sent_name(self) -> str:
        """The Sent folder's name, for the log; found (or created) on first use."""

    def sent_contains(self, message_id: str) -> bool:
        """Whether the Sent folder holds a mail with this Message-ID (brackets optional)."""

    def file_sent(self, raw: bytes, when: datetime) -> None:
        """File ``raw`` (the exact bytes that went) in the Sent folder, dated ``when``."""


class MailSource(SentFolder, Protocol):
    """The assistant's mailbox: news since a cursor, waiting for news, and its Sent folder."""

    @property
    def pushes(self) -> bool:
        """Whether :meth:`wait_for_news` ends when mail arrives (IMAP IDLE); else the engine
        polls."""

    def has_news(self, cursor: str | None) -> bool:
        """Whether mail may have arrived past ``cursor`` since the source was last read, so
        that a wait begun next misses nothing."""

    def wait_for_news(self, seconds: float, asked: Callable[[], bool]) -> str:
        """Wait up to ``seconds`` for new mail, ending early when ``asked()`` turns true (a
        stop or reload); returns why it ended."""

    def settle(self, handled: Sequence[int], failed: Sequence[int]) -> None:
        """Mark messages whose effects are committed as handled, and file those that could
        not be understood in the error folder; never deletes anything."""


#: Why :meth:`MailSource.wait_for_news` ended when its time was up (no news, no request).
TIMED_OUT = "time to act (a due action, or IDLE renewal)"


def imap_cursor(position: tuple[int, int] | None) -> str | None:
    """The cursor of a folder read up to ``(uidvalidity, last_uid)``; None before the first."""
    return None if position is None else f"{position[0]}:{position[1]}"


def last_uid(cursor: str | None) -> int:
    """The last UID read according to an IMAP ``cursor`` (0 before the first)."""
    if not cursor:
        return 0
    return int(cursor.rpartition(":")[2] or 0)


class ImapSource:
    """A :class:`MailSource` over one logged-in :class:`~mailhelper.mail.mailbox.Mailbox`, with the
    folders of ``imap`` in the config (``folders``). The Sent folder is ``sent_folder`` if
    configured, else the one flagged ``\\Sent``, else ``Sent``, found (or created) when first
    needed."""

    def __init__(self, mailbox: Mailbox, folders: ImapSettings | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        folders = folders or ImapSettings()
        self.mailbox = mailbox
        self._configured = folders.sent_folder
        self._processed = folders.processed_folder
        self._error = folders.error_folder
        self._sent: str | None = None
        self._monotonic = monotonic

    @property
    def pushes(self) -> bool:
        return self.mailbox.has("IDLE")

    def sent_name(self) -> str:
        if self._sent is None:
            self._sent = self.mailbox.sent_folder(self._configured)
        return self._sent

    def sent_contains(self, message_id: str) -> bool:
        return self.mailbox.contains_message_id(self.sent_name(), message_id)

    def file_sent(self, raw: bytes, when: datetime) -> None:
        self.mailbox.append(self.sent_name(), raw, when)

    def has_news(self, cursor: str | None) -> bool:
        return self.mailbox.has_news(last_uid(cursor))

    def settle(self, handled: Sequence[int], failed: Sequence[int]) -> None:
        """The handled keyword on ``handled`` (and a move to ``processed_folder`` when one is
        set); ``failed`` moved to ``error_folder``."""
        self.mailbox.mark_handled(handled)
        if self._processed and handled:
            self.mailbox.move(handled, self._processed)
        if failed:
            self.mailbox.move(failed, self._error)

    def wait_for_news(self, seconds: float, asked: Callable[[], bool]) -> str:
        """IDLE for up to ``seconds`` (RFC 2177), in short slices so a stop or a reload is
        seen promptly. The engine never asks for more than 25 minutes, so IDLE is re-issued
        well before the 29 after which servers may drop a client."""
        client = self.mailbox.client
        monotonic = self._monotonic
        deadline = monotonic() + seconds
        client.idle()
        why = "stop or reload requested"
        try:
            while not asked():
                left = deadline - monotonic()
                if left <= 0:
                    why = TIMED_OUT
                    break
                piece = min(WAIT_SLICE, left)
                began = monotonic()
                responses = client.idle_check(timeout=piece)
                if _announces_mail(responses):
                    why = "new mail"
                    break
                if any(isinstance(r, tuple) and r[:1] == (b"BYE",) for r in responses):
                    why = "the server said BYE"
                    break
                if not responses and monotonic() - began < piece / 2:
                    # Readable but nothing parsed: the server closed the socket (imapclient
                    # swallows the EOF). Leaving IDLE tells for sure: DONE fails on a dead
                    # connection; on a live one this costs one extra cycle.
                    why = "woken with nothing to read"
                    break
        finally:
            _text, done = client.idle_done()
        if why == TIMED_OUT and _announces_mail(done):
            # Announced with the answer to DONE: no later command or IDLE repeats it.
            return "new mail (announced as IDLE ended)"
        return why


def _announces_mail(responses: Sequence[Any]) -> bool:
    """Whether untagged IMAP responses include ``EXISTS`` or ``RECENT`` (new mail)."""
    return any(isinstance(r, tuple) and len(r) > 1 and r[1] in (b"EXISTS", b"RECENT")
               for r in responses)


if TYPE_CHECKING:  # mypy holds the IMAP source to the interface; nothing runs here
    def _imap_plays_the_role(source: ImapSource) -> MailSource:
        return source
