"""Text for a terminal: mail-derived words with no power over the terminal showing them.

A subject or a name is a stranger's text. Printed as it is, ``\\x1b[2J`` clears the screen,
``\\x1b]0;...\\x07`` retitles the window, ``\\x1b]8;;url\\x1b\\\\`` hides a link and a lone
``\\r`` overwrites the line before it (ECMA-48). Everything the command line prints (``status``,
``explain``, a dry run, the demo and the log) goes through :func:`for_terminal` once, at the
moment it is printed; fields that must stay on one line of a table go through
:func:`one_line` first::

    >>> for_terminal("Intro\\x1b[2J to \\x1b]0;pwned\\x07Acme\\x9b31m\\r\\nnext line")
    'Intro to Acme\\nnext line'
    >>> one_line("Intro\\r\\nBcc: x\\u2028y")
    'Intro Bcc: x y'
"""

from __future__ import annotations

import io
import re
from typing import TextIO

#: ECMA-48 escape sequences, 7-bit (ESC ...) and 8-bit (C1) forms: CSI with its parameters,
#: OSC/DCS/SOS/PM/APC strings up to their terminator (or the end), and two-character escapes.
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|(?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"
)
#: What is left that a terminal acts on: C0 controls but the line feed, DEL, C1 controls.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
#: Everything that ends or breaks a line, for fields that must stay on one.
_LINE_BREAK = re.compile(r"\r\n|[\n\r\x0b\x0c\x85\u2028\u2029]")
#: Characters JSON leaves as they are that a terminal would still act on (json.dumps already
#: writes C0 controls as \\uXXXX, but with ensure_ascii=False not DEL or the C1 range).
_JSON_RAW_CONTROL = re.compile(r"[\x7f-\x9f]")


def for_terminal(text: str) -> str:
    """``text`` with every escape sequence and control character removed; line feeds, which
    the output's own format uses, are kept, and a tab becomes a space."""
    return _CONTROL.sub("", _SEQUENCE.sub("", text.replace("\t", " ")))


def one_line(text: str) -> str:
    """A field for one line of a table: line breaks become spaces, then :func:`for_terminal`."""
    return for_terminal(_LINE_BREAK.sub(" ", text))


def json_for_terminal(text: str) -> str:
    """JSON text (from ``json.dumps(..., ensure_ascii=False)``) with DEL and the C1 controls
    written as ``\\u00XX`` escapes: the same JSON value, nothing a terminal acts on.

    >>> json_for_terminal('{"subject": "a\\x9b2Jb"}')
    '{"subject": "a\\\\u009b2Jb"}'
    """
    return _JSON_RAW_CONTROL.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


class TerminalStream(io.TextIOBase):
    """A text stream that passes what is written on through :func:`for_terminal`."""

    def __init__(self, inner: TextIO) -> None:
        super().__init__()
        self.inner = inner

    def write(self, text: str) -> int:
        self.inner.write(for_terminal(text))
        return len(text)

    def flush(self) -> None:
        self.inner.flush()
