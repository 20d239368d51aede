"""The rig works: real Dovecot logins and mail, and an SMTP sink that fails on request.

These tests pin what the rest of the suite relies on; when one fails, the rig (or the host's
Dovecot) is broken, not mailhelper.
"""

from __future__ import annotations

import smtplib
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from tests.rig import SelfSignedCert
from tests.rig.dovecot import DovecotServer, ImapAccount
from tests.rig.mailboxes import (
    append,
    connect,
    folders,
    make_message,
    read_folder,
    recreate_folder,
    uidvalidity,
)
from tests.rig.smtpsink import SinkFolder, SmtpSink

REPO_ROOT = Path(__file__).resolve().parents[1]


def _ask(n: int = 1) -> bytes:
    return make_message(
        "Sam Rivera <sam@example.com>",
        "Jane Doe <jane@example.org>",
        f"Intro to Acme? ({n})",
        "Hi Jane,\n\ncould you introduce me to someone at Acme?\n\nSam\n",
        cc="helper@example.com",
        message_id=f"<ask-{n}@example.com>",
        date="Mon, 07 Dec 2026 09:00:00 +0000",  # fixed, so two builds are the same bytes
    )


# -- Dovecot -------------------------------------------------------------------------------


def test_login_plain_starttls_and_tls_verify_the_rig_ca(
    dovecot: DovecotServer, imap_account: ImapAccount
) -> None:
    for tls, starttls in ((False, False), (False, True), (True, False)):
        with connect(dovecot, imap_account, tls=tls, starttls=starttls) as client:
            assert client.select_folder("INBOX")[b"EXISTS"] == 0

    context = ssl.create_default_context(cafile=str(imap_account.ca_file))
    with IMAPClient(imap_account.host, imap_account.tls_port, ssl_context=context) as client:
        client.login(imap_account.username, imap_account.password)

    # Without the rig's CA the certificate must not verify: TLS checks are really on.
    system_trust = ssl.create_default_context()
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(imap_account.host, imap_account.tls_port, ssl_context=system_trust)


def test_xoauth2_and_oauthbearer_accept_the_token_until_revoked(
    dovecot: DovecotServer, imap_account: ImapAccount
) -> None:
    with IMAPClient(imap_account.host, imap_account.port, ssl=False) as client:
        client.oauth2_login(imap_account.username, imap_account.oauth_token)
    with IMAPClient(imap_account.host, imap_account.port, ssl=False) as client:
        client.oauthbearer_login(imap_account.username, imap_account.oauth_token)

    dovecot.revoke_token(imap_account.oauth_token)
    with (
        IMAPClient(imap_account.host, imap_account.port, ssl=False) as client,
        pytest.raises(LoginError, match="AUTHENTICATIONFAILED"),
    ):
        client.oauth2_login(imap_account.username, imap_account.oauth_token)


def test_append_then_read_back_bytes_flags_and_uid(
    dovecot: DovecotServer, imap_account: ImapAccount
) -> None:
    first, second = _ask(1), _ask(2)
    uid1 = append(dovecot, imap_account, first)
    uid2 = append(dovecot, imap_account, second, flags=[b"\\Seen"])

    listed = read_folder(dovecot, imap_account, "INBOX")

    assert [(uid, raw) for uid, _, raw in listed] == [(uid1, first), (uid2, second)]
    assert b"\\Seen" not in listed[0][1]
    assert b"\\Seen" in listed[1][1]
    # read_folder peeks: reading did not mark the first message seen.
    assert b"\\Seen" not in read_folder(dovecot, imap_account)[0][1]


def test_special_use_folders_and_nested_names(
    dovecot: DovecotServer, imap_account: ImapAccount
) -> None:
    with connect(dovecot, imap_account) as client:
        client.create_folder("mailhelper/errors")
        client.create_folder("Archive/2026.11")  # LAYOUT=fs: '.' is an ordinary character

    found = folders(dovecot, imap_account)

    assert found["Sent"].special_use == b"\\Sent"
    assert found["Trash"].special_use == b"\\Trash"
    assert found["Drafts"].special_use == b"\\Drafts"
    assert {"INBOX", "mailhelper/errors", "Archive/2026.11"} <= found.keys()
    assert found["mailhelper/errors"].delimiter == "/"


def test_each_account_is_isolated(dovecot: DovecotServer, imap_account: ImapAccount) -> None:
    other = dovecot.add_user("someone-else@example.com", "pass: with spaces & colons")
    append(dovecot, imap_account, _ask())

    assert read_folder(dovecot, other, "INBOX") == []
    assert len(read_folder(dovecot, imap_account, "INBOX")) == 1
    with connect(dovecot, other.username):  # the password has ':' and spaces: it still works
        pass
    with IMAPClient(dovecot.host, dovecot.port, ssl=False) as client, pytest.raises(LoginError):
        client.login(other.username, imap_account.password)


def test_a_wrong_password_does_not_slow_later_logins(
    dovecot: DovecotServer, imap_account: ImapAccount
) -> None:
    with IMAPClient(dovecot.host, dovecot.port, ssl=False) as client, pytest.raises(LoginError):
        client.login(imap_account.username, "wrong")  # Dovecot answers this after ~0.5 s

    began = time.monotonic()
    with connect(dovecot, imap_account, tls=False):
        pass
    assert time.monotonic() - began < 0.4, "auth penalty or failure delay is back on"


def test_restart_keeps_mail_and_drops_connected_clients(
    dovecot: DovecotServer, imap_account: ImapAccount
) -> None:
    uid = append(dovecot, imap_account, _ask())
    before = uidvalidity(dovecot, imap_account)
    idle_client = connect(dovecot, imap_account)
    idle_client.select_folder("INBOX")

    elapsed = dovecot.restart()

    assert elapsed < 3.0
    with pytest.raises((IMAPClientError, OSError)):
        idle_client.noop()
    idle_client.shutdown()
    assert [u for u, _, _ in read_folder(dovecot, imap_account)] == [uid]
    assert uidvalidity(dovecot, imap_account) == before


def test_recreate_folder_changes_uidvalidity_and_keeps_messages(
    dovecot: DovecotServer, imap_account: ImapAccount
) -> None:
    with connect(dovecot, imap_account) as client:
        client.create_folder("Projects")
    append(dovecot, imap_account, _ask(1), folder="Projects", flags=[b"\\Seen"])
    append(dovecot, imap_account, _ask(2), folder="Projects")
    append(dovecot, imap_account, _ask(3))
    before = read_folder(dovecot, imap_account, "Projects")

    old, new = recreate_folder(dovecot, imap_account, "Projects")

    assert new > old
    after = read_folder(dovecot, imap_account, "Projects")
    assert [(f, raw) for _, f, raw in after] == [(f, raw) for _, f, raw in before]
    assert [uid for uid, _, _ in after] == [1, 2]  # deleted and created: UIDs start over

    inbox_old, inbox_new = recreate_folder(dovecot, imap_account, "INBOX")
    assert inbox_new > inbox_old
    assert [raw for _, _, raw in read_folder(dovecot, imap_account)] == [_ask(3)]


def test_make_message_is_rfc5322_with_crlf_and_threading_headers() -> None:
    raw = make_message(
        "Jane Doe <jane@example.org>",
        ["sam@example.com", "Helper <helper@example.com>"],
        "Re: Intro to Acme? — sure",
        "Happy to help.\n",
        message_id="<reply-1@example.org>",
        in_reply_to="<ask-1@example.com>",
        references=["<root@example.com>", "<ask-1@example.com>"],
        extra_headers=[("Auto-Submitted", "auto-replied"), ("X-Test", "1")],
    )

    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert parsed["Subject"] == "Re: Intro to Acme? — sure"
    assert parsed["To"] == "sam@example.com, Helper <helper@example.com>"
    assert parsed["Message-ID"] == "<reply-1@example.org>"
    assert parsed["References"] == "<root@example.com> <ask-1@example.com>"
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed["Date"] is not None
    assert parsed.get_content() == "Happy to help.\r\n"  # CRLF throughout, body included


# -- SMTP sink -----------------------------------------------------------------------------


def _send(sink: SmtpSink, raw: bytes, *, login: bool = True, tls: bool = True) -> None:
    with smtplib.SMTP(sink.host, sink.port, timeout=10) as smtp:
        if tls:
            smtp.starttls(context=ssl.create_default_context(cafile=str(sink.ca_file)))
        if login:
            assert sink.username and sink.password
            smtp.login(sink.username, sink.password)
        smtp.sendmail("helper@example.com", ["jane@example.org", "sam@example.com"], raw)


def test_sink_stores_what_smtplib_sent_over_starttls_with_auth(smtp_sink: SmtpSink) -> None:
    raw = _ask()

    _send(smtp_sink, raw)

    [message] = smtp_sink.messages()
    assert message["Message-ID"] == "<ask-1@example.com>"
    assert smtp_sink.raw() == [raw]
    [envelope] = smtp_sink.envelopes()
    assert envelope.mail_from == "helper@example.com"
    assert envelope.rcpt_tos == ("jane@example.org", "sam@example.com")
    assert envelope.auth_user == smtp_sink.username
    assert envelope.tls is True
    smtp_sink.clear()
    assert smtp_sink.messages() == []


def test_fail_next_twice_with_451_then_success(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail_next(2, 451)

    for _ in range(2):
        with pytest.raises(smtplib.SMTPDataError) as refused:
            _send(smtp_sink, _ask())
        assert refused.value.smtp_code == 451
    _send(smtp_sink, _ask())

    assert smtp_sink.outcomes == ["451", "451", "250"]
    assert len(smtp_sink.messages()) == 1


def test_554_is_permanent_and_stores_nothing(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail_next(1, 554, "5.7.1 Spam detected")

    with pytest.raises(smtplib.SMTPDataError) as refused:
        _send(smtp_sink, _ask())

    assert (refused.value.smtp_code, refused.value.smtp_error) == (554, b"5.7.1 Spam detected")
    assert smtp_sink.messages() == []


def test_421_and_rcpt_stage_failures(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail_next(1, 421)
    with pytest.raises(smtplib.SMTPDataError) as refused:
        _send(smtp_sink, _ask())
    assert refused.value.smtp_code == 421

    smtp_sink.fail_next(2, 550, stage="rcpt")  # both recipients of the next message
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        _send(smtp_sink, _ask())
    assert smtp_sink.messages() == []


def test_drop_next_loses_the_reply(smtp_sink: SmtpSink) -> None:
    smtp_sink.drop_next(1)
    smtp_sink.drop_next(1, after_store=True)

    for _ in range(2):
        with pytest.raises(smtplib.SMTPServerDisconnected):
            _send(smtp_sink, _ask())
    _send(smtp_sink, _ask())

    assert smtp_sink.outcomes == ["dropped", "dropped after store", "250"]
    assert len(smtp_sink.messages()) == 2  # the second copy is the retry's duplicate


def test_auth_required_and_implicit_tls(
    smtp_sink_factory: Callable[..., SmtpSink], rig_cert: SelfSignedCert
) -> None:
    strict = smtp_sink_factory(
        credentials={"helper": "pw"}, auth_required=True, auth_require_tls=True
    )
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        _send(strict, _ask(), login=False)
    assert refused.value.smtp_code == 530
    _send(strict, _ask())

    implicit = smtp_sink_factory(credentials={"helper": "pw"}, implicit_tls=True)
    with smtplib.SMTP_SSL(
        implicit.host, implicit.port, context=rig_cert.client_context(), timeout=10
    ) as smtp:
        smtp.login("helper", "pw")
        smtp.sendmail("helper@example.com", ["jane@example.org"], _ask())
    assert implicit.envelopes()[0].tls is True


def test_sink_runs_standalone(tmp_path: Path) -> None:
    directory = tmp_path / "standalone"
    command = [sys.executable, "-m", "tests.rig.smtpsink", "--dir", str(directory), "--port", "0"]
    with subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith("listening on 127.0.0.1:"), line
            port = int(line.rsplit(":", 1)[1])
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                smtp.sendmail("helper@example.com", ["jane@example.org"], _ask())
            [message] = SinkFolder(directory).wait_for(1, timeout=5)
            assert message["Message-ID"] == "<ask-1@example.com>"
        finally:
            process.terminate()
            process.wait(timeout=10)
    assert process.returncode == 0


def test_corpus_dir_is_a_folder(corpus_dir: Path) -> None:
    assert corpus_dir.is_dir()
