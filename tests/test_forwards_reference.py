"""The inline forward as it was always found: :func:`find_inline_forward` against the
line-by-line implementation it replaced, kept here as the reference.

Why the reference is kept: the scan now tries its tests only at the lines where one can
fire (:func:`~mailhelper.read.replytext.may_start_at`: a colon, a double dash, underscores,
a line ending in a colon within three); the reference tries every line, so a line wrongly
passed over shows as a difference on the texts generated here (forward separators of
Gmail, Apple Mail, Thunderbird, Yahoo, Outlook header blocks in several languages, quoted
and dequoted markers, attributions over an original, invisible characters, CR line ends),
under subjects that say forward, reply, or nothing.
"""

from __future__ import annotations

from datetime import UTC

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailhelper.model.values import Forwarded
from mailhelper.read.forwards import (
    _MAX_LINES,
    _attribution_date,
    _attribution_sender,
    _dedent,
    _dequote,
    _from_block,
    _header_block_follows,
    find_inline_forward,
    parse_loose_date,
)
from mailhelper.read.mailtext import clean_subject, subject_prefix
from mailhelper.read.replytext import (
    FORWARD_MARKER,
    ORIGINAL_MARKER,
    UNDERSCORES,
    attribution_at,
    header_block_at,
    is_quoted,
)
from tests.test_replytext_reference import _line


def reference_find_inline_forward(text: str, subject: str | None = None,
                                  zone: object = None) -> Forwarded | None:
    said = subject_prefix(subject) if subject else None
    if said == "reply":
        return None
    weak_ok = said == "forward" or not subject
    lines = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "").split("\n")
    lines = lines[:_MAX_LINES]
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        bare = _dequote(line)
        marker = FORWARD_MARKER.match(bare)
        if marker:
            rest = (marker.group("rest") or "").strip()
            block = ([rest] if rest else []) + lines[index + 1 :]
            return _from_block(block, subject, zone)  # type: ignore[arg-type]
        if not weak_ok:
            continue
        if ORIGINAL_MARKER.match(bare) or (
            UNDERSCORES.match(bare) and _header_block_follows(lines, index + 1)
        ):
            return _from_block(lines[index + 1 :], subject, zone)  # type: ignore[arg-type]
        if not is_quoted(line) and header_block_at(lines, index):
            return _from_block(lines[index:], subject, zone)  # type: ignore[arg-type]
        if said == "forward" and not is_quoted(line):
            span = attribution_at(lines, index)
            if span:
                attribution = " ".join(lines[index : index + span])
                body = _dedent(lines[index + span :])
                return Forwarded(
                    from_=_attribution_sender(attribution),
                    subject=clean_subject(subject or ""),
                    date=parse_loose_date(_attribution_date(attribution), zone),  # type: ignore[arg-type]
                    body=body,
                )
    return None


_FORWARD_LINES = [
    "> ---------- Forwarded message ---------", ">> -----Original Message-----",
    "> Begin forwarded message:", "> ________________________________", "> From: Jane <j@x.org>",
    "> Date: Tue, 1 Dec 2026 09:00", "> Subject: Plan", "> To: Bob <b@x.org>",
    "From: Jane Doe <jane@acme.com>", "Date: Tue, 1 Dec 2026 at 09:00",
    "Am Di., 1. Dez. 2026 um 09:00 schrieb \"Jane\" <jane@acme.com>:", "    indented original",
    "Jane Doe <jane@acme.com> schrieb am Di., 1. Dez. 2026, 09:00:",
]
_MORE = st.one_of(_line, st.sampled_from(_FORWARD_LINES))


@st.composite
def _texts(draw: st.DrawFn) -> str:
    lines = draw(st.lists(_MORE, max_size=30))
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return end.join(lines)


@given(_texts(), st.sampled_from([None, "", "Fwd: Plan", "WG: Plan", "Re: Plan", "Plan",
                                  "Fw: Re: Plan"]))
@settings(max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_find_inline_forward_as_the_reference(text: str, subject: str | None) -> None:
    assert (find_inline_forward(text, subject, UTC)
            == reference_find_inline_forward(text, subject, UTC))


def test_the_generated_texts_hold_forwards() -> None:
    """The property above would prove little if hardly any text held a forward."""
    found = []

    @given(_texts())
    @settings(max_examples=300, deadline=None, database=None)
    def collect(text: str) -> None:
        found.append(reference_find_inline_forward(text, "Fwd: x", UTC) is not None)

    collect()
    assert sum(found) >= 30, sum(found)
