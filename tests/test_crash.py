"""A month of asks, offers, replies and owner commands, run twice against the real rig: once
cleanly, once with the poll process SIGKILLed at random points (at least 50 times) and
restarted. Both runs must end the same: every mail that should go out went out exactly once
(the only extra copies being those a kill between the server's acceptance and the local
record explains, SPEC.md safety rule 3), no inbox message was lost or acted on twice, and the
state file passes ``PRAGMA integrity_check``.

The script is made from a seeded random generator, and the kills from another, so a failure
replays the same way. Kills come in two kinds: ``MAILHELPER_CRASH_AT=point:N`` (chosen only
where that point still lies ahead in the step, so it always fires) and a SIGKILL after a random
delay (lands wherever it lands: the assertions hold for any landing).
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.rig.assistant import OWNER, OWNER_NAME, RigAssistant
from tests.rig.dovecot import DovecotServer
from tests.rig.mailboxes import make_message, read_folder
from tests.rig.smtpsink import SmtpSink

SCRIPT_SEED = 20261207
KILL_SEED = 5
MIN_KILLS = 50
START = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)  # a Monday
DAYS = 30
STEP_TIMES = ((9, 30),)  # one poll a day: the reminders fall due at the hour of the ask

INBOX_POINTS = ("during_fetch", "before_commit", "after_commit")
SEND_POINTS = ("before_send", "after_accept", "after_record", "after_append")


# -- the script -------------------------------------------------------------------------------
@dataclass
class Command:
    """The owner answers the assistant's latest ``target`` mail about ``root`` with ``body``."""

    not_before: int
    root: str
    target: str
    body: str


@dataclass
class Script:
    """What lands in the inbox at each step; commands wait for the mail they answer."""

    fixed: dict[int, list[bytes]] = field(default_factory=dict)
    commands: list[Command] = field(default_factory=list)

    def add(self, step: int, raw: bytes) -> None:
        self.fixed.setdefault(step, []).append(raw)


def step_time(step: int) -> datetime:
    hour, minute = STEP_TIMES[step % len(STEP_TIMES)]
    return START + timedelta(days=step // len(STEP_TIMES), hours=hour, minutes=minute)


def _date(step: int) -> datetime:
    return step_time(step) - timedelta(minutes=20)


def make_script(assistant: str, seed: int) -> Script:
    """Ten asks and four offers, each with its own fate, over the month."""
    rng = random.Random(seed)
    script = Script()
    ask_fates = ["reply", "reply_send", "reply_done", "silent", "snooze", "cancel",
                 "late_reply", "reply_send", "silent", "unknown_command"]
    rng.shuffle(ask_fates)
    per_day = len(STEP_TIMES)
    for n, fate in enumerate(ask_fates):
        step = rng.randrange(0, 14 * per_day)
        root = f"<ask-{n}@example.com>"
        person = f"Jane {n} <jane{n}@example.org>"
        script.add(step, make_message(
            f"{OWNER_NAME} <{OWNER}>", person, f"Intro number {n}",
            f"Hi Jane {n}, could you introduce me to someone at Acme {n}?", cc=assistant,
            message_id=root, date=_date(step)))
        reply_at = step + rng.randrange(1, 3) * per_day
        if fate == "late_reply":
            reply_at = step + 4 * per_day
        if fate.startswith("reply") or fate == "late_reply":
            script.add(reply_at, make_message(
                person, f"{OWNER_NAME} <{OWNER}>", f"Re: Intro number {n}",
                "Happy to help: meet Ann.", cc=assistant, in_reply_to=root, references=root,
                message_id=f"<reply-{n}@example.org>", date=_date(reply_at)))
        if fate == "reply_send":
            script.commands.append(Command(reply_at, root, "thank_you_draft", "send"))
        if fate == "reply_done":
            script.commands.append(Command(reply_at, root, "thank_you_draft", "Done, thanks!"))
        if fate == "snooze":
            script.commands.append(Command(step, root, "follow_up", "snooze 2 days"))
        if fate == "cancel":
            script.commands.append(Command(step, root, "receipt", "cancel"))
        if fate == "unknown_command":
            script.commands.append(Command(step, root, "receipt", "what now?"))
    for n, fate in enumerate(["decline", "owner_answers", "silent", "decline"]):
        step = rng.randrange(0, 20 * per_day)
        root = f"<offer-{n}@example.com>"
        person = f"Olga {n} <olga{n}@example.net>"
        script.add(step, make_message(
            f"{OWNER_NAME} <{OWNER}>", person, f"[offer] Your offer to help, {n}",
            f"Olga {n}, thanks for offering to review my plan!", cc=assistant,
            message_id=root, date=_date(step)))
        if fate == "decline":
            script.commands.append(Command(step, root, "offer_follow_up", "decline"))
        if fate == "owner_answers":
            later = step + 2 * per_day
            script.add(later, make_message(
                f"{OWNER_NAME} <{OWNER}>", person, f"Re: [offer] Your offer to help, {n}",
                "What would help most: the budget part.", cc=assistant, in_reply_to=root,
                references=root, message_id=f"<offer-answer-{n}@example.com>",
                date=_date(later)))
    return script


def _thread_of(state: Path, root: str) -> str | None:
    """The id of the thread that ``root`` started (as X-Mailhelper-Thread shows it)."""
    with sqlite3.connect(state) as db:
        row = db.execute("SELECT thread_id FROM thread_messages WHERE message_id=?",
                         (root.strip("<>"),)).fetchone()
    return None if row is None else str(row[0])


def due_commands(script: Script, step: int, rig: RigAssistant) -> list[bytes]:
    """The owner's answers whose target mail has arrived by now (each once)."""
    raws: list[bytes] = []
    sent = rig.sent()
    for command in list(script.commands):
        if command.not_before > step or not rig.state.exists():
            continue
        thread = _thread_of(rig.state, command.root)
        targets = [m for m in sent if str(m["X-Mailhelper-Action"]) == command.target
                   and thread is not None and str(m["X-Mailhelper-Thread"]) == thread]
        if not targets:
            continue
        target = targets[-1]
        target_id = str(target["Message-ID"])
        raws.append(make_message(
            f"{OWNER_NAME} <{OWNER}>", rig.address, f"Re: {target['Subject']}",
            f"{command.body}\n\n> (quoted mail)", in_reply_to=target_id,
            references=f"{command.root} {target_id}",
            message_id=f"<cmd-{step}-{len(raws)}-{command.root.strip('<>')}>",
            date=_date(step)))
        script.commands.remove(command)
    return raws


# -- what a run leaves behind -----------------------------------------------------------------
def table(path: Path, query: str) -> Counter[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return Counter(tuple(row) for row in db.execute(query))


def outcome(rig: RigAssistant) -> dict[str, Counter[tuple[Any, ...]]]:
    """Everything the assistant decided and recorded, less what depends on the attempt."""
    return {
        "threads": table(rig.state, "SELECT * FROM threads"),
        "thread_messages": table(rig.state, "SELECT * FROM thread_messages"),
        "actions": table(rig.state, "SELECT key, kind, thread_id, due, recipients, data, "
                                    "status, message_id, sent_at, appended FROM actions"),
        "events": table(rig.state, "SELECT thread_id, at, kind, message_id, detail FROM events"),
        "processed": table(rig.state, "SELECT message_id, at, outcome FROM processed"),
        "deliveries": table(rig.state, "SELECT action_id, recipient, at FROM deliveries"),
    }


def sink_ids(sink: SmtpSink) -> Counter[str]:
    return Counter(str(m["Message-ID"]) for m in sink.messages())


def folder_ids(rig: RigAssistant, folder: str) -> Counter[str]:
    return Counter(str(m["Message-ID"]) for m in rig.folder(folder))


def share_message_id_secret(source: Path, target: Path) -> None:
    """Start the state ``target`` with the Message-ID secret of the state ``source``."""
    from mailhelper.state.store import MESSAGE_ID_SECRET, Store

    with sqlite3.connect(source) as db:
        [(secret,)] = db.execute("SELECT value FROM meta WHERE key=?", (MESSAGE_ID_SECRET,))
    store = Store.open(target, "example.com")
    with store.transaction():
        store.set_meta(MESSAGE_ID_SECRET, secret)
    store.close()


def _new_assistant(dovecot: DovecotServer, sink: SmtpSink, workdir: Path,
                   name: str) -> RigAssistant:
    workdir.mkdir()
    account = dovecot.account(dovecot.add_user(f"{name}@example.com"))
    return RigAssistant(dovecot, account, sink, workdir)


# -- the test ---------------------------------------------------------------------------------
@dataclass
class Tally:
    kills: int = 0
    point_kills: Counter[str] = field(default_factory=Counter)
    timer_kills: int = 0
    timer_misses: int = 0
    window_hits: int = 0
    runs: int = 0


_run_numbers = iter(range(1, 1_000_000))


@pytest.mark.slow
@pytest.mark.timeout(600)  # about 1.5 minutes alone; more on a loaded machine
def test_a_month_with_kills_ends_as_the_month_without(
    dovecot: DovecotServer, smtp_sink_factory: Any, tmp_path: Path
) -> None:
    began = time.monotonic()
    number = next(_run_numbers)
    clean = _new_assistant(dovecot, smtp_sink_factory(), tmp_path / "clean",
                           f"crash-clean-{number}")
    killed = _new_assistant(dovecot, smtp_sink_factory(), tmp_path / "killed",
                            f"crash-killed-{number}")

    # The clean run, in this process: what lands in the inbox at each step, what goes out.
    script = make_script(clean.address, SCRIPT_SEED)
    inbox: dict[int, list[bytes]] = {}
    sent_at_step: dict[int, set[str]] = {}
    for step in range(DAYS * len(STEP_TIMES)):
        arriving = script.fixed.get(step, []) + due_commands(script, step, clean)
        for raw in arriving:
            clean.deliver(raw)
        before = set(sink_ids(clean.sink))
        clean.poll(step_time(step))
        inbox[step] = arriving
        sent_at_step[step] = set(sink_ids(clean.sink)) - before
    assert script.commands == [], f"commands whose mail never came: {script.commands}"
    assert not [row for row in table(clean.state, "SELECT outcome FROM processed")
                if row[0].startswith("error")], "every script mail is understood"
    reference = sink_ids(clean.sink)
    assert set(reference.values()) == {1}
    kinds = Counter(str(m["X-Mailhelper-Action"]) for m in clean.sink.messages())
    assert {"receipt", "follow_up", "thank_you_draft", "thank_you", "closing_note",
            "offer_follow_up", "command_reply", "help"} <= set(kinds), kinds
    clean_seconds = time.monotonic() - began

    # The same month again, with kills. Commands are the clean run's, byte for byte: they
    # answer mail whose Message-IDs are the same in both runs, since the two runs stand for
    # one installation and so share its Message-ID secret.
    share_message_id_secret(clean.state, killed.state)
    rng = random.Random(KILL_SEED)
    tally = Tally()
    busy = [s for s in inbox if inbox[s] or sent_at_step[s]]
    for step in range(DAYS * len(STEP_TIMES)):
        for raw in inbox[step]:
            killed.deliver(raw.replace(clean.address.encode(), killed.address.encode()))
        if step not in busy:
            continue  # the clean run did nothing here: neither would this one
        done = busy.index(step)
        wanted = max(rng.choice((1, 1, 2, 2, 3)),
                     -(-(MIN_KILLS + 5 - tally.kills) // (len(busy) - done)))
        # Timed kills may come too late; allow them only while ahead of the pace that makes
        # MIN_KILLS certain with crash points alone.
        ahead = tally.kills >= (MIN_KILLS + 5) * done // len(busy)
        now = step_time(step).isoformat()
        finished_cleanly = False
        for attempt in range(wanted):
            mode = _choose_kill(rng, killed, inbox[step], sent_at_step[step],
                                last=attempt == wanted - 1, timer=ahead,
                                used=tally.point_kills)
            if mode is None:
                break  # nothing left to interrupt but the settling a normal run does
            kind, argument = mode
            if kind == "point":
                result = killed.poll_process(now, env={"MAILHELPER_CRASH_AT": argument})
            else:
                result = killed.poll_process(now, kill_after=float(argument))
            tally.runs += 1
            if result.returncode != -9:
                assert result.returncode == 0, result.stderr
                assert kind == "timer", f"{argument} did not fire:\n{result.stderr}"
                tally.timer_misses += 1
                finished_cleanly = True
                break
            tally.kills += 1
            if kind == "point":
                tally.point_kills[argument.partition(":")[0]] += 1
            else:
                tally.timer_kills += 1
                # A client killed mid-command leaves the servers a few milliseconds of work
                # (storing a DATA or an APPEND they had whole): let them finish it first.
                time.sleep(0.3)
            tally.window_hits += _accepted_but_unrecorded(killed)
        if not finished_cleanly:
            killed.poll(now)  # the restart: a normal poll (in this process, to save time)
            tally.runs += 1

    # Every kill was survived: same decisions, same mail, nothing twice but the window.
    seconds = time.monotonic() - began
    print(f"\ncrash month: {tally.kills} kills ({dict(tally.point_kills)}, "
          f"{tally.timer_kills} timed, {tally.timer_misses} timers too late) in {tally.runs} "
          f"runs; {tally.window_hits} duplicates from the accept-to-record window; "
          f"{sum(reference.values())} mails; clean run {clean_seconds:.0f}s, all {seconds:.0f}s")
    assert tally.kills >= MIN_KILLS
    assert set(tally.point_kills) == set(INBOX_POINTS + SEND_POINTS), tally.point_kills
    got = sink_ids(killed.sink)
    assert set(got) == set(reference), "the same mails went out"
    extra = got - reference
    assert sum(extra.values()) == tally.window_hits, (extra, tally)
    assert folder_ids(killed, "Sent") == folder_ids(clean, "Sent") == reference
    assert outcome(killed) == outcome(clean)
    for rig in (clean, killed):
        with sqlite3.connect(rig.state) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert db.execute("SELECT count(*) FROM outgoing").fetchone()[0] == 0
            assert db.execute(
                "SELECT count(*) FROM actions WHERE status='sending'").fetchone()[0] == 0
        flags = [f for _uid, f, _raw in read_folder(dovecot, rig.account, "INBOX")]
        assert flags and all(b"$MailhelperHandled" in f for f in flags)
    assert len(read_folder(dovecot, killed.account, "INBOX")) == sum(map(len, inbox.values()))


def _choose_kill(rng: random.Random, rig: RigAssistant, arriving: list[bytes],
                 to_send: set[str], last: bool, timer: bool,
                 used: Counter[str]) -> tuple[str, str] | None:
    """A kill that lands inside the work this step still has, or None when none is left.

    Only the ``last`` kill of a step may use up work (a point after a commit or after the
    server's acceptance); earlier ones stop before the first new message is committed or the
    first mail is handed over, so the step keeps work for the next kill.
    """
    handled = table(rig.state, "SELECT message_id FROM processed") if rig.state.exists() \
        else Counter()
    unread = sum(1 for raw in arriving if (_message_id(raw),) not in handled)
    unsent = len(to_send - set(sink_ids(rig.sink)))
    if not unread and not unsent:
        return None
    if timer and last and rng.random() < 0.4:
        return "timer", f"{rng.uniform(0.8, 2.0):.2f}"
    if last:  # the point used least so far, so that every point gets its kills
        points = [(p, unread) for p in INBOX_POINTS if unread] + [
            (p, unsent) for p in SEND_POINTS if unsent]
        point, ahead = min(points, key=lambda pair: (used[pair[0]], rng.random()))
        return "point", f"{point}:{rng.randint(1, ahead)}"
    # Killing at the first send would first use up the unread mail: only once there is none.
    keeping = ["during_fetch", "before_commit"] if unread else ["before_send"]
    return "point", f"{rng.choice(keeping)}:1"


def _message_id(raw: bytes) -> str:
    for line in raw.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode().strip("<>")
    raise AssertionError("script mail without a Message-ID")


def _accepted_but_unrecorded(rig: RigAssistant) -> int:
    """Attempts the server accepted (the sink has them) that the kill kept from being
    recorded: each will go a second time, the window SPEC.md allows."""
    in_sink = {mid.strip("<>") for mid in sink_ids(rig.sink)}
    with sqlite3.connect(rig.state) as db:
        sending = [row[0] for row in db.execute(
            "SELECT message_id FROM actions WHERE status='sending'")]
    return sum(1 for mid in sending if mid in in_sink)
