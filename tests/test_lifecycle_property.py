"""The thread lifecycle under random sequences of mail and time, on the pure layer.

A Hypothesis state machine plays an owner, counterparts and a stranger writing to the
assistant (parse -> classify -> tracker/plan on an in-memory SQLite store) while a clock moves
on and due actions are recorded as sent with the engine's own bookkeeping
(:func:`mailhelper.engine.sending.record_sent`; no servers). After every step it checks SPEC.md's
promises:

- thread states only move along the lifecycle;
- no action key is ever sent twice, a thread is thanked once, and a draft is sent once;
- nothing is scheduled to an address outside the owner's own thread;
- cancelled and expired threads have nothing pending, and nothing goes to their counterparts;
- every pending scheduled action's due time is inside the sending window (business days,
  quiet hours) when those are on.

Runs are derandomized (the same examples every time) so CI never flakes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from mailhelper.decide.classify import Context, classify
from mailhelper.decide.window import in_window
from mailhelper.engine import sending, tracker
from mailhelper.model.duration import Duration
from mailhelper.model.settings import (
    AskSchedule,
    QuietHours,
    Schedules,
    SendingSettings,
    Settings,
    ThankYouSchedule,
)
from mailhelper.model.values import (
    COUNTERPART_ACTIONS,
    Action,
    ActionKind,
    ActionStatus,
    Address,
    Kind,
    ThreadState,
)
from mailhelper.read.parse import parse_mail
from mailhelper.state.store import Store

LONDON = ZoneInfo("Europe/London")
SAM = Address("sam@example.com", "Sam Rivera")
HELPER = Address("helper@example.com", "Sam's assistant")
PEOPLE = (Address("jane@example.org", "Jane Doe"), Address("bob@example.net", "Bob Lee"))
MALLORY = Address("mallory@evil.test", "Mallory")
#: Mondays to start on; the second is the weekend the clocks go back (25 October 2026).
STARTS = (datetime(2026, 11, 30, 9, 0, tzinfo=LONDON), datetime(2026, 10, 23, 19, 30,
                                                                  tzinfo=LONDON))

S = ThreadState
#: The lifecycle (SPEC.md "Lifecycle"): the states each state may move to.
MOVES: dict[Kind, dict[ThreadState, set[ThreadState]]] = {
    Kind.ASK: {
        S.OPEN: {S.ANSWERED, S.DONE, S.EXPIRED, S.CANCELLED},
        S.ANSWERED: {S.DONE, S.CANCELLED},
        S.DONE: {S.CANCELLED},
        # "snooze" keeps an expired ask alive; a late answer is still an answer.
        S.EXPIRED: {S.OPEN, S.ANSWERED, S.CANCELLED},
        S.CANCELLED: set(),
    },
    Kind.OFFER: {
        S.OPEN: {S.ANSWERED, S.DONE, S.DECLINED, S.CANCELLED},
        S.ANSWERED: {S.DONE, S.DECLINED, S.CANCELLED},
        S.DONE: {S.CANCELLED},
        S.DECLINED: {S.CANCELLED},
        S.CANCELLED: set(),
    },
    # A note to self: "done" ends it, "snooze" brings a done one back.
    Kind.NOTE: {
        S.OPEN: {S.DONE, S.CANCELLED},
        S.DONE: {S.OPEN, S.CANCELLED},
        S.CANCELLED: set(),
    },
}
COMMANDS = ("done", "send", "snooze 2 days", "snooze monday", "decline", "cancel", "status",
            "help", "what is this?")


def variant_settings(business_days: bool, quiet: bool, mode: str, nudge: bool,
                     confirm: bool) -> Settings:
    return Settings(
        owners=(SAM,),
        assistant=HELPER,
        timezone=LONDON,
        confirm=confirm,
        schedules=Schedules(
            ask=AskSchedule(nudge_counterpart=(Duration.parse("5 days"),) if nudge else ()),
            thank_you=ThankYouSchedule(mode="send" if mode == "send" else "draft"),
        ),
        sending=SendingSettings(
            business_days=business_days,
            quiet_hours=QuietHours(time(20), time(8)) if quiet else None,
            max_per_recipient_per_day=1000,
            max_per_hour=1000,
        ),
    )


def raw_mail(sender: Address, to: tuple[Address, ...], subject: str, body: str,
             message_id: str, cc: tuple[Address, ...] = (), in_reply_to: str | None = None,
             extra: str = "") -> bytes:
    lines = [
        f"From: {sender.formatted()}",
        "To: " + ", ".join(a.formatted() for a in to),
        *(["Cc: " + ", ".join(a.formatted() for a in cc)] if cc else []),
        f"Subject: {subject}",
        f"Message-ID: <{message_id}>",
        "Date: Mon, 30 Nov 2026 09:00:00 +0000",
        *([f"In-Reply-To: <{in_reply_to}>", f"References: <{in_reply_to}>"]
          if in_reply_to else []),
        *([extra] if extra else []),
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


class Lifecycle(RuleBasedStateMachine):
    threads = Bundle("threads")

    def __init__(self) -> None:
        super().__init__()
        self.store = Store.open(Path(":memory:"), "example.com")
        self.numbers = itertools.count(1)
        self.settings = variant_settings(False, False, "draft", False, True)
        self.now = STARTS[0]
        self.states: dict[int, ThreadState] = {}
        self.sent_keys: set[str] = set()
        self.delivered: list[bytes] = []
        # Counterparts of each thread as first seen (they never change).
        self.people: dict[int, set[str]] = {}
        # Actions of each thread that existed when it last entered a closed state.
        self.closed_with: dict[int, set[str]] = {}

    # -- setup ------------------------------------------------------------------------------
    @initialize(
        start=st.sampled_from(STARTS),
        business_days=st.booleans(), quiet=st.booleans(),
        mode=st.sampled_from(("draft", "send")), nudge=st.booleans(), confirm=st.booleans(),
    )
    def configure(self, start: datetime, business_days: bool, quiet: bool, mode: str,
                  nudge: bool, confirm: bool) -> None:
        self.now = start
        self.settings = variant_settings(business_days, quiet, mode, nudge, confirm)

    # -- mail in ----------------------------------------------------------------------------
    def receive(self, raw: bytes) -> Any:
        """What the daemon does with one message, less IMAP: skip what was seen, else
        classify and apply in one transaction."""
        self.delivered.append(raw)
        mail = parse_mail(raw)
        if self.store.is_processed(mail.message_id, mail.content_hash):
            return None
        event = classify(mail, Context(self.settings, self.store, self.now))
        with self.store.transaction():
            tracker.apply_event(self.store, self.settings, event, self.now)
            self.store.mark_processed(mail.message_id, mail.content_hash, "INBOX", None,
                                      self.now, "handled")
        return event

    def next_id(self, who: str) -> str:
        return f"m{next(self.numbers)}@{who}"

    @rule(target=threads, kind=st.sampled_from(("ask", "offer")),
          people=st.sampled_from((PEOPLE[:1], PEOPLE[1:], PEOPLE, ())),
          tag=st.sampled_from(("", "+2d", "+monday")))
    def owner_starts_a_thread(self, kind: str, people: tuple[Address, ...], tag: str) -> int:
        plus = f"+{kind}" if kind == "offer" or tag else ""
        helper = Address(f"helper{plus}{tag}@example.com")
        root = self.next_id("example.com")
        self.receive(raw_mail(SAM, people, f"Help with thing {root}", "Could you help?",
                              root, cc=(helper,)))
        thread = self.store.thread_for((root,))
        return thread.id if thread is not None else -1

    def thread_root(self, thread_id: int) -> str | None:
        thread = self.store.thread(thread_id)
        return None if thread is None else thread.root_message_id

    @rule(thread=threads, who=st.sampled_from((*PEOPLE, MALLORY)))
    def someone_replies(self, thread: int, who: Address) -> None:
        root = self.thread_root(thread)
        if root is not None:
            self.receive(raw_mail(who, (SAM,), "Re: Help", "Sure, glad to.",
                                  self.next_id("example.org"), in_reply_to=root))

    @rule(thread=threads)
    def counterpart_is_away(self, thread: int) -> None:
        root = self.thread_root(thread)
        if root is not None:
            self.receive(raw_mail(PEOPLE[0], (SAM,), "Automatic reply: Help",
                                  "I am out of the office, back on 14 December.",
                                  self.next_id("example.org"), in_reply_to=root,
                                  extra="Auto-Submitted: auto-replied"))

    @rule(thread=threads)
    def owner_writes_again(self, thread: int) -> None:
        root = self.thread_root(thread)
        if root is not None:
            self.receive(raw_mail(SAM, PEOPLE, "Re: Help", "Any news?",
                                  self.next_id("example.com"), cc=(HELPER,), in_reply_to=root))

    @rule(thread=threads, command=st.sampled_from(COMMANDS), pick=st.integers(0, 10))
    def owner_replies_with_a_command(self, thread: int, command: str, pick: int) -> None:
        mails = [a for a in self.store.actions_for(thread)
                 if a.status is ActionStatus.SENT and a.kind not in COUNTERPART_ACTIONS]
        if not mails:
            return
        replied = mails[pick % len(mails)]
        self.receive(raw_mail(SAM, (HELPER,), "Re: your reminder", command,
                              self.next_id("example.com"),
                              in_reply_to=self.store.message_id_for(replied)))

    @rule(thread=threads, again=st.booleans(), then=st.sampled_from(("", "cancel", "done")))
    def owner_sends_a_draft(self, thread: int, again: bool, then: str) -> None:
        """``send`` in answer to the latest mail with a draft (a reminder or a thank-you
        draft), maybe twice, maybe followed by another command before anything is sent."""
        drafts = [a for a in self.store.actions_for(thread) if a.status is ActionStatus.SENT
                  and a.kind in (ActionKind.FOLLOW_UP, ActionKind.THANK_YOU_DRAFT)]
        if not drafts:
            return
        replied = self.store.message_id_for(drafts[-1])
        for command in ("send", "send" if again else "", then):
            if command:
                self.receive(raw_mail(SAM, (HELPER,), "Re: draft", command,
                                      self.next_id("example.com"), in_reply_to=replied))

    @rule(index=st.integers(0, 50))
    def a_message_comes_again(self, index: int) -> None:
        if self.delivered:
            before = self.snapshot()
            self.receive(self.delivered[index % len(self.delivered)])
            assert self.snapshot() == before, "a message seen twice acts once"

    # -- time -------------------------------------------------------------------------------
    @rule(hours=st.sampled_from((1, 2, 5, 13, 24, 49, 24 * 4, 24 * 8)))
    def time_passes(self, hours: int) -> None:
        """The clock moves on and every due action is sent (the engine's bookkeeping)."""
        self.now += timedelta(hours=hours)
        for _ in range(100):
            due = self.store.due(self.now)
            if not due:
                return
            for action in due:
                assert action.key not in self.sent_keys, f"{action.key} sent twice"
                self.check_allowed(action)
                self.sent_keys.add(action.key)
                with self.store.transaction():
                    sending.record_sent(self.store, self.settings, action, self.now)
        raise AssertionError("actions keep falling due at the same moment")

    # -- invariants -------------------------------------------------------------------------
    def snapshot(self) -> tuple[Any, ...]:
        threads = tuple(self.store.threads())
        actions = tuple((a.key, a.status, a.due) for t in threads
                        for a in self.store.actions_for(t.id))
        return threads, actions

    def check_allowed(self, action: Action) -> None:
        allowed = {SAM.email}
        if action.thread_id is not None:
            thread = self.store.thread(action.thread_id)
            assert thread is not None
            allowed |= self.people.setdefault(thread.id, {c.email for c in thread.counterparts})
        outside = {p.email for p in action.recipients} - allowed
        assert not outside, f"{action.key} to {outside}: not on the owner's thread"

    @invariant()
    def states_follow_the_lifecycle(self) -> None:
        for thread in self.store.threads():
            before = self.states.get(thread.id, ThreadState.OPEN)
            if thread.state is not before:
                assert thread.state in MOVES[thread.kind][before], (
                    f"thread {thread.id} ({thread.kind}) moved {before} -> {thread.state}")
            self.states[thread.id] = thread.state

    @invariant()
    def nothing_goes_outside_the_owners_thread(self) -> None:
        for thread in self.store.threads():
            for action in self.store.actions_for(thread.id):
                self.check_allowed(action)

    @invariant()
    def each_thing_is_sent_once(self) -> None:
        for thread in self.store.threads():
            actions = self.store.actions_for(thread.id)
            sent = [a for a in actions if a.status is ActionStatus.SENT]
            thanks = [a for a in sent if a.kind is ActionKind.THANK_YOU]
            assert len(thanks) <= 1, f"thread {thread.id} thanked {len(thanks)} times"
            pending = [a for a in actions
                       if a.status is ActionStatus.PENDING and tracker.is_scheduled(a)]
            kinds = [a.kind for a in pending if a.kind is not ActionKind.NUDGE]
            assert len(kinds) == len(set(kinds)), f"thread {thread.id}: {pending}"

    @invariant()
    def closed_threads_get_nothing_new(self) -> None:
        for thread in self.store.threads():
            actions = self.store.actions_for(thread.id)
            keys = {a.key for a in actions}
            if thread.state not in (ThreadState.CANCELLED, ThreadState.EXPIRED):
                self.closed_with.pop(thread.id, None)
                continue
            pending = [a for a in actions if a.status in (ActionStatus.PENDING,
                                                          ActionStatus.SENDING)]
            assert not [a for a in pending if tracker.is_scheduled(a)], pending
            assert not [a for a in pending if a.kind in COUNTERPART_ACTIONS], pending
            known = self.closed_with.setdefault(thread.id, keys)
            new = {a.key for a in actions if a.key not in known}
            # Only answers to the owner's own commands may still come ("it is cancelled").
            assert all(k.startswith("msg/") for k in new), new
            assert not [a for a in actions if a.key in new and a.kind in COUNTERPART_ACTIONS]

    @invariant()
    def due_times_are_in_the_sending_window(self) -> None:
        sending = self.settings.sending
        for action in self.store.pending():
            if tracker.is_scheduled(action) and action.kind is not ActionKind.DIGEST:
                assert in_window(action.due, sending, LONDON), (
                    f"{action.key} due {action.due.astimezone(LONDON)} is outside the window")

    def teardown(self) -> None:
        self.store.close()


Lifecycle.TestCase.settings = settings(
    max_examples=80,
    stateful_step_count=35,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestLifecycle = Lifecycle.TestCase


def test_the_machine_reaches_every_state() -> None:
    """The rules can reach every lifecycle state (a machine that never leaves ``open`` would
    pass its invariants vacuously)."""
    machine = Lifecycle()
    machine.configure(STARTS[0], False, False, "draft", False, True)
    ask = machine.owner_starts_a_thread("ask", PEOPLE[:1], "")
    offer = machine.owner_starts_a_thread("offer", PEOPLE[:1], "")
    ignored = machine.owner_starts_a_thread("ask", (), "+2d")  # an ask with nobody to ask
    assert ignored == -1
    note = machine.owner_starts_a_thread("ask", (), "")  # to the assistant alone: a note
    assert machine.store.thread(note).kind is Kind.NOTE  # type: ignore[union-attr]
    machine.time_passes(1)
    machine.someone_replies(ask, PEOPLE[0])
    machine.owner_replies_with_a_command(offer, "decline", 0)
    steps: list[Callable[[], None]] = [machine.states_follow_the_lifecycle,
                                       machine.nothing_goes_outside_the_owners_thread,
                                       machine.each_thing_is_sent_once,
                                       machine.closed_threads_get_nothing_new,
                                       machine.due_times_are_in_the_sending_window]
    for check in steps:
        check()
    assert machine.store.thread(ask).state is ThreadState.ANSWERED  # type: ignore[union-attr]
    assert machine.store.thread(offer).state is ThreadState.DECLINED  # type: ignore[union-attr]
    late = machine.owner_starts_a_thread("ask", PEOPLE[1:], "")
    for _ in range(4):
        machine.time_passes(24 * 8)
    assert machine.store.thread(late).state is ThreadState.EXPIRED  # type: ignore[union-attr]
    machine.owner_replies_with_a_command(late, "cancel", 0)
    assert machine.store.thread(late).state is ThreadState.CANCELLED  # type: ignore[union-attr]
    for check in steps:
        check()
    machine.teardown()


def test_send_twice_then_cancel_sends_nothing() -> None:
    """Found by the machine: two ``send`` replies to one draft queued two thank-yous, and a
    ``cancel`` right after did not stop them."""
    machine = Lifecycle()
    machine.configure(STARTS[0], False, False, "draft", False, True)
    thread = machine.owner_starts_a_thread("ask", PEOPLE[:1], "")
    machine.time_passes(1)
    machine.someone_replies(thread, PEOPLE[0])
    machine.time_passes(5)  # the thank-you draft goes to the owner
    machine.owner_sends_a_draft(thread, again=True, then="")
    pending = [a for a in machine.store.pending() if a.kind is ActionKind.THANK_YOU]
    assert len(pending) == 1, "two sends of one draft are one thank-you"
    machine.owner_sends_a_draft(thread, again=False, then="cancel")
    machine.time_passes(1)
    sent = [a for a in machine.store.actions_for(thread) if a.status is ActionStatus.SENT]
    assert ActionKind.THANK_YOU not in {a.kind for a in sent}, "cancel: send nothing more"
    machine.closed_threads_get_nothing_new()
    machine.teardown()
