"""The header-only look that spares parsing mail which can only be ignored: it must never
skip a message the full reading would act on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailhelper.decide.classify import Context, classify
from mailhelper.decide.events import Ignored
from mailhelper.decide.prefilter import ignorable
from mailhelper.model.settings import Settings
from mailhelper.model.values import ActionKind, Address, Kind, Thread, ThreadState
from mailhelper.read.parse import UnparseableMail, parse_mail

SETTINGS = Settings(owners=(Address("sam@example.com", "Sam Rivera"),),
                    assistant=Address("helper@example.com"))
NOW = datetime(2026, 12, 7, 9, tzinfo=UTC)


class Index:
    """What the assistant knows: some Message-IDs and some people on threads."""

    def __init__(self, known_ids: tuple[str, ...] = (), people: tuple[str, ...] = ()) -> None:
        self.known_ids = set(known_ids)
        self.people = set(people)

    def thread_for(self, message_ids: tuple[str, ...]) -> Thread | None:
        if self.known_ids & set(message_ids):
            return Thread(id=1, kind=Kind.ASK, state=ThreadState.OPEN, subject="Intro",
                          owner=SETTINGS.owners[0], counterparts=(Address("jane@example.org"),),
                          created=NOW, root_message_id="ask-1@example.com",
                          last_owner_activity=NOW)
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

    def is_participant(self, email: str) -> bool:
        return email in self.people


def mail(from_: str, extra: str = "", message_id: str = "<m1@shop.example>") -> bytes:
    return (f"From: {from_}\r\nTo: helper@example.com\r\nSubject: Hello\r\n"
            f"Message-ID: {message_id}\r\n{extra}\r\nBody\r\n").encode()


def test_a_strangers_mail_about_nothing_tracked_is_ignorable() -> None:
    found = ignorable(mail("Shop <news@shop.example>"), SETTINGS, Index())
    assert found == ("m1@shop.example",
                     "from news@shop.example: not an owner and not a reply to a tracked thread")


@pytest.mark.parametrize(("raw", "why"), [
    (mail("Sam Rivera <sam@example.com>"), "an owner"),
    (mail('"sam@example.com" <sam@evil.example>'), "names an owner in the From field"),
    (mail("=?utf-8?q?Sam?= <SAM@EXAMPLE.COM>"), "an owner, upper case"),
    (mail("helper@example.com"), "the assistant itself"),
    (mail("a@x.example, b@y.example"), "two senders"),
    (mail("Shop <news@shop.example>", message_id=""), "no Message-ID"),
    (mail("Shop <news@shop.example>", message_id="<mh.0123456789abcdef01234567@example.com>"),
     "the assistant's own Message-ID"),
    (mail("Jane <jane@example.org>", "In-Reply-To: <ask-1@example.com>\r\n"), "a reply"),
    (mail("Jane <jane@example.org>"), "someone on a thread"),
    (b"not a mail at all", "no header"),
])
def test_anything_that_might_matter_is_read_in_full(raw: bytes, why: str) -> None:
    index = Index(known_ids=("ask-1@example.com",), people=("jane@example.org",))
    assert ignorable(raw, SETTINGS, index) is None, why


def test_whatever_it_skips_the_full_reading_ignores_too(corpus_dir: Path) -> None:
    """Over every corpus message (with an empty state), a skip is always a full-reading
    Ignored: the shortcut changes the cost, never the outcome."""
    skipped = 0
    for path in sorted(corpus_dir.rglob("*")):
        if not path.is_file() or path.suffix not in (".eml", ".msg", ".txt", ""):
            continue
        raw = path.read_bytes()
        if ignorable(raw, SETTINGS, Index()) is None:
            continue
        skipped += 1
        try:
            parsed = parse_mail(raw)
        except UnparseableMail:
            continue
        event = classify(parsed, Context(SETTINGS, Index(), NOW))
        assert isinstance(event, Ignored), (path.name, event)
    assert skipped > 10, "the corpus should hold plenty of strangers' mail"


@pytest.mark.parametrize("from_", [
    "sam@example.com (Sam Rivera)",
    "sam(Sam Rivera)@example.com",
    '"Sam Rivera"\r\n\t<sam@\r\n example.com>',
    "Sam Rivera <sam\r\n @example.com>",
    "(Sam) sam @ example.\r\n com",
])
def test_an_owner_from_with_a_comment_or_folding_is_read_in_full_and_is_the_owner(
    from_: str,
) -> None:
    """The shortcut reads the From as the full reading does: both see the owner."""
    raw = mail(from_, message_id="<ask-9@example.com>").replace(
        b"To: helper@example.com", b"To: Jane <jane@example.org>, helper@example.com")
    assert ignorable(raw, SETTINGS, Index()) is None
    parsed = parse_mail(raw)
    assert parsed.from_ is not None and parsed.from_.email == "sam@example.com"
    event = classify(parsed, Context(SETTINGS, Index(), NOW))
    assert not isinstance(event, Ignored), event


def test_a_kelvin_sign_is_a_stranger_to_the_shortcut_and_the_full_reading() -> None:
    raw = mail("\u212aate@example.com")
    settings = Settings(owners=(Address("kate@example.com"),),
                        assistant=Address("helper@example.com"))
    assert ignorable(raw, settings, Index()) is not None
    event = classify(parse_mail(raw), Context(settings, Index(), NOW))
    assert isinstance(event, Ignored)
