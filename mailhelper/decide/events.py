"""What one incoming mail means: the output of :mod:`mailhelper.decide.classify`.

Each event names the mail it came from (``message_id``) so the store can record it against the
thread; planning (:mod:`mailhelper.decide.plan`) turns an event into a new thread state and actions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from mailhelper.model.values import ActionKind, Address, Kind

if TYPE_CHECKING:  # annotations only: a cycle with nothing new never reads a command
    from mailhelper.decide.commands import CommandName, NumberedCommand


@dataclass(frozen=True)
class NewThread:
    """The owner started an ask, an offer or a note to self. ``problem`` set means it could
    not be understood: no thread is made, and the owner is told why. ``left_out`` names the
    people on the mail who cannot be written to, as (address, why), and are not
    counterparts: the owner is told about them either way."""

    message_id: str
    kind: Kind
    owner: Address
    counterparts: tuple[Address, ...]
    subject: str
    thread_ids: tuple[str, ...]
    excerpt: str = ""
    when: datetime | None = None
    tag: str | None = None
    problem: str | None = None
    left_out: tuple[tuple[str, str], ...] = ()
    #: The RRULE the thread repeats on (``when`` is then its first occurrence), or None.
    repeat: str | None = None
    #: When the person wrote what the thread is about, when a forwarded original's own Date
    #: says so and it is earlier than the forward was seen; None: when it was seen.
    written: datetime | None = None
    #: ``expect 2`` on the first line: how many yeses the owner expects.
    expected: int | None = None


@dataclass(frozen=True)
class OwnerFollowUp:
    """The owner wrote again in a tracked thread (the assistant in copy). ``answers`` are the
    counterparts' answers the owner's mail shows second-hand (it quotes them, or its
    References name their mail): each is an answer too, never a trusted one (the owner's
    quote is not the counterpart's own mail), at the time it was written when known."""

    message_id: str
    thread_id: int
    excerpt: str = ""
    answers: tuple[CounterpartReply, ...] = ()


@dataclass(frozen=True)
class CounterpartReply:
    """A counterpart of a tracked thread answered it; ``forwarded_by_owner`` when the owner
    forwarded the answer. ``trusted`` when the answer is really theirs: it names a message of
    the thread (In-Reply-To/References) and comes from their address, or it passed the trusted
    Authentication-Results check, or the owner forwarded it. An untrusted answer (matched by
    subject alone) stops reminders, but its thank-you is only ever a draft to the owner."""

    message_id: str
    thread_id: int
    sender: Address
    excerpt: str = ""
    by_fallback: bool = False
    forwarded_by_owner: bool = False
    trusted: bool = False
    #: When the counterpart wrote it, when known and earlier than the moment it was seen
    #: (the date of the owner's quote of it); None: when it was seen.
    at: datetime | None = None
    #: The other address the answer came from (a forward of the counterpart's mail from
    #: their private address): recorded as theirs, for matching only, never written to.
    other_address: str | None = None


@dataclass(frozen=True)
class OwnerThanked:
    """The owner thanked ``person`` by hand, after their answer: a message in the owner's Sent
    folder (seen by :mod:`mailhelper.engine.watch`) to a counterpart who answered the thread. No
    thank-you comes for them, and the ledger counts the owner's own as sent."""

    message_id: str
    thread_id: int
    person: Address
    excerpt: str = ""


@dataclass(frozen=True)
class OutOfOffice:
    """A counterpart's auto-reply; ``until`` is the return date it names, if any."""

    message_id: str
    thread_id: int
    sender: Address
    until: datetime | None
    capped: bool = False  # the mail named a later date, cut to the longest wait


@dataclass(frozen=True)
class OwnerCommand:
    """The owner's reply to assistant mail. ``replied_kind`` is the kind of the mail replied to
    and ``replied_to`` its Message-ID (None when the command came in a fresh mail, e.g.
    ``status``): two ``send`` replies to one draft send it once."""

    message_id: str
    owner: Address
    name: CommandName
    thread_id: int | None
    replied_kind: ActionKind | None = None
    until: datetime | None = None
    line: str = ""
    replied_to: str | None = None
    #: Why a command that names a time could not be taken (``pause 2 years``): the answer
    #: says so.
    problem: str | None = None
    #: ``send`` with the owner's own words: they go instead of the draft.
    text: str = ""


@dataclass(frozen=True)
class DigestCommands:
    """The owner's reply to a digest: one command per line, each naming an item by the number
    that digest gave it (``send 2``, ``done 3``). ``replied_to`` is the digest's Message-ID,
    under which its numbering is kept."""

    message_id: str
    owner: Address
    replied_to: str
    commands: tuple[NumberedCommand, ...]
    #: The owner's reply's subject ("Re: Your digest: …"): the answer threads under it.
    subject: str = ""


@dataclass(frozen=True)
class Ignored:
    """Nothing to do; ``reason`` is logged. ``notify_owner`` for mail an owner sent that could
    not be understood (the owner is always answered); never for strangers."""

    message_id: str
    reason: str
    notify_owner: Address | None = None


#: The events :func:`mailhelper.decide.plan.apply` decides on (one thread, or none); the store
#: starts a :class:`NewThread` and spreads :class:`DigestCommands` over the items they name.
ThreadEvent = (OwnerFollowUp | CounterpartReply | OutOfOffice | OwnerCommand | Ignored
               | OwnerThanked)
Event = NewThread | DigestCommands | ThreadEvent
