"""Reading ahead in a worker process (mailhelper/engine/pipeline.py): the same readings, the
same outcomes in the same order, and the in-process path whenever the worker cannot say."""

from __future__ import annotations

import re
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from bench.mailgen import FIRST_DATE, generate
from mailhelper.decide.prefilter import header_check
from mailhelper.engine import pipeline, readworker
from mailhelper.engine.pipeline import Early, read_ahead, read_early
from mailhelper.engine.readworker import Worker
from mailhelper.mail.mailbox import Fetched, content_key
from mailhelper.model.settings import Settings
from mailhelper.model.values import Address
from mailhelper.read.parse import UnparseableMail, parse_mail
from mailhelper.read.replytext import recap, strip_reply
from tests.rig.assistant import RigAssistant
from tests.test_abuse import assert_consistent

SETTINGS = Settings(owners=(Address("sam@example.com"),),
                    assistant=Address("helper@example.com"))
NOT_MAIL = b"X-Nothing: at all\r\n\r\nno From, Sender, Message-ID or Subject\r\n"
SLOW = (b"From: Eve <eve@evil.test>\r\nSubject: hello\r\nContent-Type: text/html\r\n\r\n"
        + b"<blockquote><br>" * 95_000)


def _messages(count: int) -> list[Fetched]:
    raws = [g.raw for g in generate(count, "helper@example.com", mix="project")]
    raws[3:3] = [NOT_MAIL]
    fetched = [Fetched(uid, raw, len(raw)) for uid, raw in enumerate(raws, start=1)]
    fetched.insert(5, Fetched(999, b"From: a@b\r\nSubject: big\r\n\r\n", 10**9, too_large=True))
    return fetched


def _in_process(raw: bytes) -> Early:
    """What read_early must find, computed here from the reading's own functions."""
    candidate = header_check(raw, SETTINGS)
    if candidate is not None and len(candidate.ids) == 1:
        return Early(content_key(raw), candidate=candidate)
    try:
        mail = parse_mail(raw)
    except UnparseableMail as exc:
        return Early(content_key(raw), candidate=candidate, unparseable=str(exc))
    text = mail.reply_text or mail.text
    return Early(content_key(raw), candidate=candidate, mail=mail,
                 stripped=strip_reply(text), recapped=recap(text))


def test_the_worker_reads_each_message_as_this_process_does_and_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pipeline, "MIN_MESSAGES", 1)
    monkeypatch.setattr(pipeline, "AHEAD", 7)  # less than the messages: the window moves
    messages = _messages(60)
    got = list(read_ahead(iter(messages), SETTINGS, len(messages), 30.0))
    assert [m.uid for m, _ in got] == [m.uid for m in messages]
    kinds = set()
    for message, early in got:
        if message.too_large:
            assert early is None  # its header only: the caller reads it as too large
            continue
        assert early == _in_process(message.raw), message.uid
        assert early is not None
        kinds.add("ignorable?" if early.mail is None and early.unparseable is None
                  else "candidate and parsed" if early.candidate is not None
                  else "unparseable" if early.unparseable is not None else "parsed")
    # Each way through read_early was taken: a newsletter's header may do, a reply to a
    # thread may not (so it is parsed too), an owner's ask is parsed, NOT_MAIL is no mail.
    assert kinds == {"ignorable?", "candidate and parsed", "parsed", "unparseable"}


def test_read_early_is_the_in_process_reading() -> None:
    for message in _messages(20):
        if not message.too_large:
            assert read_early(message.raw, SETTINGS) == _in_process(message.raw)


def test_a_small_folder_is_read_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[object] = []
    monkeypatch.setattr(readworker, "Worker", lambda settings: started.append(settings))
    messages = _messages(10)
    got = list(read_ahead(iter(messages), SETTINGS, pipeline.MIN_MESSAGES - 1, 30.0))
    assert got == [(m, None) for m in messages] and started == []


def test_a_worker_that_dies_leaves_the_rest_to_this_process() -> None:
    worker = Worker(SETTINGS)
    try:
        first = worker.submit(_messages(1)[0].raw)
        assert first is not None and worker.result(first, 30.0) is not None
        second = worker.submit(SLOW)
        assert second is not None
        worker._process.kill()  # type: ignore[union-attr]
        assert worker.result(second, 30.0) is None
        assert worker.broken and worker.submit(b"Subject: x\r\n\r\n") is None
    finally:
        worker.close()


def test_a_worker_slower_than_the_budget_is_stopped_and_the_message_left_to_this_process(
) -> None:
    worker = Worker(SETTINGS)
    try:
        ticket = worker.submit(SLOW)  # most of a second of CPU
        assert ticket is not None
        assert worker.result(ticket, 0.05) is None
        assert worker.broken
        assert worker._process is not None and worker._process.poll() is not None  # killed
    finally:
        worker.close()


def test_a_stop_ends_the_reading_after_the_message_in_hand(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pipeline, "MIN_MESSAGES", 1)
    stop = threading.Event()
    messages = _messages(30)
    seen = []
    for message, _early in read_ahead(iter(messages), SETTINGS, len(messages), 30.0, stop):
        seen.append(message.uid)
        if len(seen) == 3:
            stop.set()  # the worker has read further ahead: none of that is yielded
    assert seen == [m.uid for m in messages[:3]]


def _normal(text: str, rig: RigAssistant) -> str:
    local = rig.address.partition("@")[0]
    return re.sub(re.escape(local), "ASSISTANT", text)


def _outcomes(rig: RigAssistant) -> list[tuple[str, str]]:
    with sqlite3.connect(rig.state) as db:
        rows = db.execute("SELECT message_id, outcome FROM processed ORDER BY rowid").fetchall()
    return [(_normal(m, rig), _normal(o, rig)) for m, o in rows]


def _threads(rig: RigAssistant) -> list[str]:
    """Every thread as stored (the excerpts quoted back in reminders too), in order."""
    with sqlite3.connect(rig.state) as db:
        rows = db.execute("SELECT * FROM threads ORDER BY id").fetchall()
    return [_normal(repr(row), rig) for row in rows]


def _read_backlog(rig: RigAssistant, count: int, env: dict[str, str]) -> None:
    now = (FIRST_DATE + timedelta(minutes=count + 1)).isoformat()
    rig.poll(now)  # the first start, on the empty folder: all that comes next is new mail
    for generated in generate(count, rig.address, mix="project"):
        rig.deliver(generated.raw)
    rig.deliver(NOT_MAIL)
    done = rig.poll_process(now, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "reading worker" not in done.stderr  # it did not break
    assert_consistent(rig, delivered=count + 1)


def test_a_poll_with_the_worker_has_the_outcomes_of_one_without_in_the_same_order(
    rig_assistant: RigAssistant, dovecot: object, smtp_sink: object, tmp_path: Path,
) -> None:
    other_account = dovecot.account(dovecot.add_user("helper-pipeline@example.com"))  # type: ignore[attr-defined]
    (tmp_path / "other").mkdir()
    other = RigAssistant(dovecot, other_account, smtp_sink, tmp_path / "other")  # type: ignore[arg-type]
    _read_backlog(rig_assistant, 80, {"MAILHELPER_READ_AHEAD": "1"})
    _read_backlog(other, 80, {"MAILHELPER_READ_AHEAD": "off"})
    with_worker, without = _outcomes(rig_assistant), _outcomes(other)
    assert len(with_worker) == 81
    assert with_worker == without
    threads = _threads(rig_assistant)
    assert threads == _threads(other) and len(threads) > 10
    assert any("new ask" in o for _m, o in with_worker)
    assert any("cannot be parsed" in o for _m, o in with_worker)


def test_a_message_over_the_time_budget_in_the_worker_is_filed_as_without_it(
    rig_assistant: RigAssistant,
) -> None:
    # test_abuse_bounds' bomb (about a second of CPU) under a budget of half a second, with
    # the worker reading ahead: the worker is stopped after half a second, the bomb is read
    # again here under the budget, which files it as it always has; the ask after it is read.
    from tests.test_abuse_bounds import SLOW_HEADERS, SLOW_HTML, T0, _ask, _stranger_html

    rig_assistant.configure({"limits": {"message_seconds": 0.5}})
    rig_assistant.deliver(_stranger_html(rig_assistant, SLOW_HTML, SLOW_HEADERS))
    rig_assistant.deliver(_ask(rig_assistant))
    done = rig_assistant.poll_process(T0, env={"MAILHELPER_READ_AHEAD": "1"}, timeout=120)
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "the reading worker spent more than 0.5 s on one message" in output
    assert "message UID 1: took longer than 0.5 s to read; it goes to mailhelper/errors" in output
    assert "<ask-bomb@example.com> new ask to jane@example.org" in output
    assert_consistent(rig_assistant, delivered=2)


def _workers() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if readworker._ENTRY.encode() in command:
                found.append(int(entry.name))
    return found


def test_a_crash_with_the_worker_reading_ahead_loses_nothing_and_sends_once(
    rig_assistant: RigAssistant,
) -> None:
    count = 40
    now = (FIRST_DATE + timedelta(minutes=count + 1)).isoformat()
    rig_assistant.poll(now)
    for generated in generate(count, rig_assistant.address, mix="project"):
        rig_assistant.deliver(generated.raw)
    env = {"MAILHELPER_READ_AHEAD": "1"}
    # Killed in the 7th message, the worker reading ahead and the messages before it in a
    # group not yet committed (after_commit:7 would come only once the 40 are committed).
    killed = rig_assistant.poll_process(now, env={**env, "MAILHELPER_CRASH_AT": "before_commit:7"},
                                        timeout=120)
    assert killed.returncode == -9, killed.stderr
    # The worker's input ended with its parent: it ends too, and leaves nothing behind.
    for _ in range(100):
        if not _workers():
            break
        threading.Event().wait(0.05)
    assert _workers() == []
    done = rig_assistant.poll_process(now, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert_consistent(rig_assistant, delivered=count)
    receipts = [m for m in rig_assistant.sent() if m["X-Mailhelper-Action"] == "receipt"]
    answering = [m["In-Reply-To"] for m in receipts]
    assert receipts and len(set(answering)) == len(answering)


def test_a_handed_over_strip_reply_answer_serves_only_its_own_text() -> None:
    from mailhelper.read import replytext

    text = "Hi Jane,\n\nCould you look over the plan?\n\nOn Mon, Bob wrote:\n> old\n"
    expected = replytext.recap(text)
    replytext.hand_over(text, replytext.strip_reply(text))
    assert replytext.recap(text) == expected
    replytext.hand_over("another text", "Something else entirely.")
    assert replytext.recap(text) == expected  # handed for another text: stripped here
    assert replytext.recap("another text") == "Something else entirely."


def test_a_handed_over_recap_serves_only_its_own_text_and_length() -> None:
    from mailhelper.read import replytext

    text = "Hi Jane,\n\nCould you look over the plan? It is short.\n\nOn Mon, Bob wrote:\n> x\n"
    stripped = replytext.strip_reply(text)
    assert replytext.recap_stripped(stripped) == replytext.recap(text)
    replytext.hand_over(text, stripped, "As handed over.")
    assert replytext.recap(text) == "As handed over."  # taken, not computed
    assert replytext.recap(text, 20) == "Could you look…"  # another length: computed
    assert replytext.recap("another text") == "another text"
    replytext.hand_over("another text", "Another text", None)
    assert replytext.recap(text) == "Could you look over the plan? It is short."


def test_queued_messages_go_to_the_worker_together_at_send() -> None:
    worker = Worker(SETTINGS)
    try:
        raws = [m.raw for m in _messages(4) if not m.too_large][:3]
        tickets = [worker.submit(raw) for raw in raws]
        assert worker._outgoing  # queued, not written: no system call, no wake-up, per message
        worker.send()
        assert not worker._outgoing  # three small messages: the pipe took them in one write
        for ticket, raw in zip(tickets, raws, strict=True):
            assert ticket is not None and worker.result(ticket, 30.0) == _in_process(raw)
    finally:
        worker.close()


def test_the_window_is_topped_up_in_bursts_from_half_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writes: list[int] = []

    class Counting(Worker):
        def _pump(self, wait: float | None) -> None:
            if self._outgoing:
                writes.append(len(self._outgoing))
            super()._pump(wait)

    monkeypatch.setattr(pipeline, "MIN_MESSAGES", 1)
    monkeypatch.setattr(pipeline, "AHEAD", 8)
    monkeypatch.setattr(readworker, "Worker", Counting)
    messages = _messages(60)
    got = list(read_ahead(iter(messages), SETTINGS, len(messages), 30.0))
    assert [m.uid for m, _ in got] == [m.uid for m in messages]
    assert all(early == _in_process(m.raw) for m, early in got if not m.too_large)
    # 61 messages through a window of 8 refilled from 4: about one write in four messages.
    assert len(writes) <= len(messages) // 4 + 2
