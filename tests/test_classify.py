"""Classification: one incoming mail, what the assistant knows, and a clock in; one event out.

:func:`mailhelper.decide.classify.classify` is pure: these tests build the mail as bytes (so parsing
runs as in production), the known threads in an in-memory store, and pass ``now`` in.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mailhelper.decide.classify import Context, _written, classify, display_subject
from mailhelper.decide.events import (
    CounterpartReply,
    Event,
    Ignored,
    NewThread,
    OutOfOffice,
    OwnerCommand,
    OwnerFollowUp,
)
from mailhelper.model.message_id import make_message_id
from mailhelper.model.settings import Settings, Tags
from mailhelper.model.values import (
    Action,
    ActionKind,
    ActionStatus,
    Address,
    Forwarded,
    Kind,
    Mail,
    Thread,
    ThreadState,
)
from mailhelper.read.parse import parse_mail
from mailhelper.state.store import Store
from tests.rig.mailboxes import make_message

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=LONDON)  # a Monday
DATE = "Mon, 30 Nov 2026 08:59:00 +0000"
SAM = Address("sam@example.com", "Sam Rivera")
ALEX = Address("alex@example.com", "Alex Kim")  # a second owner
HELPER = Address("helper@example.com", "Sam's assistant")
JANE = Address("jane@example.org", "Jane Doe")
SAM_FROM = "Sam Rivera <sam@example.com>"
JANE_FROM = "Jane Doe <jane@example.org>"
MALLORY_FROM = "Mallory <mallory@evil.test>"
ASK_ID = "<ask-1@example.com>"
TRUSTED = "mx.example.com"


def settings(**changes: Any) -> Settings:
    base = Settings(owners=(SAM, ALEX), assistant=HELPER, timezone=LONDON)
    return dataclasses.replace(base, **changes)


@pytest.fixture
def store() -> Store:
    return Store.open(Path(":memory:"), "example.com")


def read(store: Store, raw: bytes, now: datetime = NOW, **changes: Any) -> Event:
    return classify(parse_mail(raw), Context(settings(**changes), store, now))


def mail(from_: str = SAM_FROM, to: str = JANE_FROM, subject: str = "Intro to Acme?",
         body: str = "Hi Jane, could you introduce me to someone at Acme?",
         cc: str = "helper@example.com", headers: dict[str, str] | None = None,
         **options: Any) -> bytes:
    return make_message(from_, to, subject, body, cc=cc, date=DATE, extra_headers=headers,
                        **options)


def tracked(store: Store, kind: Kind = Kind.ASK, state: ThreadState = ThreadState.OPEN,
            subject: str = "Intro to Acme?", thread_id: int = 1) -> Thread:
    """A thread the store knows, started by ASK_ID."""
    thread = Thread(
        id=thread_id, kind=kind, state=state, subject=subject, owner=SAM, counterparts=(JANE,),
        created=NOW - timedelta(days=1), root_message_id=ASK_ID.strip("<>"),
        last_owner_activity=NOW - timedelta(days=1),
    )
    store.save_thread(thread)
    store.add_thread_messages(thread.id, (ASK_ID.strip("<>"),))
    return thread


def sent_mail(store: Store, kind: ActionKind, thread_id: int | None = 1,
              recipients: tuple[Address, ...] = (SAM,)) -> str:
    """Record an action the assistant sent; return its Message-ID as a header writes it."""
    key = f"t{thread_id}/{kind.value}/test"
    store.add_action(Action(key=key, kind=kind, due=NOW - timedelta(hours=1),
                            thread_id=thread_id, recipients=recipients), NOW)
    action = store.action_by_key(key)
    assert action is not None and action.id is not None
    store.set_status(action.id, ActionStatus.SENT, sent_at=NOW - timedelta(hours=1))
    return f"<{store.message_id_for(action)}>"


# -- new threads ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("to", "cc", "headers"),
    [
        ("Jane Doe <jane@example.org>, helper@example.com", "", {}),
        (JANE_FROM, "helper@example.com", {}),
        (JANE_FROM, "", {"Bcc": "helper@example.com"}),
        (JANE_FROM, "", {"Delivered-To": "helper@example.com"}),
        (JANE_FROM, "", {"X-Original-To": "helper@example.com"}),
    ],
    ids=["to", "cc", "bcc", "delivered-to", "x-original-to"],
)
def test_an_owners_mail_to_someone_with_the_assistant_on_it_is_a_new_ask(
    store: Store, to: str, cc: str, headers: dict[str, str]
) -> None:
    event = read(store, mail(to=to, cc=cc, headers=headers, message_id=ASK_ID))
    assert isinstance(event, NewThread)
    assert event.kind is Kind.ASK and event.problem is None
    assert event.owner == SAM
    assert event.counterparts == (JANE,)
    assert event.subject == "Intro to Acme?"
    assert event.thread_ids[0] == "ask-1@example.com"
    assert event.excerpt == "Could you introduce me to someone at Acme?", "no greeting"
    assert event.tag is None and event.when is None


def test_the_second_owner_is_an_owner_too_and_owners_are_never_counterparts(
    store: Store,
) -> None:
    event = read(store, mail(from_="Alex Kim <ALEX@example.com>",
                             to="jane@example.org, Sam <sam@example.com>"))
    assert isinstance(event, NewThread)
    assert event.owner == ALEX
    assert [c.email for c in event.counterparts] == ["jane@example.org"]


def test_everyone_the_owner_wrote_to_is_a_counterpart_in_header_order(store: Store) -> None:
    event = read(store, mail(to="Bob <BOB@example.net>, Jane Doe <jane@example.org>",
                             cc="helper@example.com, carol@example.net, bob@example.net"))
    assert isinstance(event, NewThread)
    assert [c.email for c in event.counterparts] == [
        "bob@example.net", "jane@example.org", "carol@example.net"]


@pytest.mark.parametrize(
    ("cc", "subject", "body", "tag"),
    [
        ("helper+offer@example.com", "Happy to help with Acme", "Hi Sam, glad to help.",
         "offer"),
        ("helper@example.com", "[offer] Happy to help with Acme", "Hi", "[offer]"),
        ("helper@example.com", "Happy to help with Acme #offer", "Hi", "#offer"),
        ("helper@example.com", "Happy to help with Acme", "Offer\n\nHi Sam, glad to help.",
         "Offer"),
    ],
    ids=["plus-address", "subject-bracket", "subject-hash", "first-line"],
)
def test_a_tag_makes_an_offer(store: Store, cc: str, subject: str, body: str, tag: str) -> None:
    event = read(store, mail(cc=cc, subject=subject, body=body))
    assert isinstance(event, NewThread)
    assert event.kind is Kind.OFFER
    assert event.tag == tag
    assert event.subject == "Happy to help with Acme", "the tag is not part of the subject"
    assert event.counterparts == (JANE,)


def test_a_plus_address_tag_with_a_time_counts_from_now_in_the_owners_zone(
    store: Store,
) -> None:
    event = read(store, mail(cc="helper+offer+2d@example.com"))
    assert isinstance(event, NewThread)
    assert event.kind is Kind.OFFER
    assert event.when == NOW + timedelta(days=2)
    later = NOW + timedelta(hours=5)
    event = read(store, mail(cc="helper+5d@example.com"), now=later)
    assert isinstance(event, NewThread)
    assert event.kind is Kind.ASK and event.when == later + timedelta(days=5)


def test_the_plus_address_wins_over_the_subject_and_the_first_line(store: Store) -> None:
    event = read(store, mail(cc="helper+ask@example.com", subject="[offer] x", body="offer"))
    assert isinstance(event, NewThread)
    assert event.kind is Kind.ASK and event.tag == "ask"


def test_configured_tag_words_are_read_and_stripped_from_the_subject(store: Store) -> None:
    german = Tags(ask=("bitte",), offer=("angebot",))
    event = read(store, mail(subject="[Angebot] Hilfe bei Acme #angebot"), tags=german)
    assert isinstance(event, NewThread)
    assert event.kind is Kind.OFFER
    assert event.subject == "Hilfe bei Acme"
    # With other tag words, "[offer]" is only a bracket like "[EXTERNAL]": it stays.
    event = read(store, mail(subject="[EXTERNAL] Hilfe bei Acme"), tags=german)
    assert isinstance(event, NewThread)
    assert event.subject == "[EXTERNAL] Hilfe bei Acme"
    assert display_subject("[bitte] Intro", german) == "Intro"
    assert display_subject("[offer]", Tags()) == "(no subject)"


def test_an_unknown_tag_is_a_problem_the_owner_is_told_about(store: Store) -> None:
    event = read(store, mail(cc="helper+blah@example.com"))
    assert isinstance(event, NewThread)
    assert event.problem is not None and "blah" in event.problem


def test_an_ask_to_nobody_is_a_problem_not_a_thread(store: Store) -> None:
    """Tagged an ask, but nobody to ask: the owner is told (a note is untagged mail)."""
    event = read(store, mail(to="helper+ask@example.com", cc="sam@example.com",
                             body="Please track this"))
    assert isinstance(event, NewThread)
    assert event.counterparts == ()
    assert event.problem is not None and "could not find who you asked" in event.problem


@pytest.mark.parametrize("to, cc", [
    ("helper@example.com", ""),
    ("helper+3days@example.com", ""),
    ("helper@example.com", "sam@example.com"),  # the owner copying themselves
    ("Sam <sam@example.com>", "helper+tomorrow@example.com"),
])
def test_mail_to_nobody_but_the_assistant_is_a_note(store: Store, to: str, cc: str) -> None:
    """Issue 12, item 4: FollowUpThen's most used form, ``To: helper+3days@`` alone, was
    answered "nobody but you and me is on the mail"; it is a note to self."""
    event = read(store, mail(to=to, cc=cc, body="Renew the passport"))
    assert isinstance(event, NewThread)
    assert (event.kind, event.counterparts, event.problem) == (Kind.NOTE, (), None)


@pytest.mark.parametrize("to, cc", [
    ("helper@example.com", "bob@example.net"),  # someone else on it: an ask to them
    ("helper@example.com", "alex@example.com"),  # another owner is someone else too
])
def test_mail_with_anyone_else_on_it_is_no_note(store: Store, to: str, cc: str) -> None:
    event = read(store, mail(to=to, cc=cc))
    assert isinstance(event, NewThread)
    assert event.kind is not Kind.NOTE


@pytest.mark.parametrize("body", ["cancel", "Done, thanks", "snooze 3 days", "Thanks!"])
def test_a_command_to_nobody_about_no_known_mail_is_no_note(store: Store, body: str) -> None:
    """A command whose mail the state does not know (or a forged reply) is reported, never
    kept as a note that would bring "cancel" back the next day."""
    event = read(store, mail(to="helper@example.com", cc="", body=body,
                             in_reply_to="<mh.0123456789abcdef01234567@example.com>"))
    assert isinstance(event, NewThread)
    assert event.kind is not Kind.NOTE and event.problem is not None


@pytest.mark.parametrize("body", ["Cancel the gym membership", "Send Bob the invoice"])
def test_a_fresh_note_that_opens_like_a_command_is_still_a_note(store: Store, body: str) -> None:
    event = read(store, mail(to="helper+2days@example.com", cc="", body=body))
    assert isinstance(event, NewThread)
    assert (event.kind, event.problem) == (Kind.NOTE, None)


def test_a_repeating_note_carries_its_rule(store: Store) -> None:
    event = read(store, mail(to="helper+everymonday9am@example.com", cc=""))
    assert isinstance(event, NewThread)
    assert (event.kind, event.repeat) == (Kind.NOTE, "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0")
    assert event.when is not None and event.when.weekday() == 0


FORWARD = """Can you keep an eye on this?

---------- Forwarded message ---------
From: Jane Doe <jane@example.org>
Date: Fri, 27 Nov 2026 at 16:02
Subject: Re: Acme
To: Sam Rivera <sam@example.com>

Happy to introduce you to Bob at Acme, just say the word.
"""


def test_a_forward_of_a_counterparts_offer_is_an_ask_unless_tagged(store: Store) -> None:
    event = read(store, mail(to="helper@example.com", cc="", subject="Fwd: Re: Acme",
                             body=FORWARD))
    assert isinstance(event, NewThread)
    assert event.kind is Kind.ASK
    assert event.counterparts == (JANE,)
    assert event.subject == "Acme"
    assert "Happy to introduce you" in event.excerpt
    event = read(store, mail(to="helper+offer@example.com", cc="", subject="Fwd: Re: Acme",
                             body=FORWARD))
    assert isinstance(event, NewThread) and event.kind is Kind.OFFER


# -- the owner writing again, counterparts replying -----------------------------------------


def test_the_owner_writing_again_in_a_known_thread_is_a_follow_up(store: Store) -> None:
    tracked(store)
    event = read(store, mail(subject="Re: Intro to Acme?", body="Jane, any news?",
                             in_reply_to=ASK_ID, references=ASK_ID))
    assert isinstance(event, OwnerFollowUp)
    assert event.thread_id == 1
    assert event.excerpt == "Jane, any news?"


def test_a_reply_all_to_the_assistants_nudge_is_a_follow_up_not_a_command(
    store: Store,
) -> None:
    tracked(store)
    nudge = sent_mail(store, ActionKind.NUDGE, recipients=(JANE,))
    event = read(store, mail(to=f"{JANE_FROM}, helper@example.com", cc="",
                             subject="Re: Intro to Acme?", body="Jane, just checking in.",
                             in_reply_to=nudge, references=[ASK_ID, nudge]))
    assert isinstance(event, OwnerFollowUp)
    assert event.thread_id == 1


@pytest.mark.parametrize("how", ["in-reply-to", "references", "reply-to-assistant-mail"])
def test_a_counterpart_reply_to_a_known_thread(store: Store, how: str) -> None:
    tracked(store)
    options: dict[str, Any] = {
        "in-reply-to": {"in_reply_to": ASK_ID, "references": ASK_ID},
        "references": {"references": ["<unrelated@example.net>", ASK_ID]},
        "reply-to-assistant-mail": {
            "in_reply_to": sent_mail(store, ActionKind.NUDGE, recipients=(JANE,))},
    }[how]
    event = read(store, mail(from_=JANE_FROM, to=SAM_FROM, subject="Re: Intro to Acme?",
                             body="Sure, I'll introduce you to Bob.\n\n> Hi Jane", **options))
    assert isinstance(event, CounterpartReply)
    assert event.thread_id == 1 and event.sender == JANE
    assert event.excerpt == "Sure, I'll introduce you to Bob."
    assert not event.by_fallback


def test_a_reply_without_ids_matches_by_subject_and_participant(store: Store) -> None:
    tracked(store, subject="Intro to Acme?")
    event = read(store, mail(from_=JANE_FROM, to=SAM_FROM, subject="RE: AW: Intro to Acme?",
                             body="Done!"))
    assert isinstance(event, CounterpartReply) and event.by_fallback
    # A tag left in the subject does not stop the fallback.
    event = read(store, mail(from_=JANE_FROM, to=SAM_FROM, subject="Re: [ask] Intro to Acme?",
                             body="Done!"))
    assert isinstance(event, CounterpartReply) and event.by_fallback
    # Someone who is not on the thread does not match, same subject or not.
    event = read(store, mail(from_=MALLORY_FROM, to=SAM_FROM, subject="Re: Intro to Acme?"))
    assert isinstance(event, Ignored)


def test_the_subject_fallback_skips_finished_threads_and_empty_subjects(store: Store) -> None:
    tracked(store, subject="(no subject)", state=ThreadState.OPEN)
    event = read(store, mail(from_=JANE_FROM, to=SAM_FROM, subject="", body="hello"))
    assert isinstance(event, Ignored), "an empty subject says nothing about the thread"
    tracked(store, subject="Intro to Acme?", state=ThreadState.CANCELLED, thread_id=2)
    event = read(store, mail(from_=JANE_FROM, to=SAM_FROM, subject="Re: Intro to Acme?"))
    assert isinstance(event, Ignored)


def test_the_owner_forwarding_a_counterparts_reply_answers_the_thread(store: Store) -> None:
    tracked(store, subject="Acme")
    event = read(store, mail(to="helper@example.com", cc="", subject="Fwd: Re: Acme",
                             body=FORWARD))
    assert isinstance(event, CounterpartReply)
    assert event.forwarded_by_owner and event.sender == JANE and event.thread_id == 1


def test_a_counterparts_out_of_office_names_the_return_date(store: Store) -> None:
    tracked(store)
    event = read(store, mail(from_=JANE_FROM, to=SAM_FROM,
                             subject="Automatic reply: Intro to Acme?",
                             body="I am out of the office, back on 7 December.",
                             in_reply_to=ASK_ID, headers={"Auto-Submitted": "auto-replied"}))
    assert isinstance(event, OutOfOffice)
    assert event.thread_id == 1 and event.sender == JANE
    assert event.until == datetime(2026, 12, 7, tzinfo=LONDON)


# -- commands -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("done", "done"),
        ("Send", "send"),
        ("snooze 3 days", "snooze"),
        ("DECLINE, thanks anyway", "decline"),
        ("cancel", "cancel"),
        ("status", "status"),
        ("help", "help"),
        ("Thanks, will do", "unknown"),
        ("> done\n> cancel\n\nOn Mon, 30 Nov 2026, helper wrote:\n> cancel\n\nsnooze monday",
         "snooze"),
        ("\n\n  Done.\n\nOn Mon, 30 Nov 2026, Sam's assistant <helper@example.com> wrote:\n"
         "> Reply done, send, cancel", "done"),
    ],
)
def test_the_owners_reply_to_assistant_mail_is_a_command(
    store: Store, text: str, name: str
) -> None:
    tracked(store)
    reminder = sent_mail(store, ActionKind.FOLLOW_UP)
    event = read(store, mail(to="helper@example.com", cc="", subject="Re: Reminder",
                             body=text, in_reply_to=reminder, references=[ASK_ID, reminder]))
    assert isinstance(event, OwnerCommand)
    assert event.name == name
    assert event.owner == SAM and event.thread_id == 1
    assert event.replied_kind is ActionKind.FOLLOW_UP
    if name == "snooze":
        assert event.until is not None and event.until > NOW
    if text == "snooze 3 days":
        assert event.until == NOW + timedelta(days=3)


@pytest.mark.parametrize("name", ["status", "help"])
def test_status_and_help_work_in_a_fresh_mail_to_the_assistant(store: Store, name: str) -> None:
    event = read(store, mail(to="helper@example.com", cc="", subject="hi", body=name))
    assert isinstance(event, OwnerCommand)
    assert event.name == name and event.thread_id is None


def test_an_unknown_command_answering_the_list_of_commands_is_not_answered_again(
    store: Store,
) -> None:
    help_mail = sent_mail(store, ActionKind.HELP, thread_id=None)
    event = read(store, mail(to="helper@example.com", cc="", subject="Re: Commands",
                             body="Thank you for your message.", in_reply_to=help_mail))
    assert isinstance(event, Ignored) and "not answered again" in event.reason
    # A real command in answer to the list still runs.
    event = read(store, mail(to="helper@example.com", cc="", subject="Re: Commands",
                             body="status", in_reply_to=help_mail))
    assert isinstance(event, OwnerCommand) and event.name == "status"


def test_a_stranger_can_never_run_a_command(store: Store) -> None:
    tracked(store)
    receipt = sent_mail(store, ActionKind.RECEIPT)
    for text in ("done", "cancel", "status", "help", "send"):
        event = read(store, mail(from_=MALLORY_FROM, to="helper@example.com", cc="",
                                 subject="Re: Tracking", body=text, in_reply_to=receipt))
        assert not isinstance(event, OwnerCommand | NewThread), text
        event = read(store, mail(from_=MALLORY_FROM, to="helper@example.com", cc="",
                                 subject="hi", body=text))
        assert isinstance(event, Ignored), text


# -- ignored mail ---------------------------------------------------------------------------


AUTO_SIGNS: list[tuple[dict[str, str], str]] = [
    ({"Auto-Submitted": "auto-replied"}, "auto-submitted: auto-replied"),
    ({"Auto-Submitted": "auto-generated"}, "auto-submitted: auto-generated"),
    ({"Auto-Submitted": "auto-notified"}, "auto-submitted: auto-notified"),
    ({"Precedence": "bulk"}, "precedence: bulk"),
    ({"Precedence": "junk"}, "precedence: junk"),
    ({"Precedence": "list"}, "precedence: list"),
    ({"List-Id": "Team <team.lists.example.org>"}, "list-id"),
    ({"Return-Path": "<>"}, "empty return-path"),
    ({"Return-Path": "<MAILER-DAEMON>"}, "system sender"),
    ({"X-Autoreply": "yes"}, "x-autoreply"),
]


@pytest.mark.parametrize(("headers", "reason"), AUTO_SIGNS, ids=[r for _, r in AUTO_SIGNS])
@pytest.mark.parametrize("sender", [SAM_FROM, JANE_FROM], ids=["owner", "counterpart"])
def test_auto_generated_mail_is_ignored_with_its_reason(
    store: Store, headers: dict[str, str], reason: str, sender: str
) -> None:
    tracked(store)
    receipt = sent_mail(store, ActionKind.RECEIPT)
    for options in ({}, {"in_reply_to": ASK_ID}, {"in_reply_to": receipt}):
        event = read(store, mail(from_=sender, to="helper@example.com", subject="Re: x",
                                 body="done", headers=headers, **options))
        assert isinstance(event, Ignored), options
        assert event.reason == f"auto-generated ({reason})"
        assert event.notify_owner is None


@pytest.mark.parametrize(
    ("from_", "subject"),
    [
        ("MAILER-DAEMON@mx.example.org", "Undelivered Mail Returned to Sender"),
        ("Mail Delivery System <MAILER-DAEMON@mx.example.org>", "Hello"),
        ("Mail Delivery System <postmaster@example.org>", "Hello"),
        ("<postmaster@example.org>", "Hello"),
        ("Jane Doe <jane@example.org>", "Undeliverable: Intro to Acme?"),
    ],
)
def test_bounces_and_system_senders_are_ignored(store: Store, from_: str, subject: str) -> None:
    tracked(store)
    event = read(store, mail(from_=from_, to=SAM_FROM, subject=subject, body="Sorry.",
                             in_reply_to=ASK_ID))
    assert isinstance(event, Ignored) and event.reason.startswith("auto-generated ("), subject


@pytest.mark.parametrize(
    "subject",
    ["Automatic reply: Intro to Acme?", "Out of Office: Intro to Acme?",
     "Abwesenheitsnotiz: Intro to Acme?", "Away until 7 December", "Out of office"],
)
def test_an_out_of_office_is_never_a_reply(store: Store, subject: str) -> None:
    tracked(store)
    event = read(store, mail(from_=JANE_FROM, to=SAM_FROM, subject=subject, body="Sorry.",
                             in_reply_to=ASK_ID))
    assert isinstance(event, OutOfOffice) and event.thread_id == 1, "noted, not a reply"
    event = read(store, mail(from_=MALLORY_FROM, to=SAM_FROM, subject=subject, body="Sorry.",
                             in_reply_to=ASK_ID))
    assert isinstance(event, Ignored), "only the thread's counterpart's absence matters"
    assert event.reason == "auto-generated (out-of-office)"
    event = read(store, mail(from_=SAM_FROM, to="helper@example.com", subject=subject,
                             body="done", in_reply_to=sent_mail(store, ActionKind.RECEIPT)))
    assert isinstance(event, Ignored), "the owner's own auto-reply is never a command"


def test_a_delivery_status_notification_is_ignored(store: Store) -> None:
    tracked(store)
    dsn = (
        b"From: Mail Delivery System <mailer-daemon@mx.example.org>\r\n"
        b"To: sam@example.com\r\nSubject: Delivery Status Notification (Failure)\r\n"
        b"Message-ID: <dsn-1@mx.example.org>\r\nIn-Reply-To: <ask-1@example.com>\r\n"
        b"Date: Mon, 30 Nov 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nIt did not go.\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; jane@example.org\r\n"
        b"Action: failed\r\nStatus: 5.1.1\r\n\r\n--b--\r\n"
    )
    event = read(store, dsn)
    assert isinstance(event, Ignored) and event.reason == "auto-generated (dsn)"


@pytest.mark.parametrize(
    ("subject", "headers"),
    [
        ("Intro to Acme?", {"X-Auto-Response-Suppress": "All"}),
        ("Intro to Acme?", {"X-Auto-Response-Suppress": "OOF, DR, RN, NRN, AutoReply"}),
        ("Intro to Acme?", {"Auto-Submitted": "no"}),
        ("Holiday party venue?", {}),
        ("Vacation rental recommendation", {}),
        ("Out of office party on Friday", {}),
        ("Away team tickets", {}),
        ("Absence policy question", {}),
        ("Cover for me while I'm on leave?", {}),
    ],
)
def test_a_persons_mail_is_not_taken_for_an_auto_reply(
    store: Store, subject: str, headers: dict[str, str]
) -> None:
    event = read(store, mail(subject=subject, headers=headers))
    assert isinstance(event, NewThread), event
    assert event.problem is None


def test_a_person_writing_from_postmaster_can_reply(store: Store) -> None:
    thread = tracked(store)
    store.save_thread(dataclasses.replace(
        thread, counterparts=(JANE, Address("postmaster@example.org", "Bob Admin"))))
    event = read(store, mail(from_="Bob Admin <postmaster@example.org>", to=SAM_FROM,
                             subject="Re: Intro to Acme?", in_reply_to=ASK_ID, body="Sure"))
    assert isinstance(event, CounterpartReply)


def test_a_strangers_mail_that_replies_to_nothing_is_ignored(store: Store) -> None:
    tracked(store)
    event = read(store, mail(from_=MALLORY_FROM, to="helper+offer@example.com",
                             subject="[offer] Buy now", body="offer"))
    assert isinstance(event, Ignored)
    assert event.reason == (
        "from mallory@evil.test: not an owner and not a reply to a tracked thread")
    assert event.notify_owner is None


def test_mail_without_a_sender_is_ignored(store: Store) -> None:
    event = read(store, b"Subject: hi\r\nMessage-ID: <x@y>\r\n\r\nhello")
    assert isinstance(event, Ignored) and event.reason == "no sender address"


@pytest.mark.parametrize(
    "from_", ["Sam's assistant <helper@example.com>", "HELPER+offer@Example.com"]
)
def test_mail_from_the_assistant_itself_is_a_loop(store: Store, from_: str) -> None:
    tracked(store)
    event = read(store, mail(from_=from_, to=SAM_FROM, cc="", in_reply_to=ASK_ID))
    assert isinstance(event, Ignored) and "loop" in event.reason


def test_mail_with_the_assistants_own_message_id_is_a_loop(store: Store) -> None:
    """``send_as: owner`` sends From the owner with the assistant in Cc: the copy that comes
    back must not read as the owner's follow-up (or as a command)."""
    tracked(store)
    thank_you = sent_mail(store, ActionKind.THANK_YOU, recipients=(JANE,))
    event = read(store, mail(to=JANE_FROM, cc="helper@example.com", subject="Re: Intro",
                             body="done", message_id=thank_you, in_reply_to=ASK_ID))
    assert isinstance(event, Ignored) and "loop" in event.reason
    # The shape alone is enough, even when the store no longer knows the action.
    event = read(store, mail(message_id=make_message_id("gone", "example.com", b"old"),
                             in_reply_to=ASK_ID))
    assert isinstance(event, Ignored) and "loop" in event.reason


# -- require_auth ---------------------------------------------------------------------------

AUTH = {"require_auth": True, "trusted_authserv_id": TRUSTED}


@pytest.mark.parametrize(
    ("results", "trusted"),
    [
        ([f"{TRUSTED}; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=example.com"],
         True),
        ([f"{TRUSTED}; dmarc=pass header.from=example.com"], True),
        ([f"{TRUSTED}; spf=pass smtp.mailfrom=sam@example.com"], True),
        ([], False),
        ([f"{TRUSTED}; dmarc=fail header.from=example.com; dkim=none; spf=softfail"], False),
        (["mx.evil.test; dmarc=pass header.from=example.com"], False),
        ([f"{TRUSTED}; dkim=pass header.d=evil.test; spf=pass smtp.mailfrom=evil.test"], False),
        ([f"{TRUSTED}; dmarc=pass header.from=evil.test"], False),
        # The receiving server's own verdict is on top; a forged pass below it counts not.
        ([f"{TRUSTED}; dmarc=fail header.from=example.com",
          f"{TRUSTED}; dmarc=pass header.from=example.com"], False),
        ([f'{TRUSTED}; spf=fail reason="dkim=pass header.d=example.com"'], False),
        ([f"{TRUSTED}; dkim=fail (dkim=pass header.d=example.com) header.d=example.com"],
         False),
    ],
)
def test_require_auth_trusts_only_a_passing_verdict_of_the_trusted_server(
    store: Store, results: list[str], trusted: bool
) -> None:
    tracked(store)
    reminder = sent_mail(store, ActionKind.FOLLOW_UP)
    headers = [("Authentication-Results", value) for value in results]
    ask = make_message(SAM_FROM, JANE_FROM, "Intro?", "Hi Jane", cc="helper@example.com",
                       date=DATE, extra_headers=headers)
    command = make_message(SAM_FROM, "helper@example.com", "Re: Reminder", "cancel",
                           date=DATE, in_reply_to=reminder, extra_headers=headers)
    new, cancel = read(store, ask, **AUTH), read(store, command, **AUTH)
    if trusted:
        assert isinstance(new, NewThread) and isinstance(cancel, OwnerCommand)
    else:
        for event in (new, cancel):
            assert isinstance(event, Ignored)
            assert "Authentication-Results" in event.reason and TRUSTED in event.reason
            assert event.notify_owner is None, "nobody is told"
    # Without require_auth the same mail is the owner's either way.
    assert isinstance(read(store, ask), NewThread)


def test_an_owner_failing_the_check_is_not_even_a_follow_up(
    store: Store,
) -> None:
    """Owner mail failing the check is a stranger's: it may not start or command anything,
    and the owner is not a counterpart, so it is ignored and logged."""
    tracked(store)
    event = read(store, mail(subject="Re: Intro to Acme?", in_reply_to=ASK_ID), **AUTH)
    assert isinstance(event, Ignored)


# -- the whole space: strangers never start or command anything ----------------------------


@pytest.mark.parametrize("to", ["helper@example.com", "helper+offer@example.com",
                                "helper+ask+2d@example.com", JANE_FROM])
@pytest.mark.parametrize("body", ["done", "status", "offer", "help", "Hi, can you help?"])
def test_strangers_never_create_threads_or_run_commands(
    store: Store, to: str, body: str
) -> None:
    tracked(store)
    receipt = sent_mail(store, ActionKind.RECEIPT)
    for options in ({}, {"in_reply_to": receipt}, {"references": ASK_ID}):
        event = read(store, mail(from_=MALLORY_FROM, to=to, body=body, **options))
        assert isinstance(event, Ignored | CounterpartReply), (options, event)


def test_a_reply_to_the_owners_own_assistant_mail_counts_only_from_the_counterpart(
    store: Store,
) -> None:
    """A help-desk auto-responder that marks nothing, answering a receipt the owner passed
    on, must not mark the ask answered; the counterpart answering it may."""
    tracked(store)
    receipt = sent_mail(store, ActionKind.RECEIPT)
    event = read(store, mail(from_="Support <support@helpdesk.example.net>", to=SAM_FROM,
                             subject="Re: Tracking your ask [ticket #4411]",
                             body="We received your request.", in_reply_to=receipt))
    assert isinstance(event, Ignored) and "not a counterpart of thread 1" in event.reason
    event = read(store, mail(from_=JANE_FROM, to=SAM_FROM, subject="Re: Tracking your ask",
                             body="Sure, happy to.", in_reply_to=receipt))
    assert isinstance(event, CounterpartReply) and event.thread_id == 1 and event.trusted


def test_mail_from_anyone_not_a_counterpart_never_answers_the_thread(store: Store) -> None:
    """Whoever saw the ask (a colleague in Cc, a list, a stranger it was forwarded to) can
    reference it; only the people it was addressed to can answer it."""
    tracked(store)
    for options in ({"in_reply_to": ASK_ID}, {"references": ["<x@example.net>", ASK_ID]}, {}):
        event = read(store, mail(from_="Bob <bob@example.org>", to=SAM_FROM,
                                 subject="Re: Intro to Acme?", body="I can help.", **options))
        assert isinstance(event, Ignored), (options, event)


def test_only_a_referencing_answer_from_the_counterpart_is_trusted(store: Store) -> None:
    tracked(store)
    genuine = read(store, mail(from_=JANE_FROM, to=SAM_FROM, subject="Re: Intro to Acme?",
                               body="Sure", in_reply_to=ASK_ID))
    assert isinstance(genuine, CounterpartReply) and genuine.trusted
    by_subject = read(store, mail(from_=JANE_FROM, to=SAM_FROM, subject="Re: Intro to Acme?",
                                  body="Sure"))
    assert isinstance(by_subject, CounterpartReply) and not by_subject.trusted
    # With require_auth, a passing verdict for Jane's domain vouches for a subject-only match.
    verdict = {"Authentication-Results": "mx.example.com; dkim=pass header.d=example.org"}
    auth = dict(require_auth=True, trusted_authserv_id="mx.example.com")
    signed = read(store, mail(from_=JANE_FROM, to=SAM_FROM, subject="Re: Intro to Acme?",
                              body="Sure", headers=verdict), **auth)
    assert isinstance(signed, CounterpartReply) and signed.trusted
    unsigned = read(store, mail(from_=JANE_FROM, to=SAM_FROM, subject="Re: Intro to Acme?",
                                body="Sure"), **auth)
    assert isinstance(unsigned, CounterpartReply) and not unsigned.trusted


def test_a_mass_mailing_is_not_tracked_and_the_owner_is_told(store: Store) -> None:
    many = ", ".join(f"p{n}@example.net" for n in range(150))
    event = read(store, mail(to=many))
    assert isinstance(event, NewThread)
    assert event.problem == "it is addressed to 150 people; I track asks and offers to at most 100"
    assert len(event.counterparts) == 100
    hundred = ", ".join(f"p{n}@example.net" for n in range(100))
    event = read(store, mail(to=hundred))
    assert isinstance(event, NewThread) and event.problem is None


def test_a_command_names_the_mail_it_answers(store: Store) -> None:
    """``replied_to`` is what makes two ``send`` replies to one draft send it once."""
    tracked(store)
    receipt = sent_mail(store, ActionKind.RECEIPT)
    draft = sent_mail(store, ActionKind.THANK_YOU_DRAFT)
    event = read(store, mail(to="helper@example.com", cc="", subject="Re: Say thanks",
                             body="send", in_reply_to=draft, references=[ASK_ID, receipt]))
    assert isinstance(event, OwnerCommand)
    assert event.replied_to == draft.strip("<>")
    assert event.replied_kind is ActionKind.THANK_YOU_DRAFT
    # Without In-Reply-To, the latest of the References the assistant sent.
    event = read(store, mail(to="helper@example.com", cc="", subject="Re: Say thanks",
                             body="send", references=[ASK_ID, receipt, draft, "<x@y.org>"]))
    assert isinstance(event, OwnerCommand) and event.replied_to == draft.strip("<>")


# -- answers seen second-hand in the owner's follow-up ---------------------------------------


@pytest.mark.parametrize(
    ("quote", "when"),
    [
        ("On Mon, 30 Nov 2026 at 08:00, Jane Doe <JANE@example.org> wrote:\n> Yes, of course.",
         datetime(2026, 11, 30, 8, 0, tzinfo=ZoneInfo("UTC"))),
        ("Am 30.11.2026 um 08:00 schrieb Jane Doe <jane@example.org>:\n> Ja, gern.",
         datetime(2026, 11, 30, 8, 0, tzinfo=ZoneInfo("UTC"))),
        # A date after the owner's own mail (a wrong clock) is cut to the mail's date.
        ("On Tue, 1 Dec 2026 at 10:00, Jane Doe <jane@example.org> wrote:\n> Yes.",
         datetime(2026, 11, 30, 8, 59, tzinfo=ZoneInfo("UTC"))),
        # No date: the owner's mail's.
        ("On Monday, Jane Doe <jane@example.org> wrote:\n> Yes.",
         datetime(2026, 11, 30, 8, 59, tzinfo=ZoneInfo("UTC"))),
    ],
    ids=["english", "german", "later-than-the-mail", "undated"],
)
def test_an_owners_follow_up_quoting_a_counterpart_is_also_their_untrusted_answer(
    store: Store, quote: str, when: datetime,
) -> None:
    tracked(store)
    event = read(store, mail(subject="Re: Intro to Acme?", body=f"Thanks!\n\n{quote}\n",
                             in_reply_to="<unseen@mail.gmail.com>", references=ASK_ID))
    assert isinstance(event, OwnerFollowUp) and event.excerpt == "Thanks!"
    [answer] = event.answers
    assert (answer.sender, answer.trusted, answer.at) == (JANE, False, when)


def test_an_owners_follow_up_naming_unseen_mail_of_a_counterparts_domain_is_an_answer(
    store: Store,
) -> None:
    tracked(store)
    event = read(store, mail(subject="Re: Intro to Acme?", body="Thanks!",
                             in_reply_to="<r1@example.org>",
                             references=[ASK_ID, "<r1@example.org>"]))
    assert isinstance(event, OwnerFollowUp)
    assert [(a.sender, a.trusted) for a in event.answers] == [(JANE, False)]


@pytest.mark.parametrize(
    ("body", "references"),
    [
        ("Any news?", [ASK_ID]),
        ("See below.\n\nOn Mon, 30 Nov 2026, Mallory <mallory@evil.test> wrote:\n> hi", [ASK_ID]),
        ("FYI\n\nOn Mon, 30 Nov 2026, Sam Rivera <sam@example.com> wrote:\n> hi", [ASK_ID]),
        ("Any news?", [ASK_ID, "<m1@evil.test>", "<s1@example.com>"]),
        # Jane's words only inside the quoted mail's own history: the quote is Mallory's.
        ("See below.\n\nOn Mon, 30 Nov 2026, Mallory <mallory@evil.test> wrote:\n"
         "> ok\n> On Sun, 29 Nov 2026, Jane Doe <jane@example.org> wrote:\n> > yes", [ASK_ID]),
    ],
    ids=["plain", "stranger-quoted", "owner-quoted", "stranger-and-owner-domains",
         "counterpart-only-nested"],
)
def test_an_owners_follow_up_without_a_counterparts_quote_answers_nothing(
    store: Store, body: str, references: list[str],
) -> None:
    tracked(store)
    event = read(store, mail(subject="Re: Intro to Acme?", body=body, in_reply_to=ASK_ID,
                             references=references))
    assert isinstance(event, OwnerFollowUp) and event.answers == ()


# -- a forward of a counterpart's answer from another of their addresses ----------------------


def forward_from(sender: str, subject: str = "Re: Intro to Acme?") -> bytes:
    body = ("FYI\n\n---------- Forwarded message ---------\n"
            f"From: {sender}\nDate: Mon, Nov 30, 2026 at 8:30 AM\n"
            f"Subject: {subject}\nTo: {SAM_FROM}\n\nYes, gladly.\n")
    return mail(to="helper@example.com", cc="", subject=f"Fwd: {subject}", body=body)


def test_a_forward_from_a_counterparts_other_address_is_their_answer_by_name(
    store: Store,
) -> None:
    tracked(store)
    event = read(store, forward_from("Jane Doe <Jane.Home@gmail.test>"))
    assert isinstance(event, CounterpartReply)
    assert (event.sender, event.other_address, event.trusted) == (
        JANE, "jane.home@gmail.test", False)


def test_a_recorded_other_address_matches_whatever_name_it_carries(store: Store) -> None:
    tracked(store)
    store.add_other_address("jane.home@gmail.test", JANE.email)
    event = read(store, forward_from("J. <jane.home@gmail.test>"))
    assert isinstance(event, CounterpartReply) and event.sender == JANE


@pytest.mark.parametrize(
    ("sender", "subject"),
    [
        ("Jane Doe <jane.home@gmail.test>", "Intro to Acme?"),  # not a reply: a new ask
        ("Jane Roe <jane.home@gmail.test>", "Re: Intro to Acme?"),  # another name
        ("Jane Doe <jane.home@gmail.test>", "Re: Something else"),  # another subject
    ],
    ids=["not-a-reply", "other-name", "other-subject"],
)
def test_a_forward_from_an_unknown_address_without_both_clues_is_a_new_ask(
    store: Store, sender: str, subject: str,
) -> None:
    tracked(store)
    event = read(store, forward_from(sender, subject))
    assert isinstance(event, NewThread)


def test_a_forward_is_dated_by_its_original_unless_that_date_cannot_be_true() -> None:
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    friday = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)

    def forward(date: datetime | None) -> Mail:
        return Mail("fwd@x", forwarded=Forwarded(Address("bob@example.net"), date=date))

    assert _written(forward(friday), now) == friday
    assert _written(forward(now + timedelta(hours=1)), now) is None, "a wrong clock"
    assert _written(forward(friday.replace(tzinfo=None)), now) is None, "a naive date"
    assert _written(forward(None), now) is None
    assert _written(Mail("cc@x"), now) is None, "not a forward"
