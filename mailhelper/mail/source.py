"""The assistant's mailbox as the engine sees it: a :class:`MailSource`, never IMAP itself.

The engine hands a source the *cursor* it stored (an opaque string the source made, or None
before the first reading) and the clock; the source opens a :class:`Reading`: the messages to
read, in order, each with an id (the source's own handle, which the engine only hands back and
logs), its bytes, the time it is read at and whether it was too large to download. Told which
ids were handled and which failed, the reading settles them (handled, or filed as an error)
and gives the new cursor to store. A source also says whether news may have come since a
cursor, waits for news, and asks the Sent folder whether a mail went and files a copy there
(:class:`SentFolder`, SPEC.md safety rule 3). :class:`ImapSource` is the real one over
:class:`~mailhelper.mail.mailbox.Mailbox`; :mod:`mailhelper.mail.memory` has one in memory for
engine tests.

Old mail (README "Old mail") is the engine's decision (:mod:`mailhelper.decide.backlog`),
handed to a reading as an :class:`OldMailRule`; the source applies it to the dates it fetched
and keeps its first-start record in the cursor, so neither the engine nor the store sees
IMAP's numbers.

An IMAP cursor is ``"<UIDVALIDITY>:<last UID read>"`` (RFC 3501 2.3.1.1; ``-`` before the
first message is read), followed by `` first <time> <UIDVALIDITY>:<UIDNEXT>`` once the first
start is recorded (:class:`~mailhelper.model.values.FirstStart`). A changed UIDVALIDITY makes
every UID of the cursor meaningless, which only the source needs to know.

    >>> imap_cursor((1700000000, 42))
    '1700000000:42'
    >>> last_uid(imap_cursor((1700000000, 42))), last_uid(None)
    (42, 0)
    >>> from datetime import UTC
    >>> start = FirstStart(datetime(2026, 12, 7, 9, tzinfo=UTC), 1700000000, 43)
    >>> text = ImapCursor(None, 0, start).text()
    >>> text
    '- first 2026-12-07T09:00:00+00:00 1700000000:43'
    >>> ImapCursor.parse(text) == ImapCursor(None, 0, start), last_uid(text)
    (True, 0)
    >>> ImapCursor.parse("1700000000:50 first 2026-12-07T09:00:00+00:00 1700000000:43").last_uid
    50
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from mailhelper.mail.mailbox import Dates, Mailbox
from mailhelper.model import logfields
from mailhelper.model.errors import ConnectError
from mailhelper.model.settings import ImapSettings
from mailhelper.model.values import FirstStart

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class Incoming:
    """One message a :class:`Reading` gives to be read."""

    id: int  # the source's handle for it (an IMAP UID): handed back to settle, and logged
    raw: bytes  # all of it; only its header when ``too_large``
    at: datetime  # the time it is read at: the cycle's clock, or its own date in a backfill
    size: int
    too_large: bool = False


@dataclass(frozen=True)
class OldMailRule:
    """The decision about mail that was in the folder at the first start, handed to a source
    by the engine (:mod:`mailhelper.decide.backlog`'s functions): an edge applies it, never
    owns it."""

    #: (arrival, Date header, cutoff) -> whether the message is old mail, left alone.
    is_old: Callable[[datetime | None, datetime | None, datetime], bool]
    #: (arrival, Date header, now) -> when the message happened, for a backfill.
    own_date: Callable[[datetime | None, datetime | None, datetime], datetime]
    #: (folder, count, oldest, newest) -> the one log line about old mail left alone.
    left_alone_line: Callable[[str, int, datetime | None, datetime | None], str]


class Reading(Protocol):
    """What one cycle reads from a source, opened by :meth:`MailSource.read`.

    In order: keep :attr:`cursor` if it differs from the one the reading was opened with (it
    holds the first-start record, for good); :meth:`choose`; iterate over the messages; now
    and then (every :attr:`batch_size` messages or more) :meth:`settle` what was committed
    and keep the cursor it returns; at the end :meth:`finish` the rest and keep that cursor.
    """

    #: The cursor as the reading begins: the one it was opened with, or one that records the
    #: first start now, to be kept before anything is read.
    cursor: str | None
    #: Messages not given to be read because some state already handled them (counted as
    #: duplicates); known after :meth:`choose`.
    skipped: int
    #: Whether old mail is read first at its own dates (``poll --once --backfill``); known
    #: after :meth:`choose`.
    backfilled: bool
    #: A message larger than this (bytes) comes ``too_large``: its header alone.
    size_limit: int
    #: How many messages to read, at least, between two :meth:`settle`.
    batch_size: int

    def choose(self, rule: OldMailRule, backfill: timedelta | None) -> None:
        """Decide which messages to read and when each is read: new mail at the reading's
        ``now``; mail that was there at the first start and is old (``rule``) left alone; with
        ``backfill``, old mail (and anything earlier never handled) whose own date is within
        ``backfill`` of ``now`` first, oldest first, each at its own date."""

    def __iter__(self) -> Iterator[Incoming]:
        """The chosen messages in order; a message gone meanwhile is left out."""

    def __len__(self) -> int:
        """How many messages :meth:`choose` chose (those gone meanwhile included)."""

    def settle(self, handled: Sequence[int], failed: Sequence[int]) -> str:
        """Mark messages whose effects are committed as handled and file those that could not
        be understood in the error folder (never deleting anything); the new cursor: read up
        to the last message given."""

    def finish(self, handled: Sequence[int], failed: Sequence[int]) -> str:
        """:meth:`settle` at the end of the reading: when every chosen message was given,
        everything up to the newest message seen is decided (read, left alone as old, or
        handled by an earlier state) and the cursor moves past it; after a stop mid-way it
        stays before the first message not given."""


class MailSource(SentFolder, Protocol):
    """The assistant's mailbox: readings from a cursor, news, waiting, and its Sent folder."""

    @property
    def pushes(self) -> bool:
        """Whether :meth:`wait_for_news` ends when mail arrives (IMAP IDLE); else the engine
        polls."""

    def read(self, cursor: str | None, now: datetime, *, readonly: bool = False,
             fresh: bool = False) -> Reading:
        """Open the folder and the reading of what came after ``cursor`` (None: the first
        reading, which records the first start at ``now``). ``readonly``: a dry run, which
        changes nothing in the mailbox. ``fresh``: the state has never handled a message (the
        first start then says that mail handled by an earlier state is left alone)."""

    def has_news(self, cursor: str | None) -> bool:
        """Whether mail may have arrived past ``cursor`` since the source was last read, so
        that a wait begun next misses nothing."""

    def wait_for_news(self, seconds: float, asked: Callable[[], bool]) -> str:
        """Wait up to ``seconds`` for new mail, ending early when ``asked()`` turns true (a
        stop or reload); returns why it ended."""


@dataclass(frozen=True)
class ImapCursor:
    """What an IMAP cursor holds: the folder's UIDVALIDITY and the last UID read (None and 0
    before the first message is read) and the first-start record (None for a state that read
    the folder before first starts were recorded)."""

    uidvalidity: int | None
    last_uid: int
    first_start: FirstStart | None = None

    def text(self) -> str:
        where = "-" if self.uidvalidity is None else f"{self.uidvalidity}:{self.last_uid}"
        start = self.first_start
        if start is None:
            return where
        return f"{where} first {start.at.isoformat()} {start.uidvalidity}:{start.boundary}"

    @classmethod
    def parse(cls, text: str | None) -> ImapCursor:
        if not text:
            return cls(None, 0)
        where, *rest = text.split()
        start = None
        if rest[:1] == ["first"] and len(rest) == 3:
            validity, _colon, boundary = rest[2].partition(":")
            start = FirstStart(datetime.fromisoformat(rest[1]), int(validity), int(boundary))
        if where == "-":
            return cls(None, 0, start)
        validity, _colon, last = where.rpartition(":")
        return cls(int(validity), int(last or 0), start)


#: Why :meth:`MailSource.wait_for_news` ended when its time was up (no news, no request).
TIMED_OUT = "time to act (a due action, or IDLE renewal)"


def imap_cursor(position: tuple[int, int] | None) -> str | None:
    """The cursor of a folder read up to ``(uidvalidity, last_uid)``; None before the first."""
    return None if position is None else ImapCursor(position[0], position[1]).text()


def imap_position(cursor: str | None) -> tuple[int, int] | None:
    """``(uidvalidity, last_uid)`` of an IMAP ``cursor``; None before the first reading."""
    parsed = ImapCursor.parse(cursor)
    return None if parsed.uidvalidity is None else (parsed.uidvalidity, parsed.last_uid)


def last_uid(cursor: str | None) -> int:
    """The last UID read according to an IMAP ``cursor`` (0 before the first)."""
    return ImapCursor.parse(cursor).last_uid


@dataclass(frozen=True)
class Choice:
    """Which messages a reading gives, in order, each with the time it is read at."""

    when: dict[int, datetime]
    backfilled: bool


def choose(
    folder: str, candidates: Sequence[int], judged: Sequence[int], earlier: Sequence[int],
    dates: Mapping[int, Dates], start: FirstStart | None, now: datetime, rule: OldMailRule,
    backfill: timedelta | None, announce: bool,
) -> Choice:
    """The order and times of a reading, the same for every source.

    ``candidates``: the new messages not handled by any state, in order; ``judged``: those of
    them that may have been in the folder at the first ``start``; ``earlier``: messages before
    the cursor never handled (asked for a backfill only); ``dates``: the arrival and ``Date``
    of ``judged`` and ``earlier``. Old mail (``rule.is_old``) is left alone and logged once
    (when ``announce``, or with a backfill); with ``backfill``, old and earlier mail whose own
    date is within it is read first, oldest first, each at its own date."""
    old = {u for u in judged if start is not None and u in dates
           and rule.is_old(dates[u].arrival, dates[u].written, start.cutoff)}
    backfilled: dict[int, datetime] = {}
    if backfill is not None:
        for uid in sorted(old | set(earlier)):
            if uid in dates:
                when = rule.own_date(dates[uid].arrival, dates[uid].written, now)
                if when >= now - backfill:
                    backfilled[uid] = when
    left = sorted(old - set(backfilled))
    if left and (announce or backfill is not None):
        times = [rule.own_date(dates[u].arrival, dates[u].written, now) for u in left]
        log.info("%s", rule.left_alone_line(folder, len(left), min(times), max(times)),
                 extra=logfields.message(folder=folder))
    if backfilled:
        log.info("%s: backfill: reading %d older message(s) from the last %s, each at its "
                 "own date", folder, len(backfilled), backfill,
                 extra=logfields.message(folder=folder))
    order = dict(sorted(backfilled.items(), key=lambda item: (item[1], item[0])))
    order.update((u, now) for u in candidates if u not in old)
    return Choice(order, bool(backfilled))


class FolderReading:
    """A :class:`Reading` of a folder whose messages have rising numbers (IMAP's UIDs, a list's
    positions): the order, the old-mail rule and the end of a reading are the same for every
    such source, which supplies how its messages are looked up (the ``_`` methods).

    ``new``: the ids after the cursor; ``last``: the last id read (0 when the cursor says
    nothing of this folder); ``newest``: the highest id the folder had when opened (0:
    unknown); ``generation``: what the first start's ids belong to (IMAP's UIDVALIDITY)."""

    def __init__(self, *, folder: str, now: datetime, cursor: str | None, new: Sequence[int],
                 last: int, newest: int, start: FirstStart | None, generation: int,
                 announce: bool, size_limit: int, batch_size: int) -> None:
        self.folder = folder
        self.now = now
        self.cursor = cursor
        self.skipped = 0
        self.backfilled = False
        self.size_limit = size_limit
        self.batch_size = batch_size
        self._new = list(new)
        self._last = last
        self._newest = newest
        self._start = start
        self._generation = generation
        self._announce = announce
        self._when: dict[int, datetime] = {}
        self._reached: set[int] = set()
        self._highest = last

    # -- what a source supplies --
    def _flagged(self, ids: Sequence[int]) -> set[int]:
        """Those of ``ids`` some state (this one, or an earlier one) handled."""
        raise NotImplementedError

    def _unhandled_upto(self, last: int) -> list[int]:
        """Ids from the first to ``last`` never handled."""
        raise NotImplementedError

    def _dates(self, ids: Sequence[int]) -> dict[int, Dates]:
        """Each message's arrival and ``Date``; an id gone meanwhile is absent."""
        raise NotImplementedError

    def _fetch(self, ids: Sequence[int]) -> Iterator[tuple[int, bytes, int, bool]]:
        """(id, bytes, size, too large) of each message in order; one gone is left out."""
        raise NotImplementedError

    def _mark(self, handled: Sequence[int], failed: Sequence[int]) -> None:
        """Mark ``handled`` as handled and file ``failed`` in the error folder."""
        raise NotImplementedError

    def _text(self, highest: int) -> str:
        """The cursor of the folder read up to ``highest``."""
        raise NotImplementedError

    # -- the reading --
    def choose(self, rule: OldMailRule, backfill: timedelta | None) -> None:
        flagged = self._flagged(self._new)
        candidates = [u for u in self._new if u not in flagged]
        start = self._start
        judged = [u for u in candidates
                  if start is not None and start.was_there(u, self._generation)]
        earlier = self._unhandled_upto(self._last) if backfill is not None else []
        dates = self._dates(sorted(set(judged) | set(earlier))) if judged or earlier else {}
        chosen = choose(self.folder, candidates, judged, earlier, dates, start, self.now, rule,
                        backfill, self._announce)
        self._when, self.backfilled, self.skipped = chosen.when, chosen.backfilled, len(flagged)
        if chosen.when or flagged:
            log.info("%s: %d new message(s)", self.folder, len(chosen.when) + len(flagged),
                     extra=logfields.message(folder=self.folder))

    def __len__(self) -> int:
        return len(self._when)

    def __iter__(self) -> Iterator[Incoming]:
        for number, raw, size, too_large in self._fetch(list(self._when)):
            self._reached.add(number)
            yield Incoming(number, raw, self._when[number], size, too_large)

    def settle(self, handled: Sequence[int], failed: Sequence[int]) -> str:
        self._highest = max([self._highest, *handled, *failed])
        self._mark(handled, failed)
        return self._text(self._highest)

    def finish(self, handled: Sequence[int], failed: Sequence[int]) -> str:
        # Every id up to the first one not given (a stop mid-way) is decided: read, left
        # alone as old, or handled by an earlier state. Without this the cursor would stay
        # below them and a later reading would look at them again.
        unreached = [u for u in self._when if u not in self._reached and u > self._last]
        if not unreached:
            self._highest = max([self._highest, *handled, *failed, *self._new, self._newest])
        return self.settle(handled, failed)


class ImapSource:
    """A :class:`MailSource` over one logged-in :class:`~mailhelper.mail.mailbox.Mailbox` (its
    ``folder`` is the one read), with the folders of ``imap`` in the config (``folders``). The
    Sent folder is ``sent_folder`` if configured, else the one flagged ``\\Sent``, else
    ``Sent``, found (or created) when first needed."""

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

    def read(self, cursor: str | None, now: datetime, *, readonly: bool = False,
             fresh: bool = False) -> Reading:
        """SELECT (EXAMINE when ``readonly``) the folder and find the UIDs after the cursor's;
        after a UIDVALIDITY change every UID is read again (what was handled is recognised
        by the engine and skipped). The first reading records the first start: now, the
        UIDVALIDITY and UIDNEXT."""
        mailbox = self.mailbox
        folder = mailbox.folder
        try:
            state = mailbox.select(folder, readonly=readonly)
        except IMAPClientAbortError:
            raise  # the connection, not the folder
        except IMAPClientError as exc:
            raise ConnectError(f"IMAP: cannot open the folder {folder!r} (imap.folder): "
                               f"{exc}") from exc
        was = ImapCursor.parse(cursor)
        last = 0
        if was.uidvalidity is not None:
            if was.uidvalidity == state.uidvalidity:
                last = was.last_uid
            else:
                log.warning(
                    "%s: UIDVALIDITY changed (%d -> %d): reading the folder again; messages "
                    "already handled are recognised and skipped", folder, was.uidvalidity,
                    state.uidvalidity,
                )
        uids = mailbox.new_uids(state, last)
        start = was.first_start
        first = was.uidvalidity is None and start is None
        if first:
            if state.exists and fresh:
                log.info("%s: a new state file: messages flagged as handled by an earlier one "
                         "are left alone", folder)
            start = FirstStart(now, state.uidvalidity, state.uidnext or (max(uids, default=0) + 1))
            cursor = ImapCursor(None, 0, start).text()  # holds for every later reading
        return _ImapReading(self, folder=folder, now=now, cursor=cursor, new=uids,
                            last=last, newest=max(state.uidnext - 1, 0), start=start,
                            generation=state.uidvalidity,
                            announce=first or was.uidvalidity != state.uidvalidity,
                            size_limit=mailbox.max_message_bytes,
                            batch_size=mailbox.batch_size)

    def mark(self, handled: Sequence[int], failed: Sequence[int]) -> None:
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


class _ImapReading(FolderReading):
    """A reading of the selected folder: UID SEARCHes and FETCHes of :class:`Mailbox`."""

    def __init__(self, source: ImapSource, **fields: Any) -> None:
        super().__init__(**fields)
        self._source = source

    def _flagged(self, ids: Sequence[int]) -> set[int]:
        return self._source.mailbox.flagged_among(ids)

    def _unhandled_upto(self, last: int) -> list[int]:
        return self._source.mailbox.unhandled_upto(last)

    def _dates(self, ids: Sequence[int]) -> dict[int, Dates]:
        return self._source.mailbox.dates(ids)

    def _fetch(self, ids: Sequence[int]) -> Iterator[tuple[int, bytes, int, bool]]:
        for message in self._source.mailbox.fetch(ids):
            yield message.uid, message.raw, message.size, message.too_large

    def _mark(self, handled: Sequence[int], failed: Sequence[int]) -> None:
        self._source.mark(handled, failed)

    def _text(self, highest: int) -> str:
        return ImapCursor(self._generation, highest, self._start).text()


if TYPE_CHECKING:  # mypy holds the IMAP source to the interface; nothing runs here
    def _imap_plays_the_role(source: ImapSource, reading: _ImapReading) -> tuple[
            MailSource, Reading]:
        return source, reading
