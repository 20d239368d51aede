"""Carrying out decisions in the store: an event's outcome, and the re-plan of a thread's
scheduled actions. The decisions themselves are :mod:`mailhelper.decide.plan`'s; this module only
writes what plan returned, inside the caller's transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from datetime import datetime
from typing import assert_never

from mailhelper.decide import plan
from mailhelper.decide.digest import items_of
from mailhelper.decide.digest_schedule import next_digest
from mailhelper.decide.events import (
    CounterpartReply,
    DigestCommands,
    Event,
    Ignored,
    NewThread,
    OutOfOffice,
    OwnerCommand,
    OwnerFollowUp,
    OwnerThanked,
    ThreadEvent,
)
from mailhelper.decide.pause import HELD, SUPERSEDED, owner_of_action
from mailhelper.decide.release import superseded
from mailhelper.model.addresses import fold
from mailhelper.model.kinds import ACTIONS, answer_key, is_scheduled_key
from mailhelper.model.settings import Settings
from mailhelper.model.values import (
    CLOSED_STATES,
    Action,
    ActionKind,
    ActionStatus,
    Pause,
    Thread,
)
from mailhelper.read.names import read_name
from mailhelper.state.roles import Schedule
from mailhelper.state.store import Store

log = logging.getLogger(__name__)


def is_scheduled(action: Action) -> bool:
    """Scheduled actions come from :func:`plan.desired_actions`; immediate ones (answers to a
    mail, drafts the owner asked to send) are never re-planned away
    (:func:`mailhelper.model.kinds.is_scheduled_key`)."""
    return is_scheduled_key(action.kind, action.key)


def replan(store: Schedule, thread: Thread, settings: Settings, now: datetime,
           history: Sequence[Action] | None = None) -> int:
    """Bring the thread's pending scheduled actions in line with its state; count the changes.
    ``history``: the thread's actions as the store has them now, when the caller read them
    (None: they are read here)."""
    if history is None:
        history = store.actions_for(thread.id)
    desired = plan.desired_actions(thread, history, settings)
    # A closed thread sends nothing more (SPEC.md: cancel = "send nothing more"): a draft the
    # owner said "send" to just before "cancel" stays unsent too.
    closed = thread.state in CLOSED_STATES
    pending = [a for a in history if a.status.value == "pending"
               and (is_scheduled(a) or (closed and ACTIONS[a.kind].to_counterpart))]
    change = plan.reconcile(desired, pending)
    store.apply_reconciliation(change.add, change.cancel, change.move, now)
    return len(change.add) + len(change.cancel) + len(change.move)


def apply_event(store: Store, settings: Settings, event: Event, now: datetime) -> str:
    """Write one event's effects; return the line to log. The caller holds the transaction."""
    match event:
        case NewThread():
            return _start(store, settings, event, now)
        case DigestCommands():
            return _digest_commands(store, settings, event, now)
        case _:
            return _on_thread(store, settings, event, now)


def _on_thread(store: Store, settings: Settings, event: ThreadEvent, now: datetime) -> str:
    """An event :func:`plan.apply` decides on: its thread's new state and actions."""
    thread_id = getattr(event, "thread_id", None)
    thread = store.thread(thread_id) if thread_id is not None else None
    history = store.actions_for(thread.id) if thread is not None else ()
    replied = None
    if isinstance(event, OwnerCommand) and event.replied_to:
        replied = store.action_by_message_id(event.replied_to)
    paused = store.pause_for(event.owner.email) if isinstance(event, OwnerCommand) else None
    outcome = plan.apply(thread, event, settings, now, history, replied, paused)
    if outcome.pause is not None:
        set_pause(store, settings, outcome.pause, now)
    for action in outcome.actions:
        if action.status is ActionStatus.SENT:
            store.record_sent_by_owner(action)  # the owner's own mail: nothing to send
        else:
            store.add_action(action, now)
    if outcome.thread is not None:
        if outcome.changed:
            store.save_thread(outcome.thread)
        if isinstance(event, CounterpartReply | OwnerFollowUp | OwnerThanked):
            store.add_thread_messages(outcome.thread.id, (event.message_id,))
        if isinstance(event, CounterpartReply) and event.other_address:
            store.add_other_address(event.other_address, event.sender.email)
        # The actions read above are still the store's when nothing was added or paused
        # since (saving the thread, its messages or an address touches no action).
        unchanged = (thread is not None and outcome.thread.id == thread.id
                     and not outcome.actions and outcome.pause is None)
        replan(store, outcome.thread, settings, now, history if unchanged else None)
    kind = _event_kind(event)
    store.log_event(thread_id, now, kind, event.message_id, outcome.log)
    return f"{kind}: {outcome.log}" if outcome.log else kind


def _digest_commands(store: Store, settings: Settings, event: DigestCommands,
                     now: datetime) -> str:
    """Each line of a reply to the digest, on the item its number names in that digest (as
    if the owner had answered that thread's own mail: ``send 2`` answers the item's draft,
    so it sends once however it is asked), then one answer listing what each line did. A
    line that could not be read, or names no item, does nothing."""
    digest = store.action_by_message_id(event.replied_to)
    items = items_of(digest.data) if digest is not None else {}
    results: list[str] = []
    for number, line in enumerate(event.commands, start=1):
        item = items.get(line.number) if line.number is not None else None
        if line.problem is not None:
            results.append(f"{line.line}: {line.problem}, so nothing was done")
            continue
        if item is None:
            results.append(f"{line.line}: {_items_named(items)}, so nothing was done")
            continue
        thread = store.thread(item[0])
        draft = store.action(item[1]) if item[1] is not None else None
        command = OwnerCommand(
            f"{event.message_id}#{number}", event.owner, line.name, item[0],
            draft.kind if draft is not None else None, line.until, line.line,
            store.message_id_for(draft) if draft is not None else None)
        history = store.actions_for(item[0])
        outcome = plan.apply(thread, command, settings, now, history, draft)
        said = [a for a in outcome.actions
                if a.kind in (ActionKind.COMMAND_REPLY, ActionKind.HELP)]
        for action in outcome.actions:
            if action not in said:
                store.add_action(action, now)
        if outcome.thread is not None:
            if outcome.changed:
                store.save_thread(outcome.thread)
            replan(store, outcome.thread, settings, now)
        words = [_in_words(a.data.get("result") or a.data.get("note") or "nothing done",
                           thread, draft) for a in said]
        results.append(f"{line.line}: {'; '.join(words) or 'done'}")
        store.log_event(item[0], now, "command", event.message_id, outcome.log)
    if not event.commands:
        results = ["I found no command in your reply, so nothing was done"]
    answer = Action(
        key=answer_key(event.message_id, "command_reply"),
        kind=ActionKind.COMMAND_REPLY,
        due=now,
        recipients=(event.owner,),
        data={"command": ", ".join(c.line for c in event.commands) or "(empty)",
              "result": "; ".join(results), "lines": json.dumps(results),
              "reply_subject": reply_subject(event.subject),
              "answering": event.message_id},
    )
    store.add_action(answer, now)
    detail = "; ".join(results)
    store.log_event(None, now, "digest-commands", event.message_id, detail)
    return f"digest commands: {detail}"


#: What ``send`` on a digest item's draft sends, as the answer names it.
_SENT_WHAT = {ActionKind.NUDGE: "your follow-up", ActionKind.THANK_YOU: "your thank-you",
              ActionKind.LETTER: "your letter"}


def _items_named(items: dict[int, tuple[int, int | None]]) -> str:
    """Which numbers a digest has, for a line that named another one.

    >>> _items_named({1: (4, None)})
    'that digest has only item 1'
    >>> _items_named({1: (4, None), 2: (5, 6)})
    'that digest has items 1 to 2'
    """
    if not items:
        return "that digest has no numbered items"
    if len(items) == 1:
        return f"that digest has only item {min(items)}"
    return f"that digest has items {min(items)} to {max(items)}"


def _in_words(result: str, thread: Thread | None, draft: Action | None) -> str:
    """A command's result as the answer to a digest says it: people by name, not address
    ("sent your follow-up to Carlos Ruiz"), and "what: detail" as one clause."""
    if draft is not None and ACTIONS[draft.kind].send_makes in _SENT_WHAT:
        made = ACTIONS[draft.kind].send_makes
        assert made is not None
        result = result.replace("sent the draft", f"sent {_SENT_WHAT[made]}", 1)
    for person in thread.counterparts if thread is not None else ():
        name = read_name(person.name, person.email).full or person.email
        result = result.replace(person.email, name)
    head, colon, detail = result.partition(": ")
    return f"{head}, {detail}" if colon else result


def reply_subject(subject: str) -> str:
    """The subject of an answer to the owner's mail: "Re: " and theirs, without its own
    "Re:"s and tap token (a digest's subject when the owner replied to one).

    >>> reply_subject("RE: Re: Your digest: 2 drafts to send [#0a1b2c3d]")
    'Re: Your digest: 2 drafts to send'
    """
    bare = re.sub(r"\s*\[#[0-9a-fA-F]+\]", "", subject or "")
    bare = re.sub(r"^(?:\s*(?:re|aw|sv|fwd?)\s*:\s*)+", "", bare, flags=re.IGNORECASE)
    return f"Re: {' '.join(bare.split())}" if bare.strip() else ""


def _start(store: Store, settings: Settings, event: NewThread, now: datetime) -> str:
    if event.problem is not None:
        notice = plan.receipt(event, None, None, settings, now)
        if notice is not None:
            store.add_action(notice, now)
        store.log_event(None, now, "not-understood", event.message_id, event.problem)
        return f"not understood: {event.problem}"
    thread = plan.new_thread(event, store.next_thread_id(), now)
    store.save_thread(thread)
    store.add_thread_messages(thread.id, event.thread_ids)
    replan(store, thread, settings, now)
    pending = [a for a in store.actions_for(thread.id) if a.status.value == "pending"]
    first = min(pending, key=lambda a: a.due, default=None)
    ack = plan.receipt(event, thread, first, settings, now)
    if ack is not None:
        store.add_action(ack, now)
    who = ", ".join(c.email for c in thread.counterparts)
    detail = f"new {thread.kind.value} to {who}: {thread.subject!r}"
    store.log_event(thread.id, now, "created", event.message_id, detail)
    return detail


def _event_kind(event: ThreadEvent) -> str:
    """The event's name in the log (a new kind of event fails the type check here)."""
    match event:
        case CounterpartReply():
            return "reply"
        case OwnerFollowUp():
            return "owner-follow-up"
        case OutOfOffice():
            return "out-of-office"
        case OwnerCommand():
            return "command"
        case OwnerThanked():
            return "owner-thanked"
        case Ignored():
            return "ignored"
        case _:
            assert_never(event)


def plan_digests(store: Store, settings: Settings, now: datetime) -> None:
    """Keep one pending digest per owner at the next occurrence of ``schedules.digest.rrule``.

    A pending digest already due (missed while the assistant was down) is left to go out; a
    future one that no longer matches the rule (the config changed) is replaced. The next
    occurrence counts from ``now`` or from the last digest sent to that owner, whichever is
    later: a clock behind an earlier run's (``--now``) never plans a digest at or before one
    that went, so none goes twice the same day and the next one is not dropped.
    """
    rule = settings.schedules.digest.rrule
    anchor_text = store.get_meta("digest_anchor")
    if anchor_text is None:
        store.set_meta("digest_anchor", now.isoformat())
        anchor = now
    else:
        anchor = datetime.fromisoformat(anchor_text)
    pending = [a for a in store.pending(ActionKind.DIGEST) if a.data.get("reason") == "schedule"]
    for owner in settings.owners:
        mine = [a for a in pending if a.recipients and a.recipients[0].email == owner.email]
        # The rule's BYHOUR and BYDAY are the owner's own (owners[].timezone).
        last = store.last_digest(owner.email)
        after = now if last is None else max(now, last)
        due = next_digest(rule, after, settings.zone_for(owner.email), anchor) if rule else None
        keep = [a for a in mine if (a.due <= now and (last is None or a.due > last))
                or (due is not None and a.due == due)]
        drop = [a for a in mine if a not in keep]
        if drop:
            store.apply_reconciliation((), drop, (), now)
        if not keep and due is not None:
            store.add_action(plan.digest_action(owner, due), now)


def schedule_fingerprint(settings: Settings) -> str:
    """A digest of every setting that decides due times; a change means re-planning."""
    zones = tuple((o.email, o.timezone.key) for o in settings.owner_times if o.timezone)
    text = repr((settings.schedules, settings.sending, settings.timezone.key, settings.confirm))
    if zones:  # only then: an unchanged config must keep the fingerprint it had
        text += repr(zones)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def replan_if_config_changed(store: Store, settings: Settings, now: datetime) -> int | None:
    """Re-plan every unfinished thread when the schedules changed since the last run."""
    fingerprint = schedule_fingerprint(settings)
    previous = store.get_meta("schedule_fingerprint")
    if previous == fingerprint:
        return None
    changes = 0
    with store.transaction():
        if previous is not None:
            for thread in store.threads():
                changes += replan(store, thread, settings, now)
        store.set_meta("schedule_fingerprint", fingerprint)
    if previous is not None:
        log.info("schedules changed since the last run: re-planned %d pending actions", changes)
    return changes


def set_pause(store: Store, settings: Settings, pause: Pause, now: datetime) -> None:
    """Record an owner's new or changed pause. Mail an earlier pause held is let go, to be held
    again by this one (:meth:`mailhelper.engine.outbox.Outbox.send_due`) until its release."""
    store.set_pause(pause)
    for action in store.pending():
        if action.id is None or action.last_error != HELD:
            continue
        thread = store.thread(action.thread_id) if action.thread_id is not None else None
        if owner_of_action(action, thread, settings) == fold(pause.owner):
            store.set_status(action.id, ActionStatus.PENDING, next_attempt=None,
                             last_error=None)


def release_pauses(store: Store, settings: Settings, now: datetime) -> list[str]:
    """End every pause whose release has come (:mod:`mailhelper.decide.pause`): in each of the
    owner's threads the mails the pause held but a later one supersedes are skipped, with the
    reason, so at most one per thread goes now; then the pause is forgotten. One transaction
    per owner; returns a log line per pause ended."""
    lines = []
    for pause in store.pauses():
        if pause.holds(now):
            continue
        skipped = 0
        with store.transaction():
            for thread in store.threads():
                if fold(thread.owner.email) != pause.owner:
                    continue
                skipped += _skip_superseded(store, thread, settings, pause.release, now)
            store.end_pause(pause.owner)
            line = (f"the pause of {pause.owner} ended ({pause.until.isoformat()}): what it "
                    f"held goes now; {skipped} earlier mail(s) superseded, not sent")
            store.log_event(None, now, "pause-ended", None, line)
        log.info("%s", line)
        lines.append(line)
    return lines


def _skip_superseded(store: Store, thread: Thread, settings: Settings, release: datetime,
                     now: datetime) -> int:
    """Skip the thread's held mails a later one supersedes; count them."""
    replan(store, thread, settings, now)
    victims, after = superseded(thread, store.actions_for(thread.id), settings, release)
    for victim in victims:
        stored = store.action_by_key(victim.key)
        if stored is None:
            store.add_action(victim, now)
            stored = store.action_by_key(victim.key)
        assert stored is not None and stored.id is not None
        if stored.status is ActionStatus.PENDING:
            store.set_status(stored.id, ActionStatus.SKIPPED, last_error=SUPERSEDED,
                             next_attempt=None)
    if after != thread:
        store.save_thread(after)
    if victims:
        replan(store, after, settings, now)
    return len(victims)
