"""Read a password or an OAuth2 token at the moment of logging in, and never show it.

The config only says *where* a secret is (:class:`~mailhelper.model.settings.Secret`); this module
reads it, as late as possible, so it never sits in the settings, a repr or a traceback. Every
error names the place (variable, file, command) and what to do, never the value or any output
of the command, since that output may be the secret itself or half of it.

    >>> resolve(Secret(env="IMAP_PASSWORD"), "imap", environ={"IMAP_PASSWORD": "s3cret"})
    's3cret'
"""

from __future__ import annotations

import logging
import os
import shlex
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from mailhelper.model.errors import SecretError
from mailhelper.model.settings import Secret, Settings

__all__ = ["COMMAND_TIMEOUT", "oauth2_token", "resolve"]

log = logging.getLogger(__name__)

COMMAND_TIMEOUT: Final = 30.0
"""Seconds a password or token command may take; a hung keyring prompt must not hang the daemon."""


def resolve(secret: Secret, what: str, *, environ: Mapping[str, str] | None = None) -> str:
    """The password ``secret`` points at; raise SecretError saying how to fix it.

    ``what`` names the account in messages ("imap", "smtp"). Sources, one per Secret (the
    config allows only one): ``env`` (variable from ``environ``, default ``os.environ``),
    ``file`` (contents, less one trailing newline; a file other users can read is used but
    logged as a warning), ``cmd`` (run without a shell, stdout stripped). An empty result is
    an error: no server takes an empty password, and it is almost always a missing setting.

        >>> resolve(Secret(), "smtp")
        Traceback (most recent call last):
        ...
        mailhelper.model.errors.SecretError: smtp: no password configured; set password_env, \
password_file or password_cmd
    """
    env = os.environ if environ is None else environ
    if secret.env:
        return _from_env(secret.env, what, env)
    if secret.file:
        return _from_file(secret.file, what)
    if secret.cmd:
        return _run(secret.cmd, f"{what}: password_cmd")
    raise SecretError(
        f"{what}: no password configured; set password_env, password_file or password_cmd"
    )


def oauth2_token(cmd: str, what: str = "oauth2_token_cmd") -> str:
    """A fresh OAuth2 access token: the stripped stdout of ``cmd`` (run without a shell).

    Called at each login, since access tokens live about an hour and the command (e.g.
    ``oama access helper@example.com``) knows how to refresh one.

        >>> oauth2_token("echo ya29.a0AfB_byC")  # as `oama access helper@example.com` prints
        'ya29.a0AfB_byC'
    """
    return _run(cmd, what)


def _from_env(name: str, what: str, environ: Mapping[str, str]) -> str:
    value = environ.get(name)
    if value is None:
        raise SecretError(
            f"{what}: the environment variable {name} is not set; set it to the password "
            f"(e.g. in the service's environment file) or use password_file / password_cmd"
        )
    if not value:
        raise SecretError(f"{what}: the environment variable {name} is empty; set it to the "
                          "password")
    return value


def _from_file(path: Path, what: str) -> str:
    try:
        mode = path.stat().st_mode
        raw = path.read_bytes()
    except OSError as exc:
        raise SecretError(f"{what}: cannot read password_file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        # Refusing would break setups that already work (a group-readable secrets mount, say);
        # a warning on each login makes the risk visible without taking the service down.
        log.warning("%s: password_file %s can be read by other users (mode %s); "
                    "run: chmod 600 %s", what, path, oct(stat.S_IMODE(mode)), path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError(f"{what}: password_file {path} is not UTF-8 text") from None
    # Only one newline goes: editors add one, but other whitespace may be part of the password.
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if not text:
        raise SecretError(f"{what}: password_file {path} is empty")
    return text


def _run(cmd: str, what: str) -> str:
    """stdout of ``cmd``, stripped. Errors name the command, never its stdout or stderr."""
    try:
        argv = shlex.split(cmd)
    except ValueError as exc:
        raise SecretError(f"{what}: cannot split {cmd!r} into words: {exc}") from None
    if not argv:
        raise SecretError(f"{what}: the command is empty")
    try:
        # No shell: the command line is the user's, but nothing in it should be expanded twice,
        # and stdin is closed so a command that prompts fails instead of waiting forever.
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise SecretError(f"{what}: command not found: {argv[0]} (in {cmd!r})") from None
    except PermissionError:
        raise SecretError(f"{what}: cannot run {argv[0]}: permission denied") from None
    except subprocess.TimeoutExpired:
        raise SecretError(
            f"{what}: {cmd!r} did not finish within {COMMAND_TIMEOUT:.0f} seconds "
            "(does it wait for input?)"
        ) from None
    except OSError as exc:
        raise SecretError(f"{what}: cannot run {cmd!r}: {exc.strerror}") from None
    if done.returncode != 0:
        raise SecretError(
            f"{what}: {cmd!r} failed with exit status {done.returncode}; "
            "run it yourself to see why (its output is not shown, as it may hold the secret)"
        )
    try:
        value = done.stdout.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SecretError(f"{what}: {cmd!r} printed something that is not UTF-8 text") from None
    if not value:
        raise SecretError(f"{what}: {cmd!r} printed nothing")
    return value


def state_password(settings: Settings) -> str | None:
    """The PostgreSQL password from ``state_password_env``, read now; None when the config
    names none (libpq then finds one: ``PGPASSWORD``, ``~/.pgpass``)."""
    if settings.state_url is None or settings.state_password is None:
        return None
    return resolve(settings.state_password, "state_password_env")
