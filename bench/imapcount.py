"""Counting the IMAP commands a client sends, at the client.

Every tagged command imapclient sends (through imaplib's ``_command`` or its own
``_raw_command``) takes a fresh tag from ``imaplib.IMAP4._new_tag`` and then goes out through
``send`` starting with that tag; wrapping both names each command. ``DONE`` (the end of IDLE)
is not a command and is not counted.

Example::

    with CommandLog() as commands:
        client.select_folder("INBOX")
    assert commands.names == ["SELECT"]
"""

from __future__ import annotations

import imaplib
from types import TracebackType
from typing import Any


class CommandLog:
    """The names of the IMAP commands sent while active (``UID FETCH`` stays two words)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._saved: tuple[Any, Any] | None = None

    def __enter__(self) -> CommandLog:
        new_tag, send = imaplib.IMAP4._new_tag, imaplib.IMAP4.send  # type: ignore[attr-defined]
        names = self.names
        waiting: dict[int, bytes] = {}

        def counted_tag(client: imaplib.IMAP4) -> bytes:
            tag: bytes = new_tag(client)
            waiting[id(client)] = tag
            return tag

        def counted_send(client: imaplib.IMAP4, data: bytes) -> None:
            tag = waiting.get(id(client))
            if tag is not None and data.startswith(tag + b" "):
                del waiting[id(client)]
                words = data.split(b" ", 3)
                name = words[1].decode(errors="replace").upper().strip()
                if name == "UID" and len(words) > 2:
                    name = f"UID {words[2].decode(errors='replace').upper().strip()}"
                names.append(name)
            send(client, data)

        self._saved = (new_tag, send)
        imaplib.IMAP4._new_tag = counted_tag  # type: ignore[attr-defined]
        imaplib.IMAP4.send = counted_send  # type: ignore[method-assign, assignment]
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        assert self._saved is not None
        imaplib.IMAP4._new_tag, imaplib.IMAP4.send = self._saved  # type: ignore[attr-defined, method-assign]

    def clear(self) -> None:
        self.names.clear()

    def __len__(self) -> int:
        return len(self.names)
