"""Replacing and removing files that another process may have open.

On Windows a file another process has open (most programs open files without
FILE_SHARE_DELETE) can be neither replaced nor removed until it is closed: the call fails with
a sharing violation, which Python raises as PermissionError. Readers hold such files for
milliseconds (the console reading `service.json`, an acquirer judging a lock), so a brief retry
is enough; past it, FileInUse names the file instead of a bare PermissionError.

On POSIX a rename or an unlink never fails because a file is open, so a PermissionError there
is a real permission problem: it surfaces at once, unretried.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from dhash_console.errors import FileInUse

WAIT_S = 1.0
# ERROR_ACCESS_DENIED (a file open without FILE_SHARE_DELETE, or whose deletion is pending),
# ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION.
_SHARING_WINERRORS = frozenset({5, 32, 33})


def sharing_violation(exc: OSError) -> bool:
    """Whether `exc` can be another process holding the file open (Windows only)."""
    return (
        os.name == "nt"
        and isinstance(exc, PermissionError)
        and getattr(exc, "winerror", None) in _SHARING_WINERRORS
    )


def _retrying(
    action: Callable[[], None],
    in_use: str,
    wait_s: float,
    transient: Callable[[OSError], bool],
) -> None:
    deadline = time.monotonic() + wait_s
    pause = 0.005
    while True:
        try:
            action()
            return
        except OSError as exc:
            if not transient(exc):
                raise
            if time.monotonic() >= deadline:
                raise FileInUse(
                    f"{in_use} (still refused after {wait_s:g} s): "
                    "close what holds it open and try again"
                ) from exc
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def replace_retrying(
    src: Path,
    dst: Path,
    *,
    wait_s: float = WAIT_S,
    transient: Callable[[OSError], bool] = sharing_violation,
) -> None:
    """`os.replace(src, dst)`, retried while another process holds either file open."""
    _retrying(
        lambda: os.replace(src, dst),
        f"cannot replace {dst} with {src}: one of them is in use by another process",
        wait_s,
        transient,
    )


def unlink_retrying(
    path: Path,
    *,
    missing_ok: bool = False,
    wait_s: float = WAIT_S,
    transient: Callable[[OSError], bool] = sharing_violation,
) -> None:
    """`path.unlink()`, retried while another process holds the file open."""
    _retrying(
        lambda: path.unlink(missing_ok=missing_ok),
        f"cannot remove {path}: it is in use by another process",
        wait_s,
        transient,
    )
