"""The planning rules, pure: a thread and what was sent in, the pending actions out."""

from __future__ import annotations

import dataclasses
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from mailhelper.decide import plan
from mailhelper.decide.events import CounterpartReply, OutOfOffice, OwnerCommand, OwnerFollowUp
from mailhelper.model.duration import Duration
from mailhelper.model.settings import (
    AskSchedule,
    Schedules,
    SendingSettings,
    Settings,
    ThankYouSchedule,
)
from mailhelper.model.values import (
    Action,
    ActionKind,
    ActionStatus,
    Address,
    Answer,
    Kind,
    Thread,
    ThreadState,
)

LONDON = ZoneInfo("Europe/London")
SAM = Address("sam@example.com", "Sam Rivera")
JANE = Address("jane@example.org", "Jane Doe")
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=LONDON)  # a Monday


def settings(**changes: object) -> Settings:
    base = Settings(
        owners=(SAM,),
        assistant=Address("helper@example.com", "Sam's assistant"),
        timezone=LONDON,
        sending=SendingSettings(business_days=False, quiet_hours=None),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def ask(**changes: object) -> Thread:
    thread = Thread(
        id=7, kind=Kind.ASK, state=ThreadState.OPEN, subject="Intro to Acme", owner=SAM,
        counterparts=(JANE,), created=T0, root_message_id="ask@example.com",
        last_owner_activity=T0,
    )
    return dataclasses.replace(thread, **changes)  # type: ignore[arg-type]


def sent(action: Action, at: datetime | None = None) -> Action:
    return dataclasses.replace(action, status=ActionStatus.SENT, sent_at=at or action.due)


def test_an_open_ask_wants_its_first_reminder_three_days_later() -> None:
    [action] = plan.desired_actions(ask(), [], settings())
    assert action.kind is ActionKind.FOLLOW_UP
    assert action.due == T0 + timedelta(days=3)
    assert action.recipients == (SAM,)
    assert action.data["number"] == "1"


def test_reminders_then_the_closing_note_then_nothing() -> None:
    s, history = settings(), []
    first = plan.desired_actions(ask(), history, s)[0]
    history.append(sent(first))
    second = plan.desired_actions(ask(), history, s)[0]
    assert second.kind is ActionKind.FOLLOW_UP and second.due == T0 + timedelta(days=7)
    history.append(sent(second))
    closing = plan.desired_actions(ask(), history, s)[0]
    assert closing.kind is ActionKind.CLOSING_NOTE and closing.due == T0 + timedelta(days=14)
    history.append(sent(closing))
    expired = plan.after_sent(ask(), closing, closing.due)
    assert expired.state is ThreadState.EXPIRED
    assert plan.desired_actions(expired, history, s) == []


def test_the_same_plan_twice_gives_the_same_keys() -> None:
    one = plan.desired_actions(ask(), [], settings())
    two = plan.desired_actions(ask(), [], settings())
    assert [a.key for a in one] == [a.key for a in two]


def test_owner_writing_again_restarts_the_clock() -> None:
    thread = ask()
    later = T0 + timedelta(days=2)
    outcome = plan.apply(thread, OwnerFollowUp("m2@x", thread.id), settings(), later)
    [action] = plan.desired_actions(outcome.thread, [], settings())  # type: ignore[arg-type]
    assert action.due == later + timedelta(days=3)


def test_a_tag_time_replaces_the_first_reminder_and_keeps_the_spacing() -> None:
    when = T0 + timedelta(days=5)
    thread = ask(follow_up_at=when)
    first = plan.desired_actions(thread, [], settings())[0]
    assert first.due == when
    second = plan.desired_actions(thread, [sent(first)], settings())[0]
    assert second.due == when + timedelta(days=4)  # 7 days - 3 days after the first


def test_an_answer_stops_reminders_and_a_thank_you_draft_follows_two_hours_later() -> None:
    reply_at = T0 + timedelta(days=1, hours=3)
    outcome = plan.apply(ask(), CounterpartReply("r@x", 7, JANE, "Sure!"), settings(), reply_at)
    thread = outcome.thread
    assert thread is not None and thread.state is ThreadState.ANSWERED
    [action] = plan.desired_actions(thread, [], settings())
    assert action.kind is ActionKind.THANK_YOU_DRAFT
    assert action.due == reply_at + timedelta(hours=2)
    assert action.recipients == (SAM,)


def test_thank_you_mode_send_goes_to_the_counterpart() -> None:
    s = settings(schedules=Schedules(thank_you=ThankYouSchedule(mode="send")))
    thread = ask(state=ThreadState.ANSWERED, answered_at=T0,
                 answers=(Answer(JANE.email, T0, trusted=True),))
    [action] = plan.desired_actions(thread, [], s)
    assert action.kind is ActionKind.THANK_YOU and action.recipients == (JANE,)


def test_an_untrusted_answer_in_send_mode_gives_the_owner_a_draft() -> None:
    s = settings(schedules=Schedules(thank_you=ThankYouSchedule(mode="send")))
    reply = CounterpartReply("r@x", 7, JANE, "Sure!", by_fallback=True, trusted=False)
    outcome = plan.apply(ask(), reply, s, T0)
    assert outcome.thread is not None and outcome.thread.state is ThreadState.ANSWERED
    assert not outcome.thread.replies[0].trusted
    [action] = plan.desired_actions(outcome.thread, [], s)
    assert action.kind is ActionKind.THANK_YOU_DRAFT and action.recipients == (SAM,)
    # The genuine answer that follows makes it theirs: the same pending action, now a send.
    genuine = CounterpartReply("r2@x", 7, JANE, "Sure!", trusted=True)
    later = plan.apply(outcome.thread, genuine, s, T0 + timedelta(minutes=5))
    assert later.thread is not None and later.thread.replies[0].trusted
    pending = dataclasses.replace(action, id=1)
    [moved] = plan.reconcile(plan.desired_actions(later.thread, [], s), [pending]).move
    assert moved.kind is ActionKind.THANK_YOU and moved.recipients == (JANE,)


def test_mail_from_someone_not_a_counterpart_answers_nothing() -> None:
    eve = Address("eve@evil.test", "Eve")
    outcome = plan.apply(ask(), CounterpartReply("r@x", 7, eve, "ok", trusted=True), settings(),
                         T0)
    assert outcome.thread == ask() and not outcome.changed


def test_done_brings_the_return_favour_thirty_days_later() -> None:
    done_at = T0 + timedelta(days=3)
    thread = ask(state=ThreadState.ANSWERED, answered_at=T0 + timedelta(days=1))
    thanks = plan.desired_actions(thread, [], settings())[0]
    command = OwnerCommand("c@x", SAM, "done", 7, ActionKind.THANK_YOU_DRAFT)
    outcome = plan.apply(thread, command, settings(), done_at)
    assert outcome.thread is not None and outcome.thread.state is ThreadState.DONE
    assert [a.kind for a in outcome.actions] == [ActionKind.COMMAND_REPLY]
    wanted = plan.desired_actions(outcome.thread, [sent(thanks)], settings())
    assert [(a.kind, a.due) for a in wanted] == [
        (ActionKind.RETURN_FAVOR, done_at + timedelta(days=30))
    ]


def test_an_offer_declined_is_thanked_anyway() -> None:
    offer = ask(kind=Kind.OFFER)
    at = T0 + timedelta(hours=5)
    outcome = plan.apply(offer, OwnerCommand("c@x", SAM, "decline", 7, ActionKind.FOLLOW_UP),
                         settings(), at)
    assert outcome.thread is not None and outcome.thread.state is ThreadState.DECLINED
    [action] = plan.desired_actions(outcome.thread, [], settings())
    assert action.kind is ActionKind.THANK_YOU_DRAFT
    assert action.data["flavour"] == "declined"
    assert action.due == at + timedelta(hours=2)


def test_offer_reminders_are_one_and_four_days() -> None:
    offer = ask(kind=Kind.OFFER)
    first = plan.desired_actions(offer, [], settings())[0]
    assert first.kind is ActionKind.OFFER_FOLLOW_UP and first.due == T0 + timedelta(days=1)
    second = plan.desired_actions(offer, [sent(first)], settings())[0]
    assert second.due == T0 + timedelta(days=4)
    assert plan.desired_actions(offer, [sent(first), sent(second)], settings()) == []


def test_cancel_wants_nothing_more() -> None:
    outcome = plan.apply(ask(), OwnerCommand("c@x", SAM, "cancel", 7, ActionKind.FOLLOW_UP),
                         settings(), T0)
    assert outcome.thread is not None and outcome.thread.state is ThreadState.CANCELLED
    assert plan.desired_actions(outcome.thread, [], settings()) == []


def test_snooze_moves_the_next_reminder_to_the_minute() -> None:
    at = T0 + timedelta(days=3, minutes=17)
    until = at + timedelta(days=3)
    first = plan.desired_actions(ask(), [], settings())[0]
    command = OwnerCommand("c@x", SAM, "snooze", 7, ActionKind.FOLLOW_UP, until, "snooze 3 days")
    outcome = plan.apply(ask(), command, settings(), at)
    [action] = plan.desired_actions(outcome.thread, [sent(first, at)], settings())  # type: ignore[arg-type]
    assert action.kind is ActionKind.FOLLOW_UP and action.due == until


def test_snooze_on_the_closing_note_keeps_the_ask_alive() -> None:
    at = T0 + timedelta(days=14)
    expired = ask(state=ThreadState.EXPIRED, closed_at=at)
    command = OwnerCommand("c@x", SAM, "snooze", 7, ActionKind.CLOSING_NOTE,
                           at + timedelta(days=7), "snooze 1 week")
    outcome = plan.apply(expired, command, settings(), at)
    assert outcome.thread is not None and outcome.thread.state is ThreadState.OPEN
    [action] = plan.desired_actions(outcome.thread, [], settings())
    assert action.kind is ActionKind.FOLLOW_UP and action.due == at + timedelta(days=7)


def test_an_out_of_office_moves_reminders_to_the_morning_after_the_return() -> None:
    back = datetime(2026, 12, 5, tzinfo=LONDON)
    outcome = plan.apply(ask(), OutOfOffice("o@x", 7, JANE, back), settings(), T0)
    [action] = plan.desired_actions(outcome.thread, [], settings())  # type: ignore[arg-type]
    assert action.due == datetime(2026, 12, 6, 9, 0, tzinfo=LONDON)


def test_nudges_to_the_counterpart_only_when_configured() -> None:
    s = settings(schedules=Schedules(ask=AskSchedule(nudge_counterpart=(Duration.parse("5d"),))))
    kinds = {a.kind: a for a in plan.desired_actions(ask(), [], s)}
    assert kinds[ActionKind.NUDGE].recipients == (JANE,)
    assert kinds[ActionKind.NUDGE].due == T0 + timedelta(days=5)
    assert ActionKind.NUDGE not in {a.kind for a in plan.desired_actions(ask(), [], settings())}


def test_send_on_a_reminder_sends_the_follow_up_to_the_counterpart_now() -> None:
    command = OwnerCommand("c@x", SAM, "send", 7, ActionKind.FOLLOW_UP)
    outcome = plan.apply(ask(), command, settings(), T0)
    nudge = outcome.actions[0]
    assert nudge.kind is ActionKind.NUDGE and nudge.recipients == (JANE,) and nudge.due == T0


def test_commands_on_no_thread_get_help_not_action() -> None:
    outcome = plan.apply(None, OwnerCommand("c@x", SAM, "done", None), settings(), T0)
    assert [a.kind for a in outcome.actions] == [ActionKind.HELP]


def test_an_unknown_command_gets_the_help_reply_and_changes_nothing() -> None:
    thread = ask()
    outcome = plan.apply(thread, OwnerCommand("c@x", SAM, "unknown", 7, ActionKind.FOLLOW_UP,
                                              line="dunno"), settings(), T0)
    assert outcome.thread == thread and not outcome.changed
    assert [a.kind for a in outcome.actions] == [ActionKind.HELP]
    assert outcome.actions[0].data["unknown_command"] == "dunno"


def test_scheduled_times_respect_the_sending_window() -> None:
    s = settings(sending=SendingSettings())  # business days, quiet 20:00-08:00
    saturday_evening = datetime(2026, 12, 2, 22, 0, tzinfo=LONDON)  # Wed 22:00 + 3 days = Sat
    [action] = plan.desired_actions(ask(created=saturday_evening,
                                        last_owner_activity=saturday_evening), [], s)
    local = action.due.astimezone(LONDON)
    assert local.weekday() == 0 and local.hour == 8  # Monday, end of quiet hours


def test_reconcile_adds_cancels_and_moves() -> None:
    a = Action("a", ActionKind.FOLLOW_UP, T0, id=1)
    b = Action("b", ActionKind.FOLLOW_UP, T0, id=2)
    b_later = dataclasses.replace(b, due=T0 + timedelta(days=1))
    c = Action("c", ActionKind.CLOSING_NOTE, T0)
    change = plan.reconcile([b_later, c], [a, b])
    assert [x.key for x in change.add] == ["c"]
    assert [x.key for x in change.cancel] == ["a"]
    assert [(x.key, x.due) for x in change.move] == [("b", T0 + timedelta(days=1))]


def test_a_snooze_confirmation_states_the_time_quiet_hours_and_weekends_move_it_to() -> None:
    at = T0 + timedelta(days=3)  # Thursday 09:00
    until = datetime(2026, 12, 5, 22, 30, tzinfo=LONDON)  # a Saturday night
    windowed = settings(sending=SendingSettings(business_days=True, quiet_hours=None))
    command = OwnerCommand("c@x", SAM, "snooze", 7, ActionKind.FOLLOW_UP, until, "snooze sat")
    outcome = plan.apply(ask(), command, windowed, at)
    [reply] = outcome.actions
    assert reply.data["result"] == ("snoozed until 2026-12-07T09:00:00+00:00 (first "
                                    "sending time after 2026-12-05T22:30:00+00:00)")
    [reminder] = plan.desired_actions(outcome.thread, [], windowed)  # type: ignore[arg-type]
    assert reminder.due == datetime(2026, 12, 7, 9, 0, tzinfo=LONDON)
    plain = plan.apply(ask(), command, settings(), at)
    assert plain.actions[0].data["result"] == "snoozed until 2026-12-05T22:30:00+00:00"


def test_the_owners_zone_decides_quiet_hours_and_calendar_days() -> None:
    """A New York owner on a London assistant: an ask at 19:30 New York time on Friday is
    due Monday 19:30 New York (three calendar days there), before their 20:00 quiet hours;
    counted in London it would be Tuesday 00:30, quiet there, and land at 08:00 London."""
    from mailhelper.engine.tracker import schedule_fingerprint
    from mailhelper.model.settings import OwnerTime, QuietHours

    new_york = ZoneInfo("America/New_York")
    window = SendingSettings(business_days=False, quiet_hours=QuietHours(time(20), time(8)))
    friday = datetime(2026, 12, 4, 19, 30, tzinfo=new_york)
    thread = ask(created=friday, last_owner_activity=friday)
    london_only = settings(sending=window)
    per_owner = settings(sending=window, owner_times=(OwnerTime(SAM.email, new_york),))
    [theirs] = plan.desired_actions(thread, [], per_owner)
    assert theirs.due == datetime(2026, 12, 7, 19, 30, tzinfo=new_york)
    [london] = plan.desired_actions(thread, [], london_only)
    assert london.due == datetime(2026, 12, 8, 8, 0, tzinfo=LONDON)
    # A change of an owner's zone re-plans (the fingerprint moves); no owner zone keeps it.
    assert schedule_fingerprint(per_owner) != schedule_fingerprint(london_only)
    assert schedule_fingerprint(london_only) == schedule_fingerprint(
        settings(sending=window, owner_times=(OwnerTime(SAM.email, None),)))
