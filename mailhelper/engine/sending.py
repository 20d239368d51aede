"""The engine's side of sending: what a mail is made from, and what its acceptance changes.

:class:`~mailhelper.engine.outbox.Outbox` runs the exactly-once protocol (attempt with the exact
bytes, send through a :class:`~mailhelper.mail.transport.Transport`, record, file in Sent); the
decisions around it live here, so they can be reached with a store alone (the roles of
:mod:`mailhelper.state.roles` each needs), without any transport or mailbox:

- :func:`render_job`: everything one action's mail is made from (the thread, its references,
  and for a digest its items, figures, ledger and what is owed, :mod:`mailhelper.decide.owed`);
- :func:`record_sent`: the bookkeeping after the server accepted a mail (or the Sent folder
  showed it went): the action is sent, the thread moves on
  (:func:`mailhelper.decide.plan.after_sent`) and its schedule is planned again
  (:func:`mailhelper.engine.tracker.replan`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from mailhelper.decide import owed, plan
from mailhelper.decide.digest import Digest
from mailhelper.decide.digest import build as build_digest
from mailhelper.engine.agenda import histories
from mailhelper.engine.tracker import replan
from mailhelper.model.settings import Settings
from mailhelper.model.values import Action, ActionKind, Thread, ThreadState
from mailhelper.state.roles import ThreadsAndSchedule, ThreadsScheduleHistory

if TYPE_CHECKING:
    from mailhelper.compose.render import RenderJob


def record_sent(
    store: ThreadsAndSchedule, settings: Settings, action: Action, now: datetime,
) -> None:
    """Record that ``action``'s mail went at ``now``, inside the caller's transaction: mark it
    sent, let its thread move on (a closing note ends the ask, logged as ``expired``) and plan
    the thread's next steps, unless it is cancelled."""
    store.mark_sent(action, now)
    if action.thread_id is None:
        return
    thread = store.thread(action.thread_id)
    if thread is None:
        return
    updated = plan.after_sent(thread, action, now)
    if updated != thread:
        store.save_thread(updated)
        store.log_event(thread.id, now, "expired", None, "closing note sent")
    if updated.state not in (ThreadState.CANCELLED,):
        replan(store, updated, settings, now)


def render_job(
    store: ThreadsScheduleHistory, settings: Settings, action: Action, now: datetime,
) -> RenderJob:
    """Everything ``action``'s mail is made from at ``now``; a digest gets its owner's threads,
    their items and figures (:func:`mailhelper.decide.digest.build`), the ledger, and the thanks and
    favours due, by the same definition as ``mailhelper status``."""
    # Imported here: a cycle with nothing to send (a cron poll) never loads the renderer.
    from mailhelper.compose.render import RenderJob

    thread = store.thread(action.thread_id) if action.thread_id is not None else None
    references = store.thread_message_ids(thread.id) if thread else ()
    owner = action.recipients[0].email if action.recipients else None
    open_threads: tuple[Thread, ...] = ()
    ledger = None
    thanks: tuple[Thread, ...] | None = None
    favours: tuple[Thread, ...] | None = None
    facts: Digest | None = None
    if action.kind is ActionKind.DIGEST:
        open_threads = tuple(
            t for t in store.threads() if owner is None or t.owner.email == owner
        )
        ledger = store.ledger(owner)
        history = histories(store, open_threads)
        pause = store.pause_for(owner) if owner is not None else None
        facts = build_digest(open_threads, history, now,
                             settings.zone_for(owner) if owner else settings.timezone,
                             pause if pause is not None and pause.holds(now) else None)
        # The same lists as `mailhelper status`, so digest, status and ledger agree.
        thanks = owed.thanks_due(open_threads, history)
        favours = owed.favours_due(open_threads, history)
    return RenderJob(
        action=action,
        thread=thread,
        now=now,
        references=references,
        open_threads=open_threads,
        ledger=ledger,
        thanks_due=thanks,
        favours_due=favours,
        message_id=store.message_id_for(action),
        digest=facts,
    )
