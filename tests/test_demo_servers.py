"""The demo's embedded IMAP server and SMTP sink speak real protocols and go away cleanly.

These tests also pin what the embedded IMAP server offers, so that a pymap upgrade that changes
it (capabilities, separator, keywords) shows here rather than half-way through ``demo``.
"""

from __future__ import annotations

import logging
import re
import smtplib
import socket
import threading
import time
from asyncio import Event
from collections.abc import Callable, Iterator
from email.message import EmailMessage

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from mailhelper.cli.demo_servers import (
    DemoServerError,
    DemoServers,
    EmbeddedImap,
    EmbeddedSmtp,
    demo_servers,
)

pytestmark = pytest.mark.timeout(30)

OWNER = "owner@localhost"
HELPER = "helper@localhost"
USERS = {OWNER: "owner-pw", HELPER: "helper-pw"}


@pytest.fixture
def servers() -> Iterator[DemoServers]:
    with demo_servers(USERS) as running:
        yield running


@pytest.fixture
def imap(servers: DemoServers) -> Iterator[IMAPClient]:
    client = IMAPClient(servers.imap_host, port=servers.imap_port, ssl=False, timeout=5)
    client.login(OWNER, USERS[OWNER])
    yield client
    try:
        client.logout()
    except Exception:  # a test may have stopped the server under the client
        client.shutdown()


def mail(subject: str, message_id: str, to: str = OWNER, sender: str = HELPER) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message.set_content(f"About {subject}. Grüße\n")
    return message


def crlf(message: EmailMessage) -> bytes:
    return message.as_bytes().replace(b"\n", b"\r\n")


def port_is_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_both_listen_on_loopback_on_free_ports(servers: DemoServers) -> None:
    assert servers.imap_host == servers.smtp_host == "127.0.0.1"
    assert servers.imap_port > 0 and servers.smtp_port > 0
    assert servers.imap_port != servers.smtp_port
    assert port_is_open(servers.imap_port) and port_is_open(servers.smtp_port)


def test_each_user_starts_with_an_empty_inbox_and_a_sent_folder(servers: DemoServers) -> None:
    for user, password in USERS.items():
        with IMAPClient(servers.imap_host, port=servers.imap_port, ssl=False, timeout=5) as c:
            c.login(user, password)
            assert [name for _, _, name in c.list_folders()] == ["INBOX", "Sent"]
            assert c.select_folder("INBOX")[b"EXISTS"] == 0
            assert c.find_special_folder(b"\\Sent") == "Sent"  # by name: no SPECIAL-USE


def test_wrong_password_and_pymaps_demo_user_are_refused(servers: DemoServers) -> None:
    for user, password in [(OWNER, "wrong"), ("demouser", "demopass")]:
        client = IMAPClient(servers.imap_host, port=servers.imap_port, ssl=False, timeout=5)
        with client, pytest.raises(LoginError):
            client.login(user, password)


def test_capabilities_are_the_ones_mailhelper_is_adapted_to(imap: IMAPClient) -> None:
    caps = set(imap.capabilities())
    assert {b"IMAP4REV1", b"IDLE", b"MOVE", b"UIDPLUS", b"LITERAL+"} <= caps
    assert not caps & {b"SPECIAL-USE", b"STARTTLS", b"NAMESPACE", b"CONDSTORE", b"ENABLE"}


def test_append_then_fetch_round_trips_the_bytes_without_marking_seen(imap: IMAPClient) -> None:
    message = mail("Intro to Acme", "<ask-1@localhost>")
    imap.append("INBOX", crlf(message))
    selected = imap.select_folder("INBOX")
    assert selected[b"UIDVALIDITY"] > 0
    assert selected[b"UIDNEXT"] == 102  # pymap's first UID is 101
    uids = imap.search(["UID", "101:*"])
    assert uids == [101]
    fetched = imap.fetch(uids, [b"BODY.PEEK[]"])
    assert fetched[101][b"BODY[]"] == crlf(message)
    assert b"\\Seen" not in imap.get_flags(uids)[101]
    # "n:*" still matches the highest UID when n is above it (RFC 3501 6.4.8).
    assert imap.search(["UID", "500:*"]) == [101]


def test_keywords_are_kept_and_searchable(imap: IMAPClient) -> None:
    imap.append("INBOX", crlf(mail("one", "<one@localhost>")))
    imap.append("INBOX", crlf(mail("two", "<two@localhost>")))
    selected = imap.select_folder("INBOX")
    assert b"\\*" in selected[b"PERMANENTFLAGS"]
    imap.add_flags([101], [b"$MailhelperHandled", b"\\Seen"], silent=True)
    assert set(imap.get_flags([101])[101]) >= {b"$MailhelperHandled", b"\\Seen"}
    assert imap.search(["KEYWORD", "$MailhelperHandled"]) == [101]
    assert imap.search(["UNKEYWORD", "$MailhelperHandled"]) == [102]


def test_folders_copy_move_expunge_and_header_search(imap: IMAPClient) -> None:
    imap.create_folder("mailhelper/errors")
    folders = {name: flags for flags, _, name in imap.list_folders()}
    assert {"mailhelper", "mailhelper/errors"} <= folders.keys()
    assert all(sep == b"/" for _, sep, _ in imap.list_folders())
    for n in (1, 2, 3):
        imap.append("INBOX", crlf(mail(f"m{n}", f"<m{n}@localhost>")))
    imap.select_folder("INBOX")
    assert imap.search(["HEADER", "Message-ID", "<m2@localhost>"]) == [102]
    assert imap.search(["HEADER", "Message-ID", "<nowhere@localhost>"]) == []

    imap.move([101], "mailhelper/errors")
    imap.copy([102], "Sent")
    imap.add_flags([102], [b"\\Deleted"], silent=True)
    imap.add_flags([103], [b"\\Deleted"], silent=True)
    imap.uid_expunge([102])  # UIDPLUS: only 102 goes, 103 stays flagged

    assert imap.search(["ALL"]) == [103]
    assert imap.folder_status("mailhelper/errors", [b"MESSAGES"])[b"MESSAGES"] == 1
    assert imap.folder_status("Sent", [b"MESSAGES"])[b"MESSAGES"] == 1


def test_smtp_sink_keeps_every_message_in_order_with_its_envelope(servers: DemoServers) -> None:
    first = mail("first", "<first@localhost>", to="someone@example.org", sender=OWNER)
    second = mail("second", "<second@localhost>", to="other@example.org", sender=OWNER)
    with smtplib.SMTP(servers.smtp_host, servers.smtp_port, timeout=5) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("auth") and not smtp.has_extn("starttls")
        smtp.send_message(first)
        smtp.sendmail(OWNER, ["other@example.org", "bcc@example.org"], crlf(second))

    received = servers.smtp.received()
    assert [r.rcpt_tos for r in received] == [
        ("someone@example.org",),
        ("other@example.org", "bcc@example.org"),
    ]
    assert received[0].mail_from == OWNER
    assert received[0].raw == crlf(first)
    parsed = servers.smtp.messages()
    assert [m["Subject"] for m in parsed] == ["first", "second"]
    assert parsed[1].get_content() == "About second. Grüße\n"
    servers.smtp.clear()
    assert servers.smtp.messages() == []


def test_mail_to_an_imap_user_also_lands_in_their_inbox(servers: DemoServers) -> None:
    reply = mail("Re: Intro to Acme", "<reply@localhost>", to=OWNER, sender=HELPER)
    with IMAPClient(servers.imap_host, port=servers.imap_port, ssl=False, timeout=5) as idler:
        idler.login(OWNER, USERS[OWNER])
        idler.select_folder("INBOX")
        idler.idle()
        with smtplib.SMTP(servers.smtp_host, servers.smtp_port, timeout=5) as smtp:
            # Upper case and a second copy to the same user: still one delivery.
            smtp.sendmail(HELPER, [OWNER.upper(), OWNER, "elsewhere@example.org"], crlf(reply))
        # Delivered before DATA was answered, and announced to a client in IDLE.
        assert (1, b"EXISTS") in idler.idle_check(timeout=5)
        idler.idle_done()
        uids = idler.search(["ALL"])
        assert len(uids) == 1
        assert idler.fetch(uids, [b"BODY.PEEK[]"])[uids[0]][b"BODY[]"] == crlf(reply)
    with IMAPClient(servers.imap_host, port=servers.imap_port, ssl=False, timeout=5) as helper:
        helper.login(HELPER, USERS[HELPER])
        assert helper.select_folder("INBOX")[b"EXISTS"] == 0


def test_append_from_outside_the_server_thread(servers: DemoServers) -> None:
    uid = servers.imap.append(HELPER, crlf(mail("direct", "<direct@localhost>")), "Sent")
    assert uid == 101
    with pytest.raises(DemoServerError, match="no demo IMAP user"):
        servers.imap.append("nobody@localhost", b"Subject: x\r\n\r\nx\r\n")


def test_start_and_stop_are_quick_and_leave_nothing_behind(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    threads_before = set(threading.enumerate())
    began = time.perf_counter()
    context = demo_servers(USERS)
    running = context.__enter__()
    started = time.perf_counter()
    # A client in IDLE and an SMTP session half-way through must not hold the stop up.
    client = IMAPClient(running.imap_host, port=running.imap_port, ssl=False, timeout=5)
    client.login(OWNER, USERS[OWNER])
    client.select_folder("INBOX")
    client.idle()
    smtp = smtplib.SMTP(running.smtp_host, running.smtp_port, timeout=5)
    smtp.mail(HELPER)
    stopping = time.perf_counter()
    context.__exit__(None, None, None)
    stopped = time.perf_counter()

    assert started - began < 5.0
    assert stopped - stopping < 1.0
    assert not port_is_open(running.imap_port)
    assert not port_is_open(running.smtp_port)
    assert set(threading.enumerate()) <= threads_before
    responses = client.idle_check(timeout=2)
    assert responses and responses[0][0] == b"BYE"  # told, not just cut off
    client.shutdown()
    smtp.close()
    assert "Traceback" not in "".join(capfd.readouterr())
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_servers_stop_when_the_block_is_left_by_an_interrupt() -> None:
    threads_before = set(threading.enumerate())
    with pytest.raises(KeyboardInterrupt), demo_servers(USERS) as running:
        raise KeyboardInterrupt
    assert not port_is_open(running.imap_port)
    assert not port_is_open(running.smtp_port)
    assert set(threading.enumerate()) <= threads_before


def test_a_taken_port_gives_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(DemoServerError, match=re.escape(f"127.0.0.1:{port}")):
            EmbeddedImap(USERS, port=port).start()
        with pytest.raises(DemoServerError, match=re.escape(f"127.0.0.1:{port}")):
            EmbeddedSmtp(port=port).start()


def test_stop_is_idempotent_and_servers_can_run_side_by_side() -> None:
    with EmbeddedImap({OWNER: "a"}) as one, EmbeddedImap({OWNER: "b"}) as two:
        assert one.port != two.port
        assert one.running and two.running
    one.stop()
    assert not one.running


def test_a_failure_inside_the_server_thread_reaches_start(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(self: EmbeddedImap, name: str, password: str) -> None:
        raise ValueError("no such thing")

    monkeypatch.setattr(EmbeddedImap, "_create_user", broken)
    threads_before = set(threading.enumerate())
    with pytest.raises(DemoServerError, match="failed to start: no such thing"):
        EmbeddedImap(USERS).start()
    assert set(threading.enumerate()) <= threads_before


def test_start_gives_up_after_its_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never_ready(self: EmbeddedImap, sock: socket.socket, stopping: Event) -> None:
        await stopping.wait()

    monkeypatch.setattr(EmbeddedImap, "_serve", never_ready)
    threads_before = set(threading.enumerate())
    began = time.perf_counter()
    with pytest.raises(DemoServerError, match=r"did not start within 0\.2 s"):
        EmbeddedImap(USERS, start_timeout=0.2).start()
    assert time.perf_counter() - began < 2.0
    assert set(threading.enumerate()) <= threads_before


@pytest.mark.parametrize("make", [lambda: EmbeddedImap(USERS), lambda: EmbeddedSmtp()])
def test_a_client_connecting_as_the_server_stops_causes_no_error(
    make: Callable[[], EmbeddedImap | EmbeddedSmtp], caplog: pytest.LogCaptureFixture
) -> None:
    # asyncio logs "Error on transport creation" if a connection is being accepted while the
    # port closes or its accept task is cancelled; the stop sequence avoids both.
    for _ in range(10):
        server = make()
        server.start()
        with socket.create_connection((server.host, server.port), timeout=1):
            pass
        server.stop()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
