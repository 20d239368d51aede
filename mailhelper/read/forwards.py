"""The original message inside a forward: an attached message, or an inline header block.

Two ways a forward carries its original:

- **attached** (message/rfc822, or message/news from old Netscape; also inside
  multipart/alternative as Zimbra sends it): the original's own headers say everything, its
  Message-ID included. Used only when the forwarder's text has no inline forward. Attached
  messages inside a multipart/report are bounced mail, not forwards, and are left alone.
- **inline**: a marker line, then the original's header fields as text, then its body. Clients
  and languages differ in the marker and the labels (see :mod:`mailhelper.read.replytext` for the
  tables); some markers say "forward" outright (Gmail's "---------- Forwarded message
  ---------", Apple's "Begin forwarded message:", Thunderbird's and Yahoo's "Forwarded
  Message"), others are shared with replies (Outlook's "From:/Sent:" block, "-----Original
  Message-----") and only count when the subject says forward ("FW:", "WG:", "TR:", ...) or
  when there is no subject to ask (a bare body). When the subject says reply ("Re:"), nothing
  inline is a forward: the quoted history of a reply often holds an earlier forward.

Nested forwards give the outermost original (the one the forwarder saw)::

    >>> found = find_inline_forward(
    ...     "FYI\\n\\n---------- Forwarded message ---------\\nFrom: Jane Doe <jane@acme.com>\\n"
    ...     "Date: Wed, Oct 27, 2021 at 9:31 AM\\nSubject: Intro\\nTo: <sam@x.org>\\n\\nHi Sam",
    ...     "Fwd: Intro")
    >>> found.from_, found.subject
    (Address(email='jane@acme.com', name='Jane Doe'), 'Intro')
    >>> found.to
    (Address(email='sam@x.org', name=''),)
    >>> found.date.isoformat(), found.body
    ('2021-10-27T09:31:00+00:00', 'Hi Sam')
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from email.message import Message

from dateutil import parser as dateparser

from mailhelper.model.addresses import BARE_ADDRESS, Entry, entries, fold, mailboxes
from mailhelper.model.values import Address, Forwarded
from mailhelper.read.mailtext import (
    clean_subject,
    header_addresses,
    header_date,
    header_text,
    message_ids,
    message_text,
    subject_prefix,
    walk,
)
from mailhelper.read.replytext import (
    FORWARD_MARKER,
    HEADER_LABELS,
    ORIGINAL_MARKER,
    UNDERSCORES,
    attribution_at,
    header_block_at,
    header_field,
    history_start,
    is_quoted,
    may_start_at,
    quote_follows,
)

#: Content types that carry a whole message as an attachment.
MESSAGE_TYPES = ("message/rfc822", "message/news", "message/global")
#: The header block is read from at most this many lines.
_MAX_BLOCK_LINES = 24
#: The most Message-IDs an attached original's In-Reply-To and References are kept to (the
#: latest): enough to find its thread, bounded whatever the sender wrote.
_MAX_REFERENCES = 50
#: Inline detection looks at this many lines of the body at most.
_MAX_LINES = 20_000


def find_forward(message: Message, text: str, subject: str) -> Forwarded | None:
    """The original message forwarded in ``message`` (whose readable ``text`` and decoded
    ``subject`` the caller has already), or None when it is not a forward.

    The forwarder's own inline block comes first: an attached message is taken only when the
    forwarder's text has no inline forward ("forward as attachment"). A message attached to
    the original travels along with an inline forward (Gmail and others carry attachments
    over), and it is whatever its sender chose to attach: it must not name the counterpart.
    """
    zone = _zone_of(header_date(message))
    inline = find_inline_forward(text, subject, zone)
    if inline is not None:
        return inline
    attached = _attached_message(message)
    return _from_attached(attached) if attached is not None else None


def find_inline_forward(
    text: str, subject: str | None = None, zone: tzinfo | None = None
) -> Forwarded | None:
    """The forward written out in ``text`` (see the module docstring for when a marker
    counts). ``subject`` is the forwarding mail's subject, None or "" for a bare body;
    ``zone`` is where dates without a zone are read (the forwarder's, from its Date)."""
    said = subject_prefix(subject) if subject else None
    if said == "reply":
        return None
    weak_ok = said == "forward" or not subject
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    lines = text.split("\n")[:_MAX_LINES]
    # Only these lines can start a forward: at any other, every test below fails.
    for index in sorted(may_start_at(lines, text)):
        line = lines[index]
        if not line.strip():
            continue
        bare = _dequote(line)
        marker = FORWARD_MARKER.match(bare)
        if marker:
            rest = (marker.group("rest") or "").strip()
            block = ([rest] if rest else []) + lines[index + 1 :]
            return _from_block(block, subject, zone)
        if not weak_ok:
            continue
        if ORIGINAL_MARKER.match(bare) or (
            UNDERSCORES.match(bare) and _header_block_follows(lines, index + 1)
        ):
            return _from_block(lines[index + 1 :], subject, zone)
        if not is_quoted(line) and header_block_at(lines, index):
            return _from_block(lines[index:], subject, zone)
        if said == "forward" and not is_quoted(line):
            span = attribution_at(lines, index)
            if span:  # Outlook 2019: 'Am ..., schrieb "Jane" <jane@x>:' over the original
                attribution = " ".join(lines[index : index + span])
                body = _dedent(lines[index + span :])
                return Forwarded(
                    from_=_attribution_sender(attribution),
                    subject=clean_subject(subject or ""),
                    date=parse_loose_date(_attribution_date(attribution), zone),
                    body=body,
                )
    return None


def quoted_authors(
    text: str, zone: tzinfo | None = None
) -> tuple[tuple[Address, datetime | None], ...]:
    """Who a reply quotes, and when they wrote, as the reply's attribution lines say: each
    unquoted attribution line ("On Tue, Jane Park <jane@x.org> wrote:", "Am ... schrieb
    ...:", ...) followed by ``>``-quoted text, and the first block of unquoted history (an
    attribution over the unquoted original, or a "-----Original Message-----"/"From: ..."
    header block). Lines already quoted are the quoted mail's own history and are not read:
    they say who *it* quoted. An attribution that names no single address gives nothing.
    Only the first :data:`_MAX_LINES` lines are read; ``zone`` as for
    :func:`find_inline_forward`.

    >>> [(a.email, d.isoformat() if d else None) for a, d in quoted_authors(
    ...     "Thanks!\\n\\nOn Tue, 8 Dec 2026 at 10:00, Jane Park <jane@acme.test> wrote:\\n> Yes")]
    [('jane@acme.test', '2026-12-08T10:00:00+00:00')]
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "").split("\n")
    lines = lines[:_MAX_LINES]
    found: list[tuple[Address, datetime | None]] = []
    end = history_start(lines)
    for index in range(end):
        if is_quoted(lines[index]):
            continue
        span = attribution_at(lines, index)
        if span and quote_follows(lines, index + span):
            _add_attribution(found, " ".join(lines[index : index + span]), zone)
    if end < len(lines):
        bare = _dequote(lines[end])
        span = attribution_at(lines, end)
        if span:
            _add_attribution(found, " ".join(lines[end : end + span]), zone)
        else:
            skip = 1 if (FORWARD_MARKER.match(bare) or ORIGINAL_MARKER.match(bare)
                         or UNDERSCORES.match(bare)) else 0
            block = _from_block(lines[end + skip :], None, zone)
            if block is not None and block.from_ is not None:
                found.append((block.from_, block.date))
    return tuple(found)


def _add_attribution(
    found: list[tuple[Address, datetime | None]], attribution: str, zone: tzinfo | None
) -> None:
    sender = _attribution_sender(attribution)
    if sender is not None:
        found.append((sender, parse_loose_date(_attribution_date(attribution), zone)))


# -- attached messages ----------------------------------------------------------------------


def _attached_message(message: Message) -> Message | None:
    """The first attached message, unless ``message`` is a report (RFC 6522) quoting it."""
    try:
        top = message.get_content_type()
    except Exception:
        return None
    if top == "multipart/report":  # a bounce or receipt quoting the original
        return None
    for part, _depth in walk(message):
        try:
            content_type = part.get_content_type()
        except Exception:
            continue
        if content_type in MESSAGE_TYPES and part is not message:
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
    return None


def _from_attached(inner: Message) -> Forwarded:
    senders = header_addresses(inner, "from") or header_addresses(inner, "sender")
    ids = message_ids(header_text(inner, "message-id"))
    named = message_ids(f'{header_text(inner, "in-reply-to")} {header_text(inner, "references")}')
    return Forwarded(
        from_=senders[0] if len(senders) == 1 else None,  # as for an inline From line
        to=header_addresses(inner, "to"),
        cc=header_addresses(inner, "cc"),
        subject=header_text(inner, "subject"),
        date=header_date(inner),
        message_id=ids[0] if ids else None,
        body=message_text(inner).strip(),
        references=tuple(dict.fromkeys(named))[-_MAX_REFERENCES:],
    )


# -- inline header blocks -------------------------------------------------------------------


def _from_block(lines: list[str], subject: str | None, zone: tzinfo | None) -> Forwarded | None:
    """The forward whose header block starts at ``lines[0]`` (after blank lines)."""
    start = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    depth = _depth(lines[start]) if start < len(lines) else 0
    lines = [_dequote(line, depth) for line in lines[start:]]
    fields: dict[str, str] = {}
    last: str | None = None
    index = 0
    while index < min(len(lines), _MAX_BLOCK_LINES):
        line = lines[index]
        single = header_field(line)
        parts = _glued_fields(line) or ([single] if single else [])
        if parts:
            for kind, value in parts:
                if kind in fields:  # a second From: is the next block's, or the body's
                    break
                fields[kind] = value
                last = kind
            else:
                index += 1
                continue
            break
        if not line.strip():
            if fields and not _next_is_new_field(lines, index, fields):
                break
            index += 1
            continue
        if last is not None and _continues(fields[last]):
            fields[last] = f"{fields[last]} {line.strip()}"
            index += 1
            continue
        break
    if "from" not in fields and "subject" not in fields:
        return None
    body = _unquoted_body(lines[index:])
    return Forwarded(
        from_=_sender(fields.get("from", "")),
        to=tuple(_mailboxes(fields.get("to", "")) or ()),
        cc=tuple(_mailboxes(fields.get("cc", "")) or ()),
        subject=fields.get("subject", "").strip() or clean_subject(subject or ""),
        date=parse_loose_date(fields.get("date", ""), zone),
        body=body.strip(),
    )


def _unquoted_body(lines: list[str]) -> str:
    """The body; Missive and MailMate quote it with ``>`` under an unquoted header block."""
    texts = [line for line in lines if line.strip()]
    if texts and sum(map(is_quoted, texts)) >= 0.8 * len(texts):
        lines = [_dequote(line, 1) for line in lines]
    return "\n".join(lines).strip("\n")


def _next_is_new_field(lines: list[str], index: int, fields: dict[str, str]) -> bool:
    for line in lines[index + 1 : index + 3]:
        if line.strip():
            field = header_field(line)
            return field is not None and field[0] not in fields
    return False


def _continues(value: str) -> bool:
    """Whether a field value was wrapped onto the next line ("To: a <a@x>,", "From: Jane <")."""
    return not value or value.endswith(("<", ",", ";", "(")) or value.count("<") > value.count(">")


def _header_block_follows(lines: list[str], index: int) -> bool:
    window = [_dequote(line) for line in lines[index : index + 11]]
    for offset in range(min(3, len(window))):
        if window[offset].strip():
            return header_block_at(window, offset)
    return False


#: Labels as Yahoo writes them, glued into one line: "From: a <a@x>To: b <b@x>Subject: Hi".
_GLUED_LABELS = sorted(
    (label for labels in HEADER_LABELS.values() for label in labels if len(label) > 1),
    key=len,
    reverse=True,
)
_GLUED = re.compile(
    r"(?P<label>" + "|".join(re.escape(label) for label in _GLUED_LABELS) + r")\s?[:：]"
    r"|(?<=>)(?P<dw>Dw) "  # Yahoo's Polish Cc label comes without its colon
)


def _glued_fields(line: str) -> list[tuple[str, str]] | None:
    """Yahoo's one-line header block, split at its labels; None for an ordinary line."""
    if len(line) > 4000:
        return None
    found = list(_GLUED.finditer(line))
    if len(found) < 3 or found[0].start() > 3:
        return None
    fields = []
    for match, following in zip(found, [*found[1:], None], strict=True):
        label = match.group("label") or match.group("dw")
        value = line[match.end() : following.start() if following else len(line)]
        field = header_field(f"{label}: x")
        kind = field[0] if field else "cc"
        fields.append((kind, value.strip()))
    return fields


# -- addresses as clients print them --------------------------------------------------------

_SAME_MAILTO = re.compile(r"(" + BARE_ADDRESS.pattern + r")\s*<mailto:\1>", re.IGNORECASE)
_MAILTO = re.compile(r"[<\[]mailto:([^>\]\s]+)[>\]]", re.IGNORECASE)
_ON_BEHALF = re.compile(r"\s(?:on behalf of|im auftrag von|de la part de|en nombre de)\s",
                        re.IGNORECASE)


def _outside_quotes(text: str) -> str:
    """``text`` with the content of its quoted strings and comments blanked out (same length),
    to search it for words that mean something only outside them."""
    masked: list[str] = []
    quoted = escaped = False
    depth = 0
    for char in text:
        if escaped:
            escaped = False
        elif quoted or depth:
            if char == "\\":
                escaped = True
            elif quoted and char == '"':
                quoted = False
            elif not quoted and char in "()":
                depth += 1 if char == "(" else -1
        elif char == '"':
            quoted = True
        elif char == "(":
            depth = 1
        masked.append(" " if quoted or depth or escaped else char)
    return "".join(masked)


def _mailboxes(value: str) -> list[Address] | None:
    """The mailboxes in a header value as clients print it in a forward: RFC 5322 ("Jane"
    <j@x>, j@x (Jane)) and the forms clients add: "Jane [mailto:j@x]", "Jane<mailto:j@x>",
    "j@x<mailto:j@x>", "Doe, Jane <j@x>; Bob (b@x)", "Jane <j@x> on behalf of bot@x".
    Name-only entries are dropped (no address to use), or are the first part of the next
    entry's name ("Doe, Jane <j@x>").

    Only the address part of an entry is ever an address: a quoted name is a name whatever it
    holds. An entry that shows two different addresses outside quotes (``Jane <j@x> <e@y>``,
    ``j@x <e@y>``, ``e@y (j@x)``) cannot be read without guessing which one is real; then the
    line is ambiguous and the answer is None, not a guess.

    >>> _mailboxes('"Doe, Jane" <J@x.org>; bob@y.org <bob@y.org>, Al<mailto:al@z.org>')
    [Address(email='j@x.org', name='Doe, Jane'), Address(email='bob@y.org', name=''), \
Address(email='al@z.org', name='Al')]
    >>> _mailboxes('"Prof. Jane <jane@victims.test>" <eve@evil.test>')
    [Address(email='eve@evil.test', name='Prof. Jane <jane@victims.test>')]
    >>> _mailboxes('Prof. Jane <jane@victims.test> <eve@evil.test>') is None
    True
    """
    text = _SAME_MAILTO.sub(r"\1", value[:10_000])
    text = _MAILTO.sub(r"<\1>", text)
    masked = _outside_quotes(text)
    behalf = _ON_BEHALF.search(masked)
    if behalf and "<" in masked[: behalf.start()] and not re.search(r'[<"(]', text[behalf.end() :]):
        # Outlook: "Jane <j@x> on behalf of bot@x": Jane is who wrote. Only that shape: in
        # "<j@x> on behalf of <e@y>" or "j@x on behalf of <e@y>" the words before the last
        # bracketed address may all be a display name.
        text = text[: behalf.start()]
    found = mailboxes(text)
    if found is None:
        return None
    return [Address(email, _clean_name(name) if fold(_clean_name(name)) != email else "")
            for email, name in found]


def _sender(value: str) -> Address | None:
    """The one mailbox of a From line; None when it shows none, or more than one (a From
    naming several people in a forward is an unquoted name with commas and an address in it,
    "jane@x, Jane <eve@y>", not a list)."""
    boxes = _mailboxes(value)
    return boxes[0] if boxes is not None and len(boxes) == 1 else None


def _clean_name(name: str) -> str:
    name = name.strip().lstrip(",;").strip()
    name = name.strip("\"'* ").strip()
    return " ".join(name.split())


# -- small helpers --------------------------------------------------------------------------


def _depth(line: str) -> int:
    stripped = line.lstrip()
    return len(stripped) - len(stripped.lstrip(">")) if stripped.startswith(">") else 0


def _dequote(line: str, depth: int | None = None) -> str:
    """``line`` without its first ``depth`` quote marks (all of them when None).

    >>> _dequote("> > hi", 1), _dequote("> > hi"), _dequote(">    code", 1), _dequote("hi")
    ('> hi', 'hi', '   code', 'hi')
    """
    position = count = 0
    while position < len(line) and (depth is None or count < depth):
        char = line[position]
        if char == ">":
            count += 1
        elif char not in " \t":
            break
        position += 1
    if count == 0:
        return line
    rest = line[position:]
    return rest[1:] if rest.startswith(" ") else rest


def _dedent(lines: list[str]) -> str:
    """The original under an Outlook 2019 attribution, indented four spaces."""
    texts = [line.rstrip() for line in lines]
    indents = [len(t) - len(t.lstrip(" ")) for t in texts if t.strip()]
    cut = min(indents, default=0)
    return "\n".join(t[cut:] for t in texts).strip("\n")


def _attribution_date(text: str) -> str:
    """The date part of an attribution: the text between the lead word and the name."""
    text = re.sub(r"^\s*(?:on|am|le|el|il giorno|il|op|em|den|w dniu|dne|dnia)\s+", "", text,
                  flags=re.IGNORECASE)
    return re.split(r"\s(?:schrieb|wrote|a écrit|escribió|escreveu|ha scritto|schreef|"
                    r"skrev|napisał|napsal|kirjoitti)\b|\"|«|„|<", text, maxsplit=1)[0]


def _attribution_sender(text: str) -> Address | None:
    """The sender an attribution line names: 'Am ..., schrieb "Jane Doe" <jane@x.org>:'. The
    date before the name holds commas, so the line is read as one entry, not a list."""
    entry = Entry()
    for found in entries(text):
        if found.unreadable:
            return None
        entry.parts += found.parts
        entry.angles += found.angles
        entry.comments += found.comments
    addresses = entry.addresses()
    if len(addresses) != 1:
        return None
    [email] = addresses
    quoted = [t for is_quoted, t in entry.parts if is_quoted]
    return Address(email, _clean_name(quoted[0]) if quoted else "")


def _zone_of(moment: datetime | None) -> tzinfo:
    """Clients print forwarded dates in the forwarder's zone; its Date header has it."""
    return moment.tzinfo if moment is not None and moment.tzinfo is not None else UTC


# -- dates as clients print them ------------------------------------------------------------

_MONTH_NAMES = {
    1: "january jan januar jänner janvier janv enero ene janeiro gennaio gen januari "
       "tammikuuta tammikuu stycznia styczeń sty января январь янв ocak oca ledna січня",
    2: "february feb februar février févr fév febrero fevereiro fev febbraio februari "
       "helmikuuta helmikuu lutego luty lut февраля февраль фев şubat şub února лютого",
    3: "march mar märz mär mrz mars marzo março marco maart marts maaliskuuta maaliskuu "
       "marca marzec марта март mart března березня",
    4: "april apr avril avr abril abr aprile huhtikuuta huhtikuu kwietnia kwiecień kwi "
       "апреля апрель nisan nis dubna квітня",
    5: "may mai mayo maio maggio mag mei maj toukokuuta toukokuu maja мая май mayıs května "
       "травня",
    6: "june jun juni juin junio junho giugno giu kesäkuuta kesäkuu czerwca czerwiec cze "
       "июня июнь июн haziran haz června червня",
    7: "july jul juli juillet juil julio julho luglio lug heinäkuuta heinäkuu lipca lipiec "
       "lip июля июль июл temmuz tem července липня",
    8: "august aug août agosto ago augustus augusti elokuuta elokuu sierpnia sierpień sie "
       "августа август авг ağustos ağu srpna серпня",
    9: "september sep sept septembre septiembre setiembre setembro set settembre syyskuuta "
       "syyskuu września wrzesień wrz сентября сентябрь сен сент eylül eyl září вересня",
    10: "october oct oktober okt octobre octubre outubro out ottobre ott lokakuuta lokakuu "
        "października październik paź октября октябрь окт ekim eki října жовтня",
    11: "november nov novembre noviembre novembro marraskuuta marraskuu listopada listopad "
        "lis ноября ноябрь ноя kasım kas listopadu листопада",
    12: "december dec dezember dez décembre déc diciembre dic dezembro dicembre desember des "
        "joulukuuta joulukuu grudnia grudzień gru декабря декабрь дек aralık ara prosince "
        "грудня",
}
#: Month names and abbreviations in the languages above, lower case, without a final dot.
MONTHS: dict[str, int] = {
    name: number for number, names in _MONTH_NAMES.items() for name in names.split()
}
_ENGLISH = ("", "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
            "dec")
#: Zone abbreviations clients print, as offsets (an abbreviation is ambiguous in general;
#: these are the readings mail clients mean).
ZONES = {
    name.upper(): int(hours * 3600)
    for name, hours in {
        "gmt": 0, "utc": 0, "ut": 0, "z": 0, "wet": 0, "west": 1, "bst": 1, "cet": 1,
        "cest": 2, "met": 1, "mest": 2, "eet": 2, "eest": 3, "msk": 3, "ist": 5.5, "sgt": 8,
        "hkt": 8, "jst": 9, "kst": 9, "aest": 10, "aedt": 11, "est": -5, "edt": -4,
        "cst": -6, "cdt": -5, "mst": -7, "mdt": -6, "pst": -8, "pdt": -7, "akst": -9,
        "hst": -10, "mez": 1, "mesz": 2, "oez": 2, "oesz": 3, "wez": 0, "wesz": 1,
    }.items()
}
_GMT_OFFSET = re.compile(r"\b(?:GMT|UTC)\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?\b", re.IGNORECASE)
_CJK_DATE = re.compile(r"(\d{4})\s*[年년]\s*(\d{1,2})\s*[月월]\s*(\d{1,2})\s*[日일]?")
_YEAR_FIRST = re.compile(r"\b(\d{4})[./-](\d{1,2})[./-](\d{1,2})\b")
_NUMERIC_DATE = re.compile(r"\b\d{1,2}[./-]\d{1,2}[./-]\d{2,4}\b")
_DOTTED_TIME = re.compile(r"\b(?:klo|kl\.?)\s*(\d{1,2})[.:](\d{2})\b", re.IGNORECASE)
_COLON_OFFSET = re.compile(r"(?<=\s)([+-])(\d{2}):(\d{2})\b")
_TOKEN = re.compile(r"[+-]\d{4}\b|\d+(?::\d+)*|[^\W\d_]+\.?")


def date_words(text: str) -> tuple[str, bool] | None:
    """``text`` reduced to what dateutil reads (numbers, English month names, am/pm, zone),
    and whether the year comes first; None when it names no day of a month.

    >>> date_words("jeudi, 28 octobre 2021 à 12:06")
    ('28 oct 2021 12:06', False)
    >>> date_words("2022年9月19日月曜日 17:55:44 -0400")
    ('2022 09 19 17:55:44 -0400', True)
    """
    text = text[:300]
    text = _GMT_OFFSET.sub(
        lambda m: f" {m.group(1)}{int(m.group(2)):02d}{m.group(3) or '00'}", text
    )
    text = _DOTTED_TIME.sub(r" \1:\2", text)
    text = _COLON_OFFSET.sub(r"\1\2\3", text)
    cjk = _CJK_DATE.search(text)
    if cjk:
        text = f"{cjk.group(1)}-{int(cjk.group(2)):02d}-{int(cjk.group(3)):02d} " + text[
            cjk.end() :
        ]
    year_first = bool(_YEAR_FIRST.search(text))
    numeric = year_first or bool(_NUMERIC_DATE.search(text))
    words: list[str] = []
    months: list[int] = []
    for token in _TOKEN.findall(text):
        lower = token.lower().rstrip(".")
        if token[0].isdigit() or token[0] in "+-":
            words.append(token)
        elif lower in MONTHS:
            months.append(len(words))
            words.append(_ENGLISH[MONTHS[lower]])
        elif lower in ("am", "pm"):
            words.append(lower)
        elif lower.upper() in ZONES:  # dateutil takes only upper-case zone names
            words.append(lower.upper())
    if len(months) > 1 and months[0] == 0:  # "mar., 2 nov." is a Tuesday (es/fr) in November
        del words[0]
        months = months[1:]
    if not months and not numeric:
        return None
    return " ".join(words), year_first


def parse_loose_date(text: str, zone: tzinfo | None = None) -> datetime | None:
    """A date as a mail client prints it, in any of the languages above; naive readings are
    put in ``zone`` (UTC when None). None when there is no date to read.

    >>> parse_loose_date("Mi., 27. Okt. 2021 um 09:31 Uhr").isoformat()
    '2021-10-27T09:31:00+00:00'
    >>> parse_loose_date("26 октября 2021 г. в 14:25:08 GMT+3").isoformat()
    '2021-10-26T14:25:08+03:00'
    """
    if not text.strip():
        return None
    try:
        moment = _rfc5322(text)
        if moment is None:
            reduced = date_words(text)
            if reduced is None:
                return None
            words, year_first = reduced
            moment = dateparser.parse(
                words, dayfirst=not year_first, yearfirst=year_first,
                default=datetime(1900, 1, 1), tzinfos=ZONES,
            )
    except (ValueError, OverflowError, TypeError, LookupError, dateparser.ParserError):
        return None
    if moment.year < 1970 or moment.year > 2200:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone or UTC)
    return moment


def _rfc5322(text: str) -> datetime | None:
    from email.utils import parsedate_to_datetime

    try:
        moment = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return moment if moment.tzinfo is not None else None
