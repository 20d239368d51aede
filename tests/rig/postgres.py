"""A throwaway PostgreSQL cluster for the tests: ``initdb`` and ``pg_ctl`` in a temp dir, on a
free port on 127.0.0.1 and a unix socket in that dir, with ``fsync`` off (nothing in it must
outlive the session).

PostgreSQL refuses to run as root, and the tests may run as root (CI does): under root the
cluster's folder belongs to ``nobody`` and ``initdb``, ``pg_ctl`` and the server run as that
account (``subprocess``'s ``user``/``group``, supplementary groups dropped). Under any other
user they run as that user.

    server = PostgresServer()
    server.start()
    url = server.new_database()   # postgresql://mailhelper@127.0.0.1:PORT/test_1
    server.restart()              # the same data, the same port
    server.close()
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

#: The one line a PostgreSQL test skips with when no server can be installed or started.
NO_POSTGRES = "PostgreSQL not installed; the PostgreSQL tests need it"
INSTALL_HINT = "apt-get install -y postgresql"
ROOT_PREFIX = "mailhelper-pg-"
#: The cluster's superuser, trusted from 127.0.0.1 and the socket without a password.
SUPERUSER = "mailhelper"


class RigError(RuntimeError):
    """The cluster could not be set up or started; the message carries its log's tail."""


def find_bindir() -> Path | None:
    """The folder of ``initdb``, ``pg_ctl`` and ``postgres``: ``pg_config --bindir``, else the
    newest /usr/lib/postgresql/*/bin; None when there is none."""
    candidates: list[str] = []
    if shutil.which("pg_config"):
        try:
            out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                                 timeout=10, check=True).stdout.strip()
            candidates.append(out)
        except (OSError, subprocess.SubprocessError):
            pass
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                         key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
                         reverse=True)
    for folder in candidates:
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One cluster for a test session (see the module's docstring)."""

    def __init__(self, bindir: Path | None = None) -> None:
        found = bindir or find_bindir()
        if found is None:
            raise RigError(NO_POSTGRES)
        self.bindir = found
        self.root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log = self.root / "postgres.log"
        self.port = _free_port()
        self.host = "127.0.0.1"
        self._names = itertools.count(1)
        self._user: int | None = None
        self._group: int | None = None
        if os.geteuid() == 0:
            entry = pwd.getpwnam("nobody")
            self._user, self._group = entry.pw_uid, entry.pw_gid
        self.socket_dir.mkdir()
        if self._user is not None:
            for path in (self.root, self.socket_dir):
                os.chown(path, self._user, self._group or -1)
        self._started = False
        atexit.register(self.close)

    def _run(self, *args: str, timeout: float = 120) -> None:
        try:
            subprocess.run(
                [str(self.bindir / args[0]), *args[1:]], check=True, timeout=timeout,
                capture_output=True, text=True, cwd=self.root,
                user=self._user, group=self._group,
                extra_groups=[] if self._user is not None else None,
                env={**os.environ, "LC_ALL": "C", "TZ": "UTC"},
            )
        except subprocess.CalledProcessError as exc:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RigError(f"{args[0]} failed: {exc.stderr or exc.stdout}\n{tail}") from exc

    def start(self) -> None:
        """Create the cluster the first time, then start the server and wait for it."""
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
                      "--encoding=UTF8", "--no-sync")
        options = " ".join([
            f"-c port={self.port}", f"-c listen_addresses={self.host}",
            f"-c unix_socket_directories={self.socket_dir}",
            # Throwaway data: nothing needs to survive a power cut.
            "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
        ])
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "60", "start")
        self._started = True

    def stop(self) -> None:
        """Stop the server (``fast``: open sessions are cut, as when a server goes down)."""
        if self._started:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
            self._started = False

    def restart(self) -> None:
        self.stop()
        self.start()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def new_database(self) -> str:
        """A new, empty database's URL (one per test keeps tests apart)."""
        import psycopg

        name = f"test_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def close(self) -> None:
        """Stop the server and remove the cluster (safe to call twice)."""
        with contextlib.suppress(RigError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
