"""Planning notes to self and repeats, pure: a thread and its history in, the pending actions
out (issue 12, items 4 and 5). The end-to-end walk is tests/test_notes_e2e.py."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mailhelper.decide import plan
from mailhelper.decide.events import OwnerCommand, OwnerFollowUp
from mailhelper.model.duration import Duration
from mailhelper.model.settings import NoteSchedule, Schedules, SendingSettings, Settings
from mailhelper.model.values import (
    Action,
    ActionKind,
    ActionStatus,
    Address,
    Kind,
    Thread,
    ThreadState,
)

LONDON = ZoneInfo("Europe/London")
SAM = Address("sam@example.com", "Sam Rivera")
JANE = Address("jane@example.org", "Jane Doe")
T0 = datetime(2026, 3, 25, 12, 0, tzinfo=LONDON)  # a Wednesday, before the spring change
WEEKLY = "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0"


def settings(**changes: object) -> Settings:
    base = Settings(owners=(SAM,), assistant=Address("helper@example.com"), timezone=LONDON,
                    sending=SendingSettings(business_days=False, quiet_hours=None))
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def note(**changes: object) -> Thread:
    thread = Thread(id=3, kind=Kind.NOTE, state=ThreadState.OPEN, subject="Passport", owner=SAM,
                    counterparts=(), created=T0, root_message_id="note@example.com",
                    last_owner_activity=T0)
    return dataclasses.replace(thread, **changes)  # type: ignore[arg-type]


def sent(action: Action, at: datetime | None = None,
         status: ActionStatus = ActionStatus.SENT) -> Action:
    return dataclasses.replace(action, status=status, sent_at=at or action.due)


def command(name: str, until: datetime | None = None) -> OwnerCommand:
    return OwnerCommand("c@example.com", SAM, name, 3, ActionKind.NOTE_REMINDER, until, name)


def test_a_note_comes_back_once_after_schedules_note_after_to_the_owner_in_its_thread() -> None:
    [action] = plan.desired_actions(note(), [], settings())
    assert (action.kind, action.due, action.recipients) == (
        ActionKind.NOTE_REMINDER, T0 + timedelta(days=1), (SAM,))
    assert action.data["answering"] == "note@example.com"
    assert plan.desired_actions(note(), [sent(action)], settings()) == []


def test_a_note_takes_its_own_schedule_never_an_asks_or_an_offers() -> None:
    """plan.py chose ``ask if kind is ASK else offer``: a note would have had the offer's
    reminders (1 and 4 days). Each kind is matched now."""
    odd = Schedules(note=NoteSchedule(Duration.parse("5 hours")))
    [action] = plan.desired_actions(note(), [], settings(schedules=odd))
    assert (action.kind, action.due) == (ActionKind.NOTE_REMINDER, T0 + timedelta(hours=5))


def test_a_notes_tag_time_and_a_snooze_each_bring_it_back() -> None:
    tagged = note(follow_up_at=T0 + timedelta(days=3))
    [first] = plan.desired_actions(tagged, [], settings())
    assert first.due == T0 + timedelta(days=3)
    later = T0 + timedelta(days=5)
    outcome = plan.apply(tagged, command("snooze", later), settings(), first.due,
                         [sent(first)])
    assert outcome.thread is not None
    [again] = plan.desired_actions(outcome.thread, [sent(first)], settings())
    assert again.due == later and again.key != first.key


def test_done_ends_a_note_and_a_snooze_brings_a_done_note_back() -> None:
    [first] = plan.desired_actions(note(), [], settings())
    done = plan.apply(note(), command("done"), settings(), first.due, [sent(first)]).thread
    assert done is not None and done.state is ThreadState.DONE
    assert plan.desired_actions(done, [sent(first)], settings()) == []
    until = first.due + timedelta(days=2)
    back = plan.apply(done, command("snooze", until), settings(), first.due, [sent(first)])
    assert back.thread is not None and back.thread.state is ThreadState.OPEN
    [again] = plan.desired_actions(back.thread, [sent(first)], settings())
    assert again.due == until


def test_the_owner_writing_about_a_note_keeps_its_time() -> None:
    tagged = note(follow_up_at=T0 + timedelta(days=3))
    outcome = plan.apply(tagged, OwnerFollowUp("f@example.com", 3), settings(), T0)
    assert outcome.thread == tagged


def test_each_occurrence_is_its_own_key_and_the_wall_time_keeps_over_the_change() -> None:
    weekly = note(repeat=WEEKLY)
    [first] = plan.desired_actions(weekly, [], settings())
    assert first.due == datetime(2026, 3, 30, 9, tzinfo=LONDON)  # BST: 08:00 UTC
    assert first.key == "t3/repeat/20260330T080000Z"
    [second] = plan.desired_actions(weekly, [sent(first)], settings())
    assert second.key == "t3/repeat/20260406T080000Z"
    assert second.due.astimezone(LONDON).hour == 9


@pytest.mark.parametrize("status", [ActionStatus.SENDING, ActionStatus.SENT,
                                    ActionStatus.FAILED])
def test_after_a_crash_an_occurrence_is_never_sent_twice_nor_skipped(
        status: ActionStatus) -> None:
    """SENDING: the attempt was recorded, the server's answer was not (a crash): the Sent
    folder decides about that one; the planner neither repeats it nor skips the next."""
    weekly = note(repeat=WEEKLY)
    [first] = plan.desired_actions(weekly, [], settings())
    spent = dataclasses.replace(first, status=status, sent_at=None)
    [following] = plan.desired_actions(weekly, [spent], settings())
    assert following.key == "t3/repeat/20260406T080000Z"
    # Still pending (a crash before the attempt): the same key again, nothing skipped.
    assert plan.desired_actions(weekly, [first], settings()) == [first]


def test_occurrences_missed_while_down_come_once_not_in_a_burst() -> None:
    weekly = note(repeat=WEEKLY)
    [first] = plan.desired_actions(weekly, [], settings())
    late = datetime(2026, 4, 22, 10, tzinfo=LONDON)  # three Mondays later
    [following] = plan.desired_actions(weekly, [sent(first, late)], settings())
    assert following.due == datetime(2026, 4, 27, 9, tzinfo=LONDON)


def test_done_ends_one_occurrence_and_cancel_ends_them_all() -> None:
    weekly = note(repeat=WEEKLY)
    [first] = plan.desired_actions(weekly, [], settings())
    history = [sent(first)]
    snoozed = plan.apply(weekly, command("snooze", first.due + timedelta(hours=3)), settings(),
                         first.due, history).thread
    assert snoozed is not None
    wanted = plan.desired_actions(snoozed, history, settings())
    assert sorted(a.key for a in wanted) == ["t3/repeat/20260406T080000Z",
                                             "t3/repeat/snooze/20260330T110000Z"]
    done = plan.apply(snoozed, command("done"), settings(), first.due, history)
    assert done.thread is not None and done.thread.state is ThreadState.OPEN
    [reply] = done.actions
    assert "the next reminder is on 2026-04-06T09:00:00+01:00" in reply.data["result"]
    [following] = plan.desired_actions(done.thread, history, settings())
    assert following.key == "t3/repeat/20260406T080000Z"  # the snoozed one is dropped
    cancelled = plan.apply(done.thread, command("cancel"), settings(), first.due, history)
    assert cancelled.thread is not None
    assert plan.desired_actions(cancelled.thread, history, settings()) == []


def test_a_repeating_ask_checks_in_with_a_draft_and_goes_on_after_an_answer() -> None:
    keep = note(kind=Kind.ASK, counterparts=(JANE,), repeat=WEEKLY)
    [first] = plan.desired_actions(keep, [], settings())
    assert (first.kind, first.recipients, first.data["people"]) == (
        ActionKind.CHECK_IN, (SAM,), "jane@example.org")
    answered = dataclasses.replace(keep, state=ThreadState.ANSWERED,
                                   answered_at=first.due + timedelta(hours=1))
    wanted = {a.kind for a in plan.desired_actions(answered, [sent(first)], settings())}
    assert wanted == {ActionKind.CHECK_IN, ActionKind.THANK_YOU_DRAFT}
    reply = OwnerCommand("s@example.com", SAM, "send", 3, ActionKind.CHECK_IN, None, "send",
                         "checkin@example.com")
    outcome = plan.apply(keep, reply, settings(), first.due, [sent(first)], sent(first))
    nudge = next(a for a in outcome.actions if a.kind is ActionKind.NUDGE)
    assert nudge.recipients == (JANE,) and nudge.data["flavour"] == "check_in"


def test_an_occurrence_key_holds_its_utc_time() -> None:
    [first] = plan.desired_actions(note(repeat=WEEKLY), [], settings())
    stamp = first.key.rsplit("/", 1)[1]
    assert datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) == first.due
