"""SMTP: sending each due action exactly once, and keeping the Sent folder true.

The order for one action (SPEC.md safety rule 3):

1. compose the mail and record the attempt (status ``sending``, with the exact bytes), commit;
2. hand it to the :class:`~mailhelper.mail.transport.Transport`, all recipients or none (over SMTP,
   :func:`mailhelper.mail.transport.transmit`); it reports accepted, refused or unknown;
3. record the server's acceptance (``sent``), the delivery and the thread's new state, in one
   transaction;
4. APPEND the same bytes to the Sent folder, then note that it is filed.

What a kill at each point leaves, and what the next cycle does about it
(:meth:`Outbox.recover_in_flight`; the names are the :func:`crash_point` names):

- ``before_send`` (between 1 and 2): the action is ``sending``. The Sent folder is asked for its
  deterministic Message-ID: found means it went (servers such as Gmail file submitted mail
  there themselves); not found means it is sent again, byte for byte the same mail.
- ``after_accept`` (between 2 and 3): the one duplicate no client can rule out (RFC 1047): the
  server has the mail and the store does not know. The Sent folder still tells where the server
  files submitted mail itself; elsewhere the mail goes a second time, with the same Message-ID
  and bytes. Recording the acceptance *before* the APPEND keeps this window one local commit
  long; recording it after the APPEND would stretch it over an IMAP round trip, which a slow or
  unreachable server can make last until the IMAP timeout.
- ``after_record`` (between 3 and 4) and ``after_append`` (during 4): ``sent`` but not noted as
  filed. The next cycle files it, after checking the Sent folder, so it is never filed twice.

A 4xx answer, or a connection that fails before the mail was handed over, is retried with
capped exponential backoff (:func:`backoff`), with a fresh compose. A connection lost after the
mail was handed over (DATA sent, no reply) is like a kill after step 2: the action stays
``sending`` and, once the backoff has passed, the Sent folder decides as above. A 5xx answer
fails the action and tells the owner in one error notice (sent in the same cycle); the rest of
the cycle's mail still goes out. All due mail of a cycle shares one SMTP connection.

An action that cannot become a mail at all (an address no header can carry, from a state file
an older version wrote; a template that fails on its values) is failed the same way, before
any attempt is recorded: the reason is kept, the owner gets one notice, and the cycle goes on
with the other due actions. So is mail to an address with a non-ASCII local part when the
SMTP server does not offer SMTPUTF8 (RFC 6531); where it does, that mail goes with SMTPUTF8.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mailhelper.decide.digest import items_data
from mailhelper.decide.pause import HELD, owner_of_action
from mailhelper.engine import sending
from mailhelper.engine.tracker import is_scheduled
from mailhelper.mail.source import SentFolder
from mailhelper.mail.transport import Accepted, Envelope, Refused, Transport, Unknown
from mailhelper.model import logfields
from mailhelper.model.addresses import fold
from mailhelper.model.errors import ConnectError, MailhelperError, StateError
from mailhelper.model.settings import Settings
from mailhelper.model.values import (
    Action,
    ActionKind,
    ActionStatus,
    Address,
    Pause,
)
from mailhelper.state.store import Store

if TYPE_CHECKING:  # the renderer (and email's policies) load when a mail is made, not before
    from email.message import EmailMessage

    from mailhelper.compose.render import Renderer, RenderJob

log = logging.getLogger(__name__)

BACKOFF_FIRST = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=1)
HOLD_MIN = timedelta(minutes=1)
#: Error notices to the owner have an hourly budget of their own (see :func:`hold_reason`).
#: Few are ever due: only the owner's own mail gets one, others' mail one summary a day.
NOTICES_PER_HOUR = 10

_crash_counts: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Test hook: ``MAILHELPER_CRASH_AT=name`` kills the process with SIGKILL the first time it
    gets here, as a power cut would; ``name:N`` kills it the N-th time. Unset in normal use,
    where it costs one dictionary look-up.

    Points: ``during_fetch`` (before a message is read), ``before_commit`` (inside its
    transaction, or its savepoint in a group, before that ends), ``after_commit`` (passed once
    for each message when the commit holding its effects is done, its group's on SQLite,
    before anything is flagged) (reading mail, in :mod:`mailhelper.engine.daemon`),
    ``before_send``, ``after_accept``, ``after_record``, ``after_append`` (sending, here; see
    the module docstring).
    """
    wanted = os.environ.get("MAILHELPER_CRASH_AT")
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _crash_counts[name] = _crash_counts.get(name, 0) + 1
    if _crash_counts[name] >= (int(nth) if nth.isdigit() else 1):
        os.kill(os.getpid(), signal.SIGKILL)


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed try: 1, 2, 4, 8 ... minutes, at most an hour.

    >>> [int(backoff(n).total_seconds() // 60) for n in (1, 2, 3, 7, 8, 20)]
    [1, 2, 4, 60, 60, 60]
    """
    return min(BACKOFF_FIRST * (2 ** min(max(attempts - 1, 0), 16)), BACKOFF_CAP)


class CannotCompose(Exception):
    """This action cannot become a mail, and retrying will not change that; the message
    says why, for the owner and the log."""


@dataclass
class SendReport:
    sent: list[Action] = field(default_factory=list)
    held: list[Action] = field(default_factory=list)
    retried: list[Action] = field(default_factory=list)
    failed: list[Action] = field(default_factory=list)


def allowed_recipients(
    store: Store, settings: Settings, action: Action, envelope: Sequence[str] = ()
) -> str | None:
    """Why the action may not go to its recipients (and the ``envelope``, Cc included), or
    None when every one is allowed: owners, the counterparts of the owner's own thread
    (SPEC.md safety rule 1), and the assistant itself (in Cc with ``send_as: owner``)."""
    thread = store.thread(action.thread_id) if action.thread_id is not None else None
    allowed = {fold(o.email) for o in settings.owners} | {fold(settings.assistant.email)}
    if thread is not None:
        allowed |= {fold(c.email) for c in thread.counterparts}
    if not action.recipients:
        return "no recipients"
    for email_address in [p.email for p in action.recipients] + list(envelope):
        if fold(email_address) not in allowed:
            return f"{email_address} is not an owner nor on the owner's own thread"
    return None


def hold_reason(store: Store, settings: Settings, action: Action, now: datetime,
                ) -> tuple[str, datetime] | None:
    """Why the sending limits hold this action back, and when they will let it go; or None.

    The release is the moment enough of the mails that count against the cap have left its
    window (a day per recipient, an hour overall), so a held mail goes at the first poll after
    it, not at some fixed interval.

    Two hourly budgets that never draw on each other: error notices to the owner count only
    against :data:`NOTICES_PER_HOUR` (of notices), and every other mail (reminders, receipts,
    digests, mail to counterparts) only against ``sending.max_per_hour`` (of such mail). So a
    burst of notices can never hold back a due reminder, and reminders never hold back the
    owner's news that something failed.
    """
    owners = {o.email for o in settings.owners}
    for person in action.recipients:
        if person.email in owners:
            continue  # the caps protect counterparts; the owner's own reminders are not capped
        cap = settings.sending.max_per_recipient_per_day
        times = store.delivery_times_since(now - timedelta(days=1), person.email)
        if len(times) >= cap:
            release = times[len(times) - cap] + timedelta(days=1)
            return f"{person.email} had {len(times)} mails in the last day", release
    notice = action.kind is ActionKind.ERROR_NOTICE
    cap = NOTICES_PER_HOUR if notice else settings.sending.max_per_hour
    times = store.delivery_times_since(now - timedelta(hours=1), notices=notice)
    if len(times) >= cap:
        release = times[len(times) - cap] + timedelta(hours=1)
        what = "notices" if notice else "mails"
        return f"{cap} {what} sent in the last hour", release
    return None


def flatten(message: EmailMessage, envelope: Sequence[str]) -> tuple[bytes, bool]:
    """The bytes to send and to file, and whether they need SMTPUTF8 (RFC 6531): only when an
    envelope address is not ASCII. The message's own policy folds it (CRLF line ends)."""
    from email.policy import EmailPolicy

    international = not all(a.isascii() for a in envelope)
    policy = message.policy.clone(linesep="\r\n")
    if international and isinstance(policy, EmailPolicy):
        policy = policy.clone(utf8=True)
    return message.as_bytes(policy=policy), international


class Outbox:
    """Sends due actions exactly once: through ``transport`` (one connection per cycle,
    opened only when needed), with ``sent`` as the Sent folder that settles an attempt whose
    outcome was never recorded (None: no folder to ask, as in a dry run)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        renderer: Renderer,
        transport: Transport,
        sent: SentFolder | None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.renderer = renderer
        self.transport = transport
        self.sent = sent

    # -- composing --------------------------------------------------------------------------
    def compose(self, action: Action, now: datetime) -> EmailMessage:
        return self.renderer.render(self._job(action, now))

    def _job(self, action: Action, now: datetime) -> RenderJob:
        return sending.render_job(self.store, self.settings, action, now)

    def close(self) -> None:
        self.transport.close()

    def _fields(self, action: Action, envelope: Sequence[str] | None = None) -> dict[str, Any]:
        """The structured log fields of a line about ``action`` (:mod:`mailhelper.model.logfields`),
        with the Message-ID its mail carries and, when known, the envelope recipients."""
        return logfields.action(action, message_id=self.store.message_id_for(action),
                                recipients=envelope)

    def _in_sent_folder(self, action: Action) -> bool:
        if self.sent is None:
            return False
        return self.sent.sent_contains(self.store.message_id_for(action))

    # -- recovery ---------------------------------------------------------------------------
    def recover_in_flight(self, now: datetime) -> None:
        """Settle what a crash or a lost connection left open, by asking the Sent folder:
        attempts without a recorded outcome, and sent mail not yet filed."""
        for action in self.store.in_flight(now):
            assert action.id is not None
            went = self._in_sent_folder(action)
            with self.store.transaction():
                if went:
                    log.info("action %s: its mail is in the Sent folder: it went", action.key,
                             extra=self._fields(action))
                    self._record_sent(action, now)
                    self.store.mark_appended(action)
                else:
                    log.info("action %s: attempt without a result and not in the Sent folder: "
                             "sending it again", action.key,
                             extra=self._fields(action))
                    self.store.set_status(action.id, ActionStatus.PENDING, next_attempt=None)
        for action in self.store.unappended():
            assert action.id is not None
            if self._in_sent_folder(action):
                with self.store.transaction():
                    self.store.mark_appended(action)
                continue
            raw = self.store.outgoing(action.id)
            if raw is None:  # composed by an older version, which kept no bytes
                message = self.compose(action, action.sent_at or now)
                raw, _ = flatten(message, ())
            self._file(action, raw, action.sent_at or now)

    # -- sending ----------------------------------------------------------------------------
    def send_due(self, now: datetime, dry_run: bool = False) -> SendReport:
        """Send every action due at ``now``, including those that fall due while sending (the
        error notice about a refused mail goes out in the same cycle)."""
        report = SendReport()
        tried: set[int] = set()
        while True:
            batch = [a for a in self.store.due(now) if a.id not in tried]
            if not batch:
                return report
            for index, action in enumerate(batch):
                assert action.id is not None
                tried.add(action.id)
                current = self.store.action(action.id)
                if current is None or current.status is not ActionStatus.PENDING:
                    continue  # settled meanwhile (e.g. cancelled by an earlier action's effects)
                try:
                    self._send_if_allowed(current, now, dry_run, report)
                except ConnectError as exc:
                    self._unreachable(batch[index:], now, str(exc), report)
                    return report

    def _prepare(
        self, action: Action, now: datetime, raw: bytes | None, *, record: bool = True,
    ) -> tuple[EmailMessage, list[str], bytes, bool]:
        """The mail for ``action``, its envelope recipients, its bytes and whether they need
        SMTPUTF8; ``raw`` is the mail of an earlier attempt whose outcome was unknown, sent
        again byte for byte; ``record``: keep a digest's numbering (not in a dry run).
        Raises :class:`CannotCompose` when the action cannot become a mail, whatever the
        reason: one action's mail must never stop the others."""
        try:
            if raw is not None:
                message = _parse(raw)
            else:
                job = self._job(action, now)
                message = self.renderer.render(job)
                if record and job.digest is not None and action.id is not None:
                    # The numbers its items carry, kept with the digest's Message-ID before
                    # it can go: a reply's "done 3" is read against exactly this mail.
                    with self.store.transaction():
                        self.store.set_action_data(
                            action.id, {**action.data, "items": items_data(job.digest.items)})
            envelope = [p.email for p in action.recipients]
            envelope += [a.email for a in _addresses_in(message, "Cc")
                         if a.email not in envelope]
            if raw is None:
                raw, international = flatten(message, [self.settings.assistant.email, *envelope])
            else:
                international = not all(
                    a.isascii() for a in [self.settings.assistant.email, *envelope])
        except StateError:
            raise  # the state file's fault, not this mail's: stop the cycle, change nothing
        except Exception as exc:
            if not isinstance(exc, MailhelperError):  # a template's or a library's surprise
                log.exception("action %s: composing its mail failed", action.key,
                              extra=self._fields(action))
            raise CannotCompose(
                f"its mail could not be written: {str(exc) or type(exc).__name__}") from exc
        return message, envelope, raw, international

    def _paused(self, action: Action, now: datetime) -> Pause | None:
        """The owner's pause that holds ``action`` back at ``now``, or None. Only what the
        assistant sends on its own is held; answers to the owner's own mail go
        (:mod:`mailhelper.decide.pause`), and so does the notice that one of those failed (nothing
        else can fail while the pause holds it)."""
        if not is_scheduled(action) or action.key.startswith("failed/"):
            return None
        pauses = {p.owner: p for p in self.store.pauses() if p.holds(now)}
        if not pauses:
            return None  # the usual case: no thread to look up
        thread = self.store.thread(action.thread_id) if action.thread_id is not None else None
        owner = owner_of_action(action, thread, self.settings)
        return pauses.get(owner) if owner is not None else None

    def _send_if_allowed(
        self, action: Action, now: datetime, dry_run: bool, report: SendReport
    ) -> None:
        assert action.id is not None
        pause = self._paused(action, now)
        if pause is not None:
            log.info("action %s held: %s is paused; it goes at %s at the latest", action.key,
                     pause.owner, pause.release.isoformat(timespec="minutes"),
                     extra=self._fields(action))
            if not dry_run:
                with self.store.transaction():
                    self.store.set_status(action.id, ActionStatus.PENDING,
                                          next_attempt=pause.release, last_error=HELD)
            report.held.append(action)
            return
        try:
            message, envelope, raw, international = self._prepare(
                action, now, self.store.outgoing(action.id), record=not dry_run)
        except CannotCompose as exc:
            log.error("action %s failed: %s", action.key, exc,
                      extra=self._fields(action))
            if not dry_run:
                self._give_up(action, now, str(exc), "compose")
            report.failed.append(action)
            return
        refused = allowed_recipients(self.store, self.settings, action, envelope)
        if refused is not None:
            log.warning("action %s refused: %s", action.key, refused,
                        extra=self._fields(action, envelope))
            if not dry_run:
                with self.store.transaction():
                    self.store.set_status(action.id, ActionStatus.FAILED, last_error=refused)
            report.failed.append(action)
            return
        held = hold_reason(self.store, self.settings, action, now)
        if held is not None:
            why, release = held
            release = max(release, now + HOLD_MIN)
            log.info("action %s held: %s; it goes at %s", action.key, why,
                     release.isoformat(timespec="minutes"),
                     extra=self._fields(action))
            if not dry_run:
                with self.store.transaction():
                    self.store.set_status(action.id, ActionStatus.PENDING, next_attempt=release)
            report.held.append(action)
            return
        if dry_run:
            report.sent.append(action)
            return
        self._send_one(action, raw, international, envelope, str(message["Subject"]), now,
                       report)

    def _send_one(
        self, action: Action, raw: bytes, international: bool, envelope: list[str],
        subject: str, now: datetime, report: SendReport,
    ) -> None:
        self.transport.open()  # before the attempt is recorded: no server, no attempt
        claimed = self.store.mark_sending(action, raw)
        if claimed is None:  # another process claimed it (SKIP LOCKED), or sent it already
            log.info("action %s: claimed by another process; not sent here", action.key,
                     extra=self._fields(action))
            return
        action = claimed
        crash_point("before_send")
        outcome = self.transport.send(
            Envelope(self.settings.assistant.email, tuple(envelope), international), raw)
        match outcome:
            case Unknown(reason):
                self._outcome_unknown(action, now, reason, report)
                return
            case Refused(reason=reason) if reason is not None:
                log.error("action %s failed: %s", action.key, reason,
                          extra=self._fields(action))
                self._give_up(action, now, reason, "server")
                report.failed.append(action)
                return
            case Refused(code, text):
                self._failure(action, now, code, text, report)
                return
            case Accepted():
                pass
        crash_point("after_accept")
        with self.store.transaction():
            self._record_sent(action, now)
        crash_point("after_record")
        self._file(action, raw, now)
        log.info("sent %s to %s: %s", action.kind.value, ", ".join(envelope), subject,
                 extra=self._fields(action, envelope))
        report.sent.append(action)

    def _file(self, action: Action, raw: bytes, when: datetime) -> bool:
        """APPEND a copy to the Sent folder and note it; True when it is there."""
        if self.sent is None:
            return False
        folder = self.sent.sent_name()
        try:
            self.sent.file_sent(raw, when)
        except Exception as exc:
            log.warning("could not file %s in %s (%s); will try again next cycle",
                        action.key, folder, exc,
                        extra=self._fields(action))
            return False
        crash_point("after_append")
        with self.store.transaction():
            self.store.mark_appended(action)
        return True

    def _record_sent(self, action: Action, now: datetime) -> None:
        sending.record_sent(self.store, self.settings, action, now)

    # -- failures ---------------------------------------------------------------------------
    def _outcome_unknown(
        self, action: Action, now: datetime, text: str, report: SendReport
    ) -> None:
        assert action.id is not None
        retry_at = now + backoff(action.attempts)
        log.warning("action %s: %s; whether it went is unknown: the Sent folder decides at %s, "
                    "then it is sent again if it is not there", action.key, text,
                    retry_at.isoformat(),
                    extra=self._fields(action))
        with self.store.transaction():
            self.store.set_status(action.id, ActionStatus.SENDING, next_attempt=retry_at,
                                  last_error=text[:500])
        report.retried.append(action)

    def _failure(
        self, action: Action, now: datetime, code: int, text: str, report: SendReport
    ) -> None:
        """A refusal or a failure before the mail was handed over: it did not go."""
        assert action.id is not None
        if 400 <= code < 500:
            retry_at = now + backoff(action.attempts)
            log.warning("action %s: temporary failure %d %s; attempt %d, next try at %s",
                        action.key, code, text, action.attempts, retry_at.isoformat(),
                        extra=self._fields(action))
            with self.store.transaction():
                self.store.set_status(action.id, ActionStatus.PENDING, next_attempt=retry_at,
                                      last_error=f"{code} {text}"[:500])
                self.store.forget_outgoing(action.id)  # composed afresh on the retry
            report.retried.append(action)
            return
        log.error("action %s: permanent failure %d %s", action.key, code, text,
                  extra=self._fields(action))
        self._give_up(action, now, f"The mail server refused it: {code} {text}", "server",
                      last_error=f"{code} {text}")
        report.failed.append(action)

    def _give_up(
        self, action: Action, now: datetime, reason: str, stage: str,
        last_error: str | None = None,
    ) -> None:
        """Fail ``action`` for good and queue one notice to its owner, in one transaction.

        The notice's key is the action's (``failed/<key>``), so the owner hears about one
        failed action once, however many cycles look at it; a notice that fails itself
        queues no further notice. ``stage``: ``compose`` (the mail could not be written) or
        ``server`` (the SMTP server could not or would not take it)."""
        assert action.id is not None
        with self.store.transaction():
            self.store.set_status(action.id, ActionStatus.FAILED,
                                  last_error=(last_error or reason)[:500])
            if action.kind is not ActionKind.ERROR_NOTICE:
                self.store.add_action(
                    Action(
                        key=f"failed/{action.key}",
                        kind=ActionKind.ERROR_NOTICE,
                        due=now,
                        thread_id=action.thread_id,
                        recipients=(self._owner_for(action),),
                        data={
                            "reason": reason[:500],
                            "failed_kind": action.kind.value,
                            "failed_to": ", ".join(p.email for p in action.recipients),
                            "failed_stage": stage,
                        },
                    ),
                    now,
                )

    def _unreachable(
        self, actions: Sequence[Action], now: datetime, text: str, report: SendReport
    ) -> None:
        """No SMTP connection: this cycle's remaining mail waits, with backoff, untried."""
        first = self.store.action(actions[0].id) if actions[0].id is not None else None
        attempts = (first.attempts if first is not None else 0) + 1
        retry_at = now + backoff(attempts)
        log.error("%s; %d mail(s) wait until %s", text, len(actions), retry_at.isoformat())
        with self.store.transaction():
            for action in actions:
                assert action.id is not None
                current = self.store.action(action.id)
                if current is None or current.status is not ActionStatus.PENDING:
                    continue
                self.store.set_status(action.id, ActionStatus.PENDING, next_attempt=retry_at,
                                      last_error=text[:500],
                                      attempts=current.attempts + (action is actions[0]))
                report.retried.append(action)

    def _owner_for(self, action: Action) -> Address:
        thread = self.store.thread(action.thread_id) if action.thread_id is not None else None
        return thread.owner if thread is not None else self.settings.owners[0]


def _parse(raw: bytes) -> EmailMessage:
    import email
    from email.message import EmailMessage
    from email.policy import default as DEFAULT_POLICY

    parsed = email.message_from_bytes(raw, policy=DEFAULT_POLICY)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _addresses_in(message: EmailMessage, header: str) -> list[Address]:
    value = message.get(header)
    if value is None:
        return []
    return [Address(fold(a.addr_spec), a.display_name) for a in value.addresses]
