"""Header values unfolded and 8-bit bytes recovered as they always were, and the text of a
part: ``_unfold``, ``_recover_8bit`` and :func:`part_text` against the implementations they
replaced, kept here as the reference.

Why the reference is kept: ``_unfold`` and ``_recover_8bit`` ran a regular expression on
every header value of every mail (about 8 values a message), where most values have no
line break and no raw 8-bit byte; they now answer those without one, and must answer every
value as before: values with CRLF, LF and lone CR folds, tabs, surrogate-escaped bytes,
other non-ASCII text. :func:`part_text` parsed the Content-Type parameters twice for every
part to learn whether it is format=flowed; it must read every part as before, whatever its
parameters (in any case, quoted, RFC 2231 encoded or continued, look-alikes). The same holds
for :func:`part_charset` (asked two or three times a message).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email import policy
from email.message import Message
from email.parser import BytesParser

from hypothesis import given, settings
from hypothesis import strategies as st

from mailhelper.read.htmltext import html_to_text
from mailhelper.read.mailtext import (
    _content_type,
    _recover_8bit,
    _unflow,
    _unfold,
    decode_bytes,
    part_charset,
    part_text,
)
from mailhelper.read.parse import READING_POLICY


def reference_unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]*", " ", value).replace("\r", " ").strip()


def reference_recover_8bit(value: str, hints: Iterable[str]) -> str:
    if not re.search("[\udc80-\udcff]", value):
        return value
    return decode_bytes(value.encode("utf-8", "surrogateescape"), None, hints)


_VALUES = st.lists(st.sampled_from(
    ["a", "Z", "@", " ", "\t", "\r", "\n", "\r\n ", "\n\t", "é", "\u00a0", "\u2028", "\x0b",
     "\udce9", "\udc80", "\udcff", "\udcc3", "\udca9", "日"]), max_size=30).map("".join)


@given(_VALUES)
@settings(max_examples=2000, deadline=None)
def test_unfold_as_the_reference(value: str) -> None:
    assert _unfold(value) == reference_unfold(value)


@given(_VALUES, st.sampled_from([(), ("utf-8",), ("iso-8859-1",), ("shift_jis", "utf-8")]))
@settings(max_examples=2000, deadline=None)
def test_recover_8bit_as_the_reference(value: str, hints: tuple[str, ...]) -> None:
    assert _recover_8bit(value, hints) == reference_recover_8bit(value, hints)


# -- the text of a part ---------------------------------------------------------------------


def reference_part_text(part: Message, hints: Iterable[str] = ()) -> str:
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


_CONTENT_TYPES = [
    "text/plain", "text/plain; charset=utf-8", "text/plain; format=flowed",
    "text/plain; charset=\"utf-8\"; format=flowed; delsp=yes", "text/plain; FORMAT=Flowed",
    "text/plain; format=\"flowed\"; DelSp=\"Yes\"", "text/plain; format*=utf-8''flowed",
    "text/plain; format=flowed; delsp*=utf-8''yes", "text/plain; format*0=flo; format*1=wed",
    "text/plain; Format=fixed", "text/plain; x-format=flowed", "text/plain; formats=flowed",
    "text/html; format=flowed", "text/plain; format=flowed; delsp=no", "text/plain; delsp=yes",
    "text/plain; name=\"format=flowed.txt\"", "text/plain;\r\n format=flowed",
    "text/plain; format==flowed", "text/plain; format", "text/plain; charset=iso-8859-1",
]
_BODIES = [b"Hello \r\nworld\r\n", b"> quoted \r\n> more\r\nnew \r\n-- \r\nsig",
           b"caf\xe9 \r\nau lait", b"<p>Hi &amp; bye</p>", b"plain"]


@given(st.sampled_from(_CONTENT_TYPES), st.sampled_from(_BODIES),
       st.sampled_from([READING_POLICY, policy.compat32]))
@settings(max_examples=400, deadline=None)
def test_part_text_as_the_reference(content_type: str, body: bytes,
                                    reading: policy.Policy) -> None:
    raw = b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    part = BytesParser(policy=reading).parsebytes(raw)
    assert part_text(part) == reference_part_text(part)


def reference_part_charset(part: Message) -> str | None:
    try:
        return part.get_content_charset()
    except Exception:
        found = re.search(r"charset\s*=\s*\"?([^\s\";]+)", str(part.get("content-type", "")))
        return found.group(1) if found else None


_CHARSET_TYPES = [
    None, "text/plain", "text/plain; charset=utf-8", "text/plain; CHARSET=\"ISO-8859-1\"",
    "text/plain; charset*=utf-8''UTF%2D8", "text/plain; charset*0=iso-; charset*1=8859-1",
    "text/plain; charset=\"\"", "text/plain; charset=caf\xe9", "text/plain; charset",
    "text/html;charset=windows-1252;format=flowed", "text/plain; xcharset=koi8-r",
    "text/plain; charset=utf-8; charset=latin1", "text/plain;\r\n\tcharset=shift_jis",
    "text/plain; charset*=''%FF", "text/plain; charset==x",
]


@given(st.lists(st.sampled_from(_CHARSET_TYPES), min_size=1, max_size=3),
       st.sampled_from([READING_POLICY, policy.compat32]))
@settings(max_examples=600, deadline=None)
def test_part_charset_as_the_reference(content_types: list[str | None],
                                       reading: policy.Policy) -> None:
    """Every Content-Type, and the first of two, read twice (what is remembered too)."""
    head = b"".join(b"Content-Type: " + c.encode("latin-1") + b"\r\n"
                    for c in content_types if c is not None)
    part = BytesParser(policy=reading).parsebytes(head + b"Subject: x\r\n\r\nbody")
    assert part_charset(part) == reference_part_charset(part)
    assert part_charset(part) == reference_part_charset(part)
