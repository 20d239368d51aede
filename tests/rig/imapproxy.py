"""A TCP relay in front of the rig's Dovecot that records the IMAP commands clients send and can
cut a connection at a chosen command, as a network failure or a server crash would.

The server is still the real Dovecot: the relay only copies bytes both ways (plain IMAP, so
point the client at it with ``security: none``). What it sees of the client's side is parsed
into command lines (literals skipped, RFC 3501 4.3), so a test can count what a poll costs.

Example::

    with ImapProxy(dovecot.host, dovecot.port) as proxy:
        ...client connects to proxy.port...
        proxy.commands()                      # ["LOGIN", "SELECT", "UID SEARCH", ...]
        proxy.cut_at("UID FETCH", occurrence=3, after_bytes=2000)
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from . import LOOPBACK

__all__ = ["ImapProxy"]

_LITERAL = re.compile(rb"\{(\d+)\+?\}\r?\n?$")


def command_name(line: bytes) -> str:
    """``b"a7 UID FETCH 1:5 (BODY.PEEK[])"`` -> ``"UID FETCH"``; ``"DONE"`` (ends IDLE)."""
    words = line.decode("ascii", "replace").split()
    if len(words) == 1:
        return words[0].upper()
    if len(words) < 2:
        return ""
    if words[1].upper() == "UID" and len(words) > 2:
        return f"UID {words[2].upper()}"
    return words[1].upper()


@dataclass
class _Fault:
    command: str
    containing: str
    occurrence: int
    after_bytes: int
    action: Callable[[], None] | None
    seen: int = 0


@dataclass
class _Connection:
    client: socket.socket
    server: socket.socket
    budget: int | None = None  # server->client bytes left before the cut; None: no cut armed
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


class ImapProxy:
    """Relays 127.0.0.1:``port`` to ``upstream``; records every command line clients send."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port: int = self._listener.getsockname()[1]
        self._lines: list[bytes] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._connections: list[_Connection] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._accept, name="rig-imap-proxy", daemon=True)

    # -- what tests use ---------------------------------------------------------------------
    def start(self) -> ImapProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (Linux)
        with contextlib.suppress(OSError):
            self._listener.close()
        for connection in list(self._connections):
            connection.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ImapProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def lines(self) -> list[str]:
        """Every command line sent so far (literal data left out), oldest first."""
        with self._lock:
            return [line.decode("ascii", "replace").rstrip("\r\n") for line in self._lines]

    def commands(self) -> list[str]:
        """The command names sent so far: ``LOGIN``, ``SELECT``, ``UID FETCH`` ..."""
        with self._lock:
            return [command_name(line) for line in self._lines]

    def reset(self) -> None:
        """Forget the commands recorded so far."""
        with self._lock:
            self._lines.clear()

    def cut_at(
        self, command: str, occurrence: int = 1, after_bytes: int = 0,
        action: Callable[[], None] | None = None, containing: str = "",
    ) -> None:
        """At the ``occurrence``-th ``command`` (counted from now; only lines that contain
        ``containing`` count), run ``action`` if given (e.g. restart the server), then cut the
        connection once ``after_bytes`` of the server's answer have reached the client (0: at
        once, before the command reaches the server)."""
        with self._lock:
            self._faults.append(
                _Fault(command.upper(), containing, occurrence, after_bytes, action))

    # -- relaying ---------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            connection = _Connection(client, server)
            self._connections.append(connection)
            for target in (self._client_to_server, self._server_to_client):
                threading.Thread(target=target, args=(connection,), daemon=True,
                                 name="rig-imap-proxy-pump").start()

    def _client_to_server(self, connection: _Connection) -> None:
        pending = b""
        literal = 0
        continued = False  # the line after a literal goes on with the same command
        try:
            while True:
                data = connection.client.recv(65536)
                if not data:
                    break
                pending += data
                out = b""
                while pending:
                    if literal:
                        take = pending[:literal]
                        literal -= len(take)
                        out += take
                        pending = pending[len(take):]
                        continue
                    end = pending.find(b"\n")
                    if end < 0:
                        break
                    line, pending = pending[: end + 1], pending[end + 1 :]
                    out += line
                    match = _LITERAL.search(line)
                    if not continued and self._record(line, connection):
                        return
                    continued = bool(match)
                    if match:
                        literal = int(match.group(1))
                connection.server.sendall(out)
        except OSError:
            pass
        finally:
            connection.close()

    def _record(self, line: bytes, connection: _Connection) -> bool:
        """Note one line; True when a fault cuts the connection before it is forwarded."""
        with self._lock:
            self._lines.append(line)
            name = command_name(line)
            text = line.decode("ascii", "replace")
            fault = next((f for f in self._faults
                          if f.command == name and f.containing in text), None)
            if fault is None:
                return False
            fault.seen += 1
            if fault.seen < fault.occurrence:
                return False
            self._faults.remove(fault)
        if fault.action is not None:
            fault.action()
        if fault.after_bytes <= 0:
            connection.close()
            return True
        connection.budget = fault.after_bytes
        return False

    def _server_to_client(self, connection: _Connection) -> None:
        try:
            while True:
                data = connection.server.recv(65536)
                if not data:
                    break
                budget = connection.budget
                if budget is not None:
                    data = data[:budget]
                    connection.budget = budget - len(data)
                connection.client.sendall(data)
                if connection.budget is not None and connection.budget <= 0:
                    break
        except OSError:
            pass
        finally:
            connection.close()
