"""What every benchmark reports: its measures against their goals, as a table and as JSON.

Each script builds a :class:`Report`, adds :class:`Measure` rows and calls :meth:`Report.finish`,
which prints the table (measure, value, goal, met?) and writes ``<results_dir>/<name>.json``
with the machine (CPU model, cores, RAM), Python, Dovecot and library versions and the date.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Measure:
    """One row: ``value`` in ``unit``; ``goal`` is ``("<=", 1.3)`` style or None (reported only)."""

    name: str
    value: float | int | str
    unit: str = ""
    goal: tuple[str, float] | None = None

    @property
    def met(self) -> bool | None:
        if self.goal is None or not isinstance(self.value, int | float):
            return None
        op, limit = self.goal
        return {"<": self.value < limit, "<=": self.value <= limit,
                ">": self.value > limit, ">=": self.value >= limit}[op]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "unit": self.unit,
                "goal": None if self.goal is None else f"{self.goal[0]} {self.goal[1]:g}",
                "met": self.met}


@dataclass
class Report:
    name: str
    parameters: dict[str, Any]
    measures: list[Measure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, value: float | int | str, unit: str = "",
            goal: tuple[str, float] | None = None) -> Measure:
        if isinstance(value, float):  # four significant digits, never rounded to zero
            value = float(f"{value:.4g}")
        measure = Measure(name, value, unit, goal)
        self.measures.append(measure)
        return measure

    def values(self) -> dict[str, float | int | str]:
        """``{measure name: value}``, for callers and tests."""
        return {m.name: m.value for m in self.measures}

    def table(self) -> str:
        rows = [("measure", "value", "goal", "met?")]
        for m in self.measures:
            value = f"{m.value:,}" if isinstance(m.value, int) else str(m.value)
            goal = "" if m.goal is None else f"{m.goal[0]} {m.goal[1]:g} {m.unit}".strip()
            met = {None: "", True: "yes", False: "NO"}[m.met]
            rows.append((m.name, f"{value} {m.unit}".strip(), goal, met))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                 for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.name,
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "parameters": self.parameters,
            "measures": [m.as_json() for m in self.measures],
            "notes": self.notes,
            "environment": environment(),
        }

    def finish(self, results_dir: Path | None = RESULTS_DIR,
               stem: str | None = None) -> Path | None:
        """Print the table (and notes); write the JSON unless ``results_dir`` is None."""
        print(f"\n{self.name}: " + ", ".join(f"{k}={v}" for k, v in self.parameters.items()))
        print(self.table())
        for note in self.notes:
            print(f"  note: {note}")
        if results_dir is None:
            return None
        results_dir.mkdir(parents=True, exist_ok=True)
        path = results_dir / f"{stem or self.name}.json"
        path.write_text(json.dumps(self.as_json(), indent=2) + "\n")
        print(f"  written: {path}")
        return path


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_mb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def _os_name() -> str:
    """The distribution's name (``PRETTY_NAME`` of os-release), else the system's."""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}"


def _dovecot_version() -> str | None:
    from tests.rig.dovecot import find_dovecot

    binary = find_dovecot()
    if binary is None:
        return None
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    return out.stdout.strip() or None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    import sqlite3

    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_mb": _ram_mb(),
        "os": _os_name(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "dovecot": _dovecot_version(),
        "libraries": {p: _version(p) for p in
                      ("mailhelper", "IMAPClient", "Jinja2", "PyYAML", "python-dateutil",
                       "aiosmtpd")},
    }

