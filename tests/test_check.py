"""`mailhelper check` against the rig: a verdict per step, the documented exit codes, clear
words for each way a setup goes wrong, and nothing sent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.rig import SelfSignedCert
from tests.rig.assistant import RigAssistant
from tests.rig.smtpsink import SmtpSink

SMTP_USER = "helper@example.com"


@pytest.fixture
def rig(rig_assistant: RigAssistant, smtp_sink_factory: Callable[..., SmtpSink],
        rig_cert: SelfSignedCert) -> RigAssistant:
    """The rig's assistant with SMTP as in real life: STARTTLS, then AUTH with a password."""
    sink = smtp_sink_factory(credentials={SMTP_USER: "sink-password"}, auth_require_tls=True)
    rig_assistant.sink = sink
    (rig_assistant.workdir / "smtp-password").write_text("sink-password\n")
    (rig_assistant.workdir / "smtp-password").chmod(0o600)
    rig_assistant.configure({"smtp": {
        "port": sink.port, "security": "starttls", "username": SMTP_USER,
        "password_file": "smtp-password", "ca_file": str(rig_cert.ca_file),
    }})  # fmt: skip
    return rig_assistant


def check(rig: RigAssistant) -> tuple[int, list[str], str]:
    code, out, err = rig.cli("check")
    for secret in (rig.account.password, "sink-password"):
        assert secret not in out + err, "a password was printed"
    return code, out.splitlines(), err


def verdict(lines: list[str], fragment: str) -> str:
    """The verdict (OK, INFO, FAIL) of the one line containing ``fragment``."""
    found = [line for line in lines if fragment in line]
    assert len(found) == 1, f"{fragment!r} in {lines}"
    return found[0].split()[0]


def test_a_working_setup_passes_every_step_and_sends_nothing(rig: RigAssistant) -> None:
    code, lines, _ = check(rig)
    assert code == 0, "\n".join(lines)
    imap, smtp = f"IMAP 127.0.0.1:{rig.account.port}", f"SMTP 127.0.0.1:{rig.sink.port}"
    assert verdict(lines, f"config {rig.config_path}: valid") == "OK"
    assert verdict(lines, f"{imap}: connected") == "OK"
    assert verdict(lines, f"{imap}: STARTTLS, certificate verified") == "OK"
    assert verdict(lines, f"{imap}: logged in as {rig.account.username} (password)") == "OK"
    assert verdict(lines, "IMAP folder INBOX: 0 message(s)") == "OK"
    assert verdict(lines, "IMAP error_folder mailhelper/errors: missing") == "INFO"
    for extension in ("IDLE", "MOVE", "UIDPLUS", "CONDSTORE"):
        assert verdict(lines, f"IMAP {extension}: offered") == "OK"
    assert verdict(lines, f"{smtp}: connected (plain, STARTTLS next), EHLO answered") == "OK"
    assert verdict(lines, f"{smtp}: STARTTLS, certificate verified") == "OK"
    assert verdict(lines, f"{smtp}: AUTH as {SMTP_USER} (password)") == "OK"
    assert lines[-1] == "All checks passed; nothing was sent."
    assert not any(line.startswith("FAIL") for line in lines)
    assert rig.sent() == []
    assert rig.sink.outcomes == []  # not even a MAIL FROM


def test_a_wrong_imap_password_fails_the_login_step_with_exit_3(rig: RigAssistant) -> None:
    (rig.workdir / "imap-password").write_text("Wrong-Distinctive-Pw-3318\n")
    code, lines, _ = check(rig)
    assert code == 3
    failed = [line for line in lines if line.startswith("FAIL")]
    assert len(failed) == 1, lines
    assert f"login refused for {rig.account.username}" in failed[0]
    assert "check the password" in failed[0]
    assert "Wrong-Distinctive-Pw-3318" not in "\n".join(lines)
    assert verdict(lines, "AUTH as") == "OK"  # SMTP is still checked, and fine
    assert lines[-1].startswith("Some checks failed")


def test_a_closed_port_says_connection_refused_with_exit_3(rig: RigAssistant) -> None:
    rig.configure({"imap": {"port": 1}})
    code, lines, _ = check(rig)
    assert code == 3
    assert verdict(lines, "IMAP 127.0.0.1:1: cannot connect: connection refused") == "FAIL"
    assert "is the server running, and is the port right?" in "\n".join(lines)


@pytest.mark.parametrize("server", ["imap", "smtp"])
def test_a_certificate_that_does_not_match_the_ca_file_fails_tls_with_exit_3(
    rig: RigAssistant, server: str, tmp_path: Path,
) -> None:
    other = SelfSignedCert.create(tmp_path / "other-ca")
    rig.configure({server: {"ca_file": str(other.ca_file)}})
    code, lines, _ = check(rig)
    assert code == 3
    [failed] = [line for line in lines if line.startswith("FAIL")]
    assert f"{server.upper()} 127.0.0.1:" in failed
    assert "STARTTLS failed: the server's certificate is not trusted" in failed
    assert f"set {server}.ca_file" in failed


def test_implicit_tls_with_the_wrong_ca_fails_at_connect(rig: RigAssistant,
                                                         tmp_path: Path) -> None:
    other = SelfSignedCert.create(tmp_path / "other-ca")
    rig.configure({"imap": {"port": rig.account.tls_port, "security": "ssl",
                            "ca_file": str(other.ca_file)}})
    code, lines, _ = check(rig)
    assert code == 3
    assert verdict(lines, "TLS failed: the server's certificate is not trusted") == "FAIL"


def test_implicit_tls_with_the_right_ca_passes(rig: RigAssistant) -> None:
    rig.configure({"imap": {"port": rig.account.tls_port, "security": "ssl"}})
    code, lines, _ = check(rig)
    assert code == 0, lines
    assert verdict(lines, f"IMAP 127.0.0.1:{rig.account.tls_port}: connected (TLS, "
                          "certificate verified)") == "OK"


def test_smtp_refusing_auth_fails_with_the_servers_words_and_exit_3(rig: RigAssistant) -> None:
    (rig.workdir / "smtp-password").write_text("not-the-sink-password\n")
    code, lines, _ = check(rig)
    assert code == 3
    [failed] = [line for line in lines if line.startswith("FAIL")]
    assert f"SMTP 127.0.0.1:{rig.sink.port}: login refused for {SMTP_USER}" in failed
    assert "535" in failed
    assert "not-the-sink-password" not in "\n".join(lines)


def test_smtp_without_starttls_is_a_clear_failure(
    rig: RigAssistant, smtp_sink_factory: Callable[..., SmtpSink],
) -> None:
    plain = smtp_sink_factory(cert=None, credentials={SMTP_USER: "sink-password"})
    rig.configure({"smtp": {"port": plain.port}})
    code, lines, _ = check(rig)
    assert code == 3
    assert verdict(lines, "the server does not offer STARTTLS") == "FAIL"


def test_an_empty_password_file_is_a_config_problem_exit_2(rig: RigAssistant) -> None:
    (rig.workdir / "imap-password").write_text("")
    code, lines, _ = check(rig)
    assert code == 2
    assert verdict(lines, "imap: password_file") == "FAIL"
    assert "is empty" in "\n".join(lines)
    assert verdict(lines, "AUTH as") == "OK"


def test_a_broken_config_fails_the_first_step_and_contacts_no_server(rig: RigAssistant) -> None:
    rig.config_path.write_text(rig.config_path.read_text() + "poll_interval: sometimes\n")
    code, lines, _ = check(rig)
    assert code == 2
    assert lines[0].startswith("FAIL  config: ")
    assert "poll_interval" in lines[0]
    assert lines[-1] == "The config must be fixed first; no server was contacted."
    assert not any("IMAP" in line or "SMTP" in line for line in lines)


def test_a_missing_password_is_reported_even_when_no_server_answers(rig: RigAssistant) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    rig.configure({"imap": {"port": closed, "password_file": None,
                            "password_env": "MAILHELPER_TEST_UNSET_PASSWORD"}})
    code, lines, _ = check(rig)
    assert code == 2, lines
    assert verdict(lines, "MAILHELPER_TEST_UNSET_PASSWORD") == "FAIL"
    assert verdict(lines, "connection refused") == "FAIL"


def test_ssl_on_a_plain_imap_port_says_use_starttls(rig: RigAssistant) -> None:
    rig.configure({"imap": {"security": "ssl"}})  # the plain port, which speaks STARTTLS
    code, lines, _ = check(rig)
    assert code == 3
    [failed] = [line for line in lines if line.startswith("FAIL")]
    assert f"IMAP 127.0.0.1:{rig.account.port}: TLS failed: port {rig.account.port} speaks " \
           "plain IMAP, not TLS: use security: starttls" in failed
    assert "WRONG_VERSION_NUMBER" not in "\n".join(lines)


def test_starttls_on_an_implicit_tls_imap_port_says_use_ssl_without_a_long_wait(
    rig: RigAssistant,
) -> None:
    # The server waits for a TLS hello, the client for a greeting; the greeting's wait is
    # bounded by the timeout (here 2 s), never the minute of a default read.
    rig.configure({"imap": {"port": rig.account.tls_port, "security": "starttls",
                            "timeout": "2s"}})
    code, lines, _ = check(rig)
    assert code == 3
    [failed] = [line for line in lines if line.startswith("FAIL")]
    assert f"no greeting within 2 s: port {rig.account.tls_port} may expect TLS from the " \
           "first byte; use security: ssl" in failed


def test_ssl_on_a_plain_smtp_port_says_use_starttls(rig: RigAssistant) -> None:
    rig.configure({"smtp": {"security": "ssl"}})
    code, lines, _ = check(rig)
    assert code == 3
    [failed] = [line for line in lines if line.startswith("FAIL")]
    assert f"port {rig.sink.port} speaks plain SMTP, not TLS: use security: starttls" in failed


def test_starttls_on_an_implicit_tls_smtp_port_says_use_ssl(
    rig: RigAssistant, smtp_sink_factory: Callable[..., SmtpSink], rig_cert: SelfSignedCert,
) -> None:
    implicit = smtp_sink_factory(cert=rig_cert, implicit_tls=True,
                                 credentials={SMTP_USER: "sink-password"})
    rig.configure({"smtp": {"port": implicit.port, "timeout": "2s"}})
    code, lines, _ = check(rig)
    assert code == 3
    [failed] = [line for line in lines if line.startswith("FAIL")]
    assert f"no greeting within 2 s: port {implicit.port} may expect TLS from the first " \
           "byte; use security: ssl (usually port 465)" in failed
