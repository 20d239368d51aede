"""What a parsed message says, part by part: its header fields (unfolded, raw 8-bit bytes
and RFC 2047 encoded-words decoded), subjects without their reply and forward prefixes,
Message-IDs, dates, addresses, and the readable text of its body.

These are the pieces :func:`mailhelper.read.parse.parse_mail` builds a
:class:`~mailhelper.model.values.Mail` from, and what :mod:`mailhelper.read.forwards` reads an
attached original with; both import them from here (neither imports the other's insides). Every
function is total: unreadable input gives an empty value, never an exception but where said.
"""

from __future__ import annotations

import binascii
import codecs
import email.utils
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from email import policy  # noqa: F401 - the examples below parse with it
from email.message import Message
from email.parser import BytesParser  # noqa: F401 - the examples below parse with it

from mailhelper.model.addresses import mailboxes
from mailhelper.model.values import Address
from mailhelper.read.htmltext import html_to_text

#: Each header value kept in ``Mail.headers`` is cut to this many characters.
MAX_HEADER_VALUE = 4096
#: At most this many header fields are kept (a mail with more is garbage or an attack).
MAX_HEADER_FIELDS = 1000
#: Address headers are parsed from at most this many characters of their value.
MAX_ADDRESS_CHARS = 512 * 1024
#: ``Mail.subject`` is cut to this length: nothing downstream needs more.
MAX_SUBJECT = 4096
#: MIME parts deeper than this are not looked into.
MAX_DEPTH = 120


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
    none at all (see :func:`mailhelper.model.addresses.mailboxes`: a guess would let a display name
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

# -- headers --------------------------------------------------------------------------------

#: Header values by lower-case name, unfolded, raw 8-bit bytes decoded, words not decoded.
RawHeaders = dict[str, list[str]]


_FOLD = re.compile(r"\r?\n[ \t]*")


def _unfold(value: str) -> str:
    # Most values are on one line: the regular expression runs only where there is a fold.
    if "\n" in value:
        value = _FOLD.sub(" ", value)
    return value.replace("\r", " ").strip()


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

def header_text(message: Message, name: str) -> str:
    """The first value of header ``name``, unfolded and decoded (8-bit and RFC 2047)."""
    raw = raw_headers(message, _charset_hints(message))
    return decode_words(_first(raw, name.lower()))[:MAX_HEADER_VALUE]


def header_addresses(message: Message, name: str) -> tuple[Address, ...]:
    """Every mailbox in every ``name`` header of ``message``."""
    hints = _charset_hints(message)
    return _addresses(raw_headers(message, hints), name.lower(), hints)


def header_date(message: Message) -> datetime | None:
    """The message's Date, aware, or None: the first Date field among those
    :func:`raw_headers` indexes, read as it reads it (without indexing the others)."""
    for count, (key, value) in enumerate(message.raw_items()):
        if count >= MAX_HEADER_FIELDS:
            break
        if key.strip().lower() == "date":
            return parse_date(_recover_8bit(_unfold(str(value)[:MAX_ADDRESS_CHARS]), ()))
    return parse_date("")


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


_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def _recover_8bit(value: str, hints: Iterable[str]) -> str:
    """Undo the parser's surrogate-escaping of raw 8-bit header bytes (not RFC 5322, but
    common: old clients and bounces write headers in the body's charset)."""
    # An ASCII value (most are) has no surrogate: no regular expression needs to say so.
    if value.isascii() or not _ESCAPED_BYTE.search(value):
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


#: :meth:`~email.message.Message.get_content_charset` by the text of the Content-Type field:
#: what it answers depends on nothing else (the stdlib parses the parameters out of
#: ``str()`` of the field, on every call). A reading asks it two or three times a message,
#: and most messages share a few Content-Types: at most this many are remembered, each of at
#: most :data:`_REMEMBERED_CHARSET_CHARS` characters.
_REMEMBERED_CHARSETS = 256
_REMEMBERED_CHARSET_CHARS = 2048
_charsets: dict[str, str | None] = {}


def part_charset(part: Message) -> str | None:
    try:
        field = part.get("content-type")
        if field is None:
            return None  # get_content_charset's answer without the field
        key = str(field)
        if key in _charsets:
            return _charsets[key]
        charset = part.get_content_charset()
        if len(_charsets) < _REMEMBERED_CHARSETS and len(key) <= _REMEMBERED_CHARSET_CHARS:
            _charsets[key] = charset
        return charset
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
        # Every parameter name is part of the header's text, so a part whose Content-Type
        # does not hold "format" has none, and its parameters need not be parsed (twice).
        flowed = ("format" in str(part.get("content-type", "")).lower()
                  and (part.get_param("format") or "").lower() == "flowed")  # type: ignore[union-attr]
        delsp = flowed and (part.get_param("delsp") or "").lower() == "yes"  # type: ignore[union-attr]
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


def message_text(message: Message, hints: tuple[str, ...] | None = None) -> str:
    """The readable text of a message: its first inline text/plain part, else its first
    text/html part as text. Attachments and attached messages are never read. ``hints``:
    the message's :func:`_charset_hints`, when the caller has them already.

    >>> message_text(BytesParser(policy=policy.default).parsebytes(
    ...     b"Content-Type: text/html\\r\\n\\r\\n<p>Hi &amp; bye</p>"))
    'Hi & bye'
    """
    if hints is None:
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
