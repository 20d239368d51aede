"""The command line as a person meets it: help for every verb, the documented exit codes, usage
errors, ``--now`` in the configured zone, log formats and levels, no password in any output;
and the deployment files (systemd user unit, Containerfile)."""

from __future__ import annotations

import configparser
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mailhelper.cli import main as cli
from mailhelper.model.errors import (
    ConfigError,
    ConnectError,
    MailhelperError,
    SecretError,
    StateLockedError,
)  # fmt: skip
from tests.rig.assistant import REPO, RigAssistant

NOW = "2026-12-07T09:00:00+00:00"
VERBS = ["run", "poll", "status", "explain", "check", "demo", "state"]


def run_main(*argv: str) -> tuple[int, str, str]:
    """``mailhelper ARGV`` in this process, argparse's own exits included."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(argv))
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


# -- help and usage ---------------------------------------------------------------------------
def test_the_parser_has_exactly_the_documented_verbs() -> None:
    parser = cli.build_parser()
    [verbs] = [a for a in parser._actions if a.dest == "verb"]
    assert sorted(verbs.choices) == sorted(VERBS)


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help(verb: str) -> None:
    code, out, _ = run_main(verb, "--help")
    assert code == 0
    assert out.startswith(f"usage: mailhelper {verb}")
    if verb == "state":  # a state as a whole, named on the command line: no config
        code, out, _ = run_main(verb, "copy", "--help")
        assert code == 0 and "SRC" in out and "DEST" in out
        assert "--log-format" in out and "--config" not in out
        return
    assert "--config PATH" in out and "--log-format" in out


def test_top_level_help_lists_verbs_and_exit_codes() -> None:
    code, out, _ = run_main("--help")
    assert code == 0
    for verb in VERBS:
        assert verb in out
    assert "Exit codes: 0 ok, 1 failure, 2 bad config or usage, 3 server unreachable" in out


def test_exit_codes_are_the_documented_ones() -> None:
    documented = dict(re.findall(r"^\s+(\d)\s+(.+)$", cli.__doc__ or "", re.MULTILINE))
    assert sorted(documented) == ["0", "1", "2", "3", "4"]
    assert MailhelperError.exit_code == 1
    assert ConfigError.exit_code == SecretError.exit_code == 2
    assert ConnectError.exit_code == 3
    assert StateLockedError.exit_code == 4
    assert "state file" in documented["4"] and "could not be reached" in documented["3"]


def test_poll_without_once_is_a_usage_error() -> None:
    code, out, err = run_main("poll", "--now", NOW)
    assert code == 2
    assert "the following arguments are required: --once" in err
    assert out == ""


def test_an_unknown_verb_or_no_verb_is_a_usage_error() -> None:
    assert run_main("frobnicate")[0] == 2
    assert "required: COMMAND" in run_main()[2]


def test_verbose_and_quiet_exclude_each_other() -> None:
    code, _, err = run_main("status", "--verbose", "--quiet")
    assert code == 2 and "not allowed with argument" in err


# -- global options: before or after the verb (SPEC "Command line") --------------------------------
GLOBAL_FLAGS = [["-v"], ["--verbose"], ["-q"], ["--quiet"], ["--debug"], ["--log-format", "json"],
                ["--log-format", "text"], ["--config", "some.yaml"]]


@pytest.mark.parametrize("option", GLOBAL_FLAGS, ids=" ".join)
@pytest.mark.parametrize("verb", [["status"], ["poll", "--once"], ["check"], ["run"],
                                  ["explain", "x.eml"]], ids=" ".join)
def test_a_global_option_means_the_same_before_or_after_the_verb(option: list[str],
                                                                 verb: list[str]) -> None:
    before = cli.parse_args(cli.build_parser(), [*option, *verb])
    after = cli.parse_args(cli.build_parser(), [*verb, *option])
    assert vars(before) == vars(after)
    neither = cli.parse_args(cli.build_parser(), verb)
    assert vars(before) != vars(neither) or option == ["--log-format", "text"]


def test_config_before_the_verb_is_read(rig_assistant: RigAssistant) -> None:
    rig_assistant.ask()
    rig_assistant.poll(NOW)
    path = str(rig_assistant.config_path)
    before = run_main("--config", path, "status", "--json")
    assert before[0] == 0 and len(json.loads(before[1])["threads"]) == 1
    assert before == run_main("status", "--json", "--config", path)
    missing = str(rig_assistant.workdir / "missing.yaml")
    gone = run_main("--config", missing, "status")
    assert gone == run_main("status", "--config", missing)
    assert gone[0] == 2 and "missing.yaml" in gone[2]


def test_quiet_and_verbose_before_the_verb(rig_assistant: RigAssistant) -> None:
    rig_assistant.ask()
    path = str(rig_assistant.config_path)
    assert run_main("-q", "--config", path, "poll", "--once", "--now", NOW) == (0, "", "")
    code, _, err = run_main("--verbose", "poll", "--once", "--now", "2026-12-07T09:05:00+00:00",
                            "--config", path)
    assert code == 0 and "DEBUG" in err


def test_log_format_and_debug_before_the_verb(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    missing = str(tmp_path / "missing.yaml")
    code, out, err = run_main("--log-format", "json", "--config", missing, "status")
    assert code == 2 and out == ""
    [entry] = [json.loads(line) for line in err.splitlines()]
    assert entry["level"] == "error" and "missing.yaml" in entry["message"]

    def broken(_args: object) -> int:
        raise RuntimeError("something odd")

    monkeypatch.setattr(cli, "_dispatch", broken)
    with pytest.raises(RuntimeError):
        run_main("--debug", "status")
    assert run_main("status")[0] == 1


@pytest.mark.parametrize(("first", "second", "named"), [
    (["--config", "a.yaml"], ["--config", "b.yaml"],
     "--config is given twice, before the command (a.yaml) and after it (b.yaml)"),
    (["--log-format", "json"], ["--log-format", "text"],
     "--log-format is given twice, before the command (json) and after it (text)"),
    (["-v"], ["-q"], "argument -q/--quiet: not allowed with argument -v/--verbose"),
    (["--quiet"], ["--verbose"], "argument -q/--quiet: not allowed with argument -v/--verbose"),
])
def test_a_global_option_given_on_both_sides_differently_is_a_usage_error(
        first: list[str], second: list[str], named: str) -> None:
    code, out, err = run_main(*first, "status", *second)
    assert code == 2 and out == ""
    assert named in err


def test_a_global_option_given_on_both_sides_alike_is_taken_once() -> None:
    args = cli.parse_args(cli.build_parser(), ["--config", "a.yaml", "-v", "--debug", "status",
                                               "--config", "a.yaml", "-v", "--debug"])
    assert (args.config, args.verbose, args.debug) == ("a.yaml", True, True)


def test_top_level_help_lists_the_global_options_once_and_each_verb_shows_them() -> None:
    code, top, _ = run_main("--help")
    assert code == 0
    for option in ["-v, --verbose", "-q, --quiet", "--debug", "--log-format {text,json}",
                   "--config PATH"]:
        assert len(re.findall(rf"^  {re.escape(option)}", top, re.MULTILINE)) == 1, option
        for verb in ["run", "poll", "status", "explain", "check"]:
            assert re.search(rf"^  {re.escape(option)}", run_main(verb, "--help")[1],
                             re.MULTILINE), (verb, option)
    assert "before or after the command" in top


def test_a_usage_error_before_the_verb_exits_2_like_after_it() -> None:
    assert run_main("--log-format", "xml", "status")[0] == 2
    assert run_main("status", "--log-format", "xml")[0] == 2
    assert run_main("--config")[0] == 2


# -- --now ----------------------------------------------------------------------------------------
def test_now_without_an_offset_is_read_in_the_given_zone() -> None:
    zone = ZoneInfo("America/New_York")
    assert cli.parse_now("2026-12-07T09:00:00", zone).utcoffset() == timedelta(hours=-5)
    assert cli.parse_now("2026-07-07T09:00:00", zone).utcoffset() == timedelta(hours=-4)
    assert cli.parse_now("2026-12-07T09:00:00+01:00", zone).utcoffset() == timedelta(hours=1)


def test_now_in_a_dst_gap_or_overlap_is_resolved_not_refused() -> None:
    london = ZoneInfo("Europe/London")
    gap = cli.parse_now("2026-03-29T01:30:00", london)  # clocks go 01:00 -> 02:00
    assert gap.isoformat() == "2026-03-29T02:30:00+01:00"
    twice = cli.parse_now("2026-10-25T01:30:00", london)  # 01:00-02:00 happens twice
    assert twice.utcoffset() == timedelta(hours=1)  # the first, summer-time one


@pytest.mark.parametrize("bad", ["tomorrow", "2026-13-01T09:00", "", "07/12/2026 09:00"])
def test_a_bad_now_is_a_clear_error(bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        cli.parse_now(bad, ZoneInfo("UTC"))
    assert caught.value.exit_code == 2
    assert f'--now: "{bad}" is not an ISO-8601 time' in str(caught.value)


def test_poll_with_a_bad_now_exits_2_and_touches_nothing(rig_assistant: RigAssistant) -> None:
    rig_assistant.ask()
    code, _, err = rig_assistant.cli("poll", "--once", "--now", "next monday")
    assert code == 2
    assert err.strip() == ('mailhelper: --now: "next monday" is not an ISO-8601 time; write it '
                           'like "2026-12-07T09:00:00+00:00", or without the offset to mean the '
                           "configured timezone")
    assert rig_assistant.sent() == [] and not rig_assistant.state.exists()


def test_poll_now_without_offset_uses_the_configured_timezone(
    rig_assistant: RigAssistant,
) -> None:
    rig_assistant.configure({"timezone": "America/New_York"})
    rig_assistant.ask(date="Mon, 07 Dec 2026 08:55:00 -0500")
    rig_assistant.poll("2026-12-07T09:00:00")
    [thread] = rig_assistant.status()
    created = datetime.fromisoformat(thread["created"])
    assert created == datetime(2026, 12, 7, 14, 0, tzinfo=ZoneInfo("UTC"))
    due = datetime.fromisoformat(thread["next_action"]["due"])
    assert due.astimezone(ZoneInfo("America/New_York")).hour == 9  # 3 days later, 09:00 there


# -- logging and secrets ------------------------------------------------------------------------
def test_log_format_json_is_one_object_per_line(rig_assistant: RigAssistant) -> None:
    rig_assistant.ask()
    code, _, err = rig_assistant.cli("poll", "--once", "--now", NOW, "--log-format", "json",
                                       "--verbose")
    assert code == 0
    lines = err.splitlines()
    assert len(lines) >= 2
    entries = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= e.keys() for e in entries)
    assert any(e["message"].startswith("cycle at 2026-12-07T09:00:00+00:00: 1 read")
               for e in entries)
    assert {e["level"] for e in entries} <= {"debug", "info", "warning", "error"}


def test_json_log_keeps_a_traceback_inside_its_one_line() -> None:
    import logging

    formatter = cli._JsonFormatter()
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        import sys

        record = logging.LogRecord("mailhelper", logging.ERROR, __file__, 1, "failed: %s",
                                   ("x",), sys.exc_info())
    line = formatter.format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "failed: x" and "ValueError: boom" in entry["exception"]


def test_quiet_prints_nothing_on_success_and_verbose_adds_debug(
    rig_assistant: RigAssistant,
) -> None:
    rig_assistant.ask()
    quiet = rig_assistant.cli("poll", "--once", "--now", NOW, "--quiet")
    assert quiet == (0, "", "")
    normal = rig_assistant.cli("poll", "--once", "--now", "2026-12-07T09:05:00+00:00")
    verbose = rig_assistant.cli("poll", "--once", "--now", "2026-12-07T09:10:00+00:00",
                                "--verbose", "--log-format", "json")
    assert "INFO cycle at" in normal[2] and "DEBUG" not in normal[2]
    assert "debug" in {json.loads(line)["level"] for line in verbose[2].splitlines()}


def test_no_password_in_check_poll_or_a_failing_login(rig_assistant: RigAssistant) -> None:
    password = f"Distinctive-Pw-{uuid.uuid4().hex[:8]}-Quartz"
    wrong = f"Wrong-Pw-{uuid.uuid4().hex[:8]}-Zebra"
    user = rig_assistant.dovecot.add_user(f"pw-{uuid.uuid4().hex[:8]}@example.com", password)
    rig_assistant.configure({"imap": {"username": user.username},
                             "assistant": {"email": user.username}})
    (rig_assistant.workdir / "imap-password").write_text(password)
    outputs = [
        rig_assistant.cli("check", "--verbose"),
        rig_assistant.cli("poll", "--once", "--now", NOW, "--verbose"),
        rig_assistant.cli("poll", "--once", "--now", NOW, "--debug", "--log-format", "json"),
    ]
    assert [code for code, _, _ in outputs] == [0, 0, 0]
    (rig_assistant.workdir / "imap-password").write_text(wrong)
    failing = [rig_assistant.cli("check", "--verbose"),
               rig_assistant.cli("poll", "--once", "--now", NOW, "--verbose")]
    assert [code for code, _, _ in failing] == [3, 3]
    assert "login refused" in failing[1][2]
    process = rig_assistant.poll_process(NOW)  # a separate process: every stream it writes
    assert process.returncode == 3
    for _code, out, err in [*outputs, *failing, (0, process.stdout, process.stderr)]:
        assert password not in out + err
        assert wrong not in out + err


def test_an_unexpected_error_is_one_sentence_without_debug(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_args: object) -> int:
        raise RuntimeError("something odd")

    monkeypatch.setattr(cli, "_dispatch", broken)
    code, _, err = run_main("status")
    assert code == 1
    assert err.strip() == ("mailhelper: unexpected error: RuntimeError: something odd (run it "
                           "again with --debug to see where; please report it)")
    with pytest.raises(RuntimeError):
        run_main("status", "--debug")


# -- deployment files ----------------------------------------------------------------------------
UNIT = REPO / "contrib" / "mailhelper.service"
CONTAINERFILE = REPO / "Containerfile"


def unit_sections() -> dict[str, dict[str, list[str]]]:
    """The unit's sections and keys; a key may repeat (SystemCallFilter=)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, raw in enumerate(UNIT.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"line {number} is outside any section"
        key, sep, value = line.partition("=")
        assert sep and key == key.strip() and key.isalnum(), f"line {number}: {raw!r}"
        current.setdefault(key, []).append(value)
    return sections


def test_the_systemd_user_unit_has_what_it_needs() -> None:
    unit = unit_sections()
    assert set(unit) == {"Unit", "Service", "Install"}
    service = unit["Service"]
    assert service["ExecStart"] == ["%h/.local/bin/mailhelper run"]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert service["Restart"] == ["on-failure"]
    assert service["RestartPreventExitStatus"] == ["2 4"]  # a bad config or a second instance
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict",
                       "ProtectHome": "read-only", "PrivateTmp": "yes",
                       "ReadWritePaths": "%h/.local/state/mailhelper",
                       "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX"}.items():
        assert service[key] == [value], key
    assert "User" not in service and "Group" not in service  # not valid in a user unit
    assert unit["Install"]["WantedBy"] == ["default.target"]  # user units: not multi-user
    # The same file also reads as INI (what most tools that template it use).
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    assert parser["Service"]["Type"] == "exec"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze not installed; the unit's keys are checked above")
def test_systemd_analyze_verifies_the_user_unit(tmp_path: Path) -> None:
    home = tmp_path / "home"
    binary = home / ".local" / "bin" / "mailhelper"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    done = subprocess.run(
        ["systemd-analyze", "--user", "verify", str(UNIT)],
        capture_output=True, text=True, timeout=60,
        env={"HOME": str(home), "XDG_RUNTIME_DIR": str(runtime), "PATH": "/usr/bin:/bin",
             "SYSTEMD_LOG_LEVEL": "warning"},
    )  # fmt: skip
    # verify exits 0 even on unknown keys or bad values; it only warns. So: nothing said.
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_the_containerfile_runs_mailhelper_as_a_non_root_user_with_volumes() -> None:
    text = "\n".join(line for line in CONTAINERFILE.read_text().splitlines()
                     if not line.lstrip().startswith("#"))
    joined = re.sub(r"\\\n", " ", text)  # continuation lines
    instructions = [line.split(None, 1) for line in joined.splitlines() if line.strip()]
    assert all(len(parts) == 2 and parts[0].isupper() for parts in instructions), instructions
    keywords = [parts[0] for parts in instructions]
    args = {parts[0]: parts[1] for parts in instructions if len(parts) > 1}
    assert keywords[0] == "FROM" and args["FROM"] == "python:3.12-slim"
    assert args["USER"].split(":")[0] == "mailhelper"
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
    assert json.loads(args["VOLUME"]) == ["/config", "/state"]
    assert json.loads(args["ENTRYPOINT"]) == ["mailhelper"]
    assert json.loads(args["CMD"]) == ["run"]
    assert args["STOPSIGNAL"] == "SIGTERM"
    assert "MAILHELPER_CONFIG=/config/config.yaml" in CONTAINERFILE.read_text()
    # Everything it copies exists, so a build from a clean checkout works.
    for copy in [a for k, a in instructions if k == "COPY"]:
        *sources, _target = copy.split()
        for source in sources:
            assert (REPO / source).exists(), source


def test_with_json_logs_even_the_final_error_is_a_json_line(rig_assistant: RigAssistant) -> None:
    rig_assistant.configure({"imap": {"port": 1}})
    code, out, err = rig_assistant.cli("poll", "--once", "--now", NOW, "--log-format", "json")
    assert code == 3 and out == ""
    [entry] = [json.loads(line) for line in err.splitlines()]
    assert entry["level"] == "error"
    assert "IMAP 127.0.0.1:1: cannot connect: connection refused" in entry["message"]


def test_output_to_a_reader_that_went_away_ends_quietly(rig_assistant: RigAssistant) -> None:
    """`mailhelper status | head -1`: no traceback, no "please report it"."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line is written
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from mailhelper.cli.main import main; "
         "sys.exit(main(sys.argv[1:]))", "check", "--config", str(rig_assistant.config_path)],
        stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120,
    )
    os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == 141


def test_ctrl_c_says_what_happens_to_the_work(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(_args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_dispatch", interrupted)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = cli.main(["status", "--config", "/nonexistent.yaml"])
    assert code == 130
    assert "interrupted; what was committed stays" in stderr.getvalue()
