"""The renderer a process gets at start-up: checked now when its check is due, else loaded
only when first used (:func:`renderer_for`), so a cycle that makes no mail never imports the
rendering code or Jinja2.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from mailhelper.compose.templatecheck import (
    check_digest,
    check_overrides,
    default_sources,
    remembered_check,
)
from mailhelper.model.settings import Settings

if TYPE_CHECKING:
    from mailhelper.compose.render import Renderer


def renderer_for(settings: Settings, remembered: Path | None) -> Renderer:
    """The :class:`~mailhelper.compose.render.Renderer` for ``settings``, checked as its
    constructor checks it: now, unless ``remembered`` holds a passed check of these settings,
    templates and code. Then the renderer itself is loaded (and built) only when something
    uses it: a cycle that makes no mail never imports the rendering code or Jinja2. A
    problem of the overrides (not a folder, an unknown template name) is raised now either
    way, as the constructor raises it."""
    if remembered is not None:
        defaults = default_sources()
        overrides: tuple[Path, ...] = ()
        if settings.templates_dir is not None:
            overrides = check_overrides(Path(settings.templates_dir).expanduser(), defaults)
        if remembered_check(remembered, check_digest(settings, defaults, overrides)):
            return cast("Renderer", _Deferred(settings, remembered))
    from mailhelper.compose.render import Renderer

    return Renderer(settings, remembered)


class _Deferred:
    """Stands for a :class:`~mailhelper.compose.render.Renderer` whose check passed before:
    the first use of any of its attributes builds it (finding that check remembered)."""

    def __init__(self, settings: Settings, remembered: Path) -> None:
        self._settings = settings
        self._remembered = remembered
        self._real: Renderer | None = None

    def __getattr__(self, name: str) -> Any:
        if self._real is None:
            from mailhelper.compose.render import Renderer

            self._real = Renderer(self._settings, self._remembered)
        return getattr(self._real, name)
