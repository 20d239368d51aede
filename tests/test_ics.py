"""The iCalendar writer (mailhelper.compose.ics) on a fixed clock, read back by a small RFC 5545
parser: lines, folding, escaping, UIDs."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from mailhelper.compose.ics import LINE_OCTETS, Entry, calendar, escape_text, fold_line, uid

STAMP = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
ASSISTANT = "helper@example.com"


def unfold(text: str) -> list[str]:
    """RFC 5545 section 3.1: every CRLF followed by one space or tab is removed."""
    assert text.endswith("\r\n")
    return re.sub(r"\r\n[ \t]", "", text).split("\r\n")[:-1]


def unescape(value: str) -> str:
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m[1] in "nN" else m[1], value)


def events(text: str) -> list[dict[str, str]]:
    """Each VEVENT's properties, values unescaped (no parameters are written)."""
    found: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    depth = 0
    for line in unfold(text):
        name, _, value = line.partition(":")
        assert re.fullmatch(r"[A-Z-]+", name), line
        if name == "BEGIN":
            depth += 1
            if value == "VEVENT":
                current = {}
        elif name == "END":
            depth -= 1
            if value == "VEVENT":
                assert current is not None
                found.append(current)
                current = None
        elif current is not None:
            assert name not in current, f"{name} twice"
            current[name] = unescape(value)
    assert depth == 0
    return found


def entry(**changes: object) -> Entry:
    values: dict[str, object] = {
        "key": "t1/follow_up/20261207T090000Z/1",
        "start": datetime(2026, 12, 10, 9, tzinfo=ZoneInfo("Europe/Berlin")),
        "summary": "Reminder: Intro to Acme (Jane Doe)",
        "description": "The assistant mails you a reminder.",
        **changes,
    }
    return Entry(**values)  # type: ignore[arg-type]


def test_a_calendar_reads_back_with_every_required_property() -> None:
    text = calendar([entry()], STAMP, ASSISTANT)
    assert text.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:")
    assert "\n" not in text.replace("\r\n", "")  # CRLF only
    [event] = events(text)
    assert event["DTSTART"] == "20261210T080000Z"  # 09:00 Berlin, in UTC
    assert event["DTSTAMP"] == "20261207T093000Z"
    assert event["UID"] == uid("t1/follow_up/20261207T090000Z/1", ASSISTANT)
    assert event["UID"].endswith("@mailhelper")
    assert event["SUMMARY"] == "Reminder: Intro to Acme (Jane Doe)"
    assert event["DESCRIPTION"] == "The assistant mails you a reminder."


def test_uids_are_stable_across_runs_and_apart_across_assistants() -> None:
    first = events(calendar([entry()], STAMP, ASSISTANT))[0]["UID"]
    again = events(calendar([entry(summary="changed")], datetime(2027, 1, 1, tzinfo=UTC),
                            ASSISTANT))[0]["UID"]
    other = events(calendar([entry()], STAMP, "helper@example.org"))[0]["UID"]
    assert first == again != other


@pytest.mark.parametrize("text", [
    "Lunch; then drinks, maybe\\ or not",
    "Two lines\nand a third\r\nand CR\r",
    "Émile Zoë — «Umzug» über Köln 😀, ok; fine",
])
def test_text_round_trips_through_escaping(text: str) -> None:
    written = calendar([entry(summary=text, description=text)], STAMP, ASSISTANT)
    [event] = events(written)
    expected = text.replace("\r\n", "\n").replace("\r", "\n")
    assert event["SUMMARY"] == expected and event["DESCRIPTION"] == expected


def test_long_lines_fold_at_75_octets_never_inside_a_character() -> None:
    summary = "Reminder: " + "Größenänderung 😀 " * 30
    written = calendar([entry(summary=summary)], STAMP, ASSISTANT)
    raw = written.encode("utf-8")
    for line in raw.split(b"\r\n"):
        assert len(line) <= LINE_OCTETS
        line.decode("utf-8")  # every physical line is whole UTF-8
    assert events(written)[0]["SUMMARY"] == summary
    assert fold_line("x" * 75) == "x" * 75
    assert fold_line("x" * 76) == "x" * 75 + "\r\n x"


def test_nothing_in_it_is_a_link() -> None:
    written = calendar([entry(summary="See https://evil.example/x?a=1 and www.x.org",
                              description="mailto:a@b.c or http://x")], STAMP, ASSISTANT)
    [event] = events(written)
    for value in (event["SUMMARY"], event["DESCRIPTION"]):
        assert "http" not in value and "www." not in value and "mailto" not in value
        assert "[link removed]" in value


def test_events_come_in_time_order_and_an_empty_calendar_is_valid() -> None:
    late = entry(key="b", start=datetime(2026, 12, 20, tzinfo=UTC))
    early = entry(key="a", start=datetime(2026, 12, 9, tzinfo=UTC))
    assert [e["DTSTART"] for e in events(calendar([late, early], STAMP, ASSISTANT))] == [
        "20261209T000000Z", "20261220T000000Z"]
    assert events(calendar([], STAMP, ASSISTANT)) == []


def test_escape_text_drops_control_characters() -> None:
    assert escape_text("a\x00b\x1bc\x7f") == "abc"
