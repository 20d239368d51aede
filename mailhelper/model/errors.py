"""The small tree of errors that the command line (:mod:`mailhelper.cli.main`) turns into one
sentence and an exit code."""

from __future__ import annotations


class MailhelperError(Exception):
    """Base of every error mailhelper reports to a person."""

    exit_code = 1


class ConfigError(MailhelperError):
    """The config file is missing or wrong; ``problems`` lists each one with its key and line."""

    exit_code = 2

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        if len(self.problems) > 1:
            text = f"{len(self.problems)} problems in the config:\n  " + "\n  ".join(self.problems)
        else:
            text = "".join(self.problems)
        super().__init__(text)


class SecretError(MailhelperError):
    """A password could not be read from its env variable, file or command."""

    exit_code = 2


class ConnectError(MailhelperError):
    """A mail server could not be reached or refused the login."""

    exit_code = 3


class StateError(MailhelperError):
    """The state cannot be read or written: a full disk, a folder without permission, a file
    locked, damaged or of a schema this version does not know. The store raises it for any
    error of its database driver (the driver's error is its ``__cause__``), so the rest of the
    program stops a cycle on it without knowing which database holds the state. Nothing of the
    work in hand was committed: it is done again next time."""


class StateUnreachable(StateError):
    """The state's database server cannot be reached (down, restarting, cut off): a daemon
    waits for it as for a mail server; a one-off command reports it."""


class LeaseLost(StateError):
    """This process no longer holds the lease on the mailbox (it expired, another process took
    it over, or it was let go to spread the work): what was being written is rolled back, and
    the assistant stops reading that mailbox and waits to take the lease again. Never a fault
    of the message in hand."""


class StateLockedError(MailhelperError):
    """Another mailhelper process holds the state file."""

    exit_code = 4
