"""Many mailboxes on one PostgreSQL, served by one, two and three ``mailhelper run`` processes.

    .venv/bin/python -m bench.fleet --mailboxes 50 --messages 1000 --processes 1,2,3 \\
        --actions 1000000

Everything runs on this machine: the rig's Dovecot and SMTP sink (bench/servers.py) and one
PostgreSQL cluster (tests/rig/postgres.py, ``max_connections`` raised: each process opens one
connection per assistant of its folder, whether it holds that mailbox's lease or not).

**Backlog, per process count P** (a fresh database and M fresh mailboxes each time): M
assistants, one config each in one folder, all with ``state:`` the same database (each in its
own schema), ``confirm: false`` (no receipts), ``lease: 30s`` (the default). Each assistant's
state records a first start just before its mail, so all of it is read (bench/README.md, "The
mail"). N messages per mailbox are generated (bench/mailgen.py, dated the N minutes before now)
into a staging folder. Then P ``mailhelper run --config-dir`` processes start on the empty
mailboxes and the bench waits until the leases are spread (every mailbox held, no process over
``ceil(M/P)+1``, P live processes). Then the staged files are renamed into the M Maildirs at
once (Dovecot tells the IDLE-ing daemons), and the clock runs until the database holds M x N
processed messages. Reported: messages per second, the scaling factor against one process, the
daemons' CPU time (user + system, from /proc) and that of the PostgreSQL server's processes,
how the leases were spread, how many a daemon lost while reading (each loss rolls the
transaction in hand back), and any mail sent.

**No news**: after the first round, its daemons stopped (their leases released),
``mailhelper poll --once --config-dir`` over the M mailboxes with nothing new, as one
process (what cron would run), R times: wall and CPU time, in all and per mailbox (each
mailbox: its state's connection, its lease, an IMAP login with STARTTLS, a cycle, a logout).
And what the daemon does with nothing new: ``Assistant.cycle`` of each of the M assistants
on connections already open (IMAP and state), one round over all M timed a few times, and
its IMAP commands counted at the client.

**Due query**: A actions added, with COPY, to the M assistants' schemas of that database
(A / M each: 70% sent over the last 60 days, 5% cancelled, 25% pending over the next 30 days,
0.2% of them due within the next hour), then ANALYZE. Timed: ``Store.due(now)`` (the
daemon's call, on the assistant's own connection and schema: the SQL, the rows fetched and
made into actions) R times for each assistant, and ``Store.due(now + 1 h)`` and
``Store.next_due()`` likewise. Goal (issue 14): < 20 ms per query.

The machine has 2 cores shared with other work: the CPU times are the steadier figures, and
the scaling factor is only indicative here (three processes on two busy cores cannot show
what three machines would).
"""

from __future__ import annotations

import argparse
import math
import os
import pwd
import random
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from bench.mailgen import generate, load_maildir
from bench.results import RESULTS_DIR, Report
from bench.servers import BenchServers
from mailhelper.mail.source import ImapCursor
from mailhelper.model.settings import assistant_schema
from mailhelper.model.values import FirstStart
from mailhelper.state.store import Store, to_text
from tests.rig.assistant import REPO, RigAssistant
from tests.rig.postgres import PostgresServer

DUE_GOAL_MS = 20
#: The default: a shorter one (9 s was tried) expires under this load between two writes of a
#: busy assistant (a batch fetched while 50 threads share the process), and lease losses
#: then redo work.
LEASE = "30s"
#: Clock ticks a second, for the CPU times in /proc/PID/stat.
TICK = os.sysconf("SC_CLK_TCK")


# -- CPU time from /proc ------------------------------------------------------------------------
def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()  # the fields after "(comm)"


def cpu_seconds(pid: int, children: bool = False) -> float:
    """A process's CPU time (user + system; ``children``: with its children waited for)."""
    try:
        fields = _stat(pid)
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / TICK


def server_cpu_seconds(postmaster: int) -> float:
    """The PostgreSQL server's CPU time: the postmaster with the children it reaped, and its
    live children (the backends of the daemons' connections among them)."""
    total = cpu_seconds(postmaster, children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[1]) == postmaster:
                    total += cpu_seconds(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return total


# -- the pieces ---------------------------------------------------------------------------------
def start_postgres(connections: int, server: PostgresServer | None = None) -> PostgresServer:
    """The rig's cluster (``server``, running, or a new one) with room for ``connections``
    (PostgreSQL's default is 100; raising it restarts the server)."""
    import psycopg

    if server is None:
        server = PostgresServer()
        server.start()
    with psycopg.connect(server.url(), autocommit=True) as db:
        current = int(db.execute("SHOW max_connections").fetchone()[0])
        if current < connections:
            db.execute(f"ALTER SYSTEM SET max_connections = {connections}")
            restart = True
        else:
            restart = False
    if restart:
        server.restart()
    return server


def _owner() -> tuple[int, int]:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_gid
    return os.geteuid(), os.getegid()


@dataclass
class Mailbox:
    """One assistant of a round: its rig config and its staged mail."""

    rig: RigAssistant
    staged: Path
    files: list[Path] = field(default_factory=list)


def make_fleet(servers: BenchServers, url: str, mailboxes: int, messages: int, configs: Path,
               staging: Path, start: datetime, lease: str = LEASE) -> list[Mailbox]:
    """M assistants on ``url``, their configs in ``configs``, their mail staged (not yet in
    their INBOX), each state with a first start before the mail."""
    configs.mkdir(parents=True)
    uid, gid = _owner()
    made = []
    for n in range(mailboxes):
        rig = servers.assistant({"confirm": False, "state": url, "lease": lease})
        rig.configure({"imap": {"password_file": str(rig.workdir / "imap-password")}})
        (configs / f"{n:03d}.yaml").write_text(rig.config_path.read_text())
        maildir = servers.dovecot.maildir(rig.address)
        load_maildir(maildir, iter(()), uid, gid)  # the empty Maildir, owned as Dovecot wants
        folder = servers.index(rig)
        store = Store.open(url, rig.address.rpartition("@")[2], assistant=rig.address)
        try:
            with store.transaction():
                store.set_cursor("INBOX", ImapCursor(None, 0, FirstStart(
                    start - timedelta(minutes=1), folder["uidvalidity"], boundary=1)).text())
        finally:
            store.close()
        staged = staging / f"{n:03d}"
        load_maildir(staged, generate(messages, rig.address, seed=7 + n, start=start), uid, gid)
        made.append(Mailbox(rig, staged, sorted((staged / "cur").iterdir())))
    return made


class Daemons:
    """P ``mailhelper run --config-dir`` processes, their output in log files."""

    def __init__(self, configs: Path, count: int, logs: Path) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs = [logs / f"daemon{n + 1}.log" for n in range(count)]
        logs.mkdir(parents=True, exist_ok=True)
        for log in self.logs:
            with log.open("wb") as out:
                self.processes.append(subprocess.Popen(
                    [sys.executable, "-m", "mailhelper.cli", "run", "--config-dir",
                     str(configs)], stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, cwd=REPO))

    def lost_leases(self) -> int:
        """How many times a daemon lost a lease it held (its log says so each time)."""
        return sum(log.read_text(errors="replace").count("lost the lease on ")
                   for log in self.logs)

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.processes)

    def check(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"a daemon exited ({process.returncode}); see its log")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def lease_spread(url: str) -> tuple[int, list[int], int]:
    """(live leases, leases per holder largest first, live daemons)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        if not db.execute("SELECT to_regclass('mailhelper_shared.leases') IS NOT NULL"
                          ).fetchone()[0]:
            return 0, [], 0
        held = [int(r[0]) for r in db.execute(
            "SELECT count(*) FROM mailhelper_shared.leases WHERE expires > clock_timestamp() "
            "GROUP BY holder ORDER BY 1 DESC").fetchall()]
        live = int(db.execute("SELECT count(*) FROM mailhelper_shared.daemons "
                              "WHERE expires > clock_timestamp()").fetchone()[0])
    return sum(held), held, live


def wait_for(check: Callable[[], bool], what: str, timeout: float,
             daemons: Daemons | None = None, every: float = 0.5) -> float:
    began = time.monotonic()
    while not check():
        if daemons is not None:
            daemons.check()
        if time.monotonic() - began > timeout:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
    return time.monotonic() - began


def processed(url: str, schemas: list[str]) -> int:
    """Messages handled so far, in all the assistants' states."""
    import psycopg

    query = " + ".join(f"(SELECT count(*) FROM {s}.processed)" for s in schemas)
    with psycopg.connect(url, autocommit=True) as db:
        return int(db.execute(f"SELECT {query}").fetchone()[0])


# -- the measures ---------------------------------------------------------------------------------
@dataclass
class Round:
    processes: int
    seconds: float
    messages: int
    daemon_cpu: float
    server_cpu: float
    spread: list[int]
    sent: int
    lost: int = 0


def backlog_round(servers: BenchServers, postgres: PostgresServer, root: Path, processes: int,
                  mailboxes: int, messages: int, timeout: float, lease: str = LEASE,
                  ) -> tuple[Round, list[Mailbox], str, Path]:
    url = postgres.new_database()
    start = datetime.now(UTC) - timedelta(minutes=messages + 5)
    configs = root / f"configs-{processes}"
    fleet = make_fleet(servers, url, mailboxes, messages, configs,
                       root / f"staging-{processes}", start, lease)
    schemas = [assistant_schema(m.rig.address) for m in fleet]
    postmaster = int((postgres.data / "postmaster.pid").read_text().split()[0])
    daemons = Daemons(configs, processes, root / f"logs-{processes}")
    try:
        share = math.ceil(mailboxes / processes) + 1

        def spread() -> bool:
            held, per_holder, live = lease_spread(url)
            return (held == mailboxes and live == processes
                    and bool(per_holder) and per_holder[0] <= share)

        wait_for(spread, "the leases to spread over the daemons", 300, daemons)
        _, per_holder, _ = lease_spread(url)
        lost_before = daemons.lost_leases()
        sent_before = len(servers.sink.raw())
        cpu_before, server_before = daemons.cpu(), server_cpu_seconds(postmaster)
        began = time.monotonic()
        for mailbox in fleet:  # every message at once: Dovecot tells the IDLE-ing daemons
            cur = servers.dovecot.maildir(mailbox.rig.address) / "cur"
            for path in mailbox.files:
                os.rename(path, cur / path.name)
        total = mailboxes * messages
        wait_for(lambda: processed(url, schemas) >= total,
                 f"{total} messages to be handled", timeout, daemons, every=0.25)
        seconds = time.monotonic() - began
        done = Round(processes, seconds, total, daemons.cpu() - cpu_before,
                     server_cpu_seconds(postmaster) - server_before, per_holder,
                     len(servers.sink.raw()) - sent_before,
                     daemons.lost_leases() - lost_before)
    finally:
        daemons.stop()
    return done, fleet, url, configs


def no_news(configs: Path, runs: int) -> tuple[float, float]:
    """(median wall, median CPU) seconds of ``poll --once --config-dir`` with nothing new."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "mailhelper.cli", "poll", "--once", "--config-dir",
             str(configs), "--now", datetime.now(UTC).isoformat(timespec="seconds")],
            capture_output=True, text=True, cwd=REPO, timeout=600)
        walls.append(time.monotonic() - began)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise RuntimeError(f"poll --once --config-dir exited {done.returncode}:\n"
                               f"{done.stderr[-3000:]}")
    return statistics.median(walls), statistics.median(cpus)


def no_news_cycles(fleet: list[Mailbox], url: str, rounds: int) -> tuple[list[float], int]:
    """What ``run`` does with nothing new, for each of the M assistants after an IDLE
    wake-up: ``Assistant.cycle`` on its own IMAP connection and state connection (both open
    already, as in the daemon; no lease held: the daemons are stopped). Returns the
    milliseconds of each whole round over the M mailboxes, and the IMAP commands of one."""
    from bench.imapcount import CommandLog
    from mailhelper.cli.config import load_settings
    from mailhelper.compose.render import Renderer
    from mailhelper.engine.daemon import Assistant
    from mailhelper.mail.connect import open_imap, open_smtp
    from mailhelper.mail.mailbox import Mailbox as ImapMailbox

    opened: list[tuple[Assistant, ImapMailbox]] = []
    try:
        for mailbox in fleet:
            settings = load_settings(mailbox.rig.config_path, {})
            store = Store.open(url, settings.assistant.email.rpartition("@")[2],
                               assistant=settings.assistant.email)
            assistant = Assistant(settings, store, Renderer(settings),
                                  partial(open_imap, settings.imap),
                                  partial(open_smtp, settings.smtp))
            opened.append((assistant, ImapMailbox(assistant.imap_factory(),
                                                  settings.imap.folder)))
        now = datetime.now(UTC)
        for assistant, imap in opened:  # the first plans the digest, records fingerprints
            assistant.cycle(imap, now)
        times = []
        commands = 0
        for number in range(rounds):
            with CommandLog() as log:
                began = time.perf_counter()
                for assistant, imap in opened:
                    report = assistant.cycle(imap, now)
                    if report.read:
                        raise RuntimeError("a no-news cycle read mail")
                times.append((time.perf_counter() - began) * 1000)
            if number == 0:
                commands = len(log)
        return times, commands
    finally:
        for assistant, imap in opened:
            imap.logout()
            assistant.store.close()


def add_actions(url: str, schemas: list[str], actions: int, now: datetime,
                seed: int = 5) -> dict[str, int]:
    """``actions`` spread over ``schemas`` (see the module's docstring), with COPY; then
    ANALYZE. Returns the count of each status."""
    import psycopg

    rng = random.Random(seed)
    counts: dict[str, int] = {}
    each = actions // len(schemas)
    columns = ("key, kind, thread_id, due, recipients, data, status, attempts, message_id, "
               "created, sent_at, appended")
    with psycopg.connect(url, autocommit=True) as db:
        for number, schema in enumerate(schemas):
            with db.cursor() as cursor, cursor.copy(
                    f"COPY {schema}.actions ({columns}) FROM STDIN") as copy:
                for n in range(each):
                    roll = rng.random()
                    if roll < 0.70:
                        status, due = "sent", now - timedelta(seconds=rng.uniform(60, 60 * 86400))
                    elif roll < 0.75:
                        status, due = "cancelled", now - timedelta(
                            seconds=rng.uniform(60, 60 * 86400))
                    elif roll < 0.7505:
                        status, due = "pending", now + timedelta(seconds=rng.uniform(1, 3600))
                    else:
                        status, due = "pending", now + timedelta(
                            seconds=rng.uniform(3600, 30 * 86400))
                    counts[status] = counts.get(status, 0) + 1
                    stamp = to_text(due)
                    copy.write_row((
                        f"bench/{number}/{n}", "follow_up", None, stamp,
                        '[["jane@example.org", "Jane"]]', "{}", status, int(status == "sent"),
                        f"mh.bench-{number}-{n}@bench.example", to_text(now - timedelta(days=61)),
                        stamp if status == "sent" else None, int(status == "sent")))
        db.execute("ANALYZE")
    return counts


def due_queries(url: str, fleet: list[Mailbox], now: datetime,
                repeat: int) -> dict[str, list[float]]:
    """Milliseconds of each call, for every assistant, ``repeat`` times."""
    timed: dict[str, list[float]] = {"due(now)": [], "due(now + 1 h)": [], "next_due()": []}
    found = {"due(now)": 0, "due(now + 1 h)": 0}
    later = now + timedelta(hours=1)
    for mailbox in fleet:
        address = mailbox.rig.address
        store = Store.open(url, address.rpartition("@")[2], assistant=address)
        try:
            calls: dict[str, Callable[[], object]] = {
                "due(now)": partial(store.due, now), "due(now + 1 h)": partial(store.due, later),
                "next_due()": store.next_due}
            for name, call in calls.items():
                call()  # the first, on a new connection, plans the statement
                for _ in range(repeat):
                    began = time.perf_counter()
                    result = call()
                    timed[name].append((time.perf_counter() - began) * 1000)
                if name in found:
                    assert isinstance(result, list)
                    found[name] += len(result)
        finally:
            store.close()
    timed["found"] = [float(found["due(now)"]), float(found["due(now + 1 h)"])]
    return timed


def _server_version(server: PostgresServer) -> str:
    import psycopg

    with psycopg.connect(server.url(), autocommit=True) as db:
        return str(db.execute("SHOW server_version").fetchone()[0]).split()[0]


# -- the run ----------------------------------------------------------------------------------
def run(mailboxes: int, messages: int, processes: list[int], actions: int, repeat: int = 20,
        nonews_runs: int = 3, results_dir: Path | None = RESULTS_DIR, stem: str | None = None,
        postgres: PostgresServer | None = None, timeout: float = 7200,
        lease: str = LEASE) -> Report:
    report = Report("fleet", {"mailboxes": mailboxes, "messages": messages,
                              "processes": processes, "actions": actions, "repeat": repeat,
                              "lease": lease})
    own = postgres is None
    server = start_postgres(mailboxes * max(processes) + 50, postgres)
    rounds: list[Round] = []
    try:
        report.notes.append(f"PostgreSQL {_server_version(server)} (the rig's cluster: "
                            "fsync off, synchronous_commit off)")
        with BenchServers() as servers:
            kept: tuple[list[Mailbox], str, Path] | None = None
            for count in processes:
                done, fleet, url, configs = backlog_round(
                    servers, server, servers.root, count, mailboxes, messages, timeout, lease)
                rounds.append(done)
                if kept is None:
                    kept = (fleet, url, configs)
            base = rounds[0]
            for done in rounds:
                p = done.processes
                rate = done.messages / done.seconds
                report.add(f"backlog, {p} process(es): time", done.seconds, "s")
                report.add(f"backlog, {p} process(es): messages/s", rate, "msg/s")
                report.add(f"backlog, {p} process(es): scaling vs {base.processes}",
                           rate / (base.messages / base.seconds), "x")
                report.add(f"backlog, {p} process(es): daemons' CPU", done.daemon_cpu, "s")
                report.add(f"backlog, {p} process(es): daemons' CPU per message",
                           1000 * done.daemon_cpu / done.messages, "ms")
                report.add(f"backlog, {p} process(es): PostgreSQL's CPU", done.server_cpu, "s")
                report.add(f"backlog, {p} process(es): leases per process",
                           "/".join(str(n) for n in done.spread))
                report.add(f"backlog, {p} process(es): mail sent", done.sent)
                report.add(f"backlog, {p} process(es): leases lost", done.lost)
            assert kept is not None
            fleet, url, configs = kept
            wall, cpu = no_news(configs, nonews_runs)
            report.add(f"no news, poll --once over {mailboxes} mailboxes: wall (median)",
                       wall, "s")
            report.add(f"no news, poll --once over {mailboxes} mailboxes: CPU (median)",
                       cpu, "s")
            report.add("no news: wall per mailbox", 1000 * wall / mailboxes, "ms")
            times, commands = no_news_cycles(fleet, url, max(repeat // 4, 3))
            report.add(f"no news, a daemon's cycle over {mailboxes} mailboxes (median)",
                       statistics.median(times), "ms")
            report.add("no news, a daemon's cycle: per mailbox (median)",
                       statistics.median(times) / mailboxes, "ms")
            report.add("no news, a daemon's cycle: IMAP commands per mailbox",
                       commands / mailboxes)
            if actions:
                now = datetime.now(UTC)
                schemas = [assistant_schema(m.rig.address) for m in fleet]
                counts = add_actions(url, schemas, actions, now)
                report.notes.append(f"actions added: {counts} over {len(schemas)} schemas, "
                                    "then ANALYZE")
                timed = due_queries(url, fleet, now, repeat)
                found = timed.pop("found")
                for name, times in timed.items():
                    ordered = sorted(times)
                    report.add(f"{name}: time (median)", statistics.median(times), "ms",
                               ("<", DUE_GOAL_MS))
                    report.add(f"{name}: time (95th percentile)",
                               ordered[int(0.95 * (len(ordered) - 1))], "ms")
                    report.add(f"{name}: time (max)", ordered[-1], "ms")
                report.add("due(now): actions found (all assistants)", int(found[0]))
                report.add("due(now + 1 h): actions found (all assistants)", int(found[1]))
    finally:
        if own:
            server.close()
    report.notes.append(
        "2 cores shared with other work: the CPU times are the steadier figures; the scaling "
        "factor is only indicative (P processes on 2 busy cores, beside Dovecot and "
        "PostgreSQL on the same cores)")
    report.finish(results_dir, stem)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mailboxes", type=int, default=50)
    parser.add_argument("--messages", type=int, default=1000, help="backlog per mailbox")
    parser.add_argument("--processes", default="1,2,3",
                        help="the process counts to run, e.g. 1,2,3")
    parser.add_argument("--actions", type=int, default=1_000_000,
                        help="actions across all the assistants for the due query (0: skip)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--nonews-runs", type=int, default=3)
    parser.add_argument("--lease", default=LEASE, help="the configs' lease (default 30s)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    processes = [int(p) for p in args.processes.split(",")]
    run(args.mailboxes, args.messages, processes, args.actions, args.repeat, args.nonews_runs,
        None if args.no_write else args.results_dir,
        f"fleet-{args.mailboxes}x{args.messages}", lease=args.lease)
    return 0


if __name__ == "__main__":
    sys.exit(main())
