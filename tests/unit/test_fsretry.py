"""Replacing and removing files others hold open: retried briefly, then named in the error.

A sharing violation cannot be produced on Linux, so the retry loop is driven by a failure that
is real on every platform: a directory standing where the file goes, which a helper thread
clears once the first attempt has failed. On Windows the real thing is tested too.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dhash_console.errors import FileInUse, OperationFailed
from dhash_console.fsretry import replace_retrying, sharing_violation, unlink_retrying


def block_with_a_directory(path: Path) -> None:
    """A non-empty directory where a file should be: replace and unlink of it fail for real
    (IsADirectoryError on Linux, PermissionError on macOS and Windows)."""
    path.mkdir()
    (path / "inside").write_text("x")


def in_the_way(exc: OSError) -> bool:
    return isinstance(exc, (IsADirectoryError, PermissionError))


class Clearer:
    """Stands in for the other process: lets go of `path` once an attempt has failed. The
    retry waits for it to be done, so the next attempt meets the cleared state (no race)."""

    def __init__(self, path: Path, then: Callable[[], None] = lambda: None) -> None:
        self.failures: list[OSError] = []
        self.failed = threading.Event()
        self.cleared = threading.Event()
        self.thread = threading.Thread(target=self._clear, args=(path, then))

    def _clear(self, path: Path, then: Callable[[], None]) -> None:
        if self.failed.wait(30) and path.is_dir():
            shutil.rmtree(path)
            then()
        self.cleared.set()

    def transient(self, exc: OSError) -> bool:
        self.failures.append(exc)
        self.failed.set()
        self.cleared.wait(30)
        return in_the_way(exc)


@pytest.fixture
def clearer_for(tmp_path: Path) -> Iterator[Callable[..., Clearer]]:
    made: list[Clearer] = []

    def make(path: Path, then: Callable[[], None] = lambda: None) -> Clearer:
        clearer = Clearer(path, then)
        clearer.thread.start()
        made.append(clearer)
        return clearer

    yield make
    for clearer in made:
        clearer.failed.set()
        clearer.thread.join(30)


def test_a_replace_is_retried_until_the_file_is_let_go(
    tmp_path: Path, clearer_for: Callable[..., Clearer]
) -> None:
    src, dst = tmp_path / "service.json.tmp", tmp_path / "service.json"
    src.write_text("new")
    block_with_a_directory(dst)
    clearer = clearer_for(dst)
    replace_retrying(src, dst, wait_s=30, transient=clearer.transient)
    assert clearer.failures and all(in_the_way(e) for e in clearer.failures)  # failed for real
    assert dst.read_text() == "new" and not src.exists()


def test_a_removal_is_retried_until_the_file_is_let_go(
    tmp_path: Path, clearer_for: Callable[..., Clearer]
) -> None:
    path = tmp_path / "dhash.sqlite3-wal"
    block_with_a_directory(path)
    clearer = clearer_for(path, then=lambda: path.write_text("wal"))
    unlink_retrying(path, wait_s=30, transient=clearer.transient)
    assert clearer.failures and not path.exists()


def test_giving_up_names_the_file_in_use_and_loses_nothing(tmp_path: Path) -> None:
    src, dst = tmp_path / "new.sqlite3", tmp_path / "dhash.sqlite3"
    src.write_text("new")
    block_with_a_directory(dst)
    with pytest.raises(FileInUse) as replaced:
        replace_retrying(src, dst, wait_s=0.05, transient=in_the_way)
    assert isinstance(replaced.value, OperationFailed)  # exit 1: the refused call changed nothing
    message = str(replaced.value)
    assert "in use by another process" in message and str(dst) in message and str(src) in message
    assert src.read_text() == "new" and (dst / "inside").exists()

    with pytest.raises(FileInUse, match="in use by another process") as removed:
        unlink_retrying(dst, wait_s=0.05, transient=in_the_way)
    assert f"cannot remove {dst}:" in str(removed.value)


@pytest.mark.skipif(os.name == "nt", reason="POSIX policy")
def test_on_posix_a_permission_error_is_real_and_surfaces_at_once(tmp_path: Path) -> None:
    # A rename or unlink never fails on POSIX because a file is open: nothing to wait for.
    assert not sharing_violation(PermissionError(errno.EACCES, "Permission denied"))
    assert not sharing_violation(PermissionError(errno.EPERM, "Operation not permitted"))
    src, dst = tmp_path / "a", tmp_path / "b"
    src.write_text("a")
    block_with_a_directory(dst)
    with pytest.raises(OSError) as raised:
        replace_retrying(src, dst)  # the default policy: not a sharing violation here
    assert not isinstance(raised.value, FileInUse)


@pytest.mark.skipif(os.name != "nt", reason="sharing violations exist on Windows only")
def test_on_windows_a_file_held_open_is_waited_for_then_named(tmp_path: Path) -> None:
    held = tmp_path / "service.json"
    held.write_text("old")
    src = tmp_path / "service.json.tmp"
    src.write_text("new")
    with held.open("rb"):  # Python opens without FILE_SHARE_DELETE
        with pytest.raises(FileInUse, match="in use by another process"):
            replace_retrying(src, held, wait_s=0.2)
        with pytest.raises(FileInUse, match="in use by another process"):
            unlink_retrying(held, wait_s=0.2)
    replace_retrying(src, held)  # let go: it goes through
    assert held.read_text() == "new"
