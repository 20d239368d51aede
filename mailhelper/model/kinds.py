"""One table per kind: every fact about each action kind and each thread kind, in one place.

Every :class:`ActionKind` (a mail the assistant can send) has an :class:`ActionSpec` in
:data:`ACTIONS`, and every thread :class:`Kind` a :class:`KindSpec` in :data:`KINDS`. The
tables are built by a ``match`` over the enum that ends in ``assert_never``, so an enum member
without an entry fails the type check, and the import (:func:`_check`) as well. The rest of the
package asks these tables instead of keeping its own lists::

    >>> ACTIONS[ActionKind.FOLLOW_UP].send_makes
    <ActionKind.NUDGE: 'nudge'>
    >>> ACTIONS[ActionKind.THANK_YOU].audience, ACTIONS[ActionKind.THANK_YOU].ledger
    (<Audience.COUNTERPART: 'counterpart'>, <LedgerEffect.THANKS_SENT: 'thanks_sent'>)
    >>> KINDS[Kind.NOTE].repeat_reminder, KINDS[Kind.NOTE].answered_by
    (<ActionKind.NOTE_REMINDER: 'note_reminder'>, <AnsweredBy.NOBODY: 'nobody'>)

Adding a thread kind means: its member of :class:`Kind`, its case in :func:`kind_spec`, the
cases ``mypy`` then asks for (each ``match thread.kind`` in :mod:`mailhelper.decide.plan` and
:mod:`mailhelper.compose.render`), its templates and its tests. Adding an action kind: its member of
:class:`ActionKind`, its case in :func:`action_spec` and its three templates
(``<kind>.subject.j2``, ``.txt.j2``, ``.html.j2``).

Pure: this module imports nothing of the package (:mod:`mailhelper.model.values` re-exports the
enums and :data:`COUNTERPART_ACTIONS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import assert_never


class Kind(StrEnum):
    """What a thread is: the owner's ask, someone's offer, or a note to self (owner mail with
    no recipient but the assistant: it comes back to the owner, and nobody else hears of it)."""

    ASK = "ask"
    OFFER = "offer"
    NOTE = "note"


class ActionKind(StrEnum):
    """Every mail the assistant can send; each has its own template."""

    RECEIPT = "receipt"  # to the owner: what I understood, when I will act
    FOLLOW_UP = "follow_up"  # to the owner: your ask is unanswered, here is a draft
    OFFER_FOLLOW_UP = "offer_follow_up"  # to the owner: tell them exactly what would help
    CLOSING_NOTE = "closing_note"  # to the owner: last word on an unanswered ask
    NUDGE = "nudge"  # to the counterpart: polite follow-up in thread
    THANK_YOU_DRAFT = "thank_you_draft"  # to the owner: a thank-you ready to send
    THANK_YOU = "thank_you"  # to the counterpart: the thank-you itself
    #: to the counterpart: the owner's own words (or the return-the-favour draft), on their
    #: ``send`` to an offer reminder or a return-the-favour reminder
    LETTER = "letter"
    RETURN_FAVOR = "return_favor"  # to the owner: remember who helped you
    NOTE_REMINDER = "note_reminder"  # to the owner: their note to self, back at its time
    CHECK_IN = "check_in"  # to the owner: a repeating ask's time to check in, with a draft
    DIGEST = "digest"  # to the owner: open items and the ledger
    HELP = "help"  # to the owner: the commands (also the answer to an unknown command)
    COMMAND_REPLY = "command_reply"  # to the owner: what a command did
    ERROR_NOTICE = "error_notice"  # to the owner: a mail could not be understood or sent


class Audience(StrEnum):
    """Whom a mail goes to: the owner, or the counterpart(s) (with the owner in copy)."""

    OWNER = "owner"
    COUNTERPART = "counterpart"


class LedgerEffect(StrEnum):
    """What a sent mail of the kind counts as in the help ledger."""

    NONE = "none"
    #: a thank-you that went to the counterpart
    THANKS_SENT = "thanks_sent"
    #: a thank-you mailed to the owner as a draft (in ``draft`` mode the whole of the job)
    THANKS_DRAFTED = "thanks_drafted"
    #: a letter the owner had sent from a return-the-favour reminder (``about:
    #: return_favor`` in its data; never the reminder itself)
    FAVOUR_RETURNED = "favour_returned"


@dataclass(frozen=True)
class ActionSpec:
    """The facts about one :class:`ActionKind`."""

    audience: Audience
    #: Planned ahead at a due time (a thread's schedule, the digest's rule, a daily notice).
    scheduled: bool
    #: Sent at once: in answer to a mail, or on the owner's command (``send``, ``status``).
    on_demand: bool
    #: What the mail is called in text for people: status table, calendar, dry runs.
    words: str
    #: How an error notice names the mail when it could not be sent.
    mail_name: str
    #: The mail holds a draft that ``send`` would send as it is (the templates' flag).
    sendable_draft: bool = False
    #: The kind of mail the owner's ``send`` in answer to this one makes (None: nothing).
    send_makes: ActionKind | None = None
    ledger: LedgerEffect = LedgerEffect.NONE

    @property
    def to_counterpart(self) -> bool:
        return self.audience is Audience.COUNTERPART


def action_spec(kind: ActionKind) -> ActionSpec:
    """The entry of ``kind``; a missing case fails ``mypy`` (and the import)."""
    owner, them = Audience.OWNER, Audience.COUNTERPART
    match kind:
        case ActionKind.RECEIPT:
            return ActionSpec(owner, False, True, "receipt", "a receipt")
        case ActionKind.FOLLOW_UP:
            return ActionSpec(owner, True, False, "reminder", "a follow-up reminder",
                              sendable_draft=True, send_makes=ActionKind.NUDGE)
        case ActionKind.OFFER_FOLLOW_UP:
            # Its draft has blanks: ``send`` takes the owner's own words only.
            return ActionSpec(owner, True, False, "reminder", "a reminder about an offer",
                              send_makes=ActionKind.LETTER)
        case ActionKind.CLOSING_NOTE:
            return ActionSpec(owner, True, False, "closing note", "a closing note")
        case ActionKind.NUDGE:
            return ActionSpec(them, True, True, "follow-up to them", "the follow-up")
        case ActionKind.THANK_YOU_DRAFT:
            return ActionSpec(owner, True, False, "thank-you draft", "a thank-you draft",
                              sendable_draft=True, send_makes=ActionKind.THANK_YOU,
                              ledger=LedgerEffect.THANKS_DRAFTED)
        case ActionKind.THANK_YOU:
            return ActionSpec(them, True, True, "thank-you to them", "the thank-you",
                              ledger=LedgerEffect.THANKS_SENT)
        case ActionKind.LETTER:
            return ActionSpec(them, False, True, "your letter to them", "your letter",
                              ledger=LedgerEffect.FAVOUR_RETURNED)
        case ActionKind.RETURN_FAVOR:
            return ActionSpec(owner, True, False, "return-the-favour reminder",
                              "a return-the-favour reminder", send_makes=ActionKind.LETTER)
        case ActionKind.NOTE_REMINDER:
            return ActionSpec(owner, True, False, "note back to you", "your note back to you")
        case ActionKind.CHECK_IN:
            return ActionSpec(owner, True, False, "check-in reminder", "a check-in reminder",
                              sendable_draft=True, send_makes=ActionKind.NUDGE)
        case ActionKind.DIGEST:
            # On the digest's rule, and at once on ``status``.
            return ActionSpec(owner, True, True, "digest", "your digest")
        case ActionKind.HELP:
            return ActionSpec(owner, False, True, "help", "the help mail")
        case ActionKind.COMMAND_REPLY:
            return ActionSpec(owner, False, True, "answer to a command",
                              "the answer to your command")
        case ActionKind.ERROR_NOTICE:
            # At once for a mail not understood; the daily summary of others' mail filed as
            # errors and the notice of a failed send are keyed as scheduled ones.
            return ActionSpec(owner, True, True, "notice", "a notice")
        case _:
            assert_never(kind)


class AnsweredBy(StrEnum):
    """What answers a thread of the kind."""

    #: Each counterpart's own reply, per person; the thread is answered once all have.
    COUNTERPARTS = "counterparts"
    #: The owner taking it up: their own mail to the counterpart, or ``send`` with their words.
    OWNER = "owner"
    #: Nothing: nobody else is on it.
    NOBODY = "nobody"


@dataclass(frozen=True)
class KindSpec:
    """The facts about one thread :class:`Kind`."""

    #: Its timings: ``schedules.<section>`` in the config
    #: (:class:`mailhelper.model.settings.Schedules`).
    schedule_section: str
    #: The config key under ``tags`` with the words that make a mail this kind (``[offer]``,
    #: ``#offer``, ``helper+offer@``); None: no tag word makes it.
    tag_words: str | None
    answered_by: AnsweredBy
    #: The reminders its schedule sends while it is open (nudges go to the counterparts).
    reminders: tuple[ActionKind, ...]
    #: The reminder of each occurrence when it repeats (an RRULE).
    repeat_reminder: ActionKind
    #: The digest's section (:data:`mailhelper.decide.digest.SECTIONS`) that lists it while open.
    digest_section: str
    #: The status table's group of open threads of the kind.
    status_group: str
    #: How the calendar names the thread a reminder is about ("your ask to Jane").
    calendar_words: str
    #: ``decline`` applies (an offer not taken up, thanked all the same).
    declinable: bool = False


def kind_spec(kind: Kind) -> KindSpec:
    """The entry of ``kind``; a missing case fails ``mypy`` (and the import)."""
    match kind:
        case Kind.ASK:
            return KindSpec(
                "ask", "ask", AnsweredBy.COUNTERPARTS,
                (ActionKind.FOLLOW_UP, ActionKind.NUDGE, ActionKind.CLOSING_NOTE),
                ActionKind.CHECK_IN, "asks", "Waiting for an answer", "ask to")
        case Kind.OFFER:
            return KindSpec(
                "offer", "offer", AnsweredBy.OWNER, (ActionKind.OFFER_FOLLOW_UP,),
                ActionKind.CHECK_IN, "offers",
                "Offers waiting on you: tell them exactly what would help", "offer from",
                declinable=True)
        case Kind.NOTE:
            # An open note is listed with the offers in the digest, as it was before this
            # table; a section of its own would change the digest's words.
            return KindSpec(
                "note", None, AnsweredBy.NOBODY, (ActionKind.NOTE_REMINDER,),
                ActionKind.NOTE_REMINDER, "offers", "Notes to self", "note")
        case _:
            assert_never(kind)


ACTIONS: dict[ActionKind, ActionSpec] = {kind: action_spec(kind) for kind in ActionKind}
KINDS: dict[Kind, KindSpec] = {kind: kind_spec(kind) for kind in Kind}


def _check() -> None:
    """Refuse tables that contradict themselves; run at import."""
    problems = []
    for kind, spec in ACTIONS.items():
        if not (spec.scheduled or spec.on_demand):
            problems.append(f"{kind.value}: neither scheduled nor sent on demand")
        made = spec.send_makes
        if made is not None and not (ACTIONS[made].to_counterpart and ACTIONS[made].on_demand):
            problems.append(f"{kind.value}: send makes {made.value}, not a mail to them on demand")
        if spec.sendable_draft and made is None:
            problems.append(f"{kind.value}: a sendable draft that send makes nothing of")
    for thread_kind, kspec in KINDS.items():
        for reminder in (*kspec.reminders, kspec.repeat_reminder):
            if not ACTIONS[reminder].scheduled:
                problems.append(f"{thread_kind.value}: reminder {reminder.value} is not scheduled")
    if problems:
        raise RuntimeError("mailhelper.model.kinds: " + "; ".join(problems))


_check()

#: Actions that go to the counterpart rather than to the owner.
COUNTERPART_ACTIONS = frozenset(k for k, s in ACTIONS.items() if s.to_counterpart)
#: A thank-you to the counterpart or its draft to the owner.
THANKS = frozenset(k for k, s in ACTIONS.items()
                   if s.ledger in (LedgerEffect.THANKS_SENT, LedgerEffect.THANKS_DRAFTED))


#: The key of every immediate action begins so: an answer to the mail it names.
ANSWER_PREFIX = "msg/"
#: ...and an action the owner's ``send`` made has this in its key.
SEND_MARK = "/send/"


def answer_key(message_id: str, what: str) -> str:
    """The key of the answer (``what``: its kind) to the mail ``message_id``: the same mail seen
    twice gives the same key, so it is answered once.

    >>> answer_key("m1@example.org", "receipt")
    'msg/m1@example.org/receipt'
    """
    return f"{ANSWER_PREFIX}{message_id}/{what}"


def send_key(thread_id: int, kind: ActionKind, mail: str) -> str:
    """The key of the mail ``send`` makes in answer to the draft ``mail`` (its Message-ID):
    a second ``send`` to the same draft sends nothing.

    >>> send_key(7, ActionKind.NUDGE, "d@example.org")
    't7/nudge/send/d@example.org'
    """
    return f"t{thread_id}/{kind.value}{SEND_MARK}{mail}"


def is_scheduled_key(kind: ActionKind, key: str) -> bool:
    """Whether an action of ``kind`` keyed ``key`` is a scheduled one (planned ahead, re-planned
    with its thread, held by a pause) rather than one sent at once. The table decides for a kind
    that only comes one way; for one that comes both ways the key tells (:func:`answer_key`,
    :func:`send_key`).

    >>> is_scheduled_key(ActionKind.NUDGE, "t7/nudge/20261203T090000Z/1")
    True
    >>> is_scheduled_key(ActionKind.NUDGE, send_key(7, ActionKind.NUDGE, "d@example.org"))
    False
    """
    spec = ACTIONS[kind]
    if not spec.scheduled:
        return False
    if not spec.on_demand:
        return True
    return not key.startswith(ANSWER_PREFIX) and SEND_MARK not in key
