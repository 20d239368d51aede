"""XOAUTH2 for both servers: ``auth: oauth2`` with ``oauth2_token_cmd`` against the rig's Dovecot
(its oauth2 passdb asks the rig's token endpoint) and the SMTP sink's AUTH XOAUTH2.

A full poll runs with no password configured anywhere, so every login is by token; a wrong or
revoked token is refused with words that point at the token command, and no token is printed.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable

import pytest

from mailhelper.mail.connect import xoauth2_string
from tests.rig import SelfSignedCert
from tests.rig.assistant import OWNER, RigAssistant
from tests.rig.smtpsink import SmtpSink

NOW = "2026-12-07T09:00:00+00:00"


def token_cmd(rig: RigAssistant, name: str, token: str) -> str:
    """A command that prints ``token``, as ``oama access ...`` would print a fresh one."""
    path = rig.workdir / f"{name}.token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    return f"{shlex.quote(sys.executable)} -c \"print(open('{path}').read().strip())\""


@pytest.fixture
def oauth_rig(rig_assistant: RigAssistant, smtp_sink_factory: Callable[..., SmtpSink],
              rig_cert: SelfSignedCert) -> RigAssistant:
    """The rig's assistant logging in by XOAUTH2 to both servers; no password anywhere."""
    rig = rig_assistant
    smtp_token = "sink-token-5521"
    sink = smtp_sink_factory(credentials=None, oauth_tokens={rig.address: smtp_token},
                             auth_required=True, auth_require_tls=True)
    rig.sink = sink
    rig.smtp_token = smtp_token  # type: ignore[attr-defined]
    imap = {k: v for k, v in rig.config["imap"].items() if k != "password_file"}
    imap.update(auth="oauth2", oauth2_token_cmd=token_cmd(rig, "imap", rig.account.oauth_token))
    rig.config["imap"] = imap
    rig.configure({"smtp": {
        "port": sink.port, "security": "starttls", "ca_file": str(rig_cert.ca_file),
        "username": rig.address, "auth": "oauth2",
        "oauth2_token_cmd": token_cmd(rig, "smtp", smtp_token),
    }})  # fmt: skip
    (rig.workdir / "imap-password").unlink()
    return rig


def secrets_of(rig: RigAssistant) -> list[str]:
    return [rig.account.oauth_token, rig.smtp_token, rig.account.password]  # type: ignore[attr-defined]


def test_the_xoauth2_string_is_the_documented_one() -> None:
    token = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
    assert xoauth2_string("someuser@example.com", token) == (
        f"user=someuser@example.com\x01auth=Bearer {token}\x01\x01")


def test_a_full_poll_over_xoauth2_for_imap_and_smtp(oauth_rig: RigAssistant) -> None:
    rig = oauth_rig
    assert "password_file" not in rig.config["imap"] and "password_file" not in rig.config["smtp"]
    rig.ask(subject="Intro over OAuth")
    code, out, err = rig.cli("poll", "--once", "--now", NOW, "--verbose")
    assert code == 0, out + err
    [receipt] = rig.sent()
    assert "Intro over OAuth" in str(receipt["Subject"])
    assert receipt["To"].addresses[0].addr_spec == OWNER
    [envelope] = rig.sink.envelopes()
    assert envelope.auth_user == rig.address and envelope.tls
    # IMAP did its part too, logged in by token: the message is flagged and the receipt filed.
    assert [m["Message-ID"] for m in rig.folder("Sent")] == [receipt["Message-ID"]]
    assert b"$MailhelperHandled" in rig.flags()[0]
    for secret in secrets_of(rig):
        assert secret not in out + err


def test_check_reports_both_xoauth2_logins(oauth_rig: RigAssistant) -> None:
    code, out, err = oauth_rig.cli("check")
    assert code == 0, out + err
    assert f"logged in as {oauth_rig.address} (XOAUTH2 token)" in out
    assert f"AUTH as {oauth_rig.address} (XOAUTH2 token)" in out
    for secret in secrets_of(oauth_rig):
        assert secret not in out + err


def test_a_wrong_imap_token_is_refused_with_a_clear_message(oauth_rig: RigAssistant) -> None:
    rig = oauth_rig
    rig.configure({"imap": {"oauth2_token_cmd": token_cmd(rig, "imap", "expired-token-0042")}})
    rig.ask()
    code, out, err = rig.cli("poll", "--once", "--now", NOW)
    assert code == 3
    assert f"IMAP 127.0.0.1:{rig.account.port}: XOAUTH2 login refused for {rig.address}" in err
    assert "the token from oauth2_token_cmd was not accepted" in err
    assert "expired-token-0042" not in out + err
    assert rig.sent() == []


def test_a_revoked_imap_token_is_refused(oauth_rig: RigAssistant) -> None:
    oauth_rig.dovecot.revoke_token(oauth_rig.account.oauth_token)
    code, out, _ = oauth_rig.cli("check")
    assert code == 3
    [failed] = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert "XOAUTH2 login refused" in failed and "IMAP" in failed


def test_a_wrong_smtp_token_is_refused_and_the_mail_waits(oauth_rig: RigAssistant) -> None:
    rig = oauth_rig
    rig.configure({"smtp": {"oauth2_token_cmd": token_cmd(rig, "smtp", "stale-token-7730")}})
    code, out, _ = rig.cli("check")
    assert code == 3
    [failed] = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert f"SMTP 127.0.0.1:{rig.sink.port}: XOAUTH2 login refused for {rig.address}" in failed
    assert "535" in failed and "stale-token-7730" not in out

    rig.ask(subject="Waits for a good token")
    code, out, err = rig.cli("poll", "--once", "--now", NOW)
    assert code == 0, out + err  # reading mail worked; sending is retried later
    assert "XOAUTH2 login refused" in err
    assert rig.sent() == []
    rig.configure({"smtp": {"oauth2_token_cmd": token_cmd(rig, "smtp", rig.smtp_token)}})  # type: ignore[attr-defined]
    rig.poll("2026-12-07T10:00:00+00:00")
    [receipt] = rig.sent()
    assert "Waits for a good token" in str(receipt["Subject"])


def test_a_failing_token_command_is_a_config_problem(oauth_rig: RigAssistant) -> None:
    oauth_rig.configure({"imap": {"oauth2_token_cmd": f"{shlex.quote(sys.executable)} -c "
                                                      "\"raise SystemExit(7)\""}})
    code, _, err = oauth_rig.cli("poll", "--once", "--now", NOW)
    assert code == 2
    assert "oauth2_token_cmd" in err and "failed with exit status 7" in err
