"""One way for the store to run SQL, whichever database holds the state: SQLite (a file, the
default) or PostgreSQL (a server, named by a ``postgresql://`` URL).

The store writes its SQL once, in the dialect both accept: ``?`` placeholders (or ``:name``
with a mapping), ``INSERT ... ON CONFLICT ... DO NOTHING / DO UPDATE``, ``excluded.column``,
``CASE`` instead of two-argument ``max()``. A :class:`Connection` runs it on its database:

- rows come back as :class:`Row`-like values, read by name (``row["id"]``) or position
  (``row[0]``), from either driver;
- every error of either driver comes out as :class:`~mailhelper.model.errors.StateError`, its cause
  the driver's error, so nothing above the store knows which database it is;
- transactions are :meth:`Connection.begin`, :meth:`~Connection.commit` and
  :meth:`~Connection.rollback` (SQLite takes its write lock at once with ``BEGIN IMMEDIATE``);
- what has no common form is a method here: :meth:`~Connection.has_table`,
  :meth:`~Connection.set_durable` (``PRAGMA synchronous`` / ``synchronous_commit``),
  :meth:`~Connection.integrity_ok`.

On PostgreSQL, :class:`PostgresConnection` also translates the schema's SQLite DDL as it
runs, so one migration step serves both: ``INTEGER`` is ``BIGINT`` (IMAP UIDs and UIDVALIDITY
need 32 unsigned bits), ``INTEGER PRIMARY KEY`` an identity column, ``BLOB`` is ``BYTEA``, and a
table without an integer primary key gets a ``rowid`` identity column (its last), as SQLite
gives every table one (``ORDER BY rowid`` is insertion order on both). Name the columns of an
``INSERT``: a column added later comes after ``rowid`` on PostgreSQL.

psycopg 3 is needed for PostgreSQL only (``pip install mailhelper[postgres]``) and imported
only when a URL is opened.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from mailhelper.model.errors import StateError, StateLockedError, StateUnreachable

if TYPE_CHECKING:
    import psycopg

Parameters = Sequence[Any] | Mapping[str, Any]

#: The URL schemes that name a PostgreSQL database as the state (anything else is a path).
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(text: str) -> bool:
    """Whether ``state`` names a PostgreSQL database rather than an SQLite file.

        >>> is_database_url("postgresql://helper@db.example.org:5432/mailhelper")
        True
        >>> is_database_url("~/.local/state/mailhelper/state.db")
        False
    """
    return text.startswith(POSTGRES_SCHEMES)


def redact(url: str) -> str:
    """The URL without its password, for messages and logs.

        >>> redact("postgresql://helper:s3cret@db:5432/mh")
        'postgresql://helper:***@db:5432/mh'
        >>> redact("postgresql://helper@db/mh")
        'postgresql://helper@db/mh'
    """
    return re.sub(r"^(\w+://[^:/@]+):[^@/]*@", r"\1:***@", url)


def sqlite_error(error: Exception) -> StateError:
    """The :class:`StateError` for an error of SQLite (raise it ``from`` that error)."""
    return StateError(f"the state file cannot be used ({error}); what was not committed is "
                      "read again next time, so fix the cause (disk space, permissions) and "
                      "run again")


def postgres_error(error: Exception) -> StateError:
    """The :class:`StateError` for an error of psycopg (raise it ``from`` that error)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return StateError(f"the state database cannot be used ({text}); what was not committed "
                      "is read again next time, so fix the cause (is the PostgreSQL server "
                      "up and reachable?) and run again")


# -- placeholders -------------------------------------------------------------------------------
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@lru_cache(maxsize=1024)
def to_format_style(sql: str) -> str:
    """``sql`` with SQLite's placeholders in psycopg's style: ``?`` is ``%s``, ``:name`` is
    ``%(name)s``, a literal ``%`` is ``%%``; nothing changes inside string literals, quoted
    names or ``--`` comments.

        >>> to_format_style("SELECT * FROM t WHERE a=? AND b LIKE '50%?' AND c=:c")
        "SELECT * FROM t WHERE a=%s AND b LIKE '50%%?' AND c=%(c)s"
    """
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        if char in "'\"":
            end = i + 1
            while end < n:
                if sql[end] == char:
                    if end + 1 < n and sql[end + 1] == char:  # a doubled quote
                        end += 2
                        continue
                    break
                end += 1
            out.append(sql[i:end + 1].replace("%", "%%"))
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end].replace("%", "%%"))
            i = end
        elif char == "?":
            out.append("%s")
            i += 1
        elif char == ":" and (i == 0 or sql[i - 1] != ":") and (match := _NAME.match(sql, i + 1)):
            out.append(f"%({match.group()})s")
            i = match.end()
        elif char == "%":
            out.append("%%")
            i += 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


_TABLE = re.compile(r"^\s*CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\s*\(", re.I | re.S)
_ALTER = re.compile(r"^\s*ALTER\s+TABLE\b", re.I)


@lru_cache(maxsize=256)
def postgres_ddl(sql: str) -> str:
    """A ``CREATE TABLE`` or ``ALTER TABLE`` of the schema's (written for SQLite) as
    PostgreSQL needs it; any other statement unchanged.

        >>> print(postgres_ddl("CREATE TABLE t (id INTEGER PRIMARY KEY, raw BLOB, n INTEGER)"))
        CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, raw BYTEA, n BIGINT)
        >>> print(postgres_ddl("CREATE TABLE m (key TEXT PRIMARY KEY)"))
        CREATE TABLE m (key TEXT COLLATE "C" PRIMARY KEY, rowid BIGINT GENERATED ALWAYS AS IDENTITY)
    """
    # Comments go first: a type name in one must not be rewritten into nonsense.
    bare = re.sub(r"--[^\n]*", "", sql)
    table = _TABLE.match(bare)
    if table is None and not _ALTER.match(bare):
        return sql
    sql = bare
    has_rowid = re.search(r"\bINTEGER\s+PRIMARY\s+KEY\b", sql, re.I) is not None
    sql = re.sub(r"\bINTEGER\s+PRIMARY\s+KEY(\s+AUTOINCREMENT)?\b",
                 "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", sql, flags=re.I)
    sql = re.sub(r"\bINTEGER\b", "BIGINT", sql, flags=re.I)
    sql = re.sub(r"\bBLOB\b", "BYTEA", sql, flags=re.I)
    # Text compares byte by byte, as in SQLite, whatever the database's locale: times as
    # ISO-8601 text and prefix ranges (``>= 'mh.ab' AND < 'mh.ab~'``) depend on it.
    sql = re.sub(r"\bTEXT\b(?!\s+COLLATE)", 'TEXT COLLATE "C"', sql, flags=re.I)
    if table is not None and not has_rowid:
        # Last, so an INSERT without a column list still fills the columns it means (name
        # the columns all the same: a column added later comes after this one here).
        tail = sql.rstrip().rindex(")")
        sql = sql[:tail].rstrip() + ", rowid BIGINT GENERATED ALWAYS AS IDENTITY" + sql[tail:]
    return sql


class Row:
    """A PostgreSQL row read like ``sqlite3.Row``: by column name or by position."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: Mapping[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str) -> Any:
        return self._values[self._index[key] if isinstance(key, str) else key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    index = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(values, index)


class Cursor:
    """A cursor whose fetching raises :class:`StateError` too (both drivers may read rows
    only when they are fetched)."""

    __slots__ = ("_cursor", "_errors", "_wrap")

    def __init__(self, cursor: Any, errors: type[Exception],
                 wrap: Callable[[Exception], StateError]) -> None:
        self._cursor = cursor
        self._errors = errors
        self._wrap = wrap

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    def fetchone(self) -> Any:
        try:
            return self._cursor.fetchone()
        except self._errors as exc:
            raise self._wrap(exc) from exc

    def fetchall(self) -> list[Any]:
        try:
            return list(self._cursor.fetchall())
        except self._errors as exc:
            raise self._wrap(exc) from exc

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class Connection:
    """The store's connection to its database (see the module's docstring)."""

    dialect: str = ""

    def execute(self, sql: str, parameters: Parameters = ()) -> Cursor:
        raise NotImplementedError

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run ``sql`` once for each of ``rows`` (a bulk insert: one round trip to a server
        for them all, not one per row)."""
        for row in rows:
            self.execute(sql, row)

    def begin(self) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        self.execute("COMMIT")

    def rollback(self) -> None:
        """Roll back the open transaction, if the database still has one (after some errors
        it has rolled back already, and a second ROLLBACK would hide the first error)."""
        if self.in_transaction:
            self.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        raise NotImplementedError

    def has_table(self, name: str) -> bool:
        raise NotImplementedError

    def tables(self) -> list[str]:
        """The names of the tables of the state, in the order they were created."""
        raise NotImplementedError

    def set_durable(self, each_commit: bool) -> None:
        """Whether each commit is on disk before it returns (else: atomic, but a power cut or
        a server crash may undo the last few)."""
        raise NotImplementedError

    def integrity_ok(self) -> bool:
        return True

    def close(self) -> None:
        raise NotImplementedError


class SQLiteConnection(Connection):
    """An SQLite connection (``raw``), in autocommit mode: transactions are explicit."""

    dialect = "sqlite"
    __slots__ = ("raw",)

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    def execute(self, sql: str, parameters: Parameters = ()) -> Cursor:
        try:
            return Cursor(self.raw.execute(sql, parameters), sqlite3.Error, sqlite_error)
        except sqlite3.Error as exc:
            raise sqlite_error(exc) from exc

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self.raw.executemany(sql, [_as_sqlite_binds(r) for r in rows])
        except sqlite3.Error as exc:
            raise sqlite_error(exc) from exc

    def begin(self) -> None:
        self.execute("BEGIN IMMEDIATE")

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    def has_table(self, name: str) -> bool:
        return self.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                            (name,)).fetchone() is not None

    def tables(self) -> list[str]:
        rows = self.execute("SELECT name FROM sqlite_master WHERE type='table' "
                            "AND name NOT LIKE 'sqlite_%' ORDER BY rowid").fetchall()
        return [str(r[0]) for r in rows]

    def set_durable(self, each_commit: bool) -> None:
        self.execute(f"PRAGMA synchronous={'FULL' if each_commit else 'NORMAL'}")

    def integrity_ok(self) -> bool:
        row = self.execute("PRAGMA integrity_check").fetchone()
        return row is not None and row[0] == "ok"

    def backup(self, target: sqlite3.Connection) -> None:
        try:
            self.raw.backup(target)
        except sqlite3.Error as exc:
            raise sqlite_error(exc) from exc

    def close(self) -> None:
        try:
            self.raw.close()
        except sqlite3.Error as exc:
            raise sqlite_error(exc) from exc


def _as_sqlite_binds(parameters: Parameters) -> Parameters:
    """The parameters as SQLite binds them: a bool is the integer 1 or 0 (psycopg would send
    a boolean, which an integer column refuses)."""
    if isinstance(parameters, Mapping):
        if any(isinstance(v, bool) for v in parameters.values()):
            return {k: int(v) if isinstance(v, bool) else v for k, v in parameters.items()}
        return parameters
    if any(isinstance(v, bool) for v in parameters):
        return [int(v) if isinstance(v, bool) else v for v in parameters]
    return parameters


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise StateError("`state` names a PostgreSQL database, but the PostgreSQL driver is "
                         "not installed: pip install 'mailhelper[postgres]'") from None
    return psycopg


class PostgresConnection(Connection):
    """A psycopg 3 connection (``raw``) in autocommit mode: transactions are explicit.

    A server restart or a network cut breaks the connection: the statement (and the
    transaction it was in) fails with :class:`StateError`, and the next statement outside a
    transaction, or the next :meth:`begin`, connects again (settings made with
    :meth:`set_durable` and the lock of :meth:`hold` are taken again too). So a cycle that
    meets a restart stops, and the next one goes on."""

    dialect = "postgresql"

    def __init__(self, raw: psycopg.Connection[Any], connect: Callable[[], Any] | None = None,
                 url: str = "", schema: str = "public") -> None:
        self.raw = raw
        self.url = url
        self.schema = schema
        self._connect = connect
        self._errors: type[Exception] = _psycopg().Error
        self._in_transaction = False
        self._durable = True
        self._held: int | None = None

    @classmethod
    def connect(cls, url: str, password: str | None = None, read_only: bool = False,
                connect_timeout: int = 10, schema: str = "public") -> PostgresConnection:
        """Connect to ``url``. Without ``password`` libpq finds one as usual (``PGPASSWORD``,
        ``~/.pgpass``, or none for a trusted or peer login).

        ``schema``: the one schema its statements see (``search_path``, given with every
        connection, the ones made again after a lost connection too): an assistant's
        state in a database shared by several (see :mod:`mailhelper.state.store`). It need
        not exist yet; nothing is found or created in any other schema."""
        psycopg = _psycopg()
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
            raise StateError(f"{schema!r} cannot be a state's schema (a-z, 0-9 and _ only)")
        options: dict[str, Any] = {"autocommit": True, "connect_timeout": connect_timeout,
                                   "application_name": "mailhelper"}
        if password is not None:
            options["password"] = password
        if read_only:
            options["options"] = "-c default_transaction_read_only=on"

        def connect() -> Any:
            try:
                raw = psycopg.connect(url, row_factory=_row_factory, **options)
                try:
                    # A SET, not a startup option: connection poolers refuse those.
                    raw.execute(f"SET search_path TO {schema}")
                except BaseException:
                    raw.close()
                    raise
                return raw
            except psycopg.Error as exc:
                raise StateUnreachable(f"the state database {redact(url)} cannot be reached "
                                 f"({' '.join(str(exc).split())}); is the PostgreSQL server "
                                 "up, and are the user and password right?") from exc

        return cls(connect(), connect, url, schema)

    def _reconnect_if_lost(self) -> None:
        """Connect again when the connection was lost outside a transaction (inside one,
        the transaction is lost with it and the statement must fail)."""
        if not (self.raw.broken or self.raw.closed) or self._in_transaction:
            return
        if self._connect is None:
            raise StateError("the connection to the state database was lost")
        with contextlib.suppress(Exception):
            self.raw.close()
        self.raw = self._connect()
        if not self._durable:
            self.set_durable(False)
        if self._held is not None:
            held, self._held = self._held, None
            if not self.hold(held):
                # Another process took the database over while this one was cut off: it
                # must not go on beside it.
                raise StateLockedError(f"another mailhelper took the state "
                                       f"{self.schema} in {redact(self.url)} over while the "
                                       "connection was lost; this one stops")

    def execute(self, sql: str, parameters: Parameters = ()) -> Cursor:
        statement = to_format_style(postgres_ddl(sql))
        self._reconnect_if_lost()
        try:
            cursor = self.raw.execute(statement, _as_sqlite_binds(parameters))
        except self._errors as exc:
            raise postgres_error(exc) from exc
        return Cursor(cursor, self._errors, postgres_error)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._reconnect_if_lost()
        try:
            with self.raw.cursor() as cursor:
                cursor.executemany(to_format_style(sql), [_as_sqlite_binds(r) for r in rows])
        except self._errors as exc:
            raise postgres_error(exc) from exc

    def begin(self) -> None:
        self.execute("BEGIN")
        self._in_transaction = True

    def commit(self) -> None:
        try:
            self.execute("COMMIT")
        finally:
            self._in_transaction = False

    def rollback(self) -> None:
        try:
            if self.in_transaction:
                self.execute("ROLLBACK")
        finally:
            self._in_transaction = False

    @property
    def in_transaction(self) -> bool:
        if self.raw.broken or self.raw.closed:
            return False
        status = self.raw.info.transaction_status
        return status.name in ("INTRANS", "INERROR", "ACTIVE")

    def hold(self, key: int) -> bool:
        """Take the session's advisory lock ``key`` (kept until the connection closes, and
        taken again on reconnecting); False when another session holds it."""
        row = self.execute("SELECT pg_try_advisory_lock(?)", (key,)).fetchone()
        if row[0]:
            self._held = key
        return bool(row[0])

    def has_table(self, name: str) -> bool:
        row = self.execute("SELECT to_regclass(?) IS NOT NULL", (name,)).fetchone()
        return bool(row[0])

    def tables(self) -> list[str]:
        rows = self.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' "
            "AND c.relnamespace = current_schema()::regnamespace ORDER BY c.oid").fetchall()
        return [str(r[0]) for r in rows]

    def set_durable(self, each_commit: bool) -> None:
        self.execute(f"SET synchronous_commit = {'on' if each_commit else 'off'}")
        self._durable = each_commit

    def server_version(self) -> str:
        """The server's version, e.g. ``15.8``."""
        return str(self.execute("SHOW server_version").fetchone()[0]).split()[0]

    def close(self) -> None:
        try:
            self.raw.close()
        except self._errors as exc:
            raise postgres_error(exc) from exc
