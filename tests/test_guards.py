"""The last guards before mail leaves, each shown to hold on its own (SPEC.md safety rules 1 and
3), through Dovecot and the SMTP sink.

Planning never makes these cases, so a test that only drives planning would pass with the guard
removed. Here the state is given what no planning makes (as a state file written by an older
version, or damaged, might hold) and the guard alone must stop it.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

from mailhelper.model.values import Action, ActionKind, ActionStatus, Address
from mailhelper.state.store import Store
from tests.rig.assistant import OWNER, RigAssistant

T0 = "2026-12-07T09:00:00+00:00"
MALLORY = "mallory@evil.test"


def _only_thread(rig: RigAssistant) -> int:
    [thread] = rig.status()
    return int(thread["id"])


def test_an_action_addressed_outside_the_thread_is_refused_by_the_last_check(
    rig_assistant: RigAssistant,
) -> None:
    rig = rig_assistant
    rig.ask()
    rig.poll(T0)
    thread_id = _only_thread(rig)
    before = len(rig.sent())
    store = Store.open(rig.state, rig.address.partition("@")[2])
    try:
        with store.transaction():
            for kind, recipients in (
                (ActionKind.NUDGE, (Address(MALLORY, "Mallory"),)),
                # The counterpart and someone else: one stranger in the envelope is enough.
                (ActionKind.THANK_YOU, (Address("jane@example.org", "Jane Doe"),
                                        Address(MALLORY))),
            ):
                store.add_action(
                    Action(key=f"t{thread_id}/{kind.value}/forged", kind=kind,
                           due=datetime(2026, 12, 7, 9, 5, tzinfo=UTC), thread_id=thread_id,
                           recipients=recipients),
                    datetime(2026, 12, 7, 9, 1, tzinfo=UTC),
                )
    finally:
        store.close()
    rig.poll("2026-12-07T09:10:00+00:00")
    rig.poll("2026-12-08T09:10:00+00:00")
    after = rig.sent()[before:]
    envelopes = [r for envelope in rig.sink.envelopes() for r in envelope.rcpt_tos]
    assert MALLORY not in envelopes
    assert all(MALLORY not in str(m.get("To", "")) + str(m.get("Cc", "")) for m in after)
    with sqlite3.connect(rig.state) as db:
        rows = db.execute("SELECT status, last_error FROM actions WHERE key LIKE '%/forged'"
                          ).fetchall()
    assert [status for status, _ in rows] == [ActionStatus.FAILED.value] * 2
    assert all(f"{MALLORY} is not an owner nor on the owner's own thread" in (error or "")
               for _, error in rows)


def test_every_mail_sent_carries_the_message_id_recorded_for_its_action(
    rig_assistant: RigAssistant,
) -> None:
    """The exactly-once protocol finds a mail in Sent by the Message-ID recorded for its action
    before sending; a mail going out under any other ID could be sent twice after a crash."""
    rig = rig_assistant
    rig.configure({"schedules": {"thank_you": {"after": "2 hours", "mode": "send"}}})
    rig.ask()
    rig.poll(T0)
    rig.poll("2026-12-10T09:00:00+00:00")  # the first reminder
    sent = rig.sent()
    assert len(sent) >= 2, [m["Subject"] for m in sent]
    with sqlite3.connect(rig.state) as db:
        recorded = {
            message_id.strip("<>"): (kind, json.loads(recipients))
            for message_id, kind, recipients in db.execute(
                "SELECT message_id, kind, recipients FROM actions WHERE status = 'sent'")
        }
    assert len(recorded) == len(sent)
    filed = {str(m["Message-ID"]).strip("<>") for m in rig.folder("Sent")}
    for message in sent:
        message_id = str(message["Message-ID"]).strip("<>")
        assert message_id in recorded, (message["Subject"], message_id, sorted(recorded))
        kind, _recipients = recorded[message_id]
        assert message["X-Mailhelper-Action"] == kind
        assert message_id in filed
    assert OWNER in {str(m["To"]).rpartition("<")[2].strip(">") for m in sent}
