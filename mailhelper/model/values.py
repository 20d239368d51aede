"""The plain values that flow through mailhelper: mail, threads, events and actions.

Nothing here does I/O. Every other module takes and returns these values, so a test can build
them by hand::

    >>> Address("jane@example.com", "Jane Doe").formatted()
    'Jane Doe <jane@example.com>'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

# The kinds and their table live in mailhelper.model.kinds; they are named here too, with the
# other plain values.
from mailhelper.model.kinds import COUNTERPART_ACTIONS as COUNTERPART_ACTIONS
from mailhelper.model.kinds import KINDS, AnsweredBy
from mailhelper.model.kinds import ActionKind as ActionKind
from mailhelper.model.kinds import Kind as Kind


@dataclass(frozen=True, order=True)
class Address:
    """One mailbox: a bare lower-case address and the display name, RFC 2047 decoded."""

    email: str
    name: str = ""

    def formatted(self) -> str:
        """The address as a header would show it, quoting the name where RFC 5322 needs it.

            >>> Address("jane@example.org", "Doe, Jane").formatted()
            '"Doe, Jane" <jane@example.org>'
        """
        if not self.name:
            return self.email
        # Imported here: the header registry is 10 ms of a cron poll's start-up, which never
        # formats an address.
        from email.headerregistry import Address as _HeaderAddress

        local, _, domain = self.email.rpartition("@")
        try:
            return str(_HeaderAddress(display_name=self.name, username=local, domain=domain))
        except (ValueError, IndexError):
            return self.email


@dataclass(frozen=True)
class Forwarded:
    """The original message found inside a forward (message/rfc822 part or inline block)."""

    from_: Address | None
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    subject: str = ""
    date: datetime | None = None
    message_id: str | None = None
    body: str = ""
    #: An attached original's In-Reply-To and References (an inline one has none).
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mail:
    """One parsed message. Built by :func:`mailhelper.read.parse.parse_mail`; never raises later.

    Message-IDs are stored without angle brackets. ``headers`` keeps every header that the
    classification needs (lower-case names, each with all its values, decoded to str).
    """

    message_id: str
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    from_: Address | None = None
    sender: Address | None = None
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    delivered_to: tuple[Address, ...] = ()
    subject: str = ""
    clean_subject: str = ""
    date: datetime | None = None
    text: str = ""
    reply_text: str = ""
    forwarded: Forwarded | None = None
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    content_hash: str = ""
    size: int = 0
    defects: tuple[str, ...] = ()

    def header(self, name: str) -> str | None:
        """The first value of a header, or None."""
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def recipients(self) -> tuple[Address, ...]:
        """To, Cc, Bcc and the envelope recipients (:attr:`delivered_to`), in that order."""
        return self.to + self.cc + self.bcc + self.delivered_to

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Every Message-ID this mail names: its own, In-Reply-To and References."""
        return (self.message_id, *self.in_reply_to, *self.references)


class ThreadState(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    DONE = "done"
    DECLINED = "declined"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


#: States in which nothing more happens to a thread except already-due thanks and favours.
CLOSED_STATES = frozenset({ThreadState.EXPIRED, ThreadState.CANCELLED})


@dataclass(frozen=True)
class Answer:
    """One counterpart's answer to a thread: who, when the assistant saw it, and whether it
    is really theirs (see :class:`~mailhelper.decide.events.CounterpartReply` ``trusted``): only
    then
    may ``thank_you.mode: send`` thank them directly."""

    email: str
    at: datetime
    trusted: bool = False
    excerpt: str = ""


@dataclass(frozen=True)
class Thread:
    """An ask or an offer the assistant tracks for one owner."""

    id: int
    kind: Kind
    state: ThreadState
    subject: str
    owner: Address
    counterparts: tuple[Address, ...]
    created: datetime
    root_message_id: str
    last_owner_activity: datetime
    #: When the thread became answered: for an ask, when the last counterpart answered.
    answered_at: datetime | None = None
    closed_at: datetime | None = None
    excerpt: str = ""
    reply_excerpt: str = ""
    away_until: datetime | None = None
    follow_up_at: datetime | None = None  # the next reminder, when a tag or snooze set it
    snoozed_until: datetime | None = None  # no owner mail of this thread before then
    #: The out-of-office's return date was later than the assistant waits and was cut short.
    away_capped: bool = False
    #: Each counterpart's answer, in the order they came; a counterpart not here is silent.
    answers: tuple[Answer, ...] = ()
    #: The RFC 5545 RRULE a note or an ask repeats on (``FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;
    #: BYMINUTE=0;BYSECOND=0``), counted from ``created`` in the owner's zone; None: no repeat.
    repeat: str | None = None
    #: When the ask or offer was written, as the forwarded original's Date says (None: at
    #: ``created``). Only words about when the person wrote use it; schedules count from
    #: ``created`` (SPEC.md: times count from when the assistant first saw the message).
    written_at: datetime | None = None
    #: When the owner last followed up in the thread (their own mail with the assistant in
    #: copy), or None: what reminders tell them happened since the ask.
    followed_up_at: datetime | None = None
    #: How many yeses the owner expected (``expect 2`` on the ask's first line); None: unsaid.
    expected: int | None = None

    @property
    def counterpart(self) -> Address | None:
        return self.counterparts[0] if self.counterparts else None

    @property
    def replies(self) -> tuple[Answer, ...]:
        """The answers, in order. A thread built with ``answered_at`` and no ``answers`` (by
        hand, as a test does) counts as answered by every counterpart then, untrusted."""
        if (self.answers or self.answered_at is None
                or KINDS[self.kind].answered_by is not AnsweredBy.COUNTERPARTS):
            return self.answers
        return tuple(Answer(c.email, self.answered_at, False, self.reply_excerpt)
                     for c in self.counterparts)

    def answer_from(self, email: str) -> Answer | None:
        return next((a for a in self.replies if a.email == email), None)

    @property
    def answered(self) -> tuple[Address, ...]:
        """The counterparts who answered, in the order of the counterparts."""
        who = {a.email for a in self.replies}
        return tuple(c for c in self.counterparts if c.email in who)

    @property
    def silent(self) -> tuple[Address, ...]:
        """The counterparts who have not answered (yet)."""
        who = {a.email for a in self.replies}
        return tuple(c for c in self.counterparts if c.email not in who)


class ActionStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # the attempt is recorded, the server's answer is not
    SENT = "sent"
    CANCELLED = "cancelled"
    FAILED = "failed"
    SKIPPED = "skipped"  # its time had passed when a backfill planned it: never sent


@dataclass(frozen=True)
class Action:
    """One mail to send at ``due``. ``key`` is unique and deterministic per thread and purpose,
    so planning the same thing twice yields the same action and the same Message-ID."""

    key: str
    kind: ActionKind
    due: datetime
    thread_id: int | None = None
    recipients: tuple[Address, ...] = ()
    data: Mapping[str, str] = field(default_factory=dict)
    status: ActionStatus = ActionStatus.PENDING
    attempts: int = 0
    id: int | None = None
    sent_at: datetime | None = None
    next_attempt: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class PersonFigures:
    """The help ledger for one counterpart, or for everyone (``person`` is None)."""

    person: Address | None
    asks_made: int = 0
    asks_answered: int = 0
    median_hours_to_answer: float | None = None
    offers_received: int = 0
    thanks_sent: int = 0
    favours_returned: int = 0
    #: Threads whose thank-you went to the owner as a draft only (``thanks_sent``: threads
    #: whose thank-you went to the counterpart).
    thanks_drafted: int = 0
    #: Asks counted in ``asks_answered`` that some of the people asked have not answered
    #: (0 in one counterpart's figures: an ask is answered by them or not).
    asks_partly: int = 0


@dataclass(frozen=True)
class Ledger:
    overall: PersonFigures
    people: tuple[PersonFigures, ...] = ()


def thanked_people(thread: Thread, kind: ActionKind, data: Mapping[str, str],
                   recipients: tuple[Address, ...]) -> set[str]:
    """The counterparts a thank-you (sent) or thank-you draft (mailed to the owner) covers:
    its ``people``; a thank-you from before per-person answers covers its recipients, a draft
    from then every counterpart of the thread."""
    if data.get("people"):
        return set(data["people"].split(","))
    if kind is ActionKind.THANK_YOU:
        return {a.email for a in recipients}
    return {c.email for c in thread.counterparts}


@dataclass(frozen=True)
class Pause:
    """One owner's pause: asked for at ``since``, ending at ``until``; what it held goes out
    at ``release`` (:func:`mailhelper.decide.pause.release_time`)."""

    owner: str
    since: datetime
    until: datetime
    release: datetime

    def holds(self, now: datetime) -> bool:
        """Whether the pause still holds mail back at ``now`` (until its release)."""
        return now.astimezone(UTC) < self.release.astimezone(UTC)


#: How long before the first start mail still counts as new: a new user's first cc'd ask,
#: sent while setting the assistant up, is answered.
GRACE = timedelta(days=1)


@dataclass(frozen=True)
class FirstStart:
    """The first time a state file read a folder: what was there then is judged old or not
    against :attr:`cutoff`, for good (the rule is :mod:`mailhelper.decide.backlog`'s).

        >>> s = FirstStart(datetime(2026, 12, 7, 9, tzinfo=UTC), uidvalidity=7, boundary=501)
        >>> s.cutoff.isoformat()
        '2026-12-06T09:00:00+00:00'
        >>> FirstStart.from_json(s.to_json()) == s
        True
    """

    at: datetime
    uidvalidity: int
    boundary: int  # the folder's UIDNEXT at the first start: UIDs from here on came later

    @property
    def cutoff(self) -> datetime:
        return self.at - GRACE

    def was_there(self, uid: int, uidvalidity: int) -> bool:
        """Whether the message may have been in the folder at the first start (after a
        UIDVALIDITY change every UID is new, so every message may have been)."""
        return uidvalidity != self.uidvalidity or uid < self.boundary

    def to_json(self) -> str:
        return json.dumps({"at": self.at.isoformat(), "uidvalidity": self.uidvalidity,
                           "boundary": self.boundary})

    @classmethod
    def from_json(cls, text: str) -> FirstStart:
        data = json.loads(text)
        return cls(datetime.fromisoformat(data["at"]), int(data["uidvalidity"]),
                   int(data["boundary"]))
