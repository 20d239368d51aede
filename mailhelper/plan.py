"""Deciding what happens: thread + event + schedules + now -> new thread state and actions.

Everything here is pure. Two kinds of output:

* :func:`apply` turns one event into the thread's new state plus *immediate* actions (receipts,
  answers to commands). Their keys derive from the incoming Message-ID, so the same mail seen
  twice yields the same keys and acts once.
* :func:`desired_actions` says which *scheduled* actions a thread should have pending, from its
  state and what was already sent. The store reconciles that set with what it holds
  (:func:`reconcile`): new ones are added, ones no longer wanted are cancelled, sent ones are
  never touched. Changing the YAML and restarting re-plans pending actions for free.

Scheduling rules where SPEC.md leaves room:

* An ask's reminders count from its *clock start*: the ask, or the owner's latest own mail in the
  thread ("the next reminder counts from then"). Writing again restarts the whole series.
* A time from a tag (``helper+5d@``) or a ``snooze`` replaces the next reminder; later reminders
  keep their spacing after it.
* The closing note comes ``give_up_after`` after the clock start, and never before a day after
  the last reminder.
* An out-of-office return date moves reminders and nudges due before it to 09:00 the day after
  (classification caps the date at 60 days after the auto-reply came). The owner reminder it
  moves says so, and whether the date was cut short: that is how the owner is told, once.
* Every scheduled time then passes through the sending window (business days, quiet hours).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from mailhelper.duration import resolve_wall_time
from mailhelper.events import (
    CounterpartReply,
    Event,
    Ignored,
    NewThread,
    OutOfOffice,
    OwnerCommand,
    OwnerFollowUp,
)
from mailhelper.models import (
    CLOSED_STATES,
    Action,
    ActionKind,
    ActionStatus,
    Address,
    Kind,
    Thread,
    ThreadState,
)
from mailhelper.names import join_names, read_name
from mailhelper.settings import Settings
from mailhelper.window import next_sending_time

#: Statuses that mean "this key is spent": never plan it again.
# SKIPPED counts as spent so a schedule moves on to its next step (a backfill's past reminder).
SPENT = frozenset({ActionStatus.SENT, ActionStatus.SENDING, ActionStatus.FAILED,
                   ActionStatus.SKIPPED})
OWNER_REMINDERS = (ActionKind.FOLLOW_UP, ActionKind.OFFER_FOLLOW_UP)
MIN_GAP_BEFORE_CLOSING = timedelta(days=1)


@dataclass(frozen=True)
class Outcome:
    """What one event does: the thread after it (None: no thread) and immediate actions."""

    thread: Thread | None
    actions: tuple[Action, ...] = ()
    log: str = ""
    changed: bool = False


def stamp(moment: datetime) -> str:
    """A compact UTC stamp for action keys: ``20261203T090000Z``."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def new_thread(event: NewThread, thread_id: int, now: datetime) -> Thread:
    """The thread a :class:`NewThread` event starts (the store has reserved ``thread_id``)."""
    return Thread(
        id=thread_id,
        kind=event.kind,
        state=ThreadState.OPEN,
        subject=event.subject,
        owner=event.owner,
        counterparts=event.counterparts,
        created=now,
        root_message_id=event.message_id,
        last_owner_activity=now,
        excerpt=event.excerpt,
        follow_up_at=event.when,
    )


def _msg_key(message_id: str, what: str) -> str:
    return f"msg/{message_id}/{what}"


def receipt(
    event: NewThread, thread: Thread | None, first: Action | None, settings: Settings, now: datetime
) -> Action | None:
    """The receipt for a new thread, or None when ``confirm: false`` silences it.

    A mail that could not be understood is always answered (SPEC.md "receipts"), and so is one
    with people on it who cannot be written to (the owner must learn they were left out).
    """
    if event.problem is None and not event.left_out and not settings.confirm and (
            thread is not None):
        return None
    data: dict[str, str] = {
        "kind": event.kind.value,
        "subject": event.subject,
        "counterparts": ", ".join(c.formatted() for c in event.counterparts),
        "answering": event.message_id,
    }
    if event.problem:
        data["problem"] = event.problem
    if event.left_out:
        data["left_out"] = left_out_lines(event.left_out)
    if event.tag:
        data["tag"] = event.tag
    if first is not None:
        data["next_kind"] = first.kind.value
        data["next_due"] = first.due.isoformat()
    return Action(
        key=_msg_key(event.message_id, "receipt"),
        kind=ActionKind.RECEIPT,
        due=now,
        thread_id=thread.id if thread else None,
        recipients=(event.owner,),
        data=data,
    )


#: A receipt lists at most this many left-out addresses by name (the rest are counted).
MAX_LEFT_OUT_LISTED = 10


def left_out_lines(left_out: Sequence[tuple[str, str]]) -> str:
    """The receipt's ``left_out`` data: a JSON list of "address, because why" lines (action
    data is one line of text per key; the renderer reads the list back).

    >>> left_out_lines([("a..b@x.org", "it is not a dot-atom")])
    '["a..b@x.org, because it is not a dot-atom"]'
    """
    lines = [f"{email}, because {why}" for email, why in left_out[:MAX_LEFT_OUT_LISTED]]
    if len(left_out) > MAX_LEFT_OUT_LISTED:
        lines.append(f"and {len(left_out) - MAX_LEFT_OUT_LISTED} more")
    return json.dumps(lines, ensure_ascii=False)


def apply(
    thread: Thread | None, event: Event, settings: Settings, now: datetime,
    history: Sequence[Action] = (),
) -> Outcome:
    """The effect of one event (other than :class:`NewThread`, which the store starts with
    :func:`new_thread` and :func:`receipt`) on its thread. ``history`` is every action the
    store holds for the thread (a ``send`` must not thank twice)."""
    if isinstance(event, Ignored):
        if event.notify_owner is None:
            return Outcome(thread, log=event.reason)
        notice = Action(
            key=_msg_key(event.message_id, "error_notice"),
            kind=ActionKind.ERROR_NOTICE,
            due=now,
            recipients=(event.notify_owner,),
            data={"reason": event.reason, "answering": event.message_id},
        )
        return Outcome(thread, (notice,), log=event.reason)
    if isinstance(event, OwnerCommand):
        return _command(thread, event, settings, now, history)
    if thread is None:
        return Outcome(None, log="no such thread")
    if isinstance(event, CounterpartReply):
        if all(c.email != event.sender.email for c in thread.counterparts):
            # Classification sends only counterparts' answers; a stranger never answers.
            return Outcome(thread, log=f"{event.sender.email} is not a counterpart of thread "
                                       f"{thread.id}: not an answer")
        # A late answer, after the closing note, is still an answer: thanks are due all the same.
        if thread.state in (ThreadState.OPEN, ThreadState.EXPIRED) and thread.kind is Kind.ASK:
            how = " (matched by subject and sender)" if event.by_fallback else ""
            if not event.trusted:
                how += " (not trusted: a thank-you only as a draft)"
            updated = dataclasses.replace(
                thread, state=ThreadState.ANSWERED, answered_at=now, reply_excerpt=event.excerpt,
                closed_at=None, answer_trusted=event.trusted,
            )
            return Outcome(updated, log=f"answered by {event.sender.email}{how}", changed=True)
        if event.trusted and not thread.answer_trusted and thread.answered_at is not None:
            # A genuine answer after a subject-only one: the thank-you may now go to them.
            updated = dataclasses.replace(thread, answer_trusted=True)
            return Outcome(updated, log=f"{event.sender.email} wrote again in thread "
                                        f"{thread.id}: the answer is theirs", changed=True)
        return Outcome(thread, log=f"{event.sender.email} wrote again in thread {thread.id}")
    if isinstance(event, OwnerFollowUp):
        if thread.state is not ThreadState.OPEN:
            return Outcome(thread, log="owner wrote in a thread that is not open")
        if thread.kind is Kind.OFFER:
            updated = dataclasses.replace(thread, state=ThreadState.ANSWERED, answered_at=now)
            return Outcome(updated, log="owner answered the offer", changed=True)
        updated = dataclasses.replace(thread, last_owner_activity=now, follow_up_at=None)
        return Outcome(updated, log="owner followed up: reminders count from now", changed=True)
    if isinstance(event, OutOfOffice):
        if event.until is None:
            return Outcome(thread, log=f"out-of-office from {event.sender.email}, no return date")
        updated = dataclasses.replace(thread, away_until=event.until, away_capped=event.capped)
        cut = " (a later date named, cut to the longest wait)" if event.capped else ""
        return Outcome(
            updated,
            log=f"{event.sender.email} is away until {event.until.date().isoformat()}{cut}",
            changed=True,
        )
    return Outcome(thread, log=f"unhandled event {type(event).__name__}")


def _command(
    thread: Thread | None, event: OwnerCommand, settings: Settings, now: datetime,
    history: Sequence[Action] = (),
) -> Outcome:
    owner = (event.owner,)

    def reply(result: str, updated: Thread | None = thread, changed: bool = False) -> Outcome:
        action = Action(
            key=_msg_key(event.message_id, "command_reply"),
            kind=ActionKind.COMMAND_REPLY,
            due=now,
            thread_id=thread.id if thread else None,
            recipients=owner,
            data={"command": event.line or event.name, "result": result,
                  "answering": event.message_id},
        )
        return Outcome(updated, (action,), log=f"command {event.name}: {result}", changed=changed)

    def help_reply(note: str = "") -> Outcome:
        data = {"answering": event.message_id}
        if note:
            data["note"] = note
        if event.name == "unknown":
            data["unknown_command"] = event.line
        action = Action(
            key=_msg_key(event.message_id, "help"),
            kind=ActionKind.HELP,
            due=now,
            thread_id=thread.id if thread else None,
            recipients=owner,
            data=data,
        )
        return Outcome(thread, (action,), log=f"command {event.name}: help sent {note}".strip())

    if event.name == "help":
        return help_reply()
    if event.name == "unknown":
        return help_reply()
    if event.name == "status":
        digest = Action(
            key=_msg_key(event.message_id, "digest"),
            kind=ActionKind.DIGEST,
            due=now,
            recipients=owner,
            data={"reason": "status", "answering": event.message_id},
        )
        return Outcome(thread, (digest,), log="command status: digest sent")
    if thread is None:
        return help_reply(
            "That mail is not about one ask or offer, so I can't tell which you mean."
        )
    if thread.owner.email != event.owner.email:
        return help_reply("That ask or offer belongs to another owner.")

    state = thread.state
    if event.name == "done":
        if state in (ThreadState.OPEN, ThreadState.ANSWERED):
            updated = dataclasses.replace(thread, state=ThreadState.DONE, closed_at=now)
            return reply("marked done", updated, True)
        return reply(f"nothing changed: it is already {state.value}")
    if event.name == "cancel":
        if state is ThreadState.CANCELLED:
            return reply("nothing changed: it is already cancelled")
        updated = dataclasses.replace(thread, state=ThreadState.CANCELLED, closed_at=now)
        return reply("cancelled: I will send nothing more about it", updated, True)
    if event.name == "decline":
        if thread.kind is not Kind.OFFER:
            return help_reply("decline is for offers; for an ask, reply done or cancel.")
        if state in (ThreadState.OPEN, ThreadState.ANSWERED):
            updated = dataclasses.replace(thread, state=ThreadState.DECLINED, closed_at=now)
            return reply(_declined(updated, history, settings), updated, True)
        return reply(f"nothing changed: it is already {state.value}")
    if event.name == "snooze":
        until = event.until
        if until is None:
            return help_reply("snooze needs a time, e.g. snooze 3 days.")
        if state is ThreadState.OPEN:
            updated = dataclasses.replace(thread, follow_up_at=until)
        elif state is ThreadState.EXPIRED:
            updated = dataclasses.replace(
                thread,
                state=ThreadState.OPEN,
                last_owner_activity=now,
                follow_up_at=until,
                closed_at=None,
            )
        elif state is ThreadState.CANCELLED:
            return reply("nothing changed: it is cancelled")
        else:
            updated = dataclasses.replace(thread, snoozed_until=until)
        # Say when the reminder will really come: quiet hours and weekends move it as they
        # move every due time (plan's Planner.add), and a confirmation must not promise more.
        goes = next_sending_time(until, settings.sending, settings.timezone)
        moved = "" if goes == until else f" (the first sending time after {until.isoformat()})"
        return reply(f"snoozed until {goes.isoformat()}{moved}", updated, True)
    if event.name == "send":
        if state in CLOSED_STATES:  # an expired ask: "snooze" brings it back first
            return reply(f"nothing sent: it is {state.value}")
        if event.replied_kind is ActionKind.FOLLOW_UP:
            kind = ActionKind.NUDGE
        elif event.replied_kind is ActionKind.THANK_YOU_DRAFT:
            kind = ActionKind.THANK_YOU
        else:
            return help_reply("There is no draft in that mail to send.")
        thanked = [a for a in history if a.kind is ActionKind.THANK_YOU and a.status in SPENT
                   and a.status is not ActionStatus.SKIPPED]
        if kind is ActionKind.THANK_YOU and thanked:
            # One thank-you per thread (SPEC.md "Exactly once"): a second "send" repeats none.
            when = thanked[-1].sent_at or thanked[-1].due
            return reply(f"nothing sent: the thank-you went to "
                         f"{', '.join(c.email for c in thread.counterparts)} on {when.isoformat()}")
        data = {"requested": "send"}
        if thread.kind is Kind.OFFER and state is ThreadState.DECLINED:
            data["flavour"] = "declined"
        action = Action(
            # Keyed by the draft's mail, so a second "send" to the same draft sends nothing.
            key=f"t{thread.id}/{kind.value}/send/{event.replied_to or event.message_id}",
            kind=kind,
            due=now,
            thread_id=thread.id,
            recipients=thread.counterparts,
            data=data,
        )
        confirm = reply(f"sent the draft to {', '.join(c.email for c in thread.counterparts)}")
        return Outcome(thread, (action, *confirm.actions), log=confirm.log)
    return help_reply()


def _declined(thread: Thread, history: Sequence[Action], settings: Settings) -> str:
    """What ``decline`` answers: when the thank-you the decline makes due will go."""
    names = [read_name(c.name, c.email) for c in thread.counterparts]
    who = join_names([n.greeting or n.full or c.email
                      for n, c in zip(names, thread.counterparts, strict=True)]) or "them"
    for action in desired_actions(thread, history, settings):
        if action.kind is ActionKind.THANK_YOU_DRAFT:
            return f"declined: I'll draft a thank-you to {who} for you on {action.due.isoformat()}"
        if action.kind is ActionKind.THANK_YOU:
            return f"declined: I'll thank {who} for the offer on {action.due.isoformat()}"
    return "declined"


def after_sent(thread: Thread, action: Action, now: datetime) -> Thread:
    """The thread once ``action`` went out: a closing note expires the ask."""
    if action.kind is ActionKind.CLOSING_NOTE and thread.state is ThreadState.OPEN:
        return dataclasses.replace(thread, state=ThreadState.EXPIRED, closed_at=now)
    return thread


@dataclass
class _Planner:
    thread: Thread
    history: Sequence[Action]
    settings: Settings
    out: list[Action] = field(default_factory=list)

    @property
    def zone(self) -> tzinfo:
        return self.settings.timezone

    def spent(self, key: str) -> bool:
        return any(a.key == key and a.status in SPENT for a in self.history)

    def add(
        self,
        kind: ActionKind,
        key: str,
        due: datetime,
        recipients: tuple[Address, ...],
        data: dict[str, str] | None = None,
        *,
        owner_facing: bool = True,
    ) -> None:
        if self.spent(key):
            return
        if owner_facing and self.thread.snoozed_until and due < self.thread.snoozed_until:
            due = self.thread.snoozed_until
        due = next_sending_time(due, self.settings.sending, self.zone)
        self.out.append(
            Action(
                key=key,
                kind=kind,
                due=due,
                thread_id=self.thread.id,
                recipients=recipients,
                data=data or {},
            )
        )

    def away_bound(self, due: datetime) -> datetime:
        """Move a time before the counterpart's return to 09:00 the day after it."""
        away = self.thread.away_until
        if away is None:
            return due
        try:
            local = away.astimezone(self.zone)
            morning_after = resolve_wall_time(
                (local + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0,
                                                    tzinfo=None),
                self.zone,
            )
        except OverflowError:
            # A date at the end of the calendar, stored before return dates were capped:
            # no reminder can wait for it, so it holds nothing back.
            return due
        return max(due, morning_after)

    def away_note(self, due: datetime, moved: datetime) -> dict[str, str]:
        """What an owner reminder the out-of-office moved (``due`` -> ``moved``) tells the
        owner: until when the counterpart is away and whether the date was cut short."""
        away = self.thread.away_until
        if away is None or moved <= due:
            return {}
        note = {"away_until": away.astimezone(self.zone).date().isoformat()}
        if self.thread.away_capped:
            note["away_capped"] = "yes"
        return note

    def sent_with_prefix(self, prefix: str) -> list[Action]:
        return sorted(
            (a for a in self.history if a.key.startswith(prefix) and a.status in SPENT),
            key=lambda a: a.key,
        )

    def reminders(self) -> None:
        thread, zone = self.thread, self.zone
        ask = thread.kind is Kind.ASK
        offsets = (
            self.settings.schedules.ask.follow_up
            if ask
            else self.settings.schedules.offer.follow_up
        )
        kind = ActionKind.FOLLOW_UP if ask else ActionKind.OFFER_FOLLOW_UP
        base = thread.last_owner_activity
        prefix = f"t{thread.id}/{kind.value}/{stamp(base)}/"
        done = self.sent_with_prefix(prefix)
        n = len(done)
        last_sent = max((a.sent_at or a.due for a in done), default=None)
        override = thread.follow_up_at
        if override is not None and last_sent is not None and override <= last_sent:
            override = None
        if n < len(offsets):
            due = offsets[n].after(base, zone)
            if override is not None:
                due = override
            elif n and last_sent is not None:
                gap = offsets[n].approximate - offsets[n - 1].approximate
                due = max(due, last_sent + gap)
            moved = self.away_bound(due)
            data = {"number": str(n + 1), "of": str(len(offsets)), **self.away_note(due, moved)}
            self.add(kind, f"{prefix}{n + 1}", moved, (thread.owner,), data)
        elif ask:
            due = self.settings.schedules.ask.give_up_after.after(base, zone)
            if last_sent is not None:
                due = max(due, last_sent + MIN_GAP_BEFORE_CLOSING)
            if override is not None:
                due = override
            self.add(
                ActionKind.CLOSING_NOTE,
                f"t{thread.id}/closing_note/{stamp(base)}",
                due,
                (thread.owner,),
            )
        if ask:
            for i, offset in enumerate(self.settings.schedules.ask.nudge_counterpart, start=1):
                due = self.away_bound(offset.after(base, zone))
                self.add(
                    ActionKind.NUDGE,
                    f"t{thread.id}/nudge/{stamp(base)}/{i}",
                    due,
                    thread.counterparts,
                    {"number": str(i)},
                    owner_facing=False,
                )

    def thank_you(self) -> None:
        thread = self.thread
        after = self.settings.schedules.thank_you.after
        start: datetime | None = None
        flavour = "helped"
        if thread.kind is Kind.ASK and thread.answered_at is not None:
            start = thread.answered_at
        elif thread.kind is Kind.OFFER and thread.state is ThreadState.DECLINED:
            start, flavour = thread.closed_at, "declined"
        elif thread.kind is Kind.OFFER and thread.state is ThreadState.DONE:
            start = thread.closed_at
        if start is None:
            return
        key = f"t{thread.id}/thank_you"
        # One thank-you per thread, whichever mode: a change of mode never thanks twice.
        if self.spent(key) or self.sent_with_prefix(f"t{thread.id}/thank_you/send/"):
            return
        # Thanking the counterpart directly needs an answer known to be theirs (an offer's
        # thanks follow the owner's own done or decline): else a draft to the owner.
        really_theirs = thread.kind is Kind.OFFER or thread.answer_trusted
        if self.settings.schedules.thank_you.mode == "send" and really_theirs:
            self.add(ActionKind.THANK_YOU, key, after.after(start, self.zone),
                     thread.counterparts, {"flavour": flavour}, owner_facing=False)
        else:
            self.add(ActionKind.THANK_YOU_DRAFT, key, after.after(start, self.zone),
                     (thread.owner,), {"flavour": flavour})

    def return_favor(self) -> None:
        thread = self.thread
        if thread.state is not ThreadState.DONE or thread.closed_at is None:
            return
        after = self.settings.schedules.return_favor.after
        self.add(
            ActionKind.RETURN_FAVOR,
            f"t{thread.id}/return_favor",
            after.after(thread.closed_at, self.zone),
            (thread.owner,),
        )


def desired_actions(
    thread: Thread, history: Sequence[Action], settings: Settings
) -> list[Action]:
    """The scheduled actions ``thread`` should have pending now. ``history`` is every action the
    store holds for the thread, in any status."""
    planner = _Planner(thread, history, settings)
    if thread.state is ThreadState.OPEN:
        planner.reminders()
    if thread.state not in (ThreadState.CANCELLED, ThreadState.EXPIRED):
        planner.thank_you()
        planner.return_favor()
    return planner.out


@dataclass(frozen=True)
class Reconciliation:
    add: tuple[Action, ...] = ()
    cancel: tuple[Action, ...] = ()
    move: tuple[Action, ...] = ()  # same key, new due time, data, recipients or kind


def reconcile(desired: Iterable[Action], pending: Iterable[Action]) -> Reconciliation:
    """The changes that turn the pending scheduled actions into the desired ones."""
    wanted = {a.key: a for a in desired}
    have = {a.key: a for a in pending}
    add = tuple(a for k, a in wanted.items() if k not in have)
    cancel = tuple(a for k, a in have.items() if k not in wanted)
    move = tuple(
        dataclasses.replace(have[k], kind=a.kind, due=a.due, recipients=a.recipients,
                            data=a.data)
        for k, a in wanted.items()
        if k in have and (have[k].due != a.due or dict(have[k].data) != dict(a.data)
                          or have[k].kind is not a.kind or have[k].recipients != a.recipients)
    )
    return Reconciliation(add, cancel, move)


def digest_action(owner: Address, due: datetime) -> Action:
    """The scheduled digest for one owner at ``due``."""
    return Action(
        key=f"digest/{owner.email}/{stamp(due)}",
        kind=ActionKind.DIGEST,
        due=due,
        recipients=(owner,),
        data={"reason": "schedule"},
    )
