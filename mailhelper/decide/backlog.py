"""Old mail: what was in the folder before the assistant first read it, and reading it later
on purpose (``poll --once --backfill DAYS``). Pure: values in, values out.

The rule (README "Old mail"): when a state file has never read the folder, the first cycle
records a :class:`~mailhelper.model.values.FirstStart` (its time, the folder's UIDVALIDITY and
UIDNEXT). A message that was already in the folder then is **old** when both its arrival
(INTERNALDATE, the server's clock) and its ``Date`` header (the writer's clock) are more than
:data:`~mailhelper.model.values.GRACE` before that first start; old mail is left alone, on the first
cycle and on every later one (a UIDVALIDITY change, a restart mid-way), because the record, not
the cycle, decides. Why both dates: a mailbox that has been receiving mail for months has both
old, while the mail a new user sends just before starting the assistant (or a demo, or a test
with ``--now``) has at least one recent date; a single recent date is enough to read it, so
nothing meant for the assistant is ignored. A message without a readable ``Date`` header is
read (a test or a demo may run with ``--now`` days ahead of the server's clock, and the arrival
alone cannot tell). Mail that arrives after the first start (UID at or above the recorded
UIDNEXT) is never old.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mailhelper.model.values import GRACE

#: ``--backfill`` without a number of days.
DEFAULT_BACKFILL_DAYS = 30


def is_old(arrival: datetime | None, written: datetime | None, cutoff: datetime) -> bool:
    """True when the message's ``Date`` header and its arrival (when known) are both before
    ``cutoff``. A message without a readable ``Date`` (RFC 5322 requires one) is never old:
    it is read, as any message was before, rather than silently set aside on one clock.

        >>> cut = datetime(2026, 12, 6, 9, tzinfo=UTC)
        >>> is_old(datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 5, tzinfo=UTC), cut)
        True
        >>> is_old(datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 12, 7, tzinfo=UTC), cut)
        False
        >>> is_old(datetime(2026, 1, 5, tzinfo=UTC), None, cut)
        False
    """
    return written is not None and written < cutoff and (arrival is None or arrival < cutoff)


def own_date(arrival: datetime | None, written: datetime | None, now: datetime) -> datetime:
    """When an old message happened, for a backfill: its ``Date`` header, but never after its
    arrival (a writer's clock running fast) nor after ``now``; no date at all: ``now``.

        >>> now = datetime(2026, 12, 7, 9, tzinfo=UTC)
        >>> own_date(datetime(2026, 1, 5, 10, 1, tzinfo=UTC),
        ...          datetime(2026, 1, 5, 10, 0, tzinfo=UTC), now).isoformat()
        '2026-01-05T10:00:00+00:00'
        >>> own_date(datetime(2026, 1, 5, 10, tzinfo=UTC),
        ...          datetime(2026, 3, 1, tzinfo=UTC), now).isoformat()
        '2026-01-05T10:00:00+00:00'
    """
    moment = written if written is not None else arrival
    if moment is None:
        return now
    if arrival is not None and moment > arrival:
        moment = arrival
    return min(moment, now).astimezone(UTC)


def left_alone_line(folder: str, count: int, oldest: datetime | None,
                    newest: datetime | None) -> str:
    """The one log line (and ``check`` line) about old mail left alone.

        >>> left_alone_line("INBOX", 2, datetime(2026, 1, 5, tzinfo=UTC),
        ...                 datetime(2026, 10, 30, tzinfo=UTC))  # doctest: +NORMALIZE_WHITESPACE
        'INBOX: 2 message(s) already here from 2026-01-05 to 2026-10-30 left alone (older than
        the first start by more than 1 day); to read them: mailhelper poll --once --backfill
        DAYS (e.g. --backfill 30)'
    """
    span = ""
    if oldest is not None and newest is not None:
        span = f" from {oldest.date().isoformat()} to {newest.date().isoformat()}"
    return (f"{folder}: {count} message(s) already here{span} left alone (older than the "
            f"first start by more than {_days(GRACE)}); to read them: mailhelper poll --once "
            f"--backfill DAYS (e.g. --backfill {DEFAULT_BACKFILL_DAYS})")


def _days(span: timedelta) -> str:
    days = span / timedelta(days=1)
    return f"{days:g} day" + ("" if days == 1 else "s")
