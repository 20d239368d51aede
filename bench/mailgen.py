"""A varied, realistic backlog of mail for the assistant's inbox, and a fast way to load it.

:func:`generate` yields raw RFC 5322 messages, deterministically for a seed, in this mix:

- owner asks (``Sam Rivera <sam@example.com>`` writes to a counterpart with the assistant in
  Cc; plain text, some HTML-only, some with a PDF attachment);
- counterpart replies to an earlier ask (In-Reply-To/References, quoted text, the assistant
  still in Cc), which the assistant matches to the thread;
- mail from strangers (ignored by the assistant);
- newsletters (``List-Id``, ``Precedence: list``, mostly HTML-only, the largest ones).

Sizes run from about 2 KB to about 50 KB. :func:`load_maildir` writes them straight into a
Maildir (``cur/``), named so that Dovecot gives them UIDs in generation order; that is how a
100,000-message backlog loads in seconds instead of 100,000 APPENDs.
"""

from __future__ import annotations

import base64
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

OWNER = ("Sam Rivera", "sam@example.com")
DOMAIN = "bench.example"

#: A fixed start for message dates: results never depend on the wall clock.
FIRST_DATE = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)

_WORDS = (
    "the", "project", "review", "budget", "intro", "meeting", "draft", "team", "customer",
    "launch", "deadline", "quarter", "contract", "proposal", "update", "plan", "design",
    "feedback", "hiring", "partner", "data", "report", "schedule", "conference", "travel",
    "invoice", "question", "help", "advice", "timeline", "release", "roadmap", "research",
    "workshop", "venue", "speaker", "interview", "reference", "candidate", "office", "migration",
    "support", "account", "would", "could", "please", "thanks", "next", "week", "monday", "friday",
    "morning", "afternoon", "call", "notes", "share", "send", "review", "quickly", "possible",
    "happy", "great", "about", "with", "from", "into", "over", "after", "before"
)
_FIRST = (
    "Jane", "Alex", "Priya", "Tom", "Mei", "Lucas", "Sara", "Omar", "Ines", "Kenji", "Ada", "Noah",
    "Lea", "Ravi", "Zoe", "Hugo", "Maya", "Ivan", "Nora", "Eli"
)
_LAST = (
    "Doe", "Kim", "Patel", "Novak", "Chen", "Silva", "Haddad", "Rossi", "Tanaka", "Berg", "Costa",
    "Meyer", "Dubois", "Ahmed", "Walsh", "Lopez", "Schmidt", "Okafor", "Moreau", "Quinn"
)
_ASKS = (
    "Intro to {org}?", "Could you review the {thing}?", "Advice on the {thing}",
    "Reference for {name}", "Quick question about {org}", "Help with the {thing} deadline",
    "Would you speak at our {thing} workshop?", "Coffee next week? ({org})",
)
_ORGS = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell")
_THINGS = ("budget", "proposal", "roadmap", "contract", "launch plan", "hiring plan", "report")
_NEWSLETTERS = ("Weekly Digest", "Product News", "Community Roundup", "Deals of the Week",
                "Engineering Notes")

#: Shares of each kind, in order: owner ask, counterpart reply, stranger, newsletter.
MIX = (("ask", 0.30), ("reply", 0.20), ("stranger", 0.22), ("newsletter", 0.28))
#: The mixes by name: ``project`` (above) and ``asks``, every message an owner's ask with the
#: assistant in Cc (each starts a thread: the dearest mail to read and record).
MIXES = {"project": MIX, "asks": (("ask", 1.0),)}


@dataclass(frozen=True)
class Generated:
    kind: str
    message_id: str
    date: datetime
    raw: bytes


@dataclass
class _Ask:
    message_id: str
    subject: str
    counterpart: tuple[str, str]


def _paragraphs(rng: random.Random, size: int) -> str:
    out: list[str] = []
    total = 0
    while total < size:
        words = rng.choices(_WORDS, k=rng.randint(30, 90))
        para = " ".join(words).capitalize() + "."
        # Wrapped at about 72 columns, as mail clients send it.
        lines, line = [], ""
        for word in para.split():
            if len(line) + len(word) > 72:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
        text = "\r\n".join(lines)
        out.append(text)
        total += len(text) + 4
    return "\r\n\r\n".join(out)


def _html(text: str, title: str) -> str:
    paras = "".join(f"<p style=\"margin:0 0 12px\">{p}</p>\r\n" for p in text.split("\r\n\r\n"))
    return (f"<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"</head>\r\n<body><table width=\"100%\"><tr><td>\r\n{paras}</td></tr></table>"
            "</body></html>\r\n")


def _b64_lines(data: bytes) -> str:
    encoded = base64.b64encode(data).decode()
    return "\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def _person(rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    number = rng.randint(1, 400)
    return f"{first} {last}", f"{first.lower()}.{last.lower()}{number}@partner{number % 37}.org"


def _addr(person: tuple[str, str]) -> str:
    return f"{person[0]} <{person[1]}>"


def _headers(fields: list[tuple[str, str]]) -> str:
    return "".join(f"{name}: {value}\r\n" for name, value in fields)


def _body(rng: random.Random, text: str, title: str, *, html_only: bool,
          attachment: int) -> tuple[list[tuple[str, str]], str]:
    """(content headers, body) for text (or HTML-only), with an optional PDF of that size."""
    if html_only:
        part_headers = [("Content-Type", 'text/html; charset="utf-8"'),
                        ("Content-Transfer-Encoding", "8bit")]
        part = _html(text, title)
    else:
        part_headers = [("Content-Type", 'text/plain; charset="utf-8"'),
                        ("Content-Transfer-Encoding", "8bit")]
        part = text + "\r\n"
    if not attachment:
        return part_headers, part
    boundary = f"=_bench_{rng.getrandbits(64):016x}"
    pdf = b"%PDF-1.4\n" + rng.randbytes(attachment)
    body = (
        f"This is a multi-part message in MIME format.\r\n\r\n--{boundary}\r\n"
        f"{_headers(part_headers)}\r\n{part}\r\n--{boundary}\r\n"
        'Content-Type: application/pdf; name="notes.pdf"\r\n'
        'Content-Disposition: attachment; filename="notes.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{_b64_lines(pdf)}\r\n--{boundary}--\r\n"
    )
    return [("MIME-Version", "1.0"),
            ("Content-Type", f'multipart/mixed; boundary="{boundary}"')], body


def _message(fields: list[tuple[str, str]], content: tuple[list[tuple[str, str]], str]) -> bytes:
    headers, body = content
    if not any(name == "MIME-Version" for name, _ in headers):
        headers = [("MIME-Version", "1.0"), *headers]
    return (_headers(fields + headers) + "\r\n" + body).encode()


def generate(count: int, assistant: str, seed: int = 7, mix: str = "project",
             start: datetime = FIRST_DATE) -> Iterator[Generated]:
    """``count`` messages to ``assistant``, one a minute from ``start``, in the
    :data:`MIXES` named ``mix``."""
    rng = random.Random(seed)
    kinds = [k for k, _ in MIXES[mix]]
    weights = [w for _, w in MIXES[mix]]
    open_asks: list[_Ask] = []
    for n in range(count):
        date = start + timedelta(minutes=n)
        kind = rng.choices(kinds, weights)[0]
        if kind == "reply" and not open_asks:
            kind = "ask"
        message_id = f"{n:07d}.{rng.getrandbits(40):010x}@{DOMAIN}"
        common = [("Date", format_datetime(date)), ("Message-ID", f"<{message_id}>")]
        if kind == "ask":
            counterpart = _person(rng)
            subject = rng.choice(_ASKS).format(org=rng.choice(_ORGS), thing=rng.choice(_THINGS),
                                               name=counterpart[0].split()[0])
            text = f"Hi {counterpart[0].split()[0]},\r\n\r\n" + _paragraphs(
                rng, rng.randint(600, 5000)) + f"\r\n\r\nThanks,\r\n{OWNER[0].split()[0]}"
            attachment = rng.choice((0, 0, 0, 0, rng.randint(8_000, 30_000)))
            raw = _message(
                [("From", _addr(OWNER)), ("To", _addr(counterpart)), ("Cc", assistant),
                 ("Subject", subject), *common],
                _body(rng, text, subject, html_only=rng.random() < 0.15, attachment=attachment),
            )
            open_asks.append(_Ask(message_id, subject, counterpart))
            if len(open_asks) > 2000:
                open_asks.pop(0)
        elif kind == "reply":
            ask = open_asks.pop(rng.randrange(len(open_asks)))
            quoted = "\r\n".join("> " + line for line in _paragraphs(rng, 400).split("\r\n"))
            text = (_paragraphs(rng, rng.randint(300, 3000)) + f"\r\n\r\n{ask.counterpart[0]}"
                    f"\r\n\r\nOn {format_datetime(date - timedelta(hours=5))}, {OWNER[0]} wrote:"
                    f"\r\n{quoted}")
            raw = _message(
                [("From", _addr(ask.counterpart)), ("To", _addr(OWNER)), ("Cc", assistant),
                 ("Subject", f"Re: {ask.subject}"), ("In-Reply-To", f"<{ask.message_id}>"),
                 ("References", f"<{ask.message_id}>"), *common],
                _body(rng, text, ask.subject, html_only=rng.random() < 0.2,
                      attachment=rng.choice((0, 0, 0, 0, 0, rng.randint(5_000, 20_000)))),
            )
        elif kind == "stranger":
            sender = _person(rng)
            subject = " ".join(rng.choices(_WORDS, k=rng.randint(3, 8))).capitalize()
            text = "Hello,\r\n\r\n" + _paragraphs(rng, rng.randint(800, 8000))
            raw = _message(
                [("From", _addr(sender)), ("To", assistant), ("Subject", subject), *common],
                _body(rng, text, subject, html_only=rng.random() < 0.3,
                      attachment=rng.choice((0, 0, 0, rng.randint(5_000, 35_000)))),
            )
        else:
            name = rng.choice(_NEWSLETTERS)
            slug = name.lower().replace(" ", "-")
            text = _paragraphs(rng, rng.randint(6_000, 45_000))
            raw = _message(
                [("From", f"{name} <news@{slug}.example>"), ("To", assistant),
                 ("Subject", f"{name}: " + " ".join(rng.choices(_WORDS, k=5))),
                 ("List-Id", f"{name} <{slug}.lists.example>"),
                 ("List-Unsubscribe", f"<mailto:leave@{slug}.example>"),
                 ("Precedence", "list"), *common],
                _body(rng, text, name, html_only=rng.random() < 0.7, attachment=0),
            )
        yield Generated(kind, message_id, date, raw)


@dataclass
class Loaded:
    """What :func:`load_maildir` wrote: counts per kind, bytes, and the time it took."""

    messages: int
    total_bytes: int
    kinds: dict[str, int]
    seconds: float


def load_maildir(maildir: Path, messages: Iterator[Generated], uid: int, gid: int) -> Loaded:
    """Write each message as a file in ``maildir/cur`` (flags none, read by nobody yet).

    File names start with a strictly increasing timestamp: Dovecot sorts new files by that
    time before giving them UIDs, so UID order is generation order (asks before replies).
    ``,S=`` carries the size so Dovecot needs no stat for it.
    """
    import time

    began = time.monotonic()
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    base = int(FIRST_DATE.timestamp())
    kinds: dict[str, int] = {}
    total = count = 0
    for message in messages:
        data = message.raw.replace(b"\r\n", b"\n")  # Maildir files use bare LF
        name = f"{base + count}.M{count}P1.bench,S={len(data)}:2,"
        path = maildir / "cur" / name
        path.write_bytes(data)
        os.utime(path, (message.date.timestamp(), message.date.timestamp()))
        if os.geteuid() == 0:
            os.chown(path, uid, gid)
        kinds[message.kind] = kinds.get(message.kind, 0) + 1
        total += len(data)
        count += 1
    if os.geteuid() == 0:
        for path in [maildir.parent, maildir, *(maildir / s for s in ("cur", "new", "tmp"))]:
            os.chown(path, uid, gid)
    return Loaded(count, total, kinds, time.monotonic() - began)
