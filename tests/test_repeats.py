"""Issue 12, item 5: repeat phrases, read into an RFC 5545 RRULE in every place (plus-address,
subject tag, first body line) and four languages, each with its first two occurrences on a
fixed clock two days before the spring change in Europe/London (clocks go 01:00 GMT -> 02:00
BST on Sunday 29 March 2026), and the refusals with their reasons.

The expected rules and times are written by hand from the rules in
:func:`mailhelper.decide.timewords.read_repeat`: a day named without a time is at 09:00 local,
summer or winter; a rule on the day it is said (``every week`` on a Friday) starts next time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mailhelper.decide.tags import read_tag
from mailhelper.decide.timewords import (
    describe_repeat,
    first_occurrence,
    next_occurrence,
    read_repeat,
    read_when,
)
from mailhelper.model.settings import Tags
from mailhelper.model.values import Address, Mail

LONDON = ZoneInfo("Europe/London")
#: Friday 27 March 2026, 14:37 GMT; Sunday 29 March starts British Summer Time.
NOW = datetime(2026, 3, 27, 14, 37, tzinfo=LONDON)
ASSISTANT = Address("helper@example.com")


def d(month: int, day: int, hour: int = 9, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


MO = "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0"
DAILY = "FREQ=DAILY;BYHOUR=9;BYMINUTE=0"
FORTNIGHT = "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR;BYHOUR=9;BYMINUTE=0"
WEEK = "FREQ=WEEKLY;BYDAY=FR;BYHOUR=9;BYMINUTE=0"
MONTH = "FREQ=MONTHLY;BYMONTHDAY=27;BYHOUR=9;BYMINUTE=0"
FIRST_MONDAY = "FREQ=MONTHLY;BYDAY=1MO;BYHOUR=9;BYMINUTE=0"

# (phrase, language, rule, first occurrence, second occurrence)
TABLE: list[tuple[str, str, str, datetime, datetime]] = [
    ("every monday", "en", MO, d(3, 30), d(4, 6)),
    ("everymonday9am", "en", MO, d(3, 30), d(4, 6)),
    ("every mon", "en", MO, d(3, 30), d(4, 6)),
    ("every monday at 9am", "en", MO, d(3, 30), d(4, 6)),
    ("every monday 14:30", "en", "FREQ=WEEKLY;BYDAY=MO;BYHOUR=14;BYMINUTE=30",
     d(3, 30, 14, 30), d(4, 6, 14, 30)),
    ("each monday", "en", MO, d(3, 30), d(4, 6)),
    ("every mondays", "en", MO, d(3, 30), d(4, 6)),
    ("every weekday", "en", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9;BYMINUTE=0",
     d(3, 30), d(3, 31)),
    ("everyweekday", "en", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=9;BYMINUTE=0",
     d(3, 30), d(3, 31)),
    ("every business day at 8:30", "en",
     "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=8;BYMINUTE=30", d(3, 30, 8, 30), d(3, 31, 8, 30)),
    # 09:00 GMT on Saturday, 09:00 BST (08:00 UTC) on Sunday: the wall time stays.
    ("everyday", "en", DAILY, d(3, 28), d(3, 29)),
    ("every day", "en", DAILY, d(3, 28), d(3, 29)),
    ("daily", "en", DAILY, d(3, 28), d(3, 29)),
    ("every morning", "en", DAILY, d(3, 28), d(3, 29)),
    ("every day at 5pm", "en", "FREQ=DAILY;BYHOUR=17;BYMINUTE=0", d(3, 27, 17), d(3, 28, 17)),
    ("every evening", "en", "FREQ=DAILY;BYHOUR=18;BYMINUTE=0", d(3, 27, 18), d(3, 28, 18)),
    ("every 2 days", "en", "FREQ=DAILY;INTERVAL=2;BYHOUR=9;BYMINUTE=0", d(3, 29), d(3, 31)),
    # 01:30 on 29 March does not exist in London: it is 02:30 BST that day, 01:30 after.
    ("every sunday at 1:30am", "en", "FREQ=WEEKLY;BYDAY=SU;BYHOUR=1;BYMINUTE=30",
     d(3, 29, 2, 30), d(4, 5, 1, 30)),
    ("every week", "en", WEEK, d(4, 3), d(4, 10)),
    ("weekly", "en", WEEK, d(4, 3), d(4, 10)),
    ("every friday", "en", WEEK, d(4, 3), d(4, 10)),
    ("every 2 weeks", "en", FORTNIGHT, d(4, 10), d(4, 24)),
    ("every2weeks", "en", FORTNIGHT, d(4, 10), d(4, 24)),
    ("every two weeks", "en", FORTNIGHT, d(4, 10), d(4, 24)),
    ("every other week", "en", FORTNIGHT, d(4, 10), d(4, 24)),
    ("every fortnight", "en", FORTNIGHT, d(4, 10), d(4, 24)),
    ("every 2 weeks on monday", "en", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;BYHOUR=9;BYMINUTE=0",
     d(4, 6), d(4, 20)),
    ("every month", "en", MONTH, d(4, 27), d(5, 27)),
    ("monthly", "en", MONTH, d(4, 27), d(5, 27)),
    ("every 3 months", "en", "FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=27;BYHOUR=9;BYMINUTE=0",
     d(6, 27), d(9, 27)),
    ("every3months", "en", "FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=27;BYHOUR=9;BYMINUTE=0",
     d(6, 27), d(9, 27)),
    ("every first monday", "en", FIRST_MONDAY, d(4, 6), d(5, 4)),
    ("every 1st monday", "en", FIRST_MONDAY, d(4, 6), d(5, 4)),
    ("everyfirstmonday", "en", FIRST_MONDAY, d(4, 6), d(5, 4)),
    # Today is March's last Friday, but 09:00 has passed.
    ("every last friday", "en", "FREQ=MONTHLY;BYDAY=-1FR;BYHOUR=9;BYMINUTE=0",
     d(4, 24), d(5, 29)),
    ("every 1st business day", "en",
     "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1;BYHOUR=9;BYMINUTE=0", d(4, 1), d(5, 1)),
    ("every 15th", "en", "FREQ=MONTHLY;BYMONTHDAY=15;BYHOUR=9;BYMINUTE=0", d(4, 15), d(5, 15)),
    # The 31st, or a shorter month's last day (RFC 5545 alone would skip April).
    ("every 31st", "en",
     "FREQ=MONTHLY;BYMONTHDAY=28,29,30,31;BYSETPOS=-1;BYHOUR=9;BYMINUTE=0", d(3, 31), d(4, 30)),
    ("every year", "en", "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=27;BYHOUR=9;BYMINUTE=0",
     d(3, 27, year=2027), d(3, 27, year=2028)),
    ("jeden Montag", "de", MO, d(3, 30), d(4, 6)),
    ("jeden Montag um 9 Uhr", "de", MO, d(3, 30), d(4, 6)),
    ("jeden Tag", "de", DAILY, d(3, 28), d(3, 29)),
    ("täglich", "de", DAILY, d(3, 28), d(3, 29)),
    ("alle 2 Wochen", "de", FORTNIGHT, d(4, 10), d(4, 24)),
    ("wöchentlich", "de", WEEK, d(4, 3), d(4, 10)),
    ("jeden Monat", "de", MONTH, d(4, 27), d(5, 27)),
    ("jeden ersten Montag", "de", FIRST_MONDAY, d(4, 6), d(5, 4)),
    ("chaque lundi", "fr", MO, d(3, 30), d(4, 6)),
    ("chaque lundi à 9h", "fr", MO, d(3, 30), d(4, 6)),
    ("tous les lundis", "fr", MO, d(3, 30), d(4, 6)),
    ("tous les jours", "fr", DAILY, d(3, 28), d(3, 29)),
    ("toutes les 2 semaines", "fr", FORTNIGHT, d(4, 10), d(4, 24)),
    ("tous les mois", "fr", MONTH, d(4, 27), d(5, 27)),
    ("tous les 3 mois", "fr", "FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=27;BYHOUR=9;BYMINUTE=0",
     d(6, 27), d(9, 27)),
    ("chaque premier lundi", "fr", FIRST_MONDAY, d(4, 6), d(5, 4)),
    ("cada lunes", "es", MO, d(3, 30), d(4, 6)),
    ("todos los días", "es", DAILY, d(3, 28), d(3, 29)),
    ("cada 2 semanas", "es", FORTNIGHT, d(4, 10), d(4, 24)),
]

FILLER = {"en": "remind me", "de": "erinnere mich", "fr": "rappelle-moi", "es": "recuérdame"}


@pytest.mark.parametrize(("phrase", "language", "rule", "first", "second"), TABLE,
                         ids=[row[0] for row in TABLE])
def test_a_repeat_phrase_reads_as_its_rule_and_occurrences(
        phrase: str, language: str, rule: str, first: datetime, second: datetime) -> None:
    reading = read_repeat(phrase, NOW, LONDON)
    assert (reading.rule, reading.problem) == (rule, None)
    assert reading.first is not None
    assert reading.first.astimezone(UTC) == first.astimezone(UTC)
    assert first_occurrence(rule, NOW, LONDON) == reading.first
    following = next_occurrence(rule, reading.first, LONDON, NOW)
    assert following is not None and following.astimezone(UTC) == second.astimezone(UTC)
    # No repeat phrase is also a one-off time: a repeat is never taken for a date.
    assert read_when(phrase, NOW, LONDON).moment is None


@pytest.mark.parametrize(("phrase", "language", "rule", "first", "second"), TABLE,
                         ids=[row[0] for row in TABLE])
def test_a_repeat_reads_the_same_in_a_subject_tag_and_on_a_first_line(
        phrase: str, language: str, rule: str, first: datetime, second: datetime) -> None:
    places = [Mail("m1", subject=f"Renew passport [{phrase}]", text="Forms at the post office"),
              Mail("m2", subject="Renew passport", text=f"{FILLER[language]} {phrase}\n\nForms")]
    if phrase.isascii() and all(c.isalnum() or c in " :" for c in phrase):
        address = phrase.lower().replace(" ", "-").replace(":", ".")
        places.append(Mail("m3", to=(Address(f"helper+{address}@example.com"),)))
    for mail in places:
        tag = read_tag(mail, ASSISTANT, Tags(), NOW, LONDON)
        assert (tag.repeat, tag.problem, tag.unknown) == (rule, None, None), mail
        assert tag.when is not None and tag.when.astimezone(UTC) == first.astimezone(UTC)


def test_a_day_without_a_time_takes_the_owners_default_time() -> None:
    reading = read_repeat("every monday", NOW, LONDON, default_time=time(7, 45))
    assert reading.rule == "FREQ=WEEKLY;BYDAY=MO;BYHOUR=7;BYMINUTE=45"
    assert reading.first == d(3, 30, 7, 45)


REFUSED: list[tuple[str, str]] = [
    ("every 0 days", "never comes"),
    ("every 0 weeks", "never comes"),
    ("alle 0 Tage", "never comes"),
    ("every 2 hours", "at most once a day"),
    ("every 30 minutes", "at most once a day"),
    ("every monday at 25:00", "out of range"),
    ("every day at midnight", "midnight"),
    ("every 2 weekdays", "weekdays repeat every week"),
    ("every 2 first mondays", "every 2 months on"),
    ("every monday 9am 10am", "two times of day"),
]


@pytest.mark.parametrize(("phrase", "why"), REFUSED, ids=[row[0] for row in REFUSED])
def test_a_repeat_that_cannot_be_taken_is_refused_with_the_reason(phrase: str, why: str) -> None:
    reading = read_repeat(phrase, NOW, LONDON)
    assert reading.rule is None and reading.first is None
    assert reading.problem is not None and why in reading.problem
    # ... and a tag holding it is reported to the owner, never dropped.
    tag = read_tag(Mail("m1", subject=f"Passport [{phrase}]"), ASSISTANT, Tags(), NOW, LONDON)
    assert tag.repeat is None and tag.problem is not None and why in tag.problem


@pytest.mark.parametrize("text", ["every", "everything", "everyone", "every time you can",
                                  "each of you", "in 3 days", "monday", "alle", "tous"])
def test_words_that_are_no_repeat_are_not_one(text: str) -> None:
    assert read_repeat(text, NOW, LONDON).rule is None
    assert read_repeat(text, NOW, LONDON).problem is None


def test_a_repeat_and_another_time_on_one_mail_is_not_understood() -> None:
    mail = Mail("m1", to=(Address("helper+every-monday@example.com"),
                          Address("helper+3days@example.com")))
    tag = read_tag(mail, ASSISTANT, Tags(), NOW, LONDON)
    assert tag.repeat is None and tag.problem is not None and "repeat goes alone" in tag.problem


@pytest.mark.parametrize(("rule", "words"), [
    (MO, "every Monday at 09:00"),
    (FORTNIGHT, "every 2 weeks on Friday at 09:00"),
    (DAILY, "every day at 09:00"),
    (FIRST_MONDAY, "the first Monday of every month at 09:00"),
    ("FREQ=MONTHLY;BYMONTHDAY=28,29,30,31;BYSETPOS=-1;BYHOUR=9;BYMINUTE=0",
     "every month on the 31st (or the month's last day) at 09:00"),
    ("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;BYHOUR=17;BYMINUTE=0",
     "the last business day of every month at 17:00"),
])
def test_a_repeat_reads_back_in_words(rule: str, words: str) -> None:
    assert describe_repeat(rule) == words


def test_every_repeat_phrase_on_the_readme_card_reads_as_a_repeat() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines()
            if line.startswith(("| `every", "| `daily", "| repeats in"))]
    phrases = [p for row in rows for p in re.findall(r"`([^`]+)`", row.split(" | ")[0]
                                                     if "repeats in" not in row else row)]
    assert len(phrases) >= 30
    for phrase in phrases:
        reading = read_repeat(phrase.replace("-", " "), NOW, LONDON)
        assert reading.rule is not None, phrase
