"""The content key as it always was: :func:`content_key` against the implementation it
replaced, kept here as the reference.

Why the reference is kept: the key is stored for every message handled, and a redelivery is
recognised by it, so a key computed differently would make the assistant read old mail as
new. The body's line ends are now turned from CRLF to LF in pieces (split and joined, one
pass where ``replace`` took two, and no copy of a whole big body); the keys must be the same
for every message: trace fields with their folded lines, CRLF, LF and lone CR, and bodies
longer than a piece with a CRLF across each possible cut.
"""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from mailhelper.mail import mailbox
from mailhelper.mail.mailbox import _HASH_GROUP, _TRACE_NAMES, _lines, content_key


def reference_content_key(raw: bytes) -> str:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = raw.partition(b"\n\n")
    digest = hashlib.sha256()
    pieces: list[bytes] = []
    keep = True
    for line in _lines(head):
        first = line[:1]
        if first == b" " or first == b"\t":
            if not keep:
                continue
            pieces.append(line.strip())
        else:
            keep = line.partition(b":")[0].strip().lower() not in _TRACE_NAMES
            if not keep:
                continue
            pieces.append(line.rstrip())
        if len(pieces) >= _HASH_GROUP:
            digest.update(b"\n".join(pieces) + b"\n")
            pieces.clear()
    if pieces:
        digest.update(b"\n".join(pieces) + b"\n")
    digest.update(b"\n")
    digest.update(body.replace(b"\r\n", b"\n"))
    return digest.hexdigest()


_HEAD = [b"From: a@x.org", b"Received: from mx", b" by mx2", b"\tfor <b@y>", b"Subject: hi ",
         b"X-Spam-Status: No", b"DELIVERED-TO: b@y", b"received : x", b"Message-ID: <1@x>"]
_BODY = [b"Hello", b"\r\n", b"\n", b"\r", b"\r\r\n", b" \r\n", b"x" * 40]


@st.composite
def _raws(draw: st.DrawFn) -> bytes:
    end = draw(st.sampled_from([b"\r\n", b"\n"]))
    head = end.join(draw(st.lists(st.sampled_from(_HEAD), max_size=8)))
    body = b"".join(draw(st.lists(st.sampled_from(_BODY), max_size=20)))
    return head + end + end + body


@given(_raws())
@settings(max_examples=1000, deadline=None)
def test_content_key_as_the_reference(raw: bytes) -> None:
    assert content_key(raw) == reference_content_key(raw)


@given(st.integers(-3, 3), st.sampled_from([b"\r\n", b"\n", b"\r", b"\r\r\n"]),
       st.integers(1, 3))
@settings(max_examples=60, deadline=None)
def test_a_long_body_keys_as_the_reference(shift: int, end: bytes, chunks: int) -> None:
    """Line ends about each place a long body may be cut into pieces."""
    size = getattr(mailbox, "_CHUNK", 256 * 1024)
    line = b"y" * (size + shift - 2) + end
    raw = b"Subject: x\r\n\r\n" + line * chunks + b"tail\r\n"
    assert content_key(raw) == reference_content_key(raw)
    short = b"z" * (shift + 3) + (b"ab" + end) * (chunks * size // 3)
    raw = b"Subject: x\r\n\r\n" + short
    assert content_key(raw) == reference_content_key(raw)
