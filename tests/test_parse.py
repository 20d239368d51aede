"""bytes -> Mail: fields, decoding of real-world garbage, subjects, and the one exception."""

from __future__ import annotations

import doctest
import hashlib
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from mailhelper.model.values import Address
from mailhelper.read import autoreply, forwards, htmltext, mailtext, parse, replytext
from mailhelper.read.parse import (
    MAX_HEADER_VALUE,
    UnparseableMail,
    clean_subject,
    decode_words,
    parse_mail,
    subject_prefix,
)

FULL = (
    b"Return-Path: <jane@acme.com>\r\n"
    b"Delivered-To: helper@example.com\r\n"
    b"Message-ID: <CAB+123@mail.acme.com>\r\n"
    b"In-Reply-To: <ask-1@example.com>\r\n"
    b"References: <root@example.com>\r\n <ask-1@example.com> junk\r\n"
    b"From: =?utf-8?q?Jane_D=C3=B6e?= <Jane.Doe@ACME.com>\r\n"
    b"Sender: Bounces <bounce@acme.com>\r\n"
    b"To: Sam Rivera <sam@example.com>, undisclosed-recipients:;\r\n"
    b'Cc: "Doe, John" <john@acme.com>, <>, not an address, helper@example.com\r\n'
    b"Reply-To: jane@personal.example\r\n"
    b"Subject: Re: AW: [Acme] Intro\r\n"
    b"Date: Tue, 01 Dec 2026 09:00:00 +0100\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Happy to!\r\n\r\nOn Mon, 30 Nov 2026, Sam <sam@example.com> wrote:\r\n> Intro?\r\n"
)


def test_every_field() -> None:
    mail = parse_mail(FULL)
    assert mail.message_id == "CAB+123@mail.acme.com"
    assert mail.in_reply_to == ("ask-1@example.com",)
    assert mail.references == ("root@example.com", "ask-1@example.com")
    assert mail.from_ == Address("jane.doe@acme.com", "Jane Döe")
    assert mail.sender == Address("bounce@acme.com", "Bounces")
    assert mail.to == (Address("sam@example.com", "Sam Rivera"),)
    assert mail.cc == (Address("john@acme.com", "Doe, John"), Address("helper@example.com"))
    assert mail.reply_to == (Address("jane@personal.example"),)
    assert mail.delivered_to == (Address("helper@example.com"),)
    assert mail.subject == "Re: AW: [Acme] Intro"
    assert mail.clean_subject == "[Acme] Intro"
    assert mail.date == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert mail.text.startswith("Happy to!\n\nOn Mon")
    assert mail.reply_text == "Happy to!"
    assert mail.forwarded is None
    assert mail.header("return-path") == "<jane@acme.com>"
    assert mail.headers["from"] == ("Jane Döe <Jane.Doe@ACME.com>",)
    assert mail.content_hash == hashlib.sha256(FULL).hexdigest()
    assert mail.size == len(FULL)
    assert mail.defects == ()


def test_a_missing_message_id_is_synthetic_and_stable() -> None:
    raw = b"From: a@b.c\r\nSubject: hi\r\n\r\nbody"
    first, again = parse_mail(raw), parse_mail(raw)
    digest = hashlib.sha256(raw).hexdigest()[:32]
    assert first.message_id == again.message_id == f"sha256-{digest}@mailhelper.invalid"
    assert parse_mail(raw + b"!").message_id != first.message_id
    assert "no Message-ID: synthetic id" in first.defects


def test_bare_and_odd_message_ids() -> None:
    mail = parse_mail(b"Message-ID: bare@id.example\r\nIn-Reply-To: <a@b> (comment)\r\n\r\n")
    assert (mail.message_id, mail.in_reply_to) == ("bare@id.example", ("a@b",))


def test_references_keep_the_root_and_the_latest() -> None:
    ids = b" ".join(b"<%d@x>" % i for i in range(1000))
    mail = parse_mail(b"Message-ID: <m@x>\r\nReferences: " + ids + b"\r\n\r\n")
    assert len(mail.references) == parse.MAX_IDS
    assert mail.references[0] == "0@x" and mail.references[-1] == "999@x"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Tue, 1 Dec 2026 09:00:00 +0100", datetime(2026, 12, 1, 8, tzinfo=UTC)),
        ("1 Dec 2026 09:00:00 GMT", datetime(2026, 12, 1, 9, tzinfo=UTC)),
        ("Tue, 1 Dec 2026 09:00:00 -0000", None),  # RFC 5322: zone unknown
        ("Tue, 1 Dec 2026 09:00:00", None),
        ("Tuesday morning", None),
        ("Tue, 99 Foo 99999 99:99:99 +9999", None),
        ("", None),
    ],
)
def test_dates(value: str, expected: datetime | None) -> None:
    assert parse.parse_date(value) == expected


# -- subjects -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "clean"),
    [
        ("Re: Fwd: Intro", "Intro"),
        ("RE: RE: FW: Intro", "Intro"),
        ("Re[2]: Intro", "Intro"),
        ("RE (3): Intro", "Intro"),
        ("RE : Intro", "Intro"),
        ("Fwd : Intro", "Intro"),
        ("AW: WG: Intro", "Intro"),
        ("TR: RE : Intro", "Intro"),
        ("SV: VS: Intro", "Intro"),
        ("RV: Intro", "Intro"),
        ("ENC: Intro", "Intro"),
        ("I: R: Intro", "Intro"),
        ("Antw: Doorst: Intro", "Intro"),
        ("Odp: PD: Intro", "Intro"),
        ("Redir.: Intro", "Intro"),
        ("VB: VL: Intro", "Intro"),
        ("回复：Intro", "Intro"),
        ("[offer] Intro", "[offer] Intro"),
        ("Re: [offer] Re: Intro", "[offer] Intro"),
        ("[EXT] RE: Intro", "[EXT] Intro"),
        ("Intro [ask]", "Intro [ask]"),
        ("Renewal: Re: x", "Renewal: Re: x"),
        ("  Re:   Intro  ", "Intro"),
        ("[Fwd: Netscape vs. Apache]", "Netscape vs. Apache"),
        ("Re:", ""),
        ("", ""),
    ],
)
def test_clean_subject(subject: str, clean: str) -> None:
    assert clean_subject(subject) == clean


@pytest.mark.timeout(30)
def test_clean_subject_of_a_huge_subject() -> None:
    assert clean_subject("Re: " * 500_000 + "Intro") == ""  # cut at MAX_SUBJECT first
    assert clean_subject("Re: " * 1000 + "Intro") == "Intro"


@pytest.mark.parametrize(
    ("subject", "kind"),
    [
        ("Fwd: x", "forward"), ("FW: RE: x", "forward"), ("WG: x", "forward"),
        ("TR: x", "forward"), ("RV: x", "forward"), ("I: x", "forward"), ("PD: x", "forward"),
        ("Re: Fwd: x", "reply"), ("AW: x", "reply"), ("Odp: x", "reply"), ("SV: x", "reply"),
        ("[offer] Fwd: x", "forward"), ("#offer Fwd: x", "forward"), ("x", None), ("", None),
    ],
)  # fmt: skip
def test_subject_prefix(subject: str, kind: str | None) -> None:
    assert subject_prefix(subject) == kind


# -- decoding real-world garbage ------------------------------------------------------------


def test_encoded_words() -> None:
    assert decode_words("=?utf-8?q?Caf=C3=A9?= =?utf-8?b?IGF1?= lait") == "Café au lait"
    assert decode_words("=?utf-8?b?eHB0bw?=") == "xpto"  # padding missing
    assert decode_words("=?ks_c_5601-1987?B?u+fB+C5KUEc=?=") == "사진.JPG"
    assert decode_words("=?unknown-8bit?q?caf=E9?=") == "café"
    assert decode_words("=?no-such?q?x?=") == "x"
    # A character split over two words of one charset (RFC 2047 forbids; clients do it).
    euro = "€".encode()
    split = "=?utf-8?q?" + "".join(f"={b:02X}" for b in euro[:2]) + "?= =?utf-8?q?="
    assert decode_words(split + f"{euro[2]:02X}?=") == "€"


def test_raw_8bit_headers_in_the_bodys_charset() -> None:
    raw = (
        b"From: a@b.c\r\nSubject: \xd3\xca\xbc\xfe\r\n"
        b"Content-Type: text/plain; charset=gb2312\r\n\r\nhi"
    )
    assert parse_mail(raw).subject == "邮件"
    latin = parse_mail(b"From: Ingo L\xfctkebohle <ingo@x.de>\r\nSubject: x\r\n\r\nhi")
    assert latin.from_ == Address("ingo@x.de", "Ingo Lütkebohle")


def test_raw_utf8_header() -> None:
    mail = parse_mail("From: Jürgen <j@x.de>\r\nSubject: Grüße\r\n\r\nhi".encode())
    assert (mail.from_, mail.subject) == (Address("j@x.de", "Jürgen"), "Grüße")


@pytest.mark.parametrize(
    ("charset", "text"),
    [
        ("x-mac-cyrillic", "Привет"),
        ("ks_c_5601-1987", "스티해"),
        ("gb2312", "次の受信者またはグループへの配信に失敗しました"),  # GBK, labelled GB2312
        ("iso-8859-1", "café “quoted”"),  # Windows-1252 labelled Latin-1
        ("shift_jis", "①あいう"),
        ("unicode-1-1-utf-7", "café"),
        ("no-such-charset", "plain"),
    ],
)
def test_body_charsets(charset: str, text: str) -> None:
    codec = {"x-mac-cyrillic": "mac-cyrillic", "ks_c_5601-1987": "cp949", "gb2312": "gbk",
             "iso-8859-1": "cp1252", "shift_jis": "cp932", "unicode-1-1-utf-7": "utf-7",
             "no-such-charset": "ascii"}[charset]  # fmt: skip
    raw = (
        f"From: a@b.c\r\nSubject: x\r\nContent-Type: text/plain; charset={charset}\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + text.encode(codec)
    assert parse_mail(raw).text == text


def test_iso_2022_jp_with_microsoft_characters() -> None:
    word = "=?iso-2022-jp?B?GyRCJygnJS1iGyhCNDEgGyRCJ2AnZBsoQiAyOC4wOS4yMDE2?="
    assert decode_words(word) == "ЖД№41 от 28.09.2016"


def test_html_only_and_attachments() -> None:
    message = EmailMessage()
    message["From"], message["Subject"] = "a@b.c", "x"
    message.set_content("<p>Hello <b>Sam</b></p><blockquote>old</blockquote>", subtype="html")
    message.add_attachment(b"not the body", maintype="text", subtype="plain", filename="a.txt")
    assert parse_mail(message.as_bytes()).text == "Hello Sam\n\n> old"


def test_plain_text_is_preferred_to_html() -> None:
    message = EmailMessage()
    message["From"], message["Subject"] = "a@b.c", "x"
    message.set_content("plain words")
    message.add_alternative("<p>html words</p>", subtype="html")
    assert parse_mail(message.as_bytes()).text == "plain words\n"


def test_format_flowed() -> None:
    raw = (
        b"From: a@b.c\r\nSubject: x\r\nContent-Type: text/plain; format=flowed\r\n\r\n"
        b"A long \r\nline.\r\n> quoted \r\n> too\r\nHello\r\n-- \r\nsig\r\n"
    )
    mail = parse_mail(raw)
    assert mail.text == "A long line.\n> quoted too\nHello\n-- \nsig\n"
    assert mail.reply_text == "A long line.\nHello"


def test_broken_structure_is_a_defect_not_an_error() -> None:
    raw = (
        b"From: a@b.c\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary=nope\r\n\r\n"
        b"--other\r\nContent-Type: text/plain\r\n\r\nlost\r\n"
    )
    mail = parse_mail(raw)
    assert mail.defects and mail.subject == "x"


def test_headers_are_capped() -> None:
    raw = b"From: a@b.c\r\nSubject: " + b"x" * 100_000 + b"\r\n" + b"X-A: 1\r\n" * 5000 + b"\r\n"
    mail = parse_mail(raw)
    assert len(mail.subject) == parse.MAX_SUBJECT
    assert len(mail.headers["subject"][0]) == MAX_HEADER_VALUE
    assert sum(map(len, mail.headers.values())) == parse.MAX_HEADER_FIELDS


def test_a_forward_reaches_the_mail() -> None:
    raw = (
        b"From: sam@example.com\r\nSubject: Fwd: Intro\r\n\r\nFYI\r\n\r\n"
        b"---------- Forwarded message ---------\r\nFrom: Jane <jane@acme.com>\r\n"
        b"Date: Tue, 1 Dec 2026 at 09:00\r\nSubject: Intro\r\nTo: <sam@example.com>\r\n\r\nHi"
    )
    mail = parse_mail(raw)
    assert mail.forwarded is not None and mail.forwarded.from_ == Address("jane@acme.com", "Jane")
    assert mail.reply_text == "FYI"


# -- not a mail -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   \r\n\r\n",
        b"just some text, no header at all\r\n",
        b"\x00\x01\x02\xff",
        b"X-Only: header\r\nContent-Type: text/plain\r\n\r\nbody",
    ],
)
def test_not_a_mail(raw: bytes) -> None:
    with pytest.raises(UnparseableMail):
        parse_mail(raw)


@pytest.mark.parametrize("header", [b"From: a@b.c", b"Subject: x", b"Message-ID: <a@b>",
                                    b"Sender: a@b.c"])
def test_one_identifying_header_makes_a_mail(header: bytes) -> None:
    assert parse_mail(header + b"\r\n\r\n").message_id


@pytest.mark.parametrize("module", [parse, mailtext, forwards, replytext, autoreply, htmltext])
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)  # type: ignore[arg-type]
    assert result.failed == 0
