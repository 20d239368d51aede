"""Bare addresses: ASCII-only case folding, and which addresses mail can be written to."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailhelper.decide import classify as classify_module
from mailhelper.decide import plan
from mailhelper.decide.classify import Context, classify, is_assistant_address
from mailhelper.decide.events import NewThread
from mailhelper.model import addresses
from mailhelper.model.addresses import check, fold
from mailhelper.model.settings import Settings
from mailhelper.model.values import ActionKind, Address, Kind, Thread, ThreadState
from mailhelper.read.parse import parse_mail
from mailhelper.state.store import Store


def test_docstring_examples() -> None:
    result = doctest.testmod(addresses)
    assert result.attempted > 0 and result.failed == 0


def test_only_ascii_letters_fold() -> None:
    assert fold("\u212aate@Example.COM") != fold("kate@example.com")  # the Kelvin sign
    assert fold("\u0130nfo@example.com") == "\u0130nfo@example.com"  # dotted capital I
    assert fold("SAM@EXAMPLE.COM") == "sam@example.com"


@pytest.mark.parametrize("email", [
    "jane@example.org", "Jane.Doe+tag@Example.ORG", "o'brien@example.ie", "a@b",
    "x" * 64 + "@example.org", "a@" + ".".join(["b" * 63] * 3) + ".example",
    "jane@example.org.", "x-y@xn--bcher-kva.example",
])
def test_writable(email: str) -> None:
    checked = check(email)
    assert checked.problem is None, checked
    assert checked.email == fold(email).rstrip(".")


@pytest.mark.parametrize(("email", "why"), [
    ("a..b@example.org", "not a valid dot-atom"),
    (".a@example.org", "not a valid dot-atom"),
    ("a.@example.org", "not a valid dot-atom"),
    ("@example.org", "not a valid dot-atom"),
    ('"a b"@example.org', "a space"),
    ('"ab"@example.org', "not a valid dot-atom"),
    ("x@foo_bar.test", "only letters, digits and hyphens"),
    ("x@-foo.test", "only letters, digits and hyphens"),
    ("x@foo..test", "empty label"),
    ("x@", "no domain"),
    ("x@[192.0.2.1]", "address literal"),
    ("j\u00f6hn@example.de", "SMTPUTF8"),
    ("\u212aate@example.com", "SMTPUTF8"),
    ("x" * 65 + "@example.org", "65 octets"),
    ("a@" + "b" * 64 + ".example", "64 octets long, over the limit of 63"),
    ("a" * 60 + "@" + ".".join(["b" * 60] * 4) + ".org", "over the limit of 254"),
    ("a@b@example.org", "exactly one @"),
    ("a\r\nBcc: x@evil.test@example.org", "control character"),
    ("a\x00@example.org", "control character"),
    ("a@exa\u2028mple.org", "control character"),
    ("a@\u00e9\u0301" * 1 + "\udc80.org", "no IDNA encoding"),
])
def test_not_writable(email: str, why: str) -> None:
    checked = check(email)
    assert checked.problem is not None and why in checked.problem, checked


def test_a_non_ascii_domain_is_written_in_its_idna_form() -> None:
    assert check("Jane@B\u00fccher.Example") == ("jane@xn--bcher-kva.example", None)


# -- only ASCII case folds wherever addresses are compared --------------------------------

KELVIN_KATE = "\u212aate@example.com"  # K is the Kelvin sign: str.lower() makes it "kate@"


def test_a_kelvin_sign_is_not_an_owner() -> None:
    settings = Settings(owners=(Address("kate@example.com"),),
                        assistant=Address("helper@example.com"))
    assert settings.owner_for("KATE@Example.com") is not None
    assert settings.owner_for(KELVIN_KATE) is None
    mail = parse_mail(f"From: {KELVIN_KATE}\r\nMessage-ID: <k@x>\r\n\r\nhi".encode())
    assert mail.from_ is not None and mail.from_.email == KELVIN_KATE
    assert not is_assistant_address("h\u0130lper@example.com", Address("hilper@example.com"))


def test_a_kelvin_sign_is_not_a_participant(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "state.db", "example.com")
    now = datetime(2026, 12, 7, 9, tzinfo=UTC)
    made = Thread(id=store.next_thread_id(), kind=Kind.ASK, state=ThreadState.OPEN,
                  subject="Intro", owner=Address("sam@example.com"),
                  counterparts=(Address("kate@example.com"),), created=now,
                  root_message_id="ask@example.com", last_owner_activity=now)
    with store.transaction():
        store.save_thread(made)
    assert store.is_participant("Kate@Example.COM")
    assert store.thread_by_subject("Intro", "KATE@example.com") == made
    assert not store.is_participant(KELVIN_KATE)
    assert store.thread_by_subject("Intro", KELVIN_KATE) is None


# -- addresses enter a thread only when mail can go to them ---------------------------------


class _NoThreads:
    def thread_for(self, message_ids: tuple[str, ...]) -> Thread | None:
        return None

    def sent_mail(self, message_ids: tuple[str, ...]) -> tuple[int | None, ActionKind] | None:
        return None

    def thread_by_subject(self, subject: str, participant: str) -> Thread | None:
        return None

    def threads_by_subject(self, subject: str) -> tuple[Thread, ...]:
        return ()

    def tapped_mail(
        self, token: str, owner: str
    ) -> tuple[str, tuple[int | None, ActionKind]] | None:
        return None

    def person_for(self, address: str) -> str | None:
        return None


SETTINGS = Settings(owners=(Address("sam@example.com"),), assistant=Address("helper@example.com"),
                    confirm=False)
NOW = datetime(2026, 12, 7, 9, tzinfo=UTC)


def _ask(cc: str) -> NewThread:
    raw = (f"From: Sam <sam@example.com>\r\nTo: Jane <jane@example.org>\r\nCc: {cc}, "
           "helper@example.com\r\nSubject: Intro\r\nMessage-ID: <ask@example.com>\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n\r\nCould you help?").encode()
    event = classify(parse_mail(raw), Context(SETTINGS, _NoThreads(), NOW))
    assert isinstance(event, NewThread)
    return event


def test_classify_doctests() -> None:
    result = doctest.testmod(classify_module)
    assert result.attempted > 0 and result.failed == 0


def test_an_unwritable_address_is_left_out_and_the_rest_tracked() -> None:
    event = _ask("j\u00f6hn@example.de, A..B@Example.org, Bob <bob@B\u00fccher.example>")
    assert event.problem is None
    assert [c.email for c in event.counterparts] == ["jane@example.org",
                                                     "bob@xn--bcher-kva.example"]
    assert [email for email, _why in event.left_out] == ["j\u00f6hn@example.de",
                                                          "a..b@example.org"]
    # confirm: false silences receipts, but not one that says who was left out.
    receipt = plan.receipt(event, None, None, SETTINGS, NOW)
    assert receipt is not None and "j\u00f6hn@example.de, because" in receipt.data["left_out"]


def test_nobody_writable_is_a_problem_the_owner_hears_of() -> None:
    event = classify(parse_mail(
        b"From: sam@example.com\r\nTo: x@foo_bar.test, helper@example.com\r\n"
        b"Subject: Intro\r\nMessage-ID: <a2@example.com>\r\n\r\nHelp?"),
        Context(SETTINGS, _NoThreads(), NOW))
    assert isinstance(event, NewThread) and event.counterparts == ()
    assert event.problem == "I could not find anyone on the mail whom I can write to"
    assert event.left_out[0][0] == "x@foo_bar.test"


def test_a_counterpart_at_a_non_ascii_domain_is_one_address_in_mail_and_on_the_thread() -> None:
    event = _ask("Bob <bob@B\u00fccher.Example>")
    reply = parse_mail("From: Bob <BOB@b\u00fccher.example>\r\nMessage-ID: <r@x>\r\n\r\nYes"
                       .encode())
    assert reply.from_ is not None
    assert reply.from_.email in {c.email for c in event.counterparts}
    assert fold("bob@b\u00fccher.example") == "bob@xn--bcher-kva.example"


def test_an_owner_at_a_non_ascii_domain_is_recognised() -> None:
    owners = Settings(owners=(Address("sam@b\u00fccher.example"),),
                      assistant=Address("helper@example.com"))
    mail = parse_mail("From: Sam <Sam@B\u00fccher.Example>\r\nMessage-ID: <o@x>\r\n\r\nHi"
                      .encode())
    assert mail.from_ is not None and owners.owner_for(mail.from_.email) is not None
