"""One cycle (read new mail, update threads, send what is due) and the long-running loop.

The data flows one way: mailbox -> parse -> classify -> plan -> store -> (due) -> render ->
outbox -> store. The loop gets a ``clock`` and a ``sleep`` so tests can drive it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import IO, TYPE_CHECKING

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from mailhelper.decide import backlog
from mailhelper.decide.events import Event, Ignored
from mailhelper.decide.plan import after_sent as plan_after_sent
from mailhelper.engine import tracker
from mailhelper.engine.agenda import status_ics
from mailhelper.engine.budget import OverBudget, TimeBudget
from mailhelper.engine.outbox import Outbox, SendReport, crash_point
from mailhelper.engine.pipeline import Early, read_ahead
from mailhelper.engine.watch import Watcher
from mailhelper.mail.connect import LoginRefused, TlsFailed
from mailhelper.mail.mailbox import Fetched, Mailbox, content_key
from mailhelper.mail.source import (
    TIMED_OUT,
    ImapSource,
    Incoming,
    MailSource,
    OldMailRule,
    Reading,
)
from mailhelper.mail.transport import SmtpTransport, Transport
from mailhelper.model import logfields
from mailhelper.model.errors import (
    ConnectError,
    LeaseLost,
    MailhelperError,
    StateError,
    StateLockedError,
)
from mailhelper.model.settings import Settings
from mailhelper.model.values import (
    Action,
    ActionKind,
    ActionStatus,
    Address,
    Mail,
    ThreadState,
)
from mailhelper.state.lease import Lease, LeaseHandedOver
from mailhelper.state.store import Group, Store, private_state_path

if TYPE_CHECKING:  # the renderer is loaded when a mail is made, not before
    from mailhelper.compose.render import Renderer

log = logging.getLogger(__name__)

#: The longest IDLE: RFC 2177 asks clients to re-issue IDLE at least every 29 minutes (servers
#: may drop a client idle for 30); 25 leaves room for a slow network.
IDLE_MAX = timedelta(minutes=25)
#: An action still pending after a cycle that should have sent it is looked at again after this.
STUCK_RETRY = timedelta(seconds=30)
#: Reconnect backoff: the first wait and the cap, in seconds.
RECONNECT_FIRST = 2.0
RECONNECT_CAP = 300.0
#: How often a wait (IDLE or not) looks at the stop and reload requests, in seconds.
WAIT_SLICE = 0.5
#: When the daily summary of others' mail filed as errors goes out: this time of the next
#: day, in ``settings.timezone`` (see :meth:`Assistant._count_for_summary`).
SUMMARY_AT = clock_time(9, 0)
#: A group of messages' transactions (:meth:`Assistant._read_folder`) is committed once it has
#: been open this long, in seconds, after the message in hand.
GROUP_SECONDS = 1.0
#: While a folder is read, what was committed is settled (flagged or moved, the cursor kept)
#: every ``batch_size`` messages, but not sooner than this many seconds after the last
#: settling: each costs a sync of the state file and a STORE on the server, whose waits were
#: a tenth of a fast backlog's reading when they came every 200 messages, and a STORE costs
#: the server more the larger the folder (Dovecot's Maildir: some 120 ms a STORE at 100,000
#: messages, whether it names 200 UIDs or 1,500).
SETTLE_SECONDS = 5.0
#: The old-mail decision (README "Old mail") a mail source applies to what it reads.
OLD_MAIL = OldMailRule(backlog.is_old, backlog.own_date, backlog.left_alone_line)


@dataclass
class CycleReport:
    read: int = 0
    duplicates: int = 0
    errors: int = 0
    lines: list[str] = field(default_factory=list)
    sent: SendReport = field(default_factory=SendReport)

    def count(self, outcome: str, line: str) -> None:
        """Count one message read: ``handled``, ``duplicate`` or ``error``."""
        self.lines.append(line)
        self.errors += outcome == "error"
        self.read += outcome == "handled"
        self.duplicates += outcome == "duplicate"

    def counts(self) -> dict[str, int]:
        """The figures of the cycle's log line, for its structured ``counts`` field."""
        return {"read": self.read, "duplicates": self.duplicates, "errors": self.errors,
                "sent": len(self.sent.sent), "held": len(self.sent.held),
                "retried": len(self.sent.retried), "failed": len(self.sent.failed)}


class StateLock:
    """An exclusive lock beside the state file, so two processes never share one state."""

    def __init__(self, state: Path) -> None:
        self.path = state.with_name(state.name + ".lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        private_state_path(self.path)  # it may be the first to need the folder
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            # Never suggest a second state file: two assistants on one mailbox would each
            # answer the same mail.
            raise StateLockedError(
                f"another mailhelper ({holder}) is using {self.path.with_suffix('')}; "
                "stop it first (or wait for it to finish): one mailbox needs exactly one "
                "assistant, and a second state file would answer the same mail twice"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


@dataclass(frozen=True)
class Wait:
    """How long the loop waits before its next cycle, and why."""

    seconds: float
    reason: str


def next_wait(
    now: datetime,
    next_due: datetime | None,
    cycle_began: datetime,
    *,
    idle: bool,
    poll_interval: timedelta,
) -> Wait:
    """The time from ``now`` until the next cycle, after a cycle that began at ``cycle_began``.

    - With IDLE the server reports new mail, so the wait is at most :data:`IDLE_MAX` (25
      minutes: RFC 2177 asks clients to re-issue IDLE before 29); without IDLE it is the poll
      interval.
    - An action due sooner (``next_due``, :meth:`Store.next_due`) shortens it to exactly then:
      the loop never sleeps past a due time.
    - An action that fell due while the cycle ran: no wait at all.
    - An action that was already due when the cycle began and is still pending (the cycle
      could not settle it) waits :data:`STUCK_RETRY`, so it can never cause a busy loop.

        >>> from datetime import UTC
        >>> t = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
        >>> next_wait(t, t + timedelta(seconds=90), t, idle=True,
        ...           poll_interval=timedelta(seconds=60))
        Wait(seconds=90.0, reason='an action falls due')
    """
    longest = IDLE_MAX if idle else poll_interval
    reason = "renew IDLE" if idle else "poll interval"
    if next_due is None or next_due - now >= longest:
        return Wait(longest.total_seconds(), reason)
    if next_due > now:
        return Wait((next_due - now).total_seconds(), "an action falls due")
    if next_due > cycle_began:
        return Wait(0.0, "an action fell due during the cycle")
    stuck = min(STUCK_RETRY, longest)
    return Wait(stuck.total_seconds(), "an overdue action is still pending; trying again soon")


def reconnect_delay(failures: int) -> float:
    """Seconds to wait after ``failures`` failed attempts in a row: 2, 4, 8 ... at most 300.

        >>> [reconnect_delay(n) for n in (1, 2, 3, 9, 20)]
        [2.0, 4.0, 8.0, 300.0, 300.0]
    """
    if failures <= 0:
        return 0.0
    return min(RECONNECT_FIRST * 2.0 ** min(failures - 1, 30), RECONNECT_CAP)


class Link:
    """The state of a connection (new, up, lost, down), logged once per change of state.

    Down has a kind: ``unreachable`` (refused, reset, timed out: the details vary while a
    server restarts), ``login refused``, ``TLS failed``, ``no password``. Retries of the same
    kind are logged at debug level only, so an outage of an hour is a few lines, not hundreds.
    """

    def __init__(self, name: str, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.state = "new"
        self.failures = 0
        self.reason: str | None = None
        self._monotonic = monotonic
        self._down_since: float | None = None

    def connected(self, detail: str) -> None:
        if self.state == "new":
            log.info("%s: connected; %s", self.name, detail)
        elif self.state != "up":
            away = self._monotonic() - (self._down_since or self._monotonic())
            log.info("%s: connected again after %.0f s (%d failed attempt(s)); %s",
                     self.name, away, self.failures, detail)
        self.state, self.failures, self.reason, self._down_since = "up", 0, None, None

    def works(self, detail: str) -> None:
        """The connection worked: after an outage that is news (logged once, as
        :meth:`connected`), and the backoff starts again from its first step."""
        if self.state.startswith("down") or self.state == "lost":
            self.connected(detail)
        self.failures = 0

    def lost(self, reason: str) -> None:
        """A working connection failed; the next attempt is at once."""
        log.warning("%s: connection lost (%s); reconnecting", self.name, reason)
        self.state, self.reason, self._down_since = "lost", reason, self._monotonic()

    def failed(self, reason: str, kind: str = "unreachable") -> float:
        """An attempt to connect failed; returns the seconds to wait before the next one."""
        self.failures += 1
        delay = reconnect_delay(self.failures)
        state = f"down: {kind}"
        if self.state != state:
            log.error("%s; trying again in %.0f s, then less and less often (at most every "
                      "%.0f minutes) until it works", reason, delay, RECONNECT_CAP / 60)
        else:
            log.debug("%s: attempt %d failed the same way (%s); next in %.0f s", self.name,
                      self.failures, reason, delay)
        if self._down_since is None:
            self._down_since = self._monotonic()
        self.state, self.reason = state, reason
        return delay


class _LeaseWait:
    """The log of waiting for a mailbox's lease: a line when the holder changes (who holds
    it, until when), not one per look."""

    def __init__(self, lease: Lease | None) -> None:
        self.lease = lease
        self._last: str | None = None

    def log(self) -> None:
        if self.lease is None:
            return
        info = self.lease.current()
        holder = None if info is None else info.holder
        if holder == self._last:
            return
        self._last = holder
        if info is not None and info.live:
            log.info("%s: %s; this process waits (it looks every %.0f s)", self.lease.mailbox,
                     info.line(), self.lease.renew_every)
        else:
            log.info("%s: this process holds its fair share of mailboxes; it waits for "
                     "another to take this one", self.lease.mailbox)

    def reset(self) -> None:
        self._last = None


class _StoppableMailbox(Mailbox):
    """A Mailbox whose :meth:`fetch` ends between two messages once ``stop`` is set, so the
    message in hand is finished and committed and the rest waits for the next start."""

    def __init__(self, client: IMAPClient, folder: str, *, stop: threading.Event) -> None:
        super().__init__(client, folder)
        self.stop = stop

    def fetch(self, uids: Sequence[int]) -> Iterator[Fetched]:
        for done, message in enumerate(super().fetch(uids), start=1):
            yield message
            if self.stop.is_set() and done < len(uids):
                log.info("stopping: %d of %d new message(s) handled; the rest at the next "
                         "start", done, len(uids))
                return


def _asked(stop: threading.Event, wake: threading.Event | None) -> bool:
    return stop.is_set() or (wake is not None and wake.is_set())


def _pause(seconds: float, stop: threading.Event, wake: threading.Event | None) -> None:
    """Sleep up to ``seconds``, ending early on a stop or reload request."""
    deadline = time.monotonic() + seconds
    while not _asked(stop, wake):
        left = deadline - time.monotonic()
        if left <= 0:
            return
        stop.wait(min(WAIT_SLICE, left))


def _kind(exc: BaseException) -> str:
    """The kind of a failure to connect, for :meth:`Link.failed`."""
    if isinstance(exc, LoginRefused):
        return "login refused"
    if isinstance(exc, TlsFailed):
        return "TLS failed"
    if isinstance(exc, MailhelperError) and not isinstance(exc, ConnectError):
        return "no password"  # SecretError: the password or token could not be read
    return "unreachable"


def _content_id(key: str) -> str:
    """The id a message is recorded under when it has no Message-ID, or none was read."""
    return f"sha256-{key[:32]}@mailhelper.invalid"


def _undated(calendar_text: str) -> str:
    """An iCalendar without its DTSTAMP lines: two that differ only there show the same."""
    return "\r\n".join(line for line in calendar_text.split("\r\n")
                       if not line.startswith("DTSTAMP:"))


def write_private(path: Path, data: bytes) -> None:
    """Replace the file at ``path`` with ``data`` atomically (a temporary file beside it,
    synced, then renamed over it), readable by its owner only (0600)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _text(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0]


def _log_cycle(report: CycleReport, began: datetime, wait: Wait | None) -> None:
    sent = report.sent
    busy = report.read or report.errors or sent.sent or sent.failed or sent.retried
    after = f"; next cycle in {wait.seconds:.1f} s ({wait.reason})" if wait else ""
    log.log(
        logging.INFO if busy else logging.DEBUG,
        "cycle at %s: %d read, %d duplicate, %d not understood; sent %d, held %d, retrying %d, "
        "failed %d%s", began.isoformat(timespec="seconds"), report.read, report.duplicates,
        report.errors, len(sent.sent), len(sent.held), len(sent.retried), len(sent.failed), after,
        extra=logfields.cycle(report.counts()),
    )


class Assistant:
    """The assistant's work, given its settings, its store and how to reach its servers."""

    #: True during a dry run's cycle: each message's reading is then the plan the command
    #: prints, so the log repeats it only at debug level.
    _dry_run = False

    def __init__(
        self,
        settings: Settings,
        store: Store,
        renderer: Renderer,
        imap_factory: Callable[[], IMAPClient],
        smtp_factory: Callable[[], object],
        watcher: Watcher | None = None,
        lease: Lease | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        #: The mailbox's lease (a PostgreSQL state shared by several processes), or None:
        #: with one, the mailbox is read only while it is held, and every write of the store
        #: is fenced by it (:meth:`mailhelper.state.lease.Lease.fence`).
        self.lease = lease
        if lease is not None:
            store.fence = lease.fence
        self.renderer = renderer
        self.imap_factory = imap_factory
        self.smtp_factory = smtp_factory
        self.budget = TimeBudget(settings.limits.message_seconds)
        #: The owners' own mailboxes (``owners[].watch``), looked at in every cycle.
        self.watcher = watcher or Watcher(settings)

    # -- one cycle --------------------------------------------------------------------------
    def poll_once(self, now: datetime, dry_run: bool = False,
                  backfill: timedelta | None = None) -> CycleReport:
        """Connect, run one cycle, disconnect. With ``dry_run`` nothing is changed anywhere:
        the cycle runs on an in-memory copy of the state and sends nothing. With
        ``backfill``, old mail of that span is read too (:meth:`read_inbox`)."""
        mailbox = Mailbox(self.imap_factory(), self.settings.imap.folder)
        if self.lease is not None and not dry_run:
            mailbox.before_fetch = self.lease.keep
        try:
            if dry_run:
                return self._dry_cycle(mailbox, now, backfill)
            return self.cycle(mailbox, now, backfill)
        finally:
            mailbox.logout()
            self.watcher.close()

    def cycle(self, mailbox: Mailbox, now: datetime, backfill: timedelta | None = None,
              stop: threading.Event | None = None) -> CycleReport:
        """One cycle on a logged-in IMAP mailbox (:meth:`cycle_on` its source)."""
        return self.cycle_on(ImapSource(mailbox, self.settings.imap), now, backfill,
                             stop=stop)

    def cycle_on(self, source: MailSource, now: datetime, backfill: timedelta | None = None,
                 transport: Transport | None = None,
                 stop: threading.Event | None = None) -> CycleReport:
        """One cycle: recover a send in flight, read ``source``, look at watched mailboxes,
        plan digests, release pauses, send what is due (through ``transport``, by default
        SMTP), keep the calendar file. ``stop`` (``run``'s): once set, the reading ends after
        the message in hand."""
        tracker.replan_if_config_changed(self.store, self.settings, now)
        outbox = Outbox(self.store, self.settings, self.renderer,
                        transport or self._transport(), source)
        try:
            outbox.recover_in_flight(now)
            report = self.read_inbox(source, now, backfill=backfill, stop=stop)
            self._watch(now)
            with self.store.transaction():
                tracker.plan_digests(self.store, self.settings, now)
            tracker.release_pauses(self.store, self.settings, now)
            report.sent = outbox.send_due(now)
            with self.store.transaction():
                # The digest just sent makes room for the next one: plan it now, so a poll
                # that comes only after that one's time still finds it due.
                tracker.plan_digests(self.store, self.settings, now)
        finally:
            outbox.close()
        self._keep_calendar(now)
        return report

    def _transport(self) -> Transport:
        """The SMTP edge for one cycle; it connects only when a mail is to go."""
        return SmtpTransport(self.smtp_factory)  # type: ignore[arg-type]

    def _keep_calendar(self, now: datetime) -> None:
        """Rewrite ``calendar_file`` when what it shows changed (its DTSTAMPs aside), by an
        atomic replace, so a calendar app never reads half a file; 0600, as it names people
        and subjects. A failure to write is logged and the cycle goes on."""
        path = self.settings.calendar_file
        if path is None:
            return
        text = status_ics(self.store, self.settings, now)
        try:
            old = path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            old = None
        except OSError as exc:
            log.warning("calendar_file %s: cannot read it (%s); writing it anew", path,
                        _text(exc))
            old = None
        if old is not None and _undated(old) == _undated(text):
            return
        try:
            write_private(path, text.encode("utf-8"))
        except OSError as exc:
            log.error("calendar_file %s: cannot write it (%s); the assistant's work goes on",
                      path, _text(exc))
        else:
            log.debug("calendar_file %s rewritten", path)

    def _dry_cycle(self, mailbox: Mailbox, now: datetime,
                   backfill: timedelta | None = None) -> CycleReport:
        real = self.store
        self.store = real.snapshot()
        self._dry_run = True
        try:
            report = self.read_inbox(ImapSource(mailbox, self.settings.imap), now,
                                     readonly=True, backfill=backfill)
            self._watch(now)
            with self.store.transaction():
                tracker.plan_digests(self.store, self.settings, now)
            tracker.release_pauses(self.store, self.settings, now)
            outbox = Outbox(self.store, self.settings, self.renderer, self._transport(), None)
            report.sent = outbox.send_due(now, dry_run=True)
            report.lines += [self._preview(outbox, a, now) for a in report.sent.sent]
            return report
        finally:
            self._dry_run = False
            self.store.close()
            self.store = real

    def _watch(self, now: datetime) -> None:
        """Look at the owners' own mailboxes (:mod:`mailhelper.engine.watch`), after the inbox and
        before sending, so what it learns stops a reminder due now. Its faults are its own:
        the cycle goes on whatever happens there (only the state file's fault stops it)."""
        if not self.watcher.active:
            return
        try:
            self.watcher.look(self.store, now)
        except StateError:
            raise
        except Exception:
            log.exception("watching the owners' mailboxes failed; the assistant's own work "
                          "goes on")

    def _preview(self, outbox: Outbox, action: Action, now: datetime) -> str:
        message = outbox.compose(action, now)
        return f"would send {action.kind.value} to {message['To']}: {message['Subject']}"

    # -- reading mail -----------------------------------------------------------------------
    def read_inbox(self, source: MailSource, now: datetime, readonly: bool = False,
                   backfill: timedelta | None = None,
                   stop: threading.Event | None = None) -> CycleReport:
        """Read what arrived since the last poll, each message atomic: its effects (or its
        failure record) are written together or not at all.

        The source gives the messages after the cursor the store keeps (an opaque string:
        :class:`~mailhelper.mail.source.Reading`). A message counts as read only once its
        effects are committed; every ``batch_size`` messages, and not sooner than
        :data:`SETTLE_SECONDS` after the last time, the committed ones are settled (flagged or
        moved) and the new cursor saved, so a dropped connection loses at most a batch or
        some seconds of flagging, never a message, and the messages read again are recognised
        (Message-ID, else content) and act once. IMAP failures become :class:`ConnectError`
        naming the folder.

        Commits are grouped (:meth:`~mailhelper.state.store.Store.grouped`; SQLite only, where
        a commit cost more than handling a simple message): each message is a SAVEPOINT (one
        that fails rolls back its own writes, then its failure record is written), and the
        group commits

        - before each settling (nothing is flagged or moved before its effects are committed
          and synced) and at the end of the reading, so before anything is sent;
        - right after a message filed as an error: its record is what keeps a message that
          took too long from being read again;
        - after every message of a backfill: old mail whose group a kill rolled back would be
          left alone as old by the next ordinary poll, so each old message is kept at once;
        - after the message in hand once the group has been open :data:`GROUP_SECONDS`.

        So SQLite's write lock is held at most :data:`GROUP_SECONDS` and one message more:
        that message's FETCH when one is due (bounded by ``imap.timeout`` while the server
        is silent), its reading (``limits.message_seconds``) and its writes; never across a
        settling, a send or a wait for new mail. A kill loses the group not yet committed:
        its messages are read again and act once. An exception that ends the reading: a
        :class:`StateError` rolls the open group back (the state is at fault, and SQLite may
        have dropped it already); anything else (an IMAP failure) commits the messages
        applied before it, as their own commits did, and they are known when read again.
        On PostgreSQL each message commits alone, so the lease's fence runs before each.

        Old mail (README "Old mail"): the first time a state reads the folder it records a
        :class:`~mailhelper.model.values.FirstStart`; mail that was there then and is older than it
        by more than :data:`~mailhelper.model.values.GRACE` is left alone on that cycle and every
        later one, as is mail flagged as handled by any state. ``backfill`` (``poll --once
        --backfill DAYS``) reads old mail of the last ``backfill`` first, each message at its
        own date, then nothing it planned is left in the past (:meth:`_catch_up`).
        """
        folder = self.settings.imap.folder
        try:
            with self.store.batched_durability():
                return self._read_folder(source, folder, now, readonly, backfill, stop)
        except (IMAPClientError, OSError) as exc:
            raise ConnectError(f"IMAP: lost the connection while reading {folder} "
                               f"({str(exc) or type(exc).__name__}); the next poll goes on "
                               "from the last message handled") from exc

    def _read_folder(self, source: MailSource, folder: str, now: datetime, readonly: bool,
                     backfill: timedelta | None = None,
                     stop: threading.Event | None = None) -> CycleReport:
        report = CycleReport()
        cursor = self._cursor()
        fresh = cursor is None and self.store.processed_count() == 0
        reading = source.read(cursor, now, readonly=readonly, fresh=fresh)
        if reading.cursor != cursor:
            with self.store.transaction():
                self._keep_cursor(reading.cursor)  # the first start: holds for every later cycle
        reading.choose(OLD_MAIL, backfill)
        report.duplicates += reading.skipped
        handled: list[int] = []
        failed: list[tuple[int, str]] = []
        unfinished = self.store.get_meta("backfill_mark")
        if unfinished is not None:  # a backfill stopped (killed, disconnected) before its end
            self._catch_up(int(unfinished), now)
        mark = self.store.last_action_id()
        if reading.backfilled:
            with self.store.transaction():
                # Committed before the first old message: whatever stops this backfill, the
                # next cycle first settles what it planned in the past.
                self.store.set_meta("backfill_mark", str(mark))
        # What the worker read ahead beyond the message in hand is dropped at a stop.
        fetched = read_ahead(reading, self.settings, len(reading), self.budget.seconds, stop)
        uncommitted = 0
        settled_at = time.monotonic()
        with self.store.grouped() as group:
            for message, early in fetched:
                crash_point("during_fetch")
                outcome, line = self._read_one(message, early, reading.size_limit)
                uncommitted += 1
                report.count(outcome, line)
                if outcome == "error":
                    failed.append((message.id, line))
                else:
                    handled.append(message.id)
                # Each message read since the last settling is in ``handled`` or ``failed``.
                settle = (len(handled) + len(failed) >= reading.batch_size and not readonly
                          and time.monotonic() - settled_at >= SETTLE_SECONDS)
                if (settle or outcome == "error" or reading.backfilled
                        or group.age >= GROUP_SECONDS):
                    self._commit(group, uncommitted)
                    uncommitted = 0
                if settle:
                    with group.paused():
                        self._settle(reading, handled, failed)
                    handled, failed = [], []
                    settled_at = time.monotonic()
            self._commit(group, uncommitted)
        if reading.backfilled:
            self._catch_up(mark, now)
        if not readonly:
            self._settle(reading, handled, failed, finish=True)
        if report.duplicates:
            log.info("%s: %d message(s) handled before (flagged as handled, or the same "
                     "Message-ID or content): skipped",
                     folder, report.duplicates, extra=logfields.message(folder=folder))
        return report

    @staticmethod
    def _commit(group: Group, messages: int) -> None:
        """Commit the group holding the last ``messages`` messages read (each is then read:
        the crash point ``after_commit`` is passed once for each)."""
        group.commit()
        for _ in range(messages):
            crash_point("after_commit")

    def _read_one(self, message: Incoming, early: Early | None,
                  size_limit: int) -> tuple[str, str]:
        """One message of a reading, handled (:meth:`handle`), or filed by its header alone
        when it is over ``size_limit`` (:meth:`_too_large`): (outcome, log line)."""
        if message.too_large:
            return self._too_large(message.raw, message.id, message.size, size_limit,
                                   message.at)
        return self.handle(message.raw, message.id, message.at, early)

    def _catch_up(self, mark: int, now: datetime) -> None:
        """After a backfill read old mail at its own dates: nothing it planned is left in the
        past. Scheduled steps whose time passed are skipped (never sent; the schedule moves on
        to its next step, and a passed give-up expires the ask); a receipt goes out now only
        for a thread still open (never for one answered in the same backfill), naming the next
        step as it now stands; answers to old commands are skipped; a notice about mail that
        could not be read goes out now."""
        planned = self.store.added_after(mark)
        with self.store.transaction():
            self.store.delete_meta("backfill_mark")
            for thread_id in sorted({a.thread_id for a in planned if a.thread_id is not None}):
                self._skip_past(thread_id, now)
            for action in self.store.added_after(mark):
                if action.due >= now or tracker.is_scheduled(action):
                    continue
                assert action.id is not None
                thread = (self.store.thread(action.thread_id)
                          if action.thread_id is not None else None)
                if action.kind is ActionKind.ERROR_NOTICE:
                    self.store.apply_reconciliation((), (), (replace(action, due=now),), now)
                elif action.kind is ActionKind.RECEIPT and (
                        thread is None or thread.state is ThreadState.OPEN):
                    data = dict(action.data)
                    data.pop("next_kind", None)
                    data.pop("next_due", None)
                    if thread is not None:
                        nxt = min((a for a in self.store.actions_for(thread.id)
                                   if a.status is ActionStatus.PENDING
                                   and tracker.is_scheduled(a)),
                                  key=lambda a: a.due, default=None)
                        if nxt is not None:
                            data["next_kind"], data["next_due"] = nxt.kind.value, \
                                nxt.due.isoformat()
                    self.store.apply_reconciliation(
                        (), (), (replace(action, due=now, data=data),), now)
                else:
                    self.store.set_status(action.id, ActionStatus.SKIPPED,
                                          last_error="backfill: answer to old mail, not sent")

    def _skip_past(self, thread_id: int, now: datetime) -> None:
        for _step in range(50):  # a schedule has a handful of steps; never loop for ever
            thread = self.store.thread(thread_id)
            if thread is None:
                return
            tracker.replan(self.store, thread, self.settings, now)
            past = [a for a in self.store.actions_for(thread_id)
                    if a.status is ActionStatus.PENDING and tracker.is_scheduled(a)
                    and a.due < now]
            if not past:
                return
            for action in past:
                assert action.id is not None
                self.store.set_status(action.id, ActionStatus.SKIPPED,
                                      last_error="backfill: its time had passed")
                ended = plan_after_sent(thread, action, action.due)
                if ended != thread:
                    thread = ended
                    self.store.save_thread(thread)

    def _settle(self, reading: Reading, handled: list[int], failed: list[tuple[int, str]],
                finish: bool = False) -> None:
        """Flag (or move) what was committed, then remember how far the folder was read."""
        if handled or failed:
            self.store.make_durable()  # nothing is flagged before its effects are on disk
        ids = [uid for uid, _ in failed]
        cursor = reading.finish(handled, ids) if finish else reading.settle(handled, ids)
        for uid, why in failed:
            log.error("message UID %d moved to %s: %s", uid, self.settings.imap.error_folder,
                      why, extra=logfields.message(uid=uid, folder=self.settings.imap.folder))
        with self.store.transaction():
            self._keep_cursor(cursor)

    def handle(self, raw: bytes, uid: int | None, now: datetime,
               early: Early | None = None) -> tuple[str, str]:
        """Parse, classify and apply one message in one transaction.

        Returns (outcome, log line): ``handled``, ``duplicate`` or ``error`` (the caller moves
        it to the error folder). A failure on one message never stops the cycle. A message
        is the same as one handled before when it has its Message-ID or, for mail without
        one, the same content less trace fields (:func:`mailhelper.mail.mailbox.content_key`).
        Mail whose header alone shows it can only be ignored is not parsed further
        (:func:`mailhelper.decide.prefilter.ignorable`); its effects are the same.

        The reading (header check, parsing, classifying; not the transaction) has
        ``limits.message_seconds``: a message that takes longer is recorded as an error by
        its content key. Errors are looked up by content key before anything is read, so
        such a message is never read again (:mod:`mailhelper.engine.budget` says how the budget
        interrupts the work).

        ``early``: the pure half of the reading, done ahead in a worker process
        (:mod:`mailhelper.engine.pipeline`); the rest goes on from it, to the same outcome.
        """
        # The reading modules are imported at the first message, never in a cycle with
        # nothing new (a cron poll: importing them was most of its start-up), and outside
        # the budget, which must time the reading, not an import.
        from mailhelper.decide.classify import Context, classify
        from mailhelper.engine.pipeline import early_mail, early_verdict, import_reading
        from mailhelper.read.parse import UnparseableMail

        import_reading()

        key = early.key if early is not None else content_key(raw)
        by_content = self._seen(_content_id(key), key)
        if by_content is not None and by_content[0] == "error":
            return by_content  # filed before, perhaps for taking too long: not read again
        mail: Mail | None = None
        event: Event | None = None
        try:
            with self.budget.limit():
                quick = early_verdict(early, raw, self.settings, self.store)
                if quick is not None:
                    message_id, why = quick
                    event = Ignored(message_id, why)
                else:
                    mail = early_mail(early, raw)
                    message_id = mail.message_id
                if by_content is not None:
                    settled = self._seen(message_id, key)  # as ever: its id may have a record too
                elif message_id != _content_id(key):
                    # Nothing has this content: only the Message-ID can find something new.
                    settled = self._seen(message_id, None)
                else:
                    settled = None
                if settled is None and mail is not None:
                    event = classify(mail, Context(self.settings, self.store, now))
            if settled is not None or event is None:
                return settled or ("duplicate", f"<{message_id}> seen before: skipped")
            decided = event
            return self._apply(message_id, key, uid, now, lambda: decided)
        except OverBudget:
            reason = f"took longer than {self.budget.seconds:g} s to read"
            log.warning("message UID %s: %s; it goes to %s and is not read again", uid, reason,
                        self.settings.imap.error_folder,
                        extra=logfields.message(uid=uid, folder=self.settings.imap.folder))
            return self._not_understood(raw, uid, now, reason, None, None, key)
        except UnparseableMail as exc:
            return self._not_understood(raw, uid, now, f"cannot be parsed: {exc}", None)
        except StateError:
            # The state file's fault (disk full, locked), not the message's: stop the cycle
            # with nothing committed, so the message is read again next time.
            raise
        except Exception as exc:
            if mail is None:
                raise
            log.exception("message <%s> could not be handled", mail.message_id,
                          extra=logfields.message(message_id=mail.message_id, uid=uid,
                                                  folder=self.settings.imap.folder))
            sender = mail.from_.email if mail.from_ else None
            return self._not_understood(raw, uid, now, f"could not be handled: {exc}", sender,
                                        mail.message_id, key, mail.subject)

    def _seen(self, message_id: str, key: str | None) -> tuple[str, str] | None:
        """The outcome for a message handled before (``duplicate``, or ``error`` again so it
        is filed again), or None for a new one: one look-up, by ``message_id`` or content
        ``key`` (by ``message_id`` alone when ``key`` is None)."""
        outcome = self.store.processed_outcome(message_id, key)
        if outcome is None:
            return None
        if outcome.startswith("error"):
            return "error", f"<{message_id}> {outcome}"
        return "duplicate", f"<{message_id}> seen before: skipped"

    def _apply(self, message_id: str, key: str, uid: int | None, now: datetime,
               event: Callable[[], Event]) -> tuple[str, str]:
        """Classify (``event``) and apply one message, and mark it processed, in one
        transaction."""
        decided = event()
        with self.store.transaction():
            line = tracker.apply_event(self.store, self.settings, decided, now)
            self.store.mark_processed(message_id, key, self.settings.imap.folder, uid, now, line)
            crash_point("before_commit")
        level = logging.DEBUG if self._dry_run else logging.INFO
        if log.isEnabledFor(level):
            log.log(level, "<%s> %s", message_id, line, extra=logfields.message(
                message_id=message_id, uid=uid, folder=self.settings.imap.folder,
                thread=lambda: self.store.thread_id_for((message_id,))))
        return "handled", f"<{message_id}> {line}"

    def _too_large(
        self, header: bytes, uid: int | None, size: int, limit: int, now: datetime,
    ) -> tuple[str, str]:
        """A message over the size limit, known by its header alone: an error, never read."""
        reason = (f"too large to read: {size / 1048576:.1f} MB (the limit is "
                  f"{limit / 1048576:.0f} MB)")
        from mailhelper.read.parse import UnparseableMail, parse_mail  # see handle

        key = hashlib.sha256(header + f"\nsize {size}".encode()).hexdigest()
        try:
            mail = parse_mail(header)
        except UnparseableMail:
            return self._not_understood(header, uid, now, reason, None, None, key,
                                        category="too_large")
        real_id = mail.message_id if not mail.message_id.endswith("@mailhelper.invalid") else None
        known = real_id or f"sha256-{key[:32]}@mailhelper.invalid"
        outcome = self.store.processed_outcome(known, key)
        if outcome is not None:
            if not outcome.startswith("error"):  # a big second copy of mail handled before
                return "duplicate", f"<{known}> seen before: skipped"
            return "error", f"<{known}> {reason}"
        sender = mail.from_.email if mail.from_ else None
        return self._not_understood(header, uid, now, reason, sender, real_id, key,
                                    mail.subject, category="too_large")

    def _not_understood(
        self, raw: bytes, uid: int | None, now: datetime, reason: str, sender: str | None,
        message_id: str | None = None, content_hash: str | None = None, subject: str = "",
        category: str | None = None,
    ) -> tuple[str, str]:
        """Record the message as failed; the caller moves it to ``imap.error_folder``.

        Who is told depends on whose mail it is (:meth:`_own_mail`, read from ``raw``'s
        header, never from ``sender`` alone):

        - the owner's own mail: that owner gets one notice about it (its key is the
          message's), quoting their subject and threading under their mail;
        - anyone else's (a stranger, an unknown or missing sender, owner mail failing
          ``require_auth``): nobody is told about this message. It is counted in the day's
          summary (:meth:`_count_for_summary`), which says how many such messages were filed
          and where, and never quotes their subject, sender or text: a stranger must not be
          able to flood the owner, or to put words in a mail from the assistant.

        ``category`` (for the summary): ``unreadable``, ``too_large`` or ``failed``; by
        default ``unreadable`` for a reason starting "cannot be parsed", else ``failed``.
        """
        digest = content_hash or content_key(raw)
        key_id = message_id or f"sha256-{digest[:32]}@mailhelper.invalid"
        owner = self._own_mail(raw)
        with self.store.transaction():
            seen = self.store.is_processed(key_id, digest)
            self.store.mark_processed(key_id, digest, self.settings.imap.folder, uid, now,
                                      f"error: {reason}")
            if owner is None:
                if category is None:
                    category = ("unreadable" if reason.startswith("cannot be parsed")
                                else "failed")
                if not seen:  # a second copy of one message is filed again, not counted again
                    self._count_for_summary(category, now)
            else:
                data = {"reason": reason[:500], "subject": subject[:200],
                        "folder": self.settings.imap.error_folder}
                if message_id is not None:
                    data["answering"] = message_id  # the notice threads under the owner's mail
                self.store.add_action(
                    Action(
                        key=f"msg/{key_id}/error_notice",
                        kind=ActionKind.ERROR_NOTICE,
                        due=now,
                        recipients=(owner,),
                        data=data,
                    ),
                    now,
                )
        who = "" if owner is not None else f" (not an owner's: from {sender or 'nobody'})"
        return "error", f"<{key_id}> {reason}{who}"

    def _own_mail(self, raw: bytes) -> Address | None:
        """The owner whose own mail ``raw`` is, by the rules that let mail create a thread
        (:func:`mailhelper.decide.classify.owner_of`: From an owner address and, with
        ``require_auth``, a passing verdict of the trusted server); None for anyone else's.
        Only the header is read again: the message may be huge or the reason it failed."""
        from mailhelper.decide.classify import owner_of  # see handle
        from mailhelper.decide.prefilter import header_of
        from mailhelper.read.parse import UnparseableMail, parse_mail

        try:
            mail = parse_mail(header_of(raw))
        except UnparseableMail:
            return None
        owner, _why = owner_of(mail, self.settings)
        return owner

    def _count_for_summary(self, category: str, now: datetime) -> None:
        """Count one message of others filed as an error in the day's summary to the first
        owner, inside the caller's transaction.

        The summary is one :class:`Action` per day (in ``settings.timezone``) with the
        deterministic key ``errors/<day>/summary`` (SPEC.md safety rule 3), due at
        :data:`SUMMARY_AT` the next morning, so it counts the whole day and at most one goes
        out a day. Its data holds only counts, the day and the folder."""
        zone = self.settings.zone_for(self.settings.owners[0].email)
        day = now.astimezone(zone).date()
        key = f"errors/{day.isoformat()}/summary"
        field = f"filed_{category}"
        summary = self.store.action_by_key(key)
        if summary is None:
            data = {"filed_day": day.isoformat(), "filed_unreadable": "0",
                    "filed_too_large": "0", "filed_failed": "0",
                    "folder": self.settings.imap.error_folder}
            data[field] = "1"
            due = datetime.combine(day + timedelta(days=1), SUMMARY_AT, tzinfo=zone)
            self.store.add_action(
                Action(key=key, kind=ActionKind.ERROR_NOTICE, due=due,
                       recipients=(self.settings.owners[0],), data=data),
                now,
            )
            return
        if summary.status is not ActionStatus.PENDING or summary.id is None:
            # Sent already (the clock went back, or --now replays an old day): the count of a
            # summary that went cannot change; the log line is the record.
            log.info("message of others filed as an error on %s after that day's summary "
                     "went: not counted", day)
            return
        data = dict(summary.data)
        data[field] = str(int(data.get(field, "0") or 0) + 1)
        self.store.set_action_data(summary.id, data)

    # -- the long-running loop --------------------------------------------------------------
    def run(
        self,
        clock: Callable[[], datetime],
        stop: threading.Event,
        wake: threading.Event | None = None,
    ) -> None:
        """Cycle until ``stop`` is set, or until ``wake`` is set (a reload: the caller builds a
        new Assistant with the new settings and calls run again).

        IDLE where the server offers it (RFC 2177), else a poll every ``poll_interval``; either
        way it wakes for the next due action (:func:`next_wait`). A lost or refused connection
        is retried with capped exponential backoff (:func:`reconnect_delay`), with one log line
        per change of state, not one per retry. On ``stop`` the message in hand is finished
        and committed; the rest of a backlog waits for the next start.

        With a :attr:`lease` (several processes sharing a PostgreSQL state) the mailbox is
        read only while this process holds it: until then it looks every third of the lease
        (:meth:`~mailhelper.state.lease.Lease.take`); it renews it before every cycle and
        at least every third of it while waiting for mail; on
        :class:`~mailhelper.model.errors.LeaseLost` (from a renewal or a write's fence) it
        drops the IMAP connection, before any further fetch, and goes back to looking.
        Letting the lease go on a stop is the caller's (it may outlive a reload).
        """
        imap = self.settings.imap
        link = Link(f"IMAP {imap.host}:{imap.port}")
        state = Link("the state database")
        waiting = _LeaseWait(self.lease)
        while not _asked(stop, wake):
            if self.lease is not None and not self.lease.held:
                try:
                    taken = self.lease.take()
                    if not taken:
                        waiting.log()
                except StateError as exc:
                    _pause(state.failed(str(exc)), stop, wake)
                    continue
                state.works("the mailbox's lease can be read again")
                if not taken:
                    _pause(min(self.lease.renew_every,
                               self.settings.poll_interval.approximate.total_seconds()),
                           stop, wake)
                    continue
                waiting.reset()
            try:
                mailbox = _StoppableMailbox(self.imap_factory(), imap.folder, stop=stop)
            except (MailhelperError, IMAPClientError, OSError) as exc:
                _pause(link.failed(_text(exc), _kind(exc)), stop, wake)
                continue
            if self.lease is not None:
                mailbox.before_fetch = self.lease.keep
            idle = ImapSource(mailbox).pushes
            poll = self.settings.poll_interval
            link.connected("IDLE: new mail is seen at once" if idle else
                           f"the server has no IDLE: looking for new mail every {poll}")
            try:
                self._serve(mailbox, clock, stop, wake, state)
            except LeaseLost as exc:
                # Nothing of the transaction in hand was committed; the connection goes, and
                # the mailbox is read again only once the lease is this process's again.
                log.log(logging.INFO if isinstance(exc, LeaseHandedOver) else logging.WARNING,
                        "%s; waiting to take it again", exc)
            except (ConnectError, IMAPClientError, OSError) as exc:
                link.lost(_text(exc))
            except StateError as exc:
                if not self.store.reconnects:
                    raise
                # A database server goes away and comes back (a restart, a failover): nothing
                # of the cycle was committed, so wait as for a mail server, then go on.
                _pause(state.failed(str(exc)), stop, wake)
            finally:
                mailbox.logout()
        self.watcher.close()

    def _serve(
        self, mailbox: Mailbox, clock: Callable[[], datetime], stop: threading.Event,
        wake: threading.Event | None, state: Link | None = None,
    ) -> None:
        """Cycle on one connection until asked to stop or reload, or the connection fails.
        Between cycles it waits on the mailbox as a :class:`~mailhelper.mail.source.MailSource`
        (news since the cursor, a wait that ends on new mail), never on IMAP itself."""
        source: MailSource = ImapSource(mailbox)
        idle = source.pushes
        poll = self.settings.poll_interval.approximate
        while not _asked(stop, wake):
            if self.lease is not None:
                self.lease.renew()  # LeaseLost: not ours any more, so no fetch
            began = clock()
            report = self.cycle(mailbox, began, stop=stop)
            if state is not None:
                state.works("a cycle went through")
            if _asked(stop, wake):
                _log_cycle(report, began, None)
                return
            now = clock()
            # A watched mailbox announces nothing to this connection's IDLE: with a watch, the
            # wait is at most the poll interval, so its news is seen as often as polled mail.
            wait = next_wait(now, self.store.next_due(), began,
                             idle=idle and not self.watcher.active, poll_interval=poll)
            _log_cycle(report, began, wait)
            if wait.seconds <= 0:
                continue
            self._wait(source, idle, wait.seconds, stop, wake)

    def _wait(self, source: MailSource, idle: bool, seconds: float, stop: threading.Event,
              wake: threading.Event | None) -> None:
        """Wait ``seconds`` for the next cycle (IDLE, or a pause without it), ending early on
        new mail or a stop; with a lease, in pieces of at most a third of it, renewing it
        after each (:class:`LeaseLost` ends the wait, before any fetch)."""
        deadline = time.monotonic() + seconds
        while not _asked(stop, wake):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            piece = left if self.lease is None else min(left, self.lease.renew_every)
            if not idle:
                _pause(piece, stop, wake)
            elif source.has_news(self._cursor()):
                # Mail came in during the cycle (or between two pieces of the wait): its
                # EXISTS went to an earlier command's answer, and IDLE would not report it.
                log.debug("new mail arrived before IDLE began: another cycle at once")
                return
            else:
                why = source.wait_for_news(piece, lambda: _asked(stop, wake))
                log.debug("IDLE ended: %s", why)
                if why != TIMED_OUT:
                    return
            if self.lease is not None and deadline - time.monotonic() > 0:
                self.lease.renew()

    def _cursor(self) -> str | None:
        """How far the folder was read, as the mail source's opaque cursor."""
        return self.store.cursor(self.settings.imap.folder)

    def _keep_cursor(self, cursor: str | None) -> None:
        """Remember how far the folder was read (in the caller's transaction)."""
        if cursor is not None:
            self.store.set_cursor(self.settings.imap.folder, cursor)
