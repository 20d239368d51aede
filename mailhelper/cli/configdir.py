"""``--config-dir DIR``: every ``*.yaml`` in DIR is an assistant of its own (its mailbox,
owners, schedules and state), served by one process.

This module reads the folder; the command line runs what it found. A file that cannot be used
is a problem named with its path and line (the config's own sentence), never a reason to stop
the others. Two files naming the same state are refused: one state is one assistant's (a
second reading the same rows would answer the same mail twice); the first file by name keeps
it, the later one is refused. Several files may name one PostgreSQL database: each assistant's
state is a schema of its own there (named after its address), so only two files of the same
assistant address on one database are the same state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailhelper.model.errors import ConfigError


@dataclass(frozen=True)
class Found:
    """One assistant's config, and a fingerprint of its file (a changed file is a restart)."""

    settings: Any
    fingerprint: str


@dataclass(frozen=True)
class Folder:
    """What the folder holds: the usable configs and the problems, each keyed by file name
    (``a.yaml``), in name order."""

    path: Path
    assistants: dict[str, Found] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """The folder's line, e.g. ``2 assistants (a.yaml, b.yaml); 1 file skipped
        (c.yaml)``."""
        text = f"{len(self.assistants)} assistant(s) ({', '.join(self.assistants) or 'none'})"
        if self.problems:
            text += f"; {len(self.problems)} file(s) skipped ({', '.join(self.problems)})"
        return text


def config_files(folder: Path) -> list[Path]:
    """The ``*.yaml`` files in ``folder``, by name; ConfigError when it is not a folder."""
    if not folder.is_dir():
        raise ConfigError([f"--config-dir names {folder}, which is not a folder"])
    return sorted(p for p in folder.glob("*.yaml") if p.is_file())


def _state_key(settings: Any) -> str:
    """What one state is: a file (by its real path), or an assistant's schema in a database
    (several assistants share a database, each in its own schema)."""
    location = settings.state_location
    if isinstance(location, str):
        return f"{location} {settings.state_schema}"
    return str(Path(location).resolve())


def read_folder(folder: Path, environ: Mapping[str, str]) -> Folder:
    """Load every config in ``folder``; ConfigError only when there is no folder or no
    ``*.yaml`` in it (each bad file is a problem of the result instead)."""
    from mailhelper.cli.config import load_settings

    files = config_files(folder)
    if not files:
        raise ConfigError([f"--config-dir {folder} has no *.yaml file; put one config per "
                           "assistant there"])
    found = Folder(folder.resolve())
    owners: dict[str, str] = {}
    for path in files:
        try:
            fingerprint = hashlib.sha256(path.read_bytes()).hexdigest()
            settings = load_settings(path.resolve(), environ)
        except ConfigError as exc:
            found.problems[path.name] = "; ".join(exc.problems)
            continue
        except OSError as exc:
            found.problems[path.name] = f"{path}: cannot be read ({exc.strerror or exc})"
            continue
        key = _state_key(settings)
        if key in owners:
            from mailhelper.state.store import state_name

            found.problems[path.name] = (
                f"{path}: state: {state_name(settings)} is {owners[key]}'s state too; each "
                "assistant needs a state of its own (two on one state would answer the same "
                "mail twice): give this one its own `state`")
            continue
        owners[key] = path.name
        found.assistants[path.name] = Found(settings, fingerprint)
    return found
