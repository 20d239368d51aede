"""IMAP: what the assistant does with its mailbox, on an already connected imapclient.

Extensions are used when offered and never required: MOVE (else COPY + \\Deleted + expunge,
UID EXPUNGE where UIDPLUS is there), SPECIAL-USE (else a folder named ``Sent``), IDLE (else the
caller polls). Messages are fetched with ``BODY.PEEK[]`` so nothing is marked seen by accident.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

log = logging.getLogger(__name__)

#: The keyword set on a message once its effects are committed.
HANDLED_FLAG = b"$MailhelperHandled"
SENT_FLAG = b"\\Sent"


@dataclass(frozen=True)
class FolderState:
    name: str
    uidvalidity: int
    uidnext: int
    exists: int


class Mailbox:
    """One logged-in IMAP connection and the folder it works on."""

    def __init__(self, client: IMAPClient, folder: str = "INBOX", batch_size: int = 200) -> None:
        self.client = client
        self.folder = folder
        self.batch_size = batch_size
        self.capabilities = {c.upper() for c in client.capabilities()}
        self._selected: str | None = None

    def has(self, capability: str) -> bool:
        return capability.upper().encode() in self.capabilities

    def select(self, folder: str | None = None, readonly: bool = False) -> FolderState:
        name = folder or self.folder
        info = self.client.select_folder(name, readonly=readonly)
        self._selected = name
        return FolderState(
            name=name,
            uidvalidity=int(info.get(b"UIDVALIDITY", 0)),
            uidnext=int(info.get(b"UIDNEXT", 0) or 0),
            exists=int(info.get(b"EXISTS", 0)),
        )

    def new_uids(self, state: FolderState, last_uid: int) -> list[int]:
        """UIDs above ``last_uid``. With UIDNEXT known and nothing new, no command is sent."""
        if state.uidnext and state.uidnext <= last_uid + 1:
            return []
        if state.exists == 0:
            return []
        uids = self.client.search(["UID", f"{last_uid + 1}:*"])
        # "n:*" always matches the highest UID, even one below n (RFC 3501 6.4.8).
        return sorted(int(u) for u in uids if int(u) > last_uid)

    def fetch(self, uids: Sequence[int]) -> Iterator[tuple[int, bytes]]:
        """(uid, raw bytes) in batches, so memory stays bounded however long the backlog."""
        for start in range(0, len(uids), self.batch_size):
            chunk = list(uids[start : start + self.batch_size])
            response = self.client.fetch(chunk, [b"BODY.PEEK[]"])
            for uid in chunk:
                data = response.get(uid)
                if data is None:
                    continue  # expunged meanwhile
                raw = data.get(b"BODY[]")
                if isinstance(raw, bytes):
                    yield uid, raw

    def mark_handled(self, uids: Sequence[int]) -> None:
        if not uids:
            return
        try:
            self.client.add_flags(list(uids), [HANDLED_FLAG, b"\\Seen"], silent=True)
        except IMAPClientError as exc:  # a server without keywords still gets \Seen
            log.debug("keyword refused (%s); setting \\Seen only", exc)
            self.client.add_flags(list(uids), [b"\\Seen"], silent=True)

    def ensure_folder(self, name: str) -> None:
        if not self.client.folder_exists(name):
            self.client.create_folder(name)
            with contextlib.suppress(IMAPClientError):
                self.client.subscribe_folder(name)
            log.info("created folder %s", name)

    def move(self, uids: Sequence[int], folder: str) -> None:
        """Move messages out of the selected folder; never deletes anything else."""
        if not uids:
            return
        self.ensure_folder(folder)
        if self.has("MOVE"):
            self.client.move(list(uids), folder)
            return
        self.client.copy(list(uids), folder)
        self.client.add_flags(list(uids), [b"\\Deleted"], silent=True)
        if self.has("UIDPLUS"):
            self.client.uid_expunge(list(uids))
        else:
            # Without UIDPLUS an EXPUNGE would also remove messages someone else marked
            # \Deleted; leave them flagged rather than risk that.
            log.warning("server lacks UIDPLUS: moved messages left flagged \\Deleted in %s",
                        self._selected)

    def sent_folder(self, configured: str | None) -> str:
        """The configured Sent folder, else the one flagged \\Sent, else ``Sent`` (created)."""
        if configured:
            self.ensure_folder(configured)
            return configured
        try:
            found = self.client.find_special_folder(SENT_FLAG)
        except IMAPClientError:
            found = None
        if found:
            return str(found)
        self.ensure_folder("Sent")
        return "Sent"

    def append(self, folder: str, raw: bytes, when: datetime | None = None) -> None:
        self.client.append(folder, raw, flags=[b"\\Seen"], msg_time=when)

    def contains_message_id(self, folder: str, message_id: str) -> bool:
        """True when ``folder`` holds a message with this Message-ID (angle brackets optional)."""
        wanted = message_id if message_id.startswith("<") else f"<{message_id}>"
        previous = self._selected
        try:
            self.client.select_folder(folder, readonly=True)
            self._selected = folder
            return bool(self.client.search(["HEADER", "Message-ID", wanted]))
        finally:
            if previous and previous != folder:
                self.select(previous)

    def idle_wait(self, timeout: float) -> bool:
        """Wait in IDLE up to ``timeout`` seconds; True when the server reported new mail."""
        self.client.idle()
        try:
            responses = self.client.idle_check(timeout=timeout)
        finally:
            self.client.idle_done()
        return any(isinstance(r, tuple) and len(r) > 1 and r[1] in (b"EXISTS", b"RECENT")
                   for r in responses)

    def logout(self) -> None:
        try:
            self.client.logout()
        except Exception:
            with contextlib.suppress(Exception):
                self.client.shutdown()
