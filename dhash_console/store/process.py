"""Is a process alive, and which host are we: what lock and history use to spot the dead.

A lock or a running rollout is judged stale only when its owner was on this host and its
process is gone. POSIX asks with signal 0; Windows opens the process and reads its exit code.
"""

from __future__ import annotations

import getpass
import os
import socket
import sys


def this_host() -> str:
    """The name this host writes as owner of locks and rollouts (as the engine does)."""
    return socket.gethostname()


def operator_identity() -> str:
    """Who runs this: user@host, as journaled, notified and written into migration history."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{this_host()}"


def pid_alive(pid: int) -> bool:
    """True while a process with this id exists (a zombie counts as alive, as the OS says).

    Non-positive ids are never alive: `os.kill(0, 0)` would ask about our own process group.
    """
    if pid <= 0:
        return False
    if sys.platform == "win32":
        return _pid_alive_windows(pid)
    return _pid_alive_posix(pid)


def _pid_alive_posix(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # EPERM: it exists but belongs to someone else
    except OverflowError:
        return False  # no such pid can exist
    return True


def _pid_alive_windows(pid: int) -> bool:  # pragma: no cover - exercised on Windows only
    import ctypes
    from ctypes import wintypes

    process_query_limited_information = 0x1000
    still_active = 259
    error_access_denied = 5

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    kernel32.OpenProcess.restype = wintypes.HANDLE
    kernel32.OpenProcess.argtypes = (wintypes.DWORD, wintypes.BOOL, wintypes.DWORD)
    kernel32.GetExitCodeProcess.argtypes = (wintypes.HANDLE, ctypes.POINTER(wintypes.DWORD))
    kernel32.CloseHandle.argtypes = (wintypes.HANDLE,)

    handle = kernel32.OpenProcess(process_query_limited_information, False, pid)
    if not handle:
        # Access denied means the process exists; anything else (invalid parameter) means not.
        return bool(ctypes.get_last_error() == error_access_denied)  # type: ignore[attr-defined]
    try:
        code = wintypes.DWORD()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True  # it exists; we could not read its state, so do not call it dead
        return code.value == still_active
    finally:
        kernel32.CloseHandle(handle)
