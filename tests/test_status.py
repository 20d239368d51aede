"""`mailhelper status`: the plain table groups threads by what the owner should do, newest
first; `--json` has exactly SPEC.md's keys; the table, the digest's lists and the ledger agree.

These tests build the state file by hand (a real SQLite store, no servers) and run the CLI on
it; the end-to-end walks in ``test_lifecycle*.py`` read ``status --json`` after real mail.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from mailhelper.cli.main import main
from mailhelper.cli.status import status_json
from mailhelper.engine.agenda import favours_due, thanks_due
from mailhelper.model.values import (
    Action,
    ActionKind,
    ActionStatus,
    Address,
    Kind,
    Thread,
    ThreadState,
)
from mailhelper.state.store import Store

SAM = Address("sam@example.com", "Sam Rivera")
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
SPEC_KEYS = {"id", "kind", "state", "subject", "counterparts", "created", "next_action"}


def thread(tid: int, kind: Kind, state: ThreadState, who: str, subject: str, *,
           days: int, answered: int | None = None, closed: int | None = None) -> Thread:
    created = T0 + timedelta(days=days)
    return Thread(
        id=tid, kind=kind, state=state, subject=subject, owner=SAM,
        counterparts=(Address(f"{who.lower()}@example.org", who),), created=created,
        root_message_id=f"root-{tid}@example.com", last_owner_activity=created,
        answered_at=None if answered is None else created + timedelta(hours=answered),
        closed_at=None if closed is None else created + timedelta(days=closed),
    )


def add(store: Store, thread: Thread, kind: ActionKind, due: datetime,
        status: ActionStatus = ActionStatus.PENDING) -> None:
    action = Action(key=f"t{thread.id}/{kind.value}", kind=kind, due=due, thread_id=thread.id,
                    recipients=(SAM,))
    store.add_action(action, T0)
    if status is not ActionStatus.PENDING:
        stored = store.action_by_key(action.key)
        assert stored is not None
        if status is ActionStatus.SENT:
            store.mark_sent(stored, due)
        else:
            store.set_status(stored.id or 0, status)


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Store]:
    """A state with one thread for each thing an owner can be asked to do, and a config."""
    state = tmp_path / "state.db"
    store = Store.open(state, "example.com")
    o, a = Kind.OFFER, Kind.ASK
    S = ThreadState
    threads = [
        thread(1, a, S.OPEN, "Ann", "Old open ask", days=0),
        thread(2, o, S.OPEN, "Bob", "Van for the move", days=1),
        thread(3, a, S.ANSWERED, "Cat", "CV review", days=2, answered=5),  # thanks pending
        thread(4, a, S.ANSWERED, "Dan", "Flat viewing", days=3, answered=50),  # thanked
        thread(5, a, S.DONE, "Eve", "Intro to Acme", days=4, answered=10, closed=1),
        thread(6, o, S.DECLINED, "Fay", "Spare desk", days=5, closed=1),  # draft mailed
        thread(7, a, S.EXPIRED, "Gus", "Nobody answered", days=6, closed=14),
        thread(8, a, S.CANCELLED, "Hal", "Never mind", days=7, closed=1),
        thread(9, a, S.OPEN, "Ivy", "New open ask", days=8),
    ]
    with store.transaction():
        for t in threads:
            store.save_thread(t)
        add(store, threads[0], ActionKind.FOLLOW_UP, T0 + timedelta(days=3))
        add(store, threads[1], ActionKind.OFFER_FOLLOW_UP, T0 + timedelta(days=2))
        add(store, threads[2], ActionKind.THANK_YOU_DRAFT, T0 + timedelta(days=2, hours=7))
        add(store, threads[3], ActionKind.THANK_YOU_DRAFT, T0 + timedelta(days=5),
            ActionStatus.SENT)
        add(store, threads[4], ActionKind.THANK_YOU_DRAFT, T0 + timedelta(days=4, hours=12),
            ActionStatus.SENT)
        add(store, threads[4], ActionKind.RETURN_FAVOR, T0 + timedelta(days=35))
        add(store, threads[5], ActionKind.THANK_YOU_DRAFT, T0 + timedelta(days=6),
            ActionStatus.SENT)
        add(store, threads[6], ActionKind.CLOSING_NOTE, T0 + timedelta(days=20),
            ActionStatus.SENT)
        add(store, threads[7], ActionKind.FOLLOW_UP, T0 + timedelta(days=10),
            ActionStatus.CANCELLED)
        add(store, threads[8], ActionKind.FOLLOW_UP, T0 + timedelta(days=11))
    config = tmp_path / "mailhelper.yaml"
    config.write_text(yaml.safe_dump({
        "timezone": "Europe/London",
        "owners": [{"name": SAM.name, "email": SAM.email}],
        "assistant": {"name": "Sam's assistant", "email": "helper@example.com"},
        "imap": {"host": "127.0.0.1", "security": "none"},
        "smtp": {"host": "127.0.0.1", "security": "none"},
        "state": str(state),
    }))
    return config, store


def run(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue() + err.getvalue()


def test_json_has_exactly_the_spec_keys_and_iso_times(world: tuple[Path, Store]) -> None:
    config, _ = world
    code, out = run("status", "--json", "--config", str(config))
    assert code == 0
    document: dict[str, Any] = json.loads(out)
    assert set(document) == {"threads"}
    threads = document["threads"]
    assert [t["id"] for t in threads] == [9, 8, 7, 6, 5, 4, 3, 2, 1], "newest first"
    for entry in threads:
        assert set(entry) == SPEC_KEYS, entry
        assert datetime.fromisoformat(entry["created"]).utcoffset() is not None
        assert re.search(r"[+-]\d\d:\d\d$", entry["created"])
        if entry["next_action"] is not None:
            assert set(entry["next_action"]) == {"kind", "due"}
            assert re.search(r"T\d\d:\d\d:\d\d[+-]\d\d:\d\d$", entry["next_action"]["due"])
    by_id = {t["id"]: t for t in threads}
    assert by_id[1] == {
        "id": 1, "kind": "ask", "state": "open", "subject": "Old open ask",
        "counterparts": ["ann@example.org"], "created": "2026-12-07T09:00:00+00:00",
        "next_action": {"kind": "follow_up", "due": "2026-12-10T09:00:00+00:00"},
    }
    assert by_id[2]["kind"] == "offer"
    for finished in (4, 6, 7, 8):
        assert by_id[finished]["next_action"] is None, finished
    assert by_id[5]["next_action"]["kind"] == "return_favor"


def test_table_groups_by_what_the_owner_should_do_newest_first(
    world: tuple[Path, Store],
) -> None:
    config, _ = world
    code, table = run("status", "--config", str(config))
    assert code == 0
    blocks = [b for b in table.strip().split("\n\n") if b.strip()]
    titles = [b.splitlines()[0] for b in blocks]
    # A draft mailed and not sent comes first, as in the digest: Dan's thank-you draft, and
    # Fay's, which her declined offer made (before: under "Nothing to do").
    assert titles == [
        "Drafts to send: reply send to the draft (2)",
        "Offers waiting on you: tell them exactly what would help (1)",
        "Thanks to say (1)",
        "Waiting for an answer (2)",
        "Favours to return (1)",
        "Nothing to do (2)",
        titles[-1],
    ]
    assert titles[-1].startswith("Ledger:")

    def ids(block: str) -> list[int]:
        return [int(line.split()[0]) for line in block.splitlines()[2:]]

    assert [ids(b) for b in blocks[:-1]] == [[6, 4], [2], [3], [9, 1], [5], [8, 7]]
    assert "reminder Thu 10 Dec, 09:00" in blocks[3]  # in the owner's zone (GMT in winter)
    assert "return-the-favour reminder Mon 11 Jan, 09:00" in blocks[4]
    assert "follow_up" not in table and "return_favor" not in table  # words, not kinds


def test_table_digest_lists_and_ledger_agree(world: tuple[Path, Store]) -> None:
    """A thank-you mailed as a draft is done: it counts as drafted, and is due no more."""
    config, store = world
    assert [t.id for t in thanks_due(store)] == [3]
    assert [t.id for t in favours_due(store)] == [5]
    ledger = store.ledger().overall
    assert (ledger.asks_made, ledger.asks_answered, ledger.offers_received) == (7, 3, 2)
    # 4, 5 and 6's drafts: drafted for the owner, none sent to the counterpart.
    assert (ledger.thanks_sent, ledger.thanks_drafted, ledger.favours_returned) == (0, 3, 0)
    code, table = run("status", "--config", str(config))
    assert code == 0
    assert table.strip().endswith(
        "Ledger: 7 asks, 3 answered (median 10 hours); 2 offers; thank-yous: 3 drafted; "
        "0 favours returned")
    # Fay's declined offer made a thank-you draft not sent yet: a draft to send, not nothing.
    assert "Spare desk" in table.split("Drafts to send")[1].split("Offers waiting")[0]


def test_no_state_yet(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "owners": [{"email": "sam@example.com"}],
        "assistant": {"email": "helper@example.com"},
        "imap": {"host": "127.0.0.1", "security": "none"},
        "smtp": {"host": "127.0.0.1", "security": "none"},
        "state": str(tmp_path / "none.db"),
    }))
    assert run("status", "--json", "--config", str(config)) == (0, '{"threads": []}\n')
    code, out = run("status", "--config", str(config))
    assert (code, out.strip()) == (0, "No threads yet: nothing is being tracked.")


def test_status_json_of_an_empty_store(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.db", "example.com")
    assert status_json(store) == {"threads": []}


def test_the_table_has_the_created_column_spec_lists(world: tuple[Path, Store]) -> None:
    """SPEC.md: status shows id, kind, state, subject, counterparts, created, next action."""
    config, store = world
    code, table = run("status", "--config", str(config))
    assert code == 0
    header = next(line for line in table.splitlines() if line.strip().startswith("id"))
    assert header.split() == ["id", "kind", "state", "with", "subject", "created", "next"]
    for thread in store.threads():
        row = next(line for line in table.splitlines()
                   if line.split() and line.split()[0] == str(thread.id))
        assert f"{thread.created.astimezone(ZoneInfo('Europe/London')):%Y-%m-%d}" in row


def test_json_and_ics_together_are_a_usage_error(world: tuple[Path, Store],
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """``status --json --ics`` once printed the calendar alone; now it says they exclude
    each other and exits 2."""
    config, _ = world
    with pytest.raises(SystemExit) as stopped:
        main(["status", "--json", "--ics", "--config", str(config)])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "argument --ics: not allowed with argument --json" in err, err
    assert "[--json | --ics]" in err
