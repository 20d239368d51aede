"""The shape of the package (docs/ARCHITECTURE.md): every module sits in one layer, the
import contracts of pyproject.toml hold, and no modules import each other in a circle.

The contracts run in ``scripts/test`` as ``lint-imports`` too; here they also run under a bare
``pytest``, with the import graph import-linter builds (grimp).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("cli", "engine", "state", "mail", "compose", "decide", "read", "model")
#: Modules outside the layers: the package itself and ``python -m mailhelper``.
OUTSIDE = {"mailhelper", "mailhelper.__main__", "mailhelper.templates"}
#: Circles known and being removed elsewhere; each entry says by whom. A circle not listed
#: fails; a listed one that is gone does not (delete its entry then). None today: parse <->
#: forwards went with read/mailtext.py.
KNOWN_CIRCLES: set[frozenset[str]] = set()


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("mailhelper")


def test_every_module_sits_in_a_layer(graph: grimp.ImportGraph) -> None:
    stray = sorted(m for m in graph.modules
                   if m not in OUTSIDE and m.split(".")[1] not in LAYERS)
    assert stray == [], f"modules in no layer (move them into one): {stray}"


def test_no_modules_import_each_other_in_a_circle(graph: grimp.ImportGraph) -> None:
    circles = [c for c in _strongly_connected(graph) if len(c) > 1]
    unknown = [sorted(c) for c in circles if frozenset(c) not in KNOWN_CIRCLES]
    assert unknown == [], f"modules that import each other in a circle: {unknown}"


def test_the_import_contracts_hold() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint is not None, "import-linter is a test dependency (pyproject.toml)"
    done = subprocess.run([lint, "--no-cache"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def _strongly_connected(graph: grimp.ImportGraph) -> list[set[str]]:
    """Tarjan's strongly connected components of the package's own modules."""
    modules = sorted(m for m in graph.modules if m.startswith("mailhelper"))
    edges = {m: sorted(n for n in graph.find_modules_directly_imported_by(m)
                       if n.startswith("mailhelper")) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in edges.get(module, ()):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.add(top)
                if top == module:
                    break
            out.append(component)

    for module in modules:
        if module not in index:
            visit(module)
    return out
