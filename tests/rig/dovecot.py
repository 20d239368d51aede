"""A throwaway Dovecot 2.3 IMAP server on 127.0.0.1, for tests and demos.

:class:`DovecotServer` writes its own ``dovecot.conf`` into a fresh temp dir (every path Dovecot
uses lives there: base_dir, state_dir, log, Maildirs, passwd-file, TLS cert and key) and runs
``dovecot -F -c CONF`` in its own process group. It never reads ``/etc/dovecot``, never binds
anything but 127.0.0.1, and never touches a system Dovecot.

What the server offers (shaped after DOVECOT-NOTES.md):

- a plain port with STARTTLS and an implicit-TLS port, both with a self-signed certificate that
  clients verify through :attr:`DovecotServer.ca_file`;
- PLAIN and LOGIN over a passwd-file (``disable_plaintext_auth = no``), no failure delay and no
  anvil penalty, so a test of a wrong password does not slow the next test down;
- XOAUTH2 and OAUTHBEARER through Dovecot's ``oauth2`` passdb, which asks a tiny token
  introspection server the rig runs in-process (:meth:`DovecotServer.issue_token`);
- Maildir with ``LAYOUT=fs`` and ``/`` as the separator (``mailhelper/errors`` works), and the
  special-use folders Sent (``\\Sent``), Trash and Drafts, created and subscribed on first login.

Under root, the whole server (master included) runs as ``nobody``: Dovecot refuses to serve mail
as uid 0 and login processes refuse to run as root. Under any other user it runs as that user.

Example::

    with DovecotServer() as server:
        creds = server.add_user("helper@example.com", "secret")
        client = IMAPClient(server.host, server.tls_port, ssl_context=server.client_context())
        client.login(creds.username, creds.password)
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import grp
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

from . import LOOPBACK, RigError, SelfSignedCert

__all__ = ["Credentials", "DovecotServer", "ImapAccount", "find_dovecot"]

#: Prefix of every rig temp dir; stale ones (their owner process died) are reaped on start.
ROOT_PREFIX = "mailhelper-dovecot-"

#: Where Debian and most distributions install the binary; it is often not on a user's PATH.
_DOVECOT_CANDIDATES = ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot")


def find_dovecot() -> str | None:
    """The path of the ``dovecot`` binary, or None when it is not installed.

    Looks on PATH first, then in the sbin directories that are often missing from it.
    """
    found = shutil.which("dovecot")
    if found:
        return found
    for candidate in _DOVECOT_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


@dataclass(frozen=True)
class Credentials:
    """One mailbox user: log in with ``username``/``password``, or XOAUTH2 with ``oauth_token``."""

    username: str
    password: str
    oauth_token: str


@dataclass(frozen=True)
class ImapAccount:
    """Everything a client needs to reach one user's mailbox on the rig's Dovecot.

    ``port`` speaks plain IMAP and offers STARTTLS; ``tls_port`` is implicit TLS (IMAPS).
    Both present a certificate that verifies against ``ca_file`` for ``127.0.0.1``/``localhost``.
    """

    host: str
    port: int
    tls_port: int
    ca_file: Path
    username: str
    password: str
    oauth_token: str


@dataclass(frozen=True)
class _RunIdentity:
    """The account every Dovecot process runs as."""

    user: str
    group: str
    uid: int
    gid: int


def _run_identity(run_as: str | None) -> _RunIdentity:
    """``run_as`` (default ``nobody``) under root; the current user otherwise."""
    if os.geteuid() == 0:
        entry = pwd.getpwnam(run_as or "nobody")
    else:
        entry = pwd.getpwuid(os.geteuid())
        if run_as and run_as != entry.pw_name:
            raise RigError(f"cannot run Dovecot as {run_as!r} without root")
    group = grp.getgrgid(entry.pw_gid).gr_name
    return _RunIdentity(entry.pw_name, group, entry.pw_uid, entry.pw_gid)


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _group_members(pgid: int) -> list[tuple[int, str]]:
    """The live (non-zombie) processes of process group ``pgid``, as ``(pid, name)``.

    Reads /proc because ``kill(-pgid, 0)`` also succeeds for zombies, and in a container PID 1
    may never reap the children the Dovecot master leaves behind.
    """
    members: list[tuple[int, str]] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces: split after the last ')'.
        name = text[text.find("(") + 1 : text.rfind(")")]
        fields = text[text.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append((int(stat.parent.name), name))
    return members


def _group_alive(pgid: int) -> bool:
    """Whether any live process is left in process group ``pgid``."""
    if not Path("/proc").is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    return bool(_group_members(pgid))


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale_roots(tmp: Path | None = None) -> list[Path]:
    """Kill the Dovecot of, and remove, every rig dir whose owner process is gone.

    A test run killed with SIGKILL (or SIGTERM, which skips atexit) leaves its Dovecot running;
    the next run cleans up after it. A group is only killed when its leader's command line still
    names that dir's config, so a recycled process group id is never hit.
    """
    reaped: list[Path] = []
    for root in Path(tmp or tempfile.gettempdir()).glob(f"{ROOT_PREFIX}*"):
        owner_file = root / "owner.json"
        try:
            owner = json.loads(owner_file.read_text())
            owner_pid, master_pgid = int(owner["owner_pid"]), owner.get("pgid")
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if _pid_alive(owner_pid):
            continue
        if master_pgid:
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{master_pgid}/cmdline").read_bytes()
                if str(root / "dovecot.conf").encode() in cmdline:
                    _kill_group(int(master_pgid), signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)
        reaped.append(root)
    return reaped


class _TokenIntrospection:
    """A minimal OAuth 2.0 introspection endpoint for Dovecot's ``oauth2`` passdb.

    Dovecot (``introspection_mode = auth``) sends ``GET /`` with ``Authorization: Bearer TOKEN``;
    a known token answers ``{"email": USER, "active": "true"}``, anything else
    ``{"active": "false"}``.
    The passdb then checks that ``email`` equals the user named in the SASL exchange.
    """

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.requests = 0
        tokens, outer = self.tokens, self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                header = self.headers.get("Authorization", "")
                token = header[len("Bearer ") :] if header.startswith("Bearer ") else ""
                user = tokens.get(token)
                if user is None:
                    # Not 401: Dovecot reads a 401 as "no username returned", a temporary
                    # failure; an inactive token is a plain AUTHENTICATIONFAILED, like Gmail's.
                    self._reply(200, {"active": "false"})
                else:
                    self._reply(200, {"email": user, "active": "true"})

            def _reply(self, status: int, body: dict[str, str]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass  # Dovecot's own log records every oauth2 lookup that matters.

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self._server.server_address[1]}/"
        # A short poll interval: shutdown() waits for serve_forever() to notice it.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="rig-oauth2", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


_CONFIG_TEMPLATE = """\
# Written by tests/rig/dovecot.py for one test session. Every path is under {root}.
protocols = imap
listen = {host}
instance_name = mailhelper-rig-{port}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/log/dovecot.log
# Debian's build adds a tag to its greeting; a fixed one keeps logs and tests predictable.
login_greeting = mailhelper rig ready.
# The rig never needs the stats service; without its socket every process stops faster.
stats_writer_socket_path =

# Everything runs as one unprivileged account (see the module docstring).
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
mail_uid = {user}
mail_gid = {group}
first_valid_uid = {uid}
first_valid_gid = {gid}

mail_home = {root}/mail/%Lu
mail_location = maildir:~/Maildir:LAYOUT=fs
mail_fsync = never
mail_max_userip_connections = 500

ssl = yes
ssl_cert = <{root}/tls/cert.pem
ssl_key = <{root}/tls/key.pem
ssl_min_protocol = TLSv1.2

auth_mechanisms = plain login xoauth2 oauthbearer
disable_plaintext_auth = no
auth_failure_delay = 0
auth_cache_size = 0
auth_verbose = yes

# One passwd-file per user: Dovecot stats a passwd-file at most once a second and reloads it
# only when its mtime (in whole seconds) changes, so a user appended to a shared file can stay
# unknown for a second. A file it has never opened is read at first lookup: no wait at all.
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%Lu {root}/auth/users/%Lu
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/auth/oauth2.conf.ext
}}
userdb {{
  driver = passwd-file
  args = username_format=%Lu {root}/auth/users/%Lu
}}

namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
}}

service imap-login {{
  chroot =
  user = {user}
  # One long-lived login process (DOVECOT-NOTES): no process start per connection, and no
  # login process caught half-started by stop().
  service_count = 0
  process_min_avail = 1
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    address = {host}
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  # Without access to this socket the auth process turns login penalties off.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth {{
  user = {user}
}}
service auth-worker {{
  user = {user}
}}
"""

_OAUTH2_TEMPLATE = """\
introspection_mode = auth
introspection_url = {url}
username_attribute = email
active_attribute = active
active_value = true
force_introspection = yes
timeout_msecs = 5000
"""


class DovecotServer:
    """A real Dovecot IMAP server in a temp dir, listening on 127.0.0.1 only.

    Lifecycle: ``start()`` (about 0.05-0.3 s), ``stop()`` (about 10 ms, at most ``grace``
    seconds, 0.25 by default), ``restart()`` (same ports, same users, same mail),
    ``close()`` (stop and delete the temp dir; also run at interpreter exit). Usable as a
    context manager, which starts and closes it.

    Each user has its own passwd-file, which Dovecot reads at the user's first login:
    ``add_user()`` works while the server runs, with no wait. Each user also gets an OAuth
    token for XOAUTH2/OAUTHBEARER.

    Attributes: ``host`` (always 127.0.0.1), ``port`` (plain + STARTTLS), ``tls_port``
    (implicit TLS), ``ca_file`` (verify both against it), ``root`` (the temp dir),
    ``users`` (username -> :class:`Credentials`).
    """

    def __init__(
        self,
        *,
        cert: SelfSignedCert | None = None,
        binary: str | None = None,
        run_as: str | None = None,
        parent_dir: Path | None = None,
    ) -> None:
        """Prepare (but do not start) a server.

        ``cert``: the certificate to present (one is made when None); ``binary``: the dovecot
        executable (found with :func:`find_dovecot` when None); ``run_as``: the account under
        root (default ``nobody``); ``parent_dir``: where the temp dir goes (default: the system
        temp dir; under root every directory above it must be searchable by that account).
        """
        found = binary or find_dovecot()
        if found is None:
            raise RigError("dovecot is not installed (apt-get install dovecot-imapd)")
        self.binary = found
        self.host = LOOPBACK
        self._identity = _run_identity(run_as)
        reap_stale_roots(parent_dir)
        self.root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX, dir=parent_dir))
        self.users: dict[str, Credentials] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._closed = False
        self._lock = threading.RLock()
        # Fixed for the server's lifetime so restart() comes back where clients expect it.
        self.port = _free_port()
        self.tls_port = _free_port()
        while self.tls_port == self.port:
            self.tls_port = _free_port()
        self._cert = cert or SelfSignedCert.create(self.root / "ca")
        self.ca_file = self._cert.ca_file
        self._oauth = _TokenIntrospection()
        self._write_tree()
        atexit.register(self.close)

    # -- files -------------------------------------------------------------------------------

    @property
    def config_file(self) -> Path:
        """The ``dovecot.conf`` this server runs with (``doveconf -c`` it to inspect)."""
        return self.root / "dovecot.conf"

    @property
    def log_file(self) -> Path:
        return self.root / "log" / "dovecot.log"

    def _passwd_file(self, username: str) -> Path:
        return self.root / "auth" / "users" / username.lower()

    def _write_tree(self) -> None:
        ident = self._identity
        for sub in ("run", "state", "log", "mail", "auth", "auth/users", "tls"):
            (self.root / sub).mkdir(exist_ok=True)
        shutil.copyfile(self._cert.cert_file, self.root / "tls" / "cert.pem")
        shutil.copyfile(self._cert.key_file, self.root / "tls" / "key.pem")
        os.chmod(self.root / "tls" / "key.pem", 0o600)
        (self.root / "auth" / "oauth2.conf.ext").write_text(
            _OAUTH2_TEMPLATE.format(url=self._oauth.url)
        )
        self.config_file.write_text(
            _CONFIG_TEMPLATE.format(
                root=self.root, host=self.host, port=self.port, tls_port=self.tls_port,
                user=ident.user, group=ident.group, uid=ident.uid, gid=ident.gid,
            )
        )  # fmt: skip
        (self.root / "owner.json").write_text(json.dumps({"owner_pid": os.getpid()}))
        if os.geteuid() == 0:
            # Dovecot runs as another account: hand it the whole tree (the key stays 0600).
            for path in [self.root, *self.root.rglob("*")]:
                os.chown(path, ident.uid, ident.gid)
            os.chmod(self.root, 0o711)

    def log_text(self) -> str:
        """Dovecot's log so far (errors, logins, auth failures); empty when there is none."""
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def maildir(self, username: str) -> Path:
        """The Maildir root of ``username`` (INBOX's ``cur``/``new``; folders below it)."""
        return self.root / "mail" / username.lower() / "Maildir"

    # -- users -------------------------------------------------------------------------------

    def add_user(
        self, username: str, password: str | None = None, settings: dict[str, str] | None = None
    ) -> Credentials:
        """Create a mailbox user and return its credentials; it can log in at once, no restart.

        ``password`` may hold any character (it is stored base64-encoded); a random one is made
        when None. The user's Maildir appears at first login. Adding a user twice is an error.
        ``settings`` override dovecot.conf for this user only (userdb extra fields, no spaces),
        e.g. ``{"namespace/inbox/mailbox/Sent/name": "Outbox"}`` serves the ``\\Sent``
        folder as ``Outbox``; adding ``.../Sent/auto: "no"`` with an unused name means no
        ``\\Sent`` folder at all.
        Caveat: a failed login as ``username`` in the same second *before* add_user() makes
        Dovecot remember the missing file for up to a second.
        """
        username = username.lower()
        if not re.fullmatch(r"[a-z0-9][a-z0-9._+@-]*", username) or ".." in username:
            # The name becomes a file name (see dovecot.conf), so keep it to address characters.
            raise ValueError(f"unusable IMAP username {username!r}")
        with self._lock:
            if username in self.users:
                raise ValueError(f"user {username!r} already exists")
            password = secrets.token_urlsafe(12) if password is None else password
            encoded = base64.b64encode(password.encode()).decode()
            # user:password:uid:gid:gecos:home:shell:extra -- uid, gid and home come from
            # mail_uid, mail_gid and mail_home in dovecot.conf.
            overrides = (settings or {}).items()
            if any(c.isspace() or c == ":" for k, v in overrides for c in k + v):
                raise ValueError(f"settings must not contain spaces or colons: {settings!r}")
            extra = " ".join(f"userdb_{k}={v}" for k, v in overrides)
            line = f"{username}:{{PLAIN.b64}}{encoded}::::::{extra}\n"
            # Written whole under a temp name and renamed: Dovecot never reads half a file.
            final = self._passwd_file(username)
            partial = final.with_name(f".{username}.tmp")
            partial.write_text(line)
            if os.geteuid() == 0:
                os.chown(partial, self._identity.uid, self._identity.gid)
            partial.chmod(0o600)
            partial.replace(final)
            credentials = Credentials(username, password, self.issue_token(username))
            self.users[username] = credentials
            return credentials

    def issue_token(self, username: str, token: str | None = None) -> str:
        """Register an OAuth access token for ``username`` (XOAUTH2/OAUTHBEARER) and return it.

        Tokens are checked live on every login, so :meth:`revoke_token` takes effect at once
        (useful to test a client's reaction to an expired token).
        """
        token = token or f"rig-token-{secrets.token_urlsafe(16)}"
        self._oauth.tokens[token] = username.lower()
        return token

    def revoke_token(self, token: str) -> None:
        """Make ``token`` invalid: the next XOAUTH2 login with it fails."""
        self._oauth.tokens.pop(token, None)

    def account(self, credentials: Credentials) -> ImapAccount:
        """An :class:`ImapAccount` for ``credentials`` on this server."""
        return ImapAccount(
            host=self.host, port=self.port, tls_port=self.tls_port, ca_file=self.ca_file,
            username=credentials.username, password=credentials.password,
            oauth_token=credentials.oauth_token,
        )  # fmt: skip

    def client_context(self) -> ssl.SSLContext:
        """A client ``SSLContext`` that verifies this server (and only it)."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    # -- process -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> float:
        """Start Dovecot and wait until both ports greet; return the seconds it took.

        Raises :class:`RigError` with the end of Dovecot's log when it exits or does not
        greet within ``timeout`` seconds (a port taken meanwhile, a config error, ...).
        """
        with self._lock:
            if self._closed:
                raise RigError("this DovecotServer was closed; make a new one")
            if self.running:
                return 0.0
            began = time.monotonic()
            ident = self._identity
            as_root = os.geteuid() == 0
            self._remove_stale_locks()
            stdio = (self.root / "log" / "stdio.log").open("ab")
            try:
                self._process = subprocess.Popen(
                    [self.binary, "-F", "-c", str(self.config_file)],
                    stdin=subprocess.DEVNULL, stdout=stdio, stderr=subprocess.STDOUT,
                    cwd=self.root,
                    # Its own process group, so stop() can end the master and every child.
                    start_new_session=True,
                    env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")},
                    user=ident.uid if as_root else None,
                    group=ident.gid if as_root else None,
                    # Drop root's supplementary groups too, not just uid and gid.
                    extra_groups=[] if as_root else None,
                )  # fmt: skip
            finally:
                stdio.close()
            (self.root / "owner.json").write_text(
                json.dumps({"owner_pid": os.getpid(), "pgid": self._process.pid})
            )
            try:
                self._wait_ready(began + timeout)
            except BaseException:
                self.stop()
                raise
            return time.monotonic() - began

    def _remove_stale_locks(self) -> None:
        """Delete what a killed master leaves behind (no Dovecot runs on this root now).

        stop() may SIGKILL the master while it holds the dotlock of ``state/instances``; the
        next master would wait about 10 s for that lock to go stale. ``run/master.pid`` could
        name a recycled pid and make the next master think it is already running.
        """
        (self.root / "run" / "master.pid").unlink(missing_ok=True)
        for lock in (self.root / "state").glob("*.lock"):
            lock.unlink(missing_ok=True)

    def _wait_ready(self, deadline: float) -> None:
        """Poll both ports until each sends its IMAP greeting (the TLS one through TLS)."""
        pending = {self.port: False, self.tls_port: True}
        last_error: Exception | None = None
        while pending:
            process = self._process
            if process is None or process.poll() is not None:
                code = None if process is None else process.returncode
                raise RigError(f"dovecot exited with {code} during start-up\n{self._diagnosis()}")
            for port, tls in list(pending.items()):
                try:
                    greeting = self._greeting(port, tls)
                except (OSError, ssl.SSLError) as error:
                    last_error = error
                    continue
                if not greeting.startswith(b"* OK"):
                    raise RigError(f"unexpected greeting on port {port}: {greeting!r}")
                del pending[port]
            if pending:
                if time.monotonic() > deadline:
                    raise RigError(
                        f"dovecot did not greet on port(s) {sorted(pending)} in time "
                        f"(last error: {last_error})\n{self._diagnosis()}"
                    )
                time.sleep(0.02)

    def _greeting(self, port: int, tls: bool) -> bytes:
        with socket.create_connection((self.host, port), timeout=2) as raw:
            if not tls:
                return raw.recv(4096)
            with self.client_context().wrap_socket(raw, server_hostname="localhost") as wrapped:
                return wrapped.recv(4096)

    def _diagnosis(self) -> str:
        stdio = self.root / "log" / "stdio.log"
        text = stdio.read_text(errors="replace") if stdio.exists() else ""
        tail = (text + self.log_text()).strip().splitlines()[-20:]
        return "dovecot log tail:\n  " + "\n  ".join(tail) if tail else "dovecot log is empty"

    def stop(self, grace: float = 0.25, timeout: float = 10.0) -> float:
        """Stop Dovecot and every process it started; return the seconds it took.

        SIGTERM goes to the whole process group, so each imap process says BYE to its client
        and exits; after at most ``grace`` seconds, SIGKILL ends whatever is left. Waiting for
        the master's own orderly shutdown instead often costs a second (it polls its children
        once a second), and 6 s when a login process lingers, for nothing a test needs: the
        mail is on disk once APPEND has been answered. Returns when the ports are free.
        """
        with self._lock:
            process, self._process = self._process, None
            if process is None:
                return 0.0
            began = time.monotonic()
            pgid = process.pid
            _kill_group(pgid, signal.SIGTERM)
            deadline = began + grace
            while time.monotonic() < deadline:
                if all(pid == pgid for pid, _ in _group_members(pgid)):
                    break  # only the master is left (or nothing): children said their BYEs
                time.sleep(0.005)
            _kill_group(pgid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout)
            # Orphans are not our children: we cannot wait() for them, so poll /proc.
            deadline = time.monotonic() + timeout
            while _group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.005)
            return time.monotonic() - began

    def restart(self, timeout: float = 10.0) -> float:
        """Stop and start again on the same ports, users and mail; return the seconds taken.

        For reconnect tests: clients connected before see their connection drop.
        """
        with self._lock:
            return self.stop() + self.start(timeout)

    def close(self) -> None:
        """Stop the server and its token endpoint and delete the temp dir. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self.stop()
            finally:
                self._oauth.close()
                shutil.rmtree(self.root, ignore_errors=True)
                atexit.unregister(self.close)

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- administration ------------------------------------------------------------------------

    def doveadm(self, *args: str, check: bool = True) -> str:
        """Run ``doveadm -c CONF ARGS...`` against this server; return its stdout.

        Example: ``server.doveadm("mailbox", "status", "-u", user, "uidvalidity", "INBOX")``.
        doveadm looks users up through the running server's auth socket, so the server must be
        running. Raises :class:`RigError` with doveadm's stderr when it fails and ``check``.
        """
        doveadm = shutil.which("doveadm") or str(Path(self.binary).parent.parent / "bin/doveadm")
        result = subprocess.run(
            [doveadm, "-c", str(self.config_file), *args],
            capture_output=True, text=True, check=False, timeout=30,
            env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")},
        )  # fmt: skip
        if check and result.returncode != 0:
            raise RigError(f"doveadm {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def processes(self) -> Iterator[str]:
        """The command names of the live processes in the server's group (for diagnosis)."""
        process = self._process
        if process is None:
            return
        for _, name in _group_members(process.pid):
            yield name
