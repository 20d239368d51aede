"""Time phrases as owners write them in tags and commands: ``5d``, ``monday 9am``, ``dec 3``.

    >>> from zoneinfo import ZoneInfo
    >>> london = ZoneInfo("Europe/London")
    >>> now = datetime(2026, 11, 30, 14, 37, tzinfo=london)  # a Monday afternoon
    >>> describe(parse_when("thursday", now, london), london)
    'Thu 3 Dec, 09:00'
    >>> describe(parse_when("in 3 days", now, london), london)
    'Thu 3 Dec, 14:37'
    >>> parse_when("could you introduce me", now, london) is None
    True

The clock is always passed in; nothing here reads the system time. The rules, where people
could mean more than one thing:

* A duration (``5d``, ``in 5 days``, ``3 business days``, ``an hour``) counts from ``now`` with
  :meth:`Duration.after`, to the minute (seconds are dropped, except for a duration in seconds).
  Days and weeks keep the wall-clock time; ``in 3 days at 9am`` sets it.
* A weekday (``monday``, ``mon``, ``next monday``, ``this monday``) is always the next such day
  strictly after today's date: ``monday`` said on a Monday means a week later.
* ``next week`` is the next Monday strictly after today; ``next month`` the 1st of next month.
* A day of a month without a year (``dec 3``, ``3 december``, ``December 3rd``) is its next
  occurrence whose moment is still ahead of ``now``: on 3 December at 07:00, ``dec 3`` is 09:00
  that day; at 10:00 it is a year later. With a year (``3 dec 2027``) it is that day.
* An ISO date (``2026-12-01``, ``2026-12-01T15:00``, with or without an offset) is that moment,
  **even if it has passed**; callers decide what a past time means.
* A time of day alone (``3pm``, ``14:30``) is its next occurrence: today, or tomorrow if gone.
  ``today 3pm`` is today, even if gone.
* Numeric dates like ``3/12`` are refused: they read differently in the US and in Europe.
* Without a time of day a day means ``default_hour``:00. ``morning`` is 09:00, ``noon`` 12:00,
  ``afternoon`` 14:00, ``evening`` 18:00. Midnight is refused (which day's?).
* Wall times go through :func:`resolve_wall_time`: a time in the spring-forward gap moves on by
  the length of the gap, a time in the autumn overlap is its first (summer-time) occurrence.
* Anything more than :data:`HORIZON` ahead is refused as not meant (``5000 days``).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from mailhelper.duration import Duration, DurationError, resolve_wall_time

#: The furthest ahead a phrase may name; further is a typo, not a plan (and would overflow).
HORIZON = timedelta(days=3660)

#: Longer text is prose, not a time phrase; the cap also keeps the regexes cheap.
_MAX_CHARS = 80

_WEEKDAYS: dict[str, int] = {
    "monday": 0, "mon": 0,
    "tuesday": 1, "tue": 1, "tues": 1,
    "wednesday": 2, "wed": 2, "weds": 2,
    "thursday": 3, "thu": 3, "thur": 3, "thurs": 3,
    "friday": 4, "fri": 4,
    "saturday": 5, "sat": 5,
    "sunday": 6, "sun": 6,
}
_MONTHS: dict[str, int] = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3,
    "april": 4, "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7,
    "august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9, "october": 10, "oct": 10,
    "november": 11, "nov": 11, "december": 12, "dec": 12,
}
_NAMED_TIMES: dict[str, time] = {
    "morning": time(9), "noon": time(12), "midday": time(12),
    "afternoon": time(14), "evening": time(18),
}
_NUMBER_WORDS: dict[str, str] = {
    "a": "1", "an": "1", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11",
    "twelve": "12",
}
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_WEEKDAY_RE = "|".join(sorted(_WEEKDAYS, key=len, reverse=True))
_TIME_RE = (
    r"(?:(?P<h1>\d{1,2})(?:[:.h](?P<m1>\d{2}))?\s*(?P<ampm>am|pm)"
    r"|(?P<h2>\d{1,2})[:h](?P<m2>\d{2})"
    r"|(?P<named>" + "|".join(_NAMED_TIMES) + "))"
)
_TIME_AT_END = re.compile(r"(?:^|\s)(?:at\s+|@\s*)?" + _TIME_RE + r"$")
_TIME_AT_START = re.compile(r"^(?:at\s+|@\s*)?" + _TIME_RE + r"(?:\s+(?:on\s+)?|$)")
_DURATION_WITH_TIME = re.compile(
    r"^(?P<duration>\d{1,6}\s*(?:business\s+|working\s+)?[a-z]+)(?:\s+(?:from\s+now|later))?"
    r"(?:\s+(?:at\s+|@\s*)?(?P<rest>.+))?$"
)
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_ISO_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:z|[+-]\d{2}:?\d{2})?$"
)
_WEEKDAY = re.compile(r"^(?:(?:next|this|coming|on)\s+)?(?P<day>" + _WEEKDAY_RE + r")$")
_ORDINAL = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_MONTH_DAY = re.compile(r"^(?P<month>" + _MONTH_RE + r")\s+(?:the\s+)?" + _ORDINAL
                        + r"(?:\s+(?P<year>\d{4}))?$")
_DAY_MONTH = re.compile(r"^(?:the\s+)?" + _ORDINAL + r"\s+(?:of\s+)?(?P<month>" + _MONTH_RE
                        + r")(?:\s+(?P<year>\d{4}))?$")
_LEADING_WORD = re.compile(r"^(?:in|on|at|for|until|till|til|by|after)\s+")
_NUMBER_WORD = re.compile(
    r"\b(" + "|".join(_NUMBER_WORDS) + r")\s+(?=(?:business\s+|working\s+)?"
    r"(?:second|sec|minute|min|hour|hr|day|week|wk)s?\b)"
)


def parse_when(text: str, now: datetime, zone: tzinfo, default_hour: int = 9) -> datetime | None:
    """The moment ``text`` names, as an aware datetime in ``zone``; None if it names none.

    ``now`` must be aware. Never raises on any text: garbage is simply not a time.

        >>> from zoneinfo import ZoneInfo
        >>> ny = ZoneInfo("America/New_York")
        >>> parse_when("monday 14:30", datetime(2026, 3, 4, 10, tzinfo=ny), ny)
        datetime.datetime(2026, 3, 9, 14, 30, tzinfo=zoneinfo.ZoneInfo(key='America/New_York'))
    """
    if now.tzinfo is None or not isinstance(text, str) or len(text) > _MAX_CHARS:
        return None
    phrase = _normalise(text)
    if not phrase:
        return None
    try:
        moment = _parse(phrase, now, zone, default_hour)
        if moment is None or _utc(moment) - _utc(now) > HORIZON:
            return None
        return moment.astimezone(zone)
    except (ValueError, OverflowError):
        # Out-of-range dates (feb 30, year 9999 + a week) are simply not a time.
        return None


def describe(dt: datetime, zone: tzinfo, now: datetime | None = None) -> str:
    """The moment as a receipt says it, in ``zone``: ``Thu 3 Dec, 09:00``.

    Names are English whatever the system locale. With ``now`` given, a moment in another
    year than ``now``'s shows its year: ``Fri 3 Dec 2027, 09:00``.

        >>> from datetime import UTC
        >>> describe(datetime(2026, 12, 3, 9, tzinfo=UTC), UTC)
        'Thu 3 Dec, 09:00'
    """
    local = dt.astimezone(zone)
    year = ""
    if now is not None and now.astimezone(zone).year != local.year:
        year = f" {local.year}"
    return (f"{_DAY_NAMES[local.weekday()]} {local.day} {_MONTH_NAMES[local.month - 1]}{year}, "
            f"{local:%H:%M}")


def _normalise(text: str) -> str:
    """Lower case, single spaces, no trailing punctuation, ``a.m.`` as ``am``, no ``in``."""
    phrase = " ".join(text.replace("\ufeff", "").split()).lower()
    phrase = re.sub(r"\b([ap])\.?m\.?(?=\s|$)", r"\1m", phrase)
    # "dec. 3", "mon., 9am", "december 3rd, 2026": the dot and comma carry no meaning here.
    phrase = re.sub(r"(?<=[a-z])\.(?=\s|$)", "", phrase)
    phrase = " ".join(phrase.replace(",", " ").split())
    phrase = phrase.rstrip(".!?;:").strip()
    phrase = _LEADING_WORD.sub("", phrase, count=1)
    return _NUMBER_WORD.sub(lambda m: _NUMBER_WORDS[m[1]] + " ", phrase)


def _parse(phrase: str, now: datetime, zone: tzinfo, default_hour: int) -> datetime | None:
    if _ISO_DATETIME.match(phrase):
        parsed = datetime.fromisoformat(phrase.upper().replace("Z", "+00:00"))
        if parsed.tzinfo is not None:
            return parsed.astimezone(zone)
        return resolve_wall_time(parsed, zone)

    duration_match = _DURATION_WITH_TIME.match(phrase)
    if duration_match:
        try:
            duration = Duration.parse(duration_match["duration"])
        except DurationError:
            pass  # "3 december", "9am monday": digits and a word, but not a duration
        else:
            return _from_duration(duration, duration_match["rest"], now, zone)

    found, clock, day_part = _split_time_of_day(phrase)
    if found and clock is None:
        return None  # a time of day out of range, e.g. "25:00" or "13pm"
    local_now = now.astimezone(zone)
    today = local_now.date()

    if day_part in ("", "today"):
        if clock is None:
            return None  # "today" alone names no moment
        wall = datetime.combine(today, clock)
        moment = resolve_wall_time(wall, zone)
        if day_part == "" and _utc(moment) <= _utc(now):
            moment = resolve_wall_time(wall + timedelta(days=1), zone)
        return moment

    day = _day(day_part, today, now, zone, clock or time(default_hour))
    if day is None:
        return None
    return resolve_wall_time(datetime.combine(day, clock or time(default_hour)), zone)


def _from_duration(
    duration: Duration, rest: str | None, now: datetime, zone: tzinfo
) -> datetime | None:
    if duration.approximate > HORIZON:
        return None
    moment = duration.after(now, zone)
    if duration.unit != "seconds":
        moment = moment.replace(second=0, microsecond=0)
    if rest is None:
        return moment
    # "in 3 days at 9am": the day from the duration, the hour from the words.
    _, clock, leftover = _split_time_of_day(rest)
    if clock is None or leftover or duration.unit not in ("days", "weeks"):
        return None
    return resolve_wall_time(datetime.combine(moment.date(), clock), zone)


def _split_time_of_day(phrase: str) -> tuple[bool, time | None, str]:
    """(found, time of day, the rest) for ``monday 9am``, ``9am monday``, ``tomorrow at 14:30``.

    ``found`` with a None time means a time-like word out of range (``25:00``): a bad time,
    not an absent one.
    """
    match = _TIME_AT_END.search(phrase)
    if match:
        return True, _clock(match), phrase[: match.start()].strip()
    match = _TIME_AT_START.search(phrase)
    if match:
        return True, _clock(match), phrase[match.end():].strip()
    return False, None, phrase


def _clock(match: re.Match[str]) -> time | None:
    if match["named"]:
        return _NAMED_TIMES[match["named"]]
    if match["ampm"]:
        hour, minute = int(match["h1"]), int(match["m1"] or 0)
        if not 1 <= hour <= 12 or minute > 59:
            return None
        return time(hour % 12 + (12 if match["ampm"] == "pm" else 0), minute)
    hour, minute = int(match["h2"]), int(match["m2"])
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def _day(day_part: str, today: date, now: datetime, zone: tzinfo, clock: time) -> date | None:
    """The date a day phrase names (the time of day only matters for ``dec 3`` today)."""
    if day_part in ("tomorrow", "tmrw", "tmr", "tomorow"):
        return today + timedelta(days=1)
    if day_part in ("next week", "the week after", "start of next week"):
        return today + timedelta(days=7 - today.weekday())
    if day_part == "next month":
        return date(today.year + today.month // 12, today.month % 12 + 1, 1)
    weekday = _WEEKDAY.match(day_part)
    if weekday:
        ahead = (_WEEKDAYS[weekday["day"]] - today.weekday() - 1) % 7 + 1
        return today + timedelta(days=ahead)
    iso = _ISO_DATE.match(day_part)
    if iso:
        return date(int(iso[1]), int(iso[2]), int(iso[3]))
    named = _MONTH_DAY.match(day_part) or _DAY_MONTH.match(day_part)
    if named:
        month, day = _MONTHS[named["month"]], int(named["day"])
        if named["year"]:
            return date(int(named["year"]), month, day)
        # The next 29 February can be up to eight years away.
        for year in range(today.year, today.year + 9):
            try:
                candidate = date(year, month, day)
            except ValueError:
                continue
            if _utc(resolve_wall_time(datetime.combine(candidate, clock), zone)) > _utc(now):
                return candidate
        return None
    return None


def _utc(moment: datetime) -> datetime:
    """For comparing: Python compares two datetimes with the same tzinfo by wall time alone,
    which gets the two 01:30s of an autumn night wrong."""
    return moment.astimezone(UTC)
