"""IMAP: what the assistant does with its mailbox, on an already connected imapclient.

Extensions are used when offered and never required: MOVE (else COPY + \\Deleted + expunge,
UID EXPUNGE where UIDPLUS is there), SPECIAL-USE (else a folder named ``Sent``), IDLE (else the
caller polls). Messages are fetched with ``BODY.PEEK[]`` so nothing is marked seen by accident.

Reading new mail costs one SELECT when nothing arrived: SELECT's UIDNEXT (RFC 3501 6.3.1, a
required response) already says whether any UID above the last one read exists, so no SEARCH
or FETCH is sent. CONDSTORE's HIGHESTMODSEQ would add news of flag changes, which the assistant
does not act on, so it is not asked for.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from mailhelper.mail.uidset import uid_sets
from mailhelper.model import logfields

log = logging.getLogger(__name__)

#: The keyword set on a message once its effects are committed.
HANDLED_FLAG = b"$MailhelperHandled"
SENT_FLAG = b"\\Sent"

#: Mail above this size (RFC822.SIZE) is not downloaded: only its header is read, and it goes
#: to the error folder as too large. Asks, offers, replies and commands are small; a message
#: this big is an attachment nobody needs the assistant to read.
MAX_MESSAGE_BYTES = 25 * 1024 * 1024
#: One FETCH asks for at most this many bytes of bodies (and at most ``batch_size`` messages),
#: so memory stays bounded however long the backlog and however big each message.
BATCH_BYTES = 8 * 1024 * 1024

#: Header fields a relay or the delivering server adds on the way (RFC 5321 4.4, RFC 5322
#: 3.6.7, common MTA practice). Two deliveries of one message differ only in these.
TRACE_FIELDS = frozenset({
    "received", "return-path", "delivered-to", "x-original-to", "envelope-to",
    "x-envelope-to", "x-delivered-to", "x-received", "authentication-results",
    "arc-authentication-results", "arc-message-signature", "arc-seal", "received-spf",
    "x-spam-status", "x-spam-score", "x-spam-flag", "x-spam-level", "x-spam-checker-version",
    "x-virus-scanned", "x-original-recipient", "x-rcpt-to", "status", "x-status", "x-uid",
    "x-keywords", "x-mozilla-status", "x-mozilla-status2", "lines", "content-length",
})


#: How much of a header :func:`_lines` splits at a time.
_CHUNK = 256 * 1024


#: The trace field names as bytes, as header lines are read (ASCII only: no other byte of a
#: name can match one).
_TRACE_NAMES = frozenset(name.encode() for name in TRACE_FIELDS)
#: How many lines go to the hash in one update.
_HASH_GROUP = 4096


def _lines(head: bytes) -> Iterator[bytes]:
    """``head.replace(b"\\r\\n", b"\\n").split(b"\\n")``, split a chunk at a time: the
    list of every line of a 24 MB header of short lines took 400 MB. Chunks end after a line
    feed, so no CRLF is cut in two and the lines are the same."""
    start = 0
    while len(head) - start > _CHUNK:
        end = head.find(b"\n", start + _CHUNK) + 1
        if end == 0:
            break
        lines = head[start:end].replace(b"\r\n", b"\n").split(b"\n")
        lines.pop()  # the empty string after the chunk's last line feed
        yield from lines
        start = end
    yield from head[start:].replace(b"\r\n", b"\n").split(b"\n")


def content_key(raw: bytes) -> str:
    """A SHA-256 of the message as its author sent it: trace fields left out, so a redelivery
    or a second copy of mail without a Message-ID is still recognised.

    >>> a = b"From: a@b\\r\\nSubject: hi\\r\\n\\r\\nbody\\r\\n"
    >>> content_key(b"Received: from x\\r\\nDelivered-To: me@c\\r\\n" + a) == content_key(a)
    True
    """
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = raw.partition(b"\n\n")
    digest = hashlib.sha256()
    # Each kept line is hashed as it stands, stripped, with a line feed after it; the lines go
    # to the hash in groups (one update a line cost most of a second on 3 million lines).
    pieces: list[bytes] = []
    keep = True
    for line in _lines(head):
        first = line[:1]
        if first == b" " or first == b"\t":
            if not keep:
                continue
            pieces.append(line.strip())  # a folded continuation
        else:
            keep = line.partition(b":")[0].strip().lower() not in _TRACE_NAMES
            if not keep:
                continue
            pieces.append(line.rstrip())
        if len(pieces) >= _HASH_GROUP:
            digest.update(b"\n".join(pieces) + b"\n")
            pieces.clear()
    if pieces:
        digest.update(b"\n".join(pieces) + b"\n")
    digest.update(b"\n")
    for piece in _lf_pieces(body):
        digest.update(piece)
    return digest.hexdigest()


def _lf_pieces(body: bytes) -> Iterator[bytes]:
    """``body.replace(b"\\r\\n", b"\\n")`` in pieces of about :data:`_CHUNK` bytes, each cut
    after a line feed (so no CRLF is cut in two), each piece split at its CRLFs and joined
    with LFs: one pass where ``replace`` makes two (it counts first), and no copy of a whole
    big body at once."""
    start = 0
    while len(body) - start > _CHUNK:
        end = body.find(b"\n", start + _CHUNK) + 1
        if end == 0:
            break
        yield b"\n".join(body[start:end].split(b"\r\n"))
        start = end
    yield b"\n".join(body[start:].split(b"\r\n"))


@dataclass(frozen=True)
class FolderState:
    name: str
    uidvalidity: int
    uidnext: int
    exists: int
    keywords: bool = True  # PERMANENTFLAGS allows new keywords (\*, RFC 3501 7.1)


@dataclass(frozen=True)
class Dates:
    """What tells whether a message is old mail: its arrival (INTERNALDATE) and its ``Date``
    header, either None when missing."""

    arrival: datetime | None
    written: datetime | None


@dataclass(frozen=True)
class Fetched:
    """One message read from the folder: all of it, or only its header when ``too_large``."""

    uid: int
    raw: bytes
    size: int
    too_large: bool = False


class Mailbox:
    """One logged-in IMAP connection and the folder it works on."""

    def __init__(
        self,
        client: IMAPClient,
        folder: str = "INBOX",
        batch_size: int = 200,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        batch_bytes: int = BATCH_BYTES,
    ) -> None:
        self.client = client
        self.folder = folder
        self.batch_size = batch_size
        self.max_message_bytes = max_message_bytes
        self.batch_bytes = batch_bytes
        self.capabilities = {c.upper() for c in client.capabilities()}
        self._selected: str | None = None
        self._kept: tuple[FolderState, bool] | None = None  # the open folder and its mode
        self._keywords = True
        #: Called before each FETCH of :meth:`fetch` (the engine renews a mailbox's lease
        #: there, so a backlog read in many batches keeps it, and a lost one stops the
        #: reading before the next FETCH); None: nothing.
        self.before_fetch: Callable[[], None] | None = None

    def has(self, capability: str) -> bool:
        return capability.upper().encode() in self.capabilities

    def select(self, folder: str | None = None, readonly: bool = False) -> FolderState:
        """Open ``folder``. When it is already open in the same mode (the daemon's next cycle
        on the same connection), a NOOP stands in for the SELECT: re-selecting a large
        read-write folder makes the server close and reopen it (tens of milliseconds at
        100,000 messages), while NOOP brings the same news of new mail. UIDNEXT is then
        unknown, so :meth:`new_uids` asks with one UID SEARCH."""
        name = folder or self.folder
        kept = self._kept
        if kept is not None and kept[0].name == name and kept[1] == readonly:
            refreshed = self._refresh(kept[0])
            if refreshed is not None:
                return refreshed
        info = self.client.select_folder(name, readonly=readonly)
        self._announced_news()  # SELECT's own EXISTS is the count, not news
        self._selected = name
        permanent = info.get(b"PERMANENTFLAGS")
        # A server that names no PERMANENTFLAGS allows every flag (RFC 3501 7.1).
        self._keywords = permanent is None or b"\\*" in tuple(permanent)
        state = FolderState(
            name=name,
            uidvalidity=int(info.get(b"UIDVALIDITY", 0)),
            uidnext=int(info.get(b"UIDNEXT", 0) or 0),
            exists=int(info.get(b"EXISTS", 0)),
            keywords=self._keywords,
        )
        self._kept = (state, readonly)
        return state

    def _refresh(self, state: FolderState) -> FolderState | None:
        """The open folder's state after a NOOP; None when only a SELECT can tell (messages
        were expunged, or the server said something unexpected)."""
        _text, responses = self.client.noop()
        self._announced_news()  # what this NOOP announced is what the search then finds
        for response in responses:
            if isinstance(response, tuple) and len(response) > 1:
                if response[1] in (b"EXPUNGE", b"VANISHED"):
                    return None
            elif response and not isinstance(response, tuple):
                return None
        # The count of messages is not known here: an EXISTS may have come in an earlier
        # response (IDLE's, a FETCH's) and been used up. Saying "some" makes new_uids search.
        return FolderState(name=state.name, uidvalidity=state.uidvalidity, uidnext=0,
                           exists=max(state.exists, 1), keywords=self._keywords)

    def has_news(self, last_uid: int) -> bool:
        """Whether mail above ``last_uid`` may have arrived since the folder was last looked
        at (:meth:`select`), checked so that an IDLE issued next misses nothing.

        A server announces a new message once, with ``* n EXISTS`` at the end of whatever
        command it answers next, and IDLE (RFC 2177) does not repeat it. imapclient hands each
        command only the responses it asked for, so an EXISTS that came with a FETCH, a STORE
        or a SEARCH would be lost, and the message would wait for the next IDLE renewal (up to
        25 minutes): Dovecot's UID SEARCH answers from the view before the new message and
        announces it afterwards. So every EXISTS since the look counts, and a NOOP asks for
        anything still unannounced; a message arriving after the NOOP is announced by IDLE.
        """
        if self._announced_news():
            return True
        _text, responses = self.client.noop()
        self._announced_news()
        if any(isinstance(r, tuple) and len(r) > 1 and r[1] in (b"EXISTS", b"RECENT")
               for r in responses):
            return True
        if self._stash() is not None:
            return False
        # No access to what earlier commands announced: ask, as well as a search can tell.
        return any(int(uid) > last_uid for uid in self.client.search(["UID", f"{last_uid + 1}:*"]))

    def _stash(self) -> dict[str, list[bytes]] | None:
        """imaplib's record of untagged responses (``IMAP4.untagged_responses``, read through
        its public ``response()`` below), under imapclient; None where it cannot be reached."""
        stash = getattr(getattr(self.client, "_imap", None), "untagged_responses", None)
        return stash if isinstance(stash, dict) else None

    def _announced_news(self) -> bool:
        """Whether an EXISTS was announced since the last call (and forget it)."""
        if self._stash() is None:
            return False
        _name, counts = self.client._imap.response("EXISTS")  # pops it from the stash
        return bool(counts and counts != [None])

    def new_uids(self, state: FolderState, last_uid: int) -> list[int]:
        """UIDs above ``last_uid``. With UIDNEXT known and nothing new, no command is sent.

        Mail carrying the handled keyword is among them: :meth:`flagged_among` tells it apart.
        """
        if state.uidnext and state.uidnext <= last_uid + 1:
            return []
        if state.exists == 0:
            return []
        uids = self.client.search(["UID", f"{last_uid + 1}:*"])
        # "n:*" always matches the highest UID, even one below n (RFC 3501 6.4.8).
        return sorted(int(u) for u in uids if int(u) > last_uid)

    def flagged_among(self, uids: Sequence[int]) -> set[int]:
        """Those of ``uids`` that carry the handled keyword: some state file (this one, or an
        earlier one that was lost) acted on them, so they are never acted on again. One UID
        SEARCH, and none when ``uids`` is empty. The keyword is searched for whatever
        PERMANENTFLAGS said: a read-only EXAMINE (a dry run) reports none, and the dry run
        must skip exactly what the real poll skips."""
        if not uids:
            return set()
        found = self.client.search(["UID", f"{min(uids)}:{max(uids)}", "KEYWORD",
                                    HANDLED_FLAG])
        wanted = set(uids)
        return {int(u) for u in found if int(u) in wanted}

    def unhandled_upto(self, last_uid: int) -> list[int]:
        """UIDs from 1 to ``last_uid`` without the handled keyword: the mail a backfill may
        read (what was left alone as old, or never flagged)."""
        if last_uid <= 0:
            return []
        uids = self.client.search(["UID", f"1:{last_uid}", "UNKEYWORD", HANDLED_FLAG])
        return sorted(int(u) for u in uids if int(u) <= last_uid)

    def dates(self, uids: Sequence[int]) -> dict[int, Dates]:
        """Each message's arrival (INTERNALDATE, RFC 3501 2.3.3) and ``Date`` header; a UID
        expunged meanwhile is absent. Only that header field is fetched."""
        out: dict[int, Dates] = {}
        wanted = [b"INTERNALDATE", b"BODY.PEEK[HEADER.FIELDS (DATE)]"]
        # Imported here: the reading modules cost a no-news poll (cron's) a few tens of
        # milliseconds, and only this path, old mail at a first start, needs one of them.
        from mailhelper.read.parse import written_at

        normalise = self.client.normalise_times
        self.client.normalise_times = False  # keep the server's offset: an aware time
        try:
            for start in range(0, len(uids), self.batch_size):
                chunk = list(uids[start : start + self.batch_size])
                for uid, data in self.client.fetch(chunk, wanted).items():
                    arrival = data.get(b"INTERNALDATE")
                    if not isinstance(arrival, datetime):
                        arrival = None
                    elif arrival.tzinfo is None:
                        arrival = arrival.replace(tzinfo=UTC)
                    header = data.get(b"BODY[HEADER.FIELDS (DATE)]")
                    out[int(uid)] = Dates(
                        arrival, written_at(header if isinstance(header, bytes) else None))
        finally:
            self.client.normalise_times = normalise
        return out

    def fetch(self, uids: Sequence[int]) -> Iterator[Fetched]:
        """The messages in UID order, in batches bounded in count and bytes.

        RFC822.SIZE is fetched first; a message above ``max_message_bytes`` is not downloaded
        (only ``BODY.PEEK[HEADER]``, to know what it was) and comes back ``too_large``. A UID
        expunged meanwhile is skipped.
        """
        from mailhelper.mail import fetchparse  # imported here, as in dates(): not for a cron poll

        for start in range(0, len(uids), self.batch_size):
            chunk = list(uids[start : start + self.batch_size])
            self._before_fetch()
            sizes = fetchparse.sizes(self.client, chunk)
            group: list[int] = []
            group_bytes = 0
            for uid in chunk:
                size = sizes.get(uid)
                if size is None:
                    continue  # expunged meanwhile
                if size > self.max_message_bytes:
                    yield from self._bodies(group, sizes)
                    group, group_bytes = [], 0
                    yield from self._header_only(uid, size)
                    continue
                if group and group_bytes + size > self.batch_bytes:
                    yield from self._bodies(group, sizes)
                    group, group_bytes = [], 0
                group.append(uid)
                group_bytes += size
            yield from self._bodies(group, sizes)

    def _bodies(self, group: list[int], sizes: dict[int, int]) -> Iterator[Fetched]:
        if not group:
            return
        from mailhelper.mail import fetchparse  # see fetch()

        self._before_fetch()
        response = fetchparse.bodies(self.client, group)
        for uid in group:
            raw = response.get(uid)
            if raw is not None:
                yield Fetched(uid, raw, sizes.get(uid, len(raw)))

    def _before_fetch(self) -> None:
        if self.before_fetch is not None:
            self.before_fetch()

    def _header_only(self, uid: int, size: int) -> Iterator[Fetched]:
        self._before_fetch()
        response = self.client.fetch([uid], [b"BODY.PEEK[HEADER]"])
        header = response.get(uid, {}).get(b"BODY[HEADER]")
        if isinstance(header, bytes):
            yield Fetched(uid, header, size, too_large=True)

    def mark_handled(self, uids: Sequence[int]) -> None:
        """Set the handled keyword; ``\\Seen`` only where the folder takes no keywords, so
        the owner's own mail client still shows what nobody has looked at. One STORE for each
        of :func:`~mailhelper.mail.uidset.uid_sets` (usually one range)."""
        for uid_set in uid_sets(uids):
            if self._keywords:
                try:
                    self.client.add_flags(uid_set, [HANDLED_FLAG], silent=True)
                    continue
                except IMAPClientError as exc:
                    log.debug("keyword refused (%s); setting \\Seen instead", exc)
                    self._keywords = False
            self.client.add_flags(uid_set, [b"\\Seen"], silent=True)

    def ensure_folder(self, name: str) -> None:
        if not self.client.folder_exists(name):
            self.client.create_folder(name)
            with contextlib.suppress(IMAPClientError):
                self.client.subscribe_folder(name)
            log.info("created folder %s", name, extra=logfields.message(folder=name))

    def move(self, uids: Sequence[int], folder: str) -> None:
        """Move messages out of the selected folder; never deletes anything else.

        MOVE (RFC 6851) where offered; else COPY, ``\\Deleted`` and UID EXPUNGE of exactly
        these UIDs (RFC 4315); without UIDPLUS they stay flagged ``\\Deleted``, because a
        plain EXPUNGE would also remove what someone else marked deleted.
        """
        if not uids:
            return
        self.ensure_folder(folder)
        for uid_set in uid_sets(uids):  # usually one range
            if self.has("MOVE"):
                self.client.move(uid_set, folder)
                continue
            self.client.copy(uid_set, folder)
            self.client.add_flags(uid_set, [b"\\Deleted"], silent=True)
            if self.has("UIDPLUS"):
                self.client.uid_expunge(uid_set)
            else:
                log.warning("server lacks UIDPLUS: moved messages left flagged \\Deleted in %s",
                            self._selected, extra=logfields.message(folder=self._selected))

    def sent_folder(self, configured: str | None) -> str:
        """The configured Sent folder, else the one flagged \\Sent, else ``Sent`` (created)."""
        if configured:
            self.ensure_folder(configured)
            return configured
        try:
            found = self.client.find_special_folder(SENT_FLAG)
        except IMAPClientError:
            found = None
        if found:
            return str(found)
        self.ensure_folder("Sent")
        return "Sent"

    def append(self, folder: str, raw: bytes, when: datetime | None = None) -> None:
        self.client.append(folder, raw, flags=[b"\\Seen"], msg_time=when)

    def contains_message_id(self, folder: str, message_id: str) -> bool:
        """True when ``folder`` holds a message with this Message-ID (angle brackets optional)."""
        wanted = message_id if message_id.startswith("<") else f"<{message_id}>"
        previous = self._selected
        try:
            self.client.select_folder(folder, readonly=True)
            self._selected = folder
            self._kept = None
            return bool(self.client.search(["HEADER", "Message-ID", wanted]))
        finally:
            if previous and previous != folder:
                self.select(previous)

    def idle_wait(self, timeout: float) -> bool:
        """Wait in IDLE up to ``timeout`` seconds; True when the server reported new mail."""
        self.client.idle()
        try:
            responses = self.client.idle_check(timeout=timeout)
        finally:
            self.client.idle_done()
        return any(isinstance(r, tuple) and len(r) > 1 and r[1] in (b"EXISTS", b"RECENT")
                   for r in responses)

    def logout(self) -> None:
        try:
            self.client.logout()
        except Exception:
            with contextlib.suppress(Exception):
                self.client.shutdown()
