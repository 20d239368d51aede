"""The sending window: business days and quiet hours, in the configured zone, DST-correct."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhelper.decide.timewords import parse_when
from mailhelper.decide.window import in_window, next_sending_time
from mailhelper.model.settings import QuietHours, SendingSettings

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
DEFAULT = SendingSettings()  # business days, quiet 20:00-08:00
NIGHTS = QuietHours(time(20), time(8))


def london(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
           second: int = 0, *, fold: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=LONDON, fold=fold)


def new_york(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
             second: int = 0, *, fold: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=NEW_YORK, fold=fold)


def sending(business_days: bool = False, quiet: str | None = None) -> SendingSettings:
    quiet_hours = None
    if quiet:
        start, end = (time.fromisoformat(part) for part in quiet.split("-"))
        quiet_hours = QuietHours(start, end)
    return SendingSettings(business_days=business_days, quiet_hours=quiet_hours)


def same_instant(a: datetime, b: datetime) -> bool:
    # Same-zone datetimes compare by wall time; the autumn tests need the real instant.
    return a.astimezone(UTC) == b.astimezone(UTC)


class TestDefaults:
    """Mon 30 Nov to Sun 6 Dec 2026, London in winter."""

    @pytest.mark.parametrize(
        ("due", "expected"),
        [
            (london(2026, 12, 1, 10, 0), london(2026, 12, 1, 10, 0)),  # Tuesday morning
            (london(2026, 12, 1, 19, 59), london(2026, 12, 1, 19, 59)),
            (london(2026, 12, 1, 20, 0), london(2026, 12, 2, 8, 0)),  # the start is quiet
            (london(2026, 12, 1, 23, 30), london(2026, 12, 2, 8, 0)),  # across midnight
            (london(2026, 12, 2, 3, 0), london(2026, 12, 2, 8, 0)),  # after midnight
            (london(2026, 12, 2, 7, 59), london(2026, 12, 2, 8, 0)),
            (london(2026, 12, 2, 8, 0), london(2026, 12, 2, 8, 0)),  # the end is not quiet
            (london(2026, 12, 4, 21, 30), london(2026, 12, 7, 8, 0)),  # Friday night: Monday
            (london(2026, 12, 5, 12, 0), london(2026, 12, 7, 8, 0)),  # Saturday
            (london(2026, 12, 6, 23, 59), london(2026, 12, 7, 8, 0)),  # Sunday night
            (london(2026, 12, 7, 0, 30), london(2026, 12, 7, 8, 0)),  # Monday small hours
        ],
    )
    def test_business_days_and_quiet_nights(self, due: datetime, expected: datetime) -> None:
        result = next_sending_time(due, DEFAULT, LONDON)
        assert result == expected
        assert in_window(result, DEFAULT, LONDON)

    def test_seconds_are_kept_when_nothing_moves(self) -> None:
        due = london(2026, 12, 1, 10, 0, 42)
        assert next_sending_time(due, DEFAULT, LONDON) == due

    def test_the_result_is_in_the_zone(self) -> None:
        result = next_sending_time(datetime(2026, 12, 1, 10, tzinfo=UTC), DEFAULT, NEW_YORK)
        assert result.tzinfo is NEW_YORK
        assert result == new_york(2026, 12, 1, 8, 0)  # 05:00 in New York is quiet


class TestRulesAlone:
    def test_business_days_without_quiet_hours_go_monday_at_nine(self) -> None:
        rule = sending(business_days=True)
        assert next_sending_time(london(2026, 12, 5, 15, 0), rule, LONDON) == london(
            2026, 12, 7, 9, 0)
        # A weekday keeps its time, small hours included: no quiet hours were asked for.
        assert next_sending_time(london(2026, 12, 7, 3, 0), rule, LONDON) == london(
            2026, 12, 7, 3, 0)

    def test_quiet_hours_alone_allow_weekends(self) -> None:
        rule = sending(quiet="20:00-08:00")
        assert next_sending_time(london(2026, 12, 5, 21, 0), rule, LONDON) == london(
            2026, 12, 6, 8, 0)

    def test_quiet_hours_within_a_day(self) -> None:
        rule = sending(quiet="12:00-13:30")
        assert next_sending_time(london(2026, 12, 1, 12, 0), rule, LONDON) == london(
            2026, 12, 1, 13, 30)
        assert next_sending_time(london(2026, 12, 1, 13, 30), rule, LONDON) == london(
            2026, 12, 1, 13, 30)
        assert next_sending_time(london(2026, 12, 1, 11, 59), rule, LONDON) == london(
            2026, 12, 1, 11, 59)

    def test_quiet_hours_from_midnight_give_the_monday_morning(self) -> None:
        rule = sending(business_days=True, quiet="00:00-07:00")
        assert next_sending_time(london(2026, 12, 5, 15, 0), rule, LONDON) == london(
            2026, 12, 7, 7, 0)

    def test_a_monday_morning_inside_daytime_quiet_hours_moves_on(self) -> None:
        rule = sending(business_days=True, quiet="08:30-10:00")
        assert next_sending_time(london(2026, 12, 5, 15, 0), rule, LONDON) == london(
            2026, 12, 7, 10, 0)

    def test_quiet_hours_ending_friday_night_after_midnight_reach_monday(self) -> None:
        rule = sending(business_days=True, quiet="22:00-06:00")
        assert next_sending_time(london(2026, 12, 4, 23, 0), rule, LONDON) == london(
            2026, 12, 7, 6, 0)

    def test_no_rules_no_change(self) -> None:
        due = london(2026, 12, 5, 3, 0)
        assert next_sending_time(due, sending(), LONDON) == due

    def test_a_window_that_starts_where_it_ends_is_no_window(self) -> None:
        rule = SendingSettings(business_days=False, quiet_hours=QuietHours(time(8), time(8)))
        due = london(2026, 12, 1, 8, 0)
        assert next_sending_time(due, rule, LONDON) == due
        assert in_window(due, rule, LONDON)

    def test_a_naive_time_is_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            next_sending_time(datetime(2026, 12, 1, 9), DEFAULT, LONDON)


class TestDaylightSaving:
    """London changes on 29 Mar and 25 Oct 2026, New York on 8 Mar and 1 Nov 2026."""

    def test_a_reminder_due_in_the_london_gap(self) -> None:
        # "sunday 1:30am" does not exist on 29 March: 02:30 BST; Sunday: Monday 08:00 BST.
        due = parse_when("sunday 1:30am", london(2026, 3, 27, 12, 0), LONDON)
        assert due is not None and due.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
        result = next_sending_time(due, DEFAULT, LONDON)
        assert result == london(2026, 3, 30, 8, 0)
        assert result.utcoffset() == timedelta(hours=1)

    def test_a_quiet_window_ending_in_the_london_gap(self) -> None:
        rule = sending(quiet="00:30-01:30")
        result = next_sending_time(london(2026, 3, 29, 0, 45), rule, LONDON)
        assert result.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 02:30 BST
        assert (result.hour, result.minute) == (2, 30)

    def test_a_quiet_window_ending_in_the_new_york_gap(self) -> None:
        rule = sending(quiet="20:00-02:30")
        result = next_sending_time(new_york(2026, 3, 8, 1, 30), rule, NEW_YORK)
        assert result.astimezone(UTC) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)  # 03:30 EDT
        assert in_window(result, rule, NEW_YORK)

    def test_quiet_nights_keep_their_wall_clock_ends_across_both_changes(self) -> None:
        spring = next_sending_time(london(2026, 3, 28, 23, 0), sending(quiet="20:00-08:00"),
                                   LONDON)
        assert spring == london(2026, 3, 29, 8, 0)
        assert spring.astimezone(UTC).hour == 7
        autumn = next_sending_time(new_york(2026, 10, 31, 23, 0), sending(quiet="20:00-08:00"),
                                   NEW_YORK)
        assert autumn == new_york(2026, 11, 1, 8, 0)
        assert autumn.astimezone(UTC).hour == 13

    def test_a_reminder_due_in_the_london_overlap_first_time_round(self) -> None:
        rule = sending(quiet="20:00-01:30")
        due = london(2026, 10, 25, 1, 15)  # BST, the first 01:15
        result = next_sending_time(due, rule, LONDON)
        assert same_instant(result, london(2026, 10, 25, 1, 30))  # BST
        assert result.utcoffset() == timedelta(hours=1)

    def test_a_reminder_due_in_the_london_overlap_second_time_round(self) -> None:
        rule = sending(quiet="20:00-01:30")
        due = london(2026, 10, 25, 1, 15, fold=1)  # GMT, the second 01:15
        assert not in_window(due, rule, LONDON)  # wall clock 01:15: quiet again
        result = next_sending_time(due, rule, LONDON)
        assert result.astimezone(UTC) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # not back
        assert result.utcoffset() == timedelta(0)

    def test_a_reminder_due_in_the_new_york_overlap(self) -> None:
        rule = sending(quiet="20:00-01:30")
        first = next_sending_time(new_york(2026, 11, 1, 1, 10), rule, NEW_YORK)
        assert first.astimezone(UTC) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # EDT
        second = next_sending_time(new_york(2026, 11, 1, 1, 10, fold=1), rule, NEW_YORK)
        assert second.astimezone(UTC) == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # EST


# Property: for any due time, settings and zone, the result is not before the due time, is in
# the window, is a fixed point, and is never far off.
_ZONES = st.sampled_from([
    LONDON, NEW_YORK, ZoneInfo("Australia/Lord_Howe"), ZoneInfo("Asia/Kolkata"), ZoneInfo("UTC"),
])
_TIMES = st.builds(time, st.integers(0, 23), st.sampled_from([0, 1, 15, 30, 45, 59]))
_QUIET = st.one_of(st.none(), st.builds(QuietHours, _TIMES, _TIMES))
_SENDING = st.builds(SendingSettings, business_days=st.booleans(), quiet_hours=_QUIET)
_INSTANTS = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31),
                         timezones=st.just(UTC))


@settings(max_examples=1000, deadline=None)
@given(_INSTANTS, _SENDING, _ZONES)
def test_next_sending_time_is_a_later_moment_in_the_window_and_a_fixed_point(
    due: datetime, rule: SendingSettings, zone: ZoneInfo
) -> None:
    result = next_sending_time(due, rule, zone)
    assert result.astimezone(UTC) >= due
    assert in_window(result, rule, zone)
    assert same_instant(next_sending_time(result, rule, zone), result)
    assert result.astimezone(UTC) - due <= timedelta(days=4)
    if in_window(due, rule, zone):
        assert same_instant(result, due)
