"""Issue 12's time words, one grammar in every place: each phrase in a plus-address, a subject
tag, a first body line and a ``snooze`` command, with its due time on a fixed clock two days
before the spring change in Europe/London (clocks go 01:00 GMT -> 02:00 BST on Sunday 29 March
2026), and the refusals with their reasons.

The expected times are written by hand from the rules in :mod:`mailhelper.decide.timewords`.
"""

from __future__ import annotations

from datetime import datetime, time
from types import ModuleType
from zoneinfo import ZoneInfo

import pytest

from mailhelper.decide import commands, tags, timewords
from mailhelper.decide.commands import parse_command
from mailhelper.decide.tags import read_tag
from mailhelper.decide.timewords import read_when
from mailhelper.model.settings import Tags
from mailhelper.model.values import Address, Mail

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
#: Friday 27 March 2026, 14:37 GMT; Sunday 29 March starts British Summer Time.
NOW = datetime(2026, 3, 27, 14, 37, tzinfo=LONDON)
ASSISTANT = Address("helper@example.com")


def d(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


# (phrase, language, due). "en" phrases go on a first line after "remind me", "de" after
# "erinnere mich", "fr" after "rappelle-moi", "es" after "recuérdame".
TABLE: list[tuple[str, str, datetime]] = [
    # durations: days and longer keep the wall-clock time across the change, hours do not
    ("5d", "en", d(4, 1, 14, 37)),
    ("5 days", "en", d(4, 1, 14, 37)),
    ("in 5 days", "en", d(4, 1, 14, 37)),
    ("5 days from now", "en", d(4, 1, 14, 37)),
    ("in 3 days", "en", d(3, 30, 14, 37)),
    ("3days", "en", d(3, 30, 14, 37)),
    ("72 hours", "en", d(3, 30, 15, 37)),
    ("72h", "en", d(3, 30, 15, 37)),
    ("90m", "en", d(3, 27, 16, 7)),
    ("in 45 minutes", "en", d(3, 27, 15, 22)),
    ("2h", "en", d(3, 27, 16, 37)),
    ("an hour", "en", d(3, 27, 15, 37)),
    ("a week", "en", d(4, 3, 14, 37)),
    ("in 2 weeks", "en", d(4, 10, 14, 37)),
    ("in two weeks", "en", d(4, 10, 14, 37)),
    ("2w", "en", d(4, 10, 14, 37)),
    ("in 6 weeks", "en", d(5, 8, 14, 37)),
    ("in a fortnight", "en", d(4, 10, 14, 37)),
    ("in 1 month", "en", d(4, 27, 14, 37)),
    ("1month", "en", d(4, 27, 14, 37)),
    ("5months", "en", d(8, 27, 14, 37)),
    ("in 18 months", "en", d(9, 27, 14, 37, 2027)),
    ("1year", "en", d(3, 27, 14, 37, 2027)),
    ("in 2 years", "en", d(3, 27, 14, 37, 2028)),
    ("3 business days", "en", d(4, 1, 14, 37)),
    ("3businessdays", "en", d(4, 1, 14, 37)),
    ("1 working day", "en", d(3, 30, 14, 37)),
    ("in 3 days at 9am", "en", d(3, 30, 9)),
    ("in three days at 9am", "en", d(3, 30, 9)),
    ("2 weeks at noon", "en", d(4, 10, 12)),
    ("in 1 month at 10:00", "en", d(4, 27, 10)),
    # days, weekdays and times of day
    ("tomorrow", "en", d(3, 28, 9)),
    ("tomorrow2pm", "en", d(3, 28, 14)),
    ("tomorrow at 14:30", "en", d(3, 28, 14, 30)),
    ("tomorrow morning", "en", d(3, 28, 9)),
    ("tomorrow noon", "en", d(3, 28, 12)),
    ("tomorrow evening", "en", d(3, 28, 18)),
    ("tmrw 8am", "en", d(3, 28, 8)),
    ("day after tomorrow", "en", d(3, 29, 9)),
    ("monday", "en", d(3, 30, 9)),
    ("monday9am", "en", d(3, 30, 9)),
    ("Monday at 9", "en", d(3, 30, 9)),
    ("monday morning", "en", d(3, 30, 9)),
    ("next monday", "en", d(3, 30, 9)),
    ("friday", "en", d(4, 3, 9)),  # said on a Friday: next week's
    ("friday5pm", "en", d(4, 3, 17)),
    ("weds930am", "en", d(4, 1, 9, 30)),
    ("wed 9.30am", "en", d(4, 1, 9, 30)),
    ("thu", "en", d(4, 2, 9)),
    ("thursday 15h30", "en", d(4, 2, 15, 30)),
    ("thursday afternoon", "en", d(4, 2, 14)),
    ("tue at 1530", "en", d(3, 31, 15, 30)),
    ("next tuesday at 4pm", "en", d(3, 31, 16)),
    ("sunday 1:30am", "en", d(3, 29, 2, 30)),  # in the gap: moved on by its length
    ("sunday noon", "en", d(3, 29, 12)),
    ("this saturday", "en", d(3, 28, 9)),
    ("sat 10am", "en", d(3, 28, 10)),
    ("saturday evening", "en", d(3, 28, 18)),
    ("this evening", "en", d(3, 27, 18)),
    ("tonight", "en", d(3, 27, 18)),
    ("end of day", "en", d(3, 27, 17)),
    ("noon", "en", d(3, 28, 12)),  # gone today: tomorrow
    ("3pm", "en", d(3, 27, 15)),
    ("2pm", "en", d(3, 28, 14)),
    ("930am", "en", d(3, 28, 9, 30)),
    ("at 1530", "en", d(3, 27, 15, 30)),
    ("15h30", "en", d(3, 27, 15, 30)),
    ("nextweek", "en", d(3, 30, 9)),
    ("next week", "en", d(3, 30, 9)),
    ("nextmonth", "en", d(4, 1, 9)),
    ("next month", "en", d(4, 1, 9)),
    ("next year", "en", d(1, 1, 9, 0, 2027)),
    ("end of month", "en", d(3, 31, 9)),
    ("at the end of the month", "en", d(3, 31, 9)),
    ("end of next month", "en", d(4, 30, 9)),
    ("1stbusinessday", "en", d(4, 1, 9)),  # March's has gone
    ("first business day of next month", "en", d(4, 1, 9)),
    ("2nd business day of next month", "en", d(4, 2, 9)),
    ("3rd business day of next month", "en", d(4, 3, 9)),
    ("last business day", "en", d(3, 31, 9)),
    ("the 15th", "en", d(4, 15, 9)),
    ("aug15", "en", d(8, 15, 9)),
    ("15aug", "en", d(8, 15, 9)),
    ("august15th", "en", d(8, 15, 9)),
    ("dec25", "en", d(12, 25, 9)),
    ("21jan2027", "en", d(1, 21, 9, 0, 2027)),
    ("april3rdAt1300", "en", d(4, 3, 13)),
    ("3 april", "en", d(4, 3, 9)),
    ("April 3rd at 1pm", "en", d(4, 3, 13)),
    ("the 3rd of april", "en", d(4, 3, 9)),
    ("Apr 1", "en", d(4, 1, 9)),
    ("1 apr 2027", "en", d(4, 1, 9, 0, 2027)),
    ("December 3rd 2026", "en", d(12, 3, 9)),
    ("march 27", "en", d(3, 27, 9, 0, 2027)),  # 09:00 today has gone: next year's
    ("march 28 8am", "en", d(3, 28, 8)),
    ("2026-04-01", "en", d(4, 1, 9)),
    ("2027-01-31", "en", d(1, 31, 9, 0, 2027)),
    ("15/4", "en", d(4, 15, 9)),  # only one reading is a date
    ("30/3 at 10am", "en", d(3, 30, 10)),
    # German
    ("in 3 Tagen", "de", d(3, 30, 14, 37)),
    ("in zwei Tagen", "de", d(3, 29, 14, 37)),
    ("in 2 Wochen", "de", d(4, 10, 14, 37)),
    ("in einer Woche", "de", d(4, 3, 14, 37)),
    ("in 1 Monat", "de", d(4, 27, 14, 37)),
    ("in 2 Stunden", "de", d(3, 27, 16, 37)),
    ("in 3 Werktagen", "de", d(4, 1, 14, 37)),
    ("morgen", "de", d(3, 28, 9)),
    ("morgen um 10", "de", d(3, 28, 10)),
    ("morgen früh", "de", d(3, 28, 9)),
    ("übermorgen", "de", d(3, 29, 9)),
    ("Montag 9 Uhr", "de", d(3, 30, 9)),
    ("am Montag um 14:30", "de", d(3, 30, 14, 30)),
    ("Donnerstag 15 Uhr", "de", d(4, 2, 15)),
    ("Freitag 9.30 Uhr", "de", d(4, 3, 9, 30)),
    ("nächsten Dienstag", "de", d(3, 31, 9)),
    ("nächste Woche", "de", d(3, 30, 9)),
    ("heute Abend", "de", d(3, 27, 18)),
    ("heute 16 Uhr", "de", d(3, 27, 16)),
    ("Ende des Monats", "de", d(3, 31, 9)),
    ("am 3. April", "de", d(4, 3, 9)),
    ("15.4.", "de", d(4, 15, 9)),
    # French
    ("dans 3 jours", "fr", d(3, 30, 14, 37)),
    ("dans une semaine", "fr", d(4, 3, 14, 37)),
    ("dans quinze jours", "fr", d(4, 10, 14, 37)),
    ("dans 2 mois", "fr", d(5, 27, 14, 37)),
    ("dans 2 heures", "fr", d(3, 27, 16, 37)),
    ("dans 3 jours ouvrés", "fr", d(4, 1, 14, 37)),
    ("demain", "fr", d(3, 28, 9)),
    ("demain à 14h", "fr", d(3, 28, 14)),
    ("demain matin", "fr", d(3, 28, 9)),
    ("après-demain", "fr", d(3, 29, 9)),
    ("lundi à 9h", "fr", d(3, 30, 9)),
    ("lundi prochain", "fr", d(3, 30, 9)),
    ("mardi 15h30", "fr", d(3, 31, 15, 30)),
    ("jeudi après-midi", "fr", d(4, 2, 14)),
    ("vendredi prochain", "fr", d(4, 3, 9)),
    ("ce soir", "fr", d(3, 27, 18)),
    ("aujourd'hui à 17h", "fr", d(3, 27, 17)),
    ("la semaine prochaine", "fr", d(3, 30, 9)),
    ("le mois prochain", "fr", d(4, 1, 9)),
    ("fin du mois", "fr", d(3, 31, 9)),
    ("le 3 avril", "fr", d(4, 3, 9)),
    ("1er avril à 10h", "fr", d(4, 1, 10)),
    # Spanish
    ("en 3 días", "es", d(3, 30, 14, 37)),
    ("en una semana", "es", d(4, 3, 14, 37)),
    ("en quince días", "es", d(4, 10, 14, 37)),
    ("en 2 meses", "es", d(5, 27, 14, 37)),
    ("en 2 horas", "es", d(3, 27, 16, 37)),
    ("en 3 días hábiles", "es", d(4, 1, 14, 37)),
    ("mañana", "es", d(3, 28, 9)),
    ("mañana a las 10", "es", d(3, 28, 10)),
    ("mañana por la mañana", "es", d(3, 28, 9)),
    ("pasado mañana", "es", d(3, 29, 9)),
    ("el lunes a las 9", "es", d(3, 30, 9)),
    ("el próximo martes", "es", d(3, 31, 9)),
    ("el viernes", "es", d(4, 3, 9)),
    ("jueves por la tarde", "es", d(4, 2, 14)),
    ("esta noche", "es", d(3, 27, 18)),
    ("hoy a las 17", "es", d(3, 27, 17)),
    ("la próxima semana", "es", d(3, 30, 9)),
    ("la semana que viene", "es", d(3, 30, 9)),
    ("el mes que viene", "es", d(4, 1, 9)),
    ("fin de mes", "es", d(3, 31, 9)),
    ("el 3 de abril", "es", d(4, 3, 9)),
    ("el 3 de abril a las 10:30", "es", d(4, 3, 10, 30)),
]
FILLER = {"en": "remind me", "de": "erinnere mich", "fr": "rappelle-moi", "es": "recuérdame"}


def test_the_table_is_big_enough() -> None:
    assert len(TABLE) >= 150
    assert len({phrase.lower() for phrase, _, _ in TABLE}) == len(TABLE)


def _tag(mail: Mail, **kwargs: object) -> tuple[datetime | None, str | None]:
    reading = read_tag(mail, ASSISTANT, Tags(), NOW, LONDON, **kwargs)  # type: ignore[arg-type]
    return reading.when, reading.problem


def _plus_form(phrase: str) -> str | None:
    """The phrase as a plus-address tag, where an address can carry it."""
    if not phrase.isascii() or any(c in phrase for c in "/':,"):
        return None
    return phrase.replace(" ", "-")


#: The phrases an address can carry (no non-ASCII, slash, quote, colon or comma).
IN_ADDRESSES = [t for t in TABLE if _plus_form(t[0]) is not None]


@pytest.mark.parametrize(("phrase", "language", "due"), IN_ADDRESSES,
                         ids=[t[0] for t in IN_ADDRESSES])
def test_in_a_plus_address(phrase: str, language: str, due: datetime) -> None:
    tag = _plus_form(phrase)
    assert tag is not None
    mail = Mail("m1", cc=(Address(f"helper+{tag}@example.com"),))
    assert _tag(mail) == (due, None)


@pytest.mark.parametrize(("phrase", "language", "due"), TABLE, ids=[t[0] for t in TABLE])
def test_in_a_subject_tag(phrase: str, language: str, due: datetime) -> None:
    assert _tag(Mail("m1", subject=f"[{phrase}] Intro to Acme")) == (due, None)


@pytest.mark.parametrize(("phrase", "language", "due"), TABLE, ids=[t[0] for t in TABLE])
def test_on_a_first_line(phrase: str, language: str, due: datetime) -> None:
    mail = Mail("m1", subject="Intro", text=f"{FILLER[language]} {phrase}\n\nHi Jane, ...")
    assert _tag(mail) == (due, None)


@pytest.mark.parametrize(("phrase", "language", "due"), TABLE, ids=[t[0] for t in TABLE])
def test_in_a_snooze(phrase: str, language: str, due: datetime) -> None:
    command = parse_command(f"snooze {phrase}", NOW, LONDON)
    assert (command.name, command.until) == ("snooze", due)


# -- refusals: never taken, always with the reason --------------------------------------------

REFUSALS: list[tuple[str, str]] = [
    ("2026-01-15", "Thu 15 Jan, 09:00 has already passed"),
    ("1 march 2026", "Sun 1 Mar, 09:00 has already passed"),
    ("today 9am", "Fri 27 Mar, 09:00 has already passed"),
    ("3/4", '"3/4" could be 3 April or March 4: write the month as a word (or set date_order)'),
    ("4/3/2027", '"4/3/2027" could be 4 March or April 3: write the month as a word '
                 "(or set date_order)"),
    ("midnight", "midnight could be either side of the day: write 23:59 or 00:01"),
    ("monday 25:00", "its time of day is out of range (00:00 to 23:59)"),
    ("13pm", "its time of day is out of range (00:00 to 23:59)"),
    ("tuesday 3 april", "Fri 3 Apr 2026 is not a Tue"),
    ("monday 9am 5pm", "it names two times of day"),
    ("5000 days", '"5000 days" is longer than ten years; nothing here waits that long'),
    ("30th business day", "Mar 2026 has 22 business days, not 30"),
    ("3 hours at 9am", '"3 hours" and a time of day do not go together'),
]


@pytest.mark.parametrize(("phrase", "why"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_refusal_says_why_in_every_place(phrase: str, why: str) -> None:
    assert read_when(phrase, NOW, LONDON).problem == why
    subject = read_tag(Mail("m1", subject=f"[{phrase}] Intro"), ASSISTANT, Tags(), NOW, LONDON)
    assert subject.when is None and subject.problem is not None and why in subject.problem
    line = read_tag(Mail("m1", text=f"remind me {phrase}"), ASSISTANT, Tags(), NOW, LONDON)
    assert line.when is None and line.problem is not None and why in line.problem
    command = parse_command(f"snooze {phrase}", NOW, LONDON)
    assert command.name == "unknown" and command.problem is not None


def test_a_past_date_in_a_plus_address_is_refused_not_sent_at_once() -> None:
    mail = Mail("m1", cc=(Address("helper+2026-01-15@example.com"),))
    reading = read_tag(mail, ASSISTANT, Tags(), NOW, LONDON)
    assert (reading.when, reading.unknown) == (None, "helper+2026-01-15@")
    assert reading.problem == ('the time in "helper+2026-01-15@" cannot be used: '
                               "Thu 15 Jan, 09:00 has already passed")


@pytest.mark.parametrize(("order", "due"), [("dmy", d(4, 3, 9)), ("mdy", d(3, 4, 9, 0, 2027))])
def test_date_order_reads_a_numeric_date(order: str, due: datetime) -> None:
    assert read_when("3/4", NOW, LONDON, date_order=order).moment == due  # type: ignore[arg-type]
    mail = Mail("m1", subject="[3/4] Intro")
    assert read_tag(mail, ASSISTANT, Tags(), NOW, LONDON,
                    date_order=order).when == due  # type: ignore[arg-type]


def test_default_time_is_the_hour_of_a_day_given_without_one() -> None:
    eight = time(8)
    assert read_when("monday", NOW, LONDON, default_time=eight).moment == d(3, 30, 8)
    assert read_when("nextmonth", NOW, LONDON, default_time=eight).moment == d(4, 1, 8)
    assert read_when("monday 3pm", NOW, LONDON, default_time=eight).moment == d(3, 30, 15)
    assert read_when("in 3 days", NOW, LONDON, default_time=eight).moment == d(3, 30, 14, 37)


def test_the_owners_zone_decides_the_wall_time() -> None:
    # New York changed on 8 March: 09:00 EDT on Monday 30 March is 13:00 UTC, 14:00 in London.
    due = read_when("monday 9am", NOW, NEW_YORK).moment
    assert due == datetime(2026, 3, 30, 9, tzinfo=NEW_YORK)
    assert due is not None and due.astimezone(LONDON) == d(3, 30, 14)


def test_months_clamp_to_the_end_of_a_shorter_month() -> None:
    jan31 = datetime(2027, 1, 31, 10, tzinfo=LONDON)
    assert read_when("1 month", jan31, LONDON).moment == d(2, 28, 10, 0, 2027)
    leap = datetime(2028, 1, 31, 10, tzinfo=LONDON)
    assert read_when("1month", leap, LONDON).moment == d(2, 29, 10, 0, 2028)
    assert read_when("1 year", datetime(2028, 2, 29, 10, tzinfo=LONDON), LONDON).moment == (
        d(2, 28, 10, 0, 2029))


def test_the_autumn_overlap_takes_the_first_of_the_two_times() -> None:
    # Sunday 25 October 2026: 01:30 happens twice in London; the summer-time one is meant.
    friday = datetime(2026, 10, 23, 12, tzinfo=LONDON)
    due = read_when("sunday 1:30am", friday, LONDON).moment
    assert due is not None and due.utcoffset() is not None
    assert due.astimezone(ZoneInfo("UTC")).hour == 0  # 01:30 BST, not 01:30 GMT


# -- never silent ---------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "closest"), [
    ("remind me blursday at 9am", '"at 9am", Sat 28 Mar, 09:00'),
    ("Follow up in 3 dyas", None),
    ("erinnere mich irgendwann nächste Woche", '"nächste woche", Mon 30 Mar, 09:00'),
    ("rappelle-moi lundi vers midi peut-être", '"lundi vers midi", Mon 30 Mar, 12:00'),
    ("recuérdame el lunes temprano", '"el lunes", Mon 30 Mar, 09:00'),
])
def test_an_unreadable_time_instruction_is_reported_with_the_closest_reading(
        line: str, closest: str | None) -> None:
    reading = read_tag(Mail("m1", text=f"{line}\n\nHi Jane"), ASSISTANT, Tags(), NOW, LONDON)
    assert reading.unknown == line and reading.when is None
    assert reading.problem is not None
    assert reading.problem.startswith(f'I could not read the time in your first line "{line}"')
    if closest is None:
        assert "closest" not in reading.problem
    else:
        assert reading.problem.endswith(f"the closest I can make of it is {closest}")


@pytest.mark.parametrize("line", ["Follow up on the intro we discussed", "Remind Jane about it",
                                  "Rappelle-moi ce que tu en penses"])
def test_a_first_line_that_speaks_of_no_time_is_prose(line: str) -> None:
    reading = read_tag(Mail("m1", text=f"{line}\n\nHi"), ASSISTANT, Tags(), NOW, LONDON)
    assert reading.tag is None and reading.problem is None


@pytest.mark.parametrize("subject", ["[in 1 mnth] Intro", "[next tusday 9am] Intro"])
def test_a_bracket_meant_as_a_time_is_reported(subject: str) -> None:
    reading = read_tag(Mail("m1", subject=subject), ASSISTANT, Tags(), NOW, LONDON)
    assert reading.unknown is not None and reading.problem is not None


@pytest.mark.parametrize("subject", ["[In progress] Intro", "[Next steps] plan", "[EXTERNAL] x",
                                     "[1st draft] proposal"])
def test_a_bracket_that_is_no_time_stays_prose(subject: str) -> None:
    reading = read_tag(Mail("m1", subject=subject), ASSISTANT, Tags(), NOW, LONDON)
    assert reading.unknown is None and reading.tag is None


def test_two_tagged_addresses_each_give_a_time() -> None:
    mail = Mail("m1", to=(Address("jane@example.org"),),
                cc=(Address("helper+1week@example.com"), Address("helper+3days@example.com")))
    reading = read_tag(mail, ASSISTANT, Tags(), NOW, LONDON)
    assert reading.whens == (d(3, 30, 14, 37), d(4, 3, 14, 37))
    assert reading.when == d(3, 30, 14, 37) and reading.problem is None


@pytest.mark.parametrize("module", [timewords, tags, commands], ids=lambda m: m.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    import doctest

    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0
