"""Header values unfolded and 8-bit bytes recovered as they always were: ``_unfold`` and
``_recover_8bit`` against the implementations they replaced, kept here as the reference.

Why the reference is kept: both ran a regular expression on every header value of every
mail (about 8 values a message), where most values have no line break and no raw 8-bit
byte; they now answer those without one, and must answer every value as before: values
with CRLF, LF and lone CR folds, tabs, surrogate-escaped bytes, other non-ASCII text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from mailhelper.read.mailtext import _recover_8bit, _unfold, decode_bytes


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
