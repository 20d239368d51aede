"""`mailhelper run`, the daemon: IDLE, waking for due actions, reconnecting, signals, reload.

The pure parts (how long to wait, the reconnect backoff, which state changes are logged) are
tested with explicit times. The rest runs the real command, ``python -m mailhelper.cli run``,
as a subprocess against the rig's Dovecot and SMTP sink, with ``--log-format json
--verbose`` so its log can be read line by line. The daemon runs on the wall clock by nature;
these tests only measure durations with it, never dates.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailhelper.engine.daemon import (
    IDLE_MAX,
    RECONNECT_CAP,
    STUCK_RETRY,
    Link,
    next_wait,
    reconnect_delay,
)  # fmt: skip
from mailhelper.mail.mailbox import HANDLED_FLAG
from tests.rig.assistant import OWNER, OWNER_NAME, REPO, RigAssistant
from tests.rig.mailboxes import make_message
from tests.rig.smtpsink import SmtpSink

T = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
POLL = timedelta(seconds=60)
#: RFC 2177 section 3: clients should re-issue IDLE at least every 29 minutes.
RFC2177_LIMIT = timedelta(minutes=29)


# -- the wait computation: pure, with explicit times ------------------------------------------
def test_idle_is_reissued_before_rfc2177s_29_minutes() -> None:
    assert IDLE_MAX < RFC2177_LIMIT
    for next_due in (None, T + timedelta(hours=5), T + timedelta(days=3)):
        wait = next_wait(T, next_due, T, idle=True, poll_interval=POLL)
        assert wait.seconds == IDLE_MAX.total_seconds()
        assert timedelta(seconds=wait.seconds) < RFC2177_LIMIT
        assert wait.reason == "renew IDLE"


def test_without_idle_it_polls_every_poll_interval() -> None:
    wait = next_wait(T, None, T, idle=False, poll_interval=timedelta(minutes=2))
    assert wait.seconds == 120.0
    assert wait.reason == "poll interval"


@pytest.mark.parametrize("idle", [True, False])
def test_it_wakes_exactly_when_the_next_action_falls_due(idle: bool) -> None:
    now = T + timedelta(seconds=0.25)
    due = T + timedelta(seconds=42)
    wait = next_wait(now, due, T, idle=idle, poll_interval=POLL)
    assert now + timedelta(seconds=wait.seconds) == due  # not a moment past it
    assert wait.reason == "an action falls due"


def test_an_action_due_in_a_second_is_not_rounded_up() -> None:
    due = T + timedelta(milliseconds=300)
    wait = next_wait(T, due, T, idle=True, poll_interval=POLL)
    assert wait.seconds == pytest.approx(0.3)


def test_an_action_that_fell_due_during_the_cycle_runs_at_once() -> None:
    began = T
    due = T + timedelta(seconds=1)
    now = T + timedelta(seconds=3)  # the cycle took three seconds
    wait = next_wait(now, due, began, idle=True, poll_interval=POLL)
    assert wait.seconds == 0.0


def test_an_overdue_action_the_cycle_could_not_settle_never_makes_a_busy_loop() -> None:
    began = T
    due = T - timedelta(hours=1)  # due before the cycle began, and still pending after it
    wait = next_wait(T + timedelta(seconds=1), due, began, idle=True, poll_interval=POLL)
    assert wait.seconds == STUCK_RETRY.total_seconds() > 1
    # ... and never longer than the poll interval without IDLE
    short = next_wait(T, due, began, idle=False, poll_interval=timedelta(seconds=10))
    assert short.seconds == 10.0


def test_a_due_time_beyond_the_longest_wait_does_not_stretch_it() -> None:
    wait = next_wait(T, T + 2 * POLL, T, idle=False, poll_interval=POLL)
    assert wait.seconds == 60.0


def test_reconnect_backoff_doubles_up_to_the_cap() -> None:
    delays = [reconnect_delay(n) for n in range(0, 12)]
    assert delays[:6] == [0.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    assert max(delays) == RECONNECT_CAP == delays[-1]
    assert all(a <= b for a, b in itertools.pairwise(delays))
    assert reconnect_delay(10_000) == RECONNECT_CAP  # no overflow


def test_link_logs_once_per_change_of_state_not_per_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = iter(float(n) for n in range(100))
    link = Link("IMAP mail.example.com:993", monotonic=lambda: next(clock))
    with caplog.at_level(logging.INFO, logger="mailhelper.engine.daemon"):
        link.connected("IDLE: new mail is seen at once")
        link.lost("socket error: EOF")
        link.failed("IMAP mail.example.com:993: cannot connect: connection reset by peer")
        waits = [link.failed("IMAP mail.example.com:993: cannot connect: connection refused")
                 for _ in range(5)]
        link.failed("IMAP mail.example.com:993: login refused for helper", "login refused")
        link.connected("IDLE: new mail is seen at once")
        link.connected("IDLE: new mail is seen at once")
    lines = [r.getMessage() for r in caplog.records]
    assert waits == [4.0, 8.0, 16.0, 32.0, 64.0]  # however the reason is worded meanwhile
    assert len(lines) == 5, lines
    assert "connected; IDLE" in lines[0]
    assert "connection lost (socket error: EOF)" in lines[1]
    assert "connection reset by peer; trying again in 2 s" in lines[2]
    assert "login refused" in lines[3]  # a new reason is a new state
    assert "connected again" in lines[4] and "7 failed attempt(s)" in lines[4]


# -- the real daemon ----------------------------------------------------------------------------
class Daemon:
    """``mailhelper run`` as a subprocess; its JSON log is read as it grows."""

    def __init__(self, rig: RigAssistant, *extra: str) -> None:
        self.rig = rig
        self.log_path = rig.workdir / f"run-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mailhelper.cli", "run", "--config", str(rig.config_path),
             "--log-format", "json", "--verbose", *extra],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip

    def entries(self) -> list[dict[str, Any]]:
        """Every log line so far, each parsed: one JSON object per line or the test fails."""
        text = self.log_path.read_text()
        lines = text.splitlines()
        if lines and not text.endswith("\n"):
            lines.pop()  # a line being written
        parsed = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                pytest.fail(f"not a JSON log line: {line!r}")
            assert isinstance(entry, dict) and {"time", "level", "message"} <= entry.keys()
            parsed.append(entry)
        return parsed

    def messages(self, contains: str = "") -> list[str]:
        return [e["message"] for e in self.entries() if contains in e["message"]]

    def wait_for(self, contains: str, count: int = 1, timeout: float = 15) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages(contains)
            if len(found) >= count:
                return found
            if self.process.poll() is not None:
                pytest.fail(f"the daemon exited {self.process.returncode} before logging "
                            f"{contains!r}:\n{self.log_path.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {count} log line(s) with {contains!r} within {timeout} s:\n"
                            f"{self.log_path.read_text()}")
            time.sleep(0.05)

    def wait_connected(self) -> None:
        self.wait_for("connected; IDLE: new mail is seen at once")

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 5) -> tuple[int, float]:
        """Send ``signum``; return (exit code, seconds until it exited)."""
        began = time.monotonic()
        self.send(signum)
        code = self.process.wait(timeout)
        return code, time.monotonic() - began

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()
        text = self.log_path.read_text()
        assert self.rig.account.password not in text, "the IMAP password reached the log"


@pytest.fixture
def daemon(rig_assistant: RigAssistant) -> Iterator[Callable[..., Daemon]]:
    """Start ``mailhelper run`` for the rig's assistant (``daemon(*extra_args)``); every one
    started is killed after the test if still running, and its log checked for the password."""
    started: list[Daemon] = []

    def start(*extra: str) -> Daemon:
        started.append(Daemon(rig_assistant, *extra))
        return started[-1]

    yield start
    for running in started:
        running.close()


def ask(rig: RigAssistant, subject: str, to: str = "Jane Doe <jane@example.org>") -> None:
    rig.deliver(make_message(f"{OWNER_NAME} <{OWNER}>", to, subject,
                             "Could you introduce me to someone at Acme?", cc=rig.address,
                             date="Mon, 07 Dec 2026 09:00:00 +0000"))


def wait_for_mail(rig: RigAssistant, count: int, timeout: float = 20) -> list[EmailMessage]:
    """The sink's messages once there are ``count``; on a timeout, fail showing the logs."""
    try:
        return rig.sink.wait_for(count, timeout=timeout)
    except TimeoutError as exc:
        logs = "\n".join(path.read_text() for path in sorted(rig.workdir.glob("run-*.log")))
        pytest.fail(f"{exc}; the daemon's log:\n{logs}")


def test_new_mail_is_acted_on_within_seconds_over_idle(
    rig_assistant: RigAssistant, daemon: Callable[..., Daemon],
) -> None:
    run = daemon()
    run.wait_connected()
    run.wait_for("cycle at")
    began = time.monotonic()
    ask(rig_assistant, "Intro to Acme?")
    [receipt] = wait_for_mail(rig_assistant, 1)
    latency = time.monotonic() - began
    print(f"APPEND to receipt in the sink: {latency:.2f} s")
    assert latency < 5
    assert "Intro to Acme?" in str(receipt["Subject"])
    assert receipt["To"].addresses[0].addr_spec == OWNER

    # Idling: no busy loop, IDLE is simply waited in.
    cycles_before = len(run.messages("cycle at"))
    time.sleep(3)
    cycles = len(run.messages("cycle at")) - cycles_before
    assert cycles <= 1, run.messages("cycle at")
    assert rig_assistant.flags()[0].count(HANDLED_FLAG) == 1

    code, took = run.stop(signal.SIGINT)
    assert (code, took < 3) == (0, True), run.log_path.read_text()
    assert run.messages("SIGINT: finishing the message in hand")
    assert run.messages()[-1] == "stopped"


def test_it_reconnects_after_a_dovecot_restart_then_acts_on_new_mail(
    rig_assistant: RigAssistant, daemon: Callable[..., Daemon],
) -> None:
    run = daemon()
    run.wait_connected()
    run.wait_for("cycle at")
    rig_assistant.dovecot.restart()
    back = run.wait_for("connected again", timeout=15)
    assert len(back) == 1
    ask(rig_assistant, "After the restart")
    [receipt] = wait_for_mail(rig_assistant, 1)
    assert "After the restart" in str(receipt["Subject"])
    assert len(run.messages("connection lost")) == 1
    assert len(run.messages("cannot connect")) <= 1  # once, however many retries
    assert run.stop() == (0, pytest.approx(0, abs=3))


def test_an_outage_is_retried_with_backoff_and_logged_once(
    rig_assistant: RigAssistant, daemon: Callable[..., Daemon],
) -> None:
    dovecot = rig_assistant.dovecot
    run = daemon()
    run.wait_connected()
    run.wait_for("cycle at")
    try:
        dovecot.stop()
        run.wait_for("connection lost")
        # Two more attempts after the first failure, at +2 s and at +6 s: wait for the first
        # of them, then bring the server back.
        run.wait_for("attempt 2 failed the same way", timeout=10)
    finally:
        dovecot.start()
    run.wait_for("connected again", timeout=15)
    errors = [e["message"] for e in run.entries() if e["level"] == "error"]
    assert len(errors) == 1, errors
    assert "cannot connect" in errors[0] and "trying again in 2 s" in errors[0]
    retries = run.messages("next in 4 s")
    assert len(retries) == 1
    ask(rig_assistant, "After the outage")
    assert "After the outage" in str(wait_for_mail(rig_assistant, 1)[0]["Subject"])
    assert run.stop()[0] == 0


def test_smtp_down_at_send_time_is_logged_and_retried(
    rig_assistant: RigAssistant, daemon: Callable[..., Daemon],
    smtp_sink_factory: Callable[..., SmtpSink],
) -> None:
    sink = rig_assistant.sink
    sink.stop()
    run = daemon()
    run.wait_connected()
    ask(rig_assistant, "While SMTP is down")
    [line] = run.wait_for("cannot connect: connection refused")
    assert f"SMTP 127.0.0.1:{sink.port}" in line
    assert run.stop()[0] == 0
    with sqlite3.connect(rig_assistant.state) as db:
        [(status, next_attempt, last_error)] = db.execute(
            "SELECT status, next_attempt, last_error FROM actions WHERE last_error IS NOT NULL"
        ).fetchall()
    assert status == "pending" and "connection refused" in last_error
    # The retry waits for its backoff time, then goes out (on the --now clock here).
    smtp_sink_factory(directory=sink.directory, port=sink.port)
    rig_assistant.poll(datetime.fromisoformat(next_attempt) - timedelta(seconds=5))
    assert rig_assistant.sent() == []
    rig_assistant.poll(next_attempt)
    [receipt] = rig_assistant.sent()
    assert "While SMTP is down" in str(receipt["Subject"])


def test_sigterm_finishes_the_message_in_hand_and_a_restart_does_the_rest(
    rig_assistant: RigAssistant, daemon: Callable[..., Daemon],
) -> None:
    asks = 20
    for n in range(asks):
        ask(rig_assistant, f"Backlog ask {n:02d}", to=f"Person {n} <p{n}@example.org>")
    run = daemon()
    run.wait_for(f"INBOX: {asks} new message(s)")
    code, took = run.stop(signal.SIGTERM)
    assert code == 0 and took < 5, run.log_path.read_text()
    # Whatever it had committed is flagged; whatever it had not is untouched: never half.
    with sqlite3.connect(rig_assistant.state) as db:
        recorded = db.execute("SELECT count(*) FROM threads").fetchone()[0]
    flagged = sum(HANDLED_FLAG in flags for flags in rig_assistant.flags())
    assert recorded == flagged
    stopped_early = run.messages("stopping:")
    if stopped_early:
        assert f"of {asks} new message(s) handled" in stopped_early[0]

    again = daemon()
    receipts = wait_for_mail(rig_assistant, asks, timeout=30)
    # The first run may have sent every receipt before its stop: the restart is stopped only
    # once it is up and has read (a SIGTERM during its start-up would end it unhandled).
    again.wait_for("cycle at")
    assert again.stop()[0] == 0
    subjects = sorted(str(r["Subject"]) for r in receipts)
    assert len(subjects) == asks == len(set(subjects))  # each ask once, none twice
    assert all(HANDLED_FLAG in flags for flags in rig_assistant.flags())


def test_sighup_reloads_and_a_bad_config_is_refused_with_the_reason(
    rig_assistant: RigAssistant, daemon: Callable[..., Daemon],
) -> None:
    run = daemon()
    run.wait_connected()
    good = rig_assistant.config_path.read_text()
    rig_assistant.config_path.write_text(good + "poll_interval: now and then\n")
    run.send(signal.SIGHUP)
    [refused] = run.wait_for("SIGHUP: the new config is refused")
    assert "poll_interval" in refused and "now and then" in refused
    ask(rig_assistant, "With the old config")
    [first] = wait_for_mail(rig_assistant, 1)
    assert first["From"].addresses[0].display_name == "Sam's assistant"

    rig_assistant.configure({"assistant": {"name": "Sam's new helper"}})
    run.send(signal.SIGHUP)
    run.wait_for("SIGHUP: config")
    run.wait_for("running for", count=2)
    ask(rig_assistant, "With the new config")
    second = wait_for_mail(rig_assistant, 2)[1]
    assert second["From"].addresses[0].display_name == "Sam's new helper"
    assert run.process.poll() is None
    assert run.stop()[0] == 0


def test_a_second_run_or_poll_on_the_same_state_is_refused_with_exit_4(
    rig_assistant: RigAssistant, daemon: Callable[..., Daemon],
) -> None:
    run = daemon()
    run.wait_connected()
    second = subprocess.run(
        [sys.executable, "-m", "mailhelper.cli", "run", "--config", str(rig_assistant.config_path)],
        capture_output=True, text=True, timeout=30, cwd=REPO,
    )  # fmt: skip
    assert second.returncode == 4
    assert f"another mailhelper (pid {run.process.pid}) is using" in second.stderr
    assert str(rig_assistant.state) in second.stderr
    code, _out, err = rig_assistant.cli("poll", "--once", "--now", "2026-12-07T09:00:00+00:00")
    assert code == 4 and "stop it first" in err
    assert run.process.poll() is None  # the first one is untouched
    assert run.stop()[0] == 0


def test_run_without_a_reachable_server_keeps_trying_and_still_stops_cleanly(
    rig_assistant: RigAssistant, daemon: Callable[..., Daemon], tmp_path: Path,
) -> None:
    rig_assistant.configure({"imap": {"port": 1}})  # nothing listens there
    run = daemon()
    [error] = run.wait_for("cannot connect")
    assert "IMAP 127.0.0.1:1" in error and "connection refused" in error
    code, took = run.stop()
    assert code == 0 and took < 3


def test_it_wakes_for_the_next_due_action_without_new_mail(
    rig_assistant: RigAssistant, daemon: Callable[..., Daemon],
) -> None:
    rig_assistant.configure({"schedules": {"ask": {"follow_up": ["4 seconds"],
                                                   "give_up_after": "14 days"}}})
    run = daemon()
    run.wait_connected()
    asked = time.monotonic()  # the follow-up is due 4 s after the ask is read, so after this
    ask(rig_assistant, "Remind me soon")
    [receipt] = wait_for_mail(rig_assistant, 1)
    [planned] = run.wait_for("(an action falls due)")
    seconds = float(planned.split("next cycle in ")[1].split(" s ")[0])
    assert 2.5 <= seconds <= 4.5
    reminder = wait_for_mail(rig_assistant, 2)[1]
    late = time.monotonic() - asked
    # At the due time: not before it (4 s after the ask was read, less a second for due times
    # kept to the second), and not at the next IDLE renewal 25 minutes later. Measured from
    # the ask, not from the receipt's arrival, which comes a varying while after the reading.
    assert 3 <= late <= 10, late
    assert reminder["To"].addresses[0].addr_spec == OWNER
    assert reminder["Message-ID"] != receipt["Message-ID"]
    assert run.stop()[0] == 0
