"""The prefilter's header check against the implementation it replaced, kept here as the
reference: it read the header with the stdlib's header parser (``compat32``).

Why the reference is kept: :func:`header_check` reads the four fields it needs (From,
Message-ID, In-Reply-To, References) without the stdlib parser when the header is plain
ASCII with no CR alone, as that parser took about a sixth of the reading worker's time. What
it finds must be what the parser found, for every header: folded fields, a first line that
is a continuation, mbox "From " lines (first, last, elsewhere), a field with no name, a
line that is no field (the header ends there), names with spaces before the colon, names in
any case, fields given twice, 8-bit bytes, CR alone, LF and CRLF ends.
"""

from __future__ import annotations

import email.policy
from email.parser import BytesHeaderParser

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mailhelper.decide.classify import is_assistant_address
from mailhelper.decide.prefilter import Candidate, _fields, header_check, header_of
from mailhelper.model.addresses import fold
from mailhelper.model.message_id import looks_like_ours
from mailhelper.model.settings import Settings
from mailhelper.model.values import Address
from mailhelper.read.parse import address_list, message_ids, mime_prefix

SETTINGS = Settings(owners=(Address("sam@example.com", "Sam Rivera"),),
                    assistant=Address("helper@example.com"))

_PARSER = BytesHeaderParser(policy=email.policy.compat32)


def reference_header_check(raw: bytes, settings: Settings) -> Candidate | None:
    readable, cut = mime_prefix(header_of(raw))
    if cut:
        return None
    try:
        header = _PARSER.parsebytes(readable)
        froms = header.get_all("From") or []
        message_id = message_ids(str(header.get("Message-ID", "")))
        references = message_ids(" ".join(
            str(v) for v in (header.get_all("In-Reply-To") or []) + (header.get_all("References")
                                                                    or [])))
    except Exception:
        return None
    if len(froms) != 1 or len(message_id) != 1:
        return None
    field = fold(str(froms[0]))
    assistant = fold(settings.assistant.email)
    local, _, domain = assistant.partition("@")
    if any(owner.email in field for owner in settings.owners) or (
            local in field and domain in field):
        return None
    senders = address_list(str(froms[0]))
    if len(senders) != 1:
        return None
    sender = senders[0].email
    if settings.owner_for(sender) is not None or is_assistant_address(sender, settings.assistant):
        return None
    if looks_like_ours(message_id[0], domain):
        return None
    return Candidate(message_id[0], (*message_id, *references), sender)


_FIELDS = [
    "From: news@shop.example", "From: Jane <jane@example.org>", "from: jane@example.org",
    "FROM:jane@example.org", "From :jane@example.org", "From: Sam <sam@example.com>",
    "From: sam(Sam)@example.com", "From: helper+x@example.com", "From: a@x.org, b@y.org",
    "From: =?utf-8?q?J=C3=A9r=C3=B4me?= <j@example.fr>", "From: \"Doe, Jane\" <jane@x.org>",
    "From:", "From: Jane", " <jane@example.org>", "\tjane@example.org", " (comment)",
    "Message-ID: <1@shop.example>", "Message-Id: <2@x.org>", "message-id:<3@x.org>",
    "Message-ID: <a@x> <b@y>", "Message-ID:", "Message-ID: no-brackets@x",
    "Message-ID: <mh-1-abc@example.com>", " <folded@x.org>",
    "In-Reply-To: <p@x.org>", "References: <r1@x.org>", "References: <r1@x.org> <r2@x.org>",
    "References: <r1@x.org>\n <r2@x.org>", "In-Reply-To: <q@x.org> (Jane's message)",
    "Subject: Hello", "Subject: Re: hi: there", "To: helper@example.com", "X-Odd:",
    ":no name", "From somebody@example Tue Dec  1 09:00:00 2026", "From nobody",
    "Not a field at all", "Received: from mx by mx; Tue, 1 Dec 2026",
    "X-8bit: caf\xe9", "From: J\xe9r\xf4me <j@example.fr>", "Subject: a\rb", "",
]


@st.composite
def _raws(draw: st.DrawFn) -> bytes:
    # Most headers have a From and a Message-ID somewhere, so that most make a candidate.
    lines = draw(st.lists(st.sampled_from(_FIELDS), max_size=8))
    lines += draw(st.lists(st.sampled_from([f for f in _FIELDS if f[:5].lower() == "from:"]),
                           min_size=1, max_size=2))
    lines += draw(st.lists(st.sampled_from([f for f in _FIELDS if "essage-i" in f.lower()]),
                           min_size=1, max_size=2))
    lines = draw(st.permutations(lines))
    end = draw(st.sampled_from([b"\r\n", b"\n"]))
    body = draw(st.sampled_from([b"", b"Hi\r\n", b"From: body@x.org\r\n", b"\r\n\r\nx"]))
    header = end.join(line.encode("latin-1") for line in lines)
    return header + draw(st.sampled_from([end + end, end, b""])) + body


@given(_raws())
@settings(max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(b"From: news@shop.example\r\nMessage-ID: <1@shop.example>\r\n\r\nHi")
@example(b"From x Tue\r\nFrom: a@x.org\r\nMessage-ID: <1@x>\r\n <2@x>\r\n\r\n")
@example(b"Message-ID: <1@x>\nFrom: a@x.org\nFrom nobody\n\n")
def test_header_check_finds_what_the_reference_finds(raw: bytes) -> None:
    assert header_check(raw, SETTINGS) == reference_header_check(raw, SETTINGS)


@given(_raws())
@settings(max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(b"From x\r\nFrom: a@x.org\r\n :b\r\n\tc\r\n:x\r\n d\r\nFrom y\r\n")
@example(b" first\nReferences: <a@x>\n <b@x>\nFrom y\nMessage-ID: <c@x>\n")
def test_the_fields_read_are_the_parsers(raw: bytes) -> None:
    """What the check reads the four fields as, for every header (not only candidates)."""
    header = header_of(raw)
    parsed = _PARSER.parsebytes(header)
    assert _fields(header) == {name: [str(value) for value in parsed.get_all(name) or []]
                               for name in ("from", "message-id", "in-reply-to", "references")}


def test_the_generated_headers_make_candidates_too() -> None:
    """The property above would prove little if hardly any header made a candidate."""
    found = []

    @given(_raws())
    @settings(max_examples=300, deadline=None, database=None)
    def collect(raw: bytes) -> None:
        found.append(reference_header_check(raw, SETTINGS) is not None)

    collect()
    assert sum(found) >= 10, sum(found)  # about 30 (one in ten) is usual
