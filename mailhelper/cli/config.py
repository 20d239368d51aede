"""YAML -> frozen, validated :class:`~mailhelper.model.settings.Settings`; every problem at once.

The whole file is checked at start-up, never lazily per message: a typo in a schedule must stop
the daemon before it reads any mail, not three days later when the first reminder falls due.
Every problem names the file, the line, the key path and, where one is close, the fix:

    >>> parse_settings('''
    ... owners: [sam@example.com]
    ... assistant: helper@example.com
    ... imap: {hots: imap.example.com}
    ... smtp: {host: smtp.example.com, port: 0}
    ... ''', "config.yaml")
    Traceback (most recent call last):
    ...
    mailhelper.model.errors.ConfigError: 3 problems in the config:
      config.yaml:4: imap.hots: unknown key (did you mean "host"?)
      config.yaml:4: imap.host: required (the server's host name, e.g. imap.example.com)
      config.yaml:5: smtp.port: 0 is out of range (must be from 1 to 65535)

The YAML is composed into a node tree (``yaml.compose`` with the safe loader) rather than loaded
into plain dicts, because only the nodes remember the line each key and value came from.

Relative paths in the file (``state``, ``templates_dir``, ``ca_file``, ``password_file``) count
from the folder holding the config file, so the daemon finds them whatever its working folder.
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import time
from email.utils import parseaddr
from pathlib import Path
from typing import Final, Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from mailhelper.decide.digest_schedule import validate_rrule
from mailhelper.model.addresses import fold
from mailhelper.model.duration import Duration, DurationError
from mailhelper.model.errors import ConfigError
from mailhelper.model.settings import (
    AskSchedule,
    DigestSchedule,
    ImapSettings,
    LimitSettings,
    NoteSchedule,
    OfferSchedule,
    OwnerTime,
    QuietHours,
    ReturnFavorSchedule,
    Schedules,
    Secret,
    Security,
    SendingSettings,
    Settings,
    SmtpSettings,
    Tags,
    ThankYouSchedule,
    WatchSettings,
)
from mailhelper.model.values import Address
from mailhelper.state.sqldriver import is_database_url

#: The keys of one entry of ``owners``.
_OWNER_KEYS: Final = ("name", "email", "timezone", "default_time")

__all__ = ["EXAMPLE_NAME", "find_config", "load_settings", "parse_settings"]

log = logging.getLogger(__name__)

EXAMPLE_NAME: Final = "config.example.yaml"
"""The commented example shipped with mailhelper; every "no config" message points at it."""

_T = TypeVar("_T")

_NULL_TAG: Final = "tag:yaml.org,2002:null"
_MIN_POLL: Final = Duration.parse("10 seconds")
_MIN_LEASE: Final = Duration.parse("2 seconds")
_MAX_LEASE: Final = Duration.parse("1 hour")
_DEFAULT_RRULE: Final = "FREQ=WEEKLY;BYDAY=MO;BYHOUR=8"

# A bare address, lower-cased before the match: no display name, no angle brackets, one @, a
# dotted host name (dots optional, so the demo's helper@localhost passes).
_EMAIL: Final = re.compile(r"^[^@\s<>()\[\],;:\"\\]+@[\w-]+(\.[\w-]+)*$")
_QUIET: Final = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
# Tag words end up in plus-addresses (helper+offer@) and subject tags ([offer], #offer), so they
# cannot hold anything those syntaxes use as a delimiter.
_TAG_WORD: Final = re.compile(r"^[^\s+@\[\]#<>,;:\"]+$")


# --- finding the file -----------------------------------------------------------------------


def find_config(cli_path: str | None, environ: Mapping[str, str], cwd: Path) -> Path:
    """The config file to use, per SPEC.md's search order; raise ConfigError when there is none.

    1. ``--config PATH`` (``cli_path``), 2. ``$MAILHELPER_CONFIG``, 3. ``./mailhelper.yaml``
    (in ``cwd``), 4. ``$XDG_CONFIG_HOME/mailhelper/config.yaml`` (XDG default ``~/.config``).
    A place the user named explicitly (steps 1 and 2) that does not exist is an error of its
    own rather than a reason to fall through: silently reading another file would be worse.
    ``~`` expands with ``environ["HOME"]``; relative paths count from ``cwd``; the result is
    always absolute, so it does not depend on the process's working folder.

        >>> find_config("~/nowhere/mailhelper.yaml", {"HOME": "/home/sam"}, Path("/"))
        Traceback (most recent call last):
        ...
        mailhelper.model.errors.ConfigError: --config names /home/sam/nowhere/mailhelper.yaml, \
which does not exist; copy config.example.yaml there and edit it
    """
    explicit = [("--config", cli_path), ("$MAILHELPER_CONFIG", environ.get("MAILHELPER_CONFIG"))]
    for origin, given in explicit:
        if not given:
            continue
        path = _absolute(_expand_user(given, environ), cwd)
        if path.is_file():
            return path
        why = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise ConfigError(
            [f"{origin} names {path}, which {why}; copy {EXAMPLE_NAME} there and edit it"],
            str(path),
        )
    candidates = [cwd / "mailhelper.yaml", _xdg_dir(environ, "XDG_CONFIG_HOME", ".config")
                  / "mailhelper" / "config.yaml"]
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(
        ["--config (not given)", "$MAILHELPER_CONFIG (not set)", *(str(p) for p in candidates)]
    )
    raise ConfigError(
        [f"no config file found (looked at: {looked}); copy {EXAMPLE_NAME} to "
         f"{candidates[-1]} or ./mailhelper.yaml and edit it, or pass --config PATH"]
    )


def _expand_user(text: str, environ: Mapping[str, str]) -> Path:
    # Path.expanduser reads the real os.environ; tests and callers hand in their own environment.
    if (text == "~" or text.startswith("~/")) and environ.get("HOME"):
        return Path(environ["HOME"]) / text[2:]
    return Path(text).expanduser()


def _absolute(path: Path, base: Path | None) -> Path:
    return path if path.is_absolute() or base is None else base / path


def _xdg_dir(environ: Mapping[str, str], variable: str, fallback: str) -> Path:
    # The XDG spec says a relative value is invalid and must be ignored.
    value = environ.get(variable, "")
    if value and Path(value).is_absolute():
        return Path(value)
    return _expand_user("~/" + fallback, environ)


# --- loading ----------------------------------------------------------------------------------


#: The largest config file read: a real one is a few KB; a bigger file is a mistake (or an
#: attack on the YAML reader), refused before any of it is parsed.
MAX_CONFIG_BYTES = 1024 * 1024


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the config file at ``path``; raise ConfigError listing every problem.

    ``environ`` (default ``os.environ``) supplies ``HOME`` and ``XDG_STATE_HOME`` for default
    and ``~`` paths. Passwords are *not* read here, only where they come from is checked:
    ``mailhelper status`` must work without them; ``mailhelper check`` logs in and will tell.

        >>> example = Path(__file__).parents[2] / "config.example.yaml"  # in a checkout
        >>> load_settings(example).imap.host
        'imap.example.com'
    """
    try:
        with path.open("rb") as handle:
            # Read at most one byte past the cap, whatever the file claims to be (a FIFO, a
            # device, a file still growing): the check costs nothing and nothing huge is held.
            data = handle.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(
                [f"{path}: the file is larger than {MAX_CONFIG_BYTES // 1024} KB, far more than "
                 f"any config needs; is this the right file? ({EXAMPLE_NAME} is about 5 KB)"],
                str(path))
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"], str(path)
        ) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read it: {exc.strerror}"], str(path)) from None
    return parse_settings(text, str(path), environ=environ, base_dir=path.parent)


def _syntax_error_line(exc: yaml.MarkedYAMLError, text: str) -> int:
    """The line (from 1) to fix for a YAML syntax error: where the broken text is, not
    where the reader noticed it.

    A scanner error's context mark is where the broken token starts (the key missing its
    colon, the quote never closed); its problem mark is only where the scanner gave up, often
    the next line or the end of the file. A parser error's problem mark is the token that
    does not fit. "Mapping values are not allowed here" on a key right under a line of the
    same indent that has no colon means that line lost its colon and ran on into this one.

    >>> def line(text):
    ...     try:
    ...         yaml.compose(text, Loader=yaml.SafeLoader)
    ...     except yaml.MarkedYAMLError as exc:
    ...         return _syntax_error_line(exc, text)
    >>> line("smtp:\\n  host: h\\n  port 25\\n  security: none\\n")
    3
    >>> line("smtp:\\n  port 25\\n  host: h\\n"), line("a: 'open\\nb: 2\\n")
    (2, 1)
    >>> line("a:\\n  b: 1\\n c: 2\\n")
    3
    """
    if isinstance(exc, yaml.scanner.ScannerError) and exc.context_mark is not None:
        return exc.context_mark.line + 1
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return 1
    lines = text.splitlines()
    if exc.problem == "mapping values are not allowed here" and 0 < mark.line < len(lines):
        here, above = lines[mark.line], lines[mark.line - 1]
        indent = len(here) - len(here.lstrip())
        if (above.strip() and not above.lstrip().startswith(("#", "-")) and ":" not in above
                and len(above) - len(above.lstrip()) == indent):
            return mark.line
    return mark.line + 1


def parse_settings(
    text: str,
    source: str,
    *,
    environ: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> Settings:
    """Validate YAML ``text`` into Settings; ``source`` names it in every problem.

    Every problem in the text is collected into one ConfigError, sorted by line, each reading
    ``source:line: key.path: what is wrong (the fix)``. ``base_dir`` is where relative paths
    count from (default: the working folder); ``environ`` as for :func:`load_settings`.
    ``Settings.source`` is ``Path(source)``.

        >>> s = parse_settings('''
        ... owners: [{name: Sam, email: Sam@Example.com}]
        ... assistant: {email: helper@example.com}
        ... imap: {host: imap.example.com}
        ... smtp: {host: smtp.example.com}
        ... ''', "config.yaml", environ={"HOME": "/home/sam"})
        >>> s.owners[0].email, str(s.schedules.ask.follow_up[0]), str(s.state)
        ('sam@example.com', '3 days', '/home/sam/.local/state/mailhelper/state.db')
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    problems = _Problems(source)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = _syntax_error_line(exc, text)
        what = "; ".join(part for part in (exc.context, exc.problem) if part)
        raise ConfigError(
            [f"{source}:{line}: YAML syntax error: {what or exc}"
             " (check the indentation and quoting near this line)"],
            source,
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}:1: not readable as YAML: {exc}"], source) from None
    if root is None:
        raise ConfigError(
            [f"{source}:1: the file is empty; start from {EXAMPLE_NAME}, which lists every key"],
            source,
        )
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(
            [f"{source}:{_line(root)}: the top level must be a mapping of keys (like "
             f"\"owners:\" and \"imap:\"), not {_describe_node(root)}; see {EXAMPLE_NAME}"],
            source,
        )
    reader = _Reader(problems, env, base_dir)
    settings = reader.settings(root, Path(source))
    problems.raise_if_any()
    return settings


# --- collecting problems ----------------------------------------------------------------------


@dataclass
class _Problems:
    """Every problem found so far, each already phrased ``source:line: path: message``."""

    source: str
    found: list[tuple[int, str]] = field(default_factory=list)

    def add(self, line: int, path: str, message: str) -> None:
        where = f"{path}: " if path else ""
        self.found.append((line, f"{self.source}:{line}: {where}{message}"))

    def raise_if_any(self) -> None:
        if self.found:
            # sorted() is stable: problems on one line keep the order they were found in.
            ordered = sorted(self.found, key=lambda item: item[0])
            raise ConfigError([text for _, text in ordered], self.source)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _describe_node(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    return "a single value"


def _describe(value: object) -> str:
    """How a YAML value reads to a person, for "expected X, got Y"."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (true/false)"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f'"{value}"'
    return f"{type(value).__name__} {value!s}"


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word.lower(), choices, n=1, cutoff=0.6)
    if close:
        return f'did you mean "{close[0]}"?'
    return "known keys: " + ", ".join(choices)


@dataclass(frozen=True)
class _Item:
    """One value node and the key path that led to it, e.g. ``schedules.ask.follow_up[1]``."""

    node: yaml.Node
    path: str

    @property
    def line(self) -> int:
        return _line(self.node)

    @property
    def is_null(self) -> bool:
        return isinstance(self.node, yaml.ScalarNode) and self.node.tag == _NULL_TAG


class _Section:
    """A mapping under one key path, with unknown, duplicate and odd keys already reported."""

    def __init__(
        self,
        reader: _Reader,
        item: _Item | None,
        path: str,
        line: int,
        known: Sequence[str],
    ) -> None:
        self.path = path
        self.line = line
        self.items: dict[str, _Item] = {}
        # Where each key is written: a problem about a whole section ("imap.host: required")
        # points at "imap:", not at the first line inside it.
        self.key_lines: dict[str, int] = {}
        self.problems = reader.problems
        # A section that is there but is not a mapping has been reported once already; saying
        # "host: required" for each of its keys on top would only bury that one real problem.
        self.broken = False
        if item is None or item.is_null:
            return
        if not isinstance(item.node, yaml.MappingNode):
            self.broken = True
            self.problems.add(
                item.line, path, f"expected a mapping of keys ({', '.join(known[:3])}, ...), "
                f"got {reader.describe(item)}",
            )
            return
        try:
            reader.constructor.flatten_mapping(item.node)  # resolves YAML merge keys (<<: *x)
        except ConstructorError as exc:
            self.problems.add(item.line, path, f"cannot merge: {exc.problem}")
            return
        for key_node, value_node in item.node.value:
            key = reader.scalar(_Item(key_node, path))
            if not isinstance(key, str):
                got = reader.describe(_Item(key_node, path))
                self.problems.add(_line(key_node), path,
                                  f'keys must be plain words like "{known[0]}", not {got}')
                continue
            child = f"{path}.{key}" if path else key
            if key not in known:
                self.problems.add(_line(key_node), child,
                                  f"unknown key ({_did_you_mean(key, known)})")
            elif key in self.key_lines:
                self.problems.add(_line(key_node), child,
                                  f"given twice (first on line {self.key_lines[key]}); keep one")
            else:
                self.key_lines[key] = _line(key_node)
                self.items[key] = _Item(value_node, child)

    def child(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str) -> _Item | None:
        """The value under ``key``, or None when the key is absent or null (so: the default)."""
        item = self.items.get(key)
        return None if item is None or item.is_null else item

    def raw(self, key: str) -> _Item | None:
        """The value under ``key`` even when it is null (for keys where null means "off")."""
        return self.items.get(key)

    def line_of(self, key: str) -> int:
        """The line ``key`` is written on, or the section's own line when it is absent."""
        return self.key_lines.get(key, self.line)

    def missing(self, key: str, hint: str) -> None:
        if not self.broken:
            self.problems.add(self.line, self.child(key), f"required ({hint})")


_BAD: Final = object()
"""A scalar the safe constructor refused (e.g. a ``!!python/object`` tag); already reported."""


class _Reader:
    """Turns nodes into typed values, reporting each problem and returning None in its place.

    Returning None (rather than raising) keeps the walk going, so one run reports every problem
    in the file; the caller falls back to the default, and ``raise_if_any`` fails at the end.
    """

    def __init__(
        self, problems: _Problems, environ: Mapping[str, str], base_dir: Path | None
    ) -> None:
        self.problems = problems
        self.environ = environ
        self.base_dir = base_dir
        self.constructor = SafeConstructor()
        # Values by node: a value may be looked at twice (to check, then to describe), and an
        # unreadable one must still be reported only once.
        self._values: dict[int, object] = {}

    # -- scalars --

    def scalar(self, item: _Item) -> object:
        """The Python value of a scalar node (the safe constructor's reading); _BAD for a
        list or mapping, or for a scalar it cannot read (reported here, once)."""
        if not isinstance(item.node, yaml.ScalarNode):
            return _BAD
        key = id(item.node)
        if key not in self._values:
            try:
                self._values[key] = self.constructor.construct_object(item.node, deep=True)
            except (ConstructorError, ValueError) as exc:
                problem = getattr(exc, "problem", None) or str(exc)
                self.problems.add(item.line, item.path, f"cannot read this value: {problem}")
                self._values[key] = _BAD
        return self._values[key]

    def describe(self, item: _Item) -> str:
        if not isinstance(item.node, yaml.ScalarNode):
            return _describe_node(item.node)
        value = self.scalar(item)
        return "an unreadable value" if value is _BAD else _describe(value)

    def _expect(self, item: _Item, what: str) -> None:
        self.problems.add(item.line, item.path, f"expected {what}, got {self.describe(item)}")

    def _value(self, item: _Item, hint: str) -> object:
        """The scalar under ``item``; _BAD, reported once, when it is a list, a mapping or
        unreadable."""
        value = self.scalar(item)
        if value is _BAD and not isinstance(item.node, yaml.ScalarNode):
            self._expect(item, hint)
        return value

    def text(self, item: _Item | None, hint: str = "text") -> str | None:
        if item is None:
            return None
        value = self._value(item, hint)
        if value is _BAD:
            return None
        if not isinstance(value, str):
            # YAML guessed a number, a boolean or a date; quotes make it text.
            self.problems.add(item.line, item.path,
                              f"expected {hint}, got {_describe(value)} (put it in quotes)")
            return None
        if not value.strip():
            self.problems.add(item.line, item.path, f"is empty; give {hint}")
            return None
        return value.strip()

    def integer(self, item: _Item | None, low: int, high: int | None = None) -> int | None:
        if item is None:
            return None
        value = self._value(item, "a whole number")
        if value is _BAD:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.add(item.line, item.path,
                              f"expected a whole number, got {_describe(value)}")
            return None
        if value < low or (high is not None and value > high):
            span = f"from {low} to {high}" if high is not None else f"at least {low}"
            self.problems.add(item.line, item.path, f"{value} is out of range (must be {span})")
            return None
        return value

    def seconds_between(self, item: _Item | None, low: float, high: float) -> float | None:
        """A number of seconds, whole or not (``10``, ``0.5``), from ``low`` to ``high``."""
        if item is None:
            return None
        value = self._value(item, "a number of seconds")
        if value is _BAD:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problems.add(item.line, item.path,
                              f"expected a number of seconds, got {_describe(value)}")
            return None
        if not low <= value <= high:
            self.problems.add(item.line, item.path,
                              f"{value} is out of range (must be from {low:g} to {high:g})")
            return None
        return float(value) if isinstance(value, float) else value

    def flag(self, item: _Item | None) -> bool | None:
        if item is None:
            return None
        value = self._value(item, "true or false")
        if value is _BAD:
            return None
        if not isinstance(value, bool):
            self.problems.add(item.line, item.path,
                              f"expected true or false, got {_describe(value)}")
            return None
        return value

    def choice(self, item: _Item | None, options: Sequence[str]) -> str | None:
        value = self.text(item, " or ".join(options))
        if value is None or item is None:
            return None
        if value.lower() in options:
            return value.lower()
        close = difflib.get_close_matches(value.lower(), options, n=1, cutoff=0.5)
        hint = f'did you mean "{close[0]}"?' if close else "choose " + " or ".join(options)
        self.problems.add(item.line, item.path, f'"{value}" is not one of '
                          f"{', '.join(options)} ({hint})")
        return None

    def duration(self, item: _Item | None, likely: str = "days") -> Duration | None:
        """A duration with its unit ("3 days", "60s"). A bare number is refused everywhere
        (``3`` could be seconds or days); the message offers the units most likely meant,
        ``likely`` first: "seconds" for intervals and timeouts, else "days"."""
        if item is None:
            return None
        value = self._value(item, 'a duration like "3 days"')
        if value is _BAD:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            # Duration.parse would say "3 is not a duration"; the useful news is the missing unit.
            units = (("seconds", "minutes", "hours") if likely == "seconds"
                     else ("days", "hours", "minutes"))
            amount = int(value) if value == int(value) else max(1, round(value))
            if amount <= 0:
                self.problems.add(item.line, item.path, "expected a positive duration like "
                                  f'"60 {units[0]}", got {value}')
                return None
            self.problems.add(item.line, item.path, f"{value} has no unit; write "
                              f'"{amount} {units[0]}", "{amount} {units[1]}" or '
                              f'"{amount} {units[2]}"')
            return None
        if not isinstance(value, str):
            self.problems.add(item.line, item.path,
                              f'expected a duration like "3 days", got {_describe(value)}')
            return None
        try:
            return Duration.parse(value)
        except DurationError as exc:
            self.problems.add(item.line, item.path, str(exc))
            return None

    def durations(self, item: _Item | None) -> tuple[Duration, ...] | None:
        """A list of durations; a single duration stands for a list of one."""
        if item is None:
            return None
        if not isinstance(item.node, yaml.SequenceNode):
            one = self.duration(item)
            return None if one is None else (one,)
        found = [self.duration(entry) for entry in self.sequence(item)]
        if any(d is None for d in found):
            return None
        return tuple(d for d in found if d is not None)

    def sequence(self, item: _Item) -> list[_Item]:
        """The entries of a list node, each with its ``path[i]``; a lone value is a list of one."""
        if isinstance(item.node, yaml.SequenceNode):
            return [_Item(node, f"{item.path}[{i}]") for i, node in enumerate(item.node.value)]
        return [item]

    def path(self, item: _Item | None, kind: str) -> Path | None:
        """A file-system path: ``~`` expanded, relative to the config's folder; must exist.

        ``kind`` is "file" or "folder". The existence check is here and not at first use
        because a CA file or templates folder that is missing only shows when mail is sent.
        """
        text = self.text(item, f"a {kind} path")
        if text is None or item is None:
            return None
        path = _absolute(_expand_user(text, self.environ), self.base_dir)
        ok = path.is_file() if kind == "file" else path.is_dir()
        if not ok:
            why = "does not exist" if not path.exists() else f"is not a {kind}"
            self.problems.add(item.line, item.path, f"{path} {why}")
            return None
        return path

    def command(self, item: _Item | None) -> str | None:
        text = self.text(item, "a command line")
        if text is None or item is None:
            return None
        try:
            words = shlex.split(text)
        except ValueError as exc:
            self.problems.add(item.line, item.path, f"cannot split into words: {exc} "
                              "(check the quotes)")
            return None
        if not words:
            self.problems.add(item.line, item.path, "is empty")
            return None
        return text

    # -- composite values --

    def section(self, parent: _Section, key: str, known: Sequence[str]) -> _Section:
        return _Section(self, parent.raw(key), parent.child(key), parent.line_of(key), known)

    def address(self, item: _Item, hint: str, line: int | None = None,
                known: Sequence[str] = ("name", "email")) -> Address | None:
        """``{name: ..., email: ...}`` or a string ``Name <addr>`` / ``addr``; lower-cased.

        ``line`` is where the key holding it is written, cited when ``email`` is missing.
        """
        if isinstance(item.node, yaml.MappingNode):
            part = _Section(self, item, item.path, line or item.line, known)
            name = self.text(part.get("name"), "a name") or ""
            email_item = part.get("email")
            if email_item is None:
                part.missing("email", hint)
                return None
            email = self.email(email_item)
            return None if email is None else Address(email, name)
        value = self.scalar(item)
        if value is not _BAD and not isinstance(value, str):
            self._expect(item, f"{{name: ..., email: {hint}}}")
            return None
        text = self.text(item, f"{{name: ..., email: {hint}}}")
        if text is None:
            return None
        name, bare = parseaddr(text) if "<" in text else ("", text)
        checked = self.email(item, bare or text)
        return None if checked is None else Address(checked, name)

    def email(self, item: _Item, text: str | None = None) -> str | None:
        value = text if text is not None else self.text(item, "an e-mail address")
        if value is None:
            return None
        bare = value.strip()
        if not _EMAIL.match(bare):
            hint = " (give the bare address; the name goes under name:)" if "<" in value else ""
            self.problems.add(item.line, item.path,
                              f'"{value}" does not look like an e-mail address{hint}')
            return None
        return fold(bare)  # as mail's addresses are compared (a non-ASCII domain as IDNA)

    def timezone(self, item: _Item | None) -> ZoneInfo | None:
        name = self.text(item, 'an IANA time zone like "Europe/London"')
        if name is None or item is None:
            return None
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
        zones = {zone.lower(): zone for zone in available_timezones()}
        if name.lower() in zones:
            hint = f'did you mean "{zones[name.lower()]}"? (names are case-sensitive)'
        else:
            close = difflib.get_close_matches(name.lower(), list(zones), n=1, cutoff=0.6)
            hint = (f'did you mean "{zones[close[0]]}"?' if close
                    else 'use an IANA name like "Europe/London" or "America/New_York"')
        self.problems.add(item.line, item.path, f'"{name}" is not a known time zone ({hint})')
        return None

    def quiet_hours(self, item: _Item | None) -> object:
        """``"20:00-08:00"`` -> QuietHours; null, "" or false -> None (off); _BAD on a problem."""
        if item is None:
            return _BAD  # absent: the caller keeps the default
        if item.is_null:
            return None
        value = self.scalar(item)
        if value is False or (isinstance(value, str) and not value.strip()):
            return None
        example = 'a window like "20:00-08:00"'
        match = _QUIET.match(value) if isinstance(value, str) else None
        if value is _BAD and isinstance(item.node, yaml.ScalarNode):
            return _BAD  # unreadable, and already reported
        if not match:
            if isinstance(value, int) and not isinstance(value, bool):
                # YAML 1.1 reads an unquoted 20:00 as the number 1200 (base 60).
                self.problems.add(item.line, item.path, f"expected {example} in quotes")
            else:
                self._expect(item, example)
            return _BAD
        h1, m1, h2, m2 = (int(group) for group in match.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            self.problems.add(item.line, item.path,
                              f'"{value}" has a time out of range (00:00 to 23:59)')
            return _BAD
        start, end = time(h1, m1), time(h2, m2)
        if start == end:
            self.problems.add(item.line, item.path, f'"{value}" starts and ends at the same time'
                              " (write null for no quiet hours)")
            return _BAD
        return QuietHours(start, end)

    def rrule(self, item: _Item | None) -> object:
        """An RFC 5545 RRULE string; null or "" -> None (no digest); _BAD on a problem."""
        if item is None:
            return _BAD
        if item.is_null:
            return None
        value = self.scalar(item)
        if value is False or (isinstance(value, str) and not value.strip()):
            return None
        text = self.text(item, f'an RRULE like "{_DEFAULT_RRULE}"')
        if text is None:
            return _BAD
        try:
            # A fixed, naive start: validation must not depend on the clock, and the rule's
            # BYHOUR values are wall-clock times in the configured zone.
            validate_rrule(text)
        except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
            reason = str(exc)
            if "unpack" in reason:
                reason = "each part must read NAME=VALUE, separated by ;"
            self.problems.add(item.line, item.path, f'"{text}" is not a valid RFC 5545 RRULE '
                              f'({reason}); e.g. "{_DEFAULT_RRULE}"')
            return _BAD
        return text

    # -- the sections --

    def settings(self, root: yaml.MappingNode, source: Path) -> Settings:
        top = _Section(self, _Item(root, ""), "", 1, (
            "timezone", "owners", "assistant", "imap", "smtp", "state", "poll_interval",
            "confirm", "confirm_commands", "tags", "schedules", "sending", "limits", "send_as",
            "require_auth", "trusted_authserv_id", "templates_dir", "default_time", "date_order",
            "calendar_file", "state_password_env", "lease",
        ))
        defaults = Settings(owners=(), assistant=Address("assistant@invalid"))
        owners, watches, owner_times = self.owners(top)
        assistant = self.assistant(top, owners)
        imap = self.imap(top)
        smtp = self.smtp(top)
        state, state_url = self.state(top)
        state_password = self.state_password(top, state_url)
        poll_interval = self.duration(top.get("poll_interval"), likely="seconds")
        if poll_interval is not None and poll_interval.approximate < _MIN_POLL.approximate:
            self.problems.add(top.line_of("poll_interval"), "poll_interval",
                              f'"{poll_interval}" is too often; the least is "10 seconds" '
                              "(servers throttle or ban faster polling)")
            poll_interval = None
        lease = self.duration(top.get("lease"), likely="seconds")
        if lease is not None and not (
                _MIN_LEASE.approximate <= lease.approximate <= _MAX_LEASE.approximate):
            self.problems.add(top.line_of("lease"), "lease",
                              f'"{lease}" is out of range; give between "2 seconds" and '
                              '"1 hour" (the default "30 seconds" suits most: a mailbox whose '
                              "process died is taken over after about that long)")
            lease = None
        require_auth = self.flag(top.get("require_auth"))
        trusted = self.text(top.get("trusted_authserv_id"), "a host name like mx.example.com")
        if require_auth and trusted is None and top.get("trusted_authserv_id") is None:
            self.problems.add(top.line_of("require_auth"), "require_auth",
                              "true needs trusted_authserv_id: the host name your mail server "
                              "writes in its Authentication-Results header (e.g. mx.example.com)")
        send_as = self.choice(top.get("send_as"), ("assistant", "owner"))
        return Settings(
            owners=owners,
            assistant=assistant or defaults.assistant,
            timezone=self.timezone(top.get("timezone")) or defaults.timezone,
            imap=imap,
            smtp=smtp,
            state=state,
            state_url=state_url,
            state_password=state_password,
            poll_interval=_pick(poll_interval, defaults.poll_interval),
            lease=_pick(lease, defaults.lease),
            confirm=_pick(self.flag(top.get("confirm")), defaults.confirm),
            confirm_commands=_pick(self.flag(top.get("confirm_commands")),
                                   defaults.confirm_commands),
            tags=self.tags(top),
            schedules=self.schedules(top),
            sending=self.sending(top),
            limits=self.limits(top),
            send_as="owner" if send_as == "owner" else "assistant",
            require_auth=_pick(require_auth, defaults.require_auth),
            trusted_authserv_id=trusted,
            templates_dir=self.path(top.get("templates_dir"), "folder"),
            source=source,
            default_time=self.time_of_day(top.get("default_time")) or defaults.default_time,
            date_order=self.date_order(top.get("date_order")),
            owner_times=owner_times,
            watches=watches,
            calendar_file=self.calendar_file(top),
        )

    def date_order(self, item: _Item | None) -> Literal["dmy", "mdy"] | None:
        """``dmy`` or ``mdy``; null or absent: numeric dates like 3/4 are refused."""
        if item is None or item.is_null:
            return None
        order = self.choice(item, ("dmy", "mdy"))
        return "dmy" if order == "dmy" else "mdy" if order == "mdy" else None

    def time_of_day(self, item: _Item | None) -> time | None:
        """``"09:00"`` -> time(9); None when absent or wrong (reported)."""
        if item is None:
            return None
        value = self.scalar(item)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
            # YAML 1.1 reads an unquoted 9:30 as the base-60 number 570: the meaning is plain.
            return time(value // 60, value % 60)
        text = self.text(item, 'a time of day like "09:00"')
        if text is None:
            return None
        match = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
        if not match or int(match[1]) > 23 or int(match[2]) > 59:
            self.problems.add(item.line, item.path,
                              f'"{text}" is not a time of day (write it like "09:00" or "17:30")')
            return None
        return time(int(match[1]), int(match[2]))

    def owners(
        self, top: _Section,
    ) -> tuple[tuple[Address, ...], tuple[WatchSettings, ...], tuple[OwnerTime, ...]]:
        item = top.get("owners")
        if item is None:
            top.missing("owners", "a list like [{name: Sam Rivera, email: sam@example.com}]")
            return (), (), ()
        entries = self.sequence(item)
        if not entries:
            self.problems.add(item.line, "owners", "needs at least one owner, e.g. "
                              "[{name: Sam Rivera, email: sam@example.com}]")
            return (), (), ()
        owners: list[Address] = []
        watches: list[WatchSettings] = []
        times: list[OwnerTime] = []
        seen: dict[str, int] = {}
        for entry in entries:
            watch_item: _Item | None = None
            fields = entry
            if isinstance(entry.node, yaml.MappingNode):
                watch_item = _value_of(entry, "watch")
                fields = _Item(_without_key(entry.node, "watch"), entry.path)
            owner = self.address(fields, "the owner's address", known=_OWNER_KEYS)
            if owner is None:
                continue
            if isinstance(entry.node, yaml.MappingNode):
                # The keys were checked by address(); only the values are read here.
                values = {self.scalar(_Item(k, entry.path)): _Item(v, f"{entry.path}.{k.value}")
                          for k, v in entry.node.value if isinstance(k, yaml.ScalarNode)}
                zone = self.timezone(values.get("timezone"))
                default = self.time_of_day(values.get("default_time"))
                if zone is not None or default is not None:
                    times.append(OwnerTime(owner.email, zone, default))
            if owner.email in seen:
                self.problems.add(entry.line, entry.path, f"{owner.email} is listed twice "
                                  f"(first on line {seen[owner.email]})")
                continue
            seen[owner.email] = entry.line
            owners.append(owner)
            if watch_item is not None and not watch_item.is_null:
                watch = self.watch(watch_item, owner.email)
                if watch is not None:
                    watches.append(watch)
        return tuple(owners), tuple(watches), tuple(times)

    def watch(self, item: _Item, owner: str) -> WatchSettings | None:
        """``owners[i].watch``: the same connection keys and rules as ``imap:``, plus
        ``folders`` (a list; empty or absent means INBOX and the ``\\Sent`` folder)."""
        part = _Section(self, item, item.path, item.line, (*_SERVER_KEYS, "folders"))
        if part.broken:
            return None
        server = self.server(part, {"ssl": 993, "starttls": 143, "none": 143})
        folders: list[str] = []
        listed = part.get("folders")
        if listed is not None:
            for entry in self.sequence(listed):
                name = self.text(entry, "a folder name")
                if name is not None and name not in folders:
                    folders.append(name)
        return WatchSettings(
            owner=owner,
            server=ImapSettings(
                host=server.host, port=server.port, security=server.security,
                username=server.username, password=server.password, auth=server.auth,
                oauth2_token_cmd=server.oauth2_token_cmd, ca_file=server.ca_file,
                timeout=_pick(server.timeout, ImapSettings().timeout),
            ),
            folders=tuple(folders),
        )

    def assistant(self, top: _Section, owners: tuple[Address, ...]) -> Address | None:
        item = top.get("assistant")
        if item is None:
            top.missing("assistant", "{name: ..., email: the assistant's own mailbox}")
            return None
        assistant = self.address(item, "the assistant's own mailbox", top.line_of("assistant"))
        if assistant is not None and any(o.email == assistant.email for o in owners):
            # It would take its own reminders for an owner's commands and answer itself.
            self.problems.add(item.line, "assistant.email", f"{assistant.email} is also an owner;"
                              " the assistant needs a mailbox of its own")
        return assistant

    def server(self, part: _Section, ports: Mapping[Security, int]) -> _Server:
        """The keys IMAP and SMTP share, cross-checked. The default port follows ``security``;
        the first entry of ``ports`` is the default security."""
        host = self.text(part.get("host"), "a host name")
        if host is None and part.get("host") is None:
            part.missing("host", f"the server's host name, e.g. {part.path}.example.com")
        security = _SECURITY.get(self.choice(part.get("security"), tuple(_SECURITY)) or "",
                                 next(iter(ports)))
        if security == "none" and host is not None and not _is_loopback(host):
            self.problems.add(part.line_of("security"), part.child("security"),
                              f'"none" sends the password and mail unencrypted, so it is only '
                              f"allowed for a server on this machine (localhost, 127.0.0.1, ::1); "
                              f"{host} is not one (use ssl or starttls)")
        username = self.text(part.get("username"), "a user name")
        env_name = self.text(part.get("password_env"), "an environment variable name")
        if env_name is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env_name):
            self.problems.add(part.line_of("password_env"), part.child("password_env"),
                              f'"{env_name}" is not an environment variable name; give the '
                              "variable's name (like MAILHELPER_IMAP_PASSWORD), not the password")
            env_name = None
        secret = Secret(
            env=env_name,
            file=self.path(part.get("password_file"), "file"),
            cmd=self.command(part.get("password_cmd")),
        )
        given = [key for key in _PASSWORD_KEYS if part.get(key) is not None]
        if len(given) > 1:
            self.problems.add(part.line_of(given[1]), part.child(given[1]),
                              f"give only one of {', '.join(given)}")
        auth = self.choice(part.get("auth"), ("password", "oauth2"))
        token_cmd = self.command(part.get("oauth2_token_cmd"))
        if auth == "oauth2":
            if part.get("oauth2_token_cmd") is None:
                self.problems.add(part.line_of("auth"), part.child("auth"), "oauth2 needs "
                                  "oauth2_token_cmd: a command that prints a fresh access token")
            if part.get("username") is None:
                self.problems.add(part.line_of("auth"), part.child("auth"),
                                  "oauth2 needs username: the account to log in as")
        elif username is not None and not given:
            self.problems.add(part.line_of("username"), part.child("username"),
                              "a username needs a password: set one of password_env, "
                              "password_file or password_cmd (or remove username for no login)")
        elif given and part.get("username") is None:
            # Harmless (no username means no login), but likely a forgotten line: say so.
            log.warning("%s:%d: %s: a password without a username is never used; set username",
                        self.problems.source, part.line_of(given[0]), part.child(given[0]))
        return _Server(
            host=host or "",
            port=self.integer(part.get("port"), 1, 65535) or ports[security],
            security=security,
            username=username,
            password=secret,
            auth="oauth2" if auth == "oauth2" else "password",
            oauth2_token_cmd=token_cmd,
            ca_file=self.path(part.get("ca_file"), "file"),
            timeout=self.seconds(part.get("timeout")),
        )

    def seconds(self, item: _Item | None) -> float | None:
        """A positive duration ("60 seconds", "2 minutes", "60s"), in seconds. A bare number
        here is a number of seconds, as it always was for a timeout (configs written that way
        keep working); everywhere else a bare number is refused."""
        if item is None:
            return None
        value = self.scalar(item)
        if isinstance(value, int | float) and not isinstance(value, bool):
            if value > 0:
                return float(value)
            self.problems.add(item.line, item.path,
                              f'expected a positive duration like "60 seconds", got {value}')
            return None
        duration = self.duration(item, likely="seconds")
        if duration is not None and duration.amount <= 0:
            self.problems.add(item.line, item.path,
                              f'expected a positive duration like "60 seconds", got "{duration}"')
            return None
        return None if duration is None else duration.approximate.total_seconds()

    def imap(self, top: _Section) -> ImapSettings:
        part = self.section(top, "imap", (
            *_SERVER_KEYS, "folder", "error_folder", "sent_folder", "processed_folder",
        ))
        default = ImapSettings()
        # 993 first: implicit TLS is the default (RFC 8314 prefers it to STARTTLS).
        server = self.server(part, {"ssl": 993, "starttls": 143, "none": 143})
        folder = self.text(part.get("folder"), "a folder name") or default.folder
        error_folder = (self.text(part.get("error_folder"), "a folder name")
                        or default.error_folder)
        processed_folder = self.text(part.get("processed_folder"), "a folder name")
        # Mail moved into the folder being read gets a new UID there and is read again, moved
        # again, without end (about 120 times a second against a local Dovecot).
        for key, value, fix in (
            ("processed_folder", processed_folder,
             "name another folder (e.g. \"mailhelper/done\"), or remove the key to leave "
             "handled mail where it is, flagged"),
            ("error_folder", error_folder,
             "name another folder (e.g. \"mailhelper/errors\", the default)"),
        ):
            if value is not None and same_folder(value, folder):
                line = part.line_of(key) if part.get(key) is not None else part.line_of("folder")
                self.problems.add(
                    line, f"imap.{key}",
                    f"{value!r} is the folder being read (imap.folder: {folder!r}): every "
                    f"message moved there would be read again, and moved again, without end; "
                    f"{fix}")
        return ImapSettings(
            host=server.host,
            port=server.port,
            security=server.security,
            username=server.username,
            password=server.password,
            auth=server.auth,
            oauth2_token_cmd=server.oauth2_token_cmd,
            folder=folder,
            error_folder=error_folder,
            sent_folder=self.text(part.get("sent_folder"), "a folder name"),
            processed_folder=processed_folder,
            ca_file=server.ca_file,
            timeout=_pick(server.timeout, default.timeout),
        )

    def smtp(self, top: _Section) -> SmtpSettings:
        part = self.section(top, "smtp", _SERVER_KEYS)
        # starttls on 587 first: the submission port every provider documents (RFC 6409).
        server = self.server(part, {"starttls": 587, "ssl": 465, "none": 25})
        return SmtpSettings(
            host=server.host,
            port=server.port,
            security=server.security,
            username=server.username,
            password=server.password,
            auth=server.auth,
            oauth2_token_cmd=server.oauth2_token_cmd,
            ca_file=server.ca_file,
            timeout=_pick(server.timeout, SmtpSettings().timeout),
        )

    def state(self, top: _Section) -> tuple[Path, str | None]:
        """The state file's path, and the PostgreSQL URL when ``state`` is one (the path is
        then the default one, where nothing is written)."""
        item = top.get("state")
        text = self.text(item, "a file path or a postgresql:// URL")
        state_home = _xdg_dir(self.environ, "XDG_STATE_HOME", ".local/state")
        default = state_home / "mailhelper" / "state.db"
        if text is None or item is None:
            return default, None
        if is_database_url(text) or re.match(r"^[a-z][a-z0-9+.-]*://", text, re.I):
            return default, self.state_url(item, text)
        path = _absolute(_expand_user(text, self.environ), self.base_dir)
        if path.is_dir():
            self.problems.add(item.line, "state", f"{path} is a folder; give the SQLite file's "
                              f"path, e.g. {path / 'state.db'}")
        return path, None

    def state_url(self, item: _Item, text: str) -> str | None:
        example = "postgresql://mailhelper@db.example.org:5432/mailhelper"
        if not is_database_url(text):
            self.problems.add(item.line, "state", f'"{text.split("://")[0]}://" is not a '
                              f"database this mailhelper knows; give an SQLite file's path or "
                              f"a PostgreSQL URL like {example}")
            return None
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 (a bad port raises only when read)
        except ValueError as exc:
            self.problems.add(item.line, "state", f"is not a valid URL ({exc}); e.g. {example}")
            return None
        if parts.password is not None:
            self.problems.add(item.line, "state", "holds a password; take it out of the URL "
                              "and give it in PGPASSWORD, ~/.pgpass or state_password_env, so "
                              "it is not in the config file")
            return None
        if not parts.path.strip("/") or "/" in parts.path.strip("/"):
            self.problems.add(item.line, "state", f"names no database; end the URL with the "
                              f"database's name, e.g. {example}")
            return None
        return text

    def state_password(self, top: _Section, url: str | None) -> Secret | None:
        item = top.get("state_password_env")
        env_name = self.text(item, "an environment variable name")
        if item is None or env_name is None:
            return None
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env_name):
            self.problems.add(item.line, "state_password_env", f'"{env_name}" is not an '
                              "environment variable name; give the variable's name (like "
                              "MAILHELPER_STATE_PASSWORD), not the password")
            return None
        if url is None and top.get("state") is not None:
            self.problems.add(item.line, "state_password_env", "is for a PostgreSQL state "
                              "(state: postgresql://...); an SQLite file has no password")
            return None
        if url is None:
            self.problems.add(item.line, "state_password_env", "is for a PostgreSQL state; "
                              "set state: postgresql://user@host:port/database too")
            return None
        return Secret(env=env_name)

    def calendar_file(self, top: _Section) -> Path | None:
        """``calendar_file``: where the daemon keeps the iCalendar; null (the default) is off.
        Its folder must exist (the file is made there); the file itself need not."""
        item = top.get("calendar_file")
        text = self.text(item, "a file path") if item is not None else None
        if text is None or item is None:
            return None
        path = _absolute(_expand_user(text, self.environ), self.base_dir)
        if path.is_dir():
            self.problems.add(item.line, "calendar_file", f"{path} is a folder; give the "
                              f"file's path, e.g. {path / 'mailhelper.ics'}")
        elif not path.parent.is_dir():
            self.problems.add(item.line, "calendar_file", f"the folder {path.parent} does not "
                              "exist; create it or give another path")
        return path

    def tags(self, top: _Section) -> Tags:
        part = self.section(top, "tags", ("ask", "offer"))
        default = Tags()
        words: dict[str, tuple[str, ...]] = {}
        first: dict[str, tuple[str, int]] = {}
        for kind in ("ask", "offer"):
            item = part.get(kind)
            if item is None:
                words[kind] = getattr(default, kind)
                continue
            found: list[str] = []
            entries = self.sequence(item)
            if not entries:
                self.problems.add(item.line, item.path, f'needs at least one word, e.g. ["{kind}"]')
            for entry in entries:
                word = self.text(entry, "a tag word")
                if word is None:
                    continue
                word = word.lower()
                if not _TAG_WORD.match(word):
                    self.problems.add(entry.line, entry.path, f'"{word}" must be one word, without'
                                      ' spaces or any of + @ [ ] # < > , ; : "')
                    continue
                if _reads_as_duration(word):
                    self.problems.add(entry.line, entry.path, f'"{word}" reads as a duration '
                                      "(as in helper+5d@); pick another word")
                    continue
                if word in first:
                    other_kind, line = first[word]
                    why = ("is both an ask and an offer word" if other_kind != kind
                           else "is listed twice")
                    self.problems.add(entry.line, entry.path,
                                      f'"{word}" {why} (first on line {line})')
                    continue
                first[word] = (kind, entry.line)
                found.append(word)
            words[kind] = tuple(found) or getattr(default, kind)
        return Tags(ask=words["ask"], offer=words["offer"])

    def schedules(self, top: _Section) -> Schedules:
        part = self.section(top, "schedules",
                            ("ask", "offer", "note", "thank_you", "return_favor", "digest"))
        ask_part = self.section(part, "ask", ("follow_up", "give_up_after", "nudge_counterpart"))
        offer_part = self.section(part, "offer", ("follow_up",))
        note_part = self.section(part, "note", ("after",))
        thanks_part = self.section(part, "thank_you", ("after", "mode"))
        favor_part = self.section(part, "return_favor", ("after",))
        digest_part = self.section(part, "digest", ("rrule",))

        ask_default, offer_default = AskSchedule(), OfferSchedule()
        follow_up = _pick(self.durations(ask_part.get("follow_up")), ask_default.follow_up)
        give_up = _pick(self.duration(ask_part.get("give_up_after")), ask_default.give_up_after)
        if follow_up and give_up.approximate <= max(d.approximate for d in follow_up):
            # Not an error: a short give-up is a legitimate choice, but the later reminders
            # will never go out, which is worth saying once at start-up.
            log.warning("%s: schedules.ask.give_up_after (%s) is not after the last follow-up "
                        "(%s); later reminders will not be sent", self.problems.source, give_up,
                        max(follow_up, key=lambda d: d.approximate))
        thanks_default = ThankYouSchedule()
        mode = self.choice(thanks_part.get("mode"), ("draft", "send"))
        rrule = self.rrule(digest_part.raw("rrule"))
        return Schedules(
            ask=AskSchedule(
                follow_up=follow_up,
                give_up_after=give_up,
                nudge_counterpart=_pick(self.durations(ask_part.get("nudge_counterpart")),
                                        ask_default.nudge_counterpart),
            ),
            offer=OfferSchedule(
                follow_up=_pick(self.durations(offer_part.get("follow_up")),
                                offer_default.follow_up),
            ),
            note=NoteSchedule(
                after=_pick(self.duration(note_part.get("after")), NoteSchedule().after),
            ),
            thank_you=ThankYouSchedule(
                after=_pick(self.duration(thanks_part.get("after")), thanks_default.after),
                mode="send" if mode == "send" else "draft",
            ),
            return_favor=ReturnFavorSchedule(
                after=_pick(self.duration(favor_part.get("after")), ReturnFavorSchedule().after),
            ),
            digest=DigestSchedule(
                rrule=DigestSchedule().rrule if rrule is _BAD else
                (rrule if isinstance(rrule, str) else None),
            ),
        )

    def sending(self, top: _Section) -> SendingSettings:
        part = self.section(top, "sending", (
            "business_days", "quiet_hours", "max_per_recipient_per_day", "max_per_hour",
        ))
        default = SendingSettings()
        quiet = self.quiet_hours(part.raw("quiet_hours"))
        return SendingSettings(
            business_days=_pick(self.flag(part.get("business_days")), default.business_days),
            quiet_hours=default.quiet_hours if quiet is _BAD else
            (quiet if isinstance(quiet, QuietHours) else None),
            max_per_recipient_per_day=_pick(
                self.integer(part.get("max_per_recipient_per_day"), 1),
                default.max_per_recipient_per_day,
            ),
            max_per_hour=_pick(self.integer(part.get("max_per_hour"), 1), default.max_per_hour),
        )

    def limits(self, top: _Section) -> LimitSettings:
        part = self.section(top, "limits", ("message_seconds",))
        return LimitSettings(message_seconds=_pick(
            self.seconds_between(part.get("message_seconds"), 0.1, 3600),
            LimitSettings().message_seconds))


_SECURITY: Final[dict[str, Security]] = {"ssl": "ssl", "starttls": "starttls", "none": "none"}
_PASSWORD_KEYS: Final = ("password_env", "password_file", "password_cmd")
_SERVER_KEYS: Final = (
    "host", "port", "security", "username", *_PASSWORD_KEYS, "auth", "oauth2_token_cmd",
    "ca_file", "timeout",
)


@dataclass(frozen=True)
class _Server:
    """What IMAP and SMTP settings share, checked once for both."""

    host: str
    port: int
    security: Security
    username: str | None
    password: Secret
    auth: Literal["password", "oauth2"]
    oauth2_token_cmd: str | None
    ca_file: Path | None
    timeout: float | None


def _value_of(item: _Item, key: str) -> _Item | None:
    """The value under ``key`` in a mapping node (the last one, as YAML reads it), or None."""
    found = None
    assert isinstance(item.node, yaml.MappingNode)
    for k, v in item.node.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            found = _Item(v, f"{item.path}.{key}")
    return found


def _without_key(node: yaml.MappingNode, key: str) -> yaml.MappingNode:
    """A copy of a mapping node less one key (the owner's address is read apart from its
    ``watch``)."""
    kept = [(k, v) for k, v in node.value
            if not (isinstance(k, yaml.ScalarNode) and k.value == key)]
    return yaml.MappingNode(node.tag, kept, node.start_mark, node.end_mark, node.flow_style)


def same_folder(a: str, b: str) -> bool:
    """Whether two folder names name one folder, as an IMAP server compares them: exactly,
    except that ``INBOX`` is case-insensitive (RFC 3501 section 5.1), also as the first part of
    a hierarchical name (``inbox/done`` is ``INBOX/done`` on servers that nest under INBOX).

        >>> same_folder("inbox", "INBOX"), same_folder("Done", "done")
        (True, False)
    """
    def canonical(name: str) -> str:
        head, sep, rest = name.partition("/") if "/" in name else name.partition(".")
        return ("INBOX" + sep + rest) if head.upper() == "INBOX" else name

    return canonical(a) == canonical(b)


def _pick(value: _T | None, default: _T) -> _T:
    return default if value is None else value


def _reads_as_duration(word: str) -> bool:
    try:
        Duration.parse(word)
    except DurationError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1), the only hosts where
    ``security: none`` is safe: the traffic never leaves the machine."""
    bare = host.strip().strip("[]").rstrip(".").lower()
    if bare == "localhost" or bare.endswith(".localhost"):
        return True  # RFC 6761 6.3: every *.localhost name is loopback
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False

