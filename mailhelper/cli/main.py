"""The command line: the only place that talks to humans about errors.

Verbs: ``run`` (the daemon), ``poll --once [--now ISO] [--dry-run]``, ``status [--json]``,
``explain FILE.eml [--json]``, ``check``, ``demo``, ``state copy SRC DEST``; each has
``--help``. ``run``, ``poll`` and ``status`` take ``--config-dir DIR`` instead of a config:
every ``*.yaml`` in DIR is an assistant (:mod:`mailhelper.cli.configdir`,
:mod:`mailhelper.cli.fleet`). The global options ``--config``, ``-v``/``--verbose``,
``-q``/``--quiet``, ``--debug`` and ``--log-format`` go before or after the verb, with the same
meaning (``mailhelper --config F check``).

Exit codes:
    0  success (``run``: stopped by SIGTERM or SIGINT)
    1  a failure while working (see the message)
    2  the config or the command line is wrong (a usage error, a bad ``--now``, a password
       that cannot be read)
    3  a mail server could not be reached or refused the login
    4  another mailhelper holds the state file

Logs go to stderr: ``--log-format text`` (default) or ``json`` (one object per line, with
``time``, ``level``, ``logger``, ``message`` and, for an error with a traceback,
``exception``; a line about a message, an action or a cycle adds ``message_id``, ``uid``,
``folder``, ``action``, ``action_kind``, ``thread``, ``recipients`` or ``counts``, as they
apply); ``--verbose`` adds debug lines, ``--quiet`` keeps only warnings and errors.
Passwords and tokens never appear in them.

``run`` and signals: SIGTERM and SIGINT finish the message in hand, commit and exit 0 (a
second one exits at once, leaving the store consistent); SIGHUP reloads the config, or
keeps the old one and logs why when the new one is wrong.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import select
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mailhelper import __version__
from mailhelper.compose.terminal import for_terminal, json_for_terminal
from mailhelper.decide.backlog import DEFAULT_BACKFILL_DAYS
from mailhelper.model import logfields
from mailhelper.model.errors import ConfigError, MailhelperError, StateLockedError

log = logging.getLogger("mailhelper")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailhelper",
        description="A self-hosted e-mail assistant that helps you ask for help, follow up, "
        "say thanks and return the favour.",
        epilog="Exit codes: 0 ok, 1 failure, 2 bad config or usage, 3 server unreachable or "
        "login refused, 4 state file in use by another mailhelper.",
    )
    parser.add_argument("--version", action="version", version=f"mailhelper {__version__}")
    _add_global_options(parser.add_argument_group(
        "global options (before or after the command, same meaning)"), prefix=_BEFORE)
    logging_options = argparse.ArgumentParser(add_help=False)
    _add_global_options(logging_options, config=False)
    common = argparse.ArgumentParser(add_help=False)
    _add_global_options(common)
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND")
    verbs.required = True

    run = verbs.add_parser("run", parents=[common], help="run the assistant: IDLE or poll, "
                           "send what is due, until SIGTERM/SIGINT",
                           description="Run the assistant until stopped. SIGHUP reloads the "
                           "config (with --config-dir: reads the folder again; a new file "
                           "starts, a removed one stops, a changed one restarts, a bad one "
                           "keeps its old config).")
    _add_config_dir(run, "serve every assistant of DIR in this process, one thread each")
    poll = verbs.add_parser("poll", parents=[common], help="one full cycle, then exit",
                            description="Read new mail, update threads, send what is due; exit.")
    poll.add_argument("--once", action="store_true", required=True,
                      help="run exactly one cycle (required; `run` is the daemon)")
    _add_config_dir(poll, "one cycle for each assistant of DIR, one after the other; one "
                    "failing does not stop the others")
    poll.add_argument("--now", metavar="ISO-8601", help="the clock for this run, e.g. "
                      "2026-12-07T09:00:00+00:00 (tests, demos, backfills)")
    poll.add_argument("--dry-run", action="store_true",
                      help="print what would be sent; change nothing anywhere")
    poll.add_argument("--backfill", metavar="DAYS", nargs="?", type=_days,
                      const=DEFAULT_BACKFILL_DAYS, default=None,
                      help="also read mail left alone as old (there before the first start) "
                      f"from the last DAYS days (default {DEFAULT_BACKFILL_DAYS}), each at its "
                      "own date; nothing is scheduled in the past")
    status = verbs.add_parser("status", parents=[common], help="every thread and what is next",
                              description="Every thread, finished ones included.")
    # One output at a time: "--json --ics" is refused with a usage error (exit 2), not one
    # of them silently preferred.
    shown = status.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help='print {"threads": [...]}')
    shown.add_argument("--ics", action="store_true",
                       help="print the pending reminders and thanks as an iCalendar")
    _add_config_dir(status, "a section per assistant of DIR (--json: an object keyed by "
                    "file name, each value that assistant's status)")
    explain = verbs.add_parser(
        "explain", parents=[common],
        help="how the assistant reads one message (touches no mailbox)",
        description="Read one saved message (.eml) as the assistant would: who sent it, "
        "whether it is an owner's, automatic or forwarded, its tag and time, and what the "
        "assistant would do with it. Touches no mailbox and changes no state; the config "
        "(and its state file, read only) says who the owners are.")
    explain.add_argument("file", metavar="FILE.eml")
    explain.add_argument("--json", action="store_true", help="print the reading as JSON")
    explain.add_argument("--now", metavar="ISO-8601", help="the clock for time words")
    verbs.add_parser(
        "check", parents=[common],
        help="validate the config and log in to IMAP and SMTP (sends nothing)",
        description="Validate the config, then connect and log in to IMAP and SMTP step by "
        "step, saying what is wrong at the first step that fails. Sends and changes nothing.")
    state = verbs.add_parser(
        "state", help="copy the state (e.g. to PostgreSQL)",
        description="Work on a state as a whole, with no config.")
    state_verbs = state.add_subparsers(dest="state_verb", metavar="ACTION")
    state_verbs.required = True
    copy = state_verbs.add_parser(
        "copy", parents=[logging_options],
        help="copy a whole state into an empty file or database",
        description="Copy the whole state (every thread, action and message seen, the "
        "Message-ID secret, the schema version) from SRC into the empty DEST, each an SQLite "
        "file or a postgresql:// URL (the password as libpq finds it: PGPASSWORD, ~/.pgpass). "
        "A database holds one state per assistant, each in its own schema: the copy is of "
        "one assistant's. Stop its daemon first; a DEST that is not empty, or a SRC of another "
        "schema version than this mailhelper's, is refused. Progress goes to stderr.")
    copy.add_argument("source", metavar="SRC")
    copy.add_argument("destination", metavar="DEST")
    copy.add_argument("--assistant", metavar="ADDRESS", default=None,
                      help="the assistant whose state is copied (its address, as in its "
                      "config): needed when SRC is a database holding several, or DEST a "
                      "database and SRC a file")
    demo = verbs.add_parser(
        "demo", parents=[logging_options],
        help="the whole story on local servers, nothing configured",
        description="Play the whole story on this machine: a local IMAP server and SMTP "
        "sink on 127.0.0.1, an ask, an offer, replies, commands and a week fast-forwarded, "
        "with every mail the assistant sends shown. Needs no config and no network.")
    demo.add_argument("--config", metavar="PATH",
                      help="ignored: the demo writes its own config in a temporary folder")
    demo.add_argument("--keep", action="store_true",
                      help="leave the demo servers running, with a config for them, and say "
                      "how to connect and which mailhelper commands to try")
    return parser


def _add_config_dir(verb: argparse.ArgumentParser, what: str) -> None:
    verb.add_argument("--config-dir", metavar="DIR", default=None,
                      help=f"every *.yaml in DIR is an assistant (its own mailbox, owners, "
                      f"schedules and state): {what}; a bad file is named with its line and "
                      "skipped, the others run (exit 0 if at least one ran)")


#: The global options' names (``args.NAME``), how each is written, and its value when given
#: nowhere. SPEC.md: they work before or after the verb.
GLOBAL_OPTIONS: tuple[tuple[str, str, object], ...] = (
    ("config", "--config", None),
    ("verbose", "-v/--verbose", False),
    ("quiet", "-q/--quiet", False),
    ("debug", "--debug", False),
    ("log_format", "--log-format", "text"),
)
#: Where a global option given before the verb is parsed to (``args.<_BEFORE>NAME``) until
#: :func:`parse_args` merges it with the one given after.
_BEFORE = "before_verb_"


def _add_global_options(
    target: argparse.ArgumentParser | argparse._ArgumentGroup, prefix: str = "",
    config: bool = True,
) -> None:
    """Add the global options to the top-level parser (``prefix`` set) or a verb's. Each
    defaults to None, "not given here", so :func:`parse_args` can tell where it was given."""
    noise = target.add_mutually_exclusive_group()
    noise.add_argument("-v", "--verbose", dest=f"{prefix}verbose", action="store_true",
                       default=None, help="log more")
    noise.add_argument("-q", "--quiet", dest=f"{prefix}quiet", action="store_true",
                       default=None, help="log only problems")
    target.add_argument("--debug", dest=f"{prefix}debug", action="store_true", default=None,
                        help="show tracebacks on errors")
    target.add_argument("--log-format", dest=f"{prefix}log_format", choices=("text", "json"),
                        default=None,
                        help="log lines for people (text, the default) or collectors (json)")
    if config:
        target.add_argument("--config", dest=f"{prefix}config", metavar="PATH",
                            help="config file (default: $MAILHELPER_CONFIG, ./mailhelper.yaml, "
                            "$XDG_CONFIG_HOME/mailhelper/config.yaml)")


def parse_args(parser: argparse.ArgumentParser,
               argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``parser.parse_args(argv)`` with each global option taken from before or after the
    verb (``mailhelper --config F check`` is ``mailhelper check --config F``). The same option
    given on both sides with different values is a usage error naming both, and so are
    ``-v`` on one side with ``-q`` on the other.

        >>> args = parse_args(build_parser(), ["-v", "--config", "a.yaml", "status", "--json"])
        >>> (args.verb, args.config, args.verbose, args.quiet, args.log_format)
        ('status', 'a.yaml', True, False, 'text')
    """
    args = parser.parse_args(argv)
    for name, written, default in GLOBAL_OPTIONS:
        before = getattr(args, _BEFORE + name)
        delattr(args, _BEFORE + name)
        after = getattr(args, name, None)
        if before is not None and after is not None and before != after:
            parser.error(f"{written} is given twice, before the command ({before}) and after "
                         f"it ({after}); give it once")
        chosen = after if after is not None else before
        setattr(args, name, default if chosen is None else chosen)
    if args.verbose and args.quiet:
        parser.error("argument -q/--quiet: not allowed with argument -v/--verbose (one "
                     "before the command, one after it)")
    return args


class _JsonFormatter(logging.Formatter):
    """One JSON object per line, whatever the message holds (newlines are escaped), with the
    structured fields a line about a message, an action or a cycle carries
    (:mod:`mailhelper.model.logfields`)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **logfields.of(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json_for_terminal(json.dumps(entry, ensure_ascii=False))


class _TerminalFormatter(logging.Formatter):
    """The plain log line, with nothing from a mail that a terminal would act on."""

    def format(self, record: logging.LogRecord) -> str:
        return for_terminal(super().format(record))


def setup_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    if args.log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_TerminalFormatter("%(asctime)s %(levelname)s %(message)s",
                                                "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Neither format shows where a line was logged from, so each record skips looking it up
    # (the logging HOWTO's "Optimization": a walk up the stack for every line, a third of
    # what a line cost when a backlog logs one a message).
    logging._srcfile = None
    # The level is the root's alone: a package logger left quieter (by the demo, in the same
    # process) must not hide this command's lines.
    logging.getLogger("mailhelper").setLevel(logging.NOTSET)
    for noisy in ("imapclient", "mail.log", "asyncio"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code (see the module docstring)."""
    parser = build_parser()
    args = parse_args(parser, argv)  # a usage error exits 2 here, with argparse's message
    setup_logging(args)
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # here, so a reader that went away is noticed below
        return code
    except MailhelperError as exc:
        if args.debug:
            raise
        _report(args, str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _report(args, "interrupted; what was committed stays, and what was not is read again "
                      "next time")
        return 130
    except BrokenPipeError:
        if not _stdout_gone():
            raise  # a socket's, not the terminal's: an unexpected error after all
        # `mailhelper status | head`: the reader has what it wanted. Say nothing, and keep
        # Python from reporting the same broken pipe again when it flushes at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a command killed by SIGPIPE (128 + 13) would
    except Exception as exc:
        if args.debug:
            raise
        _report(args, f"unexpected error: {type(exc).__name__}: {exc} (run it again with "
                      "--debug to see where; please report it)")
        return 1


def _stdout_gone() -> bool:
    """Whether standard output is a pipe whose reader has closed it (POLLERR on its write
    end, as Linux and the BSDs report it)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _fd, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _report(args: argparse.Namespace, text: str) -> None:
    """The one sentence a failed command ends with: plain on stderr, or with ``--log-format
    json`` a log entry like every other line, so collectors never see a line they cannot
    parse."""
    if args.log_format == "json":
        log.error("%s", text)
    else:
        print(f"mailhelper: {text}", file=sys.stderr)


def _dispatch(args: argparse.Namespace) -> int:
    verb = args.verb
    if verb == "explain":
        return cmd_explain(args)
    if verb == "demo":
        from mailhelper.cli.demo import run_demo

        return run_demo(keep=args.keep)
    if verb == "state":
        return cmd_state_copy(args)
    if verb == "check":
        from mailhelper.cli.check import run_check

        return run_check(lambda: load(args), sys.stdout)
    if getattr(args, "config_dir", None) is not None:
        return _dispatch_folder(args)
    settings = load(args)
    if verb == "status":
        return cmd_status(settings, args.json, getattr(args, "ics", False))
    if verb == "poll":
        return cmd_poll(settings, args)
    if verb == "run":
        return cmd_run(settings, args)
    raise ConfigError([f"unknown command {verb}"])


def _dispatch_folder(args: argparse.Namespace) -> int:
    """``run``, ``poll --once`` or ``status`` with ``--config-dir``."""
    if args.config is not None:
        raise ConfigError(["--config and --config-dir exclude each other: one file, or a "
                           "folder of them"])
    if getattr(args, "ics", False):
        raise ConfigError(["status --ics shows one assistant: give --config, not --config-dir"])
    if args.verb == "run":
        return cmd_run_folder(args)
    folder = _read_folder(args)
    for name, problem in folder.problems.items():
        log.error("%s is skipped: %s", name, problem)
    if args.verb == "status":
        return cmd_status_folder(folder, args.json)
    return cmd_poll_folder(folder, args)


def _read_folder(args: argparse.Namespace) -> Any:
    from mailhelper.cli.configdir import read_folder

    return read_folder(Path(args.config_dir).expanduser(), os.environ)


def _summary(args: argparse.Namespace, text: str, trouble: bool) -> None:
    """The line a ``--config-dir`` command ends with: on stderr for people, a log entry with
    ``--log-format json``."""
    if args.log_format == "json":
        log.log(logging.WARNING if trouble else logging.INFO, "%s", text)
    else:
        print(f"mailhelper: {text}", file=sys.stderr)


def cmd_poll_folder(folder: Any, args: argparse.Namespace) -> int:
    """One cycle for each assistant, one after the other, each with its own connections and
    state; an error in one (its IMAP server down, its state locked) is reported with its file
    name and the others go on. Exit 0 when at least one completed its cycle, else the first
    failure's code (2 when no file was usable)."""
    done: list[str] = []
    failed: dict[str, MailhelperError | Exception] = {}
    for name, found in folder.assistants.items():
        if args.dry_run:
            print(for_terminal(f"== {name} ({found.settings.assistant.email}) =="))
        try:
            cmd_poll(found.settings, args)
            done.append(name)
        except MailhelperError as exc:
            log.error("%s: %s", name, exc)
            failed[name] = exc
        except Exception as exc:  # one assistant's bug must not stop the others' cycles
            log.exception("%s: unexpected error", name)
            failed[name] = exc
    text = f"--config-dir {folder.path}: {len(done)} of {len(folder.assistants)} assistant(s) " \
           "polled"
    if failed:
        text += f"; failed: {', '.join(failed)}"
    if folder.problems:
        text += f"; skipped (bad file): {', '.join(folder.problems)}"
    _summary(args, text, bool(failed or folder.problems))
    if done:
        return 0
    for first in failed.values():
        return first.exit_code if isinstance(first, MailhelperError) else 1
    return ConfigError.exit_code


def cmd_status_folder(folder: Any, as_json: bool) -> int:
    """Each assistant's status: a section headed by its file name, or with ``--json`` one
    object keyed by file name whose values are each assistant's ``status --json``. A state
    that cannot be read is that assistant's error alone (named on stderr, left out of the
    JSON); exit 0 when at least one was shown."""
    shown: dict[str, Any] = {}
    failed: list[str] = []
    for name, found in folder.assistants.items():
        try:
            if as_json:
                shown[name] = status_object(found.settings)
            else:
                heading = f"== {name} ({found.settings.assistant.email}) =="
                shown[name] = f"{for_terminal(heading)}\n{status_text(found.settings)}"
        except MailhelperError as exc:
            log.error("%s: %s", name, exc)
            failed.append(name)
    if as_json:
        print(json_for_terminal(json.dumps(shown, ensure_ascii=False, indent=2)))
    else:
        sections = list(shown.values())
        sections += [f"== {name}: not shown (see the error above) ==" for name in failed]
        sections += [f"== {name}: skipped ==\n{for_terminal(problem)}"
                     for name, problem in folder.problems.items()]
        print("\n\n".join(sections))
    return 0 if shown else ConfigError.exit_code if not failed else 1


def load(args: argparse.Namespace) -> Any:
    from mailhelper.cli.config import find_config, load_settings

    path = find_config(args.config, os.environ, Path.cwd())
    log.debug("reading the config %s", path)
    return load_settings(path, os.environ)


def parse_now(text: str | None, zone: Any) -> datetime:
    """``--now``: ISO-8601; a time without an offset is read in the configured zone
    (DST-correct: a time in the spring-forward gap moves on by the gap, a time that happens
    twice in autumn is the first one). No ``--now``: the system clock.

        >>> from zoneinfo import ZoneInfo
        >>> parse_now("2026-07-01T09:00", ZoneInfo("Europe/London")).isoformat()
        '2026-07-01T09:00:00+01:00'
    """
    from mailhelper.model.duration import resolve_wall_time

    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError([f'--now: "{text}" is not an ISO-8601 time; write it like '
                           '"2026-12-07T09:00:00+00:00", or without the offset to mean the '
                           "configured timezone"]) from None
    if moment.tzinfo is None:
        moment = resolve_wall_time(moment, zone)
    return moment


def _no_state_yet(settings: Any) -> bool:
    """Whether the state is an SQLite file that does not exist yet."""
    return not settings.state_url and not Path(settings.state).exists()


def _assistant(settings: Any, dry_run: bool = False, holder: Any = None,
               lease: Any = None) -> Any:
    """The assistant on the configured state. A dry run creates nothing: with no state file
    yet it works on an empty in-memory state, and it remembers no template check.

    With a PostgreSQL state and ``holder`` (this process, :class:`~mailhelper.state.lease.Holder`)
    the assistant gets its mailbox's lease: ``lease`` when one is given (kept across a
    reload, bound to the new connection), else a new one, not yet taken."""
    from mailhelper.compose.deferred import renderer_for
    from mailhelper.engine.daemon import Assistant
    from mailhelper.mail.connect import open_imap, open_smtp
    from mailhelper.mail.secrets import state_password
    from mailhelper.state.lease import Lease, mailbox_key, release_quietly
    from mailhelper.state.store import Store

    domain = settings.assistant.email.rpartition("@")[2]
    if dry_run and _no_state_yet(settings):
        store = Store.open(":memory:", domain)
    else:
        store = Store.open(settings.state_location, domain, state_password(settings),
                           assistant=settings.assistant.email)
    if settings.state_url and holder is not None and not dry_run:
        mailbox = mailbox_key(settings.assistant.email)
        if lease is not None and lease.mailbox != mailbox:
            release_quietly(lease)  # a reload that names another assistant
            lease = None
        try:
            if lease is None:
                lease = Lease(store.db, mailbox, holder,
                              settings.lease.approximate.total_seconds(), settings.state_url)
            else:
                lease.db = store.db
                lease.seconds = settings.lease.approximate.total_seconds()
        except BaseException:
            store.close()
            raise
    else:
        lease = None
    return Assistant(
        settings,
        store,
        # A check of the templates that passed is remembered beside the state: a cron poll
        # with nothing to send and nothing changed compiles no template and does not even
        # load the renderer.
        renderer_for(settings, remembered=None if dry_run
                     else Path(f"{settings.state}-templates")),
        lambda: open_imap(settings.imap),
        lambda: open_smtp(settings.smtp),
        lease=lease,
    )


def _holder() -> Any:
    """This process as the leases know it (one per process: its assistants share one fair
    share of the mailboxes)."""
    from mailhelper.state.lease import Holder

    global _HOLDER
    if _HOLDER is None:
        _HOLDER = Holder()
    return _HOLDER


_HOLDER: Any = None


def _take_for_once(assistant: Any) -> None:
    """``poll --once`` on a leased state takes the mailbox's lease for its cycle; another
    process holding it is a clear refusal, never a second reader."""
    lease = assistant.lease
    if lease is None or lease.take():
        return
    info = lease.current()
    who = info.line() if info is not None and info.live else "its lease is held"
    raise StateLockedError(
        f"another mailhelper is reading {lease.mailbox} ({who}); stop it first, or let it "
        "do the work: one assistant per mailbox, or the same mail is answered twice")


def _days(text: str) -> int:
    """``--backfill DAYS``: a whole number of days, at least 1."""
    try:
        days = int(text)
    except ValueError:
        days = 0
    if days < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days (e.g. 30)")
    return days


class _DatabaseLock:
    """A PostgreSQL state needs no lock file: its mailbox's lease in the database says who
    reads it (:mod:`mailhelper.state.lease`); a lock file beside the unused default path would
    refuse a second assistant on this machine with a database of its own."""

    def acquire(self) -> None:
        pass

    def release(self) -> None:
        pass


def _state_lock(settings: Any) -> Any:
    from mailhelper.engine.daemon import StateLock

    return _DatabaseLock() if settings.state_url else StateLock(settings.state)


def cmd_poll(settings: Any, args: argparse.Namespace) -> int:
    now = parse_now(args.now, settings.timezone)
    # A dry run with no state yet has nothing to guard: no lock file is made for it.
    lock = (_DatabaseLock() if args.dry_run and _no_state_yet(settings)
            else _state_lock(settings))
    from mailhelper.state.lease import release_quietly

    lock.acquire()
    try:
        assistant = _assistant(settings, dry_run=args.dry_run, holder=_holder())
        try:
            _take_for_once(assistant)
            backfill = None if args.backfill is None else timedelta(days=args.backfill)
            report = assistant.poll_once(now, dry_run=args.dry_run, backfill=backfill)
        finally:
            release_quietly(assistant.lease)
            # Closed here, not when the process ends: --config-dir polls several assistants
            # in one process, and an open state of one must not outlive its cycle.
            assistant.store.close()
    finally:
        lock.release()
    sent = report.sent
    if args.dry_run:
        for line in report.lines:
            print(for_terminal(_plan_line(line)))
        if not sent.sent:
            print("nothing would be sent")
        return 0
    log.info(
        "cycle at %s: %d read, %d duplicate, %d not understood; sent %d, held %d, "
        "retrying %d, failed %d",
        now.isoformat(), report.read, report.duplicates, report.errors, len(sent.sent),
        len(sent.held), len(sent.retried), len(sent.failed),
        extra=logfields.cycle(report.counts()),
    )
    return 0


def _plan_line(line: str) -> str:
    """A dry run's line for people: a message's reading leads with what it means, and its
    Message-ID, for looking it up, goes last.

        >>> _plan_line("<a1@example.com> answered by jane@example.net")
        'answered by jane@example.net  (Message-ID <a1@example.com>)'
    """
    if line.startswith("<") and "> " in line:
        message_id, _, reading = line[1:].partition("> ")
        return f"{reading}  (Message-ID <{message_id}>)"
    return line


def cmd_run(settings: Any, args: argparse.Namespace) -> int:
    """The daemon: the work runs in a thread; this one waits for signals (synchronously, so
    no handler ever interrupts the work half-way) and turns them into requests."""
    lock = _state_lock(settings)
    lock.acquire()
    stop, reload = threading.Event(), threading.Event()
    current: dict[str, Any] = {"settings": settings}
    failure: list[BaseException] = []

    from mailhelper.state.store import state_name

    def work() -> None:
        lease = None
        try:
            while not stop.is_set():
                reload.clear()
                assistant = _when_reachable(functools.partial(
                    _assistant, current["settings"], holder=_holder(), lease=lease), stop)
                if assistant is None:
                    break
                lease = assistant.lease
                log.info("mailhelper %s running for %s (config %s, state %s)", __version__,
                         ", ".join(o.email for o in current["settings"].owners),
                         current["settings"].source, state_name(current["settings"]))
                _serve_leased(assistant, stop, reload)
        except BaseException as exc:  # handed to the main thread, which reports it
            if not isinstance(exc, MailhelperError):
                log.exception("stopping on an unexpected error")
            failure.append(exc)

    handled = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    # Blocked before the thread starts, so it inherits the mask and only sigtimedwait() below
    # ever receives these signals.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, handled)
    worker = threading.Thread(target=work, name="mailhelper-run")
    try:
        worker.start()
        while worker.is_alive():
            received = signal.sigtimedwait(handled, 0.25)
            if received is None:
                continue
            name = signal.Signals(received.si_signo).name
            if received.si_signo == signal.SIGHUP:
                _reload(args, current, reload)
            elif not stop.is_set():
                log.info("%s: finishing the message in hand, then stopping", name)
                stop.set()
            else:
                # Every commit is a whole message, so leaving now loses nothing.
                log.warning("%s again: stopping at once", name)
                lock.release()
                os._exit(1)
        worker.join()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        lock.release()
    if failure:
        raise failure[0]
    log.info("stopped")
    return 0


def cmd_run_folder(args: argparse.Namespace) -> int:
    """``run --config-dir``: every assistant of the folder in this process, one thread each
    (:class:`mailhelper.cli.fleet.Fleet`); this thread waits for signals as :func:`cmd_run` does.
    SIGTERM/SIGINT stop them all (each finishes the message in hand); SIGHUP reads the folder
    again. Exit 0 when stopped by a signal; 1 when every assistant has stopped on an error."""
    from mailhelper.cli.fleet import Fleet, NameEachLine
    from mailhelper.state.store import state_name

    for handler in logging.getLogger().handlers:
        handler.addFilter(NameEachLine())

    holder = _holder()

    def serve(name: str, settings: Any, stop: threading.Event) -> None:
        lock = _state_lock(settings)
        lock.acquire()
        try:
            while not stop.is_set():
                assistant = _when_reachable(lambda: _assistant(settings, holder=holder), stop)
                if assistant is None:
                    break
                log.info("%s: running for %s (state %s)", name,
                         ", ".join(o.email for o in settings.owners), state_name(settings))
                _serve_leased(assistant, stop, None)
        finally:
            lock.release()

    folder = _read_folder(args)
    if not folder.assistants:
        for name, problem in folder.problems.items():
            log.error("%s is skipped: %s", name, problem)
        raise ConfigError([f"--config-dir {folder.path}: no usable config, nothing to run"])
    handled = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, handled)
    fleet = Fleet(serve)
    try:
        fleet.apply(folder)
        log.info("mailhelper %s running --config-dir %s: %s", __version__, folder.path,
                 folder.summary())
        stopping = False
        while True:
            fleet.reap()
            if not fleet.alive() and (stopping or fleet.failures()):
                break
            received = signal.sigtimedwait(handled, 0.25)
            if received is None:
                continue
            name = signal.Signals(received.si_signo).name
            if received.si_signo == signal.SIGHUP:
                try:
                    folder = _read_folder(args)
                except MailhelperError as exc:
                    log.error("SIGHUP: the folder cannot be read, every assistant keeps "
                              "running as it was: %s", exc)
                    continue
                fleet.apply(folder)
                log.info("SIGHUP: --config-dir %s read again: %s", folder.path,
                         folder.summary())
            elif not stopping:
                log.info("%s: every assistant finishes the message in hand, then stops", name)
                stopping = True
                fleet.stop_all()
            else:
                log.warning("%s again: stopping at once", name)
                os._exit(1)  # the state locks go with the process
        fleet.join()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    if not stopping:
        raise MailhelperError("every assistant of the folder has stopped (see the errors "
                              "above); fix them and start again")
    log.info("stopped")
    return 0


def _when_reachable(make: Any, stop: threading.Event) -> Any:
    """``make()`` (an assistant on its state) for the daemon: while the state's database
    cannot be reached (down, restarting) it waits and tries again, as for a mail server
    (2, 4, 8 ... s, one log line per change), so an assistant started during an outage starts
    after it; None when ``stop`` comes first."""
    from mailhelper.engine.daemon import Link
    from mailhelper.model.errors import StateUnreachable

    link = Link("the state database")
    while not stop.is_set():
        try:
            made = make()
        except StateUnreachable as exc:
            stop.wait(link.failed(str(exc)))
            continue
        link.works("the assistant starts")
        return made
    return None


def _serve_leased(assistant: Any, stop: threading.Event,
                  reload: threading.Event | None) -> None:
    """Run ``assistant`` until ``stop`` (or ``reload``), then close its state. Its lease, if
    any, is let go on a stop or an error (so another process takes the mailbox at once) and
    kept over a reload."""
    from mailhelper.state.lease import release_quietly

    try:
        try:
            assistant.run(lambda: datetime.now(UTC), stop, reload)
        except BaseException:
            release_quietly(assistant.lease)
            raise
        if stop.is_set():
            release_quietly(assistant.lease)
    finally:
        assistant.store.close()


def _reload(args: argparse.Namespace, current: dict[str, Any], reload: threading.Event) -> None:
    """SIGHUP: read the config again; a config with problems is refused and the old one kept."""
    from mailhelper.state.store import state_name

    old = current["settings"]
    try:
        new = load(args)
    except MailhelperError as exc:
        log.error("SIGHUP: the new config is refused and the old one stays in use: %s", exc)
        return
    if new.state_location != old.state_location:
        log.error("SIGHUP: the new config is refused and the old one stays in use: state: "
                  "%s cannot change while running (it is %s); restart mailhelper to move it",
                  state_name(new), state_name(old))
        return
    current["settings"] = new
    reload.set()
    log.info("SIGHUP: config %s reloaded; reconnecting with it", new.source)


def cmd_status(settings: Any, as_json: bool, as_ics: bool = False) -> int:
    if as_json and not _has_state(settings):
        print(json.dumps({"threads": []}))
    elif as_json:
        print(json_for_terminal(json.dumps(status_object(settings), ensure_ascii=False,
                                           indent=2)))
    else:
        shown = status_text(settings, as_ics)
        sys.stdout.write(shown) if as_ics else print(shown)
    return 0


def _has_state(settings: Any) -> bool:
    """Whether there is a state to show (a database always is; a file once made)."""
    return settings.state_url is not None or Path(settings.state).exists()


def _open_for_status(settings: Any) -> Any:
    """The store for ``status``, or None when the state file does not exist yet."""
    from mailhelper.mail.secrets import state_password
    from mailhelper.state.store import Store

    if not _has_state(settings):
        return None
    return Store.open(settings.state_location, settings.assistant.email.rpartition("@")[2],
                      state_password(settings), assistant=settings.assistant.email)


def status_object(settings: Any) -> dict[str, Any]:
    """``status --json`` of one assistant: ``{"threads": [...]}`` (and its watch, pauses)."""
    from mailhelper.cli.status import pause_json, status_json, watch_json

    store = _open_for_status(settings)
    if store is None:
        return {"threads": []}
    try:
        shown: dict[str, Any] = status_json(store)
        if settings.watches:
            shown["watch"] = watch_json(store, settings)
        pauses = pause_json(store)
        if pauses:
            shown["pauses"] = pauses
        if settings.state_url:
            shown["state"] = _state_json(settings)
            info = _lease_info(store, settings)
            shown["lease"] = None if info is None else info.to_json()
        return shown
    finally:
        store.close()


def _state_json(settings: Any) -> dict[str, str]:
    """Where a PostgreSQL state is: the database (no password) and the assistant's schema."""
    from mailhelper.state.sqldriver import redact

    return {"database": redact(settings.state_url), "schema": settings.state_schema}


def _lease_info(store: Any, settings: Any) -> Any:
    """Who holds the assistant's mailbox (a PostgreSQL state), as the database has it."""
    from mailhelper.state.lease import lease_of, mailbox_key

    return lease_of(store.db, mailbox_key(settings.assistant.email))


def _lease_line(store: Any, settings: Any) -> str | None:
    """``status``'s line about the lease: who reads the mailbox, until when (None: a file)."""
    if not settings.state_url:
        return None
    info = _lease_info(store, settings)
    return "lease: nobody has taken it yet" if info is None else str(info.line())


def status_text(settings: Any, as_ics: bool = False) -> str:
    """``status`` (the table, for people) or ``status --ics`` of one assistant."""
    from mailhelper.cli.status import status_table
    from mailhelper.compose.ics import calendar
    from mailhelper.engine.agenda import status_ics

    stamp = datetime.now(UTC)  # DTSTAMP: when the calendar is written (the edge's clock)
    store = _open_for_status(settings)
    if store is None:
        if as_ics:
            return str(calendar([], stamp, settings.assistant.email))
        return "No threads yet: nothing is being tracked."
    try:
        if as_ics:
            return str(status_ics(store, settings, stamp))
        table = status_table(store, settings)
        if settings.state_url:
            from mailhelper.state.store import state_name

            table += f"\n\nState: {state_name(settings)}"
        lease = _lease_line(store, settings)
        return str(for_terminal(table if lease is None else f"{table}\n{lease}"))
    finally:
        store.close()


def cmd_state_copy(args: argparse.Namespace) -> int:
    from mailhelper.cli.statecopy import copy_state
    from mailhelper.state.sqldriver import redact

    copied = copy_state(args.source, args.destination,
                        progress=lambda line: print(f"mailhelper: {line}", file=sys.stderr),
                        assistant=args.assistant)
    print(f"copied {copied.total} rows in {len(copied.rows)} tables; point `state` at "
          f"{redact(args.destination)} and start mailhelper")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from mailhelper.cli.explain import explain_file

    settings = None
    try:
        settings = load(args)
    except ConfigError as exc:
        if args.config:
            raise
        print(f"mailhelper: no usable config ({exc.problems[0]}); reading the message as if "
              "nobody were an owner", file=sys.stderr)
    now = parse_now(args.now, settings.timezone if settings else UTC)
    reading = explain_file(Path(args.file), settings, now)
    if args.json:
        print(json_for_terminal(json.dumps(reading.as_json(), ensure_ascii=False, indent=2)))
    else:
        print(for_terminal(reading.summary()))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
