"""parse_mail never raises anything but UnparseableMail, whatever the bytes; and the monsters
of real mail (huge subject, huge attachment, huge recipient list, deep nesting) parse in
bounded time and memory.

Hypothesis runs derandomized without an example database, so CI sees the same 10,600
examples every time and no test depends on the clock (time limits are pytest-timeout marks).
"""

from __future__ import annotations

import base64
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailhelper.model.addresses import fold
from mailhelper.model.values import Mail
from mailhelper.read.parse import MAX_HEADER_VALUE, UnparseableMail, parse_mail
from tests.rig.corpus import CORPUS_DIR as CORPUS
from tests.rig.corpus import require_corpus

BASE = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: Seeds for mutation: a few messages written here (so the fuzz runs without the corpus too)
#: and every full message of the corpus when it is there.
BUILT_IN = [
    b"From: Jane <jane@acme.com>\r\nTo: sam@example.com\r\nSubject: Re: Intro\r\n"
    b"Message-ID: <a@b>\r\nDate: Tue, 1 Dec 2026 09:00:00 +0100\r\n\r\nYes!\r\n\r\n"
    b"On Mon, Sam <sam@example.com> wrote:\r\n> Intro?\r\n",
    b"From: =?utf-8?q?J=C3=B6?= <j@x.de>\r\nSubject: =?iso-2022-jp?B?GyRCJEgbKEI=?=\r\n"
    b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/html; "
    b"charset=gb2312\r\n\r\n<p>\xc4\xe3\xba\xc3<blockquote>q</blockquote>\r\n--XX\r\n"
    b"Content-Type: message/rfc822\r\n\r\nFrom: a@b.c\r\nSubject: inner\r\n\r\nbody\r\n--XX--\r\n",
    b"From: MAILER-DAEMON@x.org\r\nSubject: Undelivered\r\nContent-Type: multipart/report; "
    b'report-type=delivery-status; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain; '
    b"format=flowed\r\n\r\nfailed \r\nhere\r\n--b\r\nContent-Type: message/delivery-status\r\n"
    b"\r\nFinal-Recipient: rfc822; x@y\r\n--b",
    b"Subject: Fwd: x\r\nFrom: o@x.org\r\n\r\n---------- Forwarded message ---------\r\n"
    b"From: Jane <jane@acme.com>\r\nDate: Wed, Oct 27, 2021 at 9:31 AM\r\nSubject: x\r\n\r\nhi",
]
SEEDS = BUILT_IN + (
    sorted(path.read_bytes() for path in CORPUS.glob("*/*.eml")) if CORPUS.is_dir() else []
)



def test_the_fuzz_seeds_include_the_corpus() -> None:
    """Without the corpus the fuzz runs from the few built-in seeds only: say so (a skip
    outside CI, a failure under CI=true) instead of fuzzing less in silence."""
    require_corpus()
    assert len(SEEDS) > len(BUILT_IN) + 50

def check(raw: bytes) -> Mail | None:
    """Parse; the only allowed exception is UnparseableMail; the result keeps its contract."""
    try:
        mail = parse_mail(raw)
    except UnparseableMail:
        return None
    assert mail.message_id and mail.size == len(raw)
    for address in (mail.from_, mail.sender, *mail.recipients, *mail.reply_to):
        if address is not None:
            # Only ASCII letters are folded: "À" stays, or it could become an ASCII address.
            assert "@" in address.email and address.email == fold(address.email)
    assert mail.date is None or mail.date.tzinfo is not None
    assert all(len(v) <= MAX_HEADER_VALUE for vs in mail.headers.values() for v in vs)
    assert not [d for d in mail.defects if "unreadable" in d], mail.defects
    return mail


@settings(BASE, max_examples=3000)
@given(st.binary(max_size=3000))
def test_arbitrary_bytes(raw: bytes) -> None:
    check(raw)


HEADER_NAMES = st.sampled_from(
    ["From", "To", "Cc", "Subject", "Date", "Message-ID", "References", "In-Reply-To",
     "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "Auto-Submitted",
     "Return-Path", "Sender", "Reply-To", "MIME-Version", "X-Junk"]
)  # fmt: skip
HEADER_VALUES = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        ["multipart/mixed; boundary=X", "multipart/alternative; boundary=\"X\"",
         "message/rfc822", "text/html; charset=x-mac-cyrillic", "text/plain; charset=utf-7",
         "=?utf-8?b?====?=", "=?ks_c_5601-1987?q?=FF=FE?=", "<>", "a@b, <c@d>, \"e\" <@>",
         "base64", "quoted-printable", "Tue, 31 Feb 99999 25:61:61 +9999", "(((((", "\"\\"]
    ),
)  # fmt: skip
BODIES = st.one_of(
    st.binary(max_size=500),
    st.sampled_from(
        [b"--X\r\nContent-Type: text/plain\r\n\r\nhi\r\n--X--", b"--X\r\n\r\n--X",
         b"=E9=\r\n=ZZ", b"!!!!", b"<html><blockquote><div>x", b"> a\r\nOn 1 x wrote:\r\n"]
    ),
)  # fmt: skip


@settings(BASE, max_examples=2000)
@given(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=12), BODIES)
def test_header_shaped_garbage(headers: list[tuple[str, str]], body: bytes) -> None:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    check(head.encode("utf-8", "surrogatepass") + b"\r\n" + body)


@settings(BASE, max_examples=1600)
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)),
                                        min_size=1, max_size=20))
def test_byte_flips(seed: bytes, flips: list[tuple[float, int]]) -> None:
    raw = bytearray(seed)
    for where, value in flips:
        raw[min(int(where * len(raw)), len(raw) - 1)] = value
    check(bytes(raw))


@settings(BASE, max_examples=1200)
@given(st.sampled_from(SEEDS), st.floats(0, 1))
def test_truncation(seed: bytes, where: float) -> None:
    check(seed[: int(where * len(seed))])


@settings(BASE, max_examples=1200)
@given(st.sampled_from(SEEDS), st.integers(1, 60), st.floats(0, 1))
def test_header_duplication(seed: bytes, times: int, which: float) -> None:
    head, _, body = seed.partition(b"\r\n\r\n") if b"\r\n\r\n" in seed else seed.partition(b"\n\n")
    lines = head.splitlines(keepends=True) or [b"X: y\r\n"]
    line = lines[min(int(which * len(lines)), len(lines) - 1)]
    check(head + line * times + b"\r\n\r\n" + body)


@settings(BASE, max_examples=1600)
@given(st.sampled_from(SEEDS), st.floats(0, 1),
       st.sampled_from([b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\n ", b"\x00", b":", b"\r\n--"]))
def test_line_breaks_in_headers(seed: bytes, where: float, junk: bytes) -> None:
    end = seed.find(b"\r\n\r\n") if b"\r\n\r\n" in seed else max(seed.find(b"\n\n"), 0)
    at = int(where * max(end, 1))
    check(seed[:at] + junk + seed[at:])


# -- monsters: bounded time (timeout marks) and memory (tracemalloc peaks) --------------------


def parse_bounded(raw: bytes, memory_factor: int) -> Mail:
    """Parse ``raw`` with its peak memory at most ``memory_factor`` times its size + 64 MB."""
    tracemalloc.start()
    try:
        mail = parse_mail(raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < memory_factor * len(raw) + 64_000_000, f"peak {peak / 1e6:.0f} MB"
    return mail


@pytest.mark.timeout(60)
def test_a_2_mb_subject() -> None:
    raw = b"From: a@b.c\r\nSubject: " + b"Re: =?utf-8?q?caf=C3=A9?= " * 80_000 + b"\r\n\r\nhi"
    mail = parse_bounded(raw, 40)
    assert 0 < len(mail.subject) <= 4096 and mail.clean_subject.startswith("café")


@pytest.mark.timeout(120)
def test_a_50_mb_attachment() -> None:
    blob = base64.encodebytes(bytes(range(256)) * (50 * 1024 * 1024 // 256))
    raw = (
        b"From: a@b.c\r\nSubject: big\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--XX\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="big.bin"\r\n\r\n' + blob + b"\r\n--XX--\r\n"
    )
    assert len(raw) > 50_000_000
    mail = parse_bounded(raw, 12)
    assert mail.text.strip() == "see attached"


@pytest.mark.timeout(60)
def test_ten_thousand_recipients() -> None:
    to = b",\r\n ".join(b'"User %d" <user%d@example.com>' % (i, i) for i in range(10_000))
    mail = parse_bounded(b"From: a@b.c\r\nSubject: all\r\nTo: " + to + b"\r\n\r\nhi", 200)
    assert len(mail.to) == 10_000 and mail.to[-1].email == "user9999@example.com"


def nested(depth: int) -> bytes:
    head = b"From: a@b.c\r\nSubject: deep\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
    opening = b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1)
        for i in range(depth - 1)
    )
    leaf = b"--b%d\r\nContent-Type: text/plain\r\n\r\ndeep down\r\n" % (depth - 1)
    closing = b"".join(b"--b%d--\r\n" % i for i in reversed(range(depth)))
    return head + opening + leaf + closing


@pytest.mark.timeout(60)
def test_100_deep_nested_multiparts() -> None:
    assert parse_bounded(nested(100), 2000).text.strip() == "deep down"


@pytest.mark.timeout(120)
def test_absurdly_deep_nesting_still_gives_the_headers() -> None:
    mail = parse_bounded(nested(1500), 2000)
    assert mail.subject == "deep" and mail.defects
