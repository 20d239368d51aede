"""SMTP: sending each due action exactly once, and keeping the Sent folder true.

The order for one action (SPEC.md safety rule 3):

1. record the attempt (status ``sending``) and commit;
2. send over SMTP;
3. APPEND the mail to the Sent folder;
4. record the server's acceptance (``sent``) and the thread's new state, in one transaction.

After a crash anywhere between 1 and 4 the action is ``sending``; on the next start
:func:`recover_in_flight` looks for its deterministic Message-ID in the Sent folder: found means
it went (servers such as Gmail also file submitted mail there themselves), not found means it is
sent again. The only duplicate no client can rule out is a kill in the moment between the
server's acceptance and the APPEND. A 4xx answer or a dropped connection is retried with capped
exponential backoff; a 5xx answer fails the action and tells the owner, and the rest goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import smtplib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY

from mailhelper import plan
from mailhelper.mailbox import Mailbox
from mailhelper.models import Action, ActionKind, ActionStatus, Address, Thread, ThreadState
from mailhelper.render import Renderer, RenderJob
from mailhelper.settings import Settings
from mailhelper.store import Store
from mailhelper.tracker import replan

log = logging.getLogger(__name__)

BACKOFF_FIRST = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=1)
HOLD_RETRY = timedelta(hours=1)


def crash_point(name: str) -> None:
    """Test hook: ``MAILHELPER_CRASH_AT=name`` kills the process here with SIGKILL, as a power
    cut would. Unset in normal use; costs one dictionary look-up."""
    if os.environ.get("MAILHELPER_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def backoff(attempts: int) -> timedelta:
    """1, 2, 4, 8 ... minutes after the failed attempt, at most an hour."""
    return min(BACKOFF_FIRST * (2 ** max(attempts - 1, 0)), BACKOFF_CAP)


@dataclass
class SendReport:
    sent: list[Action] = field(default_factory=list)
    held: list[Action] = field(default_factory=list)
    retried: list[Action] = field(default_factory=list)
    failed: list[Action] = field(default_factory=list)


def allowed_recipients(store: Store, settings: Settings, action: Action) -> str | None:
    """Why the action may not go to its recipients, or None when every one is allowed:
    owners, and the counterparts of the owner's own thread (SPEC.md safety rule 1)."""
    thread = store.thread(action.thread_id) if action.thread_id is not None else None
    allowed = {o.email for o in settings.owners}
    if thread is not None:
        allowed |= {c.email for c in thread.counterparts}
    for person in action.recipients:
        if person.email not in allowed:
            return f"{person.email} is not an owner nor on the owner's own thread"
    if not action.recipients:
        return "no recipients"
    return None


def hold_reason(store: Store, settings: Settings, action: Action, now: datetime) -> str | None:
    """Why the sending limits hold this action back for now, or None."""
    day_ago = now - timedelta(days=1)
    owners = {o.email for o in settings.owners}
    for person in action.recipients:
        if person.email in owners:
            continue  # the caps protect counterparts; the owner's own reminders are not capped
        count = store.deliveries_since(day_ago, person.email)
        if count >= settings.sending.max_per_recipient_per_day:
            return f"{person.email} had {count} mails in the last day"
    if store.deliveries_since(now - timedelta(hours=1)) >= settings.sending.max_per_hour:
        return f"{settings.sending.max_per_hour} mails sent in the last hour"
    return None


class Outbox:
    """Sends due actions over one SMTP connection per cycle (opened only when needed)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        renderer: Renderer,
        smtp_factory: Callable[[], smtplib.SMTP],
        mailbox: Mailbox | None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.renderer = renderer
        self.smtp_factory = smtp_factory
        self.mailbox = mailbox
        self._smtp: smtplib.SMTP | None = None
        self._sent_folder: str | None = None

    # -- composing --------------------------------------------------------------------------
    def compose(self, action: Action, now: datetime) -> EmailMessage:
        thread = self.store.thread(action.thread_id) if action.thread_id is not None else None
        references = self.store.thread_message_ids(thread.id) if thread else ()
        owner = action.recipients[0].email if action.recipients else None
        open_threads: tuple[Thread, ...] = ()
        ledger = None
        if action.kind is ActionKind.DIGEST:
            open_threads = tuple(
                t for t in self.store.threads() if owner is None or t.owner.email == owner
            )
            ledger = self.store.ledger(owner)
        job = RenderJob(
            action=action,
            thread=thread,
            now=now,
            references=references,
            open_threads=open_threads,
            ledger=ledger,
        )
        return self.renderer.render(job)

    # -- connections ------------------------------------------------------------------------
    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            self._smtp = self.smtp_factory()
        return self._smtp

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._smtp.quit()
            self._smtp = None

    def sent_folder(self) -> str | None:
        if self.mailbox is None:
            return None
        if self._sent_folder is None:
            self._sent_folder = self.mailbox.sent_folder(self.settings.imap.sent_folder)
        return self._sent_folder

    # -- recovery ---------------------------------------------------------------------------
    def recover_in_flight(self, now: datetime) -> None:
        """Settle actions whose outcome a crash left unknown, by asking the Sent folder."""
        for action in self.store.in_flight():
            folder = self.sent_folder()
            message_id = self.store.message_id_for(action)
            went = folder is not None and self.mailbox is not None and (
                self.mailbox.contains_message_id(folder, message_id)
            )
            assert action.id is not None
            with self.store.transaction():
                if went:
                    log.info("action %s: found in %s after a restart: it went", action.key, folder)
                    self._record_sent(action, now, appended=True)
                else:
                    log.info("action %s: not in the Sent folder after a restart: sending again",
                             action.key)
                    self.store.set_status(action.id, ActionStatus.PENDING)
        for action in self.store.unappended():
            self._append(action, self.compose(action, action.sent_at or now), now)

    # -- sending ----------------------------------------------------------------------------
    def send_due(self, now: datetime, dry_run: bool = False) -> SendReport:
        report = SendReport()
        for action in self.store.due(now):
            current = self.store.action(action.id) if action.id is not None else None
            if current is None or current.status is not ActionStatus.PENDING:
                continue  # settled meanwhile (e.g. cancelled by an earlier action's effects)
            refused = allowed_recipients(self.store, self.settings, action)
            if refused is not None:
                log.warning("action %s refused: %s", action.key, refused)
                if not dry_run:
                    assert action.id is not None
                    with self.store.transaction():
                        self.store.set_status(action.id, ActionStatus.FAILED, last_error=refused)
                report.failed.append(action)
                continue
            held = hold_reason(self.store, self.settings, action, now)
            if held is not None:
                log.info("action %s held: %s", action.key, held)
                if not dry_run:
                    assert action.id is not None
                    with self.store.transaction():
                        self.store.set_status(
                            action.id, ActionStatus.PENDING, next_attempt=now + HOLD_RETRY
                        )
                report.held.append(action)
                continue
            message = self.compose(action, now)
            if dry_run:
                report.sent.append(action)
                continue
            self._send_one(action, message, now, report)
        return report

    def _send_one(
        self, action: Action, message: EmailMessage, now: datetime, report: SendReport
    ) -> None:
        assert action.id is not None
        self.store.mark_sending(action)
        crash_point("before_send")
        envelope_to = [p.email for p in action.recipients]
        envelope_to += [a.email for a in _addresses_in(message, "Cc") if a.email not in envelope_to]
        try:
            smtp = self._connection()
            smtp.send_message(message, from_addr=self.settings.assistant.email,
                              to_addrs=envelope_to)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            self._failure(action, now, min(codes), _first_text(exc.recipients), report)
            return
        except smtplib.SMTPResponseException as exc:
            self._failure(action, now, exc.smtp_code, _decode(exc.smtp_error), report)
            if exc.smtp_code in (421,):
                self._drop_connection()
            return
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop_connection()
            self._failure(action, now, 451, f"connection lost: {exc}", report)
            return
        crash_point("after_accept")
        appended = self._append(action, message, now)
        crash_point("after_append")
        with self.store.transaction():
            self._record_sent(action, now, appended=appended)
        crash_point("after_record")
        log.info("sent %s to %s: %s", action.kind.value, ", ".join(envelope_to),
                 message["Subject"])
        report.sent.append(action)

    def _append(self, action: Action, message: EmailMessage, now: datetime) -> bool:
        """File a copy in the Sent folder; True when it is there."""
        folder = self.sent_folder()
        if folder is None or self.mailbox is None:
            return False
        try:
            self.mailbox.append(folder, message.as_bytes(policy=SMTP_POLICY), now)
        except Exception as exc:
            log.warning("could not file %s in %s (%s); will try again", action.key, folder, exc)
            return False
        if action.status is ActionStatus.SENT:  # a retry for mail sent earlier
            with self.store.transaction():
                self.store.mark_appended(action)
        return True

    def _record_sent(self, action: Action, now: datetime, appended: bool) -> None:
        self.store.mark_sent(action, now)
        if appended:
            self.store.mark_appended(action)
        if action.thread_id is not None:
            thread = self.store.thread(action.thread_id)
            if thread is not None:
                updated = plan.after_sent(thread, action, now)
                if updated != thread:
                    self.store.save_thread(updated)
                    self.store.log_event(thread.id, now, "expired",
                                         None, "closing note sent")
                if updated.state not in (ThreadState.CANCELLED,):
                    replan(self.store, updated, self.settings, now)

    def _failure(
        self, action: Action, now: datetime, code: int, text: str, report: SendReport
    ) -> None:
        assert action.id is not None
        attempts = action.attempts + 1
        if 400 <= code < 500:
            retry_at = now + backoff(attempts)
            log.warning("action %s: temporary failure %d %s; next try at %s",
                        action.key, code, text, retry_at.isoformat())
            with self.store.transaction():
                self.store.set_status(action.id, ActionStatus.PENDING, next_attempt=retry_at,
                                      last_error=f"{code} {text}"[:500])
            report.retried.append(action)
            return
        log.error("action %s: permanent failure %d %s", action.key, code, text)
        with self.store.transaction():
            self.store.set_status(action.id, ActionStatus.FAILED, last_error=f"{code} {text}"[:500])
            if action.kind is not ActionKind.ERROR_NOTICE:
                owner = self._owner_for(action)
                self.store.add_action(
                    Action(
                        key=f"failed/{action.key}",
                        kind=ActionKind.ERROR_NOTICE,
                        due=now,
                        thread_id=action.thread_id,
                        recipients=(owner,),
                        data={
                            "reason": f"The mail server refused it: {code} {text}"[:500],
                            "failed_kind": action.kind.value,
                            "failed_to": ", ".join(p.email for p in action.recipients),
                        },
                    ),
                    now,
                )
        report.failed.append(action)

    def _owner_for(self, action: Action) -> Address:
        thread = self.store.thread(action.thread_id) if action.thread_id is not None else None
        return thread.owner if thread is not None else self.settings.owners[0]

    def _drop_connection(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None


def _addresses_in(message: EmailMessage, header: str) -> list[Address]:
    value = message.get(header)
    if value is None:
        return []
    return [Address(a.addr_spec.lower(), a.display_name) for a in value.addresses]


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _first_text(recipients: dict[str, tuple[int, bytes]]) -> str:
    for _, text in recipients.values():
        return _decode(text)
    return ""
