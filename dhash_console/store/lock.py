"""One operation at a time per environment: a lock file under `<state_dir>/locks/<env>.lock`.

The file is created atomically and holds who owns it (JSON), so a second operation can say who
is in its way (exit 4). An owner that died does not keep the lock forever: when it was on this
host and its process is gone, the lock is stale and the next acquirer breaks it. An owner on
another host is never judged, since it could be alive. Breaking renames the stale file away
first, so of two breakers only one wins the rename; the winner then creates its own lock like
anyone else.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from dhash_console.errors import LockHeld, UsageError
from dhash_console.fsretry import unlink_retrying
from dhash_console.store.process import pid_alive, this_host

# A lock file that cannot be read is normally one being written right now (the O_EXCL
# fallback writes after creating); only an old one is an abandoned, broken lock.
UNREADABLE_GRACE_S = 5.0
BREAK_GUARD_STALE_S = 10.0
ATTEMPTS = 50  # each lost race costs one; a real fight over one lock ends long before this
_ENV_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class LockHolder:
    env: str
    rollout_id: str
    operation: str
    pid: int
    host: str
    started_at: float

    @classmethod
    def this_process(cls, env: str, rollout_id: str = "", operation: str = "lock") -> LockHolder:
        return cls(env, rollout_id, operation, os.getpid(), this_host(), time.time())

    def describe(self) -> str:
        """Who, where and since when, for messages (times in UTC, readable)."""
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started_at))
        what = self.operation + (f" of rollout {self.rollout_id}" if self.rollout_id else "")
        return f"{what} (pid {self.pid} on host {self.host}, since {since})"

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> LockHolder:
        """Raises ValueError when the body is not a complete holder."""
        try:
            raw: Any = json.loads(data)
            holder = cls(
                env=str(raw["env"]),
                rollout_id=str(raw["rollout_id"]),
                operation=str(raw["operation"]),
                pid=int(raw["pid"]),
                host=str(raw["host"]),
                started_at=float(raw["started_at"]),
            )
        except (KeyError, TypeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"not a lock holder: {exc}") from exc
        return holder


class EnvironmentLocked(LockHeld):
    """LockHeld (exit 4) that also carries the holder, for faces that show it."""

    def __init__(self, holder: LockHolder) -> None:
        self.holder = holder
        super().__init__(f"environment {holder.env!r} is locked by {holder.describe()}")


class EnvironmentLock:
    def __init__(self, state_dir: Path, env: str, holder: LockHolder | None = None) -> None:
        if not _ENV_NAME.fullmatch(env):
            raise UsageError(f"--env: {env!r} is not a usable environment name")
        self.env = env
        self.path = Path(state_dir) / "locks" / f"{env}.lock"
        self._default_holder = holder
        self._held: LockHolder | None = None
        self.stale: LockHolder | None = None  # what the last acquire broke, if anything

    # -- the lock ---------------------------------------------------------------------------

    def acquire(self, holder: LockHolder) -> LockHolder | None:
        """Take the lock for `holder`; return the stale holder it broke, if any.

        Raises EnvironmentLocked (a LockHeld, exit 4) naming the live holder.
        """
        if self._held is not None:
            raise EnvironmentLocked(self._held)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        broken: LockHolder | None = None
        self._judged = b""
        for _ in range(ATTEMPTS):
            if self._create(holder):
                self._held = holder
                self.stale = broken
                return broken
            current = self._read_for_judging()
            if current is None:
                continue  # released (or broken by someone else) meanwhile: try again
            if not self._is_stale(current):
                raise EnvironmentLocked(current)
            if self._break(current):
                broken = current
        raise LockHeld(
            f"environment {self.env!r}: could not take its lock at {self.path}; "
            "other processes keep taking it"
        )

    def release(self) -> None:
        """Remove the lock, only if it is still ours."""
        if self._held is None:
            return
        ours, self._held = self._held, None
        with contextlib.suppress(FileNotFoundError):
            if self.path.read_bytes() == ours.to_json():
                unlink_retrying(self.path)

    def holder(self) -> LockHolder | None:
        """Who holds the lock now (None if nobody, or if the file cannot be read)."""
        try:
            return LockHolder.from_json(self.path.read_bytes())
        except (FileNotFoundError, ValueError):
            return None

    @property
    def held(self) -> bool:
        return self._held is not None

    def __enter__(self) -> EnvironmentLock:
        self.acquire(self._default_holder or LockHolder.this_process(self.env))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    # -- how ----------------------------------------------------------------------------------

    def _create(self, holder: LockHolder) -> bool:
        """Create the lock file with its whole body at once; False if it exists."""
        body = holder.to_json()
        temp = self.path.with_name(f"{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.new")
        try:
            _write_synced(temp, body, exclusive=True)
            try:
                os.link(temp, self.path)  # atomic, fails if the lock exists, body complete
            except FileExistsError:
                return False
            except OSError:
                return self._create_in_place(body)  # a filesystem without hard links
        finally:
            with contextlib.suppress(OSError):
                temp.unlink()
        _sync_dir(self.path.parent)
        return True

    def _create_in_place(self, body: bytes) -> bool:
        try:
            _write_synced(self.path, body, exclusive=True)
        except FileExistsError:
            return False
        _sync_dir(self.path.parent)
        return True

    def _read_for_judging(self) -> LockHolder | None:
        """The current holder, or None if the lock went away while we looked.

        An unreadable lock file younger than the grace period is waited on (it is being
        written); an older one is an abandoned lock, described as an unknown holder.
        """
        deadline = time.monotonic() + UNREADABLE_GRACE_S + 1.0
        while True:
            try:
                data = self.path.read_bytes()
                mtime = self.path.stat().st_mtime
            except FileNotFoundError:
                return None
            self._judged = data  # what _break may remove: exactly these bytes
            try:
                return LockHolder.from_json(data)
            except ValueError:
                if time.time() - mtime > UNREADABLE_GRACE_S or time.monotonic() > deadline:
                    return LockHolder(
                        self.env, "", "unknown (unreadable lock file)", 0, this_host(), mtime
                    )
                time.sleep(0.01)

    def _is_stale(self, holder: LockHolder) -> bool:
        if holder.host != this_host():
            return False  # another host's process could be alive: not ours to judge
        return not pid_alive(holder.pid)

    def _break(self, stale: LockHolder) -> bool:
        """Remove the stale lock; True if we removed exactly the lock we judged stale.

        Breakers take turns through a guard file, and under it remove the lock only if it
        still holds the stale body: a live owner's lock is never touched, and two breakers
        can never both clear the way for two new owners.
        """
        guard = self.path.with_name(f"{self.path.name}.break")
        if not _take_guard(guard):
            return False
        try:
            try:
                current = self.path.read_bytes()
            except FileNotFoundError:
                return False
            if current != self._judged:
                return False  # someone else broke it and a live owner took it meanwhile
            unlink_retrying(self.path)
            return True
        finally:
            with contextlib.suppress(OSError):
                guard.unlink()


def _take_guard(guard: Path, wait_s: float = 5.0) -> bool:
    """Create the guard file exclusively; clear one left by a breaker that died holding it."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            os.close(os.open(guard, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            return True
        except FileExistsError:
            with contextlib.suppress(OSError):
                if time.time() - guard.stat().st_mtime > BREAK_GUARD_STALE_S:
                    guard.unlink()  # a breaker holds it for microseconds, never this long
                    continue
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)


def _parses(data: bytes) -> bool:
    try:
        LockHolder.from_json(data)
    except ValueError:
        return False
    return True


def _write_synced(path: Path, body: bytes, *, exclusive: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags | getattr(os, "O_BINARY", 0), 0o644)
    try:
        os.write(fd, body)
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_dir(directory: Path) -> None:
    """Make the new directory entry durable too (not possible, nor needed, on Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
