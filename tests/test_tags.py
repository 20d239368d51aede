"""Tags on the owner's mail: plus-address, then subject, then the first body line."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhelper.decide.tags import NO_TAG, TagReading, read_tag, subject_without_tag
from mailhelper.model.settings import Tags
from mailhelper.model.values import Address, Kind, Mail

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 11, 30, 14, 37, tzinfo=LONDON)  # a Monday
HELPER = Address("helper@example.com", "Sam's assistant")
JANE = Address("jane@example.org", "Jane Doe")


def london(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
           second: int = 0, *, fold: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=LONDON, fold=fold)


def read(tags: Tags | None = None, **fields: object) -> TagReading:
    mail = Mail("m1@example.com", **fields)  # type: ignore[arg-type]
    return read_tag(mail, HELPER, tags or Tags(), NOW, LONDON)


def to_helper(local: str) -> tuple[Address, ...]:
    return (JANE, Address(f"{local}@example.com"))


class TestPlusAddress:
    @pytest.mark.parametrize(
        ("local", "kind", "when"),
        [
            ("helper+offer", Kind.OFFER, None),
            ("helper+ask", Kind.ASK, None),
            ("helper+5d", None, london(2026, 12, 5, 14, 37)),
            ("helper+offer+2d", Kind.OFFER, london(2026, 12, 2, 14, 37)),
            ("helper+2d+offer", Kind.OFFER, london(2026, 12, 2, 14, 37)),
            ("helper+monday", None, london(2026, 12, 7, 9, 0)),
            ("helper+next-monday", None, london(2026, 12, 7, 9, 0)),
            ("helper+ask+3_business_days", Kind.ASK, london(2026, 12, 3, 14, 37)),
            ("helper+follow-up-in-5-days", None, london(2026, 12, 5, 14, 37)),
            ("helper+2026-12-01", None, london(2026, 12, 1, 9, 0)),
        ],
    )
    def test_each_form(self, local: str, kind: Kind | None, when: datetime | None) -> None:
        reading = read(cc=to_helper(local))
        assert reading == TagReading(kind, local.split("+", 1)[1], when, "plus",
                                     whens=(when,) if when else ())

    def test_it_is_found_in_to_bcc_and_delivered_to_too(self) -> None:
        for mail in (Mail("m1", to=to_helper("helper+offer")),
                     Mail("m1", bcc=to_helper("helper+offer")),
                     Mail("m1", delivered_to=to_helper("helper+offer"))):
            assert read_tag(mail, HELPER, Tags(), NOW, LONDON).kind is Kind.OFFER

    def test_case_does_not_matter(self) -> None:
        # Address.email is lower-case already; the tag words are matched without case anyway.
        reading = read(tags=Tags(offer=("Offer",)), cc=to_helper("helper+offer"))
        assert reading.kind is Kind.OFFER

    @pytest.mark.parametrize("email", [
        "helper+offer@example.net",  # another domain
        "helpers+offer@example.com",  # another mailbox
        "xhelper+offer@example.com",
        "helper+@example.com",  # nothing after the plus
        "helper@example.com",
    ])
    def test_only_the_assistants_own_plus_address_counts(self, email: str) -> None:
        assert read(cc=(Address(email),)) == NO_TAG

    def test_an_assistant_at_a_plus_address_of_its_own(self) -> None:
        mail = Mail("m1", cc=(Address("sam+helper+offer@gmail.com"),))
        reading = read_tag(mail, Address("sam+helper@gmail.com"), Tags(), NOW, LONDON)
        assert (reading.kind, reading.tag) == (Kind.OFFER, "offer")

    def test_an_unknown_plus_tag_is_reported(self) -> None:
        reading = read(cc=to_helper("helper+blah"))
        assert reading == TagReading(None, "blah", None, "plus", unknown="helper+blah@")

    def test_the_understood_part_of_a_half_known_plus_tag_is_kept(self) -> None:
        reading = read(cc=to_helper("helper+offer+blah"))
        assert (reading.kind, reading.unknown) == (Kind.OFFER, "helper+offer+blah@")

    def test_both_kinds_at_once_is_not_understood(self) -> None:
        reading = read(cc=to_helper("helper+ask+offer"))
        assert (reading.kind, reading.unknown) == (None, "helper+ask+offer@")

    def test_two_times_at_once_is_not_understood(self) -> None:
        assert read(cc=to_helper("helper+2d+monday")).unknown == "helper+2d+monday@"

    def test_it_comes_before_the_subject_and_the_first_line(self) -> None:
        reading = read(cc=to_helper("helper+ask"), subject="[offer] Intro", text="offer\n")
        assert (reading.kind, reading.source) == (Kind.ASK, "plus")


class TestSubject:
    @pytest.mark.parametrize(
        ("subject", "tag", "kind", "when"),
        [
            ("[offer] Intro to Acme", "[offer]", Kind.OFFER, None),
            ("Intro to Acme [offer]", "[offer]", Kind.OFFER, None),
            ("Fwd: [OFFER] Intro to Acme", "[OFFER]", Kind.OFFER, None),
            ("#offer Intro to Acme", "#offer", Kind.OFFER, None),
            ("Intro to Acme #Offer", "#Offer", Kind.OFFER, None),
            ("[ask] Intro", "[ask]", Kind.ASK, None),
            ("[5d] Intro", "[5d]", None, london(2026, 12, 5, 14, 37)),
            ("[offer 2d] Intro", "[offer 2d]", Kind.OFFER, london(2026, 12, 2, 14, 37)),
            ("[offer+2d] Intro", "[offer+2d]", Kind.OFFER, london(2026, 12, 2, 14, 37)),
            ("[Offer, follow up friday] Intro", "[Offer, follow up friday]", Kind.OFFER,
             london(2026, 12, 4, 9, 0)),
            ("[offer] [2d] Intro", "[offer] [2d]", Kind.OFFER, london(2026, 12, 2, 14, 37)),
            ("[EXTERNAL] [ask] Intro", "[ask]", Kind.ASK, None),
        ],
    )
    def test_each_form(self, subject: str, tag: str, kind: Kind | None,
                       when: datetime | None) -> None:
        assert read(subject=subject) == TagReading(kind, tag, when, "subject",
                                                   whens=(when,) if when else ())

    @pytest.mark.parametrize("subject", [
        "[EXTERNAL] Intro to Acme",
        "[Ask the experts] weekly digest",  # a list name with a tag word in it
        "[task] Quarterly numbers",  # a word that contains a tag word is another word
        "Re: [offers] weekly",
        "Issue #12 is fixed",
        "C# tips",
        "#3d printing",  # a hash tag takes a tag word only
        "[1st draft] proposal",
        "Offer letter",
        "Can you ask Jane?",
    ])
    def test_brackets_and_hashes_that_are_not_tags(self, subject: str) -> None:
        assert read(subject=subject) == NO_TAG

    @pytest.mark.parametrize(("subject", "unknown"), [
        ("[ofer] Intro", "[ofer]"),
        ("#ofer Intro", "#ofer"),
        ("[aks] Intro", "[aks]"),
        ("[3 dyas] Intro", "[3 dyas]"),
        ("[ask] [offer] Intro", "[ask] [offer]"),
    ])
    def test_a_misspelt_or_contradictory_tag_is_reported(self, subject: str,
                                                         unknown: str) -> None:
        reading = read(subject=subject)
        assert (reading.kind, reading.unknown, reading.source) == (None, unknown, "subject")

    def test_it_comes_before_the_first_line(self) -> None:
        reading = read(subject="[ask] Intro", text="offer\n")
        assert (reading.kind, reading.source) == (Kind.ASK, "subject")

    def test_configured_tag_words(self) -> None:
        tags = Tags(ask=("bitte", "request"), offer=("angebot",))
        assert read(tags, subject="[Angebot] Intro").kind is Kind.OFFER
        assert read(tags, subject="#request Intro").kind is Kind.ASK
        assert read(tags, subject="[offer] Intro") == NO_TAG  # not configured here


class TestFirstLine:
    @pytest.mark.parametrize(
        ("text", "kind", "when"),
        [
            ("offer", Kind.OFFER, None),
            ("Offer\n\nJane kindly offered to review the deck.", Kind.OFFER, None),
            ("Ask.", Kind.ASK, None),
            ("\n\n   ask   \nHi Jane", Kind.ASK, None),
            ("follow up in 5 days", None, london(2026, 12, 5, 14, 37)),
            ("Follow-up friday", None, london(2026, 12, 4, 9, 0)),
            ("remind monday 9am", None, london(2026, 12, 7, 9, 0)),
            ("Remind me in 3 days at 9am", None, london(2026, 12, 3, 9, 0)),
            ("remind: monday", None, london(2026, 12, 7, 9, 0)),
            ("offer, follow up in 2 days", Kind.OFFER, london(2026, 12, 2, 14, 37)),
            ("ask - remind me friday", Kind.ASK, london(2026, 12, 4, 9, 0)),
            ("offer 2d", Kind.OFFER, london(2026, 12, 2, 14, 37)),
        ],
    )
    def test_each_form(self, text: str, kind: Kind | None, when: datetime | None) -> None:
        reading = read(text=text)
        assert reading == TagReading(kind, text.strip().splitlines()[0].strip(), when,
                                     "first_line", whens=(when,) if when else ())

    @pytest.mark.parametrize("text", [
        "Hi Jane, could you introduce me to someone at Acme?",
        "Hi Jane,\n\noffer",  # only the first line counts
        "Offer letter attached.",
        "Ask Jane about it",
        "Tomorrow",  # a time alone on the first line is prose
        "Monday works for me",
        "offer?",  # a question, not a tag
        "follow up",  # says nothing
        "> offer",
        "---------- Forwarded message ---------\nFrom: Jane <jane@example.org>",
        "",
    ])
    def test_prose_is_no_tag_and_no_error(self, text: str) -> None:
        assert read(text=text) == NO_TAG


class TestSubjectWithoutTag:
    @pytest.mark.parametrize(("subject", "shown"), [
        ("[offer] Intro to Acme", "Intro to Acme"),
        ("Fwd: [offer] Intro to Acme #ask", "Fwd: Intro to Acme"),
        ("Intro to Acme - [offer 2d]", "Intro to Acme"),
        ("[EXTERNAL] Intro to Acme [5d]", "[EXTERNAL] Intro to Acme"),
        ("[ofer] Intro", "[ofer] Intro"),  # not understood: left for the owner to see
        ("Issue #12", "Issue #12"),
        ("Intro to Acme", "Intro to Acme"),
        ("[offer]", ""),
    ])
    def test_display_subject(self, subject: str, shown: str) -> None:
        assert subject_without_tag(subject) == shown

    def test_configured_tag_words(self) -> None:
        assert subject_without_tag("[angebot] Intro", Tags(offer=("angebot",))) == "Intro"


def test_a_plus_address_kind_takes_its_time_from_the_first_line() -> None:
    reading = read(cc=(Address("helper+offer@example.com"),),
                   text="remind monday 9am\n\n---------- Forwarded message ---------\n")
    assert reading.kind is Kind.OFFER and reading.source == "plus"
    assert reading.when == datetime(2026, 12, 7, 9, 0, tzinfo=LONDON)


def test_a_time_in_the_first_place_wins_over_a_later_one() -> None:
    reading = read(cc=(Address("helper+offer+2d@example.com"),), text="remind monday 9am\n")
    assert reading.when == datetime(2026, 12, 2, 14, 37, tzinfo=LONDON)


# -- the first line's shortcut --------------------------------------------------------------
_PIECES = ("hi jane", "Hi Jane,", "offer", "ask", "follow up", "remind me", "Bitte erinnere",
           "relance-moi", "please", "in 2 days", "5d", "monday", "next week", "tomorrow 9am",
           "3/4", "blursday", "2026-12-01", "at 17:00", "and", ",", ";", " - ", ":", ".",
           "!", "+", "&", "|", "Nachfrage", "every monday", "weekly", "der 3. Dezember",
           "lundi", "🙂", "  ", "?")


@given(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=7).map(" ".join))
@settings(max_examples=400, deadline=None)
def test_a_first_line_is_read_the_same_with_and_without_its_shortcut(line: str) -> None:
    """_interpret skips the time reader for a first line with no tag word and no "follow
    up"/"remind" (most mail): the full reading of its parts gives the same answer."""
    from mailhelper.decide import tags

    words = tags._tag_words(Tags())
    clock = tags._Clock(NOW, LONDON)
    parts = [part for part in tags._PARTS.split(line.strip().rstrip(".!")) if part.strip()]
    full = tags._interpret_parts(parts, words, clock, spaced=False, bare_time=False)
    assert tags._interpret([line], words, clock, bare_time=False) == full


def test_the_shortcut_takes_only_lines_without_a_tag_word_or_a_reminder_word() -> None:
    from mailhelper.decide import tags

    words = tags._tag_words(Tags())
    assert not tags._introduces("Hi Jane,", words)
    assert not tags._introduces("in 2 days", words)  # a time alone opens no first-line tag
    assert tags._introduces("offer in 2 days", words)
    assert tags._introduces("follow up monday", words)
    assert tags._introduces("Bitte erinnere mich morgen", words)
    assert read(text="Follow up in 2 days\n\nHi").when == london(2026, 12, 2, 14, 37)
    assert read(text="In 2 days\n\nHi") == NO_TAG
