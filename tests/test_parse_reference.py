"""The bounds of the MIME reading against the implementation they replaced, kept here as the
reference: :func:`mime_prefix` (what part of a message the parser reads) and the check in
``_read`` that gives a message declaring too many multiparts its headers only.

Why the reference is kept: both counted the ``boundary=`` parameters of every message with
a case-blind regular expression over all of it, and :func:`mime_prefix` looked for its
1,000th header field with another, about a tenth of a parse. Cheap counts now answer when
they can (too few line feeds for a cut, too few "boundary" for too many multiparts), and
they must answer as the full scans did: the messages generated here sit on both sides of
each bound (header fields, MIME boundaries, lines, and declared multiparts in any case and
spacing).
"""

from __future__ import annotations

from itertools import islice

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mailhelper.read import parse
from mailhelper.read.parse import (
    _BOUNDARY_PARAMETER,
    _FIELD_START,
    MAX_HEADER_FIELDS,
    MAX_LINE_CHECKS,
    MAX_MIME_BYTES,
    MAX_MIME_LINES,
    MAX_MULTIPARTS,
    MAX_PARTS,
    _first_lines,
    mime_prefix,
)


def reference_mime_prefix(raw: bytes) -> tuple[bytes, str | None]:
    readable, cut = raw[:MAX_MIME_BYTES], None
    if len(raw) > MAX_MIME_BYTES:
        cut = f"read from its first {MAX_MIME_BYTES // 1048576} MB only"
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


def reference_too_many_multiparts(raw: bytes) -> bool:
    """The check in ``_read`` that reads a message for its headers only."""
    declared = _BOUNDARY_PARAMETER.finditer(raw)
    return sum(1 for _ in islice(declared, MAX_MULTIPARTS + 1)) > MAX_MULTIPARTS


_BOUNDARIES = [b"boundary=", b"BOUNDARY =", b"Boundary\t=", b"boundary\r\n =", b"boundary",
               b"bOuNdArY=x", b"boundar=", b"boundaryboundary="]
_PIECES = [b"Subject: hi\r\n", b"X: 1\n", b" folded\r\n", b"\r\n", b"\n", b"--b\r\n",
           b"text\r\n", b"\n--", b"\r", b"x" * 50, b"\r\n\r\n", b"\n\n"]


@st.composite
def _messages(draw: st.DrawFn) -> bytes:
    """Pieces repeated about the bounds: fields near MAX_HEADER_FIELDS, "--" lines near
    MAX_PARTS, lines near what MAX_LINE_CHECKS allows, boundaries near MAX_MULTIPARTS."""
    fields = draw(st.sampled_from([0, 5, MAX_HEADER_FIELDS - 2, MAX_HEADER_FIELDS - 1,
                                   MAX_HEADER_FIELDS, MAX_HEADER_FIELDS + 3]))
    field = draw(st.sampled_from([b"X: 1\r\n", b"X: 1\n", b"X: 1\r\n folded\r\n", b" x\r\n"]))
    declared = draw(st.sampled_from([0, 1, 12, 13, MAX_MULTIPARTS, MAX_MULTIPARTS + 1, 700]))
    boundary = draw(st.sampled_from(_BOUNDARIES))
    lines = draw(st.sampled_from([0, 100, 5_988, 5_989, 6_000, 230_000, 250_001]))
    line = draw(st.sampled_from([b"\n", b"a\r\n", b"--\n"]))
    parts = draw(st.sampled_from([0, MAX_PARTS - 1, MAX_PARTS]))
    pieces = draw(st.lists(st.sampled_from(_PIECES), max_size=8))
    order = draw(st.permutations([boundary * declared, line * lines, b"\n--p" * parts,
                                  *pieces]))
    end = draw(st.sampled_from([b"\r\n\r\n", b"\n\n", b"\r\n", b""]))
    return field * fields + end + b"".join(order)


@given(_messages())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@example(b"X: 1\r\n" * MAX_HEADER_FIELDS + b"\r\nbody")
@example(b"X: 1\r\n" * (MAX_HEADER_FIELDS - 1) + b"\r\nbody")
@example(b"Content-Type: multipart/mixed; boundary=x\r\n\r\n" + b"\n" * 250_000)
def test_mime_prefix_reads_as_the_reference(raw: bytes) -> None:
    assert mime_prefix(raw) == reference_mime_prefix(raw)


@given(_messages())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@example(b"Subject: x\r\n\r\n" + b"boundary=" * MAX_MULTIPARTS)
@example(b"Subject: x\r\n\r\n" + b"BOUNDARY =" * (MAX_MULTIPARTS + 1))
def test_too_many_multiparts_as_the_reference(raw: bytes) -> None:
    """``_read`` gives the headers only with its reason exactly when the reference says."""
    reason = f"more than {MAX_MULTIPARTS} multiparts: headers only"
    assert (reason in parse._read(raw)[1]) == reference_too_many_multiparts(raw)
