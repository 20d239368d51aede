"""The last checks before mail leaves hold on their own, where no planning reaches them: the
bytes of an earlier attempt sent again, an action with nobody to send to, an action recorded
under an older Message-ID, and more owner mail in a day than a counterpart may get. The first
three killed mutants of ``scripts/mutate.py`` that the rest of the suite let live
(tests/README.md)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from mailhelper.cli.config import parse_settings
from mailhelper.engine.outbox import allowed_recipients
from mailhelper.model.values import Action, ActionKind, ActionStatus, Address
from mailhelper.state.store import Store
from tests.rig.assistant import OWNER, RigAssistant

T0 = "2026-12-07T09:00:00+00:00"
MALLORY = "mallory@evil.test"
JANE = "jane@example.org"


def test_the_bytes_of_an_earlier_attempt_go_again_only_to_allowed_addresses(
    rig_assistant: RigAssistant,
) -> None:
    """An attempt whose outcome was never recorded is sent again byte for byte; its Cc comes
    from those bytes, not from the action, so the check covers the whole envelope."""
    rig = rig_assistant
    rig.ask()
    rig.poll(T0)
    [thread] = rig.status()
    before = len(rig.sink.envelopes())
    forged = EmailMessage()
    forged["From"] = rig.address
    forged["To"] = JANE
    forged["Cc"] = MALLORY
    forged["Subject"] = "Re: Intro to Acme?"
    forged.set_content("A nudge from an attempt whose outcome was never recorded.")
    store = Store.open(rig.state, rig.address.partition("@")[2])
    try:
        with store.transaction():
            store.add_action(Action(key=f"t{thread['id']}/nudge/replayed", kind=ActionKind.NUDGE,
                                    due=datetime(2026, 12, 7, 9, 5, tzinfo=UTC),
                                    thread_id=int(thread["id"]),
                                    recipients=(Address(JANE, "Jane Doe"),)),
                             datetime(2026, 12, 7, 9, 1, tzinfo=UTC))
        action = store.action_by_key(f"t{thread['id']}/nudge/replayed")
        assert action is not None
        store.mark_sending(action, forged.as_bytes())
    finally:
        store.close()
    rig.poll("2026-12-07T09:10:00+00:00")
    rcpts = [r for envelope in rig.sink.envelopes()[before:] for r in envelope.rcpt_tos]
    assert MALLORY not in rcpts and JANE not in rcpts
    with sqlite3.connect(rig.state) as db:
        [(status, error)] = db.execute(
            "SELECT status, last_error FROM actions WHERE key LIKE '%/replayed'").fetchall()
    assert status == ActionStatus.FAILED.value
    assert f"{MALLORY} is not an owner nor on the owner's own thread" in error


def test_an_action_with_nobody_to_send_to_is_refused(tmp_path: Path) -> None:
    """Rendering refuses such an action too; this check must not lean on it (the bytes of an
    earlier attempt are not rendered again)."""
    settings = parse_settings(
        "owners: [{name: Sam, email: sam@example.com}]\n"
        "assistant: {name: Helper, email: helper@example.com}\n"
        "imap: {host: imap.example.com}\nsmtp: {host: smtp.example.com}\n",
        "config.yaml", environ={"HOME": "/home/sam"})
    store = Store.open(tmp_path / "state.db", "example.com")
    try:
        nobody = Action(key="digest/nobody", kind=ActionKind.DIGEST,
                        due=datetime(2026, 12, 7, tzinfo=UTC))
        assert allowed_recipients(store, settings, nobody, ["sam@example.com"]) == "no recipients"
    finally:
        store.close()


def test_owners_get_all_their_mail_whatever_the_cap_per_recipient(
    rig_assistant: RigAssistant,
) -> None:
    """``max_per_recipient_per_day`` protects counterparts; the owner's own receipts are
    never held by it (SPEC.md safety rule 2)."""
    rig = rig_assistant
    rig.configure({"sending": {"max_per_recipient_per_day": 1}})
    for n in range(3):
        rig.ask(to=f"Person {n} <person{n}@example.org>", subject=f"Intro number {n}?",
                body=f"Hi, could you introduce me to someone at company {n}?")
    rig.poll(T0)
    to_owner = [m for m in rig.sent() if OWNER in str(m["To"])]
    assert len(to_owner) == 3, [m["Subject"] for m in rig.sent()]
    with sqlite3.connect(rig.state) as db:
        held = db.execute("SELECT count(*) FROM actions WHERE status='pending' AND "
                          "next_attempt IS NOT NULL").fetchone()[0]
    assert held == 0


def test_an_action_recorded_under_an_older_message_id_is_sent_and_filed_under_it(
    rig_assistant: RigAssistant,
) -> None:
    """A state file written before the secret (or under an older formula) recorded other
    Message-IDs; the mail goes out under the recorded one, so the Sent folder check after a
    crash looks for the id the mail really carries."""
    rig = rig_assistant
    rig.ask()
    rig.poll(T0)
    [thread] = rig.status()
    legacy = "legacy-formula-1@assistant.example"
    store = Store.open(rig.state, rig.address.partition("@")[2])
    try:
        with store.transaction():
            store.add_action(Action(key=f"t{thread['id']}/nudge/legacy", kind=ActionKind.NUDGE,
                                    due=datetime(2026, 12, 7, 9, 5, tzinfo=UTC),
                                    thread_id=int(thread["id"]),
                                    recipients=(Address(JANE, "Jane Doe"),)),
                             datetime(2026, 12, 7, 9, 1, tzinfo=UTC))
            store.db.execute("UPDATE actions SET message_id=? WHERE key LIKE '%/legacy'",
                             (legacy,))
    finally:
        store.close()
    rig.poll("2026-12-07T09:10:00+00:00")
    [nudge] = [m for m in rig.sent() if JANE in str(m["To"])]
    assert str(nudge["Message-ID"]).strip("<>") == legacy
    assert legacy in {str(m["Message-ID"]).strip("<>") for m in rig.folder("Sent")}
