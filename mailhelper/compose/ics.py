"""An iCalendar (RFC 5545) of what the assistant will do: ``mailhelper status --ics`` and the
file ``calendar_file:`` keeps fresh, for a calendar app to import or subscribe to.

Pure: it takes :class:`Entry` values and returns the text. The rules RFC 5545 sets and this
follows:

* Lines end in CRLF (section 3.1) and are folded so that none is longer than 75 octets (not
  characters: a multi-byte UTF-8 character is never split), a continuation starting with one
  space.
* TEXT values escape backslash, semicolon and comma with a backslash, and a line break as
  ``\\n`` (section 3.3.11).
* Every VEVENT has a UID, stable across runs (the hash of the assistant's address and the
  action's key, ``…@mailhelper``: a calendar that subscribes sees the same event move, not a
  new one), DTSTAMP (section 3.8.7.2: when the calendar was written), and DTSTART in UTC.
* Nothing in it is a link: subjects and names are mail content, and a calendar app turns
  links in a description into something to click, so any URL in them is cut out.

    >>> from datetime import UTC
    >>> text = calendar([Entry("t1/follow_up/1", datetime(2026, 12, 10, 9, tzinfo=UTC),
    ...                        "Reminder: Intro to Acme (Jane Doe)", "Follow up, with a draft")],
    ...                 datetime(2026, 12, 7, 9, tzinfo=UTC), "helper@example.com")
    >>> [line for line in text.split("\\r\\n") if line.startswith("DTSTART")]
    ['DTSTART:20261210T090000Z']
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

#: RFC 5545 section 3.1: "Lines of text SHOULD NOT be longer than 75 octets".
LINE_OCTETS = 75
#: How long an event shows in the calendar; the mail itself comes at its start.
EVENT_LENGTH = "PT15M"
_URL = re.compile(r"(?:\b[a-z][a-z0-9+.-]*://|\bwww\.|\bmailto:)\S*", re.IGNORECASE)


@dataclass(frozen=True)
class Entry:
    """One event: ``key`` names it for good (the action's key), ``start`` is when the mail
    goes, ``summary`` and ``description`` are plain text (no links)."""

    key: str
    start: datetime
    summary: str
    description: str


def calendar(entries: Iterable[Entry], stamp: datetime, assistant: str) -> str:
    """The iCalendar text of ``entries``, written at ``stamp``, for the assistant at the
    address ``assistant`` (part of each UID, so two assistants' calendars never collide)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//mailhelper//mailhelper//EN",
             "CALSCALE:GREGORIAN", "METHOD:PUBLISH",
             f"X-WR-CALNAME:{escape_text('mailhelper: ' + assistant)}"]
    for entry in sorted(entries, key=lambda e: (e.start.astimezone(UTC), e.key)):
        lines += [
            "BEGIN:VEVENT",
            f"UID:{uid(entry.key, assistant)}",
            f"DTSTAMP:{utc_stamp(stamp)}",
            f"DTSTART:{utc_stamp(entry.start)}",
            f"DURATION:{EVENT_LENGTH}",
            f"SUMMARY:{escape_text(without_links(entry.summary))}",
            f"DESCRIPTION:{escape_text(without_links(entry.description))}",
            "TRANSP:TRANSPARENT",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(fold_line(line) + "\r\n" for line in lines)


def uid(key: str, assistant: str) -> str:
    """The event's UID: stable for one action of one assistant.

        >>> uid("t1/follow_up/1", "helper@example.com")
        'f4ef53a37d0225e96b6d4c49285ff640@mailhelper'
    """
    digest = hashlib.sha256(f"{assistant.lower()}\n{key}".encode()).hexdigest()[:32]
    return f"{digest}@mailhelper"


def utc_stamp(moment: datetime) -> str:
    """A DATE-TIME in UTC form (RFC 5545 section 3.3.5, FORM #2): ``20261210T090000Z``."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def escape_text(text: str) -> str:
    """A TEXT value (RFC 5545 section 3.3.11): ``\\``, ``;`` and ``,`` escaped, line breaks
    as ``\\n``, other control characters dropped.

        >>> escape_text("Lunch; then drinks, maybe\\nor not")
        'Lunch\\\\; then drinks\\\\, maybe\\\\nor not'
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(c for c in text if c == "\n" or (c >= " " and c != "\x7f"))
    return (text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\n", "\\n"))


def without_links(text: str) -> str:
    """``text`` with every URL cut out (``https://…``, ``www.…``, ``mailto:…``).

        >>> without_links("See https://evil.example/x now")
        'See [link removed] now'
    """
    return _URL.sub("[link removed]", text)


def fold_line(line: str) -> str:
    """``line`` folded to at most :data:`LINE_OCTETS` octets a line (RFC 5545 section 3.1),
    never inside a UTF-8 character; the CRLF between the pieces is included."""
    pieces: list[str] = []
    current, size = "", 0
    limit = LINE_OCTETS
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            pieces.append(current)
            current, size = " ", 1  # the continuation's leading space counts
        current += char
        size += width
    pieces.append(current)
    return "\r\n".join(pieces)
