"""Machine-made mail: every signal alone, out-of-office subjects, and the return date."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from mailhelper.model.values import Address, Mail
from mailhelper.read.autoreply import (
    auto_generated,
    bounded_return_date,
    is_out_of_office,
    return_date,
)
from mailhelper.read.parse import parse_mail

JANE = Address("jane@acme.com", "Jane Doe")
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # a Friday
LONDON = ZoneInfo("Europe/London")


def mail(subject: str = "Re: Intro", text: str = "Sure!", **headers: str) -> Mail:
    return Mail(
        "m@acme.com",
        from_=JANE,
        subject=subject,
        text=text,
        reply_text=text,
        headers={k.replace("_", "-").lower(): (v,) for k, v in headers.items()},
    )


def test_a_persons_reply_is_not_auto_generated() -> None:
    assert auto_generated(mail()) is None
    assert auto_generated(mail(auto_submitted="no", precedence="first-class")) is None
    assert not is_out_of_office(mail())


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"auto_submitted": "auto-replied"}, "auto-submitted: auto-replied"),
        ({"auto_submitted": "auto-generated (failure)"}, "auto-submitted: auto-generated"),
        ({"auto_submitted": "auto-notified; owner-email=x@y"}, "auto-submitted: auto-notified"),
        ({"precedence": "bulk"}, "precedence: bulk"),
        ({"precedence": "junk"}, "precedence: junk"),
        ({"precedence": "list"}, "precedence: list"),
        ({"precedence": "auto_reply"}, "precedence: auto_reply"),
        ({"list_id": "<team.lists.acme.com>"}, "list-id"),
        ({"list_unsubscribe": "<mailto:u@acme.com>"}, "list-unsubscribe"),
        ({"return_path": "<>"}, "empty return-path"),
        ({"x_autoreply": "yes"}, "x-autoreply"),
        ({"x_autorespond": "yes"}, "x-autorespond"),
        ({"x_failed_recipients": "bob@x.org"}, "x-failed-recipients"),
        ({"content_type": "multipart/report; report-type=delivery-status"}, "dsn"),
        ({"content_type": "MULTIPART/REPORT; REPORT-TYPE=DELIVERY-STATUS"}, "dsn"),
        ({"content_type": "multipart/report; report-type=disposition-notification"}, "mdn"),
        ({"content_type": "multipart/report; report-type=feedback-report"}, "arf"),
        ({"content_type": "multipart/report; boundary=x"}, "report"),
    ],
)
def test_each_signal_alone(headers: dict[str, str], reason: str) -> None:
    assert auto_generated(mail(**headers)) == reason


def test_the_top_content_type_may_be_given() -> None:
    assert auto_generated(mail(), "multipart/report; report-type=delivery-status") == "dsn"


@pytest.mark.parametrize("local", ["MAILER-DAEMON", "postmaster", "mailer-daemon"])
def test_system_senders(local: str) -> None:
    bounce = Mail("m@x", from_=Address(f"{local.lower()}@acme.com"), subject="Hi")
    assert auto_generated(bounce) == "system sender"


def test_a_bare_mailer_daemon_without_domain() -> None:
    assert parse_mail(b"From: MAILER-DAEMON\r\nSubject: hi\r\n\r\nx").from_ is None
    bounce = parse_mail(b"From: MAILER-DAEMON\r\nSubject: hi\r\n\r\nx")
    assert auto_generated(bounce) == "system sender"


def test_no_reply_senders_and_bounce_subjects() -> None:
    assert auto_generated(Mail("m", from_=Address("no-reply@acme.com"))) == "no-reply sender"
    assert auto_generated(Mail("m", subject="Undeliverable: Intro")) == "bounce subject"
    assert auto_generated(Mail("m", subject="failure notice")) == "bounce subject"


@pytest.mark.parametrize(
    "subject",
    [
        "Out of Office: Intro",
        "Automatic reply: Intro",
        "Auto reply: Intro",
        "AutoReply: Intro",
        "Automatische Antwort: Intro",
        "Abwesenheitsnotiz: Intro",
        "Réponse automatique : Intro",
        "Respuesta automática: Intro",
        "Resposta automática: Intro",
        "Risposta automatica: Intro",
        "Fuori sede: Intro",
        "Automatisch antwoord: Intro",
        "Afwezig: Intro",
        "Automatyczna odpowiedź: Intro",
        "Automatiskt svar: Intro",
        "Автоматический ответ: Intro",
        "מענה 'אני לא נמצא': Intro",
        "自動応答: Intro",
        "Away until May 5",
        "[EXT] Urlaub bis 5.12.",
    ],
)
def test_out_of_office_subjects(subject: str) -> None:
    found = mail(subject=subject)
    assert is_out_of_office(found)
    assert auto_generated(found) == "out-of-office"


def test_an_auto_reply_that_says_away_is_out_of_office() -> None:
    found = mail(subject="Re: Intro", text="I am on vacation.", auto_submitted="auto-replied")
    assert is_out_of_office(found)
    receipt = mail(subject="We got your ticket", text="Thanks!", auto_submitted="auto-replied")
    assert not is_out_of_office(receipt)
    assert auto_generated(receipt) == "auto-submitted: auto-replied"


def test_a_person_writing_about_the_office_is_not_away() -> None:
    assert not is_out_of_office(mail(subject="Re: Out of office party"))
    assert auto_generated(mail(subject="Re: Out of office party")) is None


def test_bounces_are_not_out_of_office() -> None:
    bounce = mail(subject="Returned mail", text="away", x_autoreply="yes",
                  content_type="multipart/report; report-type=delivery-status")
    assert not is_out_of_office(bounce)


# -- the return date ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("I'm out of the office and back on 5 December.", (2026, 12, 5)),
        ("I will be back on Monday 7 December.", (2026, 12, 7)),
        ("Returning 2026-12-05.", (2026, 12, 5)),
        ("I am away, returning to the office on May 5th.", (2027, 5, 5)),
        ("Back December 5th, 2026", (2026, 12, 5)),
        ("Out of office until 12/5.", (2026, 12, 5)),
        ("Ich bin ab dem 1.12. nicht da, zurück am 5. Dezember.", (2026, 12, 5)),
        ("Ich bin bis 04.12.2026 im Urlaub.", (2026, 12, 4)),
        ("Je serai de retour le 5 décembre.", (2026, 12, 5)),
        ("Absent jusqu'au 5/12.", (2026, 12, 5)),
        ("Estoy de vacaciones, regreso el 5 de diciembre.", (2026, 12, 5)),
        ("Fora do escritório até 5 de dezembro.", (2026, 12, 5)),
        ("Sono fuori sede fino al 5 dicembre.", (2026, 12, 5)),
        ("Ik ben terug op 5 december.", (2026, 12, 5)),
        ("I'm back on Monday.", (2026, 11, 23)),
        ("I'll be back on 19 November.", (2027, 11, 19)),  # the 19th has passed: next year
        ("I'll be back on 20 November.", (2026, 11, 20)),  # today counts
    ],
)
def test_return_dates(text: str, day: tuple[int, int, int]) -> None:
    found = return_date(mail(subject="Automatic reply: Intro", text=text), NOW, UTC)
    assert found == datetime(*day, tzinfo=UTC), text


@pytest.mark.parametrize(
    "text",
    [
        "I am out of the office with limited access to email.",
        "I will get back to you on Monday.",
        "Back on 5 December 2025.",  # a year in the past: stale
        "Until then, please contact Bob.",
        "Back in 2 weeks.",
        "",
    ],
)
def test_no_return_date(text: str) -> None:
    assert return_date(mail(subject="Automatic reply: Intro", text=text), NOW, UTC) is None


def test_the_return_date_is_midnight_in_the_owners_zone() -> None:
    found = return_date(mail(text="Back on 5 December."), NOW, LONDON)
    assert found == datetime(2026, 12, 5, tzinfo=LONDON)
    tokyo = timezone(timedelta(hours=9))
    late = datetime(2026, 12, 4, 20, tzinfo=UTC)  # already 5 December in Tokyo
    assert return_date(mail(text="Back on 5 December."), late, tokyo) == datetime(
        2026, 12, 5, tzinfo=tokyo
    )


def test_the_subject_counts_too() -> None:
    found = return_date(mail(subject="Away until May 5", text=""), NOW, UTC)
    assert found == datetime(2027, 5, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected", "capped"),
    [
        ("I am out of the office until 1 January 2400.", date(2027, 2, 5), True),
        ("Back on 9999-12-31.", date(2027, 2, 5), True),
        ("Back on 5 February 2027.", date(2027, 2, 5), False),
        ("Back on 14 December.", date(2026, 12, 14), False),
        ("I was away until 1 December 2026.", None, False),
    ],
)
def test_the_return_date_is_at_most_60_days_after_the_auto_reply(
    text: str, expected: date | None, capped: bool
) -> None:
    arrived = datetime(2026, 12, 7, 10, tzinfo=UTC)
    until, was_capped = bounded_return_date(Mail("a@b", text=text), arrived, UTC)
    assert (until.date() if until else None, was_capped) == (expected, capped)
