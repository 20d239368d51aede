"""When the digest goes: an RFC 5545 RRULE (``schedules.digest.rrule``) in local wall time.

    >>> from zoneinfo import ZoneInfo
    >>> london = ZoneInfo("Europe/London")
    >>> anchor = datetime(2026, 3, 20, 10, tzinfo=london)
    >>> next_digest("FREQ=WEEKLY;BYDAY=MO;BYHOUR=8", anchor, london, anchor)
    datetime.datetime(2026, 3, 23, 8, 0, tzinfo=zoneinfo.ZoneInfo(key='Europe/London'))
    >>> next_digest("FREQ=WEEKLY;BYDAY=MO;BYHOUR=8", datetime(2026, 3, 27, tzinfo=london),
    ...             london, anchor)  # after the change to summer time: still 08:00 local
    datetime.datetime(2026, 3, 30, 8, 0, tzinfo=zoneinfo.ZoneInfo(key='Europe/London'))

The rule is expanded by :mod:`dateutil.rrule` over naive wall times, then each occurrence is
made aware with :func:`resolve_wall_time` (RFC 5545 section 3.3.5: a local time in the
spring-forward gap is read with the offset from before the gap, so 01:30 becomes 02:30 summer
time; in the autumn overlap the first occurrence counts). So ``BYHOUR=8`` is 08:00 local in
winter and in summer.

The start (DTSTART) comes from ``anchor``, the day the assistant first planned a digest, so
the rule's phase (``INTERVAL=2``, a weekly rule without ``BYDAY``, ``COUNT``) stays put across
restarts:

* its date is the anchor's local date; its time is 00:00, so a rule's first occurrence can be
  on the anchor day itself (strictly after ``after``, of course);
* a rule without ``BYHOUR`` (and not hourly or finer) sends at :data:`DEFAULT_HOUR` (08:00,
  as the default rule), not at whatever hour the assistant happened to start;
* a rule without ``BYMINUTE``/``BYSECOND`` sends on the hour (RRULE takes missing parts from
  DTSTART, and ours has minute and second 0);
* a ``DTSTART`` line in the config text is ignored (the anchor decides), and ``UNTIL`` given
  in UTC (``...Z``, as RFC 5545 asks when DTSTART has a zone) is read as that instant.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta, tzinfo

from dateutil.rrule import rrule, rrulestr

from mailhelper.model.duration import resolve_wall_time

#: The hour of a digest whose rule names none.
DEFAULT_HOUR = 8

# Occurrences are searched from this long before ``after`` in wall time, which covers any DST
# shift (at most two hours anywhere) between the wall clock and the real one.
_LOOKBACK = timedelta(hours=3)
# Enough occurrences to get past the look-back even for a minutely rule.
_MAX_CANDIDATES = 10_000
_FINE = re.compile(r"FREQ=(?:HOURLY|MINUTELY|SECONDLY)\b")
_UNTIL_UTC = re.compile(r"UNTIL=(\d{8}T\d{6})Z", re.IGNORECASE)


def next_digest(
    rrule_text: str, after: datetime, zone: tzinfo, anchor: datetime
) -> datetime | None:
    """The first occurrence of the rule strictly after ``after`` (aware), in ``zone``.

    None when the rule has no more occurrences (``COUNT``/``UNTIL`` used up). A rule that is
    not valid RRULE raises ValueError (the config check refuses such a rule at start-up).
    """
    if after.tzinfo is None or anchor.tzinfo is None:
        raise ValueError("after and anchor must be timezone-aware")
    rule = _rule(rrule_text, anchor, zone)
    cursor = after.astimezone(zone).replace(tzinfo=None) - _LOOKBACK
    after_utc = after.astimezone(UTC)
    for count, occurrence in enumerate(rule.xafter(cursor, inc=False)):
        moment = resolve_wall_time(occurrence, zone)
        if moment.astimezone(UTC) > after_utc:
            return moment.astimezone(zone)
        if count >= _MAX_CANDIDATES:
            break
    return None


def validate_rrule(rrule_text: str) -> None:
    """Raise ValueError with the reason when ``next_digest`` could not use this rule.

        >>> validate_rrule("FREQ=WEEKLY;BYDAY=MO;BYHOUR=8")
        >>> validate_rrule("FREQ=FORTNIGHTLY")
        Traceback (most recent call last):
        ...
        ValueError: invalid 'FREQ': FORTNIGHTLY
    """
    _rule(rrule_text, datetime(2000, 1, 3, tzinfo=UTC), UTC)


def _rule(rrule_text: str, anchor: datetime, zone: tzinfo) -> rrule:
    # Keep the RRULE line only: the anchor is the start, whatever DTSTART the text names.
    lines = [line.strip() for line in rrule_text.strip().splitlines()
             if line.strip() and not line.strip().upper().startswith("DTSTART")]
    if len(lines) != 1:
        raise ValueError("expected exactly one RRULE line")
    text = _UNTIL_UTC.sub(lambda m: "UNTIL=" + _local_until(m[1], zone), lines[0])
    upper = text.upper()
    # Hourly and finer rules take their hours from the frequency, counted from midnight.
    named_hours = "BYHOUR=" in upper or _FINE.search(upper) is not None
    day = anchor.astimezone(zone).date()
    start = datetime.combine(day, time(0 if named_hours else DEFAULT_HOUR))
    try:
        parsed = rrulestr(text, dtstart=start)
    except (TypeError, KeyError, IndexError, OverflowError) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None
    if not isinstance(parsed, rrule):  # an RRULE line gives one rule, never a set
        raise ValueError("expected a single RRULE")
    return parsed


def _local_until(stamp: str, zone: tzinfo) -> str:
    """``UNTIL=...Z`` as the local wall time of that instant, to match our naive start."""
    instant = datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    return instant.astimezone(zone).strftime("%Y%m%dT%H%M%S")
