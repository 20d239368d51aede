"""The state holds mail excerpts and addresses: a new state folder is 0700, a new state file and
its -wal/-shm siblings 0600; what the user made keeps its mode, with a warning when the file is
readable by others."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailhelper.engine.daemon import StateLock
from mailhelper.state.store import Store


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask of most desktops and servers, which by itself gives 0755 and 0644."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_state_folder_and_file_are_private_and_so_are_wal_and_shm(tmp_path: Path) -> None:
    path = tmp_path / "state" / "mailhelper" / "state.db"
    store = Store.open(path, "example.com")
    try:
        with store.transaction():
            store.set_meta("probe", "1")  # a write, so the -wal and -shm files exist
        assert mode(path.parent) == 0o700
        assert mode(path) == 0o600
        siblings = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
        assert all(p.exists() for p in siblings)
        assert [mode(p) for p in siblings] == [0o600, 0o600]
    finally:
        store.close()


def test_the_lock_made_first_makes_the_folder_private_too(tmp_path: Path) -> None:
    """poll and run take the lock before they open the store: whichever comes first creates
    the folder, and it is private either way."""
    path = tmp_path / "new" / "state.db"
    lock = StateLock(path)
    lock.acquire()
    try:
        assert mode(path.parent) == 0o700
        Store.open(path, "example.com").close()
        assert mode(path) == 0o600
    finally:
        lock.release()


def test_a_folder_the_user_made_keeps_its_mode(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o750)
    folder.chmod(0o750)
    Store.open(folder / "state.db", "example.com").close()
    assert mode(folder) == 0o750
    assert mode(folder / "state.db") == 0o600


def test_a_state_file_others_can_read_is_left_alone_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    path = tmp_path / "state.db"
    Store.open(path, "example.com").close()
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="mailhelper.state.store"):
        Store.open(path, "example.com").close()
    assert mode(path) == 0o644
    [record] = [r for r in caplog.records if "state file" in r.getMessage()]
    assert "can be read by other users (mode 0644)" in record.getMessage()
    assert f"chmod 600 {path}" in record.getMessage()
    caplog.clear()
    path.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="mailhelper.state.store"):
        Store.open(path, "example.com").close()
    assert not [r for r in caplog.records if "state file" in r.getMessage()]
