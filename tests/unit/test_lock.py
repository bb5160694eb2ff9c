"""The environment lock in one process: files, messages, stale and foreign holders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from dhash_console.errors import LockHeld, UsageError
from dhash_console.store.lock import EnvironmentLock, EnvironmentLocked, LockHolder
from dhash_console.store.process import pid_alive, this_host


def holder(
    env: str = "staging",
    *,
    pid: int | None = None,
    host: str | None = None,
    rollout_id: str = "r-1",
    operation: str = "deploy",
) -> LockHolder:
    return LockHolder(
        env=env,
        rollout_id=rollout_id,
        operation=operation,
        pid=os.getpid() if pid is None else pid,
        host=host or this_host(),
        started_at=1_767_225_600.0,
    )  # 2026-01-01 00:00:00 UTC


def dead_pid() -> int:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(child.stdout)  # reaped by run(): no process has it now


def plant(state_dir: Path, lock_holder: LockHolder) -> Path:
    path = state_dir / "locks" / f"{lock_holder.env}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(lock_holder.to_json())
    return path


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(dead_pid())
    assert not pid_alive(0) and not pid_alive(-1)
    assert not pid_alive(2**40)
    assert pid_alive(1)  # init: alive, and not ours (EPERM when not root) — still alive


def test_acquire_writes_the_holder_and_release_removes_it(tmp_path: Path) -> None:
    lock = EnvironmentLock(tmp_path, "staging")
    me = holder()
    assert lock.acquire(me) is None
    assert lock.path == tmp_path / "locks" / "staging.lock"
    assert json.loads(lock.path.read_text())["rollout_id"] == "r-1"
    assert lock.holder() == me and lock.held
    lock.release()
    assert not lock.path.exists() and lock.holder() is None and not lock.held
    lock.release()  # twice is harmless
    assert sorted(p.name for p in lock.path.parent.iterdir()) == []  # no temp files left


def test_a_live_holder_refuses_with_who_where_and_since(tmp_path: Path) -> None:
    first = EnvironmentLock(tmp_path, "staging")
    first.acquire(holder(rollout_id="r-20260101-000000-abcd"))
    second = EnvironmentLock(tmp_path, "staging")
    with pytest.raises(LockHeld) as caught:
        second.acquire(holder(rollout_id="r-other", operation="rollback"))
    message = str(caught.value)
    assert caught.value.exit_code == 4
    assert "deploy" in message and "r-20260101-000000-abcd" in message
    assert f"pid {os.getpid()}" in message and this_host() in message
    assert "2026-01-01 00:00:00 UTC" in message
    assert isinstance(caught.value, EnvironmentLocked)
    assert caught.value.holder.rollout_id == "r-20260101-000000-abcd"
    first.release()
    assert second.acquire(holder(rollout_id="r-other")) is None


def test_environments_lock_separately(tmp_path: Path) -> None:
    with EnvironmentLock(tmp_path, "staging"), EnvironmentLock(tmp_path, "production") as prod:
        assert prod.holder() is not None
    assert list((tmp_path / "locks").iterdir()) == []


def test_a_dead_holder_on_this_host_is_broken_and_returned(tmp_path: Path) -> None:
    stale = holder(pid=dead_pid(), rollout_id="r-dead")
    plant(tmp_path, stale)
    lock = EnvironmentLock(tmp_path, "staging")
    assert lock.acquire(holder()) == stale
    assert lock.stale == stale
    assert lock.holder() == holder()
    assert [p.name for p in lock.path.parent.iterdir()] == ["staging.lock"]


def test_a_holder_on_another_host_is_not_judged(tmp_path: Path) -> None:
    foreign = holder(pid=dead_pid(), host="elsewhere.example")
    path = plant(tmp_path, foreign)
    with pytest.raises(LockHeld, match=r"elsewhere\.example"):
        EnvironmentLock(tmp_path, "staging").acquire(holder())
    assert LockHolder.from_json(path.read_bytes()) == foreign


def test_release_leaves_a_lock_that_is_no_longer_ours(tmp_path: Path) -> None:
    lock = EnvironmentLock(tmp_path, "staging")
    lock.acquire(holder())
    newcomer = replace(holder(), rollout_id="r-newcomer")
    lock.path.write_bytes(newcomer.to_json())  # as if ours had been broken and retaken
    lock.release()
    assert lock.holder() == newcomer


def test_an_old_unreadable_lock_is_broken_a_fresh_one_waited_on(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "staging.lock"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    old = time.time() - 60
    os.utime(path, (old, old))
    lock = EnvironmentLock(tmp_path, "staging")
    broken = lock.acquire(holder())
    assert broken is not None and "unreadable" in broken.operation
    lock.release()

    # A fresh empty file is a lock being written: the acquirer waits for its body.
    path.write_bytes(b"")
    writer = threading.Timer(0.2, lambda: path.write_bytes(holder(rollout_id="r-w").to_json()))
    writer.start()
    try:
        with pytest.raises(LockHeld, match="r-w"):
            EnvironmentLock(tmp_path, "staging").acquire(holder())
    finally:
        writer.join()


def test_a_bad_environment_name_is_refused(tmp_path: Path) -> None:
    for name in ["../escape", "a/b", "", ".hidden"]:
        with pytest.raises(UsageError):
            EnvironmentLock(tmp_path, name)


def test_holder_json_round_trip_and_garbage() -> None:
    me = holder()
    assert LockHolder.from_json(me.to_json()) == me
    for garbage in [b"", b"{", b"[]", b'{"env": "x"}', b"\xff"]:
        with pytest.raises(ValueError):
            LockHolder.from_json(garbage)


def test_many_threads_racing_on_a_stale_lock_leave_one_winner(tmp_path: Path) -> None:
    plant(tmp_path, holder(pid=dead_pid(), rollout_id="r-dead"))
    winners: list[str] = []
    refused: list[str] = []
    start = threading.Barrier(6)

    def contend(n: int) -> None:
        lock = EnvironmentLock(tmp_path, "staging")
        start.wait()
        try:
            lock.acquire(holder(rollout_id=f"r-{n}"))
            winners.append(f"r-{n}")
        except LockHeld:
            refused.append(f"r-{n}")

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert len(winners) == 1 and len(refused) == 5
    current = EnvironmentLock(tmp_path, "staging").holder()
    assert current is not None and current.rollout_id == winners[0]
