"""IMAP faults against the real Dovecot: mail that cannot be read, servers without MOVE or
UIDPLUS, connections cut mid-FETCH, restarts, a folder deleted and recreated, a kill between
commit and flag, and a clock that jumps. After each, the next poll finishes the job and no
message is acted on twice.

Faults are made by the real parts: a relay in front of Dovecot (:mod:`tests.rig.imapproxy`)
cuts the connection at a chosen command, ``dovecot.restart()`` ends every session, a second
Dovecot offers fewer extensions (``imap_capability``), ``MAILHELPER_CRASH_AT`` kills the process.
"""

from __future__ import annotations

import base64
import os
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailhelper.engine import daemon
from mailhelper.mail.mailbox import HANDLED_FLAG, MAX_MESSAGE_BYTES
from mailhelper.mail.source import imap_position
from tests.rig import SelfSignedCert
from tests.rig.assistant import OWNER, OWNER_NAME, RigAssistant
from tests.rig.dovecot import DovecotServer
from tests.rig.imapproxy import ImapProxy
from tests.rig.mailboxes import connect, make_message, read_folder, recreate_folder
from tests.rig.smtpsink import SmtpSink
from tests.test_sync import (
    T0,
    T1,
    acted_on,
    ask,
    backlog,
    deliver_many,
    fetched_uids,
    reply,
    state,
    stranger,
)

ERRORS = "mailhelper/errors"
NOT_MAIL = b"this is not a mail\r\nat all, only two lines\r\n"


def relay(assistant: RigAssistant, **config: object) -> ImapProxy:
    """Start a relay to the assistant's Dovecot and point the assistant at it."""
    proxy = ImapProxy(assistant.dovecot.host, assistant.dovecot.port).start()
    assistant.configure({"imap": {"port": proxy.port, "security": "none"}, **config})
    return proxy


@pytest.fixture
def proxy(rig_assistant: RigAssistant) -> Iterator[ImapProxy]:
    relayed = relay(rig_assistant, confirm=False)
    yield relayed
    relayed.stop()


def failing_poll(assistant: RigAssistant, now: str) -> str:
    """Run a poll that must fail cleanly: exit 3 and one sentence, no traceback."""
    code, out, err = assistant.cli("poll", "--once", "--now", now)
    assert code == 3, f"exit {code}:\n{out}{err}"
    assert "Traceback" not in err
    return err


def position(assistant: RigAssistant) -> tuple[int, int] | None:
    with state(assistant) as db:
        row = db.execute("SELECT value FROM cursors WHERE folder='INBOX'").fetchone()
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return None if row is None else imap_position(str(row["value"]))


def notices(assistant: RigAssistant) -> list[str]:
    return [str(m["Subject"]) for m in assistant.sent() if "Couldn't" in str(m["Subject"])]


def big_mail(attachment_bytes: int) -> bytes:
    """An owner's ask carrying an attachment of about ``attachment_bytes`` (base64 lines)."""
    head = make_message(f"{OWNER_NAME} <{OWNER}>", "Jane Doe <jane@example.org>",
                        "The whole archive", "Here is everything.\n",
                        message_id="<big-1@example.com>", date="Mon, 07 Dec 2026 09:00:00 +0000")
    header = [line for line in head.partition(b"\r\n\r\n")[0].split(b"\r\n")
              if not line.lower().startswith((b"content-type", b"content-transfer-encoding"))]
    header.append(b'Content-Type: multipart/mixed; boundary="b1"')
    line = base64.b64encode(os.urandom(57)) + b"\r\n"
    return (b"\r\n".join(header) + b"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n"
            b"Here is everything.\r\n--b1\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n"
            b'Content-Disposition: attachment; filename="archive.bin"\r\n\r\n'
            + line * (attachment_bytes // 57) + b"--b1--\r\n")


def sizes_in(assistant: RigAssistant, folder: str) -> list[int]:
    with connect(assistant.dovecot, assistant.account) as client:
        client.select_folder(folder, readonly=True)
        fetched = client.fetch(client.search("ALL"), ["RFC822.SIZE"])
    return [int(fetched[uid][b"RFC822.SIZE"]) for uid in sorted(fetched)]


# -- mail that cannot be read ----------------------------------------------------------------


def test_unreadable_and_giant_mail_go_to_the_error_folder_and_the_owner_is_told_once(
    rig_assistant: RigAssistant, proxy: ImapProxy,
) -> None:
    deliver_many(rig_assistant, [ask(0)])
    rig_assistant.poll(T0)  # warm up: modules loaded before memory is measured
    raw = big_mail(30 * 1024 * 1024)
    size = len(raw)
    assert size > MAX_MESSAGE_BYTES
    deliver_many(rig_assistant, [NOT_MAIL])
    deliver_many(rig_assistant, [raw])
    del raw
    deliver_many(rig_assistant, [ask(1)])
    proxy.reset()
    tracemalloc.start()
    try:
        rig_assistant.poll(T1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 12 * 1024 * 1024, f"peak {peak / 1048576:.1f} MB for a {size >> 20} MB mail"
    lines = proxy.lines()
    assert any("UID MOVE" in line and ERRORS in line for line in lines), lines
    assert fetched_uids(lines, "BODY.PEEK[HEADER]") == [[3]], lines
    assert [2] in fetched_uids(lines) and not any(3 in batch for batch in fetched_uids(lines))
    log = rig_assistant.last_output
    assert "cannot be parsed" in log and f"moved to {ERRORS}" in log
    assert f"too large to read: {size / 1048576:.1f} MB (the limit is 25 MB)" in log

    # Filed, not deleted; the rest of the mail was read as usual.
    assert sorted(sizes_in(rig_assistant, ERRORS)) == sorted([len(NOT_MAIL), size])
    assert len(rig_assistant.folder("INBOX")) == 2
    assert len(rig_assistant.status()) == 2
    # Sam's own giant mail gets its notice; the header-less junk is nobody's: no notice of
    # its own, only a count in the next morning's summary.
    assert notices(rig_assistant) == ["Couldn't understand your mail “The whole archive”"]
    [big_notice] = [m for m in rig_assistant.sent() if "archive" in str(m["Subject"])]
    assert big_notice["To"].addresses[0].addr_spec == OWNER
    text = big_notice.get_body(("plain",))
    assert text is not None and "too large to read" in text.get_content()
    assert big_notice["In-Reply-To"] == "<big-1@example.com>", "threaded under Sam's own mail"

    # The same unreadable mail again: filed again, counted once.
    deliver_many(rig_assistant, [NOT_MAIL])
    rig_assistant.poll("2026-12-07T11:30:00+00:00")
    assert len(notices(rig_assistant)) == 1
    assert len(sizes_in(rig_assistant, ERRORS)) == 3
    rig_assistant.poll("2026-12-08T09:00:00+00:00")
    summary = rig_assistant.sent()[-1]
    assert str(summary["Subject"]) == "1 message from others filed as errors (Mon 7 Dec)"
    assert summary["X-Mailhelper-Action"] == "error_notice"


@pytest.fixture(scope="module")
def base_capabilities(dovecot: DovecotServer) -> list[str]:
    """What the rig's Dovecot offers after login."""
    user = dovecot.add_user(f"caps-{os.getpid()}@example.com")
    with connect(dovecot, user) as client:
        return [c.decode() for c in client.capabilities()]


@pytest.fixture(params=[("MOVE",), ("MOVE", "UIDPLUS", "CONDSTORE", "QRESYNC", "SPECIAL-USE")],
                ids=["no-move", "no-move-no-uidplus"])
def plain_dovecot(
    request: pytest.FixtureRequest, rig_cert: SelfSignedCert, base_capabilities: list[str],
) -> Iterator[tuple[DovecotServer, tuple[str, ...]]]:
    """A second Dovecot that does not offer some extensions (``imap_capability``)."""
    removed: tuple[str, ...] = request.param
    server = DovecotServer(cert=rig_cert)
    offered = [c for c in base_capabilities if c.split("=")[0] not in removed]
    with server.config_file.open("a") as conf:
        conf.write(f"imap_capability = {' '.join(offered)}\n")
    try:
        server.start()
        yield server, removed
    finally:
        server.close()


def test_without_move_the_error_mail_is_copied_and_only_its_uid_expunged(
    plain_dovecot: tuple[DovecotServer, tuple[str, ...]], smtp_sink: SmtpSink, tmp_path: Path,
) -> None:
    server, removed = plain_dovecot
    account = server.account(server.add_user("helper@example.com"))
    workdir = tmp_path / "assistant"
    workdir.mkdir()
    assistant = RigAssistant(server, account, smtp_sink, workdir)
    # A message the user deleted in their own client, not yet expunged: it must survive.
    with connect(server, account) as client:
        client.append("INBOX", stranger(0), flags=[b"\\Deleted"])
        offered = {c.decode() for c in client.capabilities()}
    assert not offered & set(removed)
    deliver_many(assistant, [NOT_MAIL, ask(0)])

    proxy = relay(assistant)
    try:
        assistant.poll(T0)
    finally:
        proxy.stop()

    commands = proxy.commands()
    assert "UID MOVE" not in commands and "UID COPY" in commands
    inbox = read_folder(server, account, "INBOX")
    assert b"\\Deleted" in inbox[0][1] and inbox[0][2] == stranger(0)
    if "UIDPLUS" in removed:
        # A plain EXPUNGE would take the user's deleted mail too: the copy stays flagged.
        assert "EXPUNGE" not in commands and "UID EXPUNGE" not in commands
        assert [raw for _uid, _flags, raw in inbox] == [stranger(0), NOT_MAIL, ask(0)]
        assert b"\\Deleted" in inbox[1][1] and b"\\Deleted" not in inbox[2][1]
    else:
        assert "EXPUNGE" not in commands
        assert [line.split()[-1] for line in proxy.lines() if "UID EXPUNGE" in line] == ["2"]
        assert [raw for _uid, _flags, raw in inbox] == [stranger(0), ask(0)]
    assert [raw for _uid, _flags, raw in read_folder(server, account, ERRORS)] == [NOT_MAIL]
    # The rest works as on a full server: the ask is tracked, its receipt filed in Sent.
    assert [t["subject"] for t in assistant.status()] == ["Intro number 0?"]
    # The junk is nobody's: no notice of its own (it is counted for the daily summary).
    assert [str(m["X-Mailhelper-Action"]) for m in assistant.sent()] == ["receipt"]
    assert len(read_folder(server, account, "Sent")) == 1


# -- connections cut, servers restarted, a process killed ------------------------------------


@pytest.mark.parametrize("settle_seconds", [0.0, 3600.0])
def test_a_connection_cut_mid_fetch_fails_the_poll_and_the_next_one_finishes(
    rig_assistant: RigAssistant, proxy: ImapProxy, monkeypatch: pytest.MonkeyPatch,
    settle_seconds: float,
) -> None:
    # Settled every batch (200 messages) when the batch took longer than SETTLE_SECONDS
    # (0: always), else only later: then the cut leaves the whole reading unsettled.
    monkeypatch.setattr(daemon, "SETTLE_SECONDS", settle_seconds)
    deliver_many(rig_assistant, backlog(asks=150, replies=50, strangers=50))
    proxy.cut_at("UID FETCH", occurrence=2, after_bytes=60_000, containing="BODY.PEEK[]")

    err = failing_poll(rig_assistant, T0)
    assert "lost the connection while reading INBOX" in err
    settled = position(rig_assistant)
    if settle_seconds:
        assert settled is None  # nothing settled, so nothing flagged: all read again ...
        assert not any(HANDLED_FLAG in f for f in rig_assistant.flags())
    else:
        assert settled is not None
        assert settled[1] == 200  # the first batch was settled, the second never arrived
    assert len(acted_on(rig_assistant)) == 200

    rig_assistant.poll(T1)
    if settle_seconds:  # ... and known: they act once
        assert "200 message(s) handled before" in rig_assistant.last_output
        assert "250 new message(s)" in rig_assistant.last_output
    else:
        assert "50 new message(s)" in rig_assistant.last_output
    acts = acted_on(rig_assistant)
    assert len(acts) == 250 and set(acts.values()) == {1}
    assert (position(rig_assistant) or (0, 0))[1] == 250
    assert all(HANDLED_FLAG in f for f in rig_assistant.flags())


def test_a_connection_cut_before_flagging_rereads_and_acts_on_nothing_twice(
    rig_assistant: RigAssistant, proxy: ImapProxy,
) -> None:
    deliver_many(rig_assistant, backlog(asks=10, replies=5, strangers=5))
    proxy.cut_at("UID STORE", containing=HANDLED_FLAG.decode())

    failing_poll(rig_assistant, T0)
    assert len(acted_on(rig_assistant)) == 20  # committed ...
    assert position(rig_assistant) is None  # ... but not settled
    assert not any(HANDLED_FLAG in f for f in rig_assistant.flags())

    rig_assistant.poll(T1)
    assert "20 message(s) handled before" in rig_assistant.last_output
    assert set(acted_on(rig_assistant).values()) == {1}
    assert all(HANDLED_FLAG in f for f in rig_assistant.flags())


def test_dovecot_restarted_mid_poll_and_between_polls(
    rig_assistant: RigAssistant, proxy: ImapProxy,
) -> None:
    deliver_many(rig_assistant, backlog(asks=10, replies=5, strangers=5))
    restarted = threading.Event()

    def restart() -> None:
        rig_assistant.dovecot.restart()
        restarted.set()

    proxy.cut_at("UID FETCH", containing="BODY.PEEK[]", action=restart)

    failing_poll(rig_assistant, T0)
    assert acted_on(rig_assistant) == {}
    # The poll fails as soon as the stopping server drops it, while the restart goes on.
    assert restarted.wait(30), "Dovecot did not come back"

    rig_assistant.poll(T1)
    assert "20 new message(s)" in rig_assistant.last_output
    rig_assistant.dovecot.restart()
    deliver_many(rig_assistant, [ask(10), reply(10)])
    rig_assistant.poll("2026-12-07T11:10:00+00:00")
    assert "2 new message(s)" in rig_assistant.last_output
    acts = acted_on(rig_assistant)
    assert len(acts) == 22 and set(acts.values()) == {1}
    assert len(rig_assistant.status()) == 11


def test_a_kill_between_commit_and_flag_acts_once(rig_assistant: RigAssistant) -> None:
    rig_assistant.configure({"confirm": False})
    deliver_many(rig_assistant, [ask(0), reply(0), ask(1)])

    killed = rig_assistant.poll_process(T0, env={"MAILHELPER_CRASH_AT": "after_commit"})
    assert killed.returncode == -9
    # One commit holds the three messages' effects (their group): all committed, none flagged.
    assert len(acted_on(rig_assistant)) == 3

    rig_assistant.poll(T1)
    assert "3 message(s) handled before" in rig_assistant.last_output
    acts = acted_on(rig_assistant)
    assert len(acts) == 3 and set(acts.values()) == {1}
    assert [t["state"] for t in rig_assistant.status()] == ["open", "answered"]


def test_a_kill_in_mid_group_reads_the_group_again_and_acts_once(
    rig_assistant: RigAssistant,
) -> None:
    rig_assistant.configure({"confirm": False})
    deliver_many(rig_assistant, [ask(0), reply(0), ask(1), ask(2)])

    # Killed in the third message: the two before it are in its group, not committed.
    killed = rig_assistant.poll_process(T0, env={"MAILHELPER_CRASH_AT": "before_commit:3"})
    assert killed.returncode == -9
    assert acted_on(rig_assistant) == {}

    rig_assistant.poll(T1)
    assert "handled before" not in rig_assistant.last_output
    acts = acted_on(rig_assistant)
    assert len(acts) == 4 and set(acts.values()) == {1}
    assert sorted(t["state"] for t in rig_assistant.status()) == ["answered", "open", "open"]


# -- the folder deleted and recreated ---------------------------------------------------------


def test_the_folder_deleted_then_recreated_is_read_again_without_repeats(
    rig_assistant: RigAssistant,
) -> None:
    with connect(rig_assistant.dovecot, rig_assistant.account) as client:
        client.create_folder("assistant")
    rig_assistant.configure({"imap": {"folder": "assistant"}, "confirm": False})
    deliver_many(rig_assistant, [ask(0), ask(1), stranger(0)], folder="assistant")
    rig_assistant.poll(T0)
    assert len(acted_on(rig_assistant)) == 3

    with connect(rig_assistant.dovecot, rig_assistant.account) as client:
        client.delete_folder("assistant")
    err = failing_poll(rig_assistant, T1)
    assert "cannot open the folder 'assistant' (imap.folder)" in err

    # Back again, UIDs from 1: an old copy and two new messages under the old UIDs 1 to 3.
    with connect(rig_assistant.dovecot, rig_assistant.account) as client:
        client.create_folder("assistant")
    deliver_many(rig_assistant, [ask(1), reply(0), ask(2)], folder="assistant")
    old, new = recreate_folder(rig_assistant.dovecot, rig_assistant.account, "assistant")
    rig_assistant.poll("2026-12-07T11:30:00+00:00")

    assert "UIDVALIDITY changed" in rig_assistant.last_output
    assert "3 new message(s)" in rig_assistant.last_output
    acts = acted_on(rig_assistant)
    assert len(acts) == 5 and set(acts.values()) == {1}
    assert sorted((t["subject"], t["state"]) for t in rig_assistant.status()) == [
        ("Intro number 0?", "answered"), ("Intro number 1?", "open"),
        ("Intro number 2?", "open")]
    assert old != new


# -- the clock jumps ----------------------------------------------------------------------------


def test_the_clock_jumping_a_month_ahead_then_an_hour_back_sends_each_mail_once(
    rig_assistant: RigAssistant,
) -> None:
    deliver_many(rig_assistant, [ask(0), ask(1), reply(1)])
    rig_assistant.poll(T0)
    receipts = rig_assistant.sent()
    assert [str(m["Subject"]).startswith("Tracking your ask") for m in receipts] == [True, True]

    month = "2027-01-07T10:00:00+00:00"
    rig_assistant.poll(month)
    overdue = rig_assistant.sent()[2:]
    # What fell due meanwhile goes out once: one mail per thread, not one per missed date.
    assert sorted(str(m["Subject"]).split()[0] for m in overdue) == ["Follow", "Say"]
    assert all(m["Date"] == "Thu, 07 Jan 2027 10:00:00 +0000" for m in overdue)

    rig_assistant.poll(month)
    rig_assistant.poll("2027-01-07T09:00:00+00:00")  # an hour back
    rig_assistant.poll("2027-01-07T09:30:00+00:00")
    rig_assistant.poll("2027-01-07T10:30:00+00:00")
    ids = [m["Message-ID"] for m in rig_assistant.sent()]
    assert len(ids) == 4 and len(set(ids)) == 4
    with state(rig_assistant) as db:
        assert db.execute("SELECT count(*) FROM actions WHERE status='sending'").fetchone()[0] == 0
    assert [m["Message-ID"] for m in rig_assistant.folder("Sent")] == ids
    [answered, open_ask] = rig_assistant.status()
    assert (answered["state"], open_ask["state"]) == ("answered", "open")
    assert open_ask["next_action"]["due"] > "2027-01-07T10:30"
