"""A time-bounded fuzz run of the whole reading (parse_mail + classify) over generated hostile
HTML and MIME: unclosed tags, deep nesting, huge attributes, many parts, bad encodings, long
lines, many headers. Every message must be read in under 2 s of CPU and 200 MB.

The generator is seeded, so every run reads the same messages; each is named by what it was
made of, and a failure names the messages that broke the bound. The reading runs in a child
process (:mod:`tests.rig.reading`): its peak RSS is the reading's own, and one that never ends
is stopped by a timeout that names it.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from pathlib import Path

from tests.rig.reading import read_in_child

SEED = 16
MESSAGES = 60
CPU_LIMIT = 2.0
RSS_LIMIT = 200.0
MB = 1024 * 1024

# -- HTML hazards (each returns about ``size`` characters) ----------------------------------------

TAGS = ["a", "div", "p", "blockquote", "li", "pre", "td", "span", "br", "script", "style",
        "jane@x.org", "x-y", "svg"]


def unclosed_tags(rng: random.Random, size: int) -> str:
    unit = rng.choice(["<a ", "<a/", "<a b=", "<a b='", '<a b="', "</a ", "<", "<!", "<?"])
    return unit * (size // len(unit))


def deep_nesting(rng: random.Random, size: int) -> str:
    opening = rng.choice(["<blockquote>", "<div class=yahoo_quoted>", "<p>", "<li>", "<pre>",
                          "<td>", "<blockquote><br>", "<div>x"])
    return opening * (size // len(opening))


def huge_attribute(rng: random.Random, size: int) -> str:
    quote = rng.choice(['"', "'", ""])
    close = rng.choice([quote + ">", ""])
    return f"<a href={quote}" + "x" * size + close + "text"


def unterminated_markup(rng: random.Random, size: int) -> str:
    unit = rng.choice(["<!--x>", "<![cdata[x>", "<![if x>", "<!doctype x", "<?x>", "<!-- --!>"])
    return unit * (size // len(unit)) + rng.choice(["", ">", "-->"])


def entity_flood(rng: random.Random, size: int) -> str:
    unit = rng.choice(["&amp;", "&#", "&#x", "&", "&#1234567890;", "&notanentity;", "&lt"])
    return unit * (size // len(unit))


def random_fragments(rng: random.Random, size: int) -> str:
    pieces = [f"<{rng.choice(TAGS)}>" for _ in range(20)] + [
        f"</{rng.choice(TAGS)}>" for _ in range(20)] + ["text ", "\n", "&amp;", "<", ">", '"']
    out, length = [], 0
    while length < size:
        piece = rng.choice(pieces)
        out.append(piece)
        length += len(piece)
    return "".join(out)


HTML: list[Callable[[random.Random, int], str]] = [
    unclosed_tags, deep_nesting, huge_attribute, unterminated_markup, entity_flood,
    random_fragments,
]

# -- text bodies ----------------------------------------------------------------------------------


def text_flood(rng: random.Random, size: int) -> str:
    unit = rng.choice([
        "\n", "\r\n", "x \n", "> ", "> x\n", ">" * 50 + " x\n", "On Mon, Jane <j@x.org> wrote:\n",
        "From: a@b.c\nSent: x\nTo: y\nSubject: z\n", "---------- Forwarded message ---------\n",
        "-- \n", "é\n", "x" * 1000, "\u200b\n", "=\n",
    ])
    return unit * (size // len(unit))


# -- MIME -----------------------------------------------------------------------------------------

HEAD = "From: {sender}\r\nTo: helper@example.com\r\nSubject: {subject}\r\n"


def headers(rng: random.Random) -> str:
    """A header block with one or two hazards."""
    sender = rng.choice(["Eve <eve@evil.test>", "eve@evil.test", "Sam Rivera <sam@example.com>"])
    subject = rng.choice(["hello", "Re: " * 20_000 + "x", "=?utf-8?q?a?= " * 20_000,
                          "=?iso-2022-jp?B?GyRCJEgbKEI=?=", "x" * 100_000])
    lines = [HEAD.format(sender=sender, subject=subject)]
    for _ in range(rng.randint(0, 2)):
        hazard = rng.randrange(6)
        if hazard == 0:  # many headers
            lines.append("X-A: 1\r\n" * rng.choice([1000, 20_000]))
        elif hazard == 1:  # one folded header of many lines
            lines.append("X-Folded: 1" + "\r\n 1" * rng.choice([10_000, 100_000]) + "\r\n")
        elif hazard == 2:  # long address fields
            name = rng.choice(["Cc", "Reply-To", "Bcc", "Sender"])
            lines.append(f"{name}: " + rng.choice(["@", "<", "a,", "(", '"']) * 300_000 + "\r\n")
        elif hazard == 3:  # many references
            lines.append("References: " + " ".join(f"<{i}@x>" for i in range(50_000)) + "\r\n")
        elif hazard == 4:  # no Message-ID, or a bad one
            lines.append(rng.choice(
                ["", "Message-ID: <>\r\n", "Message-ID: " + "<" * 1000 + "\r\n"]))
        else:  # 8-bit header bytes are added later; here a broken Date
            lines.append("Date: " + "9" * 10_000 + "\r\n")
    return "".join(lines)


def leaf(rng: random.Random, size: int) -> str:
    kind = rng.choice(["text/html", "text/plain"])
    body = (rng.choice(HTML)(rng, size) if kind == "text/html" else text_flood(rng, size))
    charset = rng.choice(["utf-8", "x-unknown", "iso-2022-jp", "utf-7", "gb2312", "bogus\"",
                          "unicode_escape"])
    encoding = rng.choice(["8bit", "quoted-printable", "base64", "x-uuencode"])
    flowed = rng.choice(["", "; format=flowed", "; format=flowed; delsp=yes"])
    header = (f"Content-Type: {kind}; charset={charset}{flowed}\r\n"
              f"Content-Transfer-Encoding: {encoding}\r\n\r\n")
    if encoding == "base64" and rng.random() < 0.7:
        return header + base64.encodebytes(body.encode("utf-8", "replace")).decode()
    if encoding == "quoted-printable" and rng.random() < 0.5:
        return header + rng.choice(["=\r\n", "=ZZ", "=3D"]) * (size // 3)
    return header + body


def multipart(rng: random.Random, size: int) -> str:
    shape = rng.randrange(4)
    if shape == 0:  # many small parts
        count = rng.choice([100, 5000, 30_000])
        parts = "".join(f"--b\r\n{leaf(rng, 10)}\r\n" for _ in range(count))
        return 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + parts + "--b--\r\n"
    if shape == 1:  # deep nesting
        depth = rng.choice([50, 300, 2000])
        opening = "".join(f"--b{i}\r\nContent-Type: multipart/mixed; boundary=b{i + 1}\r\n\r\n"
                          for i in range(depth))
        return (f"Content-Type: multipart/mixed; boundary=b0\r\n\r\n{opening}--b{depth}\r\n"
                + leaf(rng, size) + "\r\n")
    if shape == 2:  # an attached message with its own hazards
        return ('Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
                "Content-Type: text/plain\r\n\r\nsee attached\r\n--b\r\n"
                "Content-Type: message/rfc822\r\n\r\n" + headers(rng) + leaf(rng, size)
                + "\r\n--b--\r\n")
    # a missing or broken boundary
    return (rng.choice(['Content-Type: multipart/alternative; boundary=""\r\n',
                        "Content-Type: multipart/alternative\r\n",
                        'Content-Type: multipart/alternative; boundary="' + "b" * 5000 + '"\r\n'])
            + "\r\n--b\r\n" + leaf(rng, size))


def message(rng: random.Random) -> tuple[str, bytes]:
    size = rng.choice([1_000, 100_000, 1 * MB, 3 * MB])
    head = headers(rng)
    if rng.random() < 0.5:
        body = leaf(rng, size)
        shape = body.split("\r\n", 1)[0]
    else:
        body = multipart(rng, size)
        shape = body.split("\r\n", 1)[0][:60]
    raw = (head + "MIME-Version: 1.0\r\n" + body).encode("utf-8", "surrogateescape")
    if rng.random() < 0.2:  # raw 8-bit bytes in the header
        raw = raw.replace(b"Subject: ", b"Subject: \xff\xfe\xe9", 1)
    return f"{shape} ({len(raw) // 1024} KB)", raw


def test_every_generated_hostile_message_is_read_in_under_2_s_and_200_mb(
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    cases = []
    for number in range(MESSAGES):
        name, raw = message(rng)
        path = tmp_path / f"{number}.eml"
        path.write_bytes(raw)
        cases.append((f"#{number} {name}", path))
    results = read_in_child(cases, timeout=900)
    slow = {name: r.cpu for name, r in results.items() if r.cpu > CPU_LIMIT}
    assert not slow, f"over {CPU_LIMIT} s of CPU (seed {SEED}): {slow}"
    big = {name: r.peak_mb for name, r in results.items() if r.peak_mb > RSS_LIMIT}
    assert not big, f"peak RSS over {RSS_LIMIT} MB (seed {SEED}): {big}"
