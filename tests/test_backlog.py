"""The old-mail rule and a backfill's dates, as pure arithmetic (mailhelper.decide.backlog)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from mailhelper.decide.backlog import is_old, left_alone_line, own_date
from mailhelper.model.values import GRACE, FirstStart
from mailhelper.read.parse import written_at

START = FirstStart(datetime(2026, 12, 7, 9, 0, tzinfo=UTC), uidvalidity=7, boundary=501)
JAN = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def test_old_means_both_dates_before_the_first_start_less_the_grace() -> None:
    just_old = START.cutoff - timedelta(seconds=1)
    assert START.cutoff == START.at - GRACE
    assert is_old(JAN, JAN, START.cutoff)
    assert is_old(just_old, just_old, START.cutoff)
    assert not is_old(START.cutoff, JAN, START.cutoff), "arrived within the grace"
    assert not is_old(JAN, START.at, START.cutoff), "written within the grace (e.g. --now)"
    assert is_old(None, JAN, START.cutoff), "no arrival known: the Date decides"
    assert not is_old(JAN, None, START.cutoff), "no Date header: read, never set aside"


def test_only_uids_below_the_recorded_uidnext_may_have_been_there() -> None:
    assert START.was_there(500, 7) and not START.was_there(501, 7)
    assert START.was_there(10_000, 8), "after a UIDVALIDITY change any UID may be old mail"
    assert FirstStart.from_json(START.to_json()) == START


def test_a_backfill_dates_mail_by_its_date_header_clamped_to_its_arrival() -> None:
    now = START.at
    assert own_date(JAN + timedelta(minutes=1), JAN, now) == JAN
    assert own_date(JAN, JAN + timedelta(days=60), now) == JAN, "a writer's clock ahead"
    assert own_date(None, JAN, now) == JAN
    assert own_date(JAN, None, now) == JAN
    assert own_date(None, None, now) == now
    assert own_date(None, now + timedelta(days=1), now) == now, "never after now"
    paris = JAN.astimezone(timezone(timedelta(hours=1)))
    assert own_date(None, paris, now) == JAN and own_date(None, paris, now).tzinfo is UTC


def test_the_date_header_is_read_leniently() -> None:
    assert written_at(b"Subject: x\r\nDate: Mon, 05 Jan 2026 10:00:00 +0000\r\n\r\n") == JAN
    assert written_at(b"DATE:\r\n Mon, 05 Jan 2026 11:00:00 +0100\r\n\r\n") == JAN
    assert written_at(b"Date: Mon, 05 Jan 2026 10:00:00\r\n") == JAN, "no zone: UTC"
    assert written_at(b"Date: next week\r\n") is None
    assert written_at(b"Subject: no date\r\n") is None
    assert written_at(None) is None


def test_the_left_alone_line_says_how_many_from_when_and_how_to_read_them() -> None:
    line = left_alone_line("INBOX", 480, JAN, datetime(2026, 10, 30, tzinfo=UTC))
    assert line.startswith("INBOX: 480 message(s) already here from 2026-01-05 to 2026-10-30 "
                           "left alone")
    assert "mailhelper poll --once --backfill DAYS" in line
