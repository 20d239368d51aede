"""One cycle (read new mail, update threads, send what is due) and the long-running loop.

The data flows one way: mailbox -> parse -> classify -> plan -> store -> (due) -> render ->
outbox -> store. The loop gets a ``clock`` and a ``sleep`` so tests can drive it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from mailhelper import tracker
from mailhelper.classify import Context, classify
from mailhelper.errors import ConnectError, StateLockedError
from mailhelper.mailbox import Mailbox
from mailhelper.models import Action, ActionKind
from mailhelper.outbox import Outbox, SendReport, crash_point
from mailhelper.parse import UnparseableMail, parse_mail
from mailhelper.render import Renderer
from mailhelper.settings import Settings
from mailhelper.store import Store

log = logging.getLogger(__name__)

#: RFC 2177 asks clients to re-issue IDLE at least every 29 minutes.
IDLE_MAX = timedelta(minutes=25)
RECONNECT_FIRST = 2.0
RECONNECT_CAP = 300.0


@dataclass
class CycleReport:
    read: int = 0
    duplicates: int = 0
    errors: int = 0
    lines: list[str] = field(default_factory=list)
    sent: SendReport = field(default_factory=SendReport)


class StateLock:
    """An exclusive lock beside the state file, so two processes never share one state."""

    def __init__(self, state: Path) -> None:
        self.path = state.with_name(state.name + ".lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise StateLockedError(
                f"another mailhelper ({holder}) is using {self.path.with_suffix('')}; "
                "stop it first, or give this one its own `state:` file"
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


class Assistant:
    """The assistant's work, given its settings, its store and how to reach its servers."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        renderer: Renderer,
        imap_factory: Callable[[], IMAPClient],
        smtp_factory: Callable[[], object],
    ) -> None:
        self.settings = settings
        self.store = store
        self.renderer = renderer
        self.imap_factory = imap_factory
        self.smtp_factory = smtp_factory

    # -- one cycle --------------------------------------------------------------------------
    def poll_once(self, now: datetime, dry_run: bool = False) -> CycleReport:
        """Connect, run one cycle, disconnect. With ``dry_run`` nothing is changed anywhere:
        the cycle runs on an in-memory copy of the state and sends nothing."""
        mailbox = Mailbox(self.imap_factory(), self.settings.imap.folder)
        try:
            if dry_run:
                return self._dry_cycle(mailbox, now)
            return self.cycle(mailbox, now)
        finally:
            mailbox.logout()

    def cycle(self, mailbox: Mailbox, now: datetime) -> CycleReport:
        tracker.replan_if_config_changed(self.store, self.settings, now)
        outbox = Outbox(self.store, self.settings, self.renderer, self.smtp_factory,  # type: ignore[arg-type]
                        mailbox)
        try:
            outbox.recover_in_flight(now)
            report = self.read_inbox(mailbox, now)
            with self.store.transaction():
                tracker.plan_digests(self.store, self.settings, now)
            report.sent = outbox.send_due(now)
        finally:
            outbox.close()
        return report

    def _dry_cycle(self, mailbox: Mailbox, now: datetime) -> CycleReport:
        copy = sqlite3.connect(":memory:", isolation_level=None)
        copy.row_factory = sqlite3.Row
        self.store.db.backup(copy)
        real = self.store
        self.store = Store(copy, real.domain)
        try:
            report = self.read_inbox(mailbox, now, readonly=True)
            with self.store.transaction():
                tracker.plan_digests(self.store, self.settings, now)
            outbox = Outbox(self.store, self.settings, self.renderer, self.smtp_factory,  # type: ignore[arg-type]
                            None)
            report.sent = outbox.send_due(now, dry_run=True)
            report.lines += [self._preview(outbox, a, now) for a in report.sent.sent]
            return report
        finally:
            self.store.close()
            self.store = real

    def _preview(self, outbox: Outbox, action: Action, now: datetime) -> str:
        message = outbox.compose(action, now)
        return f"would send {action.kind.value} to {message['To']}: {message['Subject']}"

    # -- reading mail -----------------------------------------------------------------------
    def read_inbox(self, mailbox: Mailbox, now: datetime, readonly: bool = False) -> CycleReport:
        report = CycleReport()
        folder = self.settings.imap.folder
        state = mailbox.select(folder, readonly=readonly)
        position = self.store.sync_position(folder)
        last_uid = 0
        if position is not None:
            if position[0] == state.uidvalidity:
                last_uid = position[1]
            else:
                log.warning(
                    "%s: UIDVALIDITY changed (%d -> %d): reading the folder again; messages "
                    "already handled are recognised and skipped", folder, position[0],
                    state.uidvalidity,
                )
        uids = mailbox.new_uids(state, last_uid)
        if uids:
            log.info("%s: %d new message(s)", folder, len(uids))
        handled: list[int] = []
        failed: list[tuple[int, str]] = []
        highest = last_uid
        for count, (uid, raw) in enumerate(mailbox.fetch(uids), start=1):
            outcome, line = self.handle(raw, uid, now)
            crash_point("after_commit")
            report.lines.append(line)
            if outcome == "error":
                report.errors += 1
                failed.append((uid, line))
            else:
                report.read += outcome == "handled"
                report.duplicates += outcome == "duplicate"
                handled.append(uid)
            highest = max(highest, uid)
            if count % mailbox.batch_size == 0 and not readonly:
                self._settle(mailbox, handled, failed, state.uidvalidity, highest)
                handled, failed = [], []
        if not readonly:
            self._settle(mailbox, handled, failed, state.uidvalidity, highest)
        return report

    def _settle(
        self, mailbox: Mailbox, handled: list[int], failed: list[tuple[int, str]],
        uidvalidity: int, highest: int,
    ) -> None:
        """Flag (or move) what was committed, then remember how far the folder was read."""
        mailbox.mark_handled(handled)
        processed = self.settings.imap.processed_folder
        if processed and handled:
            mailbox.move(handled, processed)
        if failed:
            mailbox.move([uid for uid, _ in failed], self.settings.imap.error_folder)
            for uid, why in failed:
                log.error("message UID %d moved to %s: %s", uid, self.settings.imap.error_folder,
                          why)
        with self.store.transaction():
            self.store.set_sync_position(self.settings.imap.folder, uidvalidity, highest)

    def handle(self, raw: bytes, uid: int | None, now: datetime) -> tuple[str, str]:
        """Parse, classify and apply one message in one transaction.

        Returns (outcome, log line): ``handled``, ``duplicate`` or ``error`` (the caller moves
        it to the error folder). A failure on one message never stops the cycle.
        """
        try:
            mail = parse_mail(raw)
        except UnparseableMail as exc:
            return self._not_understood(raw, uid, now, f"cannot be parsed: {exc}", None)
        if self.store.is_processed(mail.message_id, mail.content_hash):
            outcome = self.store.processed_outcome(mail.message_id, mail.content_hash)
            if outcome and outcome.startswith("error"):
                return "error", f"<{mail.message_id}> {outcome}"
            return "duplicate", f"<{mail.message_id}> seen before: skipped"
        try:
            event = classify(mail, Context(self.settings, self.store, now))
            with self.store.transaction():
                line = tracker.apply_event(self.store, self.settings, event, now)
                self.store.mark_processed(mail.message_id, mail.content_hash,
                                          self.settings.imap.folder, uid, now, line)
        except Exception as exc:
            log.exception("message <%s> could not be handled", mail.message_id)
            sender = mail.from_.email if mail.from_ else None
            return self._not_understood(raw, uid, now, f"could not be handled: {exc}", sender,
                                        mail.message_id, mail.content_hash, mail.subject)
        log.info("<%s> %s", mail.message_id, line)
        return "handled", f"<{mail.message_id}> {line}"

    def _not_understood(
        self, raw: bytes, uid: int | None, now: datetime, reason: str, sender: str | None,
        message_id: str | None = None, content_hash: str | None = None, subject: str = "",
    ) -> tuple[str, str]:
        import hashlib

        digest = content_hash or hashlib.sha256(raw).hexdigest()
        key_id = message_id or f"sha256-{digest[:32]}@mailhelper.invalid"
        owner = self.settings.owner_for(sender) if sender else None
        owner = owner or self.settings.owners[0]
        with self.store.transaction():
            self.store.mark_processed(key_id, digest, self.settings.imap.folder, uid, now,
                                      f"error: {reason}")
            self.store.add_action(
                Action(
                    key=f"msg/{key_id}/error_notice",
                    kind=ActionKind.ERROR_NOTICE,
                    due=now,
                    recipients=(owner,),
                    data={"reason": reason[:500], "subject": subject[:200],
                          "folder": self.settings.imap.error_folder},
                ),
                now,
            )
        return "error", f"<{key_id}> {reason}"

    # -- the long-running loop --------------------------------------------------------------
    def run(
        self,
        clock: Callable[[], datetime],
        stop: threading.Event,
        wake: threading.Event | None = None,
    ) -> None:
        """Cycle until ``stop`` is set: IDLE where offered, else poll every ``poll_interval``;
        wake for the next due action; reconnect with capped backoff, logging state changes."""
        delay = RECONNECT_FIRST
        connected_before = False
        down_logged = False
        while not stop.is_set():
            try:
                mailbox = Mailbox(self.imap_factory(), self.settings.imap.folder)
            except (ConnectError, IMAPClientError, OSError) as exc:
                if not down_logged:
                    log.error("cannot reach the IMAP server (%s); retrying with backoff", exc)
                    down_logged = True
                stop.wait(delay)
                delay = min(delay * 2, RECONNECT_CAP)
                continue
            if down_logged or connected_before:
                log.info("connected to the IMAP server again")
            else:
                log.info("connected; IDLE %s", "on" if mailbox.has("IDLE") else "not offered")
            connected_before, down_logged, delay = True, False, RECONNECT_FIRST
            try:
                self._serve(mailbox, clock, stop, wake)
            except (IMAPClientError, OSError, ConnectError) as exc:
                log.error("lost the connection (%s); reconnecting", exc)
                down_logged = True
            finally:
                mailbox.logout()

    def _serve(
        self, mailbox: Mailbox, clock: Callable[[], datetime], stop: threading.Event,
        wake: threading.Event | None,
    ) -> None:
        poll = self.settings.poll_interval.approximate.total_seconds()
        idle = mailbox.has("IDLE")
        while not stop.is_set():
            self.cycle(mailbox, clock())
            if wake is not None and wake.is_set():
                wake.clear()
                return  # a reload asked for a fresh start
            # With IDLE the server tells us of new mail; without it we poll.
            wait = IDLE_MAX.total_seconds() if idle else poll
            next_due = self.store.next_due()
            if next_due is not None:
                wait = min(wait, (next_due - clock()).total_seconds())
            wait = max(wait, 1.0)  # never a busy loop, even with an action due now
            if idle:
                self._idle(mailbox, wait, stop, wake)
            else:
                stop.wait(wait)

    def _idle(
        self, mailbox: Mailbox, seconds: float, stop: threading.Event,
        wake: threading.Event | None,
    ) -> None:
        """IDLE in one-second slices so a stop or reload is noticed promptly."""
        mailbox.client.idle()
        try:
            remaining = seconds
            while remaining > 0 and not stop.is_set() and not (wake and wake.is_set()):
                responses = mailbox.client.idle_check(timeout=min(1.0, remaining))
                if any(isinstance(r, tuple) and len(r) > 1 and r[1] == b"EXISTS"
                       for r in responses):
                    return
                remaining -= 1.0
        finally:
            mailbox.client.idle_done()
