"""Time phrases in tags and commands, with the clock passed in: what each phrase names."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhelper.decide.timewords import describe, parse_when, read_when

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
# Monday 30 November 2026, 14:37:21 in London (GMT, so local equals UTC).
NOW = datetime(2026, 11, 30, 14, 37, 21, tzinfo=LONDON)


def at(text: str, now: datetime = NOW, zone: ZoneInfo = LONDON) -> datetime | None:
    return parse_when(text, now, zone)


def london(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
           second: int = 0, *, fold: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=LONDON, fold=fold)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5d", london(2026, 12, 5, 14, 37)),
        ("5 days", london(2026, 12, 5, 14, 37)),
        ("in 5 days", london(2026, 12, 5, 14, 37)),
        ("In 5 Days.", london(2026, 12, 5, 14, 37)),
        ("5 days from now", london(2026, 12, 5, 14, 37)),
        ("2w", london(2026, 12, 14, 14, 37)),
        ("in a week", london(2026, 12, 7, 14, 37)),
        ("90m", london(2026, 11, 30, 16, 7)),
        ("an hour", london(2026, 11, 30, 15, 37)),
        ("2h", london(2026, 11, 30, 16, 37)),
        ("3 business days", london(2026, 12, 3, 14, 37)),
        ("in 3 days at 9am", london(2026, 12, 3, 9, 0)),
    ],
)
def test_durations_count_from_now_to_the_minute(text: str, expected: datetime) -> None:
    assert at(text) == expected


def test_business_days_skip_the_weekend() -> None:
    friday = london(2026, 12, 4, 10, 0)
    assert at("3 business days", friday) == london(2026, 12, 9, 10, 0)  # Wednesday
    assert at("1 business day", friday) == london(2026, 12, 7, 10, 0)  # Monday
    assert at("5 working days", friday) == london(2026, 12, 11, 10, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tomorrow", london(2026, 12, 1, 9, 0)),
        ("Tomorrow 2pm", london(2026, 12, 1, 14, 0)),
        ("tomorrow at 2 p.m.", london(2026, 12, 1, 14, 0)),
        ("tomorrow 14:30", london(2026, 12, 1, 14, 30)),
        ("tomorrow morning", london(2026, 12, 1, 9, 0)),
        ("tomorrow noon", london(2026, 12, 1, 12, 0)),
        ("3pm", london(2026, 11, 30, 15, 0)),  # still ahead today
        ("2pm", london(2026, 12, 1, 14, 0)),  # gone today: tomorrow
        ("today 5pm", london(2026, 11, 30, 17, 0)),
        ("12am", london(2026, 12, 1, 0, 0)),
    ],
)
def test_tomorrow_and_times_of_day(text: str, expected: datetime) -> None:
    assert at(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("monday", london(2026, 12, 7, 9, 0)),  # said on a Monday: a week later
        ("mon", london(2026, 12, 7, 9, 0)),
        ("next monday", london(2026, 12, 7, 9, 0)),
        ("on Monday", london(2026, 12, 7, 9, 0)),
        ("monday 9am", london(2026, 12, 7, 9, 0)),
        ("Monday, 9 a.m.", london(2026, 12, 7, 9, 0)),
        ("monday 14:30", london(2026, 12, 7, 14, 30)),
        ("9am monday", london(2026, 12, 7, 9, 0)),
        ("at 9am on monday", london(2026, 12, 7, 9, 0)),
        ("tuesday", london(2026, 12, 1, 9, 0)),
        ("thu", london(2026, 12, 3, 9, 0)),
        ("thurs 4pm", london(2026, 12, 3, 16, 0)),
        ("until friday", london(2026, 12, 4, 9, 0)),
        ("sunday", london(2026, 12, 6, 9, 0)),
        ("next week", london(2026, 12, 7, 9, 0)),
        ("next week 10am", london(2026, 12, 7, 10, 0)),
        ("next month", london(2026, 12, 1, 9, 0)),
    ],
)
def test_weekdays_are_the_next_such_day_after_today(text: str, expected: datetime) -> None:
    assert at(text) == expected


def test_next_week_from_a_sunday_is_tomorrow_and_from_a_monday_a_week_on() -> None:
    assert at("next week", london(2026, 12, 6, 20, 0)) == london(2026, 12, 7, 9, 0)
    assert at("next week", london(2026, 12, 7, 8, 0)) == london(2026, 12, 14, 9, 0)


def test_next_month_in_december_is_january() -> None:
    assert at("next month", london(2026, 12, 15, 12, 0)) == london(2027, 1, 1, 9, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01", london(2026, 12, 1, 9, 0)),
        ("2026-12-01T15:00", london(2026, 12, 1, 15, 0)),
        ("2026-12-01 15:00", london(2026, 12, 1, 15, 0)),
        ("2026-12-01 3pm", london(2026, 12, 1, 15, 0)),
        ("2026-12-01T15:00Z", london(2026, 12, 1, 15, 0)),
        ("2027-06-01T15:00+02:00", london(2027, 6, 1, 14, 0)),  # converted into the zone
    ],
)
def test_iso_dates(text: str, expected: datetime) -> None:
    result = at(text)
    assert result == expected
    assert result is not None and result.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dec 3", london(2026, 12, 3, 9, 0)),
        ("Dec. 3", london(2026, 12, 3, 9, 0)),
        ("3 december", london(2026, 12, 3, 9, 0)),
        ("December 3rd", london(2026, 12, 3, 9, 0)),
        ("the 3rd of December", london(2026, 12, 3, 9, 0)),
        ("3rd dec 2pm", london(2026, 12, 3, 14, 0)),
        ("december 3rd, 2027", london(2027, 12, 3, 9, 0)),
        ("jan 5", london(2027, 1, 5, 9, 0)),  # next occurrence
        ("nov 30", london(2027, 11, 30, 9, 0)),  # today's 09:00 has gone
        ("nov 30 4pm", london(2026, 11, 30, 16, 0)),  # but today's 16:00 has not
        ("feb 29", london(2028, 2, 29, 9, 0)),  # the next leap day
    ],
)
def test_days_of_a_month(text: str, expected: datetime) -> None:
    assert at(text) == expected


def test_default_hour_applies_when_no_time_is_given() -> None:
    eight = time(8)
    assert parse_when("monday", NOW, LONDON, default_time=eight) == london(2026, 12, 7, 8, 0)
    assert parse_when("monday 3pm", NOW, LONDON, default_time=eight) == london(2026, 12, 7, 15, 0)


@pytest.mark.parametrize("text", ["2026-06-01T15:00+02:00", "2026-01-05", "today 9am"])
def test_a_moment_already_past_is_refused_with_the_reason(text: str) -> None:
    reading = read_when(text, NOW, LONDON)
    assert reading.moment is None
    assert reading.problem is not None and reading.problem.endswith("has already passed")


@pytest.mark.parametrize(
    "text",
    [
        "", "   ", "hello", "Hi Jane, could you introduce me to Acme?", "5", "3/12", "12/3/2026",
        "feb 30", "2026-13-01", "2026-02-30", "25:00", "monday 25:00", "13pm", "0am", "today",
        "midnight", "in 5 dyas", "5000 days", "999999 weeks",
        "999999 business days", "3 business hours", "someday", "monday tuesday",
        "tomorrow monday", "x" * 500,
    ],
)
def test_anything_else_is_not_a_time(text: str) -> None:
    assert at(text) is None


def test_a_naive_clock_names_nothing_rather_than_guessing_a_zone() -> None:
    assert parse_when("5d", datetime(2026, 11, 30, 9), LONDON) is None


def test_results_are_in_the_zone_even_when_now_is_not() -> None:
    now_utc = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    result = parse_when("tomorrow 9am", now_utc, NEW_YORK)
    assert result == datetime(2026, 7, 2, 9, 0, tzinfo=NEW_YORK)
    assert result is not None and result.tzinfo is NEW_YORK


class TestDaylightSaving:
    """London changes on 29 Mar and 25 Oct 2026, New York on 8 Mar and 1 Nov 2026."""

    def test_a_day_is_calendar_time_across_the_spring_change(self) -> None:
        saturday = london(2026, 3, 28, 9, 0)
        assert at("1 day", saturday) == london(2026, 3, 29, 9, 0)  # 23 hours later
        assert at("24 hours", saturday) == london(2026, 3, 29, 10, 0)

    def test_a_time_in_the_london_gap_moves_on_by_the_gap(self) -> None:
        result = at("tomorrow 1:30am", london(2026, 3, 28, 12, 0))
        assert result is not None
        assert (result.hour, result.minute, result.utcoffset()) == (2, 30, timedelta(hours=1))

    def test_a_time_in_the_london_overlap_is_the_first_one(self) -> None:
        result = at("sunday 1:30am", london(2026, 10, 22, 12, 0))
        assert result is not None
        assert result.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # BST

    def test_a_time_in_the_new_york_gap(self) -> None:
        result = at("sunday 2:30am", datetime(2026, 3, 5, 12, 0, tzinfo=NEW_YORK), NEW_YORK)
        assert result is not None
        assert result.astimezone(UTC) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)  # 03:30 EDT

    def test_a_time_in_the_new_york_overlap(self) -> None:
        result = at("2026-11-01 1:30am", datetime(2026, 10, 30, 9, tzinfo=NEW_YORK), NEW_YORK)
        assert result is not None
        assert result.astimezone(UTC) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # EDT

    def test_a_week_keeps_the_wall_time_across_the_autumn_change(self) -> None:
        before = datetime(2026, 10, 28, 9, 0, tzinfo=NEW_YORK)  # EDT
        assert at("1w", before, NEW_YORK) == datetime(2026, 11, 4, 9, 0, tzinfo=NEW_YORK)


class TestDescribe:
    def test_the_receipts_form(self) -> None:
        assert describe(london(2026, 12, 3, 9, 0), LONDON) == "Thu 3 Dec, 09:00"

    def test_it_speaks_in_the_zone(self) -> None:
        moment = datetime(2026, 12, 3, 14, 5, tzinfo=UTC)
        assert describe(moment, NEW_YORK) == "Thu 3 Dec, 09:05"

    def test_the_year_shows_only_when_it_differs_from_now(self) -> None:
        assert describe(london(2026, 12, 3, 9, 0), LONDON, now=NOW) == "Thu 3 Dec, 09:00"
        assert describe(london(2027, 1, 5, 9, 0), LONDON, now=NOW) == "Tue 5 Jan 2027, 09:00"


# Text built from the words the parser knows, so that the property reaches deep branches.
_WORDS = st.sampled_from([
    "in", "on", "at", "next", "this", "the", "of", "and", "a", "an", "monday", "fri", "sunday",
    "tomorrow", "today", "week", "month", "dec", "december", "feb", "3rd", "29", "31", "2026",
    "9am", "12pm", "13pm", "14:30", "25:61", "9.30am", "noon", "3", "5d", "2w", "90m", "0d",
    "999999", "business", "days", "hours", "from", "now", "2026-12-01", "2026-12-01T15:00",
    "2026-02-30", ",", ".", "@", "+", "-", ":", "\u00a0", "\ufeff",
])
_CLOCKS = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 12, 31))
_ZONES = st.sampled_from([LONDON, NEW_YORK, ZoneInfo("Australia/Lord_Howe"), ZoneInfo("UTC")])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120), st.datetimes(), _ZONES)
def test_parse_when_never_raises_on_arbitrary_text(text: str, naive: datetime,
                                                   zone: ZoneInfo) -> None:
    # Any clock at all, year 1 to 9999: the edges of the calendar must not raise either.
    result = parse_when(text, naive.replace(tzinfo=zone), zone)
    assert result is None or result.tzinfo is not None


@settings(max_examples=500, deadline=None)
@given(st.lists(_WORDS, max_size=6).map(" ".join), _CLOCKS, _ZONES)
def test_parse_when_never_raises_on_near_misses(text: str, naive: datetime,
                                                zone: ZoneInfo) -> None:
    now = naive.replace(tzinfo=zone)
    result = parse_when(text, now, zone)
    if result is not None:
        assert result.tzinfo is not None
        assert result.astimezone(UTC) - now.astimezone(UTC) <= timedelta(days=3660)
