"""Whether the templates were checked before, without loading the renderer.

A :class:`~mailhelper.compose.render.Renderer` checks every template at start-up (compiles it
and renders a sample mail of each kind), and remembers a check that passed beside the state
(:func:`remember`): the check depends only on the settings, the template sources and the code
(:func:`check_digest`). This module is what that needs and no more: no Jinja2, no rendering
code, so a process with nothing to send can tell whether a check is due without importing
them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.resources
import importlib.util
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from mailhelper.model.errors import MailhelperError
from mailhelper.model.settings import Settings

TEMPLATE_PACKAGE = "mailhelper.templates"


class TemplateProblem(MailhelperError):
    """A template is missing, does not compile, or fails with sample values; names the file
    and line: ``/etc/mh/templates/receipt.txt.j2, line 3: unexpected end of template``."""

    exit_code = 2

    def __init__(self, message: str, template: str | None = None, line: int | None = None):
        self.problem = message
        self.template = template
        self.line = line
        where = template or "templates"
        if line is not None:
            where += f", line {line}"
        super().__init__(f"{where}: {message}")


def check_overrides(folder: Path, defaults: Mapping[str, str]) -> tuple[Path, ...]:
    """The template files in ``folder`` (``templates_dir``), each one a template mailhelper
    uses or a shared part (``_`` first); :class:`TemplateProblem` otherwise."""
    if not folder.is_dir():
        raise TemplateProblem("templates_dir is not a folder", str(folder))
    found = sorted(p for p in folder.iterdir() if p.name.endswith(".j2") and p.is_file())
    for path in found:
        if path.name not in defaults and not path.name.startswith("_"):
            known = ", ".join(sorted(n for n in defaults if not n.startswith("_")))
            raise TemplateProblem(
                f"not a template mailhelper uses (shared parts start with '_'; the "
                f"templates are: {known})",
                str(path),
            )
    return tuple(found)


def check_digest(settings: Settings, defaults: Mapping[str, str],
                 overrides: tuple[Path, ...]) -> str:
    """What a check's outcome depends on, as a hex digest: the settings, the default
    templates and the overrides (names and sources), and :func:`_code_stamp`."""
    checked = hashlib.sha256(repr(settings).encode() + _code_stamp())
    for name, source in sorted(defaults.items()):
        checked.update(name.encode() + b"\0" + source.encode() + b"\0")
    for path in overrides:
        checked.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return checked.hexdigest()


@functools.cache
def _code_stamp() -> bytes:
    """What else a check's outcome depends on: the Python version and the code of mailhelper
    and of Jinja2 (each module's size and modification time)."""
    stamp = [sys.version]
    jinja = importlib.util.find_spec("jinja2")  # where it is, not importing it
    if jinja is not None and jinja.origin:
        stamp.append(jinja.origin)
        jinja_dir = Path(jinja.origin).parent
        for path in sorted(jinja_dir.glob("*.py")):
            with contextlib.suppress(OSError):
                info = path.stat()
                stamp.append(f"jinja2/{path.name} {info.st_size} {info.st_mtime_ns}")
    # The whole package, however deep this module sits in it (parents[N], which a move of
    # this module into a subpackage deepens).
    package = Path(__file__).parents[1]
    for path in sorted(package.rglob("*.py")):
        with contextlib.suppress(OSError):
            info = path.stat()
            stamp.append(f"{path.relative_to(package).as_posix()} {info.st_size} "
                         f"{info.st_mtime_ns}")
    return "\n".join(stamp).encode()


def remembered_check(path: Path | None, digest: str) -> bool:
    """Whether ``path`` remembers a passed check of ``digest``."""
    if path is None:
        return False
    try:
        return path.read_text(encoding="ascii").strip() == digest
    except (OSError, UnicodeError):
        return False


def remember(path: Path | None, digest: str) -> None:
    """Remember a passed check in ``path``, atomically; a file that cannot be written only
    means the next process checks again."""
    if path is None:
        return
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(digest + "\n", encoding="ascii")
        os.replace(partial, path)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink()


def default_sources() -> dict[str, str]:
    """The default templates shipped in :data:`TEMPLATE_PACKAGE`, by file name."""
    root = importlib.resources.files(TEMPLATE_PACKAGE)
    return {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in root.iterdir()
        if entry.name.endswith(".j2") and entry.is_file()
    }
