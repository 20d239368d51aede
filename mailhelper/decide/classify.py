"""What an incoming mail means for the assistant: a pure function of the mail and what is known.

The rules, in order (SPEC.md "How a person uses it" and "Safety rules" 1 and 2):

1. The assistant's own mail coming back is a loop: ignored. Its own mail is mail From the
   assistant's address (or a plus-form of it), or mail with a Message-ID the assistant made
   (``send_as: owner`` sends From the owner with the assistant in Cc).
2. Auto-generated mail (RFC 3834 and the other signs) is never a reply and never answered; a
   counterpart's out-of-office that names a return date is an :class:`OutOfOffice` event.
3. Mail From an owner address (passing the trusted Authentication-Results check when
   ``require_auth`` is on) may create a thread or run a command. Owner mail failing the check is
   ignored and logged like a stranger's, and nobody is told.
4. Anyone else's mail can only be a reply to a thread that exists, and only from one of that
   thread's counterparts: mail from any other address never answers a thread, whatever it
   references (it is ignored and logged). A counterpart's answer is *trusted* when it is
   really theirs: its In-Reply-To/References name a message of the thread, or (with
   ``require_auth``) it passes the trusted Authentication-Results check for their address.
   One matched by subject alone (SPEC.md's fallback) still answers the thread, untrusted:
   reminders stop, but the thank-you goes to the owner as a draft, never to the counterpart.

Owner mail is, in order: a **command** when it replies (In-Reply-To or References) to mail the
assistant sent and goes to nobody but owners and the assistant (a reply-all that also goes to
the counterpart is the owner writing in the thread, not a command); a **counterpart reply**
when it forwards a tracked counterpart's mail; the owner's **follow-up** when it belongs to a
tracked thread (and, when it quotes a counterpart or names their unseen mail, that
counterpart's untrusted answer too: an answer that reached only the owner); else a **new
thread**: an ask or an offer as tagged, or a **note** to self when it goes to nobody but the
assistant (and the owner themselves) and no tag names an ask or an offer (SPEC.md 7: it comes
back to the owner alone; tagged ``ask`` with nobody to ask, the owner is told instead).

An unknown command in answer to the list of commands (the assistant's answer to an unknown
command) is not answered again: the list would only repeat, and an auto-responder that marks
nothing would otherwise loop with the assistant.

    >>> # see tests/test_classify.py for worked examples of every branch
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, time, tzinfo
from typing import Protocol, TypedDict

from mailhelper.decide.commands import parse_command, parse_numbered
from mailhelper.decide.events import (
    CounterpartReply,
    DigestCommands,
    Event,
    Ignored,
    NewThread,
    OutOfOffice,
    OwnerCommand,
    OwnerFollowUp,
)
from mailhelper.decide.tags import read_tag, subject_without_tag
from mailhelper.decide.tap import find_token
from mailhelper.decide.timewords import DateOrder
from mailhelper.model.addresses import check, fold
from mailhelper.model.message_id import looks_like_ours
from mailhelper.model.settings import Settings, Tags
from mailhelper.model.values import ActionKind, Address, Kind, Mail, Thread
from mailhelper.read import authresults
from mailhelper.read.autoreply import auto_generated, bounded_return_date, is_out_of_office
from mailhelper.read.forwards import quoted_authors
from mailhelper.read.names import read_name
from mailhelper.read.parse import clean_subject, subject_prefix
from mailhelper.read.replytext import RECAP_CHARS, recap

#: How much of a mail's own words a thread keeps to quote back in reminders.
EXCERPT_CHARS = RECAP_CHARS
#: The most people one ask or offer is tracked with. A mail to more is a mass mailing, not a
#: request for help: thanking and nudging each of them would be spam in the owner's name.
MAX_COUNTERPARTS = 100


class ThreadIndex(Protocol):
    """The questions classification asks of what the assistant already knows (the store)."""

    def thread_for(self, message_ids: tuple[str, ...]) -> Thread | None:
        """The thread any of these Message-IDs belongs to."""

    def sent_mail(self, message_ids: tuple[str, ...]) -> tuple[int | None, ActionKind] | None:
        """(thread id, action kind) of the assistant mail among these Message-IDs, if any."""

    def tapped_mail(
        self, token: str, owner: str
    ) -> tuple[str, tuple[int | None, ActionKind]] | None:
        """(Message-ID, (thread id, kind)) of the assistant's mail to ``owner`` that a
        ``mailto:`` link's token names (see :mod:`mailhelper.decide.tap`)."""

    def thread_by_subject(self, subject: str, participant: str) -> Thread | None:
        """An unfinished thread with this clean subject that has this counterpart."""

    def threads_by_subject(self, subject: str) -> tuple[Thread, ...]:
        """The unfinished threads with this clean subject."""

    def person_for(self, address: str) -> str | None:
        """The counterpart address that ``address`` is a recorded other address of."""


@dataclass(frozen=True)
class Context:
    settings: Settings
    index: ThreadIndex
    now: datetime


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """What a mail said, to quote back in reminders and drafts: see
    :func:`mailhelper.read.replytext.recap` (no greeting, sign-off or quoted history; whole
    sentences, at most ``limit`` characters)."""
    return recap(text, limit)


def is_assistant_address(email: str, assistant: Address) -> bool:
    """True for the assistant's address and its plus-forms (``helper+offer@example.com``)."""
    local, _, domain = fold(email).rpartition("@")
    a_local, _, a_domain = fold(assistant.email).rpartition("@")
    return domain == a_domain and local.split("+", 1)[0] == a_local


def owner_of(mail: Mail, settings: Settings) -> tuple[Address | None, str | None]:
    """The owner who sent this mail, or (None, why not) when it is not an owner's.

    The owner's name is ``owners[].name``; a config that gives none takes the display name
    the owner's own mail carries, so that letters written for them can name them."""
    if mail.from_ is None:
        return None, None
    owner = settings.owner_for(mail.from_.email)
    if owner is None:
        return None, None
    if not owner.name and mail.from_.name:
        owner = Address(owner.email, mail.from_.name)
    if settings.require_auth:
        verdicts = mail.headers.get("authentication-results", ())
        if not authresults.passes(verdicts, settings.trusted_authserv_id or "", owner.email):
            return None, (
                f"From an owner address ({owner.email}) without a passing "
                f"Authentication-Results verdict from {settings.trusted_authserv_id}"
            )
    return owner, None


class TimeWords(TypedDict):
    """How an owner's time words are read (keyword arguments of read_tag and parse_command)."""

    zone: tzinfo
    default_time: time
    date_order: DateOrder | None


def time_words(settings: Settings, owner: Address | None) -> TimeWords:
    """The owner's zone and default time (``owners[].timezone``/``default_time`` where set,
    else the top-level ones) and the ``date_order``, for reading their tags and commands."""
    email = owner.email if owner else None
    return TimeWords(zone=settings.zone_for(email), default_time=settings.default_time_for(email),
                     date_order=settings.date_order)


def is_own_mail(mail: Mail, ctx: Context) -> bool:
    """Whether ``mail`` is one the assistant sent: From its address, or with its Message-ID."""
    assistant = ctx.settings.assistant
    if mail.from_ is not None and is_assistant_address(mail.from_.email, assistant):
        return True
    if looks_like_ours(mail.message_id, assistant.email.rpartition("@")[2]):
        return True
    return ctx.index.sent_mail((mail.message_id,)) is not None


def subject_tells_auto(mail: Mail, ctx: Context) -> bool:
    """Whether an out-of-office or bounce subject alone makes ``mail`` automatic.

    Not for an owner's new mail: "Away from the office: can you water my plants?" is a
    person's ask, and only headers can make it automatic. But an owner's mail answering the
    assistant's own with such a subject is their auto-responder, and never a command.
    """
    if mail.from_ is None or ctx.settings.owner_for(mail.from_.email) is None:
        return True
    return _replied_mail(mail, ctx.index) is not None


def classify(mail: Mail, ctx: Context) -> Event:
    """The one event this mail stands for."""
    settings = ctx.settings
    mid = mail.message_id
    if is_own_mail(mail, ctx):
        return Ignored(mid, "the assistant's own mail (loop)")

    auto = auto_generated(mail, by_subject=subject_tells_auto(mail, ctx))
    if auto is not None:
        return _auto_event(mail, auto, ctx)

    owner, refused = owner_of(mail, settings)
    if refused:
        return Ignored(mid, refused)
    if owner is not None:
        return _owner_event(mail, owner, ctx)
    return _stranger_event(mail, ctx)


def _auto_event(mail: Mail, reason: str, ctx: Context) -> Event:
    mid = mail.message_id
    if mail.from_ is not None and is_out_of_office(mail):
        thread = ctx.index.thread_for(mail.thread_ids[1:]) or _by_subject(
            mail.clean_subject, mail.from_.email, ctx
        )
        if thread is not None and is_counterpart(mail.from_.email, thread):
            until, capped = bounded_return_date(mail, ctx.now,
                                                ctx.settings.zone_for(thread.owner.email))
            return OutOfOffice(mid, thread.id, mail.from_, until, capped)
    return Ignored(mid, f"auto-generated ({reason})")


def _counterparts(mail: Mail, owner: Address, settings: Settings) -> tuple[Address, ...]:
    """Everyone the owner wrote to, less owners and the assistant, in header order."""
    seen: dict[str, Address] = {}
    for address in mail.to + mail.cc:
        email = address.email
        if not email or "@" not in email:
            continue
        if settings.owner_for(email) or is_assistant_address(email, settings.assistant):
            continue
        seen.setdefault(email, address)
    return tuple(seen.values())


def _forward_counterparts(mail: Mail, owner: Address, settings: Settings) -> tuple[Address, ...]:
    forwarded = mail.forwarded
    assert forwarded is not None
    sender = forwarded.from_
    if sender is not None and sender.email and settings.owner_for(sender.email) is None and not (
        is_assistant_address(sender.email, settings.assistant)
    ):
        return (sender,)
    # The owner forwarded their own message: the people they wrote to are the counterparts.
    seen: dict[str, Address] = {}
    for address in forwarded.to + forwarded.cc:
        if address.email and not settings.owner_for(address.email) and not is_assistant_address(
            address.email, settings.assistant
        ):
            seen.setdefault(address.email, address)
    return tuple(seen.values())


def _owner_event(mail: Mail, owner: Address, ctx: Context) -> Event:
    settings, index, mid = ctx.settings, ctx.index, mail.message_id
    words = time_words(settings, owner)
    replied = _replied_mail(mail, index)
    if replied is None and not mail.in_reply_to:
        # A tapped mailto: link carries no In-Reply-To; its subject's token names the mail.
        token = find_token(mail.subject)
        replied = index.tapped_mail(token, owner.email) if token else None
    if replied is not None and not _counterparts(mail, owner, settings):
        replied_to, (thread_id, kind) = replied
        command = parse_command(mail.reply_text or mail.text, ctx.now, **words)
        if kind is ActionKind.DIGEST and command.name not in ("status", "help"):
            # On the digest, commands name its numbered items, one per line.
            return DigestCommands(mid, owner, replied_to, parse_numbered(
                mail.reply_text or mail.text, ctx.now, **words), subject=mail.subject)
        if command.name == "unknown" and kind is ActionKind.HELP:
            return Ignored(mid, "an unknown command in answer to the list of commands: not "
                                "answered again (no loop with an auto-responder)")
        return OwnerCommand(mid, owner, command.name, thread_id, kind, command.until, command.line,
                            replied_to, problem=command.problem, text=command.text)

    if mail.forwarded is not None:
        forwarded = mail.forwarded
        known = index.thread_for(
            ((forwarded.message_id,) if forwarded.message_id else ()) + forwarded.references
            + mail.thread_ids[1:]
        )
        if known is None and forwarded.from_ is not None and forwarded.from_.email:
            known = _by_subject(
                clean_subject(forwarded.subject) or mail.clean_subject, forwarded.from_.email, ctx
            )
        if known is not None and forwarded.from_ is not None and is_counterpart(
            forwarded.from_.email, known
        ):
            # The owner vouches for what they forward: a trusted answer.
            return CounterpartReply(
                mid, known.id, forwarded.from_, excerpt(forwarded.body), forwarded_by_owner=True,
                trusted=True,
            )
        elsewhere = _answer_from_other_address(mail, known, ctx)
        if elsewhere is not None:
            return elsewhere

    known = index.thread_for(mail.thread_ids[1:])
    if known is None and _is_reply(mail):
        # The owner answering the counterpart's own mail (which the assistant may never have
        # seen, e.g. the original behind a forwarded offer): the same fallback as for the
        # counterpart's replies, subject plus a participant.
        for person in _counterparts(mail, owner, settings):
            known = _by_subject(mail.clean_subject, person.email, ctx)
            if known is not None:
                break
    if known is not None:
        return OwnerFollowUp(mid, known.id, excerpt(mail.reply_text or mail.text),
                             answers=_answers_shown(mail, known, owner, ctx))

    expected, mail = expect_line(mail)
    tag = read_tag(mail, settings.assistant, settings.tags, ctx.now, **words)
    if mail.forwarded is not None:
        counterparts = _forward_counterparts(mail, owner, settings)
        subject = clean_subject(mail.forwarded.subject) or mail.clean_subject
        body = mail.forwarded.body
    else:
        counterparts = _counterparts(mail, owner, settings)
        subject = mail.clean_subject
        body = mail.reply_text or mail.text

    commanding = False  # an answer to the assistant's own mail, not a note
    if not counterparts:
        command = parse_command(mail.reply_text or mail.text, ctx.now, **words)
        if command.name in ("status", "help", "pause", "resume"):
            return OwnerCommand(mid, owner, command.name, None, None, command.until,
                                command.line)
        if command.name == "unknown" and command.problem and re.match(
                r"\W*pause\b", command.line, re.IGNORECASE):
            # "pause 2 years" as a new mail: the owner learns why, as by reply.
            return OwnerCommand(mid, owner, "unknown", None, None, None, command.line,
                                problem=command.problem)
        # "cancel" in answer to assistant mail the state does not know (or a forged one):
        # a command gone astray, never a note that would bring "cancel" back tomorrow. A
        # fresh mail "Cancel the gym membership" is a note.
        domain = settings.assistant.email.rpartition("@")[2]
        # A tapped link's mail carries no In-Reply-To, only its token in the subject: a
        # command under a token that names no mail is a command gone astray too.
        answering = bool(mail.in_reply_to or mail.references or find_token(mail.subject))
        commanding = (command.name != "unknown" and answering
                      ) or any(looks_like_ours(m, domain) for m in mail.in_reply_to)
    counterparts, left_out = writable(counterparts)
    # A note to self: nobody but the assistant on it (the owner may copy themselves), and
    # no tag saying it is an ask or an offer, which would need someone to ask.
    note = (mail.forwarded is None and not counterparts and not left_out and tag.kind is None
            and not commanding and addressed_to_self(mail, owner, settings))
    problem = None
    if tag.problem:
        problem = tag.problem
    elif tag.unknown:
        problem = f"I did not recognise the tag \"{tag.unknown}\""
    elif note:
        pass
    elif not counterparts and left_out:
        problem = "I could not find anyone on the mail whom I can write to"
    elif not counterparts:
        problem = "I could not find who you asked: nobody but you and me is on the mail"
    elif len(counterparts) > MAX_COUNTERPARTS:
        problem = (f"it is addressed to {len(counterparts)} people; I track asks and offers "
                   f"to at most {MAX_COUNTERPARTS}")
        counterparts = counterparts[:MAX_COUNTERPARTS]
    ids = mail.thread_ids
    if mail.forwarded is not None and mail.forwarded.message_id:
        ids = (*ids, mail.forwarded.message_id)
    return NewThread(
        message_id=mid,
        kind=Kind.NOTE if note else tag.kind or Kind.ASK,
        owner=owner,
        counterparts=counterparts,
        subject=display_subject(subject, settings.tags),
        thread_ids=ids,
        excerpt=excerpt(body),
        when=tag.when,
        tag=tag.tag,
        problem=problem,
        left_out=left_out,
        repeat=tag.repeat if problem is None else None,
        written=_written(mail, ctx.now),
        expected=expected,
    )


def addressed_to_self(mail: Mail, owner: Address, settings: Settings) -> bool:
    """Whether the owner's ``mail`` goes to nobody but the assistant (any plus-form of it)
    and the owner themselves, in To, Cc, Bcc and the envelope: a note to self (SPEC.md 7)."""
    mine = fold(owner.email)
    return all(is_assistant_address(a.email, settings.assistant) or fold(a.email) == mine
               for a in mail.recipients)


def _written(mail: Mail, now: datetime) -> datetime | None:
    """When a forwarded original was written, by its own Date (an attached message's header,
    an inline block's date line, read in the forwarder's zone); None when the mail is no
    forward, the date is unreadable or naive, or it is not earlier than ``now`` (a date in
    the future is a wrong clock, not a fact)."""
    if mail.forwarded is None:
        return None
    date = mail.forwarded.date
    if date is None or date.tzinfo is None or date >= now:
        return None
    return date


_EXPECT = re.compile(r"(?i)^\s*expect(?:ing)?\s*:?\s*(\d{1,3})"
                     r"(?:\s+(?:yes(?:es|'s)?|people|answers?|repl(?:y|ies)))?\s*[.!]?\s*$")


def expect_line(mail: Mail) -> tuple[int | None, Mail]:
    """``expect 2`` (``expecting 3 yeses``) on the first line of the owner's own words: how
    many yeses they expect, and the mail without that line, so that tags and the excerpt
    read what follows it (``expect 2`` then ``offer`` is an offer)::

        >>> n, rest = expect_line(Mail("m@x", text="Expect 2\\nHi Jane, could you..."))
        >>> n, rest.text
        (2, 'Hi Jane, could you...')
    """
    text = mail.reply_text or mail.text
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    match = _EXPECT.match(lines[first]) if first is not None else None
    if first is None or match is None:
        return None, mail
    rest = "\n".join(lines[first + 1:]).lstrip("\n")
    if mail.reply_text:
        plain = mail.text.replace(lines[first], "", 1).lstrip("\n")
        return int(match[1]), replace(mail, reply_text=rest, text=plain)
    return int(match[1]), replace(mail, text=rest)


def _answers_shown(
    mail: Mail, thread: Thread, owner: Address, ctx: Context
) -> tuple[CounterpartReply, ...]:
    """The counterparts' answers an owner's mail in ``thread`` shows second-hand (issue:
    answers that reached only the owner's own mailbox), one a counterpart, untrusted:

    - its text quotes a counterpart: an attribution line naming their address over quoted
      text, or the first block of unquoted history (see
      :func:`mailhelper.read.forwards.quoted_authors`). The answer is dated as the quote says,
      never later than the owner's mail nor earlier than the thread (a backlog read late
      starts the thread after the answers were written);
    - else its References/In-Reply-To name a message the assistant has not seen whose
      Message-ID domain is the mail domain of exactly one counterpart (not the owner's own
      domain: the owner's own mail would look the same). Dated as the owner's mail.

    Anyone else quoted or referenced (a stranger, the owner) answers nothing.
    """
    latest = min(mail.date, ctx.now) if mail.date is not None else ctx.now
    found: dict[str, CounterpartReply] = {}
    zone = mail.date.tzinfo if mail.date is not None else None
    for person, written in quoted_authors(mail.text, zone):
        counterpart = _counterpart(person.email, thread)
        if counterpart is None or counterpart.email in found:
            continue
        at = max(min(written, latest), thread.created) if written is not None else latest
        found[counterpart.email] = CounterpartReply(mail.message_id, thread.id, counterpart,
                                                    at=at)
    owner_domain = fold(owner.email).rpartition("@")[2]
    for reference in dict.fromkeys((*mail.in_reply_to, *mail.references)):
        domain = fold(reference).rpartition("@")[2]
        if not domain or domain == owner_domain or ctx.index.thread_for((reference,)):
            continue
        if ctx.index.sent_mail((reference,)) is not None:
            continue
        same = [c for c in thread.counterparts if fold(c.email).rpartition("@")[2] == domain]
        if len(same) == 1 and same[0].email not in found:
            found[same[0].email] = CounterpartReply(mail.message_id, thread.id, same[0],
                                                    at=latest)
    return tuple(found.values())


def _answer_from_other_address(
    mail: Mail, known: Thread | None, ctx: Context
) -> CounterpartReply | None:
    """A forward by the owner of a counterpart's answer that came from another of their
    addresses (``jane.park@gmail.com`` for ``jane@acme.com``), or None.

    The thread is the one the original's Message-ID or the forward's References name
    (``known``), else an unfinished one with the original's subject when that subject says
    reply ("Re: ..."). The person is the counterpart the sender's address was recorded for
    earlier, else the one counterpart of that thread whose display name reads as the same
    name. The answer is theirs, from their known address (the other one is recorded, for
    matching only: it is never a recipient); untrusted, so a thank-you is only a draft.
    """
    forwarded = mail.forwarded
    assert forwarded is not None
    sender = forwarded.from_
    settings = ctx.settings
    if sender is None or not sender.email or settings.owner_for(sender.email) or (
        is_assistant_address(sender.email, settings.assistant)
    ):
        return None
    if known is not None:
        candidates: tuple[Thread, ...] = (known,)
    elif subject_prefix(forwarded.subject) == "reply":
        stripped = subject_without_tag(clean_subject(forwarded.subject), settings.tags).strip()
        candidates = ctx.index.threads_by_subject(stripped) if stripped else ()
    else:
        candidates = ()
    recorded = ctx.index.person_for(sender.email)
    name = read_name(sender.name).full.casefold() if sender.name else ""
    for thread in candidates:
        if mail.from_ is None or fold(thread.owner.email) != fold(mail.from_.email):
            continue  # another owner's thread: not this owner's to answer
        person = _counterpart(recorded, thread) if recorded else None
        if person is None and name:
            same = [c for c in thread.counterparts
                    if c.name and read_name(c.name, c.email).full.casefold() == name]
            person = same[0] if len(same) == 1 else None
        if person is not None:
            return CounterpartReply(mail.message_id, thread.id, person, excerpt(forwarded.body),
                                    forwarded_by_owner=True, other_address=fold(sender.email))
    return None


def _counterpart(email: str, thread: Thread) -> Address | None:
    """The thread's counterpart with this address (case folded as addresses compare)."""
    folded = fold(email)
    return next((c for c in thread.counterparts if fold(c.email) == folded), None)


def writable(
    people: tuple[Address, ...],
) -> tuple[tuple[Address, ...], tuple[tuple[str, str], ...]]:
    """``people`` split into those mail can go to, each address in its canonical form (see
    :func:`mailhelper.model.addresses.check`), and the others as (address, why not). This is the
    one door by which an address from mail becomes a recipient: an address no header or
    envelope can carry must not reach a due mail, where composing it would fail.

    >>> writable((Address("Jane@Example.org", "Jane"), Address("a..b@example.org")))
    ((Address(email='jane@example.org', name='Jane'),), \
(('a..b@example.org', 'its local part "a..b" is not a valid dot-atom (RFC 5322)'),))
    """
    kept: dict[str, Address] = {}
    refused: dict[str, str] = {}
    for person in people:
        verdict = check(person.email)
        if verdict.problem is None:
            kept.setdefault(verdict.email, Address(verdict.email, person.name))
        else:
            refused.setdefault(verdict.email, verdict.problem)
    return tuple(kept.values()), tuple(refused.items())


def _replied_mail(
    mail: Mail, index: ThreadIndex
) -> tuple[str, tuple[int | None, ActionKind]] | None:
    """(Message-ID, (thread id, kind)) of the assistant's mail this one answers: the one in
    In-Reply-To, else the latest of the References that the assistant sent."""
    for message_id in (*mail.in_reply_to, *reversed(mail.references)):
        found = index.sent_mail((message_id,))
        if found is not None:
            return message_id, found
    return None


def _stranger_event(mail: Mail, ctx: Context) -> Event:
    mid = mail.message_id
    sender = mail.from_
    if sender is None or not sender.email:
        return Ignored(mid, "no sender address")
    known = ctx.index.thread_for(mail.thread_ids[1:])
    if known is not None:
        if not is_counterpart(sender.email, known):
            return Ignored(mid, f"from {sender.email}: not a counterpart of thread {known.id}, "
                                f"so not an answer to it")
        # In-Reply-To/References name a message of the thread, and the counterpart's address.
        return CounterpartReply(mid, known.id, sender, excerpt(mail.reply_text or mail.text),
                                trusted=True)
    fallback = _by_subject(mail.clean_subject, sender.email, ctx)
    if fallback is not None and is_counterpart(sender.email, fallback):
        return CounterpartReply(
            mid, fallback.id, sender, excerpt(mail.reply_text or mail.text), by_fallback=True,
            trusted=_authenticated(mail, sender.email, ctx.settings),
        )
    return Ignored(mid, f"from {sender.email}: not an owner and not a reply to a tracked thread")


def is_counterpart(email: str, thread: Thread) -> bool:
    """Whether ``email`` is one of the people the thread's owner asked or was offered help by."""
    return any(c.email == email for c in thread.counterparts)


def _authenticated(mail: Mail, email: str, settings: Settings) -> bool:
    """With ``require_auth``, whether the trusted server's Authentication-Results vouch for
    the domain of ``email`` (the same check as for owners' mail). Off: never."""
    if not settings.require_auth:
        return False
    verdicts = mail.headers.get("authentication-results", ())
    return authresults.passes(verdicts, settings.trusted_authserv_id or "", email)


def display_subject(subject: str, tags: Tags) -> str:
    """A thread's subject: the clean subject less the configured tags (``[offer]``, ``#ask``).

    >>> display_subject("[offer] Intro to Acme #ask", Tags())
    'Intro to Acme'
    """
    return subject_without_tag(subject, tags).strip() or "(no subject)"


def _is_reply(mail: Mail) -> bool:
    """Mail that answers other mail: it says so in its headers, or its subject starts with a
    reply prefix (``Re:``, ``AW:``, ...)."""
    return bool(mail.in_reply_to or mail.references) or (
        mail.clean_subject != mail.subject.strip() and not mail.subject.lower().lstrip()
        .startswith(("fwd", "fw:", "wg:", "tr:", "rv:"))
    )


def _by_subject(subject: str, participant: str, ctx: Context) -> Thread | None:
    """The reply fallback (SPEC.md: subject plus participants): an unfinished thread with
    this subject, tags stripped as for the thread's own, that has ``participant``."""
    stripped = subject_without_tag(subject, ctx.settings.tags).strip()
    if not stripped:
        return None  # an empty subject says nothing about which thread
    return ctx.index.thread_by_subject(stripped, participant)
