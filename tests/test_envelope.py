"""The envelope recipient of a copy, and what explain says about times: issue 12 items 7-8."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from mailhelper.cli.explain import explain_mail
from mailhelper.model.message_id import make_message_id
from mailhelper.model.settings import Settings
from mailhelper.model.values import Address
from mailhelper.read.parse import parse_mail

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 12, 7, 9, tzinfo=LONDON)  # a Monday
SETTINGS = Settings(owners=(Address("sam@example.com", "Sam"),),
                    assistant=Address("helper@example.com"), timezone=LONDON)


def raw(*headers: str, body: str = "Hi Jane") -> bytes:
    top = "".join(f"{header}\r\n" for header in headers)
    return (f"{top}From: Sam <sam@example.com>\r\nTo: jane@example.org\r\n"
            f"Subject: Intro\r\nMessage-ID: <m1@example.com>\r\n\r\n{body}\r\n").encode()


@pytest.mark.parametrize("header", ["Delivered-To", "X-Original-To", "Envelope-To",
                                    "X-Envelope-To", "X-Delivered-To"])
def test_each_envelope_header_names_the_recipient(header: str) -> None:
    mail = parse_mail(raw(f"{header}: helper+2d@example.com"))
    assert [a.email for a in mail.delivered_to] == ["helper+2d@example.com"]


def test_the_top_received_for_clause_names_it_and_the_order_is_by_trust() -> None:
    mail = parse_mail(raw(
        "X-Envelope-To: <helper+5d@example.com>",
        "Received: from mx by imap.example.com (LMTP) for <helper+1w@example.com>; Mon, 7 Dec"
        " 2026 09:00:00 +0000",
        "Delivered-To: helper+2d@example.com",
    ))
    assert [a.email for a in mail.delivered_to] == [
        "helper+2d@example.com", "helper+5d@example.com", "helper+1w@example.com"]


def test_fields_below_the_second_received_are_the_senders_and_do_not_count() -> None:
    mail = parse_mail(raw(
        "Received: from mx by imap.example.com; Mon, 7 Dec 2026 09:00:00 +0000",
        "Received: from laptop by smtp.example.net for <helper+0d@example.com>; Mon, 7 Dec 2026",
        "X-Original-To: helper+1d@example.com",
    ))
    assert mail.delivered_to == ()


def test_a_bcc_copy_with_only_envelope_to_keeps_its_tag_in_explain() -> None:
    mail = parse_mail(raw("Envelope-To: helper+2days@example.com"))
    reading = explain_mail(mail, SETTINGS, NOW).as_json()
    assert (reading["kind"], reading["tag"]) == ("ask", "2days")
    assert reading["when"] == "2026-12-09T09:00:00+00:00" and reading["problem"] is None


def test_explain_problem_is_the_sentence_the_owner_is_told() -> None:
    mail = parse_mail(raw("Envelope-To: helper+2026-01-15@example.com"))
    reading = explain_mail(mail, SETTINGS, NOW).as_json()
    assert reading["problem"] == ('the time in "helper+2026-01-15@" cannot be used: '
                                  "Thu 15 Jan, 09:00 has already passed")
    nobody = parse_mail(raw(body="ask, remind me monday").replace(
        b"To: jane@example.org\r\n", b""))
    assert explain_mail(nobody, SETTINGS, NOW).as_json()["problem"] == (
        "I could not find who you asked: nobody but you and me is on the mail")
    # Untagged, the same mail to nobody but the assistant is a note to self (issue 12, 4).
    note = parse_mail(raw(body="remind me monday").replace(b"To: jane@example.org\r\n", b""))
    reading = explain_mail(note, SETTINGS, NOW).as_json()
    assert (reading["kind"], reading["problem"]) == ("note", None)


def test_explain_when_is_a_commands_own_time() -> None:
    ours = make_message_id("t1/follow_up/20261203T090000Z/1", "example.com", b"")
    for text, when, problem in (
        ("snooze 3 days", "2026-12-10T09:00:00+00:00", None),
        ("snooze 2026-01-15", None, "Thu 15 Jan, 09:00 has already passed"),
        ("thanks!", None, '"thanks!" is not a command I know'),
    ):
        message = (f"From: sam@example.com\r\nTo: helper@example.com\r\nSubject: Re: x\r\n"
                   f"Message-ID: <r@example.com>\r\nIn-Reply-To: <{ours}>\r\n\r\n{text}\r\n")
        reading = explain_mail(parse_mail(message.encode()), SETTINGS, NOW).as_json()
        assert (reading["when"], reading["problem"]) == (when, problem), text
