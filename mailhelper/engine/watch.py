"""Watching an owner's own mailbox, read-only, to learn what happened in tracked threads.

With ``owners[].watch`` the assistant also looks at the owner's INBOX and Sent folder (SPEC.md
"answers seen anywhere"). It learns three things, and only about threads it already tracks:

* a counterpart's message in the owner's mailbox: that counterpart answered
  (:class:`~mailhelper.decide.events.CounterpartReply`, as if it had come in Cc);
* the owner's message to a counterpart before the answer: the owner's own follow-up
  (:class:`~mailhelper.decide.events.OwnerFollowUp`; the next reminder counts from it);
* the owner's message to a counterpart after the answer: a thank-you by hand
  (:class:`~mailhelper.decide.events.OwnerThanked`; no thank-you draft comes).

What it does on the server, and nothing else (README "Watching your own mailbox"):

* ``STATUS (MESSAGES UIDNEXT UIDVALIDITY)`` on each watched folder, every cycle: one command
  per folder when nothing arrived (RFC 3501 6.3.10; STATUS never opens the folder);
* when something did: ``EXAMINE`` (the read-only SELECT, RFC 3501 6.3.2), then
  ``UID FETCH (INTERNALDATE BODY.PEEK[HEADER.FIELDS (...)])`` of the new UIDs: a few header
  fields, never the body. The first look (or the first after UIDVALIDITY changed) reads only
  what arrived since the oldest unfinished thread began (``UID SEARCH SINCE``);
* for a message that belongs to a tracked thread, and only then: its first
  :data:`BODY_PEEK_BYTES` bytes by ``BODY.PEEK[]<0.n>``, for the excerpt the drafts quote.

No flag is ever set (every fetch is a PEEK, on an EXAMINEd folder), nothing is moved, copied,
appended or deleted, and the watch never makes the assistant write to anyone new: its events
go through :func:`mailhelper.decide.plan.apply` like those of the assistant's own inbox. Mail that
belongs to no tracked thread is counted and forgotten: not stored, not logged.

Faults (unreachable, login refused, a folder missing) never stop the assistant's own work:
each is logged once per change of state, retried with backoff, and shown by ``status``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from mailhelper.decide.events import CounterpartReply, OwnerFollowUp, OwnerThanked
from mailhelper.engine import tracker
from mailhelper.mail.connect import LoginRefused, TlsFailed, open_imap
from mailhelper.mail.source import ImapCursor, imap_position
from mailhelper.model.errors import ConnectError, MailhelperError, StateError
from mailhelper.model.kinds import KINDS, AnsweredBy
from mailhelper.model.settings import ImapSettings, Settings, WatchSettings
from mailhelper.model.values import CLOSED_STATES, Address, Mail, Thread, ThreadState
from mailhelper.state.store import Store

log = logging.getLogger(__name__)

#: The header fields read of each new message: the thread's ids, who wrote to whom, when,
#: and the signs of machine-made mail (an out-of-office is never an answer).
HEADER_FIELDS = (
    "MESSAGE-ID IN-REPLY-TO REFERENCES FROM TO CC SUBJECT DATE AUTO-SUBMITTED X-AUTOREPLY "
    "X-AUTORESPOND PRECEDENCE LIST-ID CONTENT-TYPE"
)
_HEADER_ITEM = f"BODY.PEEK[HEADER.FIELDS ({HEADER_FIELDS})]".encode()
_HEADER_KEY = f"BODY[HEADER.FIELDS ({HEADER_FIELDS})]".encode()
#: How much of a tracked thread's message is read for the excerpt the drafts quote.
BODY_PEEK_BYTES = 64 * 1024
#: New messages asked for per FETCH.
BATCH = 500
#: Backoff between attempts on a watched mailbox that is down: the first wait and the cap.
RETRY_FIRST = timedelta(seconds=60)
RETRY_CAP = timedelta(hours=1)
#: The folder used when the server flags none ``\Sent`` (RFC 6154).
SENT_FALLBACK = "Sent"


# -- what the headers say (pure) -------------------------------------------------------------
class WatchIndex(Protocol):
    """The questions the watch asks of what the assistant knows (the store)."""

    def thread_for(self, message_ids: tuple[str, ...]) -> Thread | None: ...

    def thread_by_subject(self, subject: str, participant: str) -> Thread | None: ...

    def is_participant(self, email: str) -> bool: ...


_ANGLED = re.compile(rb"<([^<>\s]{1,998})>")
_ADDRESS = re.compile(rb"[A-Za-z0-9._%+'=-]{1,64}@[A-Za-z0-9.-]{1,255}")


def may_concern_tracked(header: bytes, index: WatchIndex) -> bool:
    """Whether a message's header fields could be about a tracked thread: they name a
    Message-ID some thread has seen, or an address that is a counterpart of some thread.
    Only such mail is parsed at all; the rest is counted and forgotten. A cheap, generous
    look (any ``<...>`` and any address-like word count): :func:`learn` decides.

        >>> class Nobody:
        ...     def thread_for(self, ids): return None
        ...     def thread_by_subject(self, subject, who): return None
        ...     def is_participant(self, email): return email == "jane@example.org"
        >>> may_concern_tracked(b"From: Shop <news@shop.test>\\r\\n\\r\\n", Nobody())
        False
        >>> may_concern_tracked(b"From: Jane <Jane@Example.org>\\r\\n\\r\\n", Nobody())
        True
    """
    ids = tuple(dict.fromkeys(m.decode("ascii", "replace") for m in _ANGLED.findall(header)))
    if ids and index.thread_for(ids[:200]) is not None:
        return True
    emails = {m.decode("ascii", "replace").lower().rstrip(".") for m in _ADDRESS.findall(header)}
    return any(index.is_participant(e) for e in sorted(emails)[:200])


Learned = CounterpartReply | OwnerFollowUp | OwnerThanked
"""The events the watch can produce."""


def learn(mail: Mail, owner: Address, settings: Settings, index: WatchIndex,
          when: datetime) -> Learned | None:
    """What a message in the owner's own mailbox tells about a tracked thread, or None.

    ``mail`` holds the header fields only (:data:`HEADER_FIELDS`); ``when`` is when it was
    written or arrived. Matching is by In-Reply-To/References against every Message-ID the
    thread has seen; the subject plus a counterpart's address is the same fallback as for the
    assistant's inbox (an untrusted answer). The owner's mail counts only when it goes to a
    counterpart of the thread; anyone else's only when it is from one. Machine-made mail
    (out-of-office, lists, bounces) is never an answer.

        >>> # see tests/test_watch.py for worked examples of every branch
    """
    # The reading modules are imported at first use: a cycle with nothing new to look at
    # (a cron poll) never needs them, and importing them is most of its start-up.
    from mailhelper.decide.classify import is_assistant_address, is_counterpart
    from mailhelper.read.autoreply import auto_generated

    if mail.from_ is None or not mail.from_.email:
        return None
    sender = mail.from_.email
    if is_assistant_address(sender, settings.assistant):
        return None  # the assistant's own reminders and nudges, delivered to the owner
    if auto_generated(mail) is not None:
        return None
    ids = (*mail.in_reply_to, *mail.references)
    if sender == owner.email:
        recipients = tuple(p for p in (*mail.to, *mail.cc) if p.email != owner.email)
        thread = index.thread_for(ids)
        if thread is None and (ids or mail.clean_subject != mail.subject.strip()):
            # A reply by its headers or its "Re:": the same fallback as the inbox's.
            for person in recipients:
                thread = _by_subject(mail, person.email, settings, index)
                if thread is not None:
                    break
        if thread is None or thread.owner.email != owner.email:
            return None
        written_to = {p.email for p in recipients}
        to_counterparts = [c for c in thread.counterparts if c.email in written_to]
        if not to_counterparts:
            return None
        if KINDS[thread.kind].answered_by is AnsweredBy.COUNTERPARTS:
            # Written to someone after their own answer: a thank-you to them (the first such
            # person on the mail; one event a message).
            for person in to_counterparts:
                answer = thread.answer_from(person.email)
                if answer is not None and when >= answer.at:
                    return OwnerThanked(mail.message_id, thread.id, person)
        if thread.state is ThreadState.OPEN:
            return OwnerFollowUp(mail.message_id, thread.id)
        return None
    if settings.owner_for(sender) is not None:
        return None  # another owner's mail: theirs to tell, through their own watch
    thread = index.thread_for(ids)
    trusted = thread is not None
    if thread is None:
        thread = _by_subject(mail, sender, settings, index)
    if thread is None or thread.owner.email != owner.email or not is_counterpart(sender, thread):
        return None
    return CounterpartReply(mail.message_id, thread.id, mail.from_, by_fallback=not trusted,
                            trusted=trusted)


def _by_subject(mail: Mail, participant: str, settings: Settings,
                index: WatchIndex) -> Thread | None:
    from mailhelper.decide.tags import subject_without_tag

    subject = subject_without_tag(mail.clean_subject, settings.tags).strip()
    return index.thread_by_subject(subject, participant) if subject else None


def first_look_since(threads: Iterable[Thread], owner: str) -> datetime | None:
    """When the oldest unfinished thread of ``owner`` began: the first look at a watched
    folder reads nothing older. None: no such thread, so nothing needs reading."""
    begun = [t.created for t in threads
             if t.owner.email == owner and t.state not in CLOSED_STATES
             and t.state is not ThreadState.DONE]
    return min(begun, default=None)


def retry_after(failures: int) -> timedelta:
    """The wait after ``failures`` failed attempts in a row: 1, 2, 4 ... minutes, at most an hour.

        >>> [int(retry_after(n).total_seconds() // 60) for n in (1, 2, 3, 8)]
        [1, 2, 4, 60]
    """
    return min(RETRY_FIRST * 2 ** min(max(failures - 1, 0), 20), RETRY_CAP)


# -- the state of one watch, kept in the store for ``status`` -------------------------------
@dataclass
class WatchState:
    """How a watched mailbox is doing: ``up``, or ``down: <kind>``, since when and why; the
    folders that could not be read; counts of the last look."""

    state: str = "new"
    since: str | None = None
    reason: str | None = None
    failures: int = 0
    next_try: str | None = None
    last_look: str | None = None
    missing: list[str] = field(default_factory=list)
    seen: int = 0
    learned: int = 0

    @staticmethod
    def meta_key(owner: str) -> str:
        return f"watch/{owner}"

    @classmethod
    def load(cls, store: Store, owner: str) -> WatchState:
        text = store.get_meta(cls.meta_key(owner))
        if not text:
            return cls()
        data: dict[str, Any] = json.loads(text)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, store: Store, owner: str) -> None:
        store.set_meta(self.meta_key(owner), json.dumps(self.__dict__, sort_keys=True))


def watch_states(store: Store, owners: Iterable[str]) -> dict[str, WatchState]:
    """Each watched owner's :class:`WatchState` (for ``status``)."""
    return {owner: WatchState.load(store, owner) for owner in owners}


@dataclass
class WatchReport:
    """What one look at the watched mailboxes did."""

    seen: int = 0  # new messages whose header fields were read
    learned: int = 0  # of them, events applied
    lines: list[str] = field(default_factory=list)


# -- the edge: talking to the owner's server ------------------------------------------------
class Watcher:
    """The watched mailboxes of all owners: one connection each, kept between cycles of
    ``run`` (``close`` ends them). :meth:`look` never raises for a server's fault."""

    def __init__(self, settings: Settings,
                 opener: Callable[[ImapSettings], IMAPClient] = open_imap) -> None:
        self.settings = settings
        self.opener = opener
        self._clients: dict[str, IMAPClient] = {}
        self._sent: dict[str, str] = {}

    @property
    def active(self) -> bool:
        return bool(self.settings.watches)

    def look(self, store: Store, now: datetime) -> WatchReport:
        """Read what is new in every watched mailbox and apply what it tells."""
        report = WatchReport()
        for watch in self.settings.watches:
            self._look_one(watch, store, now, report)
        return report

    def close(self) -> None:
        for owner in list(self._clients):
            self._drop(owner)

    # -- one owner --

    def _look_one(self, watch: WatchSettings, store: Store, now: datetime,
                  report: WatchReport) -> None:
        owner = watch.owner
        state = WatchState.load(store, owner)
        if state.next_try and datetime.fromisoformat(state.next_try) > now:
            return  # backing off after a failure
        where = f"watch of {owner} (IMAP {watch.server.host}:{watch.server.port})"
        try:
            client = self._client(watch)
            folders = watch.folders or ("INBOX", self._sent_folder(owner, client))
            missing: list[str] = []
            seen = learned = 0
            for folder in folders:
                try:
                    got, applied = self._folder(client, watch, folder, store, now)
                except _NoFolder:
                    missing.append(folder)
                    continue
                seen += got
                learned += applied
        except StateError:
            raise  # the state file's fault: the cycle stops, as for the inbox
        except (MailhelperError, IMAPClientError, OSError) as exc:
            self._drop(owner)
            self._failed(state, store, owner, where, exc, now)
            return
        report.seen += seen
        report.learned += learned
        kind = f"down: folder missing ({', '.join(missing)})" if missing else "up"
        if state.state != kind:
            if missing:
                log.error("%s: cannot open %s; the other folders are read (name them under "
                          "owners[].watch.folders)", where, ", ".join(repr(m) for m in missing))
            elif state.state == "new":
                log.info("%s: watching %s, read-only", where, ", ".join(folders))
            else:
                log.info("%s: working again", where)
            state.since = now.isoformat()
        state.state, state.reason, state.failures, state.next_try = kind, None, 0, None
        state.missing, state.last_look = missing, now.isoformat()
        state.seen, state.learned = seen, learned
        with store.transaction():
            state.save(store, owner)

    def _failed(self, state: WatchState, store: Store, owner: str, where: str,
                exc: BaseException, now: datetime) -> None:
        kind = ("down: login refused" if isinstance(exc, LoginRefused) else
                "down: TLS failed" if isinstance(exc, TlsFailed) else
                "down: no password" if isinstance(exc, MailhelperError)
                and not isinstance(exc, ConnectError) else "down: unreachable")
        reason = (str(exc) or type(exc).__name__).splitlines()[0]
        state.failures += 1
        wait = retry_after(state.failures)
        if state.state != kind:
            log.error("%s: %s; the assistant's own work goes on; trying again in %d min, then "
                      "less often (at most hourly)", where, reason, wait.total_seconds() // 60)
            state.since = now.isoformat()
        else:
            log.debug("%s: still %s (%s)", where, kind, reason)
        state.state, state.reason, state.next_try = kind, reason, (now + wait).isoformat()
        with store.transaction():
            state.save(store, owner)

    def _client(self, watch: WatchSettings) -> IMAPClient:
        client = self._clients.get(watch.owner)
        if client is None:
            client = self.opener(watch.server)
            self._clients[watch.owner] = client
        return client

    def _drop(self, owner: str) -> None:
        client = self._clients.pop(owner, None)
        self._sent.pop(owner, None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.logout()
            with contextlib.suppress(Exception):
                client.shutdown()

    def _sent_folder(self, owner: str, client: IMAPClient) -> str:
        """The folder flagged ``\\Sent`` (RFC 6154), else ``Sent``; looked up once per
        connection."""
        if owner not in self._sent:
            try:
                found = client.find_special_folder(b"\\Sent")
            except IMAPClientError:
                found = None
            self._sent[owner] = str(found) if found else SENT_FALLBACK
        return self._sent[owner]

    # -- one folder --

    def _folder(self, client: IMAPClient, watch: WatchSettings, folder: str, store: Store,
                now: datetime) -> tuple[int, int]:
        """Read one folder's new messages; (messages looked at, events applied)."""
        key = key_folder(watch.owner, folder)
        try:
            status = client.folder_status(folder, [b"MESSAGES", b"UIDNEXT", b"UIDVALIDITY"])
        except IMAPClientError as exc:
            if "abort" in type(exc).__name__.lower():
                raise
            raise _NoFolder(folder) from exc
        uidvalidity = int(status.get(b"UIDVALIDITY", 0))
        uidnext = int(status.get(b"UIDNEXT", 0) or 0)
        position = imap_position(store.cursor(key))
        if position is not None and position[0] == uidvalidity and 0 < uidnext <= position[1] + 1:
            return 0, 0  # nothing new: STATUS was the only command
        if int(status.get(b"MESSAGES", 1)) == 0:
            with store.transaction():  # an empty folder: nothing to open, nothing to read
                _keep(store, key, uidvalidity, max(uidnext - 1, 0))
            return 0, 0
        client.select_folder(folder, readonly=True)  # EXAMINE
        if position is None or position[0] != uidvalidity:
            if position is not None:
                log.info("watch of %s: %s was recreated (UIDVALIDITY %d -> %d); looking again "
                         "at what arrived since the oldest open thread began", watch.owner,
                         folder, position[0], uidvalidity)
            since = first_look_since(store.threads(), watch.owner)
            uids = ([] if since is None else
                    sorted(int(u) for u in client.search(["SINCE", since.date()])))
            last = 0
        else:
            last = position[1]
            uids = [int(u) for u in client.search(["UID", f"{last + 1}:*"]) if int(u) > last]
            uids.sort()
        seen = learned = 0
        for start in range(0, len(uids), BATCH):
            chunk = uids[start:start + BATCH]
            normalise = client.normalise_times
            client.normalise_times = False  # keep the server's offset: an aware time
            try:
                fetched = client.fetch(chunk, [b"INTERNALDATE", _HEADER_ITEM])
            finally:
                client.normalise_times = normalise
            for uid in chunk:
                data = fetched.get(uid)
                if data is None:
                    continue  # expunged meanwhile
                seen += 1
                if self._one(client, watch, folder, uid, data, store, now):
                    learned += 1
            with store.transaction():
                _keep(store, key, uidvalidity, chunk[-1])
        highest = max(uidnext - 1, last, uids[-1] if uids else 0)
        with store.transaction():
            _keep(store, key, uidvalidity, highest)
        if seen:
            log.debug("watch of %s: %s: %d new message(s), %d about tracked threads",
                      watch.owner, folder, seen, learned)
        return seen, learned

    def _one(self, client: IMAPClient, watch: WatchSettings, folder: str, uid: int,
             data: dict[bytes, Any], store: Store, now: datetime) -> bool:
        """Apply what one message tells, if anything; True when it was about a tracked thread."""
        from mailhelper.read.parse import UnparseableMail, parse_mail  # see learn

        header = data.get(_HEADER_KEY)
        if not isinstance(header, bytes) or not header.strip():
            return False
        if not may_concern_tracked(header, store):
            return False  # about nothing tracked: not parsed, only counted
        try:
            mail = parse_mail(header)
        except UnparseableMail:
            return False
        owner = self.settings.owner_for(watch.owner)
        if owner is None:
            return False
        arrival = data.get(b"INTERNALDATE")
        when = _when(mail.date, arrival if isinstance(arrival, datetime) else None, now)
        event = learn(mail, owner, self.settings, store, when)
        if event is None:
            return False
        record = f"watch-{event.message_id}"
        if not isinstance(event, OwnerThanked) and store.is_processed(event.message_id, record):
            return False  # seen already, here or in the assistant's own inbox
        # A thank-you with the assistant in Cc was read in its inbox too, where it is only
        # "the owner wrote in a thread that is not open": the Sent copy says what it was.
        # Applying it twice records one thank-you (plan keys it per thread).
        event = replace(event, excerpt=self._excerpt(client, uid))
        with store.transaction():
            line = tracker.apply_event(store, self.settings, event, when)
            store.mark_processed(event.message_id, record, key_folder(watch.owner, folder), uid,
                                 now, line)
        log.info("<%s> (watch of %s, %s) %s", event.message_id, watch.owner, folder, line)
        return True

    def _excerpt(self, client: IMAPClient, uid: int) -> str:
        """The first words of a tracked thread's message, from its first bytes (PEEK)."""
        from mailhelper.decide.classify import excerpt
        from mailhelper.read.parse import UnparseableMail, parse_mail  # see learn

        item = f"BODY.PEEK[]<0.{BODY_PEEK_BYTES}>".encode()
        try:
            response = client.fetch([uid], [item])
        except IMAPClientError:
            return ""
        data = response.get(uid, {})
        raw = next((v for k, v in data.items() if k.startswith(b"BODY[]")
                    and isinstance(v, bytes)), None)
        if raw is None:
            return ""
        try:
            mail = parse_mail(raw)
        except UnparseableMail:
            return ""
        return excerpt(mail.reply_text or mail.text)


class _NoFolder(Exception):
    """A watched folder the server does not have."""


def _keep(store: Store, key: str, uidvalidity: int, last_uid: int) -> None:
    """Remember that the watched folder ``key`` was read up to ``last_uid``, as the IMAP
    source's cursor (in the caller's transaction)."""
    store.set_cursor(key, ImapCursor(uidvalidity, last_uid).text())


def key_folder(owner: str, folder: str) -> str:
    """How a watched folder is named in the store (cursors, processed mail)."""
    return f"watch/{owner}/{folder}"


def _when(written: datetime | None, arrived: datetime | None, now: datetime) -> datetime:
    """When a message happened, for the thread's clock: its Date header (the author's own
    clock: a copy filed or imported later keeps it), else its arrival (INTERNALDATE), never
    after ``now`` (a clock ahead must not push reminders on).

        >>> t = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
        >>> _when(t, None, t.replace(hour=9)) == t.replace(hour=9)
        True
    """
    moment = written or arrived or now
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return min(moment, now)


def describe(states: Sequence[tuple[str, WatchState]]) -> list[str]:
    """One line per watched mailbox for ``status``."""
    lines = []
    for owner, state in states:
        since = f" since {state.since}" if state.since else ""
        why = f": {state.reason}" if state.reason else ""
        look = f"; last look {state.last_look}" if state.last_look else ""
        retry = f"; next try {state.next_try}" if state.next_try else ""
        lines.append(f"watch of {owner}: {state.state}{since}{why}{look}{retry}")
    return lines
