"""A look at a message's header alone, to leave mail that cannot matter unparsed.

Most of a real inbox is mail the assistant can only ignore: newsletters, notifications, and
strangers writing about things it does not track. Parsing the whole of each (MIME, quoted
replies, forwards, HTML) costs far more than reading it. :func:`ignorable` answers, from the
header only, whether :func:`mailhelper.decide.classify.classify` could return anything but "ignored"
for it; when in any doubt it says no and the message goes the full way.

A message is ignorable when its From is one address, read as the full reading reads it, that
is not an owner's nor the assistant's (nor names either anywhere in the From field), it
carries a Message-ID that is not the assistant's, and it refers to no Message-ID the
assistant knows, and its sender is on no thread at all (so no subject fallback and no
out-of-office could apply).
"""

from __future__ import annotations

import email.policy
import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from typing import Protocol

from mailhelper.decide.classify import is_assistant_address
from mailhelper.model.addresses import fold
from mailhelper.model.message_id import looks_like_ours
from mailhelper.model.settings import Settings
from mailhelper.model.values import ActionKind, Thread
from mailhelper.read.parse import address_list, message_ids, mime_prefix

_PARSER = BytesHeaderParser(policy=email.policy.compat32)
#: The fields :func:`header_check` reads, by lower-case name.
_WANTED = frozenset({"from", "message-id", "in-reply-to", "references"})
#: A line of the header as the stdlib's feedparser takes one (its ``headerRE``): an mbox
#: "From " line, a field (a name of printable characters but the colon), a continuation.
_HEADER_LINE = re.compile(r"From |[\041-\071\073-\176]*:|[\t ]")


class Lookup(Protocol):
    def thread_for(self, message_ids: tuple[str, ...]) -> Thread | None: ...

    def sent_mail(self, message_ids: tuple[str, ...]) -> tuple[int | None, ActionKind] | None: ...

    def is_participant(self, email: str) -> bool: ...


def header_of(raw: bytes) -> bytes:
    """The header section of a raw message (up to the first empty line)."""
    for blank in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(blank)
        if end >= 0:
            return raw[: end + len(blank)]
    return raw


@dataclass(frozen=True)
class Candidate:
    """What the header alone says of a message that may be ignorable: its one Message-ID,
    the ids it refers to (its own first) and its one sender. Whether it is ignorable depends
    on the state too (:func:`confirmed`)."""

    message_id: str
    ids: tuple[str, ...]
    sender: str


def header_check(raw: bytes, settings: Settings) -> Candidate | None:
    """The part of :func:`ignorable` that needs nothing but ``raw`` and ``settings``: a
    :class:`Candidate` when the header allows ignoring the message, None when it must be read
    in full whatever the state holds. Pure (a worker process can run it)."""
    readable, cut = mime_prefix(header_of(raw))
    if cut:  # a header too big to parse whole: the full reading is bounded, this one not
        return None
    try:
        fields = _fields(readable)
        froms = fields["from"]
        message_id = message_ids(next(iter(fields["message-id"]), ""))
        references = message_ids(" ".join(fields["in-reply-to"] + fields["references"]))
    except Exception:  # any doubt: the full reading decides
        return None
    if len(froms) != 1 or len(message_id) != 1:
        return None
    field = fold(froms[0])
    assistant = fold(settings.assistant.email)
    local, _, domain = assistant.partition("@")
    if any(owner.email in field for owner in settings.owners) or (
            local in field and domain in field):
        return None
    # The full reading's own address reader, so that both take the same sender: a comment or
    # folding inside the address ("sam(Sam)@example.com") must not hide an owner here.
    senders = address_list(froms[0])
    if len(senders) != 1:
        return None
    sender = senders[0].email
    if settings.owner_for(sender) is not None or is_assistant_address(sender, settings.assistant):
        return None
    if looks_like_ours(message_id[0], domain):
        return None
    return Candidate(message_id[0], (*message_id, *references), sender)


def _fields(header: bytes) -> dict[str, list[str]]:
    """The values of the fields in :data:`_WANTED` in ``header``, each as ``str()`` of what
    the stdlib's header parser (``compat32``) gives for it.

    A plain header (ASCII, lines ending in LF or CRLF) is read here, the way that parser
    reads it (:func:`_plain_fields`): the parser, which reads every field, was most of the
    cost of the check. Any other goes to the parser itself (8-bit bytes become ``Header``
    objects there, and a CR alone ends a line)."""
    if header.isascii() and header.count(b"\r") == header.count(b"\r\n"):
        found = _plain_fields(header.decode("ascii"))
    else:
        parsed = _PARSER.parsebytes(header)
        found = [(name, str(value)) for name, value in parsed.items()]
    fields: dict[str, list[str]] = {name: [] for name in _WANTED}
    for name, value in found:
        if name.lower() in fields:
            fields[name.lower()].append(value)
    return fields


def _plain_fields(header: str) -> list[tuple[str, str]]:
    """The (lower-case name, value) of each field of :data:`_WANTED` in a header whose lines
    end in LF or CRLF, as ``email.feedparser.FeedParser`` and
    ``compat32.header_source_parse`` read them: the header ends at the first line that is no
    header line (:data:`_HEADER_LINE`); a continuation line with no field before it and an
    mbox "From " line are passed over; a value is the rest of its first line after the colon
    and spaces, with its continuation lines and their line ends, without the line end at its
    end. (The parser passes over a field with no name, ":x", too; none is wanted.)"""
    fields: list[tuple[str, str]] = []
    field: list[str] = []  # the lines of the wanted field being read
    wanted = False  # whether the field being read is wanted (its lines go to ``field``)
    ends = header.split("\n")
    for line in [line + "\n" for line in ends[:-1]] + ([ends[-1]] if ends[-1] else []):
        if line[0] in " \t":
            if wanted:
                field.append(line)
            continue
        if not _HEADER_LINE.match(line):
            break
        if field:
            fields.append(_field(field))
            field = []
        name = line.partition(":")[0].lower()
        wanted = name in _WANTED and not line.startswith("From ")
        if wanted:
            field.append(line)
    if field:
        fields.append(_field(field))
    return fields


def _field(lines: list[str]) -> tuple[str, str]:
    """``compat32.header_source_parse`` of a field's lines, its name in lower case."""
    name, value = lines[0].split(":", 1)
    value = value.lstrip(" \t") + "".join(lines[1:])
    return name.lower(), value.rstrip("\r\n")


def confirmed(candidate: Candidate, lookup: Lookup) -> tuple[str, str] | None:
    """(Message-ID, why) when the state knows nothing that could make ``candidate`` matter:
    no thread or sent mail of the assistant's among the ids it names, and its sender on no
    thread (so no subject fallback and no out-of-office could apply); else None."""
    ids = candidate.ids
    if lookup.thread_for(ids) is not None or lookup.sent_mail(ids) is not None:
        return None
    if lookup.is_participant(candidate.sender):
        return None
    return (candidate.message_id,
            f"from {candidate.sender}: not an owner and not a reply to a tracked thread")


def ignorable(raw: bytes, settings: Settings, lookup: Lookup) -> tuple[str, str] | None:
    """(Message-ID, why) when the full reading of ``raw`` would only ignore it, else None
    (read it in full).

        >>> from mailhelper.model.values import Address
        >>> class Nothing:
        ...     def thread_for(self, ids): return None
        ...     def sent_mail(self, ids): return None
        ...     def is_participant(self, email): return False
        >>> s = Settings(owners=(Address("sam@example.com"),),
        ...              assistant=Address("helper@example.com"))
        >>> news = b"From: news@shop.example\\r\\nMessage-ID: <1@shop.example>\\r\\n\\r\\nHi"
        >>> ignorable(news, s, Nothing())[1]
        'from news@shop.example: not an owner and not a reply to a tracked thread'
        >>> ignorable(b"From: Sam <sam@example.com>\\r\\nMessage-ID: <2@x>\\r\\n\\r\\n", s,
        ...           Nothing())
    """
    candidate = header_check(raw, settings)
    return confirmed(candidate, lookup) if candidate is not None else None
