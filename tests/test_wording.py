"""How the assistant words things for people: one time style, plurals, the ledger's thank-yous,
the answer to ``decline``, explain's summary and a dry run's plan. Pure: a clock passed in."""

from __future__ import annotations

import dataclasses
import doctest
import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from mailhelper.cli import explain, status
from mailhelper.cli import main as cli
from mailhelper.cli.status import ledger_line
from mailhelper.compose import render
from mailhelper.compose.render import Renderer, RenderJob, answered_sentence, plural, thanks_words
from mailhelper.decide.events import OwnerCommand
from mailhelper.decide.plan import apply
from mailhelper.model.message_id import make_message_id
from mailhelper.model.settings import Settings
from mailhelper.model.values import (
    Action,
    ActionKind,
    Address,
    Kind,
    PersonFigures,
    Thread,
    ThreadState,
)
from tests.rig.mailboxes import make_message

LONDON = ZoneInfo("Europe/London")
SAM = Address("sam@example.com", "Sam Rivera")
BOB = Address("bob@example.net", "Bob Lindqvist")
#: Tuesday 8 December 2026, 09:35 in London (GMT).
NOW = datetime(2026, 12, 8, 9, 35, tzinfo=LONDON)


@pytest.mark.parametrize("module", [render, explain, cli])
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.failed == 0 and result.attempted > 0


def test_plurals_and_zero() -> None:
    assert [plural(n, "offer") for n in (0, 1, 2)] == ["0 offers", "1 offer", "2 offers"]
    assert answered_sentence(0, 0) == answered_sentence(0, 3) == ""
    assert answered_sentence(1, 2) == "1 of your 2 asks was answered."
    assert answered_sentence(2, 2) == "All 2 of your asks were answered."
    assert thanks_words(0, 0) == "none yet"
    # Every count a number; no "thank-yous: none yet" where nothing was given to thank for.
    assert ledger_line(PersonFigures(None)) == "0 asks; 0 offers; 0 favours returned"
    assert ledger_line(PersonFigures(None, asks_made=1, asks_answered=1,
                                     median_hours_to_answer=50.0, offers_received=1,
                                     thanks_sent=1, thanks_drafted=1, favours_returned=1)) == (
        "1 ask, 1 answered (median 2.1 days); 1 offer; thank-yous: 1 sent, 1 drafted; "
        "1 favour returned")


def offer_thread() -> Thread:
    created = NOW - timedelta(days=1, minutes=15)
    return Thread(
        id=3, kind=Kind.OFFER, state=ThreadState.OPEN, subject="Happy to help with the move",
        owner=SAM, counterparts=(BOB,), created=created, root_message_id="offer@example.com",
        last_owner_activity=created, excerpt="If you need a hand with the move, just say.",
    )


def decline(settings: Settings) -> tuple[Thread, Action]:
    command = OwnerCommand("cmd-1@example.com", SAM, "decline", 3, line="decline")
    outcome = apply(offer_thread(), command, settings, NOW)
    assert outcome.thread is not None and outcome.thread.state is ThreadState.DECLINED
    [answer] = outcome.actions
    return outcome.thread, answer


def test_the_answer_to_decline_says_when_the_thank_you_comes_and_offers_decline_no_more(
) -> None:
    settings = Settings(owners=(SAM,), assistant=Address("helper@example.com", "Sam's helper"),
                        timezone=LONDON)
    thread, answer = decline(settings)
    parts = Renderer(settings).render_parts(RenderJob(answer, thread, NOW))
    assert parts.subject == "Declined: “Happy to help with the move”"
    assert parts.text == "Declined. I'll draft a thank-you to Bob for you on Tue 8 Dec, 11:35.\n"
    assert "a thank-you is still due" not in parts.text and ": declined" not in parts.text

    # In send mode the thank-you goes to Bob himself, and the answer says so.
    sending = dataclasses.replace(settings, schedules=dataclasses.replace(
        settings.schedules, thank_you=dataclasses.replace(settings.schedules.thank_you,
                                                          mode="send")))
    _, answer = decline(sending)
    assert answer.data["result"].startswith("declined: I'll thank Bob for the offer on 2026-12-08")


def test_status_names_actions_and_times_as_the_mails_do(tmp_path: Path) -> None:
    from mailhelper.state.store import Store

    store = Store.open(tmp_path / "s.db", "example.com")
    thread = dataclasses.replace(offer_thread(), kind=Kind.ASK, state=ThreadState.DONE,
                                 closed_at=NOW)
    store.save_thread(thread)
    store.add_action(Action("t3/return_favor", ActionKind.RETURN_FAVOR,
                            NOW + timedelta(days=30), 3, (SAM,)), NOW)
    settings = Settings(owners=(SAM,), assistant=Address("helper@example.com"), timezone=LONDON)
    table = status.status_table(store, settings)
    store.close()
    assert "return-the-favour reminder Thu 7 Jan, 09:35" in table
    assert "return_favor" not in table
    assert table.endswith("Ledger: 1 ask, 0 answered; 0 offers; 0 favours returned")


def write_config(folder: Path) -> Path:
    path = folder / "mailhelper.yaml"
    path.write_text(yaml.safe_dump({
        "timezone": "Europe/London",
        "owners": [{"name": "Sam Rivera", "email": "sam@example.com"}],
        "assistant": {"name": "Sam's assistant", "email": "helper@example.com"},
        "imap": {"host": "127.0.0.1", "security": "none"},
        "smtp": {"host": "127.0.0.1", "security": "none"},
        "state": str(folder / "state.db"),
    }))
    return path


def test_explain_shows_when_a_snooze_ends_and_who_made_an_offer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    reminder = make_message_id("t1/follow_up/20261203T090000Z/1", "example.com", b"")
    mail = tmp_path / "snooze.eml"
    mail.write_bytes(make_message("sam@example.com", "helper@example.com", "Re: Reminder",
                                  "snooze 3 days", date="Mon, 30 Nov 2026 08:59:00 +0000",
                                  in_reply_to=reminder))
    now = "2026-11-30T09:00:00+00:00"
    assert cli.main(["explain", str(mail), "--now", now, "--config", str(config)]) == 0
    summary = capsys.readouterr().out
    assert "Verdict:   would run the owner's command: snooze until Thu 3 Dec, 09:00" in summary
    assert cli.main(["explain", str(mail), "--now", now, "--config", str(config),
                     "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["command"] == "snooze"  # the contract's value

    offer = tmp_path / "offer.eml"
    offer.write_bytes(make_message("sam@example.com", "bob@example.net", "Help with the move",
                                   "Thanks Bob!", date="Mon, 30 Nov 2026 08:59:00 +0000",
                                   cc="helper+offer@example.com"))
    assert cli.main(["explain", str(offer), "--now", now, "--config", str(config)]) == 0
    summary = capsys.readouterr().out
    assert "would start tracking an offer from bob@example.net, “Help with the move”" in summary


def test_a_subject_quoting_a_subject_does_not_nest_alike() -> None:
    settings = Settings(owners=(SAM,), assistant=Address("helper@example.com"), timezone=LONDON)
    subject = "Fwd: Tell Bob what would help: “Happy to help with the move”"
    receipt = Action("msg/x/receipt", ActionKind.RECEIPT, NOW, None, (SAM,),
                     {"kind": "ask", "subject": subject, "problem": "no counterpart found"})
    parts = Renderer(settings).render_parts(RenderJob(receipt, None, NOW))
    assert parts.subject == ("Not tracked yet: “Fwd: Tell Bob what would help: ‘Happy to help "
                             "with the move’”")
    assert "''" not in parts.text and "””" not in parts.text
