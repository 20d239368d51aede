"""The calendar view (issue 12, item 9) end to end: ``status --ics`` and the ``calendar_file``
the daemon keeps fresh, through Dovecot and the SMTP sink with ``poll --once --now``."""

from __future__ import annotations

import stat

from tests.rig.assistant import OWNER, OWNER_NAME, RigAssistant
from tests.test_ics import events
from tests.test_lifecycle import Walk, at


def test_the_calendar_file_follows_the_threads_and_status_ics_prints_the_same(
    rig_assistant: RigAssistant,
) -> None:
    rig_assistant.configure({"calendar_file": "calendar.ics"})
    path = rig_assistant.workdir / "calendar.ics"
    walk = Walk(rig_assistant)
    ask_id = walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    written = path.read_bytes().decode("utf-8")
    [reminder] = events(written)
    assert reminder["DTSTART"] == "20261210T090000Z"
    assert reminder["SUMMARY"] == "Reminder: Intro to Acme? (Jane Doe)"
    assert "Jane Doe" in reminder["DESCRIPTION"] and "@" not in reminder["DESCRIPTION"]
    code, printed, _ = rig_assistant.cli("status", "--ics")
    assert code == 0
    assert [(e["UID"], e["DTSTART"]) for e in events(printed)] == [
        (reminder["UID"], reminder["DTSTART"])]

    # A cycle that changes nothing leaves the file as it was (its DTSTAMP included).
    walk.quiet(at("2026-12-08 09:00"))
    assert path.read_bytes().decode("utf-8") == written

    # The answer: the reminder goes, the thank-you draft comes.
    walk.reply(ask_id, at("2026-12-09 11:00"))
    walk.quiet(at("2026-12-09 11:00"))
    [thanks] = events(path.read_bytes().decode("utf-8"))
    assert thanks["SUMMARY"] == "Thank-you draft: Intro to Acme? (Jane Doe)"
    assert thanks["DTSTART"] == "20261209T130000Z" and thanks["UID"] != reminder["UID"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    walk.poll(at("2026-12-09 13:00"))
    assert events(path.read_bytes().decode("utf-8")) == []


def test_a_held_reminder_shows_at_the_pauses_release(rig_assistant: RigAssistant) -> None:
    rig_assistant.configure({"calendar_file": "calendar.ics"})
    path = rig_assistant.workdir / "calendar.ics"
    walk = Walk(rig_assistant)
    walk.ask(at("2026-12-07 09:00"))
    walk.poll(at("2026-12-07 09:00"))
    walk.deliver(f"{OWNER_NAME} <{OWNER}>", walk.assistant, "Away", "pause until 12 December",
                 at("2026-12-08 10:00"))
    walk.poll(at("2026-12-08 10:00"))
    [held] = events(path.read_bytes().decode("utf-8"))
    assert held["DTSTART"] == "20261212T090000Z"
    code, printed, _ = rig_assistant.cli("status", "--ics")
    assert code == 0 and events(printed)[0]["DTSTART"] == "20261212T090000Z"


def test_status_ics_without_a_state_file_is_an_empty_calendar(
    rig_assistant: RigAssistant,
) -> None:
    code, printed, _ = rig_assistant.cli("status", "--ics")
    assert code == 0 and printed.startswith("BEGIN:VCALENDAR\r\n")
    assert events(printed) == []
