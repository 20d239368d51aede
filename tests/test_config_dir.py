"""``--config-dir DIR``: several assistants (two mailboxes on one Dovecot, one SMTP sink) from
one folder of configs, end to end.

- ``poll --once --config-dir``: each assistant reads its own mailbox and both send their
  receipts; a broken third file is named with its path and line and skipped; one assistant's
  IMAP server down fails that one alone; exit 0 with a summary line;
- ``status --config-dir [--json]``: a section (an object key) per file;
- two files on one state: the later one is refused, saying why;
- ``run --config-dir``: both served in one process; SIGHUP with a new file starts it, a
  removed file stops; SIGTERM stops all promptly.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailhelper.cli.main import main
from tests.rig.assistant import REPO, RigAssistant
from tests.rig.dovecot import DovecotServer
from tests.rig.smtpsink import SmtpSink
from tests.test_lifecycle import at

_USERS = itertools.count(1)
BROKEN = "timezone: UTC\nowners:\n  - name: Sam\n    email: [sam@example.com\n"


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def two(dovecot: DovecotServer, smtp_sink: SmtpSink,
        tmp_path: Path) -> Callable[[str], RigAssistant]:
    """``two(name)``: an assistant with a mailbox of its own on the rig's Dovecot, all
    sending to the one sink, its config written to ``tmp_path/configs/NAME.yaml``."""
    configs = tmp_path / "configs"
    configs.mkdir()

    def make(name: str) -> RigAssistant:
        account = dovecot.account(dovecot.add_user(f"helper-{name}{next(_USERS)}@example.com"))
        workdir = tmp_path / name
        workdir.mkdir()
        rig = RigAssistant(dovecot, account, smtp_sink, workdir)
        rig.configure({"imap": {"password_file": str(workdir / "imap-password")}})
        (configs / f"{name}.yaml").write_text(rig.config_path.read_text())
        return rig
    return make


def _from(messages: list[EmailMessage]) -> list[str]:
    return sorted(m["From"].addresses[0].addr_spec for m in messages)


def test_one_poll_serves_every_assistant_and_names_a_broken_file(
    two: Callable[[str], RigAssistant], smtp_sink: SmtpSink, tmp_path: Path,
) -> None:
    a, b = two("a"), two("b")
    configs = tmp_path / "configs"
    (configs / "c.yaml").write_text(BROKEN)
    (configs / "notes.txt").write_text("not a config")
    a.ask(subject="Intro to Acme?")
    b.ask(subject="Lunch next week?")

    code, _, err = _cli("poll", "--once", "--now", at("2026-12-07 09:10"),
                        "--config-dir", str(configs))
    assert code == 0, err
    assert _from(smtp_sink.messages()) == sorted([a.address, b.address])
    assert f"c.yaml is skipped: {configs / 'c.yaml'}:5: YAML syntax error" in err  # path, line
    assert "2 of 2 assistant(s) polled; skipped (bad file): c.yaml" in err
    assert a.state.exists() and b.state.exists()  # each its own state file

    code, out, err = _cli("status", "--json", "--config-dir", str(configs))
    assert code == 0, err
    shown = json.loads(out)
    assert list(shown) == ["a.yaml", "b.yaml"]
    assert [t["subject"] for t in shown["a.yaml"]["threads"]] == ["Intro to Acme?"]
    assert [t["subject"] for t in shown["b.yaml"]["threads"]] == ["Lunch next week?"]
    code, out, _ = _cli("status", "--config-dir", str(configs))
    assert code == 0
    assert f"== a.yaml ({a.address}) ==" in out and f"== b.yaml ({b.address}) ==" in out
    assert "Intro to Acme?" in out and "Lunch next week?" in out and "c.yaml: skipped" in out


def test_an_assistant_whose_server_is_down_fails_alone(
    two: Callable[[str], RigAssistant], smtp_sink: SmtpSink, tmp_path: Path,
) -> None:
    a, b = two("a"), two("b")
    configs = tmp_path / "configs"
    a.configure({"imap": {"port": 1, "timeout": 2}})  # nothing listens there
    (configs / "a.yaml").write_text(a.config_path.read_text())
    b.ask()
    code, _, err = _cli("poll", "--once", "--now", at("2026-12-07 09:10"),
                        "--config-dir", str(configs))
    assert code == 0, err
    assert _from(smtp_sink.messages()) == [b.address]
    assert "a.yaml: " in err and "1 of 2 assistant(s) polled; failed: a.yaml" in err

    (configs / "b.yaml").unlink()
    code, _, err = _cli("poll", "--once", "--now", at("2026-12-07 09:20"),
                        "--config-dir", str(configs))
    assert code == 3, err  # none ran: the failure's own code


def test_two_files_on_one_state_the_later_is_refused(
    two: Callable[[str], RigAssistant], tmp_path: Path,
) -> None:
    a, b = two("a"), two("b")
    configs = tmp_path / "configs"
    b.configure({"state": str(a.state)})
    (configs / "b.yaml").write_text(b.config_path.read_text())
    code, _, err = _cli("poll", "--once", "--now", at("2026-12-07 09:10"),
                        "--config-dir", str(configs))
    assert code == 0, err
    assert "b.yaml: state: " in err and "is a.yaml's state too" in err
    assert "1 of 1 assistant(s) polled; skipped (bad file): b.yaml" in err


@pytest.mark.parametrize("words", [["--config", "x.yaml"], ["--ics"]])
def test_config_dir_excludes_config_and_ics(words: list[str], tmp_path: Path) -> None:
    code, _, err = _cli("status", "--config-dir", str(tmp_path), *words)
    assert code == 2 and ("exclude each other" in err or "shows one assistant" in err)


def test_an_empty_folder_is_a_config_error(tmp_path: Path) -> None:
    code, _, err = _cli("poll", "--once", "--config-dir", str(tmp_path))
    assert code == 2 and "has no *.yaml file" in err


def _wait(check: Callable[[], bool], what: str, log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout} s; the log:\n{log.read_text()}")
        time.sleep(0.05)


def test_run_serves_the_folder_and_sighup_starts_a_new_file(
    two: Callable[[str], RigAssistant], smtp_sink: SmtpSink, tmp_path: Path,
) -> None:
    a = two("a")
    configs = tmp_path / "configs"
    (configs / "c.yaml").write_text(BROKEN)
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mailhelper.cli", "run", "--config-dir", str(configs),
             "--verbose"], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            _wait(lambda: "IDLE: new mail is seen at once" in log.read_text(), "IMAP", log)
            assert "c.yaml is skipped" in log.read_text()
            a.ask()
            _wait(lambda: len(smtp_sink.messages()) == 1, "receipt from a", log)

            b = two("b")  # a new file in the folder
            process.send_signal(signal.SIGHUP)
            _wait(lambda: "b.yaml: running for" in log.read_text(), "b started", log)
            b.ask(subject="Lunch next week?")
            _wait(lambda: len(smtp_sink.messages()) == 2, "receipt from b", log)
            assert _from(smtp_sink.messages()) == sorted([a.address, b.address])

            (configs / "a.yaml").unlink()
            process.send_signal(signal.SIGHUP)
            _wait(lambda: "a.yaml: its file is gone" in log.read_text(), "a stopped", log)

            config_b = configs / "b.yaml"
            config_b.write_text(config_b.read_text() + "poll_interval: 10 minutes\n")
            process.send_signal(signal.SIGHUP)
            _wait(lambda: log.read_text().count("b.yaml: running for") == 2, "b restarted", log)
            assert "b.yaml changed; restarting that assistant" in log.read_text()
            config_b.write_text(config_b.read_text() + "poll_interval: soon\n")
            process.send_signal(signal.SIGHUP)
            _wait(lambda: "b.yaml is refused and its old config stays in use" in log.read_text(),
                  "b's bad file refused", log)
            b.ask(subject="Slides?")  # still served, with the config it had
            _wait(lambda: len(smtp_sink.messages()) == 3, "receipt from b after", log)

            began = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = process.wait(10)
            took = time.monotonic() - began
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
    assert code == 0, log.read_text()
    assert took < 5, f"SIGTERM took {took:.1f} s"
    text = log.read_text()
    assert text.rstrip().endswith("stopped")
    # each assistant's lines name its file: many assistants share one log
    assert "INFO a.yaml: sent receipt" in text and "INFO b.yaml: sent receipt" in text


def test_status_shows_the_others_when_one_state_cannot_be_read(
    two: Callable[[str], RigAssistant], tmp_path: Path,
) -> None:
    a, b = two("a"), two("b")
    a.ask()
    assert _cli("poll", "--once", "--now", at("2026-12-07 09:10"),
                "--config-dir", str(tmp_path / "configs"))[0] == 0
    for suffix in ("-wal", "-shm"):  # else SQLite reads its pages back from the log
        Path(f"{b.state}{suffix}").unlink(missing_ok=True)
    b.state.write_bytes(b"not a database, but not empty either" * 100)
    code, out, err = _cli("status", "--json", "--config-dir", str(tmp_path / "configs"))
    assert code == 0, err
    assert list(json.loads(out)) == ["a.yaml"] and "b.yaml: " in err


def test_run_with_no_usable_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(BROKEN)
    code, _, err = _cli("run", "--config-dir", str(tmp_path))
    assert code == 2
    assert "c.yaml is skipped" in err and "no usable config, nothing to run" in err


def test_a_dry_run_heads_each_assistants_lines_with_its_file(
    two: Callable[[str], RigAssistant], smtp_sink: SmtpSink, tmp_path: Path,
) -> None:
    a, b = two("a"), two("b")
    a.ask()
    code, out, err = _cli("poll", "--once", "--dry-run", "--now", at("2026-12-07 09:10"),
                          "--config-dir", str(tmp_path / "configs"))
    assert code == 0, err
    assert out.index(f"== a.yaml ({a.address}) ==") < out.index("receipt")
    assert out.index("receipt") < out.index(f"== b.yaml ({b.address}) ==")
    assert smtp_sink.messages() == []
