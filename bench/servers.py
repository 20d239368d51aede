"""The servers a benchmark runs against: the rig's Dovecot and SMTP sink on 127.0.0.1, both in a
temp dir, plus one assistant account configured for them (a ``mailhelper.yaml`` on disk).

Example::

    with BenchServers() as servers:
        assistant = servers.assistant({"confirm": False})
        servers.load_backlog(assistant, 1000)
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from bench.mailgen import FIRST_DATE, Loaded, generate, load_maildir
from mailhelper.mail.source import ImapCursor
from mailhelper.model.values import FirstStart
from mailhelper.state.store import Store
from tests.rig import SelfSignedCert
from tests.rig.assistant import RigAssistant
from tests.rig.dovecot import DovecotServer
from tests.rig.smtpsink import SmtpSink


def record_first_start(assistant: RigAssistant, uidvalidity: int) -> None:
    """Record in the assistant's state a first start at :data:`~bench.mailgen.FIRST_DATE` on
    its INBOX (``uidvalidity``) while it was empty: every message in it came later."""
    store = Store.open(assistant.state, assistant.address.rpartition("@")[2])
    try:
        with store.transaction():
            store.set_cursor("INBOX", ImapCursor(
                None, 0, FirstStart(FIRST_DATE, uidvalidity, boundary=1)).text())
    finally:
        store.close()


class BenchServers:
    """Dovecot + SMTP sink in one temp dir; :meth:`close` stops both and removes it all."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mailhelper-bench-"))
        os.chmod(self.root, 0o755)
        self.cert = SelfSignedCert.create(self.root / "tls")
        self.dovecot = DovecotServer(cert=self.cert)
        self.sink = SmtpSink(self.root / "sink", cert=self.cert)
        self._numbers = itertools.count(1)

    def start(self) -> BenchServers:
        self.dovecot.start()
        self.sink.start()
        return self

    def close(self) -> None:
        try:
            self.sink.stop()
        finally:
            self.dovecot.close()
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> BenchServers:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def assistant(self, overrides: dict[str, Any] | None = None) -> RigAssistant:
        """A fresh IMAP user and a mailhelper config for it (owner sam@example.com, UTC)."""
        number = next(self._numbers)
        credentials = self.dovecot.add_user(f"helper-{number}@example.com")
        workdir = self.root / f"assistant-{number}"
        workdir.mkdir()
        return RigAssistant(self.dovecot, self.dovecot.account(credentials), self.sink, workdir,
                            overrides)

    def load_backlog(self, assistant: RigAssistant, count: int, seed: int = 7,
                     arrived_after_start: bool = True, mix: str = "project") -> Loaded:
        """Write ``count`` generated messages into the user's INBOX and let Dovecot index them.

        With ``arrived_after_start`` (the default) the assistant's state records a first start
        at :data:`~bench.mailgen.FIRST_DATE` on the empty folder, as if it had been set up
        before the mail came: a first poll then reads every message at its ``now``, which is
        what the benchmarks measure. Without it, a first poll reads only mail less than a day
        older than its ``now`` and leaves the rest alone (:mod:`mailhelper.decide.backlog`). ``mix``
        names one of :data:`~bench.mailgen.MIXES`."""
        maildir = self.dovecot.maildir(assistant.address)
        if os.geteuid() == 0:
            entry = pwd.getpwnam("nobody")
            uid, gid = entry.pw_uid, entry.pw_gid
        else:
            uid, gid = os.geteuid(), os.getegid()
        loaded = load_maildir(maildir, generate(count, assistant.address, seed, mix), uid, gid)
        status = self.index(assistant)
        if arrived_after_start:
            record_first_start(assistant, status["uidvalidity"])
        return loaded

    def index(self, assistant: RigAssistant) -> dict[str, int]:
        """Make Dovecot scan the Maildir and build its index now (not in a timed run)."""
        out = self.dovecot.doveadm("-f", "flow", "mailbox", "status", "-u", assistant.address,
                                   "messages uidnext uidvalidity", "INBOX")
        return {k: int(v) for k, v in (item.split("=") for item in out.split() if "=" in item)}
