"""Reading passwords and tokens: each source, each failure, and the secret never shown."""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path

import pytest

from mailhelper.cli.config import parse_settings
from mailhelper.mail import secrets
from mailhelper.model.errors import SecretError
from mailhelper.model.settings import Secret

PASSWORD = "s3cret-Pa55word"


def python_cmd(code: str) -> str:
    """A command line running ``code`` with this interpreter, quoted for shlex."""
    return shlex.join([sys.executable, "-c", code])


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def assert_not_leaked(error: BaseException | None, logs: pytest.LogCaptureFixture) -> None:
    if error is not None:
        assert PASSWORD not in str(error) and PASSWORD not in repr(error)
    assert PASSWORD not in logs.text


# --- environment variable ---------------------------------------------------------------------


def test_env_variable() -> None:
    secret = Secret(env="IMAP_PW")
    assert secrets.resolve(secret, "imap", environ={"IMAP_PW": PASSWORD}) == PASSWORD


def test_env_variable_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MH_TEST_PW", PASSWORD)
    assert secrets.resolve(Secret(env="MH_TEST_PW"), "smtp") == PASSWORD


def test_missing_env_variable_says_which_to_set() -> None:
    with pytest.raises(SecretError) as caught:
        secrets.resolve(Secret(env="IMAP_PW"), "imap", environ={})
    assert "imap" in str(caught.value)
    assert "IMAP_PW is not set" in str(caught.value)


def test_empty_env_variable_is_an_error() -> None:
    with pytest.raises(SecretError, match="IMAP_PW is empty"):
        secrets.resolve(Secret(env="IMAP_PW"), "imap", environ={"IMAP_PW": ""})


def test_nothing_configured() -> None:
    with pytest.raises(SecretError, match="no password configured"):
        secrets.resolve(Secret(), "smtp", environ={})


# --- file -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (PASSWORD + "\n", PASSWORD),
        (PASSWORD + "\r\n", PASSWORD),
        (PASSWORD, PASSWORD),
        # Only one newline goes; other whitespace may belong to the password.
        (PASSWORD + "\n\n", PASSWORD + "\n"),
        (" " + PASSWORD + " \n", " " + PASSWORD + " "),
    ],
)
def test_file_strips_one_trailing_newline(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "pw"
    path.write_bytes(content.encode())
    path.chmod(0o600)
    assert secrets.resolve(Secret(file=path), "imap") == expected


def test_private_file_gives_no_warning(tmp_path: Path, all_logs: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "pw"
    path.write_text(PASSWORD)
    path.chmod(0o600)
    secrets.resolve(Secret(file=path), "imap")
    assert not [r for r in all_logs.records if r.levelno >= logging.WARNING]


def test_file_readable_by_others_is_used_with_a_warning(
    tmp_path: Path, all_logs: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "pw"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o644)
    assert secrets.resolve(Secret(file=path), "imap") == PASSWORD
    warnings = [r.getMessage() for r in all_logs.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(path) in warnings[0] and "chmod 600" in warnings[0]
    assert_not_leaked(None, all_logs)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SecretError) as caught:
        secrets.resolve(Secret(file=tmp_path / "nope"), "smtp")
    assert "smtp" in str(caught.value) and str(tmp_path / "nope") in str(caught.value)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("\n")
    path.chmod(0o600)
    with pytest.raises(SecretError, match="is empty"):
        secrets.resolve(Secret(file=path), "imap")


def test_binary_file_error_does_not_show_content(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_bytes(b"\xff\xfe" + PASSWORD.encode())
    path.chmod(0o600)
    with pytest.raises(SecretError, match="not UTF-8") as caught:
        secrets.resolve(Secret(file=path), "imap")
    assert PASSWORD not in str(caught.value)


# --- command ----------------------------------------------------------------------------------


def test_command_output_is_stripped() -> None:
    cmd = python_cmd(f"print('  {PASSWORD}  ')")
    assert secrets.resolve(Secret(cmd=cmd), "imap") == PASSWORD


def test_command_runs_without_a_shell() -> None:
    # A shell would expand $HOME and run the second command; without one both are plain words.
    cmd = python_cmd("import sys; print(' '.join(sys.argv[1:]))") + " '$HOME' ';' echo hi"
    assert secrets.resolve(Secret(cmd=cmd), "imap") == "$HOME ; echo hi"


def test_failing_command_is_named_with_its_exit_status() -> None:
    cmd = python_cmd("import sys; sys.exit(3)")
    with pytest.raises(SecretError) as caught:
        secrets.resolve(Secret(cmd=cmd), "imap")
    message = str(caught.value)
    assert message.startswith("imap: password_cmd: ")
    assert sys.executable in message and "exit status 3" in message


def test_failing_command_shows_neither_stdout_nor_stderr(
    tmp_path: Path, all_logs: pytest.LogCaptureFixture
) -> None:
    script = tmp_path / "leaky.py"
    script.write_text(
        f"import sys\nprint('{PASSWORD}')\nprint('{PASSWORD}', file=sys.stderr)\nsys.exit(1)\n"
    )
    cmd = shlex.join([sys.executable, str(script)])
    with pytest.raises(SecretError) as caught:
        secrets.resolve(Secret(cmd=cmd), "smtp")
    assert "exit status 1" in str(caught.value)
    assert_not_leaked(caught.value, all_logs)


def test_command_not_found() -> None:
    with pytest.raises(SecretError, match="command not found: no-such-mailhelper-command"):
        secrets.resolve(Secret(cmd="no-such-mailhelper-command --show"), "imap")


def test_command_printing_nothing() -> None:
    with pytest.raises(SecretError, match="printed nothing"):
        secrets.resolve(Secret(cmd=python_cmd("print()")), "imap")


def test_command_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "COMMAND_TIMEOUT", 0.5)
    with pytest.raises(SecretError, match="did not finish within"):
        secrets.resolve(Secret(cmd=python_cmd("import time; time.sleep(30)")), "imap")


def test_command_does_not_wait_for_input() -> None:
    # stdin is closed: a command that reads a password from the terminal gets EOF at once.
    cmd = python_cmd("import sys; data = sys.stdin.read(); print(data or 'no input')")
    assert secrets.resolve(Secret(cmd=cmd), "imap") == "no input"


def test_unbalanced_quotes() -> None:
    with pytest.raises(SecretError, match="cannot split"):
        secrets.resolve(Secret(cmd="pass show 'mail"), "imap")


# --- OAuth2 -----------------------------------------------------------------------------------


def test_oauth2_token() -> None:
    assert secrets.oauth2_token(python_cmd("print('ya29.token')")) == "ya29.token"


def test_oauth2_token_failure_hides_output(all_logs: pytest.LogCaptureFixture) -> None:
    # The command prints the password reversed back, so the command line itself (which the
    # error names on purpose) does not contain it; only the output does.
    script_code = f"import sys; sys.stdout.write('{PASSWORD[::-1]}'[::-1]); sys.exit(2)"
    with pytest.raises(SecretError) as caught:
        secrets.oauth2_token(python_cmd(script_code))
    assert "oauth2_token_cmd" in str(caught.value) and "exit status 2" in str(caught.value)
    assert_not_leaked(caught.value, all_logs)


# --- never in a repr --------------------------------------------------------------------------


def test_settings_repr_holds_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MH_TEST_IMAP_PW", PASSWORD)
    settings = parse_settings(
        "owners: [sam@example.com]\nassistant: helper@example.com\n"
        "imap: {host: imap.example.com, username: helper, password_env: MH_TEST_IMAP_PW}\n"
        "smtp: {host: smtp.example.com}\n",
        "config.yaml",
        environ={"HOME": "/home/sam"},
    )
    assert secrets.resolve(settings.imap.password, "imap") == PASSWORD
    assert PASSWORD not in repr(settings)
    assert "MH_TEST_IMAP_PW" in repr(settings.imap.password)
