"""Per-person truth: a thread with several counterparts tracks each one. Only those who
answered are thanked, reminded of or counted as answering; the others stay open."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from mailhelper.cli.status import ledger_line
from mailhelper.decide import plan
from mailhelper.decide.events import CounterpartReply, OwnerCommand
from mailhelper.model.settings import AskSchedule, Schedules, ThankYouSchedule
from mailhelper.model.values import ActionKind, ActionStatus, Address, ThreadState
from mailhelper.state.store import Store
from tests.test_plan import SAM, T0, ask, sent, settings

JOSE = Address("jose@example.org", "José Núñez")
JANE = Address("jane@example.org", "Okafor, Jane")
BOTH = ask(counterparts=(JOSE, JANE))
SEND = settings(schedules=Schedules(thank_you=ThankYouSchedule(mode="send")))


def answer(who: Address, hours: int, trusted: bool = True) -> CounterpartReply:
    return CounterpartReply(f"r-{who.email}-{hours}@x", BOTH.id, who, f"Yes from {who.email}",
                            trusted=trusted)


def test_one_answer_of_two_leaves_the_ask_open_for_the_other() -> None:
    outcome = plan.apply(BOTH, answer(JOSE, 3), settings(), T0 + timedelta(hours=3))
    thread = outcome.thread
    assert thread is not None and thread.state is ThreadState.OPEN
    assert thread.answered == (JOSE,) and thread.silent == (JANE,)
    assert "still silent: jane@example.org" in outcome.log
    reminder, draft = sorted(plan.desired_actions(thread, [], settings()), key=lambda a: a.due,
                             reverse=True)
    assert reminder.kind is ActionKind.FOLLOW_UP and reminder.data["people"] == JANE.email
    assert draft.kind is ActionKind.THANK_YOU_DRAFT and draft.data["people"] == JOSE.email


def test_send_mode_thanks_only_who_answered_and_nudges_only_the_silent() -> None:
    s = dataclasses.replace(SEND, schedules=dataclasses.replace(
        SEND.schedules, ask=AskSchedule(nudge_counterpart=(SEND.schedules.ask.give_up_after,))))
    thread = plan.apply(BOTH, answer(JOSE, 3), s, T0 + timedelta(hours=3)).thread
    assert thread is not None
    wanted = {a.kind: a for a in plan.desired_actions(thread, [], s)}
    assert wanted[ActionKind.THANK_YOU].recipients == (JOSE,)
    assert wanted[ActionKind.NUDGE].recipients == (JANE,)


def test_a_later_answer_is_thanked_on_its_own_and_then_the_ask_is_answered() -> None:
    thread = plan.apply(BOTH, answer(JOSE, 3), SEND, T0 + timedelta(hours=3)).thread
    assert thread is not None
    [jose_thanks] = [a for a in plan.desired_actions(thread, [], SEND)
                     if a.kind is ActionKind.THANK_YOU]
    history = [sent(jose_thanks)]
    later = plan.apply(thread, answer(JANE, 30), SEND, T0 + timedelta(hours=30)).thread
    assert later is not None and later.state is ThreadState.ANSWERED
    assert later.answered_at == T0 + timedelta(hours=30)
    [jane_thanks] = plan.desired_actions(later, history, SEND)
    assert jane_thanks.kind is ActionKind.THANK_YOU and jane_thanks.recipients == (JANE,)
    assert jane_thanks.key != jose_thanks.key
    assert plan.desired_actions(later, [*history, sent(jane_thanks)], SEND) == []


def test_an_untrusted_answer_is_drafted_while_a_trusted_one_is_sent() -> None:
    thread = plan.apply(BOTH, answer(JOSE, 3), SEND, T0 + timedelta(hours=3)).thread
    assert thread is not None
    thread = plan.apply(thread, answer(JANE, 4, trusted=False), SEND,
                        T0 + timedelta(hours=4)).thread
    assert thread is not None
    wanted = {a.kind: a for a in plan.desired_actions(thread, [], SEND)}
    assert wanted[ActionKind.THANK_YOU].recipients == (JOSE,)
    assert wanted[ActionKind.THANK_YOU_DRAFT].data["people"] == JANE.email


def test_send_on_a_draft_reaches_only_the_people_it_was_written_for() -> None:
    thread = plan.apply(BOTH, answer(JOSE, 3), settings(), T0 + timedelta(hours=3)).thread
    assert thread is not None
    [draft] = [a for a in plan.desired_actions(thread, [], settings())
               if a.kind is ActionKind.THANK_YOU_DRAFT]
    # Jane answers after the draft went to Sam: "send" on José's draft still reaches José only.
    thread = plan.apply(thread, answer(JANE, 6), settings(), T0 + timedelta(hours=6)).thread
    assert thread is not None
    command = OwnerCommand("c@x", SAM, "send", thread.id, ActionKind.THANK_YOU_DRAFT,
                           replied_to="draft@x")
    outcome = plan.apply(thread, command, settings(), T0 + timedelta(hours=7),
                         [sent(draft)], replied=sent(draft))
    thanks = outcome.actions[0]
    assert thanks.kind is ActionKind.THANK_YOU and thanks.recipients == (JOSE,)
    again = plan.apply(thread, dataclasses.replace(command, message_id="c2@x"), settings(),
                       T0 + timedelta(hours=8), [sent(draft), sent(thanks)], replied=sent(draft))
    assert [a.kind for a in again.actions] == [ActionKind.COMMAND_REPLY], "never twice"


def test_send_on_a_reminder_nudges_only_who_is_still_silent() -> None:
    thread = plan.apply(BOTH, answer(JOSE, 3), settings(), T0 + timedelta(hours=3)).thread
    assert thread is not None
    command = OwnerCommand("c@x", SAM, "send", thread.id, ActionKind.FOLLOW_UP,
                           replied_to="reminder@x")
    outcome = plan.apply(thread, command, settings(), T0 + timedelta(days=3))
    assert outcome.actions[0].kind is ActionKind.NUDGE
    assert outcome.actions[0].recipients == (JANE,)


def test_return_the_favour_names_who_answered_and_nobody_else() -> None:
    thread = plan.apply(BOTH, answer(JOSE, 3), settings(), T0 + timedelta(hours=3)).thread
    assert thread is not None
    done = dataclasses.replace(thread, state=ThreadState.DONE, closed_at=T0 + timedelta(days=1))
    [favour] = [a for a in plan.desired_actions(done, [], settings())
                if a.kind is ActionKind.RETURN_FAVOR]
    assert favour.data["people"] == JOSE.email
    nobody = dataclasses.replace(BOTH, state=ThreadState.DONE, closed_at=T0)
    assert [a.kind for a in plan.desired_actions(nobody, [], settings())] == []


def test_the_ledger_counts_every_counterpart_and_no_reminder_as_a_favour(
    tmp_path: Path,
) -> None:
    store = Store.open(tmp_path / "state.db", "example.com")
    thread = plan.apply(BOTH, answer(JOSE, 3), settings(), T0 + timedelta(hours=3)).thread
    assert thread is not None
    done = dataclasses.replace(thread, state=ThreadState.DONE, closed_at=T0 + timedelta(days=1))
    with store.transaction():
        store.save_thread(done)
        for action in plan.desired_actions(done, [], settings()):
            store.add_action(action, T0)
            stored = store.action_by_key(action.key)
            assert stored is not None and stored.id is not None
            store.set_status(stored.id, ActionStatus.SENT, sent_at=T0)
    ledger = store.ledger()
    figures = {p.person.email: p for p in ledger.people if p.person is not None}
    assert set(figures) == {JOSE.email, JANE.email}
    assert (figures[JOSE.email].asks_made, figures[JOSE.email].asks_answered) == (1, 1)
    assert (figures[JANE.email].asks_made, figures[JANE.email].asks_answered) == (1, 0)
    assert figures[JOSE.email].median_hours_to_answer == 3.0
    assert (figures[JOSE.email].thanks_drafted, figures[JANE.email].thanks_drafted) == (1, 0)
    assert ledger.overall.favours_returned == 0, "a return-the-favour reminder is no favour"
    assert (ledger.overall.asks_made, ledger.overall.asks_answered) == (1, 1)
    assert ledger.overall.asks_partly == 1, "answered by José, not by Jane: only in part"
    assert (figures[JOSE.email].asks_partly, figures[JANE.email].asks_partly) == (0, 0)
    assert ledger_line(ledger.overall).startswith("1 ask, 1 answered, by only some of those asked")

