"""No stranger's mail can stall the reading or eat the memory: every stage that handles
untrusted content is linear (or capped) in its input.

The timed checks run in a child process (:mod:`tests.rig.reading`) with a generous timeout,
and fail only on CPU time (``time.process_time``) over 2 s for one message, so a busy shared
machine cannot make them flaky; the figures in the comments were measured before each fix.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mailhelper.read.htmltext import MAX_QUOTE_DEPTH, html_to_text
from mailhelper.read.parse import (
    MAX_ADDRESS_TOTAL,
    MAX_HEADER_FIELDS,
    MAX_LINE_CHECKS,
    MAX_MIME_LINES,
    MAX_PARTS,
    decode_words,
    mime_prefix,
    parse_mail,
)
from mailhelper.read.replytext import MAX_LINES, strip_reply
from tests.rig.reading import read_in_child

#: CPU seconds one message may take to read, and the child's peak RSS, in MB.
CPU_LIMIT = 2.0
RSS_LIMIT = 200.0

# -- the HTML converter -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<b>x</b> <a <a", "x <a <a"),
        ("<p>a</p><!--x>b<!--y>", "a\n\n<!--x>b<!--y>"),
        ("<p>a<![CDATA[x>b", "a<![CDATA[x>b"),
        ("Hi <a b=", "Hi <a b="),
    ],
)
def test_unterminated_markup_is_shown_as_text_as_before(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_quotes_deeper_than_the_cap_are_shown_at_the_cap() -> None:
    text = html_to_text("<blockquote>" * 3 + "three" + "<blockquote>" * 100 + "deep")
    assert text.splitlines() == [">>> three", ">" * MAX_QUOTE_DEPTH + " deep"]


#: A megabyte of each: before the fix, html.parser rescanned to the end of the input for each
#: unterminated ``<`` (20 KB of ``<a `` took 3.7 s, 40 KB 15 s: an hour for 1 MB), and deep
#: quotes wrote a line of up to 25,000 ``>`` per line (400 KB: 312 million characters, 907 MB).
HTML_BOMBS = {
    "unclosed tags": "<a " * 350_000,
    "unclosed tags, one > at the end": "<a " * 350_000 + ">",
    "unclosed self-closing": "<a/" * 350_000,
    "unfinished attributes": "<a b=" * 200_000,
    "unclosed comments with >": "<!--x>" * 170_000 + ">",
    "unclosed CDATA with >": "<![cdata[x>" * 90_000 + ">",
    "unclosed end tags": "</a " * 250_000,
    "deep quotes": "<br><blockquote>" * 62_500,
    "deep Yahoo quotes": "<div class=yahoo_quoted>x" * 40_000,
}


def test_a_megabyte_of_hostile_html_is_converted_in_linear_time(tmp_path: Path) -> None:
    cases = []
    for name, html in HTML_BOMBS.items():
        path = tmp_path / f"{len(cases)}.html"
        path.write_text(html)
        cases.append((name, path))
    results = read_in_child(cases, timeout=180, what="html")
    slow = {n: r.cpu for n, r in results.items() if r.cpu > CPU_LIMIT}
    assert not slow, f"over {CPU_LIMIT} s of CPU: {slow}"
    assert max(r.peak_mb for r in results.values()) < RSS_LIMIT, results


# -- the reading of a whole mail ---------------------------------------------------------------

HEAD = b"From: Eve <eve@evil.test>\r\nTo: sam@example.com\r\nSubject: hello\r\n"
MB = 1024 * 1024


def _plain(body: bytes, params: bytes = b"", encoding: bytes = b"8bit") -> bytes:
    return (HEAD + b"Content-Type: text/plain; charset=utf-8" + params +
            b"\r\nContent-Transfer-Encoding: " + encoding + b"\r\n\r\n" + body)


def _nested(depth: int, text: bytes) -> bytes:
    opening = b"".join(b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n"
                       % (i, i + 1) for i in range(depth - 1))
    return (HEAD + b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n" + opening
            + b"--b%d\r\nContent-Type: text/plain\r\n\r\n" % (depth - 1) + text)


#: Each costs far more than 2 s or 200 MB before the fixes (figures measured on the old code,
#: in a fresh process of 71 MB): the 24 MB cases are just under the 25 MB download limit.
HOSTILE_MAIL: dict[str, Callable[[], bytes]] = {
    # 770 MB: the MIME parser keeps each of 8 million lines as its own string.
    "24 MB of quoted-printable soft line breaks": lambda: _plain(
        b"=\r\n" * (8 * MB), b"", b"quoted-printable"),
    # 1,064 MB and 5.5 s.
    "24 MB of empty CRLF lines": lambda: _plain(b"\r\n" * (12 * MB)),
    # 970 MB and 6.2 s (the reply text looked at each of 500,000 lines).
    "24 MB of short 8-bit lines": lambda: _plain("é\n".encode() * (8 * MB)),
    # 7.4 s: a flowed paragraph was joined by copying the string for each line.
    "500,000 format=flowed lines": lambda: _plain(b"x \r\n" * 500_000, b"; format=flowed"),
    # 10 s: half a millisecond per part in the stdlib parser.
    "20,000 tiny parts": lambda: HEAD + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    + b"".join(b"--b\r\nContent-Type: text/plain; charset=x-%d\r\n\r\nx\r\n" % i
               for i in range(20_000)) + b"--b--\r\n",
    # 7 s: four address fields of 512 KB of "@" each, 1.7 s apiece (now 1.3 s in all).
    "four address fields of 512 KB": lambda: HEAD + b"".join(
        b"%s: %s\r\n" % (name, b"@" * 500_000)
        for name in (b"Cc", b"Bcc", b"Reply-To", b"Sender")) + b"\r\nhi",
    # 383 MB and 6.7 s (and still 80 MB more than text once cut to 2 MB: a string per line).
    "24 MB of bare line feeds": lambda: _plain(b"\n" * (24 * MB)),
    # 16 s: the parser tries each line against each of the 300 enclosing boundaries.
    "short lines under 300 nested multiparts": lambda: _nested(300, b"x\r\n" * 500_000),
    # 1.7 s after the other caps: each look-up in the parser scans all 20,000 fields.
    "20,000 header fields over 1,000 parts": lambda: HEAD + b"X-A: 1\r\n" * 20_000
    + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    + b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" * 1000 + b"--b--\r\n",
    # content_key: 1.7 s and 190 MB more (a list of 3 million lines); the header check: 7.3 s
    # and 821 MB peak (it parsed the whole header).
    "24 MB of header fields": lambda: HEAD + b"Message-ID: <f@evil.test>\r\n"
    + b"X-A: 1\r\n" * (3 * MB) + b"\r\nhi",
    # content_key: 1.5 s and 385 MB more; the header check: 4.8 s, 753 MB peak.
    "a 24 MB folded header": lambda: HEAD + b"Message-ID: <g@evil.test>\r\nX-A: 1"
    + b"\r\n 1" * (6 * MB) + b"\r\n\r\nhi",
    # For comparison, what real big mail looks like: a 24 MB attachment.
    "a 24 MB attachment": lambda: HEAD + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n"
    b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + b"QUJD" * (6 * MB) + b"\r\n--b--\r\n",
}


def test_hostile_mail_is_read_in_under_2_s_and_200_mb(tmp_path: Path) -> None:
    cases = []
    for name, make in HOSTILE_MAIL.items():
        path = tmp_path / f"{len(cases)}.eml"
        path.write_bytes(make())
        cases.append((name, path))
    results = read_in_child(cases, timeout=300)
    slow = {n: r.cpu for n, r in results.items() if r.cpu > CPU_LIMIT}
    assert not slow, f"over {CPU_LIMIT} s of CPU: {slow}"
    big = {n: r.peak_mb for n, r in results.items() if r.peak_mb > RSS_LIMIT}
    assert not big, f"peak RSS over {RSS_LIMIT} MB after: {big}"


def test_the_mime_parser_reads_the_first_2_mb_and_says_so() -> None:
    raw = _plain(b"first words\r\n" + b"x" * (3 * MB))
    mail = parse_mail(raw)
    assert mail.text.startswith("first words")
    assert "read from its first 2 MB only" in mail.defects
    assert mail.size == len(raw) and mail.content_hash == hashlib.sha256(raw).hexdigest()


def test_the_mime_parser_stops_at_the_thousandth_boundary() -> None:
    raw = HEAD + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + b"".join(
        b"--b\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(MAX_PARTS + 5)
    ) + b"--b--\r\n"
    readable, cut = mime_prefix(raw)
    assert readable.count(b"\n--b") == MAX_PARTS - 1
    assert cut == f"read up to its {MAX_PARTS}th MIME boundary only"
    assert parse_mail(raw).text.strip() == "part 0"


def test_the_mime_parser_reads_fewer_lines_the_deeper_the_nesting() -> None:
    raw = _nested(100, b"line\r\n" * 50_000)
    readable, cut = mime_prefix(raw)
    assert readable.count(b"\n") == MAX_LINE_CHECKS // 100
    assert cut == f"read up to its {MAX_LINE_CHECKS // 100}th line only (100 multiparts)"
    assert parse_mail(raw).text.startswith("line\nline\n")
    flat = _plain(b"\n" * (MAX_MIME_LINES + 10) + b"end")
    assert mime_prefix(flat)[0].count(b"\n") == MAX_MIME_LINES


def test_the_mime_parser_reads_the_first_thousand_header_fields() -> None:
    raw = HEAD + b"X-A: 1\r\n" * 2000 + b"Content-Type: text/html\r\n\r\n<p>hi"
    readable, cut = mime_prefix(raw)
    assert readable.endswith(b"X-A: 1\r\n\r\n<p>hi")
    assert cut == f"read from its first {MAX_HEADER_FIELDS} header fields only"
    mail = parse_mail(raw)
    assert mail.subject == "hello" and mail.text == "<p>hi"  # Content-Type was field 2004


def test_the_reply_text_is_looked_for_in_the_first_lines_only() -> None:
    text = "new words\n" + "\n" * MAX_LINES + "On Mon, Jane <j@x.org> wrote:\n> old"
    assert strip_reply(text) == "new words"
    assert strip_reply("new\n\nOn Mon, 1 Dec, Jane <j@x.org> wrote:\n> old") == "new"


def test_all_address_fields_together_are_read_from_400_000_characters() -> None:
    many = ", ".join(f"u{i}@example.com" for i in range(40_000)).encode()  # 680 KB
    raw = HEAD.replace(b"To: sam@example.com", b"To: " + many) + b"Cc: c@x.org\r\n\r\n"
    mail = parse_mail(raw)
    assert mail.from_ is not None and mail.from_.email == "eve@evil.test"
    # The character budget and the address reader's cap on entries (MAX_ENTRIES) both bound it.
    assert 20_000 <= len(mail.to) < 40_000 and mail.cc == ()
    assert sum(len(a.email) + 2 for a in mail.to) <= MAX_ADDRESS_TOTAL


def test_a_flowed_paragraph_is_joined_as_before() -> None:
    body = b"> Hi \r\n> there\r\nHello \r\nworld \r\n-- \r\nEve"
    raw = _plain(body, b"; format=flowed; delsp=yes")
    assert parse_mail(raw).text == "> Hithere\nHelloworld-- \nEve"


def test_adjacent_encoded_words_are_decoded_in_linear_time() -> None:
    words = "=?utf-8?q?a?= " * 320_000  # 4.5 MB; about 8 s before (quadratic joining)
    began = time.process_time()
    decoded = decode_words(words + "=?utf-8?q?=C3?= =?utf-8?q?=A9?=")
    assert time.process_time() - began < CPU_LIMIT
    assert decoded == "a" * 320_000 + "é"  # a character split across two words is joined
