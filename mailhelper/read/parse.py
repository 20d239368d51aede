"""Raw message bytes to a :class:`~mailhelper.model.values.Mail`: the one door mail comes in by.

:func:`parse_mail` reads real-world mail as it is, not as RFC 5322 wishes it were: raw 8-bit
headers, unknown or mislabelled charsets (``x-mac-cyrillic``, ``ks_c_5601-1987``, GB2312 that
is really GBK, ISO-2022-JP with Microsoft's extra characters), broken encoded-words, missing
boundaries, impossible dates and huge headers. Whatever cannot be read becomes an empty field
and a line in ``Mail.defects``; the only exception is :class:`UnparseableMail`, for bytes that
are not a mail at all. Pure: bytes in, value out::

    >>> mail = parse_mail(b"From: Jane <JANE@X.org>\\r\\nSubject: Re: AW: Intro\\r\\n\\r\\nHi")
    >>> mail.from_, mail.clean_subject, mail.text
    (Address(email='jane@x.org', name='Jane'), 'Intro', 'Hi')
"""

from __future__ import annotations

import email.utils
import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from functools import lru_cache, partial
from itertools import islice
from typing import Any, TypeVar

from mailhelper.model.values import Address, Mail
from mailhelper.read.forwards import find_forward
from mailhelper.read.mailtext import (
    FORWARD_PREFIXES,
    MAX_ADDRESS_CHARS,
    MAX_DEPTH,
    MAX_HEADER_FIELDS,
    MAX_HEADER_VALUE,
    MAX_SUBJECT,
    REPLY_PREFIXES,
    RawHeaders,
    _addresses,
    _charset_hints,
    _first,
    _unfold,
    address_list,
    clean_subject,
    decode_bytes,
    decode_words,
    header_addresses,
    header_date,
    header_text,
    message_ids,
    message_text,
    parse_date,
    part_charset,
    part_text,
    raw_headers,
    subject_prefix,
    walk,
)
from mailhelper.read.replytext import strip_reply

#: What this module offers: :func:`parse_mail` and its bounds, and (for the modules and
#: tests that have always found them here) the pieces of :mod:`mailhelper.read.mailtext`.
__all__ = [
    "FORWARD_PREFIXES", "MAX_ADDRESS_CHARS", "MAX_ADDRESS_TOTAL", "MAX_DEFECTS", "MAX_DEPTH",
    "MAX_HEADER_FIELDS", "MAX_HEADER_VALUE", "MAX_IDS", "MAX_LINE_CHECKS", "MAX_MIME_BYTES",
    "MAX_MIME_LINES", "MAX_MULTIPARTS", "MAX_PARTS", "MAX_SUBJECT", "MAX_TEXT",
    "READING_POLICY", "REPLY_PREFIXES", "VERBATIM_HEADERS", "RawHeaders", "UnparseableMail",
    "address_list", "clean_subject", "decode_bytes", "decode_words", "envelope_recipients",
    "header_addresses", "header_date", "header_text", "message_ids", "message_text",
    "mime_prefix", "parse_date", "parse_mail", "part_charset", "part_text", "raw_headers",
    "subject_prefix", "walk",
]

T = TypeVar("T")

#: ... and from this many of all of them together in one mail: the stdlib address parser
#: takes up to 3.5 s per million characters (four fields of 512 KB of "@" took 7 s).
MAX_ADDRESS_TOTAL = 400_000
#: ``Mail.text`` is cut to this length; the reply text and forward come from this cut.
MAX_TEXT = 1_000_000
#: In-Reply-To and References keep at most this many ids (the first and the latest ones).
MAX_IDS = 200
#: The MIME parser reads at most this many bytes of a message; the rest (in real mail: the
#: tail of a big attachment) is not looked at. The stdlib parser keeps every line as its own
#: string, about 40 times the size of a message of short lines (24 MB of quoted-printable soft
#: line breaks took 770 MB), so this cap is what bounds the memory of a reading.
MAX_MIME_BYTES = 2 * 1024 * 1024
#: ... and up to its this-many-th line that starts with "--" (a boundary, or text): the stdlib
#: parser spends about half a millisecond on the headers of each part, so 20,000 tiny parts
#: took 10 s. Real mail has a few dozen parts.
MAX_PARTS = 1000
#: ... and up to this many lines: each line is a string of its own in the parser (about 60
#: bytes), so 2 MB of empty lines took 80 MB more than 2 MB of text. A 2 MB mail of real text
#: has some 30,000 lines.
MAX_MIME_LINES = 250_000
#: ... and up to as many lines as keep (lines x declared multipart boundaries) under this: the
#: stdlib parser tries each line against every enclosing boundary, so 20,000 lines at 300
#: levels of nesting cost 0.8 s and 1.6 MB of short lines at 300 levels 16 s.
MAX_LINE_CHECKS = 3_000_000
#: A message declaring more multipart boundaries than this is read for its headers only.
MAX_MULTIPARTS = 500
#: At most this many defects are reported.
MAX_DEFECTS = 20


class UnparseableMail(ValueError):
    """The bytes are not an e-mail message: empty, or without From, Sender, Message-ID and
    Subject (every real mail, even a bounce fragment, has at least one of those)."""


def parse_mail(raw: bytes) -> Mail:
    """The :class:`Mail` in ``raw``. Never raises anything but :class:`UnparseableMail`.

    Decisions the fields follow:

    - ids lose their angle brackets; with no Message-ID the id is ``sha256-<first 32 hex of
      the content hash>@mailhelper.invalid``, the same for the same bytes;
    - addresses are bare and lower case, names RFC 2047 decoded; entries without an ``@``
      are skipped; ``from_``/``sender`` are the first mailbox; ``delivered_to`` is the
      envelope recipient (see :func:`envelope_recipients`);
    - ``date`` is aware, or None (no zone, or garbage);
    - ``text`` is the first inline text/plain part, else the first text/html as text, with
      LF line ends and RFC 3676 format=flowed joined; at most :data:`MAX_TEXT` characters;
    - the MIME structure is read from the first :data:`MAX_MIME_BYTES` bytes only (a defect
      says so); ``content_hash`` and ``size`` are the whole message's;
    - ``headers`` keeps the first :data:`MAX_HEADER_FIELDS` fields, each value decoded
      (but those in :data:`VERBATIM_HEADERS`) and cut to :data:`MAX_HEADER_VALUE`
      characters; ``subject`` is cut to :data:`MAX_SUBJECT`;
    - anything unreadable is an empty field and a line in ``defects``.

    >>> parse_mail(b"Message-ID: <a@b>\\r\\nIn-Reply-To: <x@y>\\r\\n\\r\\n").in_reply_to
    ('x@y',)
    """
    if not raw.strip():
        raise UnparseableMail("empty message")
    readable, cut = mime_prefix(raw)
    message, defects = _read(readable)
    if cut:
        defects.append(cut)
    found_hints = _guard("charsets", partial(_charset_hints, message), None, defects)
    hints: tuple[str, ...] = found_hints if found_hints is not None else ()
    index: RawHeaders = _guard("headers", partial(raw_headers, message, hints), {}, defects)
    fields: dict[str, tuple[str, ...]] = _guard(
        "headers", partial(_header_fields, index), {}, defects
    )
    if not any(name in fields for name in ("from", "sender", "message-id", "subject")):
        raise UnparseableMail("no From, Sender, Message-ID or Subject header: not a mail")
    content_hash = hashlib.sha256(raw).hexdigest()

    def raw_first(name: str) -> str:
        return _first(index, name)

    budget = [MAX_ADDRESS_TOTAL]  # characters of address headers still to be read

    def addresses(*names: str) -> tuple[Address, ...]:
        found: tuple[Address, ...] = ()
        for name in names:
            empty: tuple[Address, ...] = ()
            found += _guard(name, partial(_addresses, index, name, hints, budget), empty,
                            defects)
        return found

    message_id = next(iter(message_ids(raw_first("message-id"))), "")
    if not message_id:
        message_id = f"sha256-{content_hash[:32]}@mailhelper.invalid"
        defects.append("no Message-ID: synthetic id")
    subject = fields.get("subject", ("",))[0][:MAX_SUBJECT]
    # The hints found above, not found again (when finding them failed, message_text fails
    # on them in its own right, as it always has).
    text = _guard("text", lambda: message_text(message, found_hints), "", defects)
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT]
        defects.append(f"text cut to {MAX_TEXT} characters")
    references = " ".join(index.get("references", ()))
    from_, sender = addresses("from"), addresses("sender")
    return Mail(
        message_id=message_id,
        in_reply_to=_capped_ids(raw_first("in-reply-to")),
        references=_capped_ids(references),
        from_=from_[0] if from_ else None,
        sender=sender[0] if sender else None,
        to=addresses("to"),
        cc=addresses("cc"),
        bcc=addresses("bcc"),
        reply_to=addresses("reply-to"),
        delivered_to=_guard("envelope", partial(envelope_recipients, message, hints), (),
                            defects),
        subject=subject,
        clean_subject=_guard("subject", lambda: clean_subject(subject), subject, defects),
        date=parse_date(raw_first("date")),
        text=text,
        reply_text=_guard("reply text", lambda: strip_reply(text), text, defects),
        forwarded=_guard("forward", lambda: find_forward(message, text, subject), None, defects),
        headers=fields,
        content_hash=content_hash,
        size=len(raw),
        defects=_defects(defects, message),
    )


def _defects(ours: list[str], message: Message) -> tuple[str, ...]:
    none: list[str] = []
    found = ours + _guard("defects", partial(_mime_defects, message), none, ours)
    return tuple(dict.fromkeys(found))[:MAX_DEFECTS]



def _capped_ids(value: str) -> tuple[str, ...]:
    ids = message_ids(value)
    # The thread root and the latest ancestors are what threading needs (RFC 5322 3.6.4).
    return ids if len(ids) <= MAX_IDS else (ids[0], *ids[-(MAX_IDS - 1) :])



#: The headers naming the mailbox a copy was delivered to, in order of trust.
ENVELOPE_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to",
                    "x-delivered-to")
_RECEIVED_FOR = re.compile(r"\bfor\s+<?([^\s<>;]+@[^\s<>;]+?)>?\s*(?:;|$)", re.IGNORECASE)


def envelope_recipients(message: Message, hints: tuple[str, ...] = ()) -> tuple[Address, ...]:
    """The envelope recipients of this copy: Delivered-To, X-Original-To, Envelope-To (Exim),
    X-Envelope-To, X-Delivered-To, then the ``for <...>`` clause of the topmost Received, in
    that order of trust. Only headers the receiving server added count: those above the
    second Received field (a sender can write any header, but not below their own server's
    Received). A Bcc copy carries its tagged address nowhere else.

    >>> from email import message_from_bytes
    >>> m = message_from_bytes(b"Envelope-To: helper+3d@example.com\\r\\n"
    ...     b"Received: from a by mx for <helper+1w@example.com>; Mon, 7 Dec 2026\\r\\n"
    ...     b"Received: from b by c\\r\\nX-Original-To: forged@example.com\\r\\n\\r\\n")
    >>> [a.email for a in envelope_recipients(m)]
    ['helper+3d@example.com', 'helper+1w@example.com']
    """
    found: dict[str, list[str]] = {name: [] for name in ENVELOPE_HEADERS}
    received_for: list[str] = []
    received = 0
    for count, (key, value) in enumerate(message.raw_items()):
        if count >= MAX_HEADER_FIELDS:
            break
        name = key.strip().lower()
        if name == "received":
            received += 1
            if received == 1:
                clause = _RECEIVED_FOR.search(_unfold(str(value)[:MAX_HEADER_VALUE]))
                if clause:
                    received_for.append(clause[1])
            continue
        if received >= 2:
            break
        if name in found:
            # Cut before unfolding: a field may be megabytes long.
            found[name].append(_unfold(str(value)[:MAX_ADDRESS_CHARS]))
    addresses: dict[str, Address] = {}
    for name in ENVELOPE_HEADERS:
        for value in found[name]:
            for address in address_list(value, hints):
                addresses.setdefault(address.email, address)
    for value in received_for:
        for address in address_list(value, hints):
            addresses.setdefault(address.email, address)
    return tuple(addresses.values())



#: Headers kept as sent, RFC 2047 encoded-words not decoded: an Authentication-Results
#: authserv-id is compared as the trusted server wrote it (RFC 8601 section 2.5), so a
#: sender's ``=?utf-8?q?mx=2Eexample=2Ecom?=`` must not read as ``mx.example.com``.
VERBATIM_HEADERS = frozenset({"authentication-results"})


def _header_fields(raw: RawHeaders) -> dict[str, tuple[str, ...]]:
    return {
        name: tuple(
            v[:MAX_HEADER_VALUE] if name in VERBATIM_HEADERS
            else decode_words(v[: MAX_HEADER_VALUE * 4])[:MAX_HEADER_VALUE]
            for v in values
        )
        for name, values in raw.items()
    }


# -- MIME structure and body text -----------------------------------------------------------


_BOUNDARY_PARAMETER = re.compile(rb"boundary\s*=", re.IGNORECASE)


_FIELD_START = re.compile(rb"\r?\n(?=[^ \t\r\n])")


def mime_prefix(raw: bytes) -> tuple[bytes, str | None]:
    """The part of ``raw`` the MIME parser reads, and a defect line when that is not all of
    it: the first :data:`MAX_MIME_BYTES` bytes, up to the :data:`MAX_PARTS`-th line starting
    with ``--``, at most :data:`MAX_MIME_LINES` lines, and no more than
    :data:`MAX_LINE_CHECKS` allows for its nesting.

    >>> mime_prefix(b"Subject: hi\\r\\n\\r\\nbody")
    (b'Subject: hi\\r\\n\\r\\nbody', None)
    """
    readable, cut = raw[:MAX_MIME_BYTES], None
    if len(raw) > MAX_MIME_BYTES:
        cut = f"read from its first {MAX_MIME_BYTES // 1048576} MB only"
    # Only the first MAX_HEADER_FIELDS fields are read (raw_headers); the parser must not see
    # more either: each of its look-ups scans every field, so 20,000 fields made each part of
    # a multipart cost milliseconds.
    end = min((i for i in (readable.find(b"\r\n\r\n"), readable.find(b"\n\n")) if i >= 0),
              default=len(readable))
    # Each field but the first starts after a line feed: a header with fewer line feeds than
    # MAX_HEADER_FIELDS has no field to cut at, and the search for it need not run.
    if readable.count(b"\n", 0, end) >= MAX_HEADER_FIELDS:
        starts = _FIELD_START.finditer(readable, 0, end)
        extra = next(islice(starts, MAX_HEADER_FIELDS - 1, None), None)
        if extra is not None:
            readable = readable[: extra.start()] + readable[end:]
            cut = f"read from its first {MAX_HEADER_FIELDS} header fields only"
    position = 0
    for _ in range(MAX_PARTS):
        position = readable.find(b"\n--", position) + 1
        if position == 0:
            break
    else:
        readable, cut = readable[:position], f"read up to its {MAX_PARTS}th MIME boundary only"
    # However many multiparts are declared (at most MAX_MULTIPARTS + 1 are counted), their
    # checks allow more lines than most messages have: only a longer one needs the count (a
    # case-blind search of all of it).
    lines = readable.count(b"\n")
    if lines > MAX_LINE_CHECKS // (MAX_MULTIPARTS + 1):
        levels = max(1, _multiparts(readable))
        most = min(MAX_MIME_LINES, MAX_LINE_CHECKS // levels)
        if lines > most:
            readable = _first_lines(readable, most)
            cut = f"read up to its {most}th line only ({levels} multiparts)"
    return readable, cut


def _multiparts(data: bytes) -> int:
    """How many multipart boundaries ``data`` declares (``boundary=`` in any case), counted
    up to ``MAX_MULTIPARTS + 1``."""
    declared = _BOUNDARY_PARAMETER.finditer(data)
    return sum(1 for _ in islice(declared, MAX_MULTIPARTS + 1))


def _too_many_multiparts(data: bytes) -> bool:
    """Whether ``data`` declares more than :data:`MAX_MULTIPARTS` multipart boundaries."""
    # Each declaration starts with a "boundary" of its own (the word cannot overlap itself):
    # with no more of those than MAX_MULTIPARTS, there cannot be more declarations, and the
    # case-blind search of the whole message (about a tenth of a parse) need not run.
    if data.lower().count(b"boundary") <= MAX_MULTIPARTS:
        return False
    return _multiparts(data) > MAX_MULTIPARTS


def _first_lines(data: bytes, count: int) -> bytes:
    """The longest start of ``data`` with at most ``count`` line feeds: a binary search with
    ``bytes.count`` (some twenty passes in C, not a Python loop over lines)."""
    low, high = 0, len(data)
    while low < high:
        middle = (low + high + 1) // 2
        if data.count(b"\n", 0, middle) <= count:
            low = middle
        else:
            high = middle - 1
    return data[:low]


#: Header values longer than this are parsed on each access, not remembered (a few real
#: headers are long; remembering them would keep megabytes of parse trees). At most 256
#: are remembered: what one message asks again and again, and the Content-Types and the
#: like that many share (3,000 bench messages: 457 values, 43,380 hits; 256 hold 2 MB).
_MEMO_VALUE = 2048


@lru_cache(maxsize=256)
def _header_object(name: str, value: str) -> Any:
    return policy.default.header_fetch_parse(name, value)


class _MemoPolicy(policy.EmailPolicy):
    """``email.policy.default``, but a header value is parsed once, not on every access.

    The stdlib keeps each header as its raw string and builds a header object (a full RFC
    5322 parse) from it on every ``get``: ``get_content_type``, ``get_param`` and
    ``get_content_charset`` each parse Content-Type again (13 parses of it per message were
    counted). The object depends on nothing but the name and the raw value, and header
    objects are immutable, so the same one can be handed out again: each reading stays the
    same, its cost goes."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if hasattr(value, "name") or len(value) > _MEMO_VALUE:
            return super().header_fetch_parse(name, value)
        return _header_object(name, value)


#: The policy messages are read with: see :class:`_MemoPolicy`.
READING_POLICY = _MemoPolicy()


def _read(raw: bytes) -> tuple[EmailMessage, list[str]]:
    # READING_POLICY is policy.default's class, whose messages are EmailMessages.
    parser: BytesParser[EmailMessage] = BytesParser(policy=READING_POLICY)  # type: ignore[arg-type]
    # The stdlib parser recurses once per nesting level and dies near 1,000 levels, slowly;
    # no real mail declares hundreds of multiparts, so such a message gets its headers only.
    if _too_many_multiparts(raw):
        reason = f"more than {MAX_MULTIPARTS} multiparts: headers only"
    else:
        try:
            return parser.parsebytes(raw), []
        except RecursionError:
            reason = "MIME structure too deep: headers only"
        except Exception as exc:  # the stdlib parser is meant to be total; be sure of it
            reason = f"MIME structure unreadable ({type(exc).__name__}): headers only"
    try:
        return parser.parsebytes(raw, headersonly=True), [reason]
    except Exception as exc:
        raise UnparseableMail(f"unreadable message ({type(exc).__name__})") from exc



def _mime_defects(message: Message) -> list[str]:
    found: list[str] = []
    for part, _depth in walk(message, into_messages=True):
        for defect in getattr(part, "defects", ()):
            found.append(type(defect).__name__)
        if len(found) >= MAX_DEFECTS:
            break
    return found


def _guard(what: str, compute: Callable[[], T], default: T, defects: list[str]) -> T:
    """``compute()``, or ``default`` with a defect noted: one unreadable field must not cost
    the whole mail (the stdlib parser and our heuristics are meant to be total; be sure)."""
    try:
        return compute()
    except (Exception, RecursionError) as exc:
        defects.append(f"{what} unreadable ({type(exc).__name__})")
        return default


def written_at(header: bytes | None) -> datetime | None:
    """The ``Date`` field of a header block (RFC 5322 3.6.1) as an aware time; None when it is
    missing or unreadable. A date without a zone is read as UTC.

        >>> written_at(b"Date: Mon, 05 Jan 2026 10:00:00 +0100\\r\\n\\r\\n").isoformat()
        '2026-01-05T10:00:00+01:00'
        >>> written_at(b"Date: soon\\r\\n") is None
        True
    """
    if not header:
        return None
    text = header.decode("ascii", "replace").replace("\r\n", "\n")
    value = None
    for line in text.replace("\n ", " ").replace("\n\t", " ").split("\n"):
        name, sep, rest = line.partition(":")
        if sep and name.strip().lower() == "date":
            value = rest.strip()
            break
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
