"""The per-message time budget: it interrupts pure-Python work in the main thread and in a
worker thread (where ``mailhelper run`` reads mail), it is not swallowed by the readers'
``except Exception`` guards, it never fires after its block is left, and a message over it
is filed as an error that is recognised by its content key before anything is read again.

The budgets here are tiny (10 ms) against loops that never end on their own, so the outcome
does not depend on the speed of the machine, only how soon it comes.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailhelper.cli.config import parse_settings
from mailhelper.compose.render import Renderer
from mailhelper.decide import prefilter
from mailhelper.engine.budget import OverBudget, TimeBudget
from mailhelper.engine.daemon import Assistant
from mailhelper.model.errors import ConfigError
from mailhelper.model.settings import Settings
from mailhelper.model.values import Address
from mailhelper.read import parse
from mailhelper.state.store import Store

pytestmark = pytest.mark.skipif(not TimeBudget(1).enforced, reason="needs CPython")

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
HOME = {"HOME": "/home/sam"}


def spin_forever() -> None:
    while True:
        pass


def test_the_budget_interrupts_a_pure_python_loop() -> None:
    with pytest.raises(OverBudget), TimeBudget(0.01).limit():
        spin_forever()


def test_each_block_of_many_gets_the_whole_budget_and_no_more() -> None:
    """Blocks one after another (a message each): the watchdog, still waiting for an
    earlier block's deadline, catches a later block at its own; so it does after the budget
    was made shorter, when the deadline it waits for lies beyond the new block's."""
    budget = TimeBudget(5)
    for _ in range(200):
        with budget.limit():
            pass
    budget.seconds = 0.01  # a reload with a shorter budget
    began = time.monotonic()
    with pytest.raises(OverBudget), budget.limit():
        spin_forever()
    assert time.monotonic() - began < 2.5  # not at the 5 s deadline waited for before
    for _ in range(200):
        with budget.limit():
            pass
    with pytest.raises(OverBudget), budget.limit():
        spin_forever()


def test_the_budget_interrupts_a_worker_thread_as_run_reads_there() -> None:
    outcome: list[str] = []

    def work() -> None:
        try:
            with TimeBudget(0.01).limit():
                spin_forever()
        except OverBudget:
            outcome.append("interrupted")

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(timeout=30)
    assert outcome == ["interrupted"]


def test_a_guard_catching_exception_does_not_swallow_it() -> None:
    def guarded() -> str:
        try:
            spin_forever()
        except Exception:  # what parse._guard and html_to_text do
            return "swallowed"
        return "unreachable"

    with pytest.raises(OverBudget), TimeBudget(0.01).limit():
        guarded()


def test_nothing_is_raised_once_the_block_is_left() -> None:
    budget = TimeBudget(0.01)
    for _ in range(20):
        with budget.limit():
            sum(range(100))
    deadline = time.monotonic() + 0.2  # 20 times the budget, outside it
    while time.monotonic() < deadline:
        pass


def _assistant(tmp_path: Path) -> Assistant:
    settings = Settings(owners=(Address("sam@example.com", "Sam"),),
                        assistant=Address("helper@example.com", "Sam's assistant"),
                        state=tmp_path / "state.db")
    store = Store.open(settings.state, "example.com")

    def no_server() -> object:
        raise AssertionError("handle() opens no connection")

    return Assistant(settings, store, Renderer(settings), no_server, no_server)  # type: ignore[arg-type]


BOMB = (b"From: Eve <eve@evil.test>\r\nTo: helper@example.com\r\nSubject: hi\r\n"
        b"Content-Type: text/html\r\n\r\n" + b"<blockquote><br>" * 60_000)


def test_a_message_over_budget_is_an_error_known_by_content_before_any_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    assistant = _assistant(tmp_path)
    assert assistant.budget.seconds == 10  # limits.message_seconds by default
    assistant.budget = TimeBudget(0.001)
    outcome, line = assistant.handle(BOMB, 7, NOW)
    assert outcome == "error" and "took longer than 0.001 s to read" in line
    assert "@mailhelper.invalid>" in line  # no Message-ID: recorded by its content key

    def no_reading(raw: bytes) -> None:
        raise AssertionError("read again")

    monkeypatch.setattr(parse, "parse_mail", no_reading)
    monkeypatch.setattr(prefilter, "ignorable", no_reading)
    again = assistant.handle(b"Received: from elsewhere\r\n" + BOMB, 8, NOW)
    known = line.partition(">")[0] + "> error: took longer than 0.001 s to read"
    assert again == ("error", known)  # the same record, found by content before any reading


MINIMAL = """\
owners: [{name: Sam Rivera, email: sam@example.com}]
assistant: {name: Sam's assistant, email: helper@example.com}
imap: {host: imap.example.com}
smtp: {host: smtp.example.com}
"""


def test_the_budget_is_limits_message_seconds_10_by_default() -> None:
    assert parse_settings(MINIMAL, "config.yaml", environ=HOME).limits.message_seconds == 10
    text = MINIMAL + "limits: {message_seconds: 3}\n"
    assert parse_settings(text, "config.yaml", environ=HOME).limits.message_seconds == 3
    text = MINIMAL + "limits: {message_seconds: 0.5}\n"
    assert parse_settings(text, "config.yaml", environ=HOME).limits.message_seconds == 0.5


@pytest.mark.parametrize(("value", "problem"), [
    ("0", "limits.message_seconds: 0 is out of range (must be from 0.1 to 3600)"),
    ("0.05", "limits.message_seconds: 0.05 is out of range (must be from 0.1 to 3600)"),
    ("ten", "limits.message_seconds: expected a number of seconds"),
])
def test_a_bad_budget_is_refused_at_start_up(value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_settings(MINIMAL + f"limits: {{message_seconds: {value}}}\n", "config.yaml",
                       environ=HOME)
    assert problem in str(refused.value)
