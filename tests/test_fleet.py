"""The fleet of ``run --config-dir`` on its own: which assistants run after each reading of the
folder (start, stop, restart, keep the old config of a file gone bad), with a serving function
that only records its runs and waits for its stop (no mail is involved at this level)."""

from __future__ import annotations

import threading
from pathlib import Path

from mailhelper.cli.configdir import Folder, Found
from mailhelper.cli.fleet import Fleet


class Recorder:
    def __init__(self) -> None:
        self.started: list[tuple[str, str]] = []
        self.stopped: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def serve(self, name: str, settings: object, stop: threading.Event) -> None:
        with self.lock:
            self.started.append((name, str(settings)))
        if settings == "fails":
            raise RuntimeError("a bug in this assistant alone")
        assert stop.wait(10), "never asked to stop"
        with self.lock:
            self.stopped.append((name, str(settings)))


def folder(problems: dict[str, str] | None = None, **configs: str) -> Folder:
    return Folder(Path("/configs"), {f"{n}.yaml": Found(v, v) for n, v in configs.items()},
                  dict(problems or {}))


def settle(fleet: Fleet) -> None:
    """Wait for the threads asked to stop to end, and let what waited for them start."""
    while True:
        for running in list(fleet._running.values()):
            if running.stop.is_set():
                running.thread.join(10)
        fleet.reap()
        if not fleet._waiting:
            return


def test_new_files_start_removed_ones_stop_and_changed_ones_restart() -> None:
    seen = Recorder()
    fleet = Fleet(seen.serve)
    fleet.apply(folder(a="a1", b="b1"))
    settle(fleet)
    assert sorted(fleet.alive()) == ["a.yaml", "b.yaml"]

    fleet.apply(folder(a="a2", c="c1"))  # a changed, b removed, c new
    settle(fleet)
    assert sorted(fleet.alive()) == ["a.yaml", "c.yaml"]
    assert ("b.yaml", "b1") in seen.stopped and ("a.yaml", "a1") in seen.stopped
    assert ("a.yaml", "a2") in seen.started

    # a file gone bad: its assistant goes on with the old config
    fleet.apply(folder({"a.yaml": "a.yaml:3: bad"}, c="c1"))
    settle(fleet)
    assert sorted(fleet.alive()) == ["a.yaml", "c.yaml"]
    assert ("a.yaml", "a2") not in seen.stopped

    fleet.stop_all()
    fleet.join(10)
    assert fleet.alive() == []
    assert {("a.yaml", "a2"), ("c.yaml", "c1")} <= set(seen.stopped)


def test_one_assistant_failing_leaves_the_others_running_and_sighup_retries_it() -> None:
    seen = Recorder()
    fleet = Fleet(seen.serve)
    fleet.apply(folder(a="fails", b="b1"))
    fleet._running["a.yaml"].thread.join(10)
    assert fleet.alive() == ["b.yaml"]
    assert [str(e) for e in fleet.failures()] == ["a bug in this assistant alone"]

    fleet.apply(folder(a="fails", b="b1"))  # read again: the failed one is started again
    settle(fleet)
    fleet._running["a.yaml"].thread.join(10)
    assert seen.started.count(("a.yaml", "fails")) == 2
    fleet.stop_all()
    fleet.join(10)
