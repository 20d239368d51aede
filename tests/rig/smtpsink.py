"""An SMTP sink on 127.0.0.1 that keeps every message it accepts, and can be told to misbehave.

:class:`SmtpSink` is an aiosmtpd server in a background thread. Each accepted message is written
to its folder as ``NNNNN.eml`` (the bytes exactly as received after the DATA dot-unstuffing of
RFC 5321 4.5.2, CRLF line endings kept) with a ``NNNNN.json`` sidecar holding the envelope
(``mail_from``, ``rcpt_tos``, ESMTP options, the AUTH user, whether TLS was on). The folder is
the whole state, so another process can read it with :class:`SinkFolder`.

Scripted failures, consumed in the order they were asked for:

- ``fail_next(n, code, text)``: the next ``n`` transactions are refused with ``code`` at DATA
  (or at MAIL/RCPT with ``stage=``); 4xx is temporary, 5xx permanent, and 421 also closes the
  connection as RFC 5321 3.8 says a server does;
- ``drop_next(n)``: the next ``n`` transactions lose their connection after the message was
  sent and before any reply: the client cannot know whether it went (``after_store=True``
  keeps the message, which is the "accepted but the reply was lost" case).

Example::

    sink = SmtpSink(tmp_path / "sink", cert=cert, credentials={"helper": "pw"}).start()
    with smtplib.SMTP(sink.host, sink.port) as smtp:
        smtp.starttls(context=cert.client_context())
        smtp.login("helper", "pw")
        smtp.send_message(message)
    assert sink.messages()[0]["Subject"] == message["Subject"]
    sink.stop()

Standalone (the demo, manual poking)::

    python -m tests.rig.smtpsink --port 2525 --dir /tmp/sink [--user U --password P]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import itertools
import json
import os
import shutil
import signal
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session

from . import LOOPBACK, RigError, SelfSignedCert

__all__ = ["SinkEnvelope", "SinkFolder", "SmtpSink", "main"]

Stage = Literal["mail", "rcpt", "data"]

#: Default reply texts for scripted failures, with RFC 3463 enhanced status codes.
_DEFAULT_TEXT = {
    421: "4.3.2 Service shutting down (test rig)",
    450: "4.2.0 Mailbox unavailable (test rig)",
    451: "4.3.0 Local error in processing (test rig)",
    452: "4.3.1 Insufficient system storage (test rig)",
    550: "5.1.1 Mailbox unavailable (test rig)",
    552: "5.3.4 Message too big (test rig)",
    554: "5.6.0 Transaction failed (test rig)",
}


@dataclass(frozen=True)
class SinkEnvelope:
    """The SMTP envelope of one stored message (RFC 5321 2.3.1), from its ``.json`` sidecar."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    mail_options: tuple[str, ...]
    rcpt_options: tuple[str, ...]
    auth_user: str | None
    tls: bool
    received_at: datetime
    eml: Path


class SinkFolder:
    """Reads the messages a sink stored in ``directory``, in arrival order.

    A message counts once its ``.json`` sidecar exists: the sink writes it last, by rename,
    so a reader in another process never sees half a message.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _sidecars(self) -> list[Path]:
        return sorted(self.directory.glob("[0-9]*.json"))

    def raw(self) -> list[bytes]:
        """Each stored message's bytes, exactly as received."""
        return [side.with_suffix(".eml").read_bytes() for side in self._sidecars()]

    def messages(self) -> list[EmailMessage]:
        """Each stored message parsed with ``email.policy.default``."""
        parser = BytesParser(policy=policy.default)
        parsed: list[EmailMessage] = []
        for raw in self.raw():
            message = parser.parsebytes(raw)
            assert isinstance(message, EmailMessage)
            parsed.append(message)
        return parsed

    def envelopes(self) -> list[SinkEnvelope]:
        """Each stored message's envelope, in the same order as :meth:`messages`."""
        result: list[SinkEnvelope] = []
        for side in self._sidecars():
            data = json.loads(side.read_text())
            result.append(
                SinkEnvelope(
                    mail_from=data["mail_from"],
                    rcpt_tos=tuple(data["rcpt_tos"]),
                    mail_options=tuple(data["mail_options"]),
                    rcpt_options=tuple(data["rcpt_options"]),
                    auth_user=data["auth_user"],
                    tls=data["tls"],
                    received_at=datetime.fromisoformat(data["received_at"]),
                    eml=side.with_suffix(".eml"),
                )
            )
        return result

    def clear(self) -> None:
        """Forget every stored message (numbering goes on, so arrival order stays clear)."""
        for path in self.directory.glob("[0-9]*.*"):
            path.unlink(missing_ok=True)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """Poll until at least ``count`` messages are stored; return them all.

        For senders in another process. Raises ``TimeoutError`` naming how many arrived.
        """
        deadline = time.monotonic() + timeout
        while len(self._sidecars()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(self._sidecars())} of {count} messages reached {self.directory}"
                )
            time.sleep(0.02)
        return self.messages()


@dataclass(frozen=True)
class _Failure:
    code: int
    text: str


@dataclass(frozen=True)
class _Drop:
    after_store: bool


class _PortReportingController(Controller):
    """aiosmtpd's Controller, bound to port 0: reads back the port the kernel chose.

    Asking the kernel (instead of probing for a free port first) leaves no window in which
    another process can take the port.
    """

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpSink(SinkFolder):
    """An aiosmtpd SMTP server on 127.0.0.1 that stores what it accepts (see the module doc).

    ``cert``: offer STARTTLS with it (or, with ``implicit_tls``, speak TLS from the first
    byte, as on port 465); None means plain SMTP only. ``credentials``: ``{user: password}``
    accepted by AUTH PLAIN and LOGIN; None means every PLAIN/LOGIN attempt is refused.
    ``oauth_tokens``: ``{user: access token}`` accepted by AUTH XOAUTH2 (Google's SASL
    mechanism, ``user=U^Aauth=Bearer T^A^A``); None means XOAUTH2 is not offered; a refused
    token gets the error challenge and then ``535``, as Gmail answers. ``auth_required``: refuse
    MAIL before AUTH (530). ``auth_require_tls``: offer AUTH only under TLS, as real
    submission servers do. ``require_starttls``: refuse everything but EHLO/STARTTLS before
    TLS. ``smtputf8``: offer SMTPUTF8 (RFC 6531), so non-ASCII addresses are accepted.
    ``port=0`` lets the kernel choose; read :attr:`port` after :meth:`start`.
    """

    def __init__(
        self,
        directory: Path,
        *,
        cert: SelfSignedCert | None = None,
        credentials: Mapping[str, str] | None = None,
        oauth_tokens: Mapping[str, str] | None = None,
        auth_required: bool = False,
        auth_require_tls: bool = False,
        require_starttls: bool = False,
        implicit_tls: bool = False,
        port: int = 0,
        server_hostname: str = "localhost",
        smtputf8: bool = False,
    ) -> None:
        super().__init__(directory)
        if (implicit_tls or require_starttls) and cert is None:
            raise ValueError("implicit_tls and require_starttls need a cert")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.host = LOOPBACK
        self.port = port
        self.cert = cert
        self.credentials = dict(credentials) if credentials is not None else None
        self.oauth_tokens = dict(oauth_tokens) if oauth_tokens is not None else None
        self.outcomes: list[str] = []
        """The reply to every DATA so far, in order: ``"250"``, ``"451"``, ``"dropped"``..."""
        self._scripts: dict[Stage, deque[_Failure | _Drop]] = {
            "mail": deque(), "rcpt": deque(), "data": deque(),
        }  # fmt: skip
        self._lock = threading.Lock()
        existing = [int(p.stem) for p in self.directory.glob("[0-9]*.eml") if p.stem.isdigit()]
        self._sequence = itertools.count(max(existing, default=0) + 1)
        smtp_options: dict[str, Any] = {
            "server_hostname": server_hostname,  # skips socket.getfqdn(), which can be slow
            "auth_required": auth_required,
            "auth_require_tls": auth_require_tls,
            "require_starttls": require_starttls,
            "data_size_limit": 64 * 1024 * 1024,
            "enable_SMTPUTF8": smtputf8,
        }
        if self.credentials is not None:
            smtp_options["authenticator"] = self._authenticate
        if self.oauth_tokens is None:
            smtp_options["auth_exclude_mechanism"] = ["XOAUTH2"]
        if cert is not None and implicit_tls:
            smtp_options["ssl_context"] = cert.server_context()
        elif cert is not None:
            smtp_options["tls_context"] = cert.server_context()
        self._controller = _PortReportingController(
            self, hostname=self.host, port=port, **smtp_options
        )
        self._running = False

    # -- control -----------------------------------------------------------------------------

    @property
    def ca_file(self) -> Path | None:
        """The file clients verify this sink's TLS against (None without TLS)."""
        return self.cert.ca_file if self.cert is not None else None

    @property
    def username(self) -> str | None:
        """The first configured AUTH user (for the common one-account case)."""
        return next(iter(self.credentials), None) if self.credentials else None

    @property
    def password(self) -> str | None:
        """The password of :attr:`username`."""
        user = self.username
        return self.credentials[user] if self.credentials and user else None

    def start(self) -> SmtpSink:
        """Start listening (about 10 ms); returns self so ``SmtpSink(...).start()`` reads well."""
        if not self._running:
            self._controller.start()
            self.port = self._controller.port
            self._running = True
        return self

    def stop(self) -> None:
        """Stop listening and end open connections. Stored messages stay. Idempotent."""
        if self._running:
            self._running = False
            self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def fail_next(
        self, n: int = 1, code: int = 451, text: str | None = None, *, stage: Stage = "data"
    ) -> None:
        """Refuse the next ``n`` transactions at ``stage`` with ``code`` (and ``text``).

        At ``"data"`` the whole message is read, then refused and not stored. ``"rcpt"``
        refuses each of the next ``n`` RCPT commands (smtplib then raises
        SMTPRecipientsRefused when none is left); ``"mail"`` the next ``n`` MAIL FROM.
        """
        if not 400 <= code <= 599:
            raise ValueError(f"fail_next needs a 4xx or 5xx code, not {code}")
        reply = text if text is not None else _DEFAULT_TEXT.get(code, "Failed (test rig)")
        with self._lock:
            self._scripts[stage].extend(_Failure(code, reply) for _ in range(n))

    def drop_next(self, n: int = 1, *, after_store: bool = False) -> None:
        """Drop the connection of the next ``n`` transactions after DATA, with no reply.

        ``after_store=False``: the message is lost. ``after_store=True``: it is stored first,
        so a client that retries delivers it twice (what Message-ID dedup must cope with).
        """
        with self._lock:
            self._scripts["data"].extend(_Drop(after_store) for _ in range(n))

    def reset_script(self) -> None:
        """Forget every pending fail_next/drop_next."""
        with self._lock:
            for queue in self._scripts.values():
                queue.clear()

    def _next_script(self, stage: Stage) -> _Failure | _Drop | None:
        with self._lock:
            queue = self._scripts[stage]
            return queue.popleft() if queue else None

    # -- aiosmtpd hooks ----------------------------------------------------------------------

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword) or self.credentials is None:
            return AuthResult(success=False, handled=False)
        user = data.login.decode("utf-8", "replace")
        ok = self.credentials.get(user) == data.password.decode("utf-8", "replace")
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """AUTH XOAUTH2 [initial-response]: accept a user's token from ``oauth_tokens``."""
        if len(args) == 2:
            try:
                blob = base64.b64decode(args[1].encode(), validate=True)
            except (binascii.Error, ValueError):
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        else:
            answer = await server.challenge_auth("")
            if answer is MISSING:
                return AuthResult(success=False, handled=True)  # challenge_auth replied
            assert isinstance(answer, bytes)
            blob = answer
        fields = dict(
            part.split("=", 1) for part in blob.decode("utf-8", "replace").split("\x01")
            if "=" in part
        )
        user = fields.get("user", "")
        bearer = fields.get("auth", "")
        token = bearer[len("Bearer ") :] if bearer.startswith("Bearer ") else None
        if token is not None and (self.oauth_tokens or {}).get(user) == token:
            return AuthResult(success=True, handled=False, auth_data=user)
        # Google's behaviour: the error as a base64 JSON challenge, an empty client answer,
        # then 535.
        error = json.dumps({"status": "401", "schemes": "Bearer", "scope": "mail"})
        if await server.challenge_auth(error) is MISSING:
            return AuthResult(success=False, handled=True)  # challenge_auth replied
        return AuthResult(
            success=False, handled=False,
            message="535 5.7.8 Username and token not accepted (test rig)",
        )  # fmt: skip

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        script = self._next_script("mail")
        if isinstance(script, _Failure):
            return self._refuse(server, script)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        script = self._next_script("rcpt")
        if isinstance(script, _Failure):
            return self._refuse(server, script)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        script = self._next_script("data")
        if isinstance(script, _Failure):
            self.outcomes.append(str(script.code))
            return self._refuse(server, script)
        if isinstance(script, _Drop):
            if script.after_store:
                self._store(server, session, envelope)
            self.outcomes.append("dropped after store" if script.after_store else "dropped")
            transport = server.transport
            if isinstance(transport, asyncio.WriteTransport):
                transport.abort()  # at once, unwritten data discarded: nothing reaches the client
            elif transport is not None:
                transport.close()
            # aiosmtpd cancels this handler when it notices the lost connection; the bounded
            # sleep only guards against that never happening.
            await asyncio.sleep(30)
            return "421 4.4.2 Connection dropped (test rig)"
        number = self._store(server, session, envelope)
        self.outcomes.append("250")
        return f"250 2.0.0 OK queued as {number:05d}"

    @staticmethod
    def _refuse(server: SMTP, failure: _Failure) -> str:
        if failure.code == 421 and server.transport is not None:
            # RFC 5321 3.8: a 421 reply is followed by closing the channel. call_soon lets
            # aiosmtpd write the reply first; close() then flushes it before closing.
            asyncio.get_running_loop().call_soon(server.transport.close)
        return f"{failure.code} {failure.text}"

    def _store(self, server: SMTP, session: Session, envelope: Envelope) -> int:
        """Write ``NNNNN.eml``, then its ``NNNNN.json`` sidecar (each by rename)."""
        with self._lock:
            number = next(self._sequence)
        raw = envelope.original_content or b""
        # session.ssl is only set by STARTTLS; with implicit TLS the transport itself is TLS.
        transport = server.transport
        tls = session.ssl is not None or (
            transport is not None and transport.get_extra_info("ssl_object") is not None
        )
        sidecar = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "mail_options": list(envelope.mail_options),
            "rcpt_options": list(envelope.rcpt_options),
            "auth_user": session.auth_data if isinstance(session.auth_data, str) else None,
            "tls": tls,
            "peer": list(session.peer) if session.peer else None,
            "received_at": datetime.now(UTC).isoformat(),
        }
        base = self.directory / f"{number:05d}"
        _write_atomically(base.with_suffix(".eml"), raw)
        _write_atomically(base.with_suffix(".json"), json.dumps(sidecar, indent=1).encode())
        return number


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_bytes(data)
    os.replace(partial, path)


def main(argv: Sequence[str] | None = None) -> int:
    """Run a sink until SIGINT/SIGTERM; print ``listening on 127.0.0.1:PORT`` when ready."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.rig.smtpsink", description="An SMTP sink for mailhelper tests."
    )
    parser.add_argument("--dir", type=Path, required=True, help="where to store messages")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--user", help="accept AUTH PLAIN/LOGIN as this user")
    parser.add_argument("--password", help="... with this password")
    parser.add_argument("--oauth-token", help="accept AUTH XOAUTH2 for --user with this token")
    parser.add_argument("--auth-required", action="store_true")
    parser.add_argument("--tls", choices=["none", "starttls", "implicit"], default="none")
    parser.add_argument("--cert", type=Path, help="certificate (made in --dir when absent)")
    parser.add_argument("--key", type=Path, help="private key of --cert")
    args = parser.parse_args(argv)

    if (args.user is None) != (args.password is None):
        parser.error("--user and --password go together")
    cert: SelfSignedCert | None = None
    if args.tls != "none":
        if args.cert and args.key:
            cert = SelfSignedCert(args.cert, args.key)
        elif shutil.which("openssl"):
            cert = SelfSignedCert.create(args.dir / "tls")
        else:
            raise RigError("--tls needs --cert/--key or openssl to make them")
    sink = SmtpSink(
        args.dir,
        cert=cert,
        credentials={args.user: args.password} if args.user else None,
        oauth_tokens={args.user: args.oauth_token} if args.user and args.oauth_token else None,
        auth_required=args.auth_required,
        implicit_tls=args.tls == "implicit",
        port=args.port,
    )
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    with sink:
        print(f"listening on {sink.host}:{sink.port}", flush=True)
        if cert is not None:
            print(f"ca_file {cert.ca_file}", flush=True)
        stopped.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
