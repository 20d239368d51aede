"""Per-person truth end to end: an ask to José Núñez and "Okafor, Jane", only José replies.
Through Dovecot and the SMTP sink, each mail read as its recipient gets it."""

from __future__ import annotations

from email.message import EmailMessage

from tests.rig.assistant import OWNER, OWNER_NAME, RigAssistant
from tests.test_lifecycle import Walk, addresses, at, kinds, text_of

SAM = f"{OWNER_NAME} <{OWNER}>"
JOSE = "José Núñez <jose@example.org>"
JANE = '"Okafor, Jane" <jane@example.org>'
SUBJECT = "Q4 plan before Thursday?"


def flat(text: str) -> str:
    return " ".join(text.split())


def ask_both(walk: Walk) -> str:
    ask_id = walk.ask(at("2026-12-07 09:00"), to=[JOSE, JANE], subject=SUBJECT,
                      body="Hi both, could you look over the Q4 plan before Thursday?")
    [receipt] = walk.poll(at("2026-12-07 09:00"))
    body = flat(text_of(receipt))
    assert "Tracking your ask to José Núñez and Jane Okafor" in body
    assert "When they reply with me in Cc" in body
    assert "Okafor, Jane" not in body
    return ask_id


def reply(walk: Walk, ask_id: str, who: str, stamp: str) -> str:
    return walk.reply(ask_id, stamp, body="Looks good to me, two small notes inline.",
                      from_=who, subject=f"Re: {SUBJECT}")


def reminder_names_jane_as_still_silent(reminder: EmailMessage) -> None:
    assert kinds([reminder]) == ["follow_up"] and addresses(reminder, "To") == [OWNER]
    assert "Jane" in str(reminder["Subject"]) and "José" not in str(reminder["Subject"])
    body = flat(text_of(reminder))
    assert "No reply yet from Jane Okafor" in body
    assert "José has answered; Jane hasn't yet." in body
    assert "Hi Jane," in body and "Hi José" not in body, "the draft greets only Jane"


def ledger_counts_both(walk: Walk, stamp: str) -> None:
    walk.deliver(SAM, walk.assistant, "status", "status", stamp)
    [digest] = walk.poll(stamp)
    body = flat(text_of(digest))
    assert "José Núñez: 1 ask, 1 answered" in body
    assert "Jane Okafor: 1 ask, 1 answered" in body


def test_send_mode_thanks_only_who_answered_and_keeps_after_the_silent_one(
    rig_assistant: RigAssistant,
) -> None:
    rig_assistant.configure({"schedules": {"thank_you": {"mode": "send"}}})
    walk = Walk(rig_assistant)
    ask_id = ask_both(walk)
    reply(walk, ask_id, JOSE, at("2026-12-08 10:00"))
    assert walk.poll(at("2026-12-08 10:00")) == []
    assert walk.status()["state"] == "open", "Jane has not answered"
    [thanks] = walk.poll(at("2026-12-08 12:00"))
    assert kinds([thanks]) == ["thank_you"]
    assert addresses(thanks, "To") == ["jose@example.org"]
    assert "jane@example.org" not in str(thanks["Cc"] or "")
    assert sorted(rig_assistant.sink.envelopes()[-1].rcpt_tos) == ["jose@example.org", OWNER]
    assert text_of(thanks).startswith("Hi José,\r\n")
    assert "Jane" not in text_of(thanks)

    [reminder] = walk.poll(at("2026-12-10 09:00"))
    reminder_names_jane_as_still_silent(reminder)

    reply(walk, ask_id, JANE, at("2026-12-11 10:00"))
    assert walk.poll(at("2026-12-11 10:00")) == []
    assert walk.status()["state"] == "answered"
    [thanks_jane] = walk.poll(at("2026-12-11 12:00"))
    assert kinds([thanks_jane]) == ["thank_you"]
    assert addresses(thanks_jane, "To") == ["jane@example.org"]
    assert text_of(thanks_jane).startswith("Hi Jane,\r\n")
    walk.quiet(at("2026-12-14 09:00"), at("2026-12-21 09:00"))
    ledger_counts_both(walk, at("2026-12-21 10:00"))
    walk.check_sent_folder()


def test_draft_mode_greets_only_who_answered_and_send_reaches_only_them(
    rig_assistant: RigAssistant,
) -> None:
    walk = Walk(rig_assistant)
    ask_id = ask_both(walk)
    reply(walk, ask_id, JOSE, at("2026-12-08 10:00"))
    walk.poll(at("2026-12-08 10:00"))
    [draft] = walk.poll(at("2026-12-08 12:00"))
    assert kinds([draft]) == ["thank_you_draft"] and addresses(draft, "To") == [OWNER]
    assert str(draft["Subject"]) == f"Say thanks to José: “{SUBJECT}”"
    body = flat(text_of(draft))
    assert "José Núñez answered your ask" in body
    letter = text_of(draft).split("-" * 63)[1]
    assert "Hi José," in letter and "Jane" not in letter, "the draft greets only José"
    assert "I'll keep reminding you about Jane." in body
    assert 'reply "done"' not in body, "done would stop the reminders for Jane"

    walk.command(draft, "send", at("2026-12-08 13:00"))
    thanks, confirmation = walk.poll(at("2026-12-08 13:00"))
    assert kinds([thanks, confirmation]) == ["thank_you", "command_reply"]
    assert addresses(thanks, "To") == ["jose@example.org"]
    assert sorted(rig_assistant.sink.envelopes()[-2].rcpt_tos) == ["jose@example.org", OWNER]
    assert "jose@example.org" in str(confirmation["Subject"])
    assert "jane" not in str(confirmation["Subject"]).lower()

    [reminder] = walk.poll(at("2026-12-10 09:00"))
    reminder_names_jane_as_still_silent(reminder)
    walk.command(reminder, "send", at("2026-12-10 10:00"))
    nudge, _ = walk.poll(at("2026-12-10 10:00"))
    assert kinds([nudge]) == ["nudge"] and addresses(nudge, "To") == ["jane@example.org"]
    assert text_of(nudge).startswith("Hi Jane,\r\n")

    reply(walk, ask_id, JANE, at("2026-12-11 10:00"))
    walk.poll(at("2026-12-11 10:00"))
    [draft_jane] = walk.poll(at("2026-12-11 12:00"))
    assert kinds([draft_jane]) == ["thank_you_draft"]
    assert "Hi Jane," in text_of(draft_jane) and "Hi José" not in text_of(draft_jane)
    ledger_counts_both(walk, at("2026-12-14 10:00"))
    walk.check_sent_folder()
