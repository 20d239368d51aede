"""Leases: which process reads which mailbox when several ``mailhelper run`` processes, on any
machines, share one PostgreSQL database (SPEC.md: "a lease per mailbox, ``lease: 30s``").

There is no coordinator: the database is the referee, and every time is its clock's
(``clock_timestamp()``), never a machine's, so machines whose clocks disagree still agree on
who holds what. Two tables in a schema of their own, :data:`SHARED_SCHEMA`, beside the
assistants' state:

- ``leases(mailbox, holder, generation, expires, taken)``: one row per mailbox. A process may
  read a mailbox, and write its state, only while the row names it as ``holder`` with the
  ``generation`` it took and ``expires`` is still ahead. Taking a lease that expired (or was
  released) bumps ``generation``: a process that was cut off and comes back finds its
  generation gone and stops (fencing, :meth:`Lease.fence`).
- ``daemons(holder, host, pid, started, expires)``: each process's heartbeat, renewed with its
  leases; the live ones are the N of the fair share.

A process's identity is a :class:`Holder` (``host:pid:random``). Its assistants each have a
:class:`Lease` on their mailbox:

- :meth:`Lease.take` takes the lease if it is free or expired, but only while the process
  holds fewer than ``ceil(M/N)+1`` of its M mailboxes (N: live daemons), so leases spread;
  a process holding more than that lets one go at its next renewal (:meth:`Lease.renew`);
- :meth:`Lease.renew` extends it (every cycle, and at least every third of the lease while
  waiting for mail); :class:`~mailhelper.model.errors.LeaseLost` when it is no longer ours;
- :meth:`Lease.fence` runs inside each write transaction of the leased store: the row is
  locked (``FOR NO KEY UPDATE``) until the commit, so a takeover waits for that commit, and a
  transaction of a holder whose lease was taken over rolls back with ``LeaseLost``;
- :meth:`Lease.release` on a clean stop: the lease expires at once and another process takes
  the mailbox at its next look.

A killed process's leases expire ``lease`` after their last renewal; the others look every
third of their lease, so they take its mailboxes over within ``lease`` and a cycle or two.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from mailhelper.model.errors import LeaseLost, StateError
from mailhelper.state.sqldriver import Connection

log = logging.getLogger(__name__)

#: The schema of the tables every assistant of the database shares.
SHARED_SCHEMA = "mailhelper_shared"

#: The advisory lock under which the shared tables are created or upgraded.
_SHARED_LOCK = 0x6D61696C68656C73

#: The shared tables, step by step (the position is the version, as in
#: :mod:`mailhelper.state.migrations`); PostgreSQL's own SQL, as they exist only there.
_STEPS: tuple[tuple[str, ...], ...] = (
    (
        f"CREATE TABLE {SHARED_SCHEMA}.leases (mailbox TEXT PRIMARY KEY, "
        "holder TEXT NOT NULL, generation BIGINT NOT NULL, expires TIMESTAMPTZ NOT NULL, "
        "taken TIMESTAMPTZ NOT NULL)",
        f"CREATE TABLE {SHARED_SCHEMA}.daemons (holder TEXT PRIMARY KEY, host TEXT NOT NULL, "
        "pid BIGINT NOT NULL, started TIMESTAMPTZ NOT NULL, expires TIMESTAMPTZ NOT NULL)",
    ),
)


class LeaseHandedOver(LeaseLost):
    """The lease was let go on purpose, to spread the mailboxes (this process held more than
    its fair share): the work goes on elsewhere; nothing went wrong."""


def ensure_shared(db: Connection) -> None:
    """Create (or bring up to date) the shared tables, once per database: under an advisory
    lock, in one transaction, so processes starting together take turns."""
    row = db.execute(f"SELECT to_regclass('{SHARED_SCHEMA}.version') IS NOT NULL").fetchone()
    if row[0] and _shared_version(db) >= len(_STEPS):
        return
    db.begin()
    try:
        db.execute("SELECT pg_advisory_xact_lock(?)", (_SHARED_LOCK,))
        db.execute(f"CREATE SCHEMA IF NOT EXISTS {SHARED_SCHEMA}")
        db.execute(f"CREATE TABLE IF NOT EXISTS {SHARED_SCHEMA}.version (version BIGINT)")
        version = _shared_version(db)
        for step in _STEPS[version:]:
            for statement in step:
                db.execute(statement)
        db.execute(f"DELETE FROM {SHARED_SCHEMA}.version")
        db.execute(f"INSERT INTO {SHARED_SCHEMA}.version (version) VALUES (?)", (len(_STEPS),))
    except BaseException:
        db.rollback()
        raise
    db.commit()


def _shared_version(db: Connection) -> int:
    row = db.execute(f"SELECT max(version) FROM {SHARED_SCHEMA}.version").fetchone()
    return int(row[0] or 0)


def fair_share(mailboxes: int, daemons: int) -> int:
    """The most leases one process takes: ``ceil(M/N) + 1`` of M mailboxes among N live
    processes (the one more lets a mailbox be taken over while a dead process still counts).

        >>> fair_share(5, 3), fair_share(5, 1), fair_share(50, 3), fair_share(1, 0)
        (3, 6, 18, 2)
    """
    return math.ceil(mailboxes / max(daemons, 1)) + 1


class Holder:
    """This process, as the leases know it: ``host:pid:random`` (the random part tells a
    restarted process with a recycled pid from the old one). One per process; its assistants'
    leases count against one fair share per database (``where``, e.g. the URL)."""

    def __init__(self, host: str | None = None, pid: int | None = None) -> None:
        self.host = host or socket.gethostname()
        self.pid = os.getpid() if pid is None else pid
        self.id = f"{self.host}:{self.pid}:{secrets.token_hex(4)}"
        self._lock = threading.Lock()
        self._mailboxes: dict[str, set[str]] = {}
        self._held: dict[str, set[str]] = {}

    def serves(self, where: str, mailbox: str) -> None:
        with self._lock:
            self._mailboxes.setdefault(where, set()).add(mailbox)

    def leaves(self, where: str, mailbox: str) -> bool:
        """Forget ``mailbox``; True when it was this process's last one in ``where``."""
        with self._lock:
            mine = self._mailboxes.get(where, set())
            mine.discard(mailbox)
            self._held.get(where, set()).discard(mailbox)
            return not mine

    def reserve(self, where: str, mailbox: str, share: int) -> bool:
        """Count ``mailbox`` as held if this process holds fewer than ``share`` (False
        otherwise); the caller takes its lease next, or forgets it again."""
        with self._lock:
            held = self._held.setdefault(where, set())
            if len(held) >= share:
                return False
            held.add(mailbox)
            return True

    def forget(self, where: str, mailbox: str) -> None:
        with self._lock:
            self._held.get(where, set()).discard(mailbox)

    def held(self, where: str) -> int:
        with self._lock:
            return len(self._held.get(where, ()))

    def mailboxes(self, where: str) -> int:
        with self._lock:
            return len(self._mailboxes.get(where, ()))


@dataclass(frozen=True)
class LeaseInfo:
    """Who holds a mailbox's lease, for ``status``: the process (host, pid), until when (the
    database's clock), and whether that is still ahead."""

    mailbox: str
    holder: str
    host: str
    pid: int | None
    generation: int
    expires: datetime
    live: bool

    def to_json(self) -> dict[str, object]:
        return {"mailbox": self.mailbox, "holder": self.holder, "host": self.host,
                "pid": self.pid, "generation": self.generation,
                "until": self.expires.isoformat(timespec="seconds"), "live": self.live}

    def line(self) -> str:
        """``status``'s line, e.g. ``lease: held by db1 (pid 4242) until 09:00:30 UTC``."""
        who = f"{self.host} (pid {self.pid})" if self.pid is not None else self.holder
        until = self.expires.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
        if self.live:
            return f"lease: held by {who} until {until}"
        return f"lease: free (last held by {who}, until {until})"


class Lease:
    """``holder``'s lease on ``mailbox`` through the connection ``db`` (the assistant's own:
    the lease is renewed and fenced on the connection its state is written through).
    ``seconds``: the lease's length (``lease`` in the config); ``where``: the database, for
    the fair share."""

    def __init__(self, db: Connection, mailbox: str, holder: Holder, seconds: float,
                 where: str = "") -> None:
        self.db = db
        self.mailbox = mailbox
        self.holder = holder
        self.seconds = float(seconds)
        self.where = where
        #: The generation this process took, while it holds the lease; None otherwise.
        self.generation: int | None = None
        #: When it was last taken or extended (this machine's monotonic clock: only the
        #: time since, never a moment, is read from it).
        self._renewed = 0.0
        ensure_shared(db)
        holder.serves(where, mailbox)

    @property
    def held(self) -> bool:
        return self.generation is not None

    @property
    def renew_every(self) -> float:
        """The longest wait without a renewal: a third of the lease."""
        return self.seconds / 3

    # -- taking and letting go ----------------------------------------------------------------
    def take(self) -> bool:
        """Take the lease if it is free or expired and this process is under its fair share;
        True when it is held now (a generation bumped).

        A lease another process holds is seen with a plain read, which locks nothing: only
        a free or expired one is taken, with a statement that waits for the old holder's
        transaction in hand (the fence's lock) to end. No lock of this process is held
        meanwhile, so its other assistants go on renewing theirs."""
        if self.held:
            return True
        row = self.db.execute(
            f"SELECT expires > clock_timestamp() FROM {SHARED_SCHEMA}.leases WHERE mailbox=?",
            (self.mailbox,)).fetchone()
        if row is not None and row[0]:
            self._heartbeat()
            return False
        self._heartbeat()
        share = fair_share(self.holder.mailboxes(self.where), self._live_daemons())
        if not self.holder.reserve(self.where, self.mailbox, share):
            return False
        try:
            row = self.db.execute(
                f"INSERT INTO {SHARED_SCHEMA}.leases AS l (mailbox, holder, generation, "
                "expires, taken) VALUES (?, ?, 1, clock_timestamp() + ? * interval '1 second', "
                "clock_timestamp()) ON CONFLICT (mailbox) DO UPDATE SET holder=excluded.holder, "
                "generation=l.generation + 1, expires=excluded.expires, taken=excluded.taken "
                "WHERE l.expires <= clock_timestamp() RETURNING generation",
                (self.mailbox, self.holder.id, self.seconds)).fetchone()
        except BaseException:
            self._forget()
            raise
        if row is None:
            self._forget()
            return False
        self.generation = int(row[0])
        self._renewed = time.monotonic()
        # A killed process never deletes its heartbeat: forget those long dead (status then
        # names a holder by its id, which says host and pid too).
        self.db.execute(f"DELETE FROM {SHARED_SCHEMA}.daemons "
                        "WHERE expires < clock_timestamp() - interval '1 day'")
        log.info("took the lease on %s (generation %d; this process now reads %d of its %d "
                 "mailbox(es), at most %d)", self.mailbox, self.generation,
                 self.holder.held(self.where), self.holder.mailboxes(self.where), share)
        return True

    def keep(self) -> None:
        """Renew the lease when a third of it has gone since it was last renewed (before each
        FETCH of a long read): a lease renewed less than a third ago is still this process's,
        as only an expired one is taken over. :class:`LeaseLost` as :meth:`renew`, but the
        fair share is left to the renewal between cycles: a read is not cut for it."""
        if self.generation is not None and time.monotonic() - self._renewed < self.renew_every:
            return
        self.renew(share=False)

    def renew(self, share: bool = True) -> None:
        """Extend the lease by its length from now (the database's now). Raises
        :class:`LeaseLost` when it is no longer this process's (expired, taken over), and
        (with ``share``) lets it go, so another process takes it, when this process holds
        more than its fair share (:class:`LeaseHandedOver`: stop reading this mailbox)."""
        if self.generation is None:
            raise LeaseLost(f"the lease on {self.mailbox} is not held")
        row = self.db.execute(
            f"UPDATE {SHARED_SCHEMA}.leases SET expires = clock_timestamp() + ? * interval "
            "'1 second' WHERE mailbox=? AND holder=? AND generation=? "
            "AND expires > clock_timestamp() RETURNING generation",
            (self.seconds, self.mailbox, self.holder.id, self.generation)).fetchone()
        if row is None:
            self._lost()
            raise LeaseLost(f"the lease on {self.mailbox} was lost (it expired, or another "
                            "process took it over); this process stops reading it")
        self._renewed = time.monotonic()
        self._heartbeat()
        if not share:
            return
        share_now = fair_share(self.holder.mailboxes(self.where), self._live_daemons())
        if self.holder.held(self.where) > share_now:
            self.release()
            raise LeaseHandedOver(f"this process held more than its fair share ({share_now}) "
                                  f"of the mailboxes; it lets {self.mailbox} go to another")

    def release(self) -> None:
        """Let the lease go (a clean stop): it expires now, and another process may take it
        at once. Nothing happens when it is not held."""
        generation, self.generation = self.generation, None
        self._forget()
        if generation is None:
            return
        self.db.execute(
            f"UPDATE {SHARED_SCHEMA}.leases SET expires = clock_timestamp() WHERE mailbox=? "
            "AND holder=? AND generation=?", (self.mailbox, self.holder.id, generation))
        log.info("let the lease on %s go", self.mailbox)

    def retire(self) -> None:
        """This assistant stops for good: its lease goes, and the process's heartbeat with
        its last assistant on this database."""
        try:
            self.release()
        finally:
            if self.holder.leaves(self.where, self.mailbox):
                self.db.execute(f"DELETE FROM {SHARED_SCHEMA}.daemons WHERE holder=?",
                                (self.holder.id,))

    # -- fencing ------------------------------------------------------------------------------
    def fence(self) -> None:
        """Inside a write transaction: the lease must still be this process's, with the
        generation it took, and not expired; its row stays locked until the commit, so a
        takeover waits for it. Extends the lease when a third of it is gone (a long cycle of
        a backlog keeps it). :class:`LeaseLost` otherwise: the transaction rolls back."""
        if self.generation is None:
            raise LeaseLost(f"the lease on {self.mailbox} is not held; nothing is written")
        row = self.db.execute(
            f"SELECT extract(epoch FROM expires - clock_timestamp()) FROM {SHARED_SCHEMA}.leases "
            "WHERE mailbox=? AND holder=? AND generation=? AND expires > clock_timestamp() "
            "FOR NO KEY UPDATE",
            (self.mailbox, self.holder.id, self.generation)).fetchone()
        if row is None:
            self._lost()
            raise LeaseLost(f"the lease on {self.mailbox} was lost (it expired, or another "
                            "process took it over); this transaction is rolled back")
        if float(row[0]) < self.seconds * 2 / 3:
            self.db.execute(
                f"UPDATE {SHARED_SCHEMA}.leases SET expires = clock_timestamp() + ? * "
                "interval '1 second' WHERE mailbox=? AND holder=? AND generation=?",
                (self.seconds, self.mailbox, self.holder.id, self.generation))
            # (a rollback undoes it: the cycle then stops, and the next renews first)
            self._renewed = time.monotonic()

    # -- helpers -------------------------------------------------------------------------------
    def _lost(self) -> None:
        if self.generation is not None:
            log.warning("lost the lease on %s (generation %d)", self.mailbox, self.generation)
        self.generation = None
        self._forget()

    def _forget(self) -> None:
        self.holder.forget(self.where, self.mailbox)

    def _heartbeat(self) -> None:
        self.db.execute(
            f"INSERT INTO {SHARED_SCHEMA}.daemons (holder, host, pid, started, expires) "
            "VALUES (?, ?, ?, clock_timestamp(), clock_timestamp() + ? * interval '1 second') "
            "ON CONFLICT (holder) DO UPDATE SET expires=excluded.expires",
            (self.holder.id, self.holder.host, self.holder.pid, self.seconds))

    def _live_daemons(self) -> int:
        row = self.db.execute(f"SELECT count(*) FROM {SHARED_SCHEMA}.daemons "
                              "WHERE expires > clock_timestamp()").fetchone()
        return int(row[0])

    def current(self) -> LeaseInfo | None:
        """Who holds the lease now (None: nobody ever took it)."""
        return lease_of(self.db, self.mailbox)


def lease_of(db: Connection, mailbox: str) -> LeaseInfo | None:
    """The lease on ``mailbox`` as the database has it (None: never taken, or a database
    without leases). Reads only: ``status`` asks while the daemons work."""
    found = leases(db, mailbox)
    return found[0] if found else None


def leases(db: Connection, mailbox: str | None = None) -> list[LeaseInfo]:
    """Every mailbox's lease (or ``mailbox``'s), by mailbox."""
    row = db.execute(f"SELECT to_regclass('{SHARED_SCHEMA}.leases') IS NOT NULL").fetchone()
    if not row[0]:
        return []
    where, args = ("WHERE l.mailbox=?", (mailbox,)) if mailbox is not None else ("", ())
    rows = db.execute(
        f"SELECT l.mailbox, l.holder, l.generation, l.expires, "
        f"l.expires > clock_timestamp() AS live, d.host, d.pid FROM {SHARED_SCHEMA}.leases l "
        f"LEFT JOIN {SHARED_SCHEMA}.daemons d ON d.holder = l.holder {where} "
        "ORDER BY l.mailbox", args).fetchall()
    found = []
    for r in rows:
        host, pid = r["host"], r["pid"]
        if host is None:  # the process is gone: its id still says where it ran
            host, _, rest = str(r["holder"]).partition(":")
            number = rest.partition(":")[0]
            pid = int(number) if number.isdigit() else None
        found.append(LeaseInfo(str(r["mailbox"]), str(r["holder"]), str(host),
                               None if pid is None else int(pid), int(r["generation"]),
                               r["expires"].astimezone(UTC), bool(r["live"])))
    return found


def mailbox_key(assistant_email: str) -> str:
    """The name a mailbox's lease is kept under: the assistant's address, lower-cased (one
    assistant, one mailbox, one state).

        >>> mailbox_key("Helper@Example.COM")
        'helper@example.com'
    """
    return assistant_email.strip().lower()


def release_quietly(lease: Lease | None) -> None:
    """Retire ``lease`` on the way out; a database that is gone lets it expire instead."""
    if lease is None:
        return
    with contextlib.suppress(StateError):
        lease.retire()


__all__ = ["SHARED_SCHEMA", "Holder", "Lease", "LeaseHandedOver", "LeaseInfo", "LeaseLost",
           "ensure_shared", "fair_share", "lease_of", "leases", "mailbox_key",
           "release_quietly"]
