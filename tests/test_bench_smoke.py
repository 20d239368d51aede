"""The benchmarks in bench/ keep working: each runs end to end at a tiny size against its own
rig Dovecot and SMTP sink, reports every measure it promises and writes its JSON. Timings
are not asserted (they belong to the benchmark runs, not to tests)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from bench import backlog, cronpoll, due, fleet, idle, nonews, watch
from bench.child import measure
from bench.mailgen import FIRST_DATE
from bench.results import Report
from bench.servers import BenchServers
from tests.rig.postgres import PostgresServer

pytestmark = pytest.mark.usefixtures("dovecot")  # skips (or fails in CI) without Dovecot


def _positive(values: dict[str, float | int | str], *names: str) -> None:
    for name in names:
        value = values[name]
        assert isinstance(value, int | float) and value > 0, f"{name}: {value!r}"


def _written(report: Report, path: Path) -> dict[str, object]:
    data = json.loads(path.read_text())
    assert data["benchmark"] == report.name
    assert [m["name"] for m in data["measures"]] == [m.name for m in report.measures]
    environment = data["environment"]
    assert environment["cores"] and environment["python"] and environment["cpu"]
    assert environment["dovecot"] and environment["libraries"]["IMAPClient"]
    return data


def test_backlog_reads_every_message_and_compares_with_a_raw_fetch(tmp_path: Path) -> None:
    report = backlog.run(30, send_sample=10, results_dir=tmp_path, stem="backlog",
                          warmup=False)
    values = report.values()
    assert values["poll: handled"] == 30
    assert values["poll: not understood"] == 0
    assert values["poll: mail sent"] == 0, "confirm: false sends nothing on a first poll"
    _positive(values, "poll: threads tracked", "poll: threads answered by a reply",
              "raw fetch: time", "poll: time", "poll / raw time", "poll: peak RSS",
              "raw fetch: peak RSS", "poll: messages/s", "send: receipts sent (sample)")
    # The difference of two timings: on 10 messages it may even come out negative.
    assert isinstance(values["send: time per receipt"], float)
    data = _written(report, tmp_path / "backlog.json")
    measures = data["measures"]
    assert isinstance(measures, list)
    [ratio] = [m for m in measures if m["name"] == "poll / raw time"]
    assert ratio["goal"] == "<= 4" and isinstance(ratio["met"], bool)


def test_backlog_of_owner_asks_starts_a_thread_for_each(tmp_path: Path) -> None:
    report = backlog.run(20, send_sample=0, results_dir=tmp_path, stem="asks", warmup=False,
                          mix="asks")
    values = report.values()
    assert values["poll: handled"] == 20 and values["poll: threads tracked"] == 20
    assert values["poll: threads answered by a reply"] == 0
    measures = _written(report, tmp_path / "asks.json")["measures"]
    assert isinstance(measures, list)
    [ratio] = [m for m in measures if m["name"] == "poll / raw time"]
    assert ratio["goal"] == "<= 10"


def test_cronpoll_times_a_no_news_poll_once_as_a_process(tmp_path: Path) -> None:
    report = cronpoll.run(2, messages=5, results_dir=tmp_path, stem="cronpoll")
    values = report.values()
    _positive(values, "poll --once, no news: median wall", "poll --once, no news: fastest wall",
              "poll --once, no news: median CPU (user + system)", "python -c pass: median wall")
    _written(report, tmp_path / "cronpoll.json")


def test_a_loaded_backlog_is_read_whole_by_a_first_poll_days_later() -> None:
    """The benchmarks' backlog arrived after the assistant's first start, so a first poll
    reads all of it however old it is at ``--now``; loaded as mail already there, a first
    poll leaves what is over a day old alone (and a benchmark would measure nothing)."""
    later = (FIRST_DATE + timedelta(days=3)).isoformat()
    with BenchServers() as servers:
        arrived = servers.assistant({"confirm": False})
        servers.load_backlog(arrived, 30)
        already = servers.assistant({"confirm": False})
        servers.load_backlog(already, 30, arrived_after_start=False)
        assert measure("poll", "--config", str(arrived.config_path), "--now", later
                       ).report["read"] == 30
        assert measure("poll", "--config", str(already.config_path), "--now", later
                       ).report["read"] == 0


def test_nonews_counts_the_commands_of_a_cycle_with_nothing_new(tmp_path: Path) -> None:
    report = nonews.run(30, cycles=3, prime="position", results_dir=tmp_path, stem="nonews")
    values = report.values()
    assert isinstance(values["IMAP commands per cycle (max)"], int)
    _positive(values, "IMAP commands per cycle (max)", "IMAP commands per cycle (min)",
              "cycle time, fresh connection (median)", "cycle time, same connection (median)",
              "connect + STARTTLS + login (median)")
    assert str(values["commands (same connection)"]) == "NOOP UID SEARCH"
    _written(report, tmp_path / "nonews.json")


def test_due_finds_what_is_due_among_tracked_threads(tmp_path: Path) -> None:
    report = due.run(60, repeat=3, results_dir=tmp_path, stem="due")
    values = report.values()
    assert values["threads"] == 60
    assert values["due at now: actions"] == 0, "the state is caught up at now"
    _positive(values, "pending actions", "due(now): time (median)", "next_due(): time (median)",
              "cycle, store side, nothing due (median)", "whole cycle on an empty INBOX (median)",
              "IMAP commands per cycle")
    _written(report, tmp_path / "due.json")


def test_idle_measures_append_to_commit_through_the_daemon(tmp_path: Path) -> None:
    report = idle.run(1, results_dir=tmp_path, stem="idle")
    values = report.values()
    assert values["samples"] == 1
    assert values["daemon exit code after SIGTERM"] == 0
    _positive(values, "APPEND -> committed (median)", "APPEND -> receipt at the SMTP sink (median)")
    _written(report, tmp_path / "idle.json")


def test_watch_measures_a_no_news_cycle_and_the_first_look(tmp_path: Path) -> None:
    report = watch.run(40, cycles=2, recent=20, results_dir=tmp_path, stem="watch")
    values = report.values()
    assert values["no news: the watch's commands"] == "STATUS STATUS"
    assert values["no news: commands the watch adds (max)"] == 2
    _positive(values, "first look: messages whose headers were read",
              "first look: bytes received (login included)", "owner's mailbox size",
              "no news: Watcher.look alone (median)")
    _written(report, tmp_path / "watch.json")


def test_fleet_reads_every_mailbox_with_one_and_two_daemons_on_one_database(
    tmp_path: Path, postgres: PostgresServer,
) -> None:
    report = fleet.run(3, 6, [1, 2], actions=300, repeat=3, nonews_runs=1,
                       results_dir=tmp_path, stem="fleet", postgres=postgres)
    values = report.values()
    for processes in (1, 2):
        assert values[f"backlog, {processes} process(es): mail sent"] == 0
        _positive(values, f"backlog, {processes} process(es): messages/s",
                  f"backlog, {processes} process(es): daemons' CPU")
        # every mailbox was held, by at most two processes
        spread = str(values[f"backlog, {processes} process(es): leases per process"])
        assert sum(int(n) for n in spread.split("/")) == 3
    assert values["backlog, 1 process(es): scaling vs 1"] == 1.0
    assert values["no news, a daemon's cycle: IMAP commands per mailbox"] == 2
    assert values["due(now): actions found (all assistants)"] == 0
    _positive(values, "no news, poll --once over 3 mailboxes: wall (median)",
              "no news, a daemon's cycle over 3 mailboxes (median)", "due(now): time (median)",
              "due(now + 1 h): time (median)", "next_due(): time (median)")
    _written(report, tmp_path / "fleet.json")
