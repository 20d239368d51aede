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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import assert_never
from urllib.parse import quote

from mailhelper.decide.events import (
    CounterpartReply,
    Ignored,
    NewThread,
    OutOfOffice,
    OwnerCommand,
    OwnerFollowUp,
    OwnerThanked,
    ThreadEvent,
)
from mailhelper.decide.pause import Pause, new_pause, resumed
from mailhelper.decide.window import next_sending_time
from mailhelper.model.addresses import fold
from mailhelper.model.duration import Duration, resolve_wall_time
from mailhelper.model.kinds import ACTIONS, KINDS, THANKS, AnsweredBy, answer_key, send_key
from mailhelper.model.settings import Settings
from mailhelper.model.values import (
    CLOSED_STATES,
    Action,
    ActionKind,
    ActionStatus,
    Address,
    Answer,
    Kind,
    Thread,
    ThreadState,
    thanked_people,
)
from mailhelper.read.names import join_names, read_name

#: Statuses that mean "this key is spent": never plan it again.
# SKIPPED counts as spent so a schedule moves on to its next step (a backfill's past reminder).
SPENT = frozenset({ActionStatus.SENT, ActionStatus.SENDING, ActionStatus.FAILED,
                   ActionStatus.SKIPPED})
MIN_GAP_BEFORE_CLOSING = timedelta(days=1)


@dataclass(frozen=True)
class Outcome:
    """What one event does: the thread after it (None: no thread) and immediate actions."""

    thread: Thread | None
    actions: tuple[Action, ...] = ()
    log: str = ""
    changed: bool = False
    #: The owner's pause as the event leaves it (``pause``, ``resume``); None: unchanged.
    pause: Pause | None = None


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
        # A repeat's first time is its first occurrence, planned from the rule: not a
        # snooze-like override, which would remind twice.
        follow_up_at=None if event.repeat else event.when,
        repeat=event.repeat,
        written_at=event.written,
        expected=event.expected,
    )


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
    if event.repeat and event.problem is None:
        data["repeat"] = event.repeat
    if first is not None:
        data["next_kind"] = first.kind.value
        data["next_due"] = first.due.isoformat()
    return Action(
        key=answer_key(event.message_id, "receipt"),
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
    thread: Thread | None, event: ThreadEvent, settings: Settings, now: datetime,
    history: Sequence[Action] = (), replied: Action | None = None,
    paused: Pause | None = None,
) -> Outcome:
    """The effect of one event (other than :class:`NewThread`, which the store starts with
    :func:`new_thread` and :func:`receipt`) on its thread. ``history`` is every action the
    store holds for the thread (a ``send`` must not thank twice); ``replied`` the assistant's
    mail a command answers, when the store knows it (``send`` sends to the people its draft
    was written for); ``paused`` the owner's pause, if any (``pause`` and ``resume`` change
    it). Each kind of event is named here: a new one fails the type check."""
    match event:
        case Ignored():
            if event.notify_owner is None:
                return Outcome(thread, log=event.reason)
            notice = Action(
                key=answer_key(event.message_id, "error_notice"),
                kind=ActionKind.ERROR_NOTICE,
                due=now,
                recipients=(event.notify_owner,),
                data={"reason": event.reason, "answering": event.message_id},
            )
            return Outcome(thread, (notice,), log=event.reason)
        case OwnerCommand():
            if event.name in ("pause", "resume"):
                return _pause_command(thread, event, settings, now, paused)
            return _command(thread, event, settings, now, history, replied)
        case CounterpartReply() | OwnerFollowUp() | OwnerThanked() | OutOfOffice():
            if thread is None:
                return Outcome(None, log="no such thread")
            return _on_thread(thread, event, now, history)
        case _:
            assert_never(event)


def _on_thread(thread: Thread, event: CounterpartReply | OwnerFollowUp | OwnerThanked
               | OutOfOffice, now: datetime, history: Sequence[Action]) -> Outcome:
    """An event about a thread the store found: an answer, the owner's own mail, an
    out-of-office."""
    match event:
        case CounterpartReply():
            return _answer(thread, event, now)
        case OwnerFollowUp():
            outcome = _follow_up(thread, now)
            for answer in event.answers:
                assert outcome.thread is not None
                more = _answer(outcome.thread, answer, now)
                outcome = Outcome(more.thread, outcome.actions + more.actions,
                                  f"{outcome.log}; it quotes an answer: {more.log}",
                                  outcome.changed or more.changed)
            return outcome
        case OwnerThanked():
            return _thanked_by_hand(thread, event, now, history)
        case OutOfOffice():
            if event.until is None:
                return Outcome(thread,
                               log=f"out-of-office from {event.sender.email}, no return date")
            updated = dataclasses.replace(thread, away_until=event.until,
                                          away_capped=event.capped)
            cut = " (a later date named, cut to the longest wait)" if event.capped else ""
            return Outcome(
                updated,
                log=f"{event.sender.email} is away until {event.until.date().isoformat()}{cut}",
                changed=True,
            )
        case _:
            assert_never(event)


def _per_person(thread: Thread) -> bool:
    """Whether the thread's counterparts answer it one by one (an ask): thanks and reminders
    are then for exactly those who answered, or did not."""
    return KINDS[thread.kind].answered_by is AnsweredBy.COUNTERPARTS


def _follow_up(thread: Thread, now: datetime) -> Outcome:
    """The owner's own mail in the thread: the reminders count from now (an offer: answered)."""
    if thread.state is not ThreadState.OPEN:
        return Outcome(thread, log="owner wrote in a thread that is not open")
    if thread.repeat is not None:
        # A repeat keeps its own calendar, whoever writes in between.
        return Outcome(thread, log="owner wrote in a repeating thread: the repeat goes on")
    match thread.kind:
        case Kind.OFFER:
            updated = dataclasses.replace(thread, state=ThreadState.ANSWERED, answered_at=now)
            return Outcome(updated, log="owner answered the offer", changed=True)
        case Kind.ASK:
            updated = dataclasses.replace(thread, last_owner_activity=now, follow_up_at=None,
                                          followed_up_at=now)
            return Outcome(updated, log="owner followed up: reminders count from now",
                           changed=True)
        case Kind.NOTE:
            return Outcome(thread, log="owner wrote again about their note: it comes back "
                                       "as planned")
        case _:
            assert_never(thread.kind)


def _thanks_drafted_after(thread: Thread, history: Sequence[Action]) -> bool:
    """Whether a thank-you draft was mailed to the owner after the thread was closed."""
    return thread.closed_at is not None and any(
        a.kind is ActionKind.THANK_YOU_DRAFT and a.status in SPENT
        and (a.sent_at or a.due) >= thread.closed_at for a in history)


def thanked_by_hand_key(thread_id: int, email: str) -> str:
    """The key of the record of a thank-you the owner sent ``email`` by hand (one a person)."""
    return f"t{thread_id}/thank_you/by_hand/{quote(email, safe='@')}"


def _thanked_by_hand(
    thread: Thread, event: OwnerThanked, now: datetime, history: Sequence[Action],
) -> Outcome:
    """The owner's own thank-you: recorded as a sent thank-you (status SENT, never sent by
    the assistant), so :meth:`_Planner.thank_you` plans none and the pending draft is
    cancelled. Only after an answer from that person; a person a thank-you the assistant
    already sent or drafted covers is left as they are."""
    email = event.person.email
    if all(c.email != email for c in thread.counterparts):
        return Outcome(thread, log=f"{email} is not a counterpart of thread "
                                   f"{thread.id}: not a thank-you")
    if not _per_person(thread) or thread.answer_from(email) is None:
        return Outcome(thread, log=f"the owner wrote to {email}, who has not answered: "
                                   "not a thank-you")
    covered = set().union(*(
        thanked_people(thread, a.kind, a.data, a.recipients) for a in history
        if a.kind in THANKS and a.status in SPENT
    ))
    if email in covered:
        return Outcome(thread, log=f"the owner wrote to {email} again")
    record = Action(
        key=thanked_by_hand_key(thread.id, email), kind=ActionKind.THANK_YOU, due=now,
        thread_id=thread.id, recipients=(event.person,),
        data={"by_hand": event.message_id, "people": email},
        status=ActionStatus.SENT, sent_at=now,
    )
    return Outcome(thread, (record,), log=f"the owner thanked {event.person.email} by hand: "
                                          "no thank-you draft", changed=True)


def _answer(thread: Thread, event: CounterpartReply, now: datetime) -> Outcome:
    """A counterpart's answer: recorded for them alone. The others stay open (reminders and
    nudges go on for them); the ask is answered once every counterpart has answered."""
    email = event.sender.email
    if all(c.email != email for c in thread.counterparts):
        # Classification sends only counterparts' answers; a stranger never answers.
        return Outcome(thread, log=f"{email} is not a counterpart of thread "
                                   f"{thread.id}: not an answer")
    if not _per_person(thread):
        return Outcome(thread, log=f"{email} wrote again in thread {thread.id}")
    previous = thread.answer_from(email)
    if previous is not None:
        if event.trusted and not previous.trusted:
            # A genuine answer after a subject-only one: the thank-you may now go to them.
            answers = tuple(dataclasses.replace(a, trusted=True) if a.email == email else a
                            for a in thread.replies)
            return Outcome(dataclasses.replace(thread, answers=answers),
                           log=f"{email} wrote again in thread {thread.id}: the answer is "
                               f"theirs", changed=True)
        return Outcome(thread, log=f"{email} wrote again in thread {thread.id}")
    how = " (matched by subject and sender)" if event.by_fallback else ""
    if not event.trusted:
        how += " (not trusted: a thank-you only as a draft)"
    at = min(event.at, now) if event.at is not None else now
    # A late answer, after the closing note or "done", is still an answer: thanks are due.
    answers = (*thread.replies, Answer(email, at, event.trusted, event.excerpt))
    updated = dataclasses.replace(thread, answers=answers, reply_excerpt=event.excerpt)
    silent = updated.silent
    if not silent and thread.state in (ThreadState.OPEN, ThreadState.EXPIRED):
        updated = dataclasses.replace(updated, state=ThreadState.ANSWERED,
                                      answered_at=max(a.at for a in answers), closed_at=None)
    still = f"; still silent: {', '.join(c.email for c in silent)}" if silent else ""
    return Outcome(updated, log=f"answered by {email}{how}{still}", changed=True)


def _command(
    thread: Thread | None, event: OwnerCommand, settings: Settings, now: datetime,
    history: Sequence[Action] = (), replied: Action | None = None,
) -> Outcome:
    owner = (event.owner,)

    def reply(result: str, updated: Thread | None = thread, changed: bool = False,
              did: bool | None = None) -> Outcome:
        """The one-line answer to a command (``result``: "what it did: detail"); none when
        the command did something (``did``, default ``changed``) and ``confirm_commands``
        is false: a command that did nothing is always answered."""
        if (changed if did is None else did) and not settings.confirm_commands:
            return Outcome(updated, (), log=f"command {event.name}: {result} (not confirmed)",
                           changed=changed)
        action = Action(
            key=answer_key(event.message_id, "command_reply"),
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
        note = note or event.problem or ""
        if note:
            data["note"] = note
        if event.name == "unknown":
            data["unknown_command"] = event.line
        action = Action(
            key=answer_key(event.message_id, "help"),
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
            key=answer_key(event.message_id, "digest"),
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
    match event.name:
        case "done":
            if thread.repeat is not None and state in (ThreadState.OPEN,
                                                       ThreadState.ANSWERED):
                return _repeat_done(thread, history, settings, reply)
            if state in (ThreadState.OPEN, ThreadState.ANSWERED):
                updated = dataclasses.replace(thread, state=ThreadState.DONE, closed_at=now)
                return reply("done: no more reminders on this thread", updated, True)
            if state in (ThreadState.DONE, ThreadState.DECLINED) and _thanks_drafted_after(
                    thread, history):
                # The thank-you draft the closing made is settled by hand: the digest and the
                # status stop listing it (digest.unsent_draft: drafts mailed before closed_at).
                updated = dataclasses.replace(thread, closed_at=now)
                return reply("done: the thank-you draft is settled, nothing more goes out",
                             updated, True)
            return reply(f"nothing changed: it is already {state.value}")
        case "cancel":
            if state is ThreadState.CANCELLED:
                return reply("nothing changed: it is already cancelled")
            updated = dataclasses.replace(thread, state=ThreadState.CANCELLED, closed_at=now)
            return reply("cancelled: nothing more goes out on this thread", updated, True)
        case "decline":
            if not KINDS[thread.kind].declinable:
                return help_reply("decline is for offers; for an ask, reply done or cancel.")
            if state in (ThreadState.OPEN, ThreadState.ANSWERED):
                updated = dataclasses.replace(thread, state=ThreadState.DECLINED, closed_at=now)
                return reply(_declined(updated, history, settings), updated, True)
            return reply(f"nothing changed: it is already {state.value}")
        case "snooze":
            until = event.until
            if until is None:
                return help_reply("snooze needs a time, e.g. snooze 3 days.")
            if state is ThreadState.OPEN or (thread.repeat is not None
                                             and state is ThreadState.ANSWERED):
                # A repeat's snooze brings this time's reminder back; the next ones keep their
                # days.
                updated = dataclasses.replace(thread, follow_up_at=until)
            elif state is ThreadState.DONE and thread.kind is Kind.NOTE:
                # A note said done comes back when snoozed: there is no one else to wait on.
                updated = dataclasses.replace(thread, state=ThreadState.OPEN, follow_up_at=until,
                                              closed_at=None)
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
            goes = next_sending_time(until, settings.sending, settings.zone_for(thread.owner.email))
            moved = "" if goes == until else f" (first sending time after {until.isoformat()})"
            return reply(f"snoozed until {goes.isoformat()}{moved}", updated, True)
        case "send":
            # What "send" makes of the mail it answers (kinds.ActionSpec.send_makes).
            match ACTIONS[event.replied_kind].send_makes if event.replied_kind else None:
                case ActionKind.LETTER:
                    return _send_letter(thread, event, now, replied, reply, help_reply)
                case ActionKind.NUDGE | ActionKind.THANK_YOU as kind:
                    pass
                case _:
                    return help_reply("There is no draft in that mail to send.")
            # An expired ask: "snooze" brings it back first; a thank-you for a late answer to
            # it may still go.
            if state is ThreadState.CANCELLED or (state in CLOSED_STATES
                                                   and kind is ActionKind.NUDGE):
                return reply(f"nothing sent: it is {state.value}")
            people = _draft_people(thread, kind, replied)
            if kind is ActionKind.THANK_YOU:
                thanked = [a for a in history if a.kind is ActionKind.THANK_YOU
                           and a.status in SPENT and a.status is not ActionStatus.SKIPPED]
                done = set().union(*(thanked_people(thread, a.kind, a.data, a.recipients)
                                     for a in thanked))
                left = tuple(c for c in people if c.email not in done)
                if not left:
                    # One thank-you per person (SPEC.md "Exactly once"): a second "send"
                    # repeats none.
                    when = thanked[-1].sent_at or thanked[-1].due
                    return reply(f"nothing sent: the thank-you went to "
                                 f"{', '.join(c.email for c in people)} on {when.isoformat()}")
                people = left
            if not people:
                return reply("nothing sent: everyone has answered")
            data = {"requested": "send", "people": ",".join(c.email for c in people)}
            if event.replied_kind is ActionKind.CHECK_IN:
                data["flavour"] = "check_in"  # the check-in draft, not a follow-up
            if event.text:
                data["text"] = event.text
            if KINDS[thread.kind].declinable and state is ThreadState.DECLINED:
                data["flavour"] = "declined"
            action = Action(
                # Keyed by the draft's mail, so a second "send" to the same draft sends nothing.
                key=send_key(thread.id, kind, event.replied_to or event.message_id),
                kind=kind,
                due=now,
                thread_id=thread.id,
                recipients=people,
                data=data,
            )
            what = "your words" if event.text else "the draft"
            confirm = reply(f"sent {what} to {', '.join(c.email for c in people)}", did=True)
            return Outcome(thread, (action, *confirm.actions), log=confirm.log)
        case "help" | "unknown" | "status" | "pause" | "resume":
            return help_reply()  # answered above; pause and resume by _pause_command
        case _:
            assert_never(event.name)


def _pause_command(thread: Thread | None, event: OwnerCommand, settings: Settings,
                   now: datetime, paused: Pause | None) -> Outcome:
    """``pause <until>`` and ``resume`` (:mod:`mailhelper.decide.pause`): the owner's pause,
    whatever
    mail the command answers, and one short confirmation with the end and the release."""
    owner = fold(event.owner.email)
    running = paused if paused is not None and paused.holds(now) else None
    change: Pause | None = None
    if event.name == "pause":
        assert event.until is not None  # parse_command makes a pause without one "unknown"
        change = new_pause(owner, event.until, now, settings, running)
        result = (f"paused until {event.until.isoformat()}: nothing goes out for you until "
                  f"then. What falls due meanwhile comes on {change.release.isoformat()}, "
                  "at most one mail per thread; reply resume to end the pause sooner")
    elif running is None:
        result = "nothing changed: nothing was paused"
    else:
        change = resumed(running, now, settings)
        result = (f"resumed: what the pause held comes on {change.release.isoformat()}, at "
                  "most one mail per thread")
    action = Action(
        key=answer_key(event.message_id, "command_reply"),
        kind=ActionKind.COMMAND_REPLY,
        due=now,
        recipients=(event.owner,),
        data={"command": event.line or event.name, "result": result,
              "answering": event.message_id},
    )
    return Outcome(thread, (action,), log=f"command {event.name}: {result}", pause=change)


def _repeat_done(thread: Thread, history: Sequence[Action], settings: Settings,
                 reply: Callable[[str, Thread | None, bool], Outcome]) -> Outcome:
    """``done`` on a repeating note or ask: this time is done (a snoozed reminder of it is
    dropped); the repeat goes on, and the answer says when it comes next."""
    updated = dataclasses.replace(thread, follow_up_at=None, snoozed_until=None)
    upcoming = [a for a in desired_actions(updated, history, settings)
                if a.key.startswith(repeat_prefix(thread.id))]
    if not upcoming:
        return reply("done for this time; it does not repeat any more", updated, True)
    due = min(a.due for a in upcoming)
    return reply(f"done for this time: the next reminder is on {due.isoformat()} "
                 f"(reply cancel to stop them all)", updated, True)


def repeat_prefix(thread_id: int) -> str:
    """The key prefix of a repeating thread's reminders: ``t7/repeat/20261207T090000Z`` is
    the occurrence of 7 Dec 09:00 UTC (each occurrence its own exactly-once key), and
    ``t7/repeat/snooze/<until>`` a snoozed one."""
    return f"t{thread_id}/repeat/"


def _send_letter(
    thread: Thread, event: OwnerCommand, now: datetime, replied: Action | None,
    reply: Callable[..., Outcome], help_reply: Callable[..., Outcome],
) -> Outcome:
    """``send`` on an offer reminder or a return-the-favour reminder: a :attr:`ActionKind.LETTER`
    to the people that mail was about. An offer reminder's draft has blanks to fill, so only
    the owner's own words go (and the offer is then answered, as when the owner writes to
    them with the assistant in Cc); a return-the-favour reminder's draft may go as it is.
    One letter per reminder: a second ``send`` to it sends nothing (the key is the mail's)."""
    offer = event.replied_kind is ActionKind.OFFER_FOLLOW_UP
    if offer and not event.text:
        return help_reply('That draft has blanks to fill in: reply "send" with your own words '
                          "below it, and I'll send those.")
    if thread.state is ThreadState.CANCELLED:
        return reply("nothing sent: it is cancelled")
    named = replied.data.get("people", "") if replied is not None else ""
    wanted = set(named.split(",")) if named else None
    people = tuple(c for c in (thread.counterparts if offer or not _per_person(thread)
                               else thread.answered)
                   if wanted is None or c.email in wanted)
    if not people:
        return reply("nothing sent: nobody to write to")
    data = {"requested": "send", "people": ",".join(c.email for c in people),
            "about": "offer" if offer else "return_favor"}
    if event.text:
        data["text"] = event.text
    action = Action(
        key=send_key(thread.id, ActionKind.LETTER, event.replied_to or event.message_id),
        kind=ActionKind.LETTER,
        due=now,
        thread_id=thread.id,
        recipients=people,
        data=data,
    )
    what = "your words" if event.text else "the draft"
    updated, changed = thread, False
    if offer and thread.state is ThreadState.OPEN:
        updated = dataclasses.replace(thread, state=ThreadState.ANSWERED, answered_at=now)
        changed = True
    confirm = reply(f"sent {what} to {', '.join(c.email for c in people)}", updated, changed,
                    did=True)
    return Outcome(updated, (action, *confirm.actions), log=confirm.log, changed=changed)


def _draft_people(thread: Thread, kind: ActionKind, replied: Action | None) -> tuple[
        Address, ...]:
    """Whom ``send`` on a draft writes to: the people the draft was written for (its
    ``people``), who are still counterparts; a draft without them (from an older version)
    goes to the people it would be written for now: the silent ones for a follow-up, those
    who answered for a thank-you (everyone, for an offer)."""
    named = replied.data.get("people", "") if replied is not None else ""
    if named:
        wanted = set(named.split(","))
        people = tuple(c for c in thread.counterparts if c.email in wanted)
    elif kind is ActionKind.NUDGE:
        people = thread.silent
    elif _per_person(thread):
        people = thread.answered
    else:
        people = thread.counterparts
    if kind is ActionKind.NUDGE:
        # Someone who answered since the reminder was written is not nudged.
        people = tuple(c for c in people if thread.answer_from(c.email) is None)
    return people


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
        """The thread owner's zone (``owners[].timezone``, else ``timezone``): their quiet
        hours, business days and calendar days."""
        return self.settings.zone_for(self.thread.owner.email)

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

    def silent_people(self) -> dict[str, str]:
        """An ask's reminder names who is still silent once someone answered."""
        thread = self.thread
        if not _per_person(thread) or not thread.replies:
            return {}
        return {"people": ",".join(c.email for c in thread.silent)}

    def nudged(self) -> dict[str, str]:
        """What happened since the series began that an owner reminder tells: when the
        latest follow-up went to the counterparts (scheduled, or the owner's ``send``)."""
        base = self.thread.last_owner_activity
        sent = [a.sent_at for a in self.history
                if a.kind is ActionKind.NUDGE and a.status is ActionStatus.SENT
                and a.sent_at is not None and a.sent_at >= base]
        return {"nudged": max(sent).isoformat()} if sent else {}

    def owner_nudge(self) -> datetime | None:
        """When the latest follow-up the owner had sent with ``send`` in this series went, or
        goes (a pending one is due now): the reminders are re-planned around it when the
        command is read, before anything already due is sent in that cycle."""
        base = self.thread.last_owner_activity
        times = [a.sent_at or a.due for a in self.history
                 if a.kind is ActionKind.NUDGE and a.data.get("requested") == "send"
                 and a.status in (ActionStatus.SENT, ActionStatus.SENDING,
                                  ActionStatus.PENDING)
                 and (a.sent_at or a.due) >= base]
        return max(times, default=None)

    def reminders(self) -> None:
        """The open thread's reminders, on its kind's own schedule section. Each kind is
        named here: a new kind fails the type check instead of taking another's schedule."""
        match self.thread.kind:
            case Kind.ASK:
                self.follow_ups(self.settings.schedules.ask.follow_up, ActionKind.FOLLOW_UP,
                                ask=True)
            case Kind.OFFER:
                self.follow_ups(self.settings.schedules.offer.follow_up,
                                ActionKind.OFFER_FOLLOW_UP, ask=False)
            case Kind.NOTE:
                self.note_reminder()
            case _:
                assert_never(self.thread.kind)

    def note_reminder(self) -> None:
        """A note to self comes back once: at its tag's time, else ``schedules.note.after``
        after it came; a snooze brings it back again (a new key: the time is in it)."""
        thread = self.thread
        due = thread.follow_up_at or self.settings.schedules.note.after.after(
            thread.created, self.zone)
        self.add(ActionKind.NOTE_REMINDER, f"t{thread.id}/note_reminder/{stamp(due)}", due,
                 (thread.owner,), {"answering": thread.root_message_id})

    def repeats(self) -> None:
        """A repeating note or ask: one reminder per occurrence of its RRULE, each its own
        key (the occurrence's UTC time in it), so none goes twice and none is skipped over
        on a crash. The next occurrence counts from the last one reminded, or from when
        that reminder went, if later: a time missed while the assistant was down comes
        once, late, not in a burst. A snooze adds a reminder of this time at ``follow_up_at``.
        """
        thread = self.thread
        # Imported here: only a repeating reminder needs the time reader, and a cycle with
        # nothing new (a cron poll) would otherwise load its rules for nothing.
        from mailhelper.decide.timewords import first_occurrence, next_occurrence

        rule = thread.repeat
        assert rule is not None
        kind = KINDS[thread.kind].repeat_reminder
        zone = self.settings.zone_for(thread.owner.email)
        prefix = repeat_prefix(thread.id)
        snoozes = f"{prefix}snooze/"
        reminded = [a for a in self.history if a.key.startswith(prefix)
                    and not a.key.startswith(snoozes) and a.status in SPENT]
        data = {"answering": thread.root_message_id, "repeat": rule}
        if thread.counterparts:
            data["people"] = ",".join(c.email for c in thread.counterparts)
        try:
            if not reminded:
                occurrence = first_occurrence(rule, thread.created, zone)
            else:
                last = max(reminded, key=_occurrence)
                after = max(_occurrence(last), last.sent_at or last.due)
                occurrence = next_occurrence(rule, after, zone, thread.created)
        except (ValueError, OverflowError):
            occurrence = None  # a rule the parser never makes: nothing to plan
        if occurrence is not None:
            self.add(kind, f"{prefix}{stamp(occurrence)}", occurrence, (thread.owner,),
                     {**data, "occurrence": occurrence.isoformat()})
        if thread.follow_up_at is not None:
            self.add(kind, f"{snoozes}{stamp(thread.follow_up_at)}", thread.follow_up_at,
                     (thread.owner,), {**data, "snoozed": "yes"})

    def follow_ups(self, offsets: tuple[Duration, ...], kind: ActionKind, *, ask: bool) -> None:
        thread, zone = self.thread, self.zone
        base = thread.last_owner_activity
        prefix = f"t{thread.id}/{kind.value}/{stamp(base)}/"
        done = self.sent_with_prefix(prefix)
        n = len(done)
        last_sent = max((a.sent_at or a.due for a in done), default=None)
        override = thread.follow_up_at
        if override is not None and last_sent is not None and override <= last_sent:
            override = None
        # The follow-up the owner had sent (``send``), even one going in this very cycle: the
        # next reminder keeps the schedule's spacing from it, the closing note a day.
        owner_sent = self.owner_nudge() if ask else None
        if n < len(offsets):
            due = offsets[n].after(base, zone)
            gap = offsets[n].approximate - (offsets[n - 1].approximate if n else timedelta())
            if override is not None:
                due = override
            else:
                if n and last_sent is not None:
                    due = max(due, last_sent + gap)
                if owner_sent is not None:
                    due = max(due, owner_sent + gap)
            moved = self.away_bound(due)
            data = {"number": str(n + 1), "of": str(len(offsets)), **self.away_note(due, moved),
                    **self.silent_people(), **(self.nudged() if ask else {})}
            self.add(kind, f"{prefix}{n + 1}", moved, (thread.owner,), data)
        elif ask:
            due = self.settings.schedules.ask.give_up_after.after(base, zone)
            for before in (last_sent, owner_sent):
                if before is not None:
                    due = max(due, before + MIN_GAP_BEFORE_CLOSING)
            if override is not None:
                due = override
            self.add(
                ActionKind.CLOSING_NOTE,
                f"t{thread.id}/closing_note/{stamp(base)}",
                due,
                (thread.owner,),
                {**self.silent_people(), **self.nudged()},
            )
        if ask and thread.silent:
            for i, offset in enumerate(self.settings.schedules.ask.nudge_counterpart, start=1):
                due = self.away_bound(offset.after(base, zone))
                self.add(
                    ActionKind.NUDGE,
                    f"t{thread.id}/nudge/{stamp(base)}/{i}",
                    due,
                    thread.silent,  # who answered is not nudged
                    {"number": str(i), **self.silent_people()},
                    owner_facing=False,
                )

    def thank_you(self) -> None:
        match self.thread.kind:
            case Kind.ASK:
                self.thanks_for_answers()
            case Kind.OFFER:
                self.thanks_for_offer()
            case Kind.NOTE:
                pass  # nobody else is on a note: nobody to thank
            case _:
                assert_never(self.thread.kind)

    def thanks_for_offer(self) -> None:
        thread = self.thread
        start: datetime | None = None
        flavour = "helped"
        if thread.state is ThreadState.DECLINED:
            start, flavour = thread.closed_at, "declined"
        elif thread.state is ThreadState.DONE:
            start = thread.closed_at
        if start is None:
            return
        key = f"t{thread.id}/thank_you"
        # One thank-you per thread, whichever mode: a change of mode never thanks twice; and
        # none at all once the owner thanked them by hand.
        if (self.spent(key) or self.sent_with_prefix(f"t{thread.id}/thank_you/send/")
                or self.sent_with_prefix(f"t{thread.id}/thank_you/by_hand/")):
            return
        # An offer's thanks follow the owner's own done or decline: they may go directly.
        after = self.settings.schedules.thank_you.after
        people = {"people": ",".join(c.email for c in thread.counterparts)}
        if self.settings.schedules.thank_you.mode == "send":
            self.add(ActionKind.THANK_YOU, key, after.after(start, self.zone),
                     thread.counterparts, {"flavour": flavour, **people}, owner_facing=False)
        else:
            self.add(ActionKind.THANK_YOU_DRAFT, key, after.after(start, self.zone),
                     (thread.owner,), {"flavour": flavour, **people})

    def thanked(self) -> set[str]:
        """Everyone a thank-you or a draft of one already covers (or ever will: a skipped
        one of a backfill counts, as it did for the whole thread)."""
        return set().union(*(
            thanked_people(self.thread, a.kind, a.data, a.recipients)
            for a in self.history
            if a.kind in THANKS and a.status in SPENT
        ))

    def thanks_for_answers(self) -> None:
        """A thank-you for exactly the people who answered and were not thanked yet. Those
        who answered before one went share it (it is due ``thank_you.after`` the first of
        their answers); who answers after it gets their own."""
        thread = self.thread
        thanked = self.thanked()
        due = [a for a in thread.replies if a.email not in thanked]
        if not due:
            return
        after = self.settings.schedules.thank_you.after
        send_mode = self.settings.schedules.thank_you.mode == "send"
        # Thanking the counterpart directly needs an answer known to be theirs: else a draft.
        direct = [a for a in due if send_mode and a.trusted]
        drafts = [a for a in due if a not in direct]
        for group, kind in ((direct, ActionKind.THANK_YOU), (drafts, ActionKind.THANK_YOU_DRAFT)):
            if not group:
                continue
            emails = {a.email for a in group}
            people = tuple(c for c in thread.counterparts if c.email in emails)
            data = {"flavour": "helped", "people": ",".join(c.email for c in people)}
            key = f"t{thread.id}/thank_you/to/{quote(group[0].email, safe='@')}"
            start = min(a.at for a in group)
            if kind is ActionKind.THANK_YOU:
                self.add(kind, key, after.after(start, self.zone), people, data,
                         owner_facing=False)
            else:
                self.add(kind, key, after.after(start, self.zone), (thread.owner,), data)

    def return_favor(self) -> None:
        thread = self.thread
        if thread.state is not ThreadState.DONE or thread.closed_at is None:
            return
        # Remember who helped: those who answered an ask (nobody, no reminder), the
        # people who offered.
        match thread.kind:
            case Kind.ASK:
                people = thread.answered
            case Kind.OFFER:
                people = thread.counterparts
            case Kind.NOTE:
                return  # nobody helped with a note to self
            case _:
                assert_never(thread.kind)
        if not people:
            return
        after = self.settings.schedules.return_favor.after
        self.add(
            ActionKind.RETURN_FAVOR,
            f"t{thread.id}/return_favor",
            after.after(thread.closed_at, self.zone),
            (thread.owner,),
            {"people": ",".join(c.email for c in people)},
        )


def desired_actions(
    thread: Thread, history: Sequence[Action], settings: Settings
) -> list[Action]:
    """The scheduled actions ``thread`` should have pending now. ``history`` is every action the
    store holds for the thread, in any status."""
    planner = _Planner(thread, history, settings)
    if thread.repeat is not None:
        # A repeat goes on through answers, until the owner cancels it.
        if thread.state in (ThreadState.OPEN, ThreadState.ANSWERED):
            planner.repeats()
    elif thread.state is ThreadState.OPEN:
        planner.reminders()
    if thread.state is not ThreadState.CANCELLED:
        # An expired ask is thanked for the answers it had (a late one after the note).
        planner.thank_you()
    if thread.state not in CLOSED_STATES:
        planner.return_favor()
    return planner.out


def _occurrence(action: Action) -> datetime:
    """The occurrence a repeat's reminder is for: its ``occurrence``, else its key's stamp."""
    if action.data.get("occurrence"):
        return datetime.fromisoformat(action.data["occurrence"])
    return datetime.strptime(action.key.rsplit("/", 1)[1], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=UTC)


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
