"""The thinnest whole path through real servers: an ask cc'd to the assistant gets a receipt,
and three days later on the --now clock a reminder, through Dovecot and SMTP."""

from __future__ import annotations

from tests.rig.assistant import OWNER, RigAssistant


def test_ask_gets_a_receipt_then_a_reminder(rig_assistant: RigAssistant) -> None:
    ask_id = rig_assistant.ask()
    rig_assistant.poll("2026-12-07T09:00:00+00:00")
    [receipt] = rig_assistant.sent()
    assert receipt["To"] == "Sam Rivera <sam@example.com>"
    assert "Jane" in str(receipt["Subject"])
    text = receipt.get_body(("plain",)).get_content()
    assert "Thu 10 Dec, 09:00" in " ".join(text.split())  # text parts wrap at 78 characters
    assert receipt["Auto-Submitted"] == "auto-generated"

    rig_assistant.poll("2026-12-08T09:00:00+00:00")
    assert len(rig_assistant.sent()) == 1, "nothing is due on day 1"

    rig_assistant.poll("2026-12-10T09:00:00+00:00")
    receipt, reminder = rig_assistant.sent()
    assert reminder["To"].addresses[0].addr_spec == OWNER
    assert ask_id in str(reminder.get("References", "")) or "Intro to Acme?" in str(
        reminder["Subject"])
    sent_folder = rig_assistant.folder("Sent")
    assert [m["Message-ID"] for m in sent_folder] == [receipt["Message-ID"],
                                                     reminder["Message-ID"]]
    [thread] = rig_assistant.status()
    assert thread["kind"] == "ask" and thread["state"] == "open"
    assert thread["counterparts"] == ["jane@example.org"]
    assert thread["next_action"]["kind"] == "follow_up"
