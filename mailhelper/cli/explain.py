"""`mailhelper explain FILE.eml`: how the assistant reads one message, touching no mailbox.

The reading uses the same parse, classify and tag code as the daemon. Threads it would need
to know about come from the state file when there is one (read only); mail the assistant sent
is also recognised by its Message-ID's shape (:mod:`mailhelper.model.message_id`), so a reply to a
reminder reads as a command even without state.

``--json`` prints exactly the keys SPEC.md names (addresses bare and lower-case, times
ISO-8601 with their offset)::

    {"from": "sam@example.com", "is_owner": true, "auto_generated": false, "kind": "ask",
     "tag": null, "when": null, "forwarded": null, "command": null, "problem": null,
     "repeat": null}

``forwarded`` is ``{"from", "to", "subject", "date"}`` when the mail forwards one, ``to`` a
list. ``command`` is the owner's command when the mail is one (``unknown`` for a reply to
the assistant that names none), else null. ``when`` is the tag's time, or for a command the
command's own (``snooze 3 days``: when it snoozes until). ``problem`` is null, or the sentence
the owner would be told when the assistant cannot act on the mail as meant (a tag it cannot
read, a past date, nobody to write to, a snooze without a time it can take). ``repeat`` is
the RRULE a new note or ask would repeat on (``every monday``: ``FREQ=WEEKLY;BYDAY=MO;
BYHOUR=9;BYMINUTE=0``; ``when`` is then its first time), or null.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, assert_never

from mailhelper.compose.render import format_when
from mailhelper.compose.terminal import one_line
from mailhelper.decide.classify import (
    Context,
    classify,
    expect_line,
    owner_of,
    subject_tells_auto,
    time_words,
)
from mailhelper.decide.commands import parse_command
from mailhelper.decide.events import (
    CounterpartReply,
    DigestCommands,
    Event,
    Ignored,
    NewThread,
    OutOfOffice,
    OwnerCommand,
    OwnerFollowUp,
    OwnerThanked,
)
from mailhelper.decide.tags import read_tag
from mailhelper.decide.timewords import describe_repeat
from mailhelper.model.errors import MailhelperError
from mailhelper.model.message_id import looks_like_ours
from mailhelper.model.settings import Settings
from mailhelper.model.values import ActionKind, Address, Kind, Mail, Thread
from mailhelper.read.autoreply import auto_generated
from mailhelper.read.parse import UnparseableMail, parse_mail


class InputFileError(MailhelperError):
    """The file to explain is missing or cannot be read (a command-line mistake)."""

    exit_code = 2


#: Settings for reading a message when there is no config: nobody is an owner.
NO_CONFIG = Settings(owners=(), assistant=Address("assistant@invalid", "assistant"))


class _Index:
    """A ThreadIndex over the state file when present, else empty; never writes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: Any = None
        if settings.source is not None and (settings.state_url is not None
                                            or Path(settings.state).exists()):
            from mailhelper.mail.secrets import state_password
            from mailhelper.state.store import Store

            store = Store.open_readonly(settings.state_location,
                                        settings.assistant.email.rpartition("@")[2],
                                        state_password(settings), settings.assistant.email)
            if store.is_empty():
                # A database with no state of this assistant yet (others may share it): as
                # with no state file yet, nothing is tracked.
                store.close()
            else:
                self.store = store

    def thread_for(self, message_ids: tuple[str, ...]) -> Thread | None:
        return self.store.thread_for(message_ids) if self.store else None

    def sent_mail(self, message_ids: tuple[str, ...]) -> tuple[int | None, ActionKind] | None:
        if self.store:
            # With the state, only a Message-ID it recorded is the assistant's mail: the shape
            # can be forged by anyone, and poll would not take the mail as a command either.
            found: tuple[int | None, ActionKind] | None = self.store.sent_mail(message_ids)
            return found
        domain = self.settings.assistant.email.rpartition("@")[2]
        if any(looks_like_ours(m, domain) for m in message_ids):
            # No state to ask: ours by its shape, as far as can be told offline, and a kind
            # that no command depends on.
            return None, ActionKind.COMMAND_REPLY
        return None

    def tapped_mail(
        self, token: str, owner: str
    ) -> tuple[str, tuple[int | None, ActionKind]] | None:
        found: tuple[str, tuple[int | None, ActionKind]] | None = (
            self.store.tapped_mail(token, owner) if self.store else None)
        return found

    def thread_by_subject(self, subject: str, participant: str) -> Thread | None:
        return self.store.thread_by_subject(subject, participant) if self.store else None

    def threads_by_subject(self, subject: str) -> tuple[Thread, ...]:
        return self.store.threads_by_subject(subject) if self.store else ()

    def person_for(self, address: str) -> str | None:
        return self.store.person_for(address) if self.store else None


@dataclass(frozen=True)
class Reading:
    mail: Mail
    is_owner: bool
    auto_reason: str | None
    event: Event
    tag: str | None
    when: datetime | None
    kind: str | None
    command: str | None
    problem: str | None = None
    repeat: str | None = None
    #: The zone and clock the summary writes times for (the JSON keeps ISO-8601).
    zone: tzinfo = UTC
    now: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        forwarded = self.mail.forwarded
        return {
            "from": self.mail.from_.email if self.mail.from_ else None,
            "is_owner": self.is_owner,
            "auto_generated": self.auto_reason is not None,
            "kind": self.kind,
            "tag": self.tag,
            "when": self.when.isoformat() if self.when else None,
            "forwarded": None if forwarded is None else {
                "from": forwarded.from_.email if forwarded.from_ else None,
                "to": [a.email for a in forwarded.to],
                "subject": forwarded.subject,
                "date": forwarded.date.isoformat() if forwarded.date else None,
            },
            "command": self.command,
            "problem": self.problem,
            "repeat": self.repeat,
        }

    def summary(self) -> str:
        mail = self.mail
        lines = [
            f"From:      {mail.from_.formatted() if mail.from_ else '(none)'}"
            f"{' (an owner)' if self.is_owner else ''}",
            f"Subject:   {mail.subject or '(none)'}",
        ]
        if self.auto_reason:
            lines.append(f"Automatic: yes ({self.auto_reason})")
        if mail.forwarded is not None:
            f = mail.forwarded
            lines.append(f"Forwarded: from {f.from_.formatted() if f.from_ else '(unknown)'}, "
                         f"subject “{f.subject}”")
        if self.tag:
            lines.append(f"Tag:       {self.tag}" + (f" (when: {self._when(self.when)})"
                                                     if self.when else ""))
        if self.repeat:
            lines.append(f"Repeats:   {describe_repeat(self.repeat)} ({self.repeat})")
        lines.append(f"Verdict:   {verdict(self.event, self._when)}")
        if self.problem and not isinstance(self.event, NewThread):
            lines.append(f"Problem:   {self.problem}")
        # Each line holds a mail's words (a subject, a name): one line each, as they read.
        return "\n".join(one_line(line) for line in lines)

    def _when(self, moment: datetime) -> str:
        """``Thu 10 Dec, 09:00`` in the configured zone, as the mails write times."""
        return format_when(moment.astimezone(self.zone), self.now)


def verdict(event: Event, when: Callable[[datetime], str] = datetime.isoformat) -> str:
    """One sentence on what the assistant would do with the message; ``when`` writes times.

    >>> from mailhelper.model.values import Address, Kind
    >>> bob = Address("bob@example.net", "Bob")
    >>> verdict(NewThread("m@x", Kind.OFFER, bob, (bob,), "Moving house", ()))
    'would start tracking an offer from bob@example.net, “Moving house”'
    """
    match event:
        case NewThread():
            if event.problem:
                return f"would tell the owner it could not understand the mail ({event.problem})"
            who = ", ".join(c.email for c in event.counterparts)
            match event.kind:
                case Kind.OFFER:
                    return f"would start tracking an offer from {who}, “{event.subject}”"
                case Kind.ASK:
                    return f"would start tracking an ask to {who}, “{event.subject}”"
                case Kind.NOTE:
                    return (f"would keep the owner's note to self, “{event.subject}”, and send "
                            f"it back to them alone")
                case _:
                    assert_never(event.kind)
        case OwnerCommand():
            if event.name == "snooze" and event.until is not None:
                return f"would run the owner's command: snooze until {when(event.until)}"
            if event.name == "pause" and event.until is not None:
                return f"would run the owner's command: pause until {when(event.until)}"
            return f"would run the owner's command: {event.name}"
        case DigestCommands():
            lines = "; ".join(
                f"{c.line}: {c.problem}" if c.problem else f"{c.name} item {c.number}"
                for c in event.commands) or "none"
            return f"would run the owner's commands on the digest's numbered items ({lines})"
        case CounterpartReply():
            return f"would mark thread {event.thread_id} answered by {event.sender.email}"
        case OwnerFollowUp():
            shown = "".join(f", and {a.sender.email}'s answer it shows" for a in event.answers)
            return f"would count the owner's follow-up in thread {event.thread_id}{shown}"
        case OutOfOffice():
            return f"would note {event.sender.email} is away" + (
                f" until {when(event.until)}" if event.until else "")
        case Ignored():
            return f"would ignore it ({event.reason})"
        case OwnerThanked():
            return type(event).__name__  # (the owner's own inbox only: never read here)
        case _:
            assert_never(event)


def explain_file(path: Path, settings: Settings | None, now: datetime) -> Reading:
    """The reading of the message in the file at ``path``.

    Raises :class:`InputFileError` when the file cannot be read and
    :class:`~mailhelper.model.errors.MailhelperError` when it holds no mail message.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file; give the path of a saved message "
                             "(.eml)") from None
    except IsADirectoryError:
        raise InputFileError(f"{path} is a folder; give the path of one saved message "
                             "(.eml)") from None
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if b"\0" in raw[:65536] and not _has_mail_headers(raw):
        raise MailhelperError(f"{path} is not a mail message: it is a binary file")
    try:
        mail = parse_mail(raw)
    except UnparseableMail as exc:
        raise MailhelperError(f"{path} is not a mail message: {exc}") from None
    return explain_mail(mail, settings or NO_CONFIG, now)


def explain_mail(mail: Mail, settings: Settings, now: datetime) -> Reading:
    index = _Index(settings)
    context = Context(settings, index, now)
    event = classify(mail, context)
    owner, _ = owner_of(mail, settings)
    auto = auto_generated(mail, by_subject=subject_tells_auto(mail, context))
    words = time_words(settings, owner)
    # "expect 2" on the first line is no tag: the tags are read below it, as classify does.
    tag = read_tag(expect_line(mail)[1], settings.assistant, settings.tags, now, **words)
    kind = None
    if isinstance(event, NewThread):
        kind = event.kind.value
    elif tag.kind is not None:
        kind = tag.kind.value
    command = event.name if isinstance(event, OwnerCommand) else None
    if isinstance(event, DigestCommands):
        # A reply to the digest: its first line's command (each line names an item).
        first = event.commands[0] if event.commands else None
        command = first.name if first is not None else "unknown"
    when, problem = tag.when, None
    if isinstance(event, NewThread):
        problem = event.problem
    elif isinstance(event, DigestCommands):
        first = event.commands[0] if event.commands else None
        when = first.until if first is not None else None
        problem = (first.problem if first is not None else "the reply holds no command")
    elif isinstance(event, OwnerCommand):
        when = event.until
        if event.name == "unknown":
            read = parse_command(mail.reply_text or mail.text, now, **words)
            problem = read.problem or (
                f'"{one_line(read.line)}" is not a command I know' if read.line
                else "the reply holds no command")
    return Reading(
        mail=mail,
        is_owner=owner is not None,
        auto_reason=auto,
        event=event,
        tag=tag.tag,
        when=when,
        kind=kind,
        command=command,
        problem=problem,
        repeat=event.repeat if isinstance(event, NewThread) else None,
        zone=settings.zone_for(owner.email if owner else None),
        now=now,
    )


def _has_mail_headers(raw: bytes) -> bool:
    """Whether ``raw`` opens with a header block naming From, Sender, Message-ID or Subject
    (a mail with a NUL in its body is still a mail)."""
    head = raw[:65536].split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    if b"\0" in head:
        return False
    names = {line.split(b":", 1)[0].strip().lower() for line in head.splitlines() if b":" in line}
    return bool(names & {b"from", b"sender", b"message-id", b"subject"})
