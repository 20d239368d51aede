"""Finding what is due among 100,000 tracked threads, and a cycle's cost with nothing to do.

    .venv/bin/python -m bench.due --threads 100000

Fills a state file through mailhelper's own tracker (``tracker.apply_event`` with the events
classification would make, so plan.py decides every scheduled action): N threads started one
every few minutes over the 60 days before ``now`` (80% asks, 20% offers), 40% of them answered
by a counterpart a few hours to days later. Then, as if the assistant had kept up, every action
that fell due before ``now`` is marked sent. Measured on that state:

- ``Store.due(now)`` (nothing due; and an hour later, with some due) and ``Store.next_due()``;
- the store side of a cycle with nothing to do (``replan_if_config_changed``, ``plan_digests``,
  ``Outbox.send_due``), and a whole ``Assistant.cycle`` against an empty INBOX on the rig's
  Dovecot (the same connection, as the daemon runs it).

Goal (issue 7): finding what is due < 10 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.imapcount import CommandLog
from bench.nonews import DIGEST, assistant_for
from bench.results import RESULTS_DIR, Report
from bench.servers import BenchServers
from mailhelper.decide.events import CounterpartReply, NewThread
from mailhelper.engine import tracker
from mailhelper.engine.outbox import Outbox, hold_reason
from mailhelper.mail.mailbox import Mailbox
from mailhelper.mail.transport import SmtpTransport
from mailhelper.model.settings import Settings
from mailhelper.model.values import Address, Kind
from mailhelper.state.store import Store, to_text

DUE_GOAL_MS = 10
NOW = datetime(2027, 2, 1, 9, 30, tzinfo=UTC)
SPAN = timedelta(days=60)


def populate(store: Store, settings: Settings, threads: int, seed: int = 11) -> float:
    """Start ``threads`` threads (and the replies to 40% of them) through the tracker."""
    rng = random.Random(seed)
    owner = settings.owners[0]
    began = time.perf_counter()
    step = SPAN / max(threads, 1)
    for start in range(0, threads, 1000):
        with store.transaction():
            for n in range(start, min(start + 1000, threads)):
                created = NOW - SPAN + step * n
                person = Address(f"person{rng.randrange(5000)}@partner{n % 53}.example",
                                 f"Person {n}")
                message_id = f"ask-{n}@owner.example"
                kind = Kind.ASK if rng.random() < 0.8 else Kind.OFFER
                tracker.apply_event(store, settings, NewThread(
                    message_id=message_id, kind=kind, owner=owner, counterparts=(person,),
                    subject=f"Thread {n}: could you help with the {rng.choice('abcdefgh')} plan?",
                    thread_ids=(message_id,), excerpt="Could you help?"), created)
                if rng.random() < 0.4:
                    thread = store.thread_for((message_id,))
                    assert thread is not None
                    replied = min(created + timedelta(hours=rng.uniform(1, 120)), NOW)
                    tracker.apply_event(store, settings, CounterpartReply(
                        message_id=f"reply-{n}@partner.example", thread_id=thread.id,
                        sender=person, excerpt="Happy to help"), replied)
    # The assistant kept up: what fell due before now went out when it fell due.
    with store.transaction():
        store.db.execute("UPDATE actions SET status='sent', sent_at=due, appended=1 "
                         "WHERE status='pending' AND due < ?", (to_text(NOW),))
        # ... and each delivery was counted for the sending limits, as Store.mark_sent does.
        store.db.execute("INSERT INTO deliveries (action_id, recipient, at) "
                         "SELECT id, json_extract(recipients, '$[0][0]'), sent_at FROM actions "
                         "WHERE status='sent'")
    return time.perf_counter() - began


def _timed(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median, max) milliseconds of ``call()`` over ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), max(times)


def run(threads: int, repeat: int = 50, results_dir: Path | None = RESULTS_DIR,
        stem: str | None = None) -> Report:
    report = Report("due", {"threads": threads, "repeat": repeat, "now": NOW.isoformat()})
    with BenchServers() as servers:
        rig = servers.assistant({"confirm": False, **DIGEST})
        assistant = assistant_for(Path(rig.config_path))
        store, settings = assistant.store, assistant.settings
        try:
            seconds = populate(store, settings, threads)
            counts = dict(store.db.execute(
                "SELECT status, count(*) FROM actions GROUP BY status").fetchall())
            report.notes.append(f"state filled through the tracker in {seconds:.1f} s: "
                                f"actions by status {counts}")
            report.add("threads", int(store.db.execute("SELECT count(*) FROM threads")
                                      .fetchone()[0]))
            report.add("pending actions", int(counts.get("pending", 0)))
            later = NOW + timedelta(hours=1)
            report.add("due at now: actions", len(store.due(NOW)))
            median, worst = _timed(lambda: store.due(NOW), repeat)
            report.add("due(now): time (median)", median, "ms", ("<", DUE_GOAL_MS))
            report.add("due(now): time (max)", worst, "ms")
            report.add("due an hour later: actions", len(store.due(later)))
            median, worst = _timed(lambda: store.due(later), repeat)
            report.add("due(now + 1 h): time (median)", median, "ms", ("<", DUE_GOAL_MS))
            median, _ = _timed(store.next_due, repeat)
            report.add("next_due(): time (median)", median, "ms", ("<", DUE_GOAL_MS))
            due_later = store.due(later)
            if due_later:
                median, _ = _timed(lambda: hold_reason(store, settings, due_later[0], later),
                                   repeat)
                report.add("sending-limit check of one due action (median)", median, "ms")
            _cycle_overhead(assistant, report, repeat)
        finally:
            store.close()
    report.finish(results_dir, stem)
    return report


def _cycle_overhead(assistant: object, report: Report, repeat: int) -> None:
    from mailhelper.engine.daemon import Assistant

    assert isinstance(assistant, Assistant)
    store, settings = assistant.store, assistant.settings
    transport = SmtpTransport(assistant.smtp_factory)  # type: ignore[arg-type]
    outbox = Outbox(store, settings, assistant.renderer, transport, None)

    def store_side() -> None:
        tracker.replan_if_config_changed(store, settings, NOW)
        with store.transaction():
            tracker.plan_digests(store, settings, NOW)
        sent = outbox.send_due(NOW)
        assert not sent.sent, "something was due in a cycle meant to have nothing to do"

    store_side()  # records the schedule fingerprint and plans the digest once
    median, worst = _timed(store_side, repeat)
    report.add("cycle, store side, nothing due (median)", median, "ms")
    report.add("cycle, store side, nothing due (max)", worst, "ms")
    mailbox = Mailbox(assistant.imap_factory(), settings.imap.folder)
    try:
        assistant.cycle(mailbox, NOW)
        with CommandLog() as commands:
            median, worst = _timed(lambda: assistant.cycle(mailbox, NOW), repeat)
        report.add("whole cycle on an empty INBOX (median)", median, "ms")
        report.add("whole cycle on an empty INBOX (max)", worst, "ms")
        report.add("IMAP commands per cycle", len(commands) // repeat)
    finally:
        mailbox.logout()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.due", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    run(args.threads, args.repeat, None if args.no_write else args.results_dir,
        f"due-{args.threads}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
