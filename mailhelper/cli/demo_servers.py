"""Embedded mail servers for ``mailhelper demo``: an IMAP server and an SMTP sink on 127.0.0.1.

The demo must run on a machine with nothing configured and no network, yet mailhelper's real
code must talk real IMAP and SMTP to something. So this module starts, inside the current
process and each in its own thread with its own asyncio loop:

- :class:`EmbeddedImap`: pymap's in-memory ("dict") backend, plain IMAP4rev1 (no TLS), empty
  mailboxes (pymap's demo data is off), an ``INBOX`` and a ``Sent`` folder per user;
- :class:`EmbeddedSmtp`: an aiosmtpd sink (no AUTH, no TLS) that keeps every accepted message
  in order and, when given an :class:`EmbeddedImap`, also delivers it to the INBOX of each
  recipient who is a user there.

Example::

    with demo_servers({"owner@localhost": "secret"}) as servers:
        client = IMAPClient(servers.imap_host, port=servers.imap_port, ssl=False)
        client.login("owner@localhost", "secret")
        ...
        smtplib.SMTP(servers.smtp_host, servers.smtp_port).sendmail(...)
        servers.smtp.messages()  # what mailhelper sent, oldest first

What the IMAP server offers (pymap 0.36.7; pinned by tests/test_demo_servers.py):

- CAPABILITY after login: ``IMAP4rev1 LITERAL+ ID BINARY UIDPLUS MOVE CHILDREN
  APPENDLIMIT=1000000000 IDLE OBJECTID MULTIAPPEND``; before login ``AUTH=PLAIN AUTH=LOGIN``,
  no STARTTLS. Not offered: SPECIAL-USE (so ``Sent`` is a plain folder, found by its name),
  NAMESPACE, ENABLE, CONDSTORE, SORT, THREAD.
- Hierarchy separator ``/``; CREATE ``a/b`` makes ``a`` a ``\\Noselect`` parent.
- SELECT gives UIDVALIDITY and UIDNEXT; the first UID in a mailbox is 101, not 1.
- ``UID SEARCH UID n:*`` returns the highest UID even when it is below n (RFC 3501 6.4.8).
- PERMANENTFLAGS include ``\\*`` because this module adds it: pymap alone would silently
  drop keywords such as ``$MailhelperHandled`` (see :func:`_keyword_mailbox_set`).

pymap and aiosmtpd are the ``demo`` extra: this module imports them lazily so that importing it
(and mailhelper as a whole) works without them; starting a server without them raises
:class:`DemoServerError` saying what to install.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import logging
import socket
import threading
import weakref
from argparse import Namespace
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from mailhelper.model.errors import MailhelperError

if TYPE_CHECKING:
    from pymap.backend.dict import Config as PymapDictConfig
    from pymap.backend.dict import Login as PymapDictLogin

__all__ = [
    "DemoServerError",
    "DemoServers",
    "EmbeddedImap",
    "EmbeddedSmtp",
    "ReceivedMail",
    "demo_servers",
]

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"

#: How long start() waits for a server to accept connections before giving up.
START_TIMEOUT = 10.0

#: How long stop() waits for a server thread to end; shutting down takes milliseconds, so
#: this only bounds a hang (which then leaves a daemon thread behind rather than blocking exit).
STOP_TIMEOUT = 5.0

_INSTALL_HINT = "install the demo extra: pip install '.[demo]' in the mailhelper checkout"


class DemoServerError(MailhelperError):
    """An embedded demo server could not start (missing package, port, timeout) or deliver."""


def _listening_socket(host: str, port: int) -> socket.socket:
    """Bind and listen now, so the port is known before the server's thread runs.

    Binding port 0 ourselves (rather than probing for a free port and binding it later) leaves
    no window in which another process could take the port.
    """
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when the
    # socket says it is TCP, and with proto 0 every multi-line IMAP response stalls 40 ms on
    # Nagle's algorithm meeting the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise DemoServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


# --------------------------------------------------------------------------------------------
# A server in a thread


class _ServerThread:
    """A server on a pre-bound socket, run by its own asyncio loop in its own (daemon) thread.

    Subclasses implement :meth:`_serve`. :meth:`start` binds the port, starts the thread and
    waits, at most ``start_timeout`` seconds, for :meth:`_serve` to say it is serving; a failure
    in the thread is raised there as :class:`DemoServerError`, never printed. :meth:`stop`
    asks :meth:`_serve` to return, joins the thread and is idempotent.
    """

    _what = "server"

    def __init__(self, host: str, port: int, start_timeout: float) -> None:
        self.host = host
        self.port = port
        self.start_timeout = start_timeout
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    def start(self) -> None:
        """Start serving; return once the port accepts connections (see the class docstring)."""
        if self._thread is not None:
            raise RuntimeError(f"the demo {self._what} is already running")
        self._check_installed()
        sock = _listening_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._ready.clear()
        self._failure = None
        self._loop = asyncio.new_event_loop()
        # Made here, not in the thread, so that stop() can always reach it, even when start()
        # gives up before the thread got going.
        self._stopping = asyncio.Event()
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name=f"demo-{self._what}-{self.port}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(self.start_timeout) or self._failure is not None:
            failure = self._failure
            self.stop()
            if failure is not None:
                raise DemoServerError(
                    f"the demo {self._what} failed to start: {failure}"
                ) from failure
            raise DemoServerError(
                f"the demo {self._what} did not start within {self.start_timeout:g} s"
            )

    def stop(self) -> None:
        """End all connections, close the port and join the thread; a no-op when stopped."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or loop is None:
            return
        if stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop may already have ended
                loop.call_soon_threadsafe(stopping.set)
        thread.join(STOP_TIMEOUT)
        self._thread = self._loop = self._stopping = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True between a successful :meth:`start` and :meth:`stop`."""
        return self._thread is not None and self._ready.is_set() and self._failure is None

    def _check_installed(self) -> None:
        """Raise DemoServerError, in the caller's thread, if the server's package is missing."""

    async def _serve(self, sock: socket.socket, stopping: asyncio.Event) -> None:
        """Serve on ``sock``; call ``self._ready.set()`` once serving; return after
        ``stopping`` is set, with every connection ended and the port closed."""
        raise NotImplementedError

    def _run(self, sock: socket.socket) -> None:
        loop, stopping = self._loop, self._stopping
        assert loop is not None and stopping is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(sock, stopping))
        except BaseException as exc:  # reported by start(), never printed
            self._failure = exc
            self._ready.set()
        finally:
            sock.close()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


async def _close_server(
    server: asyncio.AbstractServer, end_connections: Callable[[], None], grace: float = 1.0
) -> None:
    """End every connection, then close the listening port; bounded by ``grace`` seconds.

    Python 3.11's ``Server.close()`` leaves accepted connections open, so
    ``end_connections()`` is called, again on every loop turn as an accept may just have
    finished. The port is closed only once no other task runs: closing it under a connection
    asyncio is still accepting, or cancelling asyncio's accept task (as aiosmtpd's
    ``Controller.stop()`` does), makes asyncio log "Error on transport creation" with a
    traceback. Whatever still runs after ``grace`` is cancelled, so stop() stays bounded.
    """
    loop = asyncio.get_running_loop()
    current = asyncio.current_task()
    deadline = loop.time() + grace
    while True:
        end_connections()
        pending = asyncio.all_tasks() - {current}
        remaining = deadline - loop.time()
        if not pending or remaining <= 0:
            break
        await asyncio.wait(pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
    # No await since the check above, so no accept can have started in between.
    server.close()
    if pending:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    await server.wait_closed()


# --------------------------------------------------------------------------------------------
# IMAP



class _WholeWrites:
    """A StreamWriter whose writes go out together at ``drain()``: pymap writes a response's
    line and its CRLF apart, and a client reading without blocking (imapclient's IDLE) can
    then see half a line ("unterminated line"). Real servers send whole lines."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        self._pending.append(bytes(data))

    def writelines(self, data: Any) -> None:
        self._pending.extend(bytes(d) for d in data)

    def _flush(self) -> None:
        if self._pending:
            self._writer.write(b"".join(self._pending))
            self._pending.clear()

    async def drain(self) -> None:
        self._flush()
        await self._writer.drain()

    def close(self) -> None:
        self._flush()
        self._writer.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)

class EmbeddedImap(_ServerThread):
    """pymap's in-memory IMAP server on ``host:port`` (port 0: a free one), plain, in a thread.

    ``users`` maps login name to password; each user starts with an empty ``INBOX`` and the
    empty ``folders`` (default: ``Sent``). Everything lives in memory and is gone after
    :meth:`stop`. Passwords are kept in clear text: hashing them (pymap's default, 500,000
    PBKDF2 rounds) would cost about a second per login for nothing in a throwaway demo.

    :meth:`start` returns once the port accepts connections and the users exist, or raises
    :class:`DemoServerError` after ``start_timeout`` seconds. :meth:`stop` ends every open
    connection (clients get ``* BYE [UNAVAILABLE]``), closes the port and joins the thread; it
    is idempotent. Also a context manager.

    Example::

        with EmbeddedImap({"owner@localhost": "secret"}) as imap:
            IMAPClient(imap.host, port=imap.port, ssl=False).login("owner@localhost", "secret")
    """

    _what = "IMAP server"

    def __init__(
        self,
        users: Mapping[str, str],
        *,
        host: str = LOOPBACK,
        port: int = 0,
        folders: Sequence[str] = ("Sent",),
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        if not users:
            raise ValueError("EmbeddedImap needs at least one user")
        super().__init__(host, port, start_timeout)
        self.users: dict[str, str] = dict(users)
        self.folders = tuple(folders)
        self._login: PymapDictLogin | None = None
        self._config: PymapDictConfig | None = None

    def append(
        self,
        user: str,
        raw: bytes,
        mailbox: str = "INBOX",
        *,
        flags: Sequence[str] = (),
        when: datetime | None = None,
    ) -> int:
        """Put ``raw`` into ``user``'s ``mailbox`` as a new (\\Recent) message; return its UID.

        This is delivery from inside the server, as an MTA would do it, so clients in IDLE see
        the new message. For any thread but the server's own; from a running asyncio loop
        use :meth:`append_async`.
        """
        loop = self._loop
        if loop is None or not self.running:
            raise DemoServerError("the demo IMAP server is not running")
        future = asyncio.run_coroutine_threadsafe(
            self._append(user, raw, mailbox, flags, when), loop
        )
        return future.result(self.start_timeout)

    async def append_async(
        self,
        user: str,
        raw: bytes,
        mailbox: str = "INBOX",
        *,
        flags: Sequence[str] = (),
        when: datetime | None = None,
    ) -> int:
        """:meth:`append` for a caller running in some asyncio loop (e.g. the SMTP sink's)."""
        loop = self._loop
        if loop is None or not self.running:
            raise DemoServerError("the demo IMAP server is not running")
        coro = self._append(user, raw, mailbox, flags, when)
        if asyncio.get_running_loop() is loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    # -- inside the server's thread ----------------------------------------------------------

    def _check_installed(self) -> None:
        try:
            import pymap.backend.dict  # noqa: F401
        except ImportError as exc:
            raise DemoServerError(
                f"the demo IMAP server needs pymap ({_INSTALL_HINT}): {exc}"
            ) from None

    async def _serve(self, sock: socket.socket, stopping: asyncio.Event) -> None:
        from proxyprotocol.reader import ProxyProtocolReader
        from pymap.backend.dict import DictBackend, Login
        from pymap.imap import IMAPServer

        config = _demo_config(self.users)
        # The subsystem context variable is what pymap's main() sets before serving; the
        # connection tasks inherit it from this context.
        config.apply_context()
        login = Login(config)
        backend = DictBackend(login, config)
        self._config, self._login = config, login
        for name, password in self.users.items():
            await self._create_user(name, password)

        # What pymap's IMAPService.start() does, but on our pre-bound socket so the port is
        # known up front, and keeping the server and its connections so stop() can end them.
        imap_server = IMAPServer(backend.login, config)
        connections: set[asyncio.Task[Any]] = set()

        async def serve_connection(reader: Any, writer: Any, sock_info: Any) -> None:
            task = asyncio.current_task()
            if stopping.is_set() or task is None:  # accepted while the port was closing
                writer.close()
                return
            connections.add(task)
            try:
                await imap_server(reader, _WholeWrites(writer), sock_info)  # type: ignore[arg-type]
            finally:
                connections.discard(task)

        def end_connections() -> None:
            # A cancelled connection answers "* BYE [UNAVAILABLE]" and closes (pymap).
            for task in connections:
                task.cancel()

        callback = ProxyProtocolReader(config.proxy_protocol).get_callback(serve_connection)
        server = await asyncio.start_server(callback, sock=sock)
        try:
            self._ready.set()
            await stopping.wait()
        finally:
            await _close_server(server, end_connections)
            self._login = self._config = None

    async def _create_user(self, name: str, password: str) -> None:
        from pymap.backend.dict import Identity
        from pymap.backend.dict.filter import FilterSet
        from pymap.user import UserMetadata

        login, config = self._login, self._config
        assert login is not None and config is not None
        identity = Identity(name, login, None, frozenset())
        await identity.set(UserMetadata(config, name, password=password))
        # The dict backend makes a user's mailboxes at their first session unless its cache
        # already holds them; placing ours there is how keywords get kept (see below).
        config.set_cache[name] = (_keyword_mailbox_set(), FilterSet())
        async with identity.new_session() as session:
            for folder in self.folders:
                await session.create_mailbox(folder)

    async def _append(
        self,
        user: str,
        raw: bytes,
        mailbox: str,
        flags: Sequence[str],
        when: datetime | None,
    ) -> int:
        from pymap.backend.dict import Identity
        from pymap.exceptions import UserNotFound
        from pymap.parsing.message import AppendMessage
        from pymap.parsing.specials.flag import Flag

        login, config = self._login, self._config
        if login is None or config is None:
            raise DemoServerError("the demo IMAP server is not running")
        config.apply_context()  # this task may have been created from another thread
        message = AppendMessage(
            raw, when or datetime.now(UTC), frozenset(Flag(flag) for flag in flags)
        )
        try:
            async with Identity(user, login, None, frozenset()).new_session() as session:
                append_uid, _ = await session.append_messages(mailbox, [message])
        except UserNotFound:
            raise DemoServerError(f"no demo IMAP user {user!r}") from None
        return max(append_uid.uids)


def _keyword_mailbox_set() -> Any:
    """A pymap dict-backend mailbox set whose mailboxes keep keywords (``$MailhelperHandled``).

    pymap's mailboxes offer only the system flags in PERMANENTFLAGS and silently drop any
    other flag a client stores (RFC 3501 6.4.6 allows that). Real servers (Dovecot, Gmail)
    offer ``\\*``, so the demo does too: mailboxes here add the wildcard. It relies on the
    dict backend's internals as of pymap 0.36 (``_inbox``, ``_set``, ``_set_lock``, the two
    caches); tests/test_demo_servers.py notices if they change. A renamed INBOX (never done
    by mailhelper) gets pymap's plain mailbox back.
    """
    from pymap.backend.dict.mailbox import MailboxData, MailboxSet
    from pymap.parsing.specials import ObjectId
    from pymap.parsing.specials.flag import Flag, Wildcard

    class KeywordMailboxData(MailboxData):
        @property
        def permanent_flags(self) -> frozenset[Flag]:
            return super().permanent_flags | {Wildcard}

    class KeywordMailboxSet(MailboxSet):
        def __init__(self) -> None:
            super().__init__()
            self._inbox = KeywordMailboxData(self._content_cache, self._thread_cache)

        async def add_mailbox(self, name: str) -> ObjectId:
            # pymap's own add_mailbox, with the mailbox class swapped.
            async with self._set_lock.read_lock():
                if name in self._set:
                    raise ValueError(name)
            async with self._set_lock.write_lock():
                self._set[name] = mbx = KeywordMailboxData(
                    self._content_cache, self._thread_cache
                )
                return mbx.mailbox_id

    return KeywordMailboxSet()


def _demo_config(users: Mapping[str, str]) -> PymapDictConfig:
    """The pymap dict-backend config of the demo: loopback, no TLS, empty mailboxes, fast."""
    from pymap.backend.dict import Config
    from pymap.concurrent import Subsystem
    from pysasl.hashing import Cleartext

    class DemoConfig(Config):
        @property
        def greeting(self) -> bytes:
            # pymap's greeting calls socket.getfqdn(), which can wait seconds for a DNS
            # answer on an offline machine.
            return b"mailhelper demo IMAP server ready"

    first_user, first_password = next(iter(users.items()))
    # The fields pymap's own command line would set (see pymap.main and IMAPService).
    args = Namespace(
        debug=False,
        passlib_cfg=None,
        proxy_protocol=None,
        inherited_sockets=None,
        demo_data=False,
        demo_user=first_user,
        demo_password=first_password,
    )
    config: PymapDictConfig = DemoConfig(
        args,
        host=LOOPBACK,
        port=0,
        # No demo data, and no demo user either: that one is made by DictBackend.init(),
        # which is not used here; the config still wants a name.
        demo_data=False,
        demo_user=first_user,
        demo_password=first_password,
        tls_enabled=False,  # no STARTTLS; LOGIN and AUTHENTICATE PLAIN allowed in the clear
        hash_context=Cleartext(),
        # Hash checks run in the loop itself, not in a thread pool that stop() would have to
        # shut down; with clear-text passwords they take microseconds.
        cpu_subsystem=Subsystem.for_asyncio(),
        invalid_user_sleep=0.0,
        reject_dnsbl=False,
    )
    return config


# --------------------------------------------------------------------------------------------
# SMTP


@dataclass(frozen=True)
class ReceivedMail:
    """One message the SMTP sink accepted: the SMTP envelope and the message's bytes as the
    client sent them in DATA, dot-unstuffed. Line ends are the client's: smtplib's
    ``send_message`` writes CRLF, but ``sendmail`` passes bytes with bare LFs on unchanged."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    received_at: datetime

    def message(self) -> EmailMessage:
        """The parsed message (``email.policy.default``), line ends as ``\\n``.

        The wire's CRLF is turned into LF first: the parser keeps line ends inside bodies, so
        otherwise ``get_content()`` would return text with ``\\r\\n`` in it.
        """
        parsed = email.message_from_bytes(
            self.raw.replace(b"\r\n", b"\n"), policy=email.policy.default
        )
        assert isinstance(parsed, EmailMessage)
        return parsed


class _SinkHandler:
    """aiosmtpd handler: keep every message; deliver local recipients to the IMAP server."""

    def __init__(self, sink: EmbeddedSmtp) -> None:
        self._sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        mail = ReceivedMail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            raw=bytes(raw),
            received_at=datetime.now(UTC),
        )
        try:
            await self._sink._deliver(mail)
        except Exception:
            # The copy in the INBOX is a convenience; refusing the message would make the
            # sender retry and the demo show a duplicate, so it is accepted all the same.
            log.warning("demo SMTP sink: could not put message into the IMAP INBOX", exc_info=True)
        return "250 Message accepted for delivery"


class EmbeddedSmtp(_ServerThread):
    """An SMTP sink on ``host:port`` (port 0: a free one): no AUTH, no TLS, keeps everything.

    Every accepted message is kept in memory, in the order accepted; :meth:`received` gives
    them with their envelope, :meth:`messages` parsed. Any sender and recipient is accepted.
    When ``imap`` is given, each recipient who is a user of that server (compared
    case-insensitively) also gets the message in their INBOX, before the sender's ``DATA`` is
    answered, so it is there as soon as ``sendmail()`` returns. Other recipients are only kept.

    It is aiosmtpd's SMTP protocol run like :class:`EmbeddedImap`, not aiosmtpd's
    ``Controller``: that one's ``stop()`` cancels asyncio's own accept tasks (which prints
    tracebacks when a client connects just then) and cannot serve a pre-bound socket.
    :meth:`start` returns once the port accepts connections; :meth:`stop` drops open sessions
    and is idempotent; the messages are kept after it. Also a context manager.
    """

    _what = "SMTP sink"

    def __init__(
        self,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        imap: EmbeddedImap | None = None,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        super().__init__(host, port, start_timeout)
        self.imap = imap
        self._received: list[ReceivedMail] = []
        self._lock = threading.Lock()

    def received(self) -> list[ReceivedMail]:
        """Every accepted message with its envelope, oldest first (a copy)."""
        with self._lock:
            return list(self._received)

    def messages(self) -> list[EmailMessage]:
        """Every accepted message, parsed (see :meth:`ReceivedMail.message`), oldest first."""
        return [mail.message() for mail in self.received()]

    def clear(self) -> None:
        """Forget the messages kept so far (e.g. between the acts of the demo)."""
        with self._lock:
            self._received.clear()

    async def _deliver(self, mail: ReceivedMail) -> None:
        with self._lock:
            self._received.append(mail)
        imap = self.imap
        if imap is None or not imap.running:
            return
        users = {name.lower(): name for name in imap.users}
        for rcpt in dict.fromkeys(addr.lower() for addr in mail.rcpt_tos):
            if rcpt in users:
                await imap.append_async(users[rcpt], mail.raw)

    # -- inside the server's thread ----------------------------------------------------------

    def _check_installed(self) -> None:
        try:
            import aiosmtpd.smtp  # noqa: F401
        except ImportError as exc:
            raise DemoServerError(
                f"the demo SMTP sink needs aiosmtpd ({_INSTALL_HINT}): {exc}"
            ) from None

    async def _serve(self, sock: socket.socket, stopping: asyncio.Event) -> None:
        from aiosmtpd.smtp import SMTP

        handler = _SinkHandler(self)
        sessions: weakref.WeakSet[Any] = weakref.WeakSet()

        def new_session() -> Any:
            # hostname given: aiosmtpd would otherwise call socket.getfqdn(), which can wait
            # seconds for DNS on an offline machine. No authenticator and no TLS context: no
            # AUTH and no STARTTLS are offered.
            session = SMTP(handler, hostname="localhost", enable_SMTPUTF8=True)
            sessions.add(session)
            return session

        def end_connections() -> None:
            # Closing the transport makes aiosmtpd cancel the session's own task.
            for session in list(sessions):
                transport = getattr(session, "transport", None)
                if transport is not None:
                    transport.close()

        loop = asyncio.get_running_loop()
        server = await loop.create_server(new_session, sock=sock)
        try:
            self._ready.set()
            await stopping.wait()
        finally:
            await _close_server(server, end_connections)


# --------------------------------------------------------------------------------------------
# Both


@dataclass(frozen=True)
class DemoServers:
    """The running pair that :func:`demo_servers` yields."""

    imap: EmbeddedImap
    smtp: EmbeddedSmtp

    @property
    def imap_host(self) -> str:
        return self.imap.host

    @property
    def imap_port(self) -> int:
        return self.imap.port

    @property
    def smtp_host(self) -> str:
        return self.smtp.host

    @property
    def smtp_port(self) -> int:
        return self.smtp.port


@contextlib.contextmanager
def demo_servers(users: Mapping[str, str], *, deliver: bool = True) -> Iterator[DemoServers]:
    """Run an :class:`EmbeddedImap` with ``users`` and an :class:`EmbeddedSmtp`, both on
    127.0.0.1 on free ports, and stop both on exit, whatever ends the block (an exception,
    KeyboardInterrupt). With ``deliver``, mail sent to a user lands in their INBOX as well.

    Example::

        with demo_servers({"owner@localhost": "pw", "helper@localhost": "pw"}) as s:
            print(s.imap_host, s.imap_port, s.smtp_host, s.smtp_port)
    """
    with contextlib.ExitStack() as stack:
        imap = stack.enter_context(EmbeddedImap(users))
        smtp = stack.enter_context(EmbeddedSmtp(imap=imap if deliver else None))
        yield DemoServers(imap=imap, smtp=smtp)
