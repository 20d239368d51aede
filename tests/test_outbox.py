"""Sending exactly once (SPEC.md safety rule 3) against the real rig: Dovecot and the SMTP sink.

Each test drives ``mailhelper poll --once --now ...`` and then counts what the sink accepted, by
Message-ID. What is achievable, and pinned here:

- temporary failures (4xx at MAIL, RCPT or DATA; a connection dropped before the mail was
  accepted) are retried with backoff and the mail arrives exactly once;
- a connection dropped after the server stored the mail but before its reply reached us is the
  one window no client can close (RFC 1047): the mail arrives twice, with the same Message-ID,
  unless the Sent folder says it went (a server that files submitted mail itself, as Gmail does);
- a kill between the server's acceptance and the local record is the same window; a kill at any
  other point sends nothing twice and loses nothing.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailhelper.engine.outbox import backoff
from tests.rig.assistant import OWNER, OWNER_NAME, RigAssistant
from tests.rig.dovecot import DovecotServer
from tests.rig.mailboxes import append, folders, make_message
from tests.rig.smtpsink import SmtpSink

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # a Monday
ASK_DATE = "Mon, 07 Dec 2026 09:00:00 +0000"


def at(minutes: float = 0, hours: float = 0, days: float = 0) -> str:
    return (T0 + timedelta(minutes=minutes, hours=hours, days=days)).isoformat()


def ask(rig: RigAssistant, n: int) -> str:
    """Deliver the owner's n-th ask (its receipt falls due at the next poll)."""
    return rig.ask(to=f"Jane {n} <jane{n}@example.org>", subject=f"Intro number {n}",
                   date=ASK_DATE, message_id=f"<ask-{n}@example.com>")


def copies(rig: RigAssistant) -> Counter[str]:
    """How many times the sink accepted each Message-ID."""
    return Counter(str(m["Message-ID"]) for m in rig.sent())


def sessions(sink: SmtpSink) -> int:
    """How many SMTP connections delivered the stored mail (one client port per connection)."""
    peers = {tuple(json.loads(p.read_text())["peer"]) for p in sink.directory.glob("[0-9]*.json")}
    return len(peers)


def actions(rig: RigAssistant) -> list[sqlite3.Row]:
    with sqlite3.connect(rig.state) as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM actions ORDER BY id").fetchall()


def integrity(rig: RigAssistant) -> str:
    with sqlite3.connect(rig.state) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def kind_of(message: EmailMessage) -> str:
    return str(message["X-Mailhelper-Action"])


def answered_ask(rig: RigAssistant) -> None:
    """An ask Jane has answered, with thank-yous sent straight to her (owner in Cc): the
    thank-you is a mail with two envelope recipients, due 2 hours after her reply."""
    rig.configure({"schedules": {"thank_you": {"mode": "send", "after": "2 hours"}}})
    ask_id = rig.ask(date=ASK_DATE, message_id="<ask-jane@example.com>")
    rig.poll(at())
    reply = make_message("Jane Doe <jane@example.org>", f"{OWNER_NAME} <{OWNER}>",
                         "Re: Intro to Acme?", "Happy to help, here is Ann at Acme.",
                         cc=rig.address, in_reply_to=ask_id, references=ask_id,
                         date="Mon, 07 Dec 2026 10:00:00 +0000",
                         message_id="<reply-jane@example.org>")
    rig.deliver(reply)
    rig.poll(at(hours=1))


def thank_you_in(rig: RigAssistant) -> list[EmailMessage]:
    return [m for m in rig.sent() if kind_of(m) == "thank_you"]


# -- pure arithmetic --------------------------------------------------------------------------
def test_backoff_doubles_from_a_minute_and_stops_at_an_hour() -> None:
    minutes = [backoff(n) / timedelta(minutes=1) for n in range(0, 10)]
    assert minutes == [1, 1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert backoff(10_000) == timedelta(hours=1)


# -- temporary failures -----------------------------------------------------------------------
def test_451_twice_then_ok_is_retried_at_the_backoff_times_and_sent_once(
    rig_assistant: RigAssistant,
) -> None:
    rig = rig_assistant
    ask(rig, 1)
    rig.sink.fail_next(2, 451)

    rig.poll(at())
    assert rig.sent() == [] and rig.sink.outcomes == ["451"]
    assert f"next try at {at(minutes=1)}" in rig.last_output
    rig.poll(at(minutes=0.5))
    assert rig.sink.outcomes == ["451"], "no retry before the backoff has passed"

    rig.poll(at(minutes=1))
    assert rig.sink.outcomes == ["451", "451"]
    assert f"next try at {at(minutes=3)}" in rig.last_output, "the second wait is 2 minutes"
    rig.poll(at(minutes=2.9))
    assert len(rig.sink.outcomes) == 2

    rig.poll(at(minutes=3))
    assert rig.sink.outcomes == ["451", "451", "250"]
    [receipt] = rig.sent()
    assert kind_of(receipt) == "receipt"
    [row] = [r for r in actions(rig) if r["kind"] == "receipt"]
    assert (row["status"], row["attempts"], row["appended"]) == ("sent", 3, 1)
    assert [m["Message-ID"] for m in rig.folder("Sent")] == [receipt["Message-ID"]]
    rig.poll(at(hours=1))
    assert len(rig.sent()) == 1


@pytest.mark.parametrize(
    ("failure", "expected_outcome"),
    [
        pytest.param(lambda s: s.fail_next(1, 421), "421", id="421-at-data"),
        pytest.param(lambda s: s.fail_next(1, 452, stage="mail"), None, id="452-at-mail"),
        pytest.param(lambda s: s.drop_next(1, after_store=False), "dropped", id="drop-mid-data"),
    ],
)
def test_temporary_failure_then_retry_delivers_exactly_once(
    rig_assistant: RigAssistant, failure: Callable[[SmtpSink], None],
    expected_outcome: str | None,
) -> None:
    rig = rig_assistant
    ask(rig, 1)
    ask(rig, 2)
    failure(rig.sink)
    rig.poll(at())
    if expected_outcome is not None:
        assert rig.sink.outcomes[0] == expected_outcome
    # The second receipt of the cycle still went (over a new connection where the server
    # closed the old one); the first waits for its backoff.
    assert len(rig.sent()) == 1
    rig.poll(at(minutes=1))
    counted = copies(rig)
    assert len(counted) == 2 and set(counted.values()) == {1}, counted
    assert Counter(str(m["Message-ID"]) for m in rig.folder("Sent")) == counted
    assert {r["status"] for r in actions(rig) if r["kind"] == "receipt"} == {"sent"}


def test_452_for_one_recipient_sends_to_none_then_to_both_once(
    rig_assistant: RigAssistant,
) -> None:
    """A refused RCPT ends the transaction before DATA: the owner in Cc does not get a copy
    the counterpart lacks, and the retry does not reach the owner twice."""
    rig = rig_assistant
    answered_ask(rig)
    rig.sink.fail_next(1, 452, stage="rcpt")  # the first RCPT: jane
    rig.poll(at(hours=3))
    assert thank_you_in(rig) == []
    rig.poll(at(hours=3, minutes=1))
    [thanks] = thank_you_in(rig)
    [envelope] = [e for e in rig.sink.envelopes() if e.eml.read_bytes().find(
        str(thanks["Message-ID"]).encode()) >= 0]
    assert sorted(envelope.rcpt_tos) == ["jane@example.org", OWNER]
    assert max(copies(rig).values()) == 1


def test_send_as_owner_copies_the_assistant_and_is_not_refused(
    rig_assistant: RigAssistant,
) -> None:
    rig = rig_assistant
    rig.configure({"send_as": "owner"})
    answered_ask(rig)
    rig.poll(at(hours=3))
    [thanks] = thank_you_in(rig)
    assert thanks["From"].addresses[0].addr_spec == OWNER
    [envelope] = [e for e in rig.sink.envelopes() if e.eml.read_bytes().find(
        str(thanks["Message-ID"]).encode()) >= 0]
    assert sorted(envelope.rcpt_tos) == sorted(["jane@example.org", rig.address])


def test_a_drop_after_the_server_stored_the_mail_is_the_one_duplicate(
    rig_assistant: RigAssistant,
) -> None:
    rig = rig_assistant
    ask(rig, 1)
    rig.sink.drop_next(1, after_store=True)
    rig.poll(at())
    assert rig.sink.outcomes == ["dropped after store"]
    [row] = [r for r in actions(rig) if r["kind"] == "receipt"]
    assert row["status"] == "sending", "the outcome is unknown, not failed"
    assert "Sent folder decides at" in rig.last_output
    rig.poll(at(minutes=1))
    [(message_id, count)] = copies(rig).items()
    assert count == 2, "accepted, reply lost, not in Sent: the unavoidable duplicate"
    assert [str(m["Message-ID"]) for m in rig.folder("Sent")] == [message_id]


def test_a_drop_after_store_sends_nothing_twice_when_the_server_files_sent_mail(
    rig_assistant: RigAssistant,
) -> None:
    """Servers such as Gmail put submitted mail in Sent themselves: then the Sent folder says
    the mail went, and the retry does not happen."""
    rig = rig_assistant
    ask(rig, 1)
    rig.sink.drop_next(1, after_store=True)
    rig.poll(at())
    [raw] = rig.sink.raw()
    append(rig.dovecot, rig.account, raw, folder="Sent")  # what such a server would do
    rig.poll(at(minutes=1))
    assert list(copies(rig).values()) == [1]
    [row] = [r for r in actions(rig) if r["kind"] == "receipt"]
    assert (row["status"], row["appended"]) == ("sent", 1)
    assert len(rig.folder("Sent")) == 1, "filed once, by the server"


def test_smtp_unreachable_waits_with_backoff_then_sends(
    rig_assistant: RigAssistant,
) -> None:
    rig = rig_assistant
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    rig.configure({"smtp": {"port": closed_port}})
    ask(rig, 1)
    ask(rig, 2)
    rig.poll(at())
    assert "wait until" in rig.last_output
    assert {r["status"] for r in actions(rig) if r["kind"] == "receipt"} == {"pending"}
    rig.configure({"smtp": {"port": rig.sink.port}})
    rig.poll(at(minutes=0.5))
    assert rig.sent() == [], "the backoff holds"
    rig.poll(at(minutes=1))
    assert sorted(copies(rig).values()) == [1, 1]


# -- permanent failures -----------------------------------------------------------------------
def test_554_fails_the_action_tells_the_owner_once_and_the_rest_goes_out(
    rig_assistant: RigAssistant,
) -> None:
    rig = rig_assistant
    for n in (1, 2, 3):
        ask(rig, n)
    rig.sink.fail_next(1, 554)
    rig.poll(at())
    sent = rig.sent()
    assert sorted(kind_of(m) for m in sent) == ["error_notice", "receipt", "receipt"]
    [notice] = [m for m in sent if kind_of(m) == "error_notice"]
    assert notice["To"].addresses[0].addr_spec == OWNER
    body = notice.get_body(("plain",))
    assert body is not None and "554" in body.get_content()
    failed = [r for r in actions(rig) if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["last_error"].startswith("554")
    assert str(failed[0]["message_id"]) not in {str(m["Message-ID"]).strip("<>") for m in sent}
    rig.poll(at(hours=2))
    rig.poll(at(days=1))
    assert len(rig.sent()) == 3, "no second notice, no retry of the refused mail"


def test_a_refused_recipient_5xx_fails_the_whole_mail(rig_assistant: RigAssistant) -> None:
    rig = rig_assistant
    answered_ask(rig)
    rig.sink.fail_next(1, 550, stage="rcpt")
    rig.poll(at(hours=3))
    kinds = [kind_of(m) for m in rig.sent()]
    assert "thank_you" not in kinds and kinds.count("error_notice") == 1
    [row] = [r for r in actions(rig) if r["kind"] == "thank_you"]
    assert row["status"] == "failed" and "550" in row["last_error"]


# -- one connection per cycle -----------------------------------------------------------------
def test_all_due_mail_of_a_cycle_shares_one_smtp_connection(
    rig_assistant: RigAssistant,
) -> None:
    rig = rig_assistant
    for n in (1, 2, 3, 4):
        ask(rig, n)
    rig.poll(at())
    assert len(rig.sent()) == 4
    assert sessions(rig.sink) == 1
    rig.poll(at(days=3))  # four reminders: the next cycle, its own connection
    assert len(rig.sent()) == 8
    assert sessions(rig.sink) == 2


# -- the Sent folder --------------------------------------------------------------------------
def _assistant_with(dovecot: DovecotServer, sink: SmtpSink, tmp_path: Path, name: str,
                    settings: dict[str, str]) -> RigAssistant:
    credentials = dovecot.add_user(f"{name}@example.com", settings=settings)
    workdir = tmp_path / name
    workdir.mkdir()
    return RigAssistant(dovecot, dovecot.account(credentials), sink, workdir)


_user_numbers = iter(range(1, 1_000_000))


@pytest.mark.parametrize(
    ("settings", "configured", "expected"),
    [
        pytest.param({}, None, "Sent", id="flagged-Sent"),
        pytest.param({"namespace/inbox/mailbox/Sent/name": "Outbox"}, None, "Outbox",
                     id="flagged-under-another-name"),
        pytest.param({"namespace/inbox/mailbox/Sent/name": "Unused",
                      "namespace/inbox/mailbox/Sent/auto": "no"}, None, "Sent",
                     id="no-flag-name-fallback-created"),
        pytest.param({}, "Archive/Helper", "Archive/Helper", id="configured-created"),
    ],
)
def test_each_sent_mail_is_filed_once_in_the_sent_folder(
    dovecot: DovecotServer, smtp_sink: SmtpSink, tmp_path: Path, settings: dict[str, str],
    configured: str | None, expected: str,
) -> None:
    rig = _assistant_with(dovecot, smtp_sink, tmp_path, f"sent-{next(_user_numbers)}-helper",
                          settings)
    if configured:
        rig.configure({"imap": {"sent_folder": configured}})
    before = folders(dovecot, rig.account)
    sent_flagged = [f.name for f in before.values() if f.special_use == b"\\Sent"]
    assert sent_flagged == ([] if "Unused" in str(settings) else [expected if not configured
                                                                 else "Sent"])
    ask(rig, 1)
    ask(rig, 2)
    rig.poll(at())
    rig.poll(at(days=3))
    sent_ids = sorted(str(m["Message-ID"]) for m in rig.sent())
    assert len(sent_ids) == 4
    assert sorted(str(m["Message-ID"]) for m in rig.folder(expected)) == sent_ids
    after = folders(dovecot, rig.account)
    if expected != "Sent" and "Sent" not in before:
        assert "Sent" not in after, "no stray Sent folder beside the flagged one"
    filed = rig.folder(expected)[0]
    assert filed["Auto-Submitted"] == "auto-generated"


# -- kills at the named points ----------------------------------------------------------------
CRASH_POINTS = ["during_fetch", "before_commit", "after_commit", "before_send", "after_accept",
                "after_record", "after_append"]


def _killed(result: subprocess.CompletedProcess[str]) -> bool:
    return result.returncode == -9


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_kill_at_each_point_then_a_normal_poll(rig_assistant: RigAssistant, point: str) -> None:
    rig = rig_assistant
    ask(rig, 1)
    ask(rig, 2)
    killed = rig.poll_process(at(), env={"MAILHELPER_CRASH_AT": point})
    assert _killed(killed), f"no kill at {point}: {killed.returncode}\n{killed.stderr}"
    finished = rig.poll_process(at())
    assert finished.returncode == 0, finished.stderr

    counted = copies(rig)
    assert len(counted) == 2, f"both receipts went: {counted}"
    duplicates = {mid: n for mid, n in counted.items() if n > 1}
    if point == "after_accept":
        assert list(duplicates.values()) == [2], "the documented accept-to-record window"
    else:
        assert duplicates == {}
    assert Counter(str(m["Message-ID"]) for m in rig.folder("Sent")) == Counter(
        dict.fromkeys(counted, 1)), "each filed exactly once"
    assert len(rig.status()) == 2, "each ask acted on once"
    rows = [r for r in actions(rig) if r["kind"] == "receipt"]
    assert {(r["status"], r["appended"]) for r in rows} == {("sent", 1)}
    with sqlite3.connect(rig.state) as db:
        assert db.execute("SELECT count(*) FROM processed").fetchone()[0] == 2
        assert db.execute("SELECT count(*) FROM outgoing").fetchone()[0] == 0
    assert integrity(rig) == "ok"


def test_a_kill_after_acceptance_sends_nothing_twice_when_sent_says_it_went(
    rig_assistant: RigAssistant,
) -> None:
    """After a crash between attempt and record, the Sent folder tells whether it went."""
    rig = rig_assistant
    ask(rig, 1)
    killed = rig.poll_process(at(), env={"MAILHELPER_CRASH_AT": "after_accept"})
    assert _killed(killed)
    [raw] = rig.sink.raw()
    append(rig.dovecot, rig.account, raw, folder="Sent")  # a server that files sent mail
    assert rig.poll_process(at()).returncode == 0
    assert list(copies(rig).values()) == [1]
    assert integrity(rig) == "ok"


def test_the_nth_occurrence_of_a_point_can_be_chosen(rig_assistant: RigAssistant) -> None:
    rig = rig_assistant
    for n in (1, 2, 3):
        ask(rig, n)
    killed = rig.poll_process(at(), env={"MAILHELPER_CRASH_AT": "after_record:2"})
    assert _killed(killed)
    assert len(rig.sent()) == 2, "killed after recording the second of three"
    assert rig.poll_process(at()).returncode == 0
    assert sorted(copies(rig).values()) == [1, 1, 1]
    assert len(rig.folder("Sent")) == 3
