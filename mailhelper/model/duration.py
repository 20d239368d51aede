"""Durations as the config and the tags write them: ``90 minutes``, ``2h``, ``3 business days``.

    >>> Duration.parse("3 days")
    Duration(amount=3, unit='days', business=False)
    >>> Duration.parse("2h").text
    '2 hours'

Seconds, minutes and hours are elapsed time. Days and weeks are calendar time in the configured
zone: three days after 09:00 is 09:00 three days later, even across a DST change. Business days
count Monday to Friday only.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import UTC as _UTC
from datetime import datetime, timedelta, tzinfo
from typing import Literal

Unit = Literal["seconds", "minutes", "hours", "days", "weeks"]

_UNITS: dict[str, Unit] = {
    "s": "seconds", "sec": "seconds", "secs": "seconds", "second": "seconds", "seconds": "seconds",
    "m": "minutes", "min": "minutes", "mins": "minutes", "minute": "minutes", "minutes": "minutes",
    "h": "hours", "hr": "hours", "hrs": "hours", "hour": "hours", "hours": "hours",
    "d": "days", "day": "days", "days": "days",
    "w": "weeks", "wk": "weeks", "wks": "weeks", "week": "weeks", "weeks": "weeks",
}
_PATTERN = re.compile(
    r"^\s*(\d{1,6})\s*(business\s+|working\s+)?([a-z]+)\s*$", re.IGNORECASE
)
_SECONDS: dict[Unit, int] = {
    "seconds": 1, "minutes": 60, "hours": 3600, "days": 86400, "weeks": 604800,
}


class DurationError(ValueError):
    """A text that is not a duration; the message carries a suggestion where one is close."""


#: The longest duration accepted: beyond it date arithmetic overflows, and no reminder
#: is meant to wait that long.
MAX_LENGTH = timedelta(days=3660)

@dataclass(frozen=True)
class Duration:
    amount: int
    unit: Unit
    business: bool = False

    @classmethod
    def parse(cls, text: str | int) -> Duration:
        """Read ``3 days``, ``3d``, ``3 business days``, ``90 minutes``; raise DurationError.

        A bare number is not accepted: ``3`` could be seconds or days, so the config says which.
        """
        if isinstance(text, bool) or not isinstance(text, str | int):
            raise DurationError(f"{text!r} is not a duration (try \"3 days\")")
        raw = str(text)
        match = _PATTERN.match(raw)
        if not match:
            raise DurationError(f'"{raw}" is not a duration (try {_suggest(raw)})')
        amount, business, unit_word = int(match[1]), bool(match[2]), match[3].lower()
        unit = _UNITS.get(unit_word)
        if unit is None:
            raise DurationError(f'"{raw}" is not a duration (try {_suggest(raw)})')
        if business and unit != "days":
            raise DurationError(
                f'"{raw}": only days can be business days (try "{amount} business days")'
            )
        duration = cls(amount, unit, business)
        if duration.approximate > MAX_LENGTH:
            raise DurationError(f'"{raw}" is longer than ten years; nothing here waits that long')
        return duration

    @property
    def text(self) -> str:
        """The canonical spelling, e.g. ``3 business days``."""
        unit = self.unit if self.amount != 1 else self.unit[:-1]
        return f"{self.amount} {'business ' if self.business else ''}{unit}"

    @property
    def approximate(self) -> timedelta:
        """The length as elapsed time (a business day counts as a day); for comparisons only."""
        return timedelta(seconds=self.amount * _SECONDS[self.unit])

    def after(self, start: datetime, zone: tzinfo) -> datetime:
        """The moment this long after ``start`` (aware), in ``zone``.

        >>> from zoneinfo import ZoneInfo
        >>> london = ZoneInfo("Europe/London")
        >>> Duration.parse("1 day").after(datetime(2026, 3, 28, 9, tzinfo=london), london)
        datetime.datetime(2026, 3, 29, 9, 0, tzinfo=zoneinfo.ZoneInfo(key='Europe/London'))
        """
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if self.unit in ("seconds", "minutes", "hours"):
            # Elapsed time: do the sum in UTC so a DST change neither adds nor loses an hour.
            return (start.astimezone(_UTC) + self.approximate).astimezone(zone)
        local = start.astimezone(zone)
        if self.business:
            day = local
            remaining = self.amount
            while remaining > 0:
                day = day + timedelta(days=1)
                if day.weekday() < 5:
                    remaining -= 1
            wall = day.replace(tzinfo=None)
        else:
            days = self.amount * (7 if self.unit == "weeks" else 1)
            wall = local.replace(tzinfo=None) + timedelta(days=days)
        return resolve_wall_time(wall, zone)

    def __str__(self) -> str:
        return self.text


def resolve_wall_time(wall: datetime, zone: tzinfo) -> datetime:
    """A naive local time made aware in ``zone``, DST-correct.

    A time in the spring-forward gap (01:30 in London on the last Sunday of March) does not
    exist; it moves forward by the length of the gap (to 02:30 BST). A time in the autumn
    overlap happens twice; the first (summer-time) one is taken.
    """
    aware = wall.replace(tzinfo=zone, fold=0)
    round_trip = aware.astimezone(_UTC).astimezone(zone)
    if round_trip.replace(tzinfo=None) != wall:
        # In the gap: fold=0 used the offset from before the change, which lands after it.
        return round_trip
    return aware


def _suggest(raw: str) -> str:
    match = re.match(r"^\s*(\d+)\s*(business\s+)?([a-zA-Z]*)", raw)
    amount = match[1] if match else "3"
    business = "business " if match and match[2] else ""
    word = match[3].lower() if match else ""
    names = ["seconds", "minutes", "hours", "days", "weeks"]
    close = difflib.get_close_matches(word, names + list(_UNITS), n=1, cutoff=0.5)
    unit = _UNITS[close[0]] if close else "days"
    if business:
        unit = "days"
    return f'"{amount} {business}{unit}"'
