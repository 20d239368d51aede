"""An owner's pause: ``pause until 6 April``, ``pause 2 weeks``, ``resume`` (SPEC.md 5).

While an owner is paused, nothing the assistant would send *on its own* for them goes out:
reminders, closing notes, nudges and thank-yous of their threads, their digest, the daily
summary of others' mail filed as errors (to the first owner). What answers the owner's own
mail still goes, because they are writing and wait for it: a receipt, a command's reply (the
pause's own confirmation), the digest they ask for with ``status``, a draft they say ``send``
to. Everything here is pure; :mod:`mailhelper.engine.tracker` writes what it decides, and
:mod:`mailhelper.decide.release` walks a thread's schedule at the release.

    >>> from zoneinfo import ZoneInfo
    >>> from mailhelper.model.settings import SendingSettings
    >>> london = ZoneInfo("Europe/London")
    >>> end = datetime(2026, 12, 17, 14, 37, tzinfo=london)          # "pause 2 weeks"
    >>> release_time(end, london, time(9), SendingSettings()).isoformat()
    '2026-12-18T09:00:00+00:00'

The rules, where people could mean more than one thing:

* **The end** is the command's time, read like ``snooze`` in the owner's zone: ``pause 2
  weeks`` ends two weeks from the command to the minute, ``pause until 6 April`` at 6 April's
  ``default_time``. An end already past, or more than :data:`MAX_PAUSE` (a year) ahead, is
  refused with the reason: a year-long silence is a mistake more often than a plan.
* **The release** is when what the pause held goes out: the first ``default_time`` in the
  owner's zone at or after the end (a pause ending at 14:37 releases the next morning; one
  ending at 09:00 then), then through the sending window (business days, quiet hours).
  ``resume`` ends the pause at once and releases the same way: the next morning.
* **One mail per thread.** At the release each thread sends at most one of the mails the pause
  held: the one due latest. The earlier ones are *superseded*: recorded as skipped with the
  reason, never sent (a second reminder makes the first moot; the closing note makes both
  moot). The reminder series is walked as if the owner had seen each step, so a pause over
  two reminders sends the second, and the schedule goes on from it. A thank-you is never
  superseded: it says something no reminder says, and skipping it would lose the thanks.
* **The digest** held by the pause goes at the release (there is only ever one pending) and
  its schedule goes on from there.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo

from mailhelper.decide.window import next_sending_time
from mailhelper.model.addresses import fold
from mailhelper.model.duration import resolve_wall_time
from mailhelper.model.settings import SendingSettings, Settings
from mailhelper.model.values import Action, Pause, Thread

#: The longest pause taken: longer is refused as a slip.
MAX_PAUSE = timedelta(days=366)
#: What a held action's ``last_error`` says while the pause holds it.
HELD = "pause: held until the pause ends"
#: What a superseded action's ``last_error`` says.
SUPERSEDED = "pause: superseded by a later mail of the thread, sent when the pause ended"


def release_time(end: datetime, zone: tzinfo, default_time: time,
                 sending: SendingSettings) -> datetime:
    """When a pause ending at ``end`` releases what it held: the first ``default_time`` in
    ``zone`` at or after ``end``, moved into the sending window (a Saturday's release is on
    Monday at the default time, or when the window opens if that is later).

        >>> from zoneinfo import ZoneInfo
        >>> ny = ZoneInfo("America/New_York")
        >>> friday_noon = datetime(2026, 12, 4, 12, tzinfo=ny)
        >>> release_time(friday_noon, ny, time(9), SendingSettings()).isoformat()
        '2026-12-07T09:00:00-05:00'
    """
    day = end.astimezone(zone).date()
    morning = resolve_wall_time(datetime.combine(day, default_time), zone)
    if _utc(morning) < _utc(end):
        day += timedelta(days=1)
        morning = resolve_wall_time(datetime.combine(day, default_time), zone)
    moved = next_sending_time(morning, sending, zone)
    later = moved.astimezone(zone).date()
    if later != day:
        # A weekend moved it to Monday: Monday's default time, unless the window opens later.
        morning = resolve_wall_time(datetime.combine(later, default_time), zone)
        moved = next_sending_time(max(morning, moved, key=_utc), sending, zone)
    return moved


def pause_problem(until: datetime, now: datetime) -> str | None:
    """Why a pause ending at ``until`` cannot be taken at ``now`` (None: it can).

        >>> now = datetime(2026, 12, 3, 9, tzinfo=UTC)
        >>> pause_problem(datetime(2028, 1, 1, tzinfo=UTC), now)
        'a pause lasts at most a year: pick an end no later than 4 Dec 2027'
    """
    if _utc(until) <= _utc(now):
        return "that time has already passed"
    if _utc(until) - _utc(now) > MAX_PAUSE:
        last = (now + MAX_PAUSE).astimezone(until.tzinfo)
        return (f"a pause lasts at most a year: pick an end no later than "
                f"{last.day} {last:%b %Y}")
    return None


def new_pause(owner: str, until: datetime, now: datetime, settings: Settings,
              current: Pause | None = None) -> Pause:
    """The pause ``pause <until>`` sets at ``now`` (a pause already running keeps its start:
    a second ``pause`` moves the end)."""
    since = current.since if current is not None and current.holds(now) else now
    return Pause(owner, since, until, release_time(until, settings.zone_for(owner),
                                                   settings.default_time_for(owner),
                                                   settings.sending))


def resumed(pause: Pause, now: datetime, settings: Settings) -> Pause:
    """``pause`` ended by ``resume`` at ``now``: what it held goes the next morning."""
    until = min(pause.until, now, key=_utc)
    return Pause(pause.owner, pause.since, until,
                 release_time(until, settings.zone_for(pause.owner),
                              settings.default_time_for(pause.owner), settings.sending))


def owner_of_action(action: Action, thread: Thread | None, settings: Settings) -> str | None:
    """The owner an action is sent for: its thread's, else (a digest, a notice) the owner it
    goes to; None when it is nobody's (it is then never held)."""
    if thread is not None:
        return fold(thread.owner.email)
    for person in action.recipients:
        if settings.owner_for(person.email) is not None:
            return fold(person.email)
    return None


def _utc(moment: datetime) -> datetime:
    # Same-zone datetimes compare by wall time, wrong in the autumn overlap: compare in UTC.
    return moment.astimezone(UTC)
