"""What an incoming mail means for the assistant: a pure function of the mail and what is known.

The rules, in order (SPEC.md "How a person uses it" and "Safety rules" 1 and 2):

1. The assistant's own mail coming back is a loop: ignored.
2. Auto-generated mail (RFC 3834 and the other signs) is never a reply and never answered; a
   counterpart's out-of-office that names a return date is an :class:`OutOfOffice` event.
3. Mail From an owner address (passing the trusted Authentication-Results check when
   ``require_auth`` is on) may create a thread or run a command. Owner mail failing the check is
   a stranger's.
4. Anyone else's mail can only be a reply to a thread that exists.

    >>> # see tests/test_classify.py for worked examples of every branch
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mailhelper import authresults
from mailhelper.autoreply import auto_generated, is_out_of_office, return_date
from mailhelper.commands import parse_command
from mailhelper.events import (
    CounterpartReply,
    Event,
    Ignored,
    NewThread,
    OutOfOffice,
    OwnerCommand,
    OwnerFollowUp,
)
from mailhelper.models import ActionKind, Address, Kind, Mail, Thread
from mailhelper.settings import Settings
from mailhelper.tags import read_tag

#: How much of a mail's own words a thread keeps to quote back in reminders.
EXCERPT_CHARS = 280


class ThreadIndex(Protocol):
    """The questions classification asks of what the assistant already knows (the store)."""

    def thread_for(self, message_ids: tuple[str, ...]) -> Thread | None:
        """The thread any of these Message-IDs belongs to."""

    def sent_mail(self, message_ids: tuple[str, ...]) -> tuple[int | None, ActionKind] | None:
        """(thread id, action kind) of the assistant mail among these Message-IDs, if any."""

    def thread_by_subject(self, subject: str, participant: str) -> Thread | None:
        """An unfinished thread with this clean subject that has this counterpart."""


@dataclass(frozen=True)
class Context:
    settings: Settings
    index: ThreadIndex
    now: datetime


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The first words of a text on one line, cut at a word boundary."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0]
    return cut + "…"


def is_assistant_address(email: str, assistant: Address) -> bool:
    """True for the assistant's address and its plus-forms (``helper+offer@example.com``)."""
    local, _, domain = email.lower().rpartition("@")
    a_local, _, a_domain = assistant.email.lower().rpartition("@")
    return domain == a_domain and local.split("+", 1)[0] == a_local


def owner_of(mail: Mail, settings: Settings) -> tuple[Address | None, str | None]:
    """The owner who sent this mail, or (None, why not) when it is not an owner's."""
    if mail.from_ is None:
        return None, None
    owner = settings.owner_for(mail.from_.email)
    if owner is None:
        return None, None
    if settings.require_auth:
        verdicts = mail.headers.get("authentication-results", ())
        if not authresults.passes(verdicts, settings.trusted_authserv_id or "", owner.email):
            return None, (
                f"From an owner address ({owner.email}) without a passing "
                f"Authentication-Results verdict from {settings.trusted_authserv_id}"
            )
    return owner, None


def classify(mail: Mail, ctx: Context) -> Event:
    """The one event this mail stands for."""
    settings = ctx.settings
    mid = mail.message_id
    sender = mail.from_
    if sender is not None and is_assistant_address(sender.email, settings.assistant):
        return Ignored(mid, "the assistant's own mail (loop)")
    if mail.header("x-mailhelper-action") and mail.in_reply_to == () and sender is None:
        return Ignored(mid, "the assistant's own mail (loop)")

    auto = auto_generated(mail)
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
        thread = ctx.index.thread_for(mail.thread_ids[1:]) or ctx.index.thread_by_subject(
            mail.clean_subject, mail.from_.email
        )
        if thread is not None and any(c.email == mail.from_.email for c in thread.counterparts):
            until = return_date(mail, ctx.now, ctx.settings.timezone)
            return OutOfOffice(mid, thread.id, mail.from_, until)
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
    replied = index.sent_mail(mail.in_reply_to + mail.references)
    if replied is not None:
        thread_id, kind = replied
        command = parse_command(mail.reply_text or mail.text, ctx.now, settings.timezone)
        return OwnerCommand(mid, owner, command.name, thread_id, kind, command.until, command.line)

    if mail.forwarded is not None:
        forwarded = mail.forwarded
        known = index.thread_for(
            ((forwarded.message_id,) if forwarded.message_id else ()) + mail.thread_ids[1:]
        )
        if known is None and forwarded.from_ is not None and forwarded.from_.email:
            known = index.thread_by_subject(
                _clean(forwarded.subject) or mail.clean_subject, forwarded.from_.email
            )
        if known is not None and forwarded.from_ is not None and any(
            c.email == forwarded.from_.email for c in known.counterparts
        ):
            return CounterpartReply(
                mid, known.id, forwarded.from_, excerpt(forwarded.body), forwarded_by_owner=True
            )

    known = index.thread_for(mail.thread_ids[1:])
    if known is not None:
        return OwnerFollowUp(mid, known.id, excerpt(mail.reply_text or mail.text))

    tag = read_tag(mail, settings.assistant, settings.tags, ctx.now, settings.timezone)
    if mail.forwarded is not None:
        counterparts = _forward_counterparts(mail, owner, settings)
        subject = _clean(mail.forwarded.subject) or mail.clean_subject
        body = mail.forwarded.body
    else:
        counterparts = _counterparts(mail, owner, settings)
        subject = mail.clean_subject
        body = mail.reply_text or mail.text

    if not counterparts:
        command = parse_command(mail.reply_text or mail.text, ctx.now, settings.timezone)
        if command.name in ("status", "help"):
            return OwnerCommand(mid, owner, command.name, None, None, None, command.line)
    problem = None
    if tag.unknown:
        problem = f"I did not recognise the tag \"{tag.unknown}\""
    elif not counterparts:
        problem = "I could not find who you asked: nobody but you and me is on the mail"
    ids = mail.thread_ids
    if mail.forwarded is not None and mail.forwarded.message_id:
        ids = (*ids, mail.forwarded.message_id)
    return NewThread(
        message_id=mid,
        kind=tag.kind or Kind.ASK,
        owner=owner,
        counterparts=counterparts,
        subject=_display_subject(subject),
        thread_ids=ids,
        excerpt=excerpt(body),
        when=tag.when,
        tag=tag.tag,
        problem=problem,
    )


def _stranger_event(mail: Mail, ctx: Context) -> Event:
    mid = mail.message_id
    sender = mail.from_
    if sender is None or not sender.email:
        return Ignored(mid, "no sender address")
    known = ctx.index.thread_for(mail.thread_ids[1:])
    if known is not None:
        return CounterpartReply(mid, known.id, sender, excerpt(mail.reply_text or mail.text))
    fallback = ctx.index.thread_by_subject(mail.clean_subject, sender.email)
    if fallback is not None:
        return CounterpartReply(
            mid, fallback.id, sender, excerpt(mail.reply_text or mail.text), by_fallback=True
        )
    return Ignored(mid, f"from {sender.email}: not an owner and not a reply to a tracked thread")


def _clean(subject: str) -> str:
    from mailhelper.parse import clean_subject

    return clean_subject(subject)


def _display_subject(subject: str) -> str:
    from mailhelper.tags import subject_without_tag

    return subject_without_tag(subject).strip() or "(no subject)"
