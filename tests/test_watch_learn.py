"""What a message in the owner's own mailbox tells (:func:`mailhelper.engine.watch.learn`), and the
plan's answer to a thank-you by hand: pure, no server."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from mailhelper.decide import plan
from mailhelper.decide.events import CounterpartReply, OwnerFollowUp, OwnerThanked
from mailhelper.engine.watch import first_look_since, learn, retry_after
from mailhelper.model.settings import SendingSettings, Settings
from mailhelper.model.values import (
    ActionKind,
    ActionStatus,
    Address,
    Answer,
    Kind,
    Thread,
    ThreadState,
)
from mailhelper.read.parse import parse_mail

SAM = Address("sam@example.com", "Sam Rivera")
JANE = Address("jane@example.org", "Jane Doe")
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
SETTINGS = Settings(owners=(SAM,), assistant=Address("helper@example.com"),
                    sending=SendingSettings(business_days=False, quiet_hours=None))


def thread(**changes: object) -> Thread:
    base = Thread(id=3, kind=Kind.ASK, state=ThreadState.OPEN, subject="Intro to Acme?",
                  owner=SAM, counterparts=(JANE,), created=T0, root_message_id="ask@example.com",
                  last_owner_activity=T0)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


class Index:
    """The store's answers: one thread, known by its ask's Message-ID and subject."""

    def __init__(self, known: Thread) -> None:
        self.known = known

    def thread_for(self, message_ids: tuple[str, ...]) -> Thread | None:
        return self.known if "ask@example.com" in message_ids else None

    def thread_by_subject(self, subject: str, participant: str) -> Thread | None:
        hit = subject == self.known.subject and any(
            c.email == participant for c in self.known.counterparts)
        return self.known if hit else None


def header(from_: str, to: str, subject: str = "Re: Intro to Acme?",
           replying: str | None = "<ask@example.com>", **extra: str) -> bytes:
    lines = [f"From: {from_}", f"To: {to}", f"Subject: {subject}",
             "Message-ID: <m1@example.org>", "Date: Tue, 08 Dec 2026 10:00:00 +0000"]
    if replying:
        lines += [f"In-Reply-To: {replying}", f"References: {replying}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in extra.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def learned(raw: bytes, known: Thread, when: datetime = T0 + timedelta(days=1)) -> object:
    return learn(parse_mail(raw), SAM, SETTINGS, Index(known), when)


def test_a_counterparts_answer_in_the_owners_inbox_is_a_trusted_reply() -> None:
    event = learned(header("Jane Doe <jane@example.org>", "sam@example.com"), thread())
    assert event == CounterpartReply("m1@example.org", 3, JANE, trusted=True)


def test_an_answer_matched_by_subject_alone_is_untrusted() -> None:
    event = learned(header("Jane Doe <jane@example.org>", "sam@example.com", replying=None),
                    thread())
    assert isinstance(event, CounterpartReply)
    assert event.by_fallback and not event.trusted


@pytest.mark.parametrize("sender", [
    "Mallory <mallory@evil.test>",  # a stranger naming the thread
    "Sam's assistant <helper@example.com>",  # the assistant's own reminder to the owner
])
def test_nobody_but_a_counterpart_answers(sender: str) -> None:
    assert learned(header(sender, "sam@example.com"), thread()) is None


def test_an_out_of_office_is_never_an_answer() -> None:
    raw = header("Jane Doe <jane@example.org>", "sam@example.com", Auto_Submitted="auto-replied")
    assert learned(raw, thread()) is None


def test_mail_of_no_tracked_thread_tells_nothing() -> None:
    raw = header("Jane Doe <jane@example.org>", "sam@example.com", subject="Lunch?",
                 replying="<other@example.org>")
    assert learned(raw, thread()) is None


def test_the_owner_writing_to_the_counterpart_before_an_answer_is_a_follow_up() -> None:
    event = learned(header("Sam Rivera <sam@example.com>", "jane@example.org"), thread())
    assert event == OwnerFollowUp("m1@example.org", 3)


def test_the_owner_writing_to_someone_else_in_the_thread_is_nothing() -> None:
    raw = header("Sam Rivera <sam@example.com>", "bob@example.net")
    assert learned(raw, thread()) is None


def test_the_owner_writing_after_the_answer_is_a_thank_you_by_hand() -> None:
    answered = thread(state=ThreadState.ANSWERED, answered_at=T0 + timedelta(hours=20))
    event = learned(header("Sam Rivera <sam@example.com>", "jane@example.org"), answered)
    assert event == OwnerThanked("m1@example.org", 3, JANE)
    before = learned(header("Sam Rivera <sam@example.com>", "jane@example.org"), answered,
                     when=T0 + timedelta(hours=19))
    assert before is None  # written before the answer: the thread is no longer open


def test_a_thank_you_by_hand_cancels_the_draft_and_counts_as_sent() -> None:
    answered = thread(state=ThreadState.ANSWERED, answered_at=T0,
                      answers=(Answer(JANE.email, T0, True, ""),))
    [draft] = plan.desired_actions(answered, [], SETTINGS)
    assert draft.kind is ActionKind.THANK_YOU_DRAFT
    outcome = plan.apply(answered, OwnerThanked("m1@example.org", 3, JANE), SETTINGS,
                         T0 + timedelta(hours=1), [draft])
    [record] = outcome.actions
    assert record.status is ActionStatus.SENT and record.kind is ActionKind.THANK_YOU
    assert plan.desired_actions(answered, [draft, record], SETTINGS) == []
    again = plan.apply(answered, OwnerThanked("m2@example.org", 3, JANE), SETTINGS,
                       T0 + timedelta(hours=2), [draft, record])
    assert again.actions == ()


def test_a_thank_you_by_hand_needs_an_answer() -> None:
    outcome = plan.apply(thread(), OwnerThanked("m1@example.org", 3, JANE), SETTINGS, T0)
    assert outcome.actions == ()


def test_the_first_look_goes_back_to_the_oldest_unfinished_thread() -> None:
    old = thread(id=1, created=T0 - timedelta(days=9), state=ThreadState.CANCELLED)
    mid = thread(id=2, created=T0 - timedelta(days=5), state=ThreadState.ANSWERED)
    new = thread(id=3, created=T0)
    assert first_look_since([old, mid, new], SAM.email) == T0 - timedelta(days=5)
    assert first_look_since([old], SAM.email) is None
    assert first_look_since([new], "someone@else.test") is None


def test_retries_back_off_to_an_hour() -> None:
    assert [retry_after(n) for n in (1, 2, 3)] == [timedelta(minutes=m) for m in (1, 2, 4)]
    assert retry_after(50) == timedelta(hours=1)
