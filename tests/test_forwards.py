"""Forwards as each client writes them, in each language, built here as strings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage

import pytest

from mailhelper.model.values import Address
from mailhelper.read.forwards import find_forward, find_inline_forward, parse_loose_date
from mailhelper.read.parse import parse_mail

JANE = Address("jane@acme.com", "Jane Doe")
BODY = "Could you introduce me to Bob?\n\nJane"
NOTE = "Sam, see below.\n\n"


def forwarded(
    text: str, subject: str | None = "Fwd: Intro to Bob"
) -> tuple[Address | None, str]:
    found = find_inline_forward(text, subject)
    assert found is not None, text
    assert found.body.strip().startswith("Could you introduce me"), found.body
    return found.from_, found.subject


# Gmail: an English marker in every locale, labels in the user's language.
GMAIL = {
    "en": ("From", "Date", "Subject", "To", "Wed, Oct 27, 2021 at 9:31 AM"),
    "de": ("Von", "Date", "Subject", "To", "Mi., 27. Okt. 2021 um 09:31 Uhr"),
    "fr": ("De", "Date", "Subject", "To", "mer. 27 oct. 2021 à 09:31"),
    "es": ("De", "Date", "Subject", "To", "mié., 27 oct 2021 a las 9:31"),
    "pt": ("De", "Date", "Subject", "To", "qua., 27 de out. de 2021 às 09:31"),
    "nl": ("Van", "Date", "Subject", "To", "wo 27 okt. 2021 om 09:31"),
    "it": ("Da", "Date", "Subject", "To", "mer 27 ott 2021 alle ore 09:31"),
    "ru": ("От", "Date", "Subject", "To", "ср, 27 окт. 2021 г. в 09:31"),
    "pl": ("Od", "Date", "Subject", "To", "śr., 27 paź 2021 o 09:31"),
    "tr": ("Gönderen", "Date", "Subject", "To", "27 Eki 2021 Çar, 09:31"),
    "ja": ("From", "Date", "Subject", "To", "2021年10月27日(水) 9:31"),
}


@pytest.mark.parametrize("language", sorted(GMAIL))
def test_gmail(language: str) -> None:
    frm, date, subject, to, when = GMAIL[language]
    text = (
        f"{NOTE}---------- Forwarded message ---------\n{frm}: Jane Doe <jane@acme.com>\n"
        f"{date}: {when}\n{subject}: Intro to Bob\n{to}: Sam <sam@example.com>\n\n{BODY}\n"
    )
    found = find_inline_forward(text, "Fwd: Intro to Bob")
    assert found is not None
    assert (found.from_, found.subject, found.to) == (
        JANE, "Intro to Bob", (Address("sam@example.com", "Sam"),)
    )
    assert found.date is not None and found.date.replace(tzinfo=None) == datetime(
        2021, 10, 27, 9, 31
    ), when
    assert found.body == BODY


# Outlook desktop (2013-2019, Microsoft 365): no marker, a localized header block, a
# localized subject prefix.
OUTLOOK = {
    "en": ("FW", "From: Jane Doe [mailto:jane@acme.com]",
           "Sent: Wednesday, October 27, 2021 9:31 AM", "To: Sam", "Subject: Intro to Bob"),
    "de": ("WG", "Von: Jane Doe [mailto:jane@acme.com]",
           "Gesendet: Mittwoch, 27. Oktober 2021 09:31", "An: Sam", "Betreff: Intro to Bob"),
    "fr": ("TR", "De : Jane Doe [mailto:jane@acme.com]",
           "Envoyé : mercredi 27 octobre 2021 09:31", "À : Sam", "Objet : Intro to Bob"),
    "es": ("RV", "De: Jane Doe [mailto:jane@acme.com]",
           "Enviado el: miércoles, 27 de octubre de 2021 9:31", "Para: Sam",
           "Asunto: Intro to Bob"),
    "pt": ("ENC", "De: Jane Doe [mailto:jane@acme.com]",
           "Enviada em: quarta-feira, 27 de outubro de 2021 09:31", "Para: Sam",
           "Assunto: Intro to Bob"),
    "nl": ("Doorst", "Van: Jane Doe [mailto:jane@acme.com]",
           "Verzonden: woensdag 27 oktober 2021 09:31", "Aan: Sam", "Onderwerp: Intro to Bob"),
    "it": ("I", "Da: Jane Doe [mailto:jane@acme.com]",
           "Inviato: mercoledì 27 ottobre 2021 09:31", "A: Sam", "Oggetto: Intro to Bob"),
}  # fmt: skip


@pytest.mark.parametrize("language", sorted(OUTLOOK))
@pytest.mark.parametrize("separator", ["", "________________________________\n",
                                       "-----Original Message-----\n"])
def test_outlook_desktop(language: str, separator: str) -> None:
    prefix, *header = OUTLOOK[language]
    text = NOTE + separator + "\n".join(header) + "\n\n" + BODY
    found = find_inline_forward(text, f"{prefix}: Intro to Bob")
    assert found is not None
    assert (found.from_, found.subject, found.body) == (JANE, "Intro to Bob", BODY)
    assert found.date is not None and (found.date.month, found.date.day) == (10, 27)


def test_outlook_web_bold_labels_and_mailto_artefacts() -> None:
    text = (
        "*From:* Jane Doe<mailto:jane@acme.com> <jane@acme.com<mailto:jane@acme.com>> on behalf"
        " of bot@acme.com<mailto:bot@acme.com>\n*Sent:* Wednesday, October 27, 2021 15:14\n"
        "*To:* Doe, Sam <sam@example.com>; bob@example.org <bob@example.org>\n"
        f"*Subject:* Intro to Bob\n\n{BODY}"
    )
    found = find_inline_forward(text, "FW: Intro to Bob")
    assert found is not None and found.from_ == JANE
    assert found.to == (Address("sam@example.com", "Doe, Sam"), Address("bob@example.org"))


def test_outlook_2019_attribution_needs_a_forward_subject() -> None:
    text = '\ufeffAm 28/10/2021, 12:46 schrieb "Jane Doe" <jane@acme.com>:\n\n    ' + (
        BODY.replace("\n", "\n    ")
    )
    found = find_inline_forward(text, "WG: Intro to Bob")
    assert found is not None
    assert (found.from_, found.subject, found.body) == (JANE, "Intro to Bob", BODY)
    assert find_inline_forward(text, "Intro to Bob") is None
    assert find_inline_forward(text, None) is None


APPLE = {
    "en": ("Begin forwarded message:", "From", "Subject", "Date", "To"),
    "de": ("Anfang der weitergeleiteten Nachricht:", "Von", "Betreff", "Datum", "An"),
    "fr": ("Début du message réexpédié :", "De", "Objet", "Date", "À"),
    "es": ("Inicio del mensaje reenviado:", "De", "Asunto", "Fecha", "Para"),
    "pt": ("Início da mensagem reencaminhada:", "De", "Assunto", "Data", "Para"),
    "nl": ("Begin doorgestuurd bericht:", "Van", "Onderwerp", "Datum", "Aan"),
    "it": ("Inizio messaggio inoltrato:", "Da", "Oggetto", "Data", "A"),
    "ru": ("Начало переадресованного сообщения:", "Отправитель", "Тема", "Дата", "Кому"),
}


@pytest.mark.parametrize("language", sorted(APPLE))
def test_apple_mail_quotes_the_header_block(language: str) -> None:
    marker, frm, subject, date, to = APPLE[language]
    text = (
        f"{NOTE}{marker}\n\n> {frm}: Jane Doe <jane@acme.com>\n> {subject}: Intro to Bob\n"
        f"> {date}: 27 October 2021 at 09:31:35 CEST\n> {to}: sam@example.com\n>\n"
        + "\n".join(f"> {line}" if line else ">" for line in BODY.split("\n"))
    )
    assert forwarded(text) == (JANE, "Intro to Bob")


THUNDERBIRD = {
    "en": ("Forwarded Message", "Subject", "Date", "From", "To"),
    "de": ("Weitergeleitete Nachricht", "Betreff", "Datum", "Von", "An"),
    "fr": ("Message transféré", "Sujet", "Date", "De", "Pour"),
    "es": ("Mensaje reenviado", "Asunto", "Fecha", "De", "Para"),
    "pt": ("Mensagem encaminhada", "Assunto", "Data", "De", "Para"),
    "nl": ("Doorgestuurd bericht", "Onderwerp", "Datum", "Van", "Aan"),
    "it": ("Messaggio Inoltrato", "Oggetto", "Data", "Mittente", "A"),
    "pl": ("Treść przekazanej wiadomości", "Temat", "Data", "Nadawca", "Adresat"),
}


@pytest.mark.parametrize("language", sorted(THUNDERBIRD))
def test_thunderbird_with_tab_padded_labels(language: str) -> None:
    marker, subject, date, frm, to = THUNDERBIRD[language]
    text = (
        f"\n\n-------- {marker} --------\n{subject}: \tIntro to Bob\n"
        f"{date}: \tWed, 27 Oct 2021 09:31:30 +0100\n{frm}: \tJane Doe <jane@acme.com>\n"
        f"{to}: \tsam@example.com\n\n\n\n{BODY}\n"
    )
    assert forwarded(text) == (JANE, "Intro to Bob")
    found = find_inline_forward(text, "Fwd: Intro to Bob")
    assert found is not None and found.date == datetime(
        2021, 10, 27, 9, 31, 30, tzinfo=timezone(timedelta(hours=1))
    )


def test_yahoo_glues_the_fields_into_one_line() -> None:
    text = (
        "   ----- Forwarded Message ----- From: Jane Doe <jane@acme.com>To: \"sam@example.com\" "
        "<sam@example.com>Cc: Bob <bob@example.org>Sent: Tuesday, November 2, 2021, 09:26:50 AM"
        f" GMT+1Subject: Intro to Bob\n {BODY}"
    )
    found = find_inline_forward(text, "Fwd: Intro to Bob")
    assert found is not None
    assert (found.from_, found.subject) == (JANE, "Intro to Bob")
    assert [a.email for a in found.to + found.cc] == ["sam@example.com", "bob@example.org"]
    assert found.date == datetime(2021, 11, 2, 8, 26, 50, tzinfo=UTC)


@pytest.mark.parametrize(
    "marker",
    [
        "---------- Forwarded message ----------",  # Missive, older Gmail
        "Forwarded message:",  # MailMate
        "---------- メッセージを転送 ---------",  # HubSpot (ja)
        "-------- Пересылаемое сообщение --------",  # Mail.ru
        "> ---------- Original Message ----------",  # IONOS (no subject to ask: counts)
    ],
)
def test_other_clients(marker: str) -> None:
    text = (
        f"{marker}\nFrom: Jane Doe <jane@acme.com>\nSubject: Intro to Bob\nTo: sam@x.org\n\n"
        f"{BODY}"
    )
    assert forwarded(text, None) == (JANE, "Intro to Bob")


def test_hubspot_full_width_colons() -> None:
    text = (
        "送信元：Jane Doe <jane@acme.com>\n日付：2022年9月19日月曜日 17:55:44 -0400\n"
        f"件名：Intro\n送信先：sam@x.org\n\n{BODY}"
    )
    found = find_inline_forward("---------- メッセージを転送 ---------\n" + text)
    assert found is not None and (found.from_, found.subject) == (JANE, "Intro")
    assert found.date == datetime(2022, 9, 19, 17, 55, 44, tzinfo=timezone(timedelta(hours=-4)))


def test_nested_forwards_give_the_outermost_original() -> None:
    inner = "---------- Forwarded message ---------\nFrom: Bob <bob@x.org>\nSubject: Old\n\nold"
    text = (
        f"---------- Forwarded message ---------\nFrom: Jane Doe <jane@acme.com>\n"
        f"Subject: Intro to Bob\n\n{BODY}\n\n{inner}"
    )
    found = find_inline_forward(text, "Fwd: Fwd: Intro to Bob")
    assert found is not None and found.from_ == JANE and "From: Bob" in found.body


def test_a_name_without_address_gives_no_sender() -> None:
    text = (
        "-----Original Message-----\nFrom: Jane Doe\nSent: 23 July 2022 07:53\nTo: Sam\n"
        f"Subject: Intro\n\n{BODY}"
    )
    found = find_inline_forward(text, "FW: Intro")
    assert found is not None and found.from_ is None and found.subject == "Intro"


# -- what is not a forward ------------------------------------------------------------------


def test_a_reply_subject_means_no_inline_forward() -> None:
    """The history of a reply ("RE: FW: ...") holds the forward that began the thread."""
    text = (
        "Happy to help!\n\n________________________________\nFrom: Sam <sam@example.com>\n"
        "Sent: Wednesday\nTo: Bob\nSubject: FW: Intro\n\n---------- Forwarded message "
        "---------\nFrom: Jane Doe <jane@acme.com>\nSubject: Intro\n\nHi"
    )
    assert find_inline_forward(text, "RE: FW: Intro") is None
    assert find_inline_forward(text, "Re: Intro") is None


@pytest.mark.parametrize(
    "text",
    [
        "Thanks!\n\nFrom: Jane Doe <jane@acme.com>\nSent: Monday\nTo: Sam\nSubject: Intro\n\nHi",
        "Thanks!\n\n-----Original Message-----\nFrom: Jane Doe <jane@acme.com>\nSubject: x\n\nHi",
        "Thanks!\n\nOn Wed, Oct 27, 2021 at 9:31 AM Jane Doe <jane@acme.com>\nwrote:\n\n> Hi",
        "Hi Bob,\n\nFrom: the team\nSubject: our plans\n\nare fine.",
        "",
    ],
)
def test_reply_markers_need_a_forward_subject(text: str) -> None:
    assert find_inline_forward(text, "Intro") is None


def test_a_bare_reply_body_is_not_a_forward() -> None:
    text = "That's true!\n\nOn Wed, Oct 27, 2021 at 9:31 AM Jane <jane@acme.com>\nwrote:\n\n> Hi"
    assert find_inline_forward(text, None) is None


# -- attached messages ----------------------------------------------------------------------


def _original() -> EmailMessage:
    original = EmailMessage()
    original["From"] = "=?utf-8?q?Jane_D=C3=B6e?= <Jane@Acme.com>"
    original["To"] = "sam@example.com, Bob <bob@example.org>"
    original["Subject"] = "Intro to Bob"
    original["Date"] = "Wed, 27 Oct 2021 09:31:00 +0200"
    original["Message-ID"] = "<orig-1@acme.com>"
    original.set_content(BODY)
    return original


def test_message_rfc822_attachment() -> None:
    outer = EmailMessage()
    outer["From"], outer["Subject"] = "sam@example.com", "Fwd: Intro to Bob"
    outer.set_content("See attached.")
    outer.add_attachment(_original())
    mail = parse_mail(outer.as_bytes())
    assert mail.forwarded is not None
    assert mail.forwarded.from_ == Address("jane@acme.com", "Jane Döe")
    assert mail.forwarded.message_id == "orig-1@acme.com"
    assert [a.email for a in mail.forwarded.to] == ["sam@example.com", "bob@example.org"]
    assert mail.forwarded.date == datetime(2021, 10, 27, 7, 31, tzinfo=UTC)
    assert mail.forwarded.body == BODY
    assert mail.text.strip() == "See attached."


def test_attachment_inside_multipart_alternative() -> None:
    outer = EmailMessage()
    outer["From"], outer["Subject"] = "sam@example.com", "Fwd: Intro"
    outer.set_content("See attached.")
    outer.add_alternative("<p>See attached.</p>", subtype="html")
    html = outer.get_payload()[1]  # type: ignore[index]
    assert isinstance(html, EmailMessage)
    html.make_mixed()  # alternative: [text/plain, mixed: [text/html, message/rfc822]]
    html.attach(_wrap(_original()))
    mail = parse_mail(outer.as_bytes())
    assert mail.forwarded is not None and mail.forwarded.subject == "Intro to Bob"


def test_the_original_inside_a_bounce_is_no_forward() -> None:
    report = EmailMessage()
    report["From"], report["Subject"] = "MAILER-DAEMON@x.org", "Undelivered Mail"
    report.set_content("It bounced.")
    report.add_attachment(_original())
    report.replace_header("Content-Type", report["Content-Type"].replace(
        "multipart/mixed", "multipart/report; report-type=delivery-status"))
    mail = parse_mail(report.as_bytes())
    assert mail.forwarded is None
    assert find_forward(_parsed(report), mail.text, mail.subject) is None


def _wrap(message: EmailMessage) -> EmailMessage:
    part = EmailMessage()
    part.set_content(message)
    return part


def _parsed(message: EmailMessage) -> EmailMessage:
    from email import message_from_bytes, policy

    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


# -- dates ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thu, 6 April 2023 at 16:17", datetime(2023, 4, 6, 16, 17, tzinfo=UTC)),
        ("jeudi, 28 octobre 2021 à 12:06", datetime(2021, 10, 28, 12, 6, tzinfo=UTC)),
        ("26. Oktober 2021 um 14:25:08 OESZ", datetime(2021, 10, 26, 11, 25, 8, tzinfo=UTC)),
        ("17 août 2022 à 09:06:24 UTC+2", datetime(2022, 8, 17, 7, 6, 24, tzinfo=UTC)),
        ("Среда, 14 июня 2017, 15:19 +03:00", datetime(2017, 6, 14, 12, 19, tzinfo=UTC)),
        ("2021-10-28 12:46", datetime(2021, 10, 28, 12, 46, tzinfo=UTC)),
        ("28.10.2021 12:46", datetime(2021, 10, 28, 12, 46, tzinfo=UTC)),
        ("martes, 2 de noviembre de 2021 9:26", datetime(2021, 11, 2, 9, 26, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        ("99 Foo 99999", None),
    ],
)
def test_loose_dates(text: str, expected: datetime | None) -> None:
    assert parse_loose_date(text) == expected


def test_a_date_without_zone_is_read_in_the_forwarders_zone() -> None:
    berlin = timezone(timedelta(hours=2))
    found = parse_loose_date("Wed, Oct 27, 2021 at 9:31 AM", berlin)
    assert found == datetime(2021, 10, 27, 9, 31, tzinfo=berlin)


# -- addresses a stranger cannot choose ----------------------------------------------------


@pytest.mark.parametrize(("line", "sender"), [
    ('"Prof. Jane Doe <jane.doe@victims.test>" <eve@evil.test>', "eve@evil.test"),
    ('"Jane [mailto:jane.doe@victims.test]" <eve@evil.test>', "eve@evil.test"),
    ("Prof. Jane Doe <jane.doe@victims.test> <eve@evil.test>", None),
    ("jane.doe@victims.test <eve@evil.test>", None),
    ("Jane [mailto:jane.doe@victims.test] <eve@evil.test>", None),
    ("eve@evil.test (jane.doe@victims.test)", None),
    ("jane.doe@victims.test, Jane <eve@evil.test>", None),  # one From, two mailboxes
    ("Eve <eve@evil.test> on behalf of jane.doe@victims.test", "eve@evil.test"),
])
def test_an_address_in_a_display_name_never_becomes_the_sender(
    line: str, sender: str | None
) -> None:
    text = (f"---------- Forwarded message ---------\nFrom: {line}\nSubject: Intro to Bob\n"
            f"To: Sam <sam@example.com>\n\n{BODY}")
    found = find_inline_forward(text, "Fwd: Intro to Bob")
    assert found is not None
    assert (found.from_.email if found.from_ else None) == sender


def test_the_forwarders_inline_block_wins_over_an_attached_message() -> None:
    """Eve's mail carried a .eml naming Jane; Sam's client forwards it inline and carries the
    attachment along: the counterpart is the sender of the inline block, Eve."""
    planted = _original()
    planted.replace_header("From", "Jane Doe <jane.doe@victims.test>")
    outer = EmailMessage()
    outer["From"], outer["Subject"] = "sam@example.com", "Fwd: Intro to Bob"
    outer.set_content(
        "Sam's note.\n\n---------- Forwarded message ---------\nFrom: Eve <eve@evil.test>\n"
        f"Subject: Intro to Bob\nTo: Sam <sam@example.com>\n\n{BODY}\n"
    )
    outer.add_attachment(planted)
    mail = parse_mail(outer.as_bytes())
    assert mail.forwarded is not None
    assert mail.forwarded.from_ == Address("eve@evil.test", "Eve")
    assert mail.forwarded.message_id is None, "nothing is taken from the attachment"


def test_an_attached_message_with_two_senders_names_none() -> None:
    original = _original()
    original.replace_header("From", "jane.doe@victims.test, Jane <eve@evil.test>")
    outer = EmailMessage()
    outer["From"], outer["Subject"] = "sam@example.com", "Fwd: Intro to Bob"
    outer.set_content("See attached.")
    outer.add_attachment(original)
    mail = parse_mail(outer.as_bytes())
    assert mail.forwarded is not None and mail.forwarded.from_ is None


@pytest.mark.parametrize("line", [
    "jane.doe@victims.test< <eve@evil.test>",  # brackets inside brackets
    "jane.doe@victims.test on behalf of <eve@evil.test>",
    "<jane.doe@victims.test> on behalf of <eve@evil.test>",
    "<jane.doe@victims.test> on behalf of \" <eve@evil.test>",  # the quote hides the last
    'Jane "<eve@evil.test>',  # a quote never closed
    "Team jane.doe@victims.test: eve@evil.test",  # an address in a group's name
    "jane.doe@victims.test <Jane>",  # brackets without an address
])
def test_found_by_fuzzing_a_malformed_from_line_names_nobody(line: str) -> None:
    text = f"---------- Forwarded message ---------\nFrom: {line}\nSubject: Hi\n\n{BODY}"
    found = find_inline_forward(text, "Fwd: Hi")
    assert found is not None and found.from_ is None, found
