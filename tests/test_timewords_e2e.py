"""Issue 12's time words end to end: owner mail delivered to the real Dovecot, ``poll --once
--now`` through the CLI, and what reached the SMTP sink at which time."""

from __future__ import annotations

import json

from tests.rig.assistant import OWNER, OWNER_NAME, RigAssistant
from tests.rig.mailboxes import make_message
from tests.test_lifecycle import addresses, at, kinds, text_of

SAM = f"{OWNER_NAME} <{OWNER}>"
JANE = "Jane Doe <jane@example.org>"
MONDAY = "Mon, 07 Dec 2026 09:00:00 +0000"


def tagged(rig: RigAssistant, tag: str) -> str:
    return rig.address.replace("@", f"+{tag}@")


def flat(text: str) -> str:
    return " ".join(text.split())


def test_default_time_sets_the_hour_of_a_day_given_without_one(
        rig_assistant: RigAssistant) -> None:
    rig_assistant.configure({"default_time": "07:30"})
    rig_assistant.deliver(make_message(SAM, JANE, "Intro to Acme?", "Hi Jane, could you ...?",
                                       cc=tagged(rig_assistant, "monday"), date=MONDAY))
    rig_assistant.poll(at("2026-12-07 09:00"))
    assert kinds(rig_assistant.sent()) == ["receipt"]
    [thread] = rig_assistant.status()
    assert thread["next_action"]["due"] == "2026-12-14T07:30:00+00:00"
    rig_assistant.poll(at("2026-12-14 07:29"))
    assert kinds(rig_assistant.sent()) == ["receipt"]
    rig_assistant.poll(at("2026-12-14 07:30"))
    assert kinds(rig_assistant.sent()) == ["receipt", "follow_up"]


def test_a_per_owner_time_zone_reads_the_owners_words_in_their_zone(
        rig_assistant: RigAssistant) -> None:
    rig_assistant.configure({"owners": [{"name": OWNER_NAME, "email": OWNER,
                                         "timezone": "America/New_York"}]})
    rig_assistant.deliver(make_message(SAM, JANE, "Intro to Acme?", "Hi Jane, could you ...?",
                                       cc=tagged(rig_assistant, "tuesday9am"), date=MONDAY))
    rig_assistant.poll(at("2026-12-07 09:00"))
    [thread] = rig_assistant.status()
    # 09:00 in New York in December (EST, UTC-5); the top-level zone is UTC.
    assert thread["next_action"]["due"] == "2026-12-08T14:00:00+00:00"
    rig_assistant.poll(at("2026-12-08 13:59"))
    assert kinds(rig_assistant.sent()) == ["receipt"]
    rig_assistant.poll(at("2026-12-08 14:00"))
    assert kinds(rig_assistant.sent()) == ["receipt", "follow_up"]


def test_a_bcc_copy_with_only_envelope_to_keeps_its_tag(rig_assistant: RigAssistant) -> None:
    envelope = [("Envelope-To", tagged(rig_assistant, "2days")),
                ("Received", f"from mx.example.com by imap.example.com for "
                             f"<{tagged(rig_assistant, '2days')}>; {MONDAY}")]
    rig_assistant.deliver(make_message(SAM, JANE, "Intro to Acme?", "Hi Jane, could you ...?",
                                       date=MONDAY, extra_headers=envelope))
    rig_assistant.poll(at("2026-12-07 09:00"))
    [receipt] = rig_assistant.sent()
    assert kinds([receipt]) == ["receipt"] and addresses(receipt, "To") == [OWNER]
    [thread] = rig_assistant.status()
    assert thread["counterparts"] == ["jane@example.org"]
    assert thread["next_action"]["due"] == "2026-12-09T09:00:00+00:00"  # not the default 3 days
    rig_assistant.poll(at("2026-12-09 09:00"))
    assert kinds(rig_assistant.sent()) == ["receipt", "follow_up"]


def test_two_tagged_addresses_the_earlier_time_comes_first_whatever_the_order(
        rig_assistant: RigAssistant) -> None:
    rig_assistant.configure({"schedules": {"ask": {"follow_up": ["5 days"]}}})
    cc = [tagged(rig_assistant, "1week"), tagged(rig_assistant, "3days")]
    rig_assistant.deliver(make_message(SAM, JANE, "Intro to Acme?", "Hi Jane, could you ...?",
                                       cc=cc, date=MONDAY))
    rig_assistant.poll(at("2026-12-07 09:00"))
    [thread] = rig_assistant.status()
    assert thread["next_action"]["due"] == "2026-12-10T09:00:00+00:00"
    rig_assistant.poll(at("2026-12-10 09:00"))
    assert kinds(rig_assistant.sent()) == ["receipt", "follow_up"]
    code, out, _ = rig_assistant.cli("explain", "--json", "--now", at("2026-12-07 09:00"),
                                     str(_saved(rig_assistant, cc)))
    reading = json.loads(out)
    assert code == 0 and reading["tag"] == "1week, 3days" and reading["problem"] is None


def _saved(rig: RigAssistant, cc: list[str]) -> object:
    path = rig.workdir / "two-tags.eml"
    path.write_bytes(make_message(SAM, JANE, "Intro to Acme?", "Hi Jane", cc=cc, date=MONDAY))
    return path


def test_an_unreadable_remind_line_is_reported_in_the_receipt(
        rig_assistant: RigAssistant) -> None:
    rig_assistant.deliver(make_message(
        SAM, JANE, "Intro to Acme?", "remind me blursday at 9am\n\nHi Jane, could you ...?",
        cc=rig_assistant.address, date=MONDAY))
    rig_assistant.poll(at("2026-12-07 10:00"))
    [receipt] = rig_assistant.sent()
    assert kinds([receipt]) == ["receipt"] and addresses(receipt, "To") == [OWNER]
    body = flat(text_of(receipt))
    assert ('I could not read the time in your first line "remind me blursday at 9am"; the '
            'closest I can make of it is "at 9am", Tue 8 Dec, 09:00') in body
    assert rig_assistant.status() == []  # nothing tracked on a guess
    rig_assistant.poll(at("2026-12-10 10:00"))
    assert kinds(rig_assistant.sent()) == ["receipt"]


def test_a_past_date_in_a_plus_address_is_refused_not_sent_at_once(
        rig_assistant: RigAssistant) -> None:
    rig_assistant.deliver(make_message(SAM, JANE, "Intro to Acme?", "Hi Jane, could you ...?",
                                       cc=tagged(rig_assistant, "2026-01-15"), date=MONDAY))
    rig_assistant.poll(at("2026-12-07 09:00"))
    [receipt] = rig_assistant.sent()
    assert "Thu 15 Jan, 09:00 has already passed" in flat(text_of(receipt))
    assert rig_assistant.status() == []


def test_an_owners_ask_titled_like_an_out_of_office_is_tracked(
        rig_assistant: RigAssistant) -> None:
    rig_assistant.deliver(make_message(SAM, JANE, "Away from the office: can you water my plants?",
                                       "Hi Jane, I'm away next week ...",
                                       cc=rig_assistant.address, date=MONDAY))
    rig_assistant.poll(at("2026-12-07 09:00"))
    assert kinds(rig_assistant.sent()) == ["receipt"]
    [thread] = rig_assistant.status()
    assert thread["subject"] == "Away from the office: can you water my plants?"
