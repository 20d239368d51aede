"""The two FETCH answers a reading asks for most, taken apart without imapclient's parser.

Reading a backlog sends ``UID FETCH <uids> (RFC822.SIZE)`` and ``UID FETCH <uids>
(BODY.PEEK[])`` for every batch. imapclient's general parser (a lexer in pure Python, a token
at a time) took a tenth of the reading process's time on a backlog of plain mail, more than
the mail's own bytes cost to receive. Servers answer these two commands in one shape, line
for line::

    * 12 FETCH (UID 345 RFC822.SIZE 2345)
    * 12 FETCH (UID 345 BODY[] {2345}
    <2345 bytes>)

imaplib already splits the answer into lines and literals; :func:`sizes` and :func:`bodies`
match that exact shape with one regular expression a line. Anything else in the answer (an
unsolicited ``FLAGS`` update, the items in another order, a quoted string instead of a
literal, ``NIL``) sends the whole answer to imapclient's own parser, so what comes out is
what :meth:`IMAPClient.fetch` gives, every time; the fast way only skips its work when the
answer is the plain shape (``tests/test_fetchparse.py`` holds the two to the same result).
The command itself goes out as :meth:`IMAPClient.fetch` sends it; a client without the
calls this needs (another imapclient, ``use_uid`` off) is asked through ``fetch``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVar

from imapclient import IMAPClient
from imapclient.response_parser import parse_fetch_response

_SIZE = re.compile(rb"(\d+) \(UID (\d+) RFC822\.SIZE (\d+)\)")
_BODY = re.compile(rb"(\d+) \(UID (\d+) BODY\[\] \{(\d+)\}")

#: How many answers went each way, for the tests that hold a real server to the fast way.
taken = {"fast": 0, "parser": 0}


def sizes(client: IMAPClient, uids: Sequence[int]) -> dict[int, int]:
    """``RFC822.SIZE`` of each of ``uids`` still there, by UID."""
    data = _answer(client, uids, b"RFC822.SIZE")
    found = None if data is None else _counted(fast_sizes(data))
    if found is None:
        return {uid: int(items.get(b"RFC822.SIZE", 0))
                for uid, items in _general(client, uids, b"RFC822.SIZE", data).items()}
    return _asked(found, uids)


def bodies(client: IMAPClient, uids: Sequence[int]) -> dict[int, bytes]:
    """The whole message (``BODY.PEEK[]``: nothing is marked seen) of each of ``uids``
    still there, by UID."""
    data = _answer(client, uids, b"BODY.PEEK[]")
    found = None if data is None else _counted(fast_bodies(data))
    if found is None:
        return {uid: items[b"BODY[]"]
                for uid, items in _general(client, uids, b"BODY.PEEK[]", data).items()
                if isinstance(items.get(b"BODY[]"), bytes)}
    return _asked(found, uids)


def fast_sizes(data: list[Any]) -> dict[int, int] | None:
    """The sizes in an answer of the plain shape, None for any other answer."""
    found: dict[int, int] = {}
    for line in data:
        if not isinstance(line, bytes):
            return None
        match = _SIZE.fullmatch(line)
        if match is None:
            return None
        found[int(match[2])] = int(match[3])
    return found


def fast_bodies(data: list[Any]) -> dict[int, bytes] | None:
    """The messages in an answer of the plain shape (each literal followed by the line
    ``)``), None for any other answer."""
    found: dict[int, bytes] = {}
    if len(data) % 2:
        return None
    for at in range(0, len(data), 2):
        head, tail = data[at], data[at + 1]
        if not isinstance(head, tuple) or len(head) != 2 or tail != b")":
            return None
        line, raw = head
        match = _BODY.fullmatch(line) if isinstance(line, bytes) else None
        if match is None or not isinstance(raw, bytes) or len(raw) != int(match[3]):
            return None
        found[int(match[2])] = raw
    return found


def _answer(client: IMAPClient, uids: Sequence[int], item: bytes) -> list[Any] | None:
    """The untagged FETCH lines of ``UID FETCH uids (item)``, as imaplib gives them; None
    when this client cannot be asked that way (the caller goes through ``fetch``)."""
    imap = getattr(client, "_imap", None)
    check = getattr(client, "_checkok", None)
    if not uids or imap is None or check is None or not client.use_uid:
        return None
    command = getattr(imap, "_command", None)
    complete = getattr(imap, "_command_complete", None)
    untagged = getattr(imap, "_untagged_response", None)
    if command is None or complete is None or untagged is None:
        return None
    tag = command("UID", "FETCH", b",".join(str(int(u)).encode() for u in uids),
                  "(" + item.decode() + ")")
    typ, data = complete("FETCH", tag)
    check("fetch", typ, data)
    _typ, data = untagged(typ, data, "FETCH")
    return [] if data == [None] else list(data)


def _general(client: IMAPClient, uids: Sequence[int], item: bytes,
             data: list[Any] | None) -> dict[int, dict[bytes, Any]]:
    """imapclient's reading, as :meth:`IMAPClient.fetch` returns it (the messages asked for
    alone): of the answer ``data``, or, when this client could not be asked for it (None), of
    a ``fetch`` of ``item``."""
    if data is None:
        return {int(uid): items for uid, items in client.fetch(uids, [item]).items()}
    response = parse_fetch_response(data or [None])
    return {uid: response[uid] for uid in (int(u) for u in uids) if uid in response}


T = TypeVar("T")


def _counted(found: dict[int, T] | None) -> dict[int, T] | None:
    """``found``, counted in :data:`taken` as read the fast way (None: by the parser)."""
    taken["parser" if found is None else "fast"] += 1
    return found


def _asked(found: dict[int, T], uids: Sequence[int]) -> dict[int, T]:
    """What ``found`` holds of the messages asked for (an answer may name others)."""
    wanted = set(uids)
    return {uid: value for uid, value in found.items() if uid in wanted}
