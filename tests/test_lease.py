"""Leases, fencing and claims on a real PostgreSQL (tests/rig/postgres.py): several processes
sharing one database (mailhelper/state/lease.py).

Each "process" here is a :class:`Holder` of its own with its own connections, as separate
``mailhelper run`` processes would have. Expiry is made to happen by moving a lease's
``expires`` into the past with the database's clock, not by waiting, except where a test
is about waiting (a takeover waits for the old holder's commit).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from mailhelper.model.errors import LeaseLost
from mailhelper.model.values import Action, ActionKind, ActionStatus
from mailhelper.state.lease import SHARED_SCHEMA, Holder, Lease, fair_share, lease_of, leases
from mailhelper.state.store import Store
from tests.rig.assistant import RigAssistant
from tests.rig.postgres import PostgresServer

T0 = datetime(2026, 12, 7, 9, tzinfo=UTC)
MAILBOX = "helper@example.com"
HANDLED = b"$MailhelperHandled"


@pytest.fixture
def database(postgres: PostgresServer) -> str:
    return postgres.new_database()


@pytest.fixture
def open_store(database: str) -> Iterator[Callable[[], Store]]:
    """``open_store()``: a new connection to the test's database, as another process has."""
    opened: list[Store] = []

    def make() -> Store:
        store = Store.open(database, "example.com")
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def _expire(store: Store, mailbox: str = MAILBOX) -> None:
    """The lease runs out (the database's clock is past it), as when its holder was killed."""
    store.db.execute(f"UPDATE {SHARED_SCHEMA}.leases SET expires = clock_timestamp() - "
                     "interval '1 second' WHERE mailbox=?", (mailbox,))


def test_one_holder_at_a_time_and_a_release_frees_it_at_once(
    open_store: Callable[[], Store],
) -> None:
    a = Lease(open_store().db, MAILBOX, Holder("host-a", 1), 30)
    b = Lease(open_store().db, MAILBOX, Holder("host-b", 2), 30)
    assert a.take() and a.generation == 1
    assert not b.take() and not b.held
    info = lease_of(b.db, MAILBOX)
    assert info is not None and info.live and (info.host, info.pid) == ("host-a", 1)
    assert info.line().startswith("lease: held by host-a (pid 1) until ")
    a.renew()  # still ours
    a.release()
    assert b.take() and b.generation == 2  # every takeover bumps the generation
    with pytest.raises(LeaseLost):
        a.renew()


def test_an_expired_lease_is_taken_over_and_the_old_holder_stops(
    open_store: Callable[[], Store],
) -> None:
    a = Lease(open_store().db, MAILBOX, Holder("host-a", 1), 30)
    b = Lease(open_store().db, MAILBOX, Holder("host-b", 2), 30)
    assert a.take()
    assert not b.take()
    _expire(open_store())
    assert b.take() and b.generation == 2
    with pytest.raises(LeaseLost, match="was lost"):
        a.renew()
    assert not a.held
    info = lease_of(a.db, MAILBOX)
    assert info is not None and info.host == "host-b" and info.generation == 2


def test_an_expired_lease_not_yet_taken_over_cannot_be_renewed(
    open_store: Callable[[], Store],
) -> None:
    """Renewing needs the lease still ahead: once expired, another may be taking it."""
    a = Lease(open_store().db, MAILBOX, Holder("host-a", 1), 30)
    assert a.take()
    _expire(open_store())
    with pytest.raises(LeaseLost):
        a.renew()
    assert a.take() and a.generation == 2  # taken again: a new generation


def test_fencing_refuses_a_stale_writer_and_rolls_its_transaction_back(
    open_store: Callable[[], Store],
) -> None:
    old = open_store()
    a = Lease(old.db, MAILBOX, Holder("host-a", 1), 30)
    old.fence = a.fence
    assert a.take()
    with old.transaction():
        old.add_action(Action("first", ActionKind.FOLLOW_UP, T0, None), T0)
    _expire(open_store())
    new = open_store()
    b = Lease(new.db, MAILBOX, Holder("host-b", 2), 30)
    new.fence = b.fence
    assert b.take()
    with pytest.raises(LeaseLost, match="rolled back"), old.transaction():
        old.add_action(Action("stale", ActionKind.FOLLOW_UP, T0, None), T0)
    with new.transaction():
        new.add_action(Action("second", ActionKind.FOLLOW_UP, T0, None), T0)
    assert sorted(x.key for x in new.pending()) == ["first", "second"]


def test_a_writer_without_the_lease_writes_nothing(open_store: Callable[[], Store]) -> None:
    store = open_store()
    lease = Lease(store.db, MAILBOX, Holder("host-a", 1), 30)
    store.fence = lease.fence
    with pytest.raises(LeaseLost, match="not held"), store.transaction():
        store.add_action(Action("x", ActionKind.FOLLOW_UP, T0, None), T0)
    assert store.pending() == []


def test_a_takeover_waits_for_the_old_holders_commit(open_store: Callable[[], Store]) -> None:
    """The fence locks the lease row until the commit: the lease of a holder in the middle of
    a transaction runs out, and the new holder takes it only once that commit is done, so
    what the old one wrote is there before the new one reads."""
    old = open_store()
    a = Lease(old.db, MAILBOX, Holder("host-a", 1), 2)
    old.fence = a.fence
    assert a.take()
    taken: list[float] = []
    b = Lease(open_store().db, MAILBOX, Holder("host-b", 2), 2)

    def take_over() -> None:
        while not b.take():
            time.sleep(0.05)
        taken.append(time.monotonic())

    with old.transaction():
        old.add_action(Action("late", ActionKind.FOLLOW_UP, T0, None), T0)
        thread = threading.Thread(target=take_over)
        thread.start()
        time.sleep(2.5)  # the lease has run out meanwhile; the taker waits on the lock
        assert not taken
        committed = time.monotonic()
    thread.join(10)
    assert taken and taken[0] >= committed
    assert b.generation == 2
    assert [x.key for x in open_store().pending()] == ["late"]


def test_leases_spread_over_the_live_processes(open_store: Callable[[], Store]) -> None:
    """5 mailboxes, 3 processes: each takes at most ceil(5/3)+1 = 3, and every mailbox is
    held by exactly one; a process that took more while it was alone lets the surplus go at
    its renewals."""
    mailboxes = [f"helper{i}@example.com" for i in range(5)]
    holders = [Holder(f"host-{n}", n) for n in range(3)]
    mine = {h.id: [Lease(open_store().db, m, h, 30) for m in mailboxes] for h in holders}
    first = holders[0]
    assert all(lease.take() for lease in mine[first.id])  # alone: it takes all five
    for holder in holders[1:]:  # the others start: their heartbeats count now
        assert not any(lease.take() for lease in mine[holder.id])
    for lease in mine[first.id]:
        with contextlib.suppress(LeaseLost):
            lease.renew()
    assert first.held("") == fair_share(5, 3) == 3
    for _round in range(2):
        for holder in holders:
            for lease in mine[holder.id]:
                lease.take()
    counts = {h.id: h.held("") for h in holders}
    assert sum(counts.values()) == 5 and max(counts.values()) <= 3
    owners = {info.mailbox: info.holder for info in leases(open_store().db)}
    assert sorted(owners) == mailboxes
    for holder in holders:
        assert sorted(m for m, h in owners.items() if h == holder.id) == sorted(
            lease.mailbox for lease in mine[holder.id] if lease.held)


def test_a_due_action_is_claimed_by_one_connection_only(
    open_store: Callable[[], Store],
) -> None:
    """SELECT ... FOR UPDATE SKIP LOCKED in the transaction that marks it sending: a second
    process does not wait for the first and does not send; after the first's commit the
    action is no longer pending, so it is not claimed again."""
    one, two = open_store(), open_store()
    with one.transaction():
        one.add_action(Action("a", ActionKind.FOLLOW_UP, T0, None), T0)
    [due] = one.due(T0)
    with one.transaction():
        claimed = one.mark_sending(due, b"bytes")
        began = time.monotonic()
        assert two.mark_sending(due, b"bytes") is None
        assert time.monotonic() - began < 1  # skipped, not waited for
    assert claimed is not None and claimed.status is ActionStatus.SENDING
    assert two.mark_sending(due, b"bytes") is None
    stored = two.action(claimed.id or 0)
    assert stored is not None and stored.attempts == 1


def test_status_shows_who_holds_the_mailbox(open_store: Callable[[], Store]) -> None:
    a = Lease(open_store().db, MAILBOX, Holder("db-host-1", 4242), 30)
    assert a.take()
    [info] = leases(open_store().db)
    shown = info.to_json()
    assert (shown["host"], shown["pid"], shown["generation"], shown["live"]) == (
        "db-host-1", 4242, 1, True)
    until = datetime.fromisoformat(str(shown["until"]))
    assert timedelta(0) < until - datetime.now(UTC) <= timedelta(seconds=31)
    a.retire()  # a clean stop: the lease is free, the heartbeat gone
    [info] = leases(open_store().db)
    assert not info.live and info.line().startswith("lease: free (last held by db-host-1")


def test_a_daemon_renews_while_idle_stops_reading_when_its_lease_is_lost_and_a_standby_takes_over(
    rig_assistant: RigAssistant, postgres: PostgresServer,
) -> None:
    """Two ``mailhelper run`` on one config and one database: one reads, the other waits. The
    reader keeps its lease through IDLE (it wakes to renew); when the lease is taken from it,
    it stops reading before its next fetch (new mail waits, unread); a clean stop lets the
    lease go and the standby takes the mailbox over within a look (a third of the lease)."""
    from tests.test_daemon import Daemon, ask, wait_for_mail

    url = postgres.new_database()
    rig_assistant.configure({"state": url, "lease": "3 seconds"})
    watcher = Store.open(url, "example.com")
    first = Daemon(rig_assistant)
    second: Daemon | None = None
    try:
        first.wait_connected()
        ask(rig_assistant, "Intro to Acme?")
        wait_for_mail(rig_assistant, 1)
        info = lease_of(watcher.db, rig_assistant.address)
        assert info is not None and info.pid == first.process.pid and info.generation == 1
        time.sleep(4)  # longer than the lease: only renewals during IDLE keep it
        info = lease_of(watcher.db, rig_assistant.address)
        assert info is not None and info.live and info.generation == 1

        _expire(watcher, rig_assistant.address)  # cut off: someone else takes it over
        thief = Lease(watcher.db, rig_assistant.address, Holder("elsewhere", 9), 30)
        assert thief.take()
        first.wait_for("lost the lease")
        ask(rig_assistant, "Intro to Globex?")
        time.sleep(2)  # neither daemon may read it now
        assert len(rig_assistant.sent()) == 1
        assert [HANDLED in flags for flags in rig_assistant.flags()] == [True, False]
        second = Daemon(rig_assistant)
        second.wait_for("this process waits")

        thief.retire()  # let go: one of the two takes it and reads the new ask
        wait_for_mail(rig_assistant, 2)
        info = lease_of(watcher.db, rig_assistant.address)
        assert info is not None and info.live and info.generation == 3
        reader, standby = ((first, second) if info.pid == first.process.pid
                           else (second, first))
        assert reader.stop()[0] == 0  # a clean stop lets the lease go
        began = time.monotonic()
        while (now := lease_of(watcher.db, rig_assistant.address)) is None or not (
                now.live and now.pid == standby.process.pid):
            assert time.monotonic() - began < 3, "the standby did not take the mailbox over"
            time.sleep(0.05)
        ask(rig_assistant, "Intro to Initech?")
        wait_for_mail(rig_assistant, 3)
        assert standby.stop()[0] == 0
        gone = lease_of(watcher.db, rig_assistant.address)
        assert gone is not None and not gone.live
        assert len(rig_assistant.sent()) == 3
    finally:
        watcher.close()
        first.close()
        if second is not None:
            second.close()


def test_a_long_read_keeps_its_lease_and_a_lost_one_stops_it_before_the_next_fetch(
    open_store: Callable[[], Store],
) -> None:
    """``keep()`` runs before each FETCH: within a third of the lease since the last renewal
    it asks nothing of the database (the lease cannot have been taken over: only an expired
    one is); after that it renews, and a lease taken over meanwhile stops the read."""
    watcher = open_store()
    lease = Lease(open_store().db, MAILBOX, Holder("host-a", 1), 3)
    assert lease.take()
    first = lease_of(watcher.db, MAILBOX)
    lease.keep()
    assert lease_of(watcher.db, MAILBOX) == first
    time.sleep(1.1)  # a third of the lease
    lease.keep()
    renewed = lease_of(watcher.db, MAILBOX)
    assert first is not None and renewed is not None and renewed.expires > first.expires
    _expire(watcher)
    assert Lease(watcher.db, MAILBOX, Holder("host-b", 2), 3).take()
    time.sleep(1.1)
    with pytest.raises(LeaseLost, match="was lost"):
        lease.keep()
