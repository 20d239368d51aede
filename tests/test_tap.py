"""One tap, one reply, below the rig: the token a mailto: link carries, how the store finds
the mail it names, and how classification takes a tapped command (owners only)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from mailhelper.decide.events import DigestCommands, NewThread, OwnerCommand
from mailhelper.decide.tap import find_token, mailto, token_for, with_token
from mailhelper.model.values import ActionKind
from mailhelper.state.store import Store
from tests.test_classify import (
    ALEX,
    HELPER,
    JANE_FROM,
    SAM,
    mail,
    read,
    sent_mail,
    tracked,
)


@pytest.fixture
def store() -> Store:
    return Store.open(Path(":memory:"), "example.com")


def token_of(message_id: str) -> str:
    token = token_for(message_id.strip("<>"))
    assert token is not None
    return token


def test_mailto_is_rfc_6068_and_a_client_reads_back_what_was_meant() -> None:
    subject = with_token("Re: Café & “plans” 100% #1?", "0123456789")
    url = mailto("helper+x@example.com", subject, "send\nHi Jane,\n\nThanks!")
    assert " " not in url and "\n" not in url and "+" not in url.partition("?")[2]
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.scheme == "mailto" and query["subject"] == [subject]
    assert query["body"] == ["send\r\nHi Jane,\r\n\r\nThanks!"]  # CRLF, section 5


def test_tokens_come_only_from_the_assistants_own_ids() -> None:
    assert token_for("mh.0123456789abcdef01234567@example.com") == "0123456789"
    assert token_for("CAF00@mail.gmail.com") is None and token_for(None) is None
    assert find_token("Re: x [#0123456789] [#ABCDEF0123]") == "abcdef0123"  # the last
    assert find_token("Re: x [#0123]") is None and find_token("") is None
    assert with_token("Re: x", None) == "Re: x"


def test_a_tapped_command_from_the_owner_answers_the_mail_it_names(store: Store) -> None:
    tracked(store)
    reminder = sent_mail(store, ActionKind.FOLLOW_UP)
    subject = with_token("Re: Still no reply: Intro to Acme?", token_of(reminder))
    event = read(store, mail(to="helper@example.com", cc="", subject=subject, body="send"))
    assert isinstance(event, OwnerCommand)
    assert (event.name, event.thread_id, event.replied_kind, event.replied_to) == (
        "send", 1, ActionKind.FOLLOW_UP, reminder.strip("<>"))


def test_a_token_is_no_command_from_a_stranger_or_another_owner(store: Store) -> None:
    tracked(store)
    reminder = sent_mail(store, ActionKind.FOLLOW_UP)  # to Sam
    subject = with_token("Re: Intro to Acme?", token_of(reminder))
    stranger = read(store, mail(from_=JANE_FROM, to="helper@example.com", cc="",
                                subject=subject, body="cancel"))
    assert not isinstance(stranger, OwnerCommand)
    other_owner = read(store, mail(from_=f"Alex Kim <{ALEX.email}>", to="helper@example.com",
                                   cc="", subject=subject, body="cancel"))
    assert not isinstance(other_owner, OwnerCommand)


def test_a_token_to_several_mails_or_none_is_no_command(store: Store) -> None:
    tracked(store)
    event = read(store, mail(to="helper@example.com", cc="",
                             subject="Re: Intro [#0123456789]", body="cancel"))
    assert isinstance(event, NewThread) and event.problem is not None  # told, nothing run
    assert store.tapped_mail("0123456789", SAM.email) is None


def test_a_mail_to_the_counterpart_with_a_token_is_the_owner_writing(store: Store) -> None:
    tracked(store)
    reminder = sent_mail(store, ActionKind.FOLLOW_UP)
    subject = with_token("Re: Intro to Acme?", token_of(reminder))
    event = read(store, mail(to=JANE_FROM, subject=subject, body="done"))
    assert not isinstance(event, OwnerCommand)


def test_a_tapped_digest_command_names_a_numbered_item(store: Store) -> None:
    digest = sent_mail(store, ActionKind.DIGEST, thread_id=None)
    subject = with_token("Re: Your digest: 1 open ask", token_of(digest))
    event = read(store, mail(to=HELPER.email, cc="", subject=subject, body="snooze 1 3 days"))
    assert isinstance(event, DigestCommands) and event.replied_to == digest.strip("<>")
    [line] = event.commands
    assert (line.name, line.number, line.problem) == ("snooze", 1, None)


def test_a_token_two_mails_share_names_neither(store: Store) -> None:
    for n, tail in enumerate(("aaaaaaaaaaaaaa", "bbbbbbbbbbbbbb")):
        store.db.execute(
            "INSERT INTO actions (key, kind, thread_id, due, recipients, data, status, "
            "message_id, created) VALUES (?, 'follow_up', 1, '2026-11-30T09:00:00+00:00', "
            "?, '{}', 'sent', ?, '2026-11-30T09:00:00+00:00')",
            (f"k{n}", '[["sam@example.com", "Sam"]]', f"mh.0123456789{tail}@example.com"))
    assert store.tapped_mail("0123456789", SAM.email) is None
    store.db.execute("DELETE FROM actions WHERE key='k1'")
    assert store.tapped_mail("0123456789", SAM.email) == (
        "mh.0123456789aaaaaaaaaaaaaa@example.com", (1, ActionKind.FOLLOW_UP))
    assert store.tapped_mail("0123456789", "alex@example.com") is None
