"""Raw message bytes to a :class:`~mailhelper.models.Mail`: the one door mail comes in by.

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

import binascii
import codecs
import email.utils
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from functools import lru_cache, partial
from itertools import islice
from typing import Any, TypeVar

from mailhelper.addresses import mailboxes
from mailhelper.forwards import find_forward
from mailhelper.htmltext import html_to_text
from mailhelper.models import Address, Mail
from mailhelper.replytext import strip_reply

T = TypeVar("T")

#: Each header value kept in ``Mail.headers`` is cut to this many characters.
MAX_HEADER_VALUE = 4096
#: At most this many header fields are kept (a mail with more is garbage or an attack).
MAX_HEADER_FIELDS = 1000
#: Address headers are parsed from at most this many characters of their value.
MAX_ADDRESS_CHARS = 512 * 1024
#: ... and from this many of all of them together in one mail: the stdlib address parser
#: takes up to 3.5 s per million characters (four fields of 512 KB of "@" took 7 s).
MAX_ADDRESS_TOTAL = 400_000
#: ``Mail.subject`` is cut to this length: nothing downstream needs more.
MAX_SUBJECT = 4096
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
#: MIME parts deeper than this are not looked into.
MAX_DEPTH = 120
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
    hints: tuple[str, ...] = _guard("charsets", partial(_charset_hints, message), (), defects)
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
    text = _guard("text", lambda: message_text(message), "", defects)
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


# -- subjects -------------------------------------------------------------------------------

#: Reply and forward prefixes of the world's mail clients (RFC 5322 section 3.6.5 names only
#: "Re:"; the rest is usage): English, German (AW, WG), French (TR), Spanish and Portuguese
#: (RV, ENC), Italian (R, I), Dutch (Antw, Doorst), Nordic (SV, VS, VB, VL, Vs), Polish
#: (Odp, PD), Romanian (Redir.), Turkish (YNT, İLT), Greek, Chinese, and a counter as in
#: "Re[2]:" or "RE (3):". Matched case-insensitively, with or without a space before the colon.
REPLY_PREFIXES = (
    "re", "aw", "sv", "antw", "odp", "r", "res", "ynt", "απ", "回复", "答复", "回覆", "отв",
)
FORWARD_PREFIXES = (
    "fwd", "fw", "wg", "tr", "rv", "enc", "i", "doorst", "pd", "redir.", "vb", "vs", "vl",
    "videresend", "i̇lt", "ilt", "πρθ", "转发", "轉寄", "пересл", "fwd.",
)
_PREFIX = re.compile(
    r"\s*(?:(?P<word>" + "|".join(re.escape(p) for p in REPLY_PREFIXES + FORWARD_PREFIXES)
    + r")\s?(?:\[\d{1,4}\]|\(\d{1,4}\))?\s?[:：])",
    re.IGNORECASE,
)
_TAG = re.compile(r"\s*(\[[^\[\]]{0,100}\])")
_NETSCAPE_FORWARD = re.compile(r"^\s*\[(?:fwd?|fw):\s*(.*)\]\s*$", re.IGNORECASE | re.DOTALL)


def clean_subject(subject: str) -> str:
    """The subject without reply and forward prefixes, wherever they repeat; tags stay.

    >>> clean_subject("RE: Fwd: AW: [offer] WG: Intro to Acme ")
    '[offer] Intro to Acme'
    >>> clean_subject("[Fwd: Netscape vs. Apache]")
    'Netscape vs. Apache'
    """
    netscape = _NETSCAPE_FORWARD.match(subject[:MAX_SUBJECT])
    text = netscape.group(1) if netscape else subject[:MAX_SUBJECT]
    tags, position = [], 0
    # One left-to-right scan (no re-slicing) keeps "Re: " * 500_000 linear.
    while True:
        prefix = _PREFIX.match(text, position)
        if prefix:
            position = prefix.end()
            continue
        tag = _TAG.match(text, position)
        if tag and _PREFIX.match(text, tag.end()):
            tags.append(tag.group(1))
            position = tag.end()
            continue
        break
    return " ".join([*tags, text[position:].strip()]).strip()


def subject_prefix(subject: str) -> str | None:
    """``"reply"``, ``"forward"`` or None: what the outermost prefix says the mail is.
    Leading tags (``[EXT]``, ``[offer]``) and ``#tags`` are skipped.

    >>> subject_prefix("[EXT] FW: RE: Intro"), subject_prefix("Re: Fwd: x"), subject_prefix("x")
    ('forward', 'reply', None)
    """
    text = subject[:MAX_SUBJECT]
    if _NETSCAPE_FORWARD.match(text):
        return "forward"
    position = 0
    while True:
        tag = _TAG.match(text, position) or re.compile(r"\s*#\w+\b").match(text, position)
        if not tag:
            break
        position = tag.end()
    prefix = _PREFIX.match(text, position)
    if not prefix:
        return None
    word = prefix.group("word").lower()
    return "reply" if word in REPLY_PREFIXES else "forward"


# -- message ids and dates ------------------------------------------------------------------

_BRACKETED_ID = re.compile(r"<\s*([^<>\s]{1,998}?)\s*>")
# Starting only where a run starts keeps a long run without "@" linear (see forwards._ADDRESS).
_BARE_ID = re.compile(r"(?<![^<>\s,;\"])[^<>\s,;\"]{1,998}@[^<>\s,;\"]{1,998}")


def message_ids(value: str) -> tuple[str, ...]:
    """The Message-IDs in a header value, without angle brackets, in order, de-duplicated.
    Bare ids (no brackets, as some old clients write them) count when they contain an @.

    >>> message_ids("<a@b> junk <c@d>\\r\\n <a@b>"), message_ids("x@y")
    (('a@b', 'c@d'), ('x@y',))
    """
    ids = _BRACKETED_ID.findall(value) or _BARE_ID.findall(value)
    return tuple(dict.fromkeys(i for i in ids if i.strip("@")))


def _capped_ids(value: str) -> tuple[str, ...]:
    ids = message_ids(value)
    # The thread root and the latest ancestors are what threading needs (RFC 5322 3.6.4).
    return ids if len(ids) <= MAX_IDS else (ids[0], *ids[-(MAX_IDS - 1) :])


def parse_date(value: str) -> datetime | None:
    """An RFC 5322 date as an aware datetime; None for garbage or a date without a zone.

    >>> parse_date("Tue, 1 Dec 2026 09:00:00 +0100").isoformat()
    '2026-12-01T09:00:00+01:00'
    >>> parse_date("yesterday") is None, parse_date("1 Dec 2026 09:00 -0000") is None
    (True, True)
    """
    try:
        moment = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return moment if moment.tzinfo is not None else None


# -- addresses ------------------------------------------------------------------------------


def address_list(value: str, hints: Iterable[str] = ()) -> tuple[Address, ...]:
    """The mailboxes in an address header value: bare addresses folded to lower case in ASCII
    only, names decoded. Entries without an address (groups, garbage, ``<>``) are skipped; a
    value where one entry shows two different addresses outside its quoted name is read as
    none at all (see :func:`mailhelper.addresses.mailboxes`: a guess would let a display name
    choose the address).

    >>> address_list('"Doe, Jane" <Jane@X.org>, =?utf-8?q?Andr=C3=A9?= <a@y.fr>, <>, junk')
    (Address(email='jane@x.org', name='Doe, Jane'), Address(email='a@y.fr', name='André'))
    >>> address_list('"Jane <jane@x.org>" <eve@y.org>')
    (Address(email='eve@y.org', name='Jane <jane@x.org>'),)
    >>> address_list('Jane <jane@x.org> <eve@y.org>')
    ()
    """
    text = _recover_8bit(_unfold(value[:MAX_ADDRESS_CHARS]), hints)
    found: dict[str, Address] = {}
    for addr, name in mailboxes(text) or ():
        if len(addr) > 320:
            continue
        found.setdefault(addr, Address(addr, " ".join(decode_words(name).split())))
    return tuple(found.values())


def _addresses(
    raw: RawHeaders, name: str, hints: tuple[str, ...], budget: list[int] | None = None,
) -> tuple[Address, ...]:
    """Every mailbox of every ``name`` field; with a ``budget`` (a one-item list), at most
    that many characters are read, and the budget is reduced by what was."""
    found: dict[str, Address] = {}
    for value in raw.get(name, ()):
        if budget is not None:
            value = value[: max(budget[0], 0)]
            budget[0] -= len(value)
        for address in address_list(value, hints):
            found.setdefault(address.email, address)
    return tuple(found.values())


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


# -- headers --------------------------------------------------------------------------------

#: Header values by lower-case name, unfolded, raw 8-bit bytes decoded, words not decoded.
RawHeaders = dict[str, list[str]]


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]*", " ", value).replace("\r", " ").strip()


def raw_headers(message: Message, hints: Iterable[str] = ()) -> RawHeaders:
    """The first :data:`MAX_HEADER_FIELDS` header fields of ``message``, indexed once, so
    that a mail with 100,000 header lines costs one pass and not one per question."""
    index: RawHeaders = {}
    for count, (key, value) in enumerate(message.raw_items()):
        if count >= MAX_HEADER_FIELDS:
            break
        name = key.strip().lower()
        if name:
            text = str(value)[:MAX_ADDRESS_CHARS]
            index.setdefault(name, []).append(_recover_8bit(_unfold(text), hints))
    return index


def _first(raw: RawHeaders, name: str) -> str:
    values = raw.get(name)
    return values[0] if values else ""


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


def header_text(message: Message, name: str) -> str:
    """The first value of header ``name``, unfolded and decoded (8-bit and RFC 2047)."""
    raw = raw_headers(message, _charset_hints(message))
    return decode_words(_first(raw, name.lower()))[:MAX_HEADER_VALUE]


def header_addresses(message: Message, name: str) -> tuple[Address, ...]:
    """Every mailbox in every ``name`` header of ``message``."""
    hints = _charset_hints(message)
    return _addresses(raw_headers(message, hints), name.lower(), hints)


def header_date(message: Message) -> datetime | None:
    """The message's Date, aware, or None."""
    return parse_date(_first(raw_headers(message), "date"))


# -- charsets and RFC 2047 encoded-words ----------------------------------------------------

#: Labels mail uses that Python does not know, or knows as a narrower charset than what
#: senders really write under that label (the WHATWG Encoding Standard makes the same moves).
_CHARSET_ALIASES = {
    "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949", "euc-kr": "cp949", "euc_kr": "cp949",
    "gb2312": "gb18030", "gbk": "gb18030", "gb_2312-80": "gb18030", "x-gbk": "gb18030",
    "cn-gb": "gb18030", "iso-8859-8-i": "iso-8859-8", "iso-8859-6-i": "iso-8859-6",
    "unicode-1-1-utf-7": "utf-7", "x-sjis": "cp932", "shift_jis": "cp932", "sjis": "cp932",
    "windows-31j": "cp932", "ms_kanji": "cp932", "x-euc-jp": "euc_jp", "big5": "big5hkscs",
    "tis-620": "cp874", "windows-874": "cp874", "iso-8859-1": "cp1252", "latin1": "cp1252",
    "iso_8859-1": "cp1252", "us-ascii": "utf-8", "ascii": "utf-8", "ansi_x3.4-1968": "utf-8",
    "utf8": "utf-8", "x-unknown": "", "unknown-8bit": "", "unknown": "", "default": "",
    "x-user-defined": "", "charset": "",
}
#: Python codecs that are not text charsets of any mail, whatever a header claims.
_REFUSED_CODECS = frozenset(
    {"unicode_escape", "raw_unicode_escape", "punycode", "idna", "undefined", "mbcs", "oem"}
)
_ISO2022JP = frozenset({"iso2022_jp", "iso2022_jp_1", "iso2022_jp_2", "iso2022_jp_3"})


def _codec(label: str | None) -> str | None:
    """The Python codec for a charset label, or None when there is no usable one."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    name = _CHARSET_ALIASES.get(name, name)
    if name.startswith("x-mac-"):
        name = "mac-" + name[6:]
    try:
        codec = codecs.lookup(name).name if name else None
    except (LookupError, ValueError):
        return None
    if codec in _REFUSED_CODECS:
        return None
    return codec


def decode_bytes(data: bytes, charset: str | None = None, hints: Iterable[str] = ()) -> str:
    """Text of ``data`` in the declared ``charset``, else the first of UTF-8, ``hints`` and
    Windows-1252 that fits; never raises.

    >>> decode_bytes("스티해".encode("cp949"), "ks_c_5601-1987")
    '스티해'
    >>> decode_bytes(b"caf\\xe9", "us-ascii"), decode_bytes(b"\\xff\\xfe", "no-such-charset")
    ('café', 'ÿþ')
    """
    declared = _codec(charset)
    candidates = [declared, "utf-8", *(_codec(h) for h in hints), "cp1252"]
    for codec in dict.fromkeys(c for c in candidates if c):
        try:
            if codec in _ISO2022JP:
                return _decode_iso2022jp(data)
            return data.decode(codec)
        except (UnicodeError, LookupError, ValueError):
            continue
    return data.decode(declared or "latin-1", errors="replace")


def _decode_iso2022jp(data: bytes) -> str:
    """ISO-2022-JP, read as Microsoft's CP50220 does: Outlook puts NEC and IBM characters
    (№, ①, ㈱) in JIS mode, which Python's strict codec rejects. Re-encode as CP932."""
    try:
        return data.decode("iso2022_jp")
    except UnicodeDecodeError:
        pass
    out, mode, i = bytearray(), "ascii", 0
    while i < len(data):
        if data[i] == 0x1B:
            escape = data[i + 1 : i + 3]
            if escape in (b"$B", b"$@"):
                mode, i = "jis", i + 3
                continue
            if escape in (b"(B", b"(J"):
                mode, i = "ascii", i + 3
                continue
            if escape == b"(I":
                mode, i = "kana", i + 3
                continue
        byte = data[i]
        if mode == "jis" and 0x21 <= byte <= 0x7E and i + 1 < len(data):
            j1, j2 = byte, data[i + 1]
            s1 = (j1 + 1) // 2 + (0x70 if j1 <= 0x5E else 0xB0)
            s2 = j2 + (0x1F + (j2 >= 0x60) if j1 % 2 else 0x7E)
            out += bytes((s1 & 0xFF, s2 & 0xFF))
            i += 2
            continue
        out.append(byte + 0x80 if mode == "kana" and 0x21 <= byte <= 0x5F else byte)
        i += 1
    return bytes(out).decode("cp932", errors="replace")


def _recover_8bit(value: str, hints: Iterable[str]) -> str:
    """Undo the parser's surrogate-escaping of raw 8-bit header bytes (not RFC 5322, but
    common: old clients and bounces write headers in the body's charset)."""
    if not re.search("[\udc80-\udcff]", value):
        return value
    return decode_bytes(value.encode("utf-8", "surrogateescape"), None, hints)


_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,75})\?([bBqQ])\?([^?]{0,10000}?)\?=")
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")


def decode_words(text: str) -> str:
    """``text`` with its RFC 2047 encoded-words decoded. Adjacent words of one charset are
    joined before decoding (a character may be split between them, RFC 2047 section 5 or
    not); the space between two words goes (section 6.2); bad base64 padding is forgiven.

    >>> decode_words("=?utf-8?q?Caf=C3=A9?= =?UTF-8?B?IGF1?= lait")
    'Café au lait'
    """
    if "=?" not in text:
        return text
    pieces: list[str] = []
    pending: list[tuple[str, bytes]] = []  # encoded words still to be joined and decoded
    position = 0

    def flush() -> None:
        # Runs of one charset, each joined once: popping from the front and adding bytes up
        # one word at a time was quadratic (160,000 words: 2.2 s).
        start = 0
        while start < len(pending):
            charset, end = pending[start][0], start
            while end < len(pending) and pending[end][0] == charset:
                end += 1
            pieces.append(decode_bytes(b"".join(data for _, data in pending[start:end]),
                                       charset))
            start = end
        pending.clear()

    for word in _ENCODED_WORD.finditer(text):
        gap = text[position : word.start()]
        if gap.strip() or not pending:
            flush()
            pieces.append(gap)
        charset = word.group(1).split("*", 1)[0]  # RFC 2231 language tag
        pending.append((charset.lower(), _word_bytes(word.group(2), word.group(3))))
        position = word.end()
    flush()
    pieces.append(text[position:])
    return "".join(pieces)


def _word_bytes(encoding: str, payload: str) -> bytes:
    data = payload.encode("ascii", "replace")
    if encoding in "qQ":
        return _Q_ESCAPE.sub(lambda m: bytes((int(m.group(1), 16),)), data.replace(b"_", b" "))
    data = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
    if len(data) % 4 == 1:
        data = data[:-1]
    try:
        return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
    except binascii.Error:
        return b""


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
    declared = _BOUNDARY_PARAMETER.finditer(readable)
    levels = max(1, sum(1 for _ in islice(declared, MAX_MULTIPARTS + 1)))
    most = min(MAX_MIME_LINES, MAX_LINE_CHECKS // levels)
    if readable.count(b"\n") > most:
        readable = _first_lines(readable, most)
        cut = f"read up to its {most}th line only ({levels} multiparts)"
    return readable, cut


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
#: headers are long; remembering them would keep megabytes of parse trees).
_MEMO_VALUE = 2048


@lru_cache(maxsize=1024)
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
    declared = _BOUNDARY_PARAMETER.finditer(raw)
    if sum(1 for _ in islice(declared, MAX_MULTIPARTS + 1)) > MAX_MULTIPARTS:
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


def walk(message: Message, into_messages: bool = False) -> Iterator[tuple[Message, int]]:
    """Every part of ``message`` with its depth, depth first, in order; iterative, so a
    hostile nesting depth cannot exhaust the stack. Attached messages (message/rfc822) are
    entered only with ``into_messages``."""
    stack: list[tuple[Message, int]] = [(message, 0)]
    while stack:
        part, depth = stack.pop()
        yield part, depth
        if depth >= MAX_DEPTH:
            continue
        children: list[Message] = []
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list) and (into_messages or part is message or
                                              _content_type(part).startswith("multipart/")):
                children = [p for p in payload if isinstance(p, Message)]
        stack.extend((child, depth + 1) for child in reversed(children))


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "text/plain"


def _is_attachment(part: Message) -> bool:
    try:
        disposition = part.get_content_disposition()
    except Exception:
        disposition = None
    return disposition == "attachment"


def part_charset(part: Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:
        found = re.search(r"charset\s*=\s*\"?([^\s\";]+)", str(part.get("content-type", "")))
        return found.group(1) if found else None


def part_text(part: Message, hints: Iterable[str] = ()) -> str:
    """The decoded text of one leaf part; HTML comes back as readable text."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if not isinstance(payload, bytes):
        return ""
    text = decode_bytes(payload, part_charset(part), hints).replace("\r\n", "\n")
    text = text.replace("\r", "\n")
    subtype = _content_type(part)
    if subtype == "text/html":
        return html_to_text(text)
    try:
        flowed = (part.get_param("format") or "").lower() == "flowed"  # type: ignore[union-attr]
        delsp = (part.get_param("delsp") or "").lower() == "yes"  # type: ignore[union-attr]
    except Exception:
        flowed = delsp = False
    return _unflow(text, delsp) if flowed else text


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: a line ending in a space continues on the next one of the
    same quote depth (section 4.5: a change of depth ends the paragraph).

    >>> _unflow("> Hi \\n> there\\nHello \\nworld", delsp=False)
    '> Hi there\\nHello world'
    """
    # Each paragraph is collected as a list of pieces and joined once: appending to a string
    # held in a list copies it every time, quadratic in a paragraph of 500,000 flowed lines.
    paragraphs: list[list[str]] = []
    joining_depth: int | None = None  # the quote depth of an open flowed paragraph
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        body = line[depth:]
        if body.startswith(" "):  # space-stuffing (section 4.4)
            body = body[1:]
        flowed = body.endswith(" ") and body != "-- "
        piece = body[:-1] if flowed and delsp else body
        if joining_depth == depth and paragraphs:
            paragraphs[-1].append(piece)
        else:
            paragraphs.append([">" * depth + " " + piece if depth else piece])
        joining_depth = depth if flowed else None
    return "\n".join("".join(pieces) for pieces in paragraphs)


def message_text(message: Message) -> str:
    """The readable text of a message: its first inline text/plain part, else its first
    text/html part as text. Attachments and attached messages are never read.

    >>> message_text(BytesParser(policy=policy.default).parsebytes(
    ...     b"Content-Type: text/html\\r\\n\\r\\n<p>Hi &amp; bye</p>"))
    'Hi & bye'
    """
    hints = _charset_hints(message)
    html: Message | None = None
    for part, _depth in walk(message):
        if part.is_multipart() or _is_attachment(part):
            continue
        content_type = _content_type(part)
        if content_type == "text/plain":
            return part_text(part, hints)
        if content_type == "text/html" and html is None:
            html = part
    return part_text(html, hints) if html is not None else ""


def _charset_hints(message: Message) -> tuple[str, ...]:
    """Charsets the message's parts declare: the best guess for its raw 8-bit headers."""
    found: list[str] = []
    for part, _depth in walk(message):
        charset = part_charset(part)
        if charset and charset.lower() not in ("us-ascii", "utf-8") and charset not in found:
            found.append(charset)
        if len(found) >= 3:
            break
    return tuple(found)


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
