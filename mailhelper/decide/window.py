"""The sending window: when the assistant may send (``sending.business_days``, ``quiet_hours``).

SPEC.md "Lifecycle and default schedules": ``business_days`` moves a due time that falls on a
weekend to Monday; ``quiet_hours`` (``"20:00-08:00"``) moves it to the end of the quiet window;
all in the configured zone, DST-correct.

    >>> from datetime import time
    >>> from zoneinfo import ZoneInfo
    >>> from mailhelper.model.settings import QuietHours, SendingSettings
    >>> london = ZoneInfo("Europe/London")
    >>> sending = SendingSettings(business_days=True, quiet_hours=QuietHours(time(20), time(8)))
    >>> next_sending_time(datetime(2026, 12, 4, 21, 30, tzinfo=london), sending, london)
    datetime.datetime(2026, 12, 7, 8, 0, tzinfo=zoneinfo.ZoneInfo(key='Europe/London'))

The rules (a Friday 21:30 above is quiet until Saturday 08:00, a weekend, so Monday 08:00):

* Quiet hours are wall-clock times, start included, end excluded: with ``20:00-08:00``, 20:00
  is quiet and 08:00 is not. A window may cross midnight. A window that starts where it ends
  is no window (the config refuses it anyway).
* A time in quiet hours moves to the end of that window: 23:00 to 08:00 the next morning,
  03:00 to 08:00 the same morning.
* With ``business_days``, a time on a Saturday or Sunday moves to **Monday morning**: the end
  of the quiet hours when they cover Monday 00:00 (``20:00-08:00`` gives 08:00), else
  :data:`MORNING` (09:00), a civil hour when nothing else says which. Not the same wall time
  as on the weekend: a reminder held over a weekend is wanted at the start of the week.
* The rules apply in turn until the time stands still, so the result is in the window and
  :func:`next_sending_time` of it is itself (idempotent). A due time already in the window is
  returned as it is.
* DST: a window end that falls in the spring-forward gap (02:30 in New York on 8 March 2026)
  moves on by the length of the gap (03:30 EDT), as :func:`resolve_wall_time` does everywhere.
  In the autumn overlap a wall time is taken at its first occurrence that is not before the
  due time; since quiet hours are wall-clock, the repeated hour is quiet again if it was the
  first time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo

from mailhelper.model.duration import resolve_wall_time
from mailhelper.model.settings import QuietHours, SendingSettings

#: Where a weekend time lands on Monday when no quiet hours cover Monday 00:00.
MORNING = time(9)

# Each step moves forward to a window edge; three or four steps reach a stable time.
_MAX_STEPS = 16


def in_window(dt: datetime, sending: SendingSettings, zone: tzinfo) -> bool:
    """Whether mail may go at ``dt`` (aware): a business day if required, outside quiet hours.

        >>> from zoneinfo import ZoneInfo
        >>> from mailhelper.model.settings import SendingSettings
        >>> london = ZoneInfo("Europe/London")
        >>> in_window(datetime(2026, 12, 5, 12, tzinfo=london), SendingSettings(), london)
        False
    """
    local = _local(dt, zone)
    if sending.business_days and local.weekday() >= 5:
        return False
    return not _is_quiet(local.time(), sending.quiet_hours)


def next_sending_time(due: datetime, sending: SendingSettings, zone: tzinfo) -> datetime:
    """The moment at or after ``due`` (aware) at which mail may go, in ``zone``.

    ``due`` itself when it is in the window; else the time the module docstring's rules give.

        >>> from zoneinfo import ZoneInfo
        >>> from mailhelper.model.settings import SendingSettings
        >>> london = ZoneInfo("Europe/London")
        >>> next_sending_time(datetime(2026, 12, 1, 23, tzinfo=london), SendingSettings(), london)
        datetime.datetime(2026, 12, 2, 8, 0, tzinfo=zoneinfo.ZoneInfo(key='Europe/London'))
    """
    moment = _local(due, zone)
    quiet = _effective(sending.quiet_hours)
    for _ in range(_MAX_STEPS):
        if sending.business_days and moment.weekday() >= 5:
            monday = moment.date() + timedelta(days=7 - moment.weekday())
            # Monday 00:00 in quiet hours: the next step takes it to their end.
            start = time(0) if quiet and _is_quiet(time(0), quiet) else MORNING
            moment = _wall_at_or_after(monday, start, zone, moment)
        elif quiet and _is_quiet(moment.time(), quiet):
            crosses_midnight = quiet.start > quiet.end
            day = moment.date()
            if crosses_midnight and moment.time() >= quiet.start:
                day += timedelta(days=1)
            moment = _wall_at_or_after(day, quiet.end, zone, moment)
        else:
            return moment
    return moment  # unreachable with a real window; never loop for ever on a strange one


def _local(dt: datetime, zone: tzinfo) -> datetime:
    if dt.tzinfo is None:
        raise ValueError("a sending time must be timezone-aware")
    return dt.astimezone(zone)


def _effective(quiet: QuietHours | None) -> QuietHours | None:
    return quiet if quiet is not None and quiet.start != quiet.end else None


def _is_quiet(wall: time, quiet: QuietHours | None) -> bool:
    quiet = _effective(quiet)
    if quiet is None:
        return False
    if quiet.start < quiet.end:
        return quiet.start <= wall < quiet.end
    return wall >= quiet.start or wall < quiet.end


def _wall_at_or_after(day: date, wall: time, zone: tzinfo, not_before: datetime) -> datetime:
    """``day`` at ``wall`` in ``zone``: the first occurrence not before ``not_before``.

    Compared in UTC on purpose: Python compares two datetimes with the same tzinfo by wall
    time alone, which gets the two 01:30s of an autumn night wrong.
    """
    naive = datetime.combine(day, wall)
    first = resolve_wall_time(naive, zone).astimezone(zone)
    if first.astimezone(UTC) >= not_before.astimezone(UTC):
        return first
    # In the autumn overlap and already past the first occurrence: take the second.
    second = naive.replace(tzinfo=zone, fold=1).astimezone(zone)
    if second.astimezone(UTC) >= not_before.astimezone(UTC):
        return second
    return not_before
