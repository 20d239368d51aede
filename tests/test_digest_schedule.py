"""The digest's RRULE, expanded in local wall time: BYHOUR=8 is 08:00 summer and winter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailhelper.decide.digest_schedule import next_digest, validate_rrule

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
MONDAYS_8 = "FREQ=WEEKLY;BYDAY=MO;BYHOUR=8"
ANCHOR = datetime(2026, 3, 1, 10, 0, tzinfo=LONDON)  # a Sunday


def london(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
           second: int = 0, *, fold: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=LONDON, fold=fold)


def series(rule: str, after: datetime, zone: ZoneInfo, count: int,
           anchor: datetime = ANCHOR) -> list[datetime]:
    found = []
    for _ in range(count):
        nxt = next_digest(rule, after, zone, anchor)
        assert nxt is not None
        found.append(nxt)
        after = nxt
    return found


def test_weekly_monday_eight_stays_eight_across_the_london_spring_change() -> None:
    digests = series(MONDAYS_8, london(2026, 3, 20, 12, 0), LONDON, 3)
    assert digests == [london(2026, 3, 23, 8), london(2026, 3, 30, 8), london(2026, 4, 6, 8)]
    assert [d.astimezone(UTC).hour for d in digests] == [8, 7, 7]


def test_and_across_the_london_autumn_change() -> None:
    digests = series(MONDAYS_8, london(2026, 10, 20, 12, 0), LONDON, 2)
    assert digests == [london(2026, 10, 26, 8), london(2026, 11, 2, 8)]
    assert [d.utcoffset() for d in digests] == [timedelta(0), timedelta(0)]
    before = next_digest(MONDAYS_8, london(2026, 10, 15, 12, 0), LONDON, ANCHOR)
    assert before == london(2026, 10, 19, 8) and before.utcoffset() == timedelta(hours=1)


def test_and_across_both_new_york_changes() -> None:
    anchor = datetime(2026, 1, 1, tzinfo=NEW_YORK)
    spring = series(MONDAYS_8, datetime(2026, 3, 1, tzinfo=NEW_YORK), NEW_YORK, 2, anchor)
    assert [d.astimezone(UTC).hour for d in spring] == [13, 12]  # 08:00 EST, then EDT
    autumn = series(MONDAYS_8, datetime(2026, 10, 25, tzinfo=NEW_YORK), NEW_YORK, 2, anchor)
    assert [d.astimezone(UTC).hour for d in autumn] == [12, 13]  # 08:00 EDT, then EST
    assert all((d.hour, d.minute) == (8, 0) for d in spring + autumn)


def test_strictly_after() -> None:
    assert next_digest(MONDAYS_8, london(2026, 3, 23, 8), LONDON, ANCHOR) == london(2026, 3, 30, 8)
    assert next_digest(MONDAYS_8, london(2026, 3, 23, 7, 59), LONDON, ANCHOR) == london(
        2026, 3, 23, 8)


def test_the_anchor_day_itself_counts() -> None:
    monday_early = london(2026, 3, 2, 7, 0)
    assert next_digest(MONDAYS_8, monday_early, LONDON, monday_early) == london(2026, 3, 2, 8)


def test_the_result_is_in_the_zone_whatever_the_zone_of_after() -> None:
    result = next_digest(MONDAYS_8, datetime(2026, 3, 20, tzinfo=UTC), NEW_YORK, ANCHOR)
    assert result is not None and result.tzinfo is NEW_YORK
    assert result == datetime(2026, 3, 23, 8, tzinfo=NEW_YORK)


class TestRulesThatLeaveThingsOut:
    def test_no_byhour_means_eight_not_the_hour_the_assistant_started(self) -> None:
        assert next_digest("FREQ=DAILY", ANCHOR, LONDON, ANCHOR) == london(2026, 3, 2, 8)

    def test_no_byminute_means_on_the_hour(self) -> None:
        started = london(2026, 3, 1, 10, 37, 12)
        assert next_digest("FREQ=DAILY;BYHOUR=9", started, LONDON, started) == london(
            2026, 3, 2, 9, 0)

    def test_byminute_is_kept(self) -> None:
        assert next_digest("FREQ=DAILY;BYHOUR=8;BYMINUTE=30", ANCHOR, LONDON, ANCHOR) == london(
            2026, 3, 2, 8, 30)

    def test_a_weekly_rule_without_byday_falls_on_the_anchors_weekday(self) -> None:
        assert next_digest("FREQ=WEEKLY", ANCHOR, LONDON, ANCHOR) == london(2026, 3, 8, 8)

    def test_an_interval_keeps_its_phase_from_the_anchor(self) -> None:
        rule = "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;BYHOUR=8"
        # The anchor's week (Mon 23 Feb to Sun 1 Mar, RFC 5545 weeks start on Monday) has its
        # Monday before the anchor, so the first is in the week after next.
        assert next_digest(rule, ANCHOR, LONDON, ANCHOR) == london(2026, 3, 9, 8)
        # Asked again later (after a restart), the fortnights line up the same way.
        assert next_digest(rule, london(2026, 3, 10, 12), LONDON, ANCHOR) == london(2026, 3, 23, 8)

    def test_an_hourly_rule_counts_from_midnight(self) -> None:
        rule = "FREQ=HOURLY;INTERVAL=6"
        assert next_digest(rule, ANCHOR, LONDON, ANCHOR) == london(2026, 3, 1, 12)

    def test_a_monthly_rule(self) -> None:
        rule = "FREQ=MONTHLY;BYMONTHDAY=1;BYHOUR=8"
        assert next_digest(rule, ANCHOR, LONDON, ANCHOR) == london(2026, 4, 1, 8)


class TestGapAndOverlap:
    def test_an_hour_in_the_spring_gap_moves_on_by_the_gap(self) -> None:
        rule = "FREQ=DAILY;BYHOUR=1;BYMINUTE=30"
        result = next_digest(rule, london(2026, 3, 28, 12), LONDON, ANCHOR)
        assert result is not None
        assert result.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 02:30 BST

    def test_an_hour_in_the_autumn_overlap_happens_once(self) -> None:
        rule = "FREQ=DAILY;BYHOUR=1;BYMINUTE=30"
        first = next_digest(rule, london(2026, 10, 24, 12), LONDON, ANCHOR)
        assert first is not None
        assert first.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # BST
        again = next_digest(rule, first, LONDON, ANCHOR)
        assert again == london(2026, 10, 26, 1, 30)  # not the second 01:30 of the 25th


class TestEnds:
    def test_count_used_up(self) -> None:
        assert next_digest("FREQ=DAILY;COUNT=3", london(2026, 3, 10), LONDON, ANCHOR) is None
        assert next_digest("FREQ=DAILY;COUNT=3", ANCHOR, LONDON, ANCHOR) == london(2026, 3, 2, 8)

    def test_until_in_utc_as_rfc_5545_writes_it(self) -> None:
        rule = "FREQ=DAILY;BYHOUR=8;UNTIL=20260305T080000Z"
        assert next_digest(rule, london(2026, 3, 4, 12), LONDON, ANCHOR) == london(2026, 3, 5, 8)
        assert next_digest(rule, london(2026, 3, 5, 12), LONDON, ANCHOR) is None

    def test_a_dtstart_in_the_text_gives_way_to_the_anchor(self) -> None:
        rule = "DTSTART:20200101T100000\nRRULE:FREQ=DAILY;BYHOUR=7"
        assert next_digest(rule, ANCHOR, LONDON, ANCHOR) == london(2026, 3, 2, 7)


@pytest.mark.parametrize("rule", [
    "FREQ=FORTNIGHTLY", "BYDAY=MO", "FREQ=WEEKLY;BYDAY=XX", "FREQ=WEEKLY;BYHOUR=25", "nonsense",
    "FREQ=WEEKLY\nFREQ=DAILY",
])
def test_an_invalid_rule_raises_value_error(rule: str) -> None:
    with pytest.raises(ValueError):
        validate_rrule(rule)
    with pytest.raises(ValueError):
        next_digest(rule, ANCHOR, LONDON, ANCHOR)


def test_valid_rules_validate() -> None:
    for rule in (MONDAYS_8, "RRULE:FREQ=DAILY", "FREQ=DAILY;UNTIL=20261231T000000Z"):
        validate_rrule(rule)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_digest(MONDAYS_8, datetime(2026, 3, 1), LONDON, ANCHOR)


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(2026, 3, 2), max_value=datetime(2030, 12, 31),
                    timezones=st.just(UTC)),
       st.sampled_from([LONDON, NEW_YORK, ZoneInfo("Australia/Lord_Howe")]))
def test_the_next_digest_is_the_next_monday_at_eight_local(after: datetime,
                                                          zone: ZoneInfo) -> None:
    result = next_digest(MONDAYS_8, after, zone, ANCHOR)
    assert result is not None
    assert result.astimezone(UTC) > after
    assert result.astimezone(UTC) - after <= timedelta(days=7)
    assert (result.weekday(), result.hour, result.minute) == (0, 8, 0)
