"""Real processes: lock contention, kill -9 of a rollout's process, and control requests
taken across processes. Each child is a small Python program; the fixture kills what is left.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dhash_console.store.history import HistoryStore
from dhash_console.store.lock import EnvironmentLock, LockHolder
from dhash_console.store.process import pid_alive, this_host

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")

Spawn = Callable[[str], subprocess.Popen[str]]

# Shared by the children: take the lock, open the store, start a rollout, reach a phase.
ROLLOUT_CHILD = """
import asyncio, os, sys, time
from pathlib import Path
from dhash_console.events import LogLine, PhaseStarted, RolloutStarted
from dhash_console.store.history import HistoryStore
from dhash_console.store.lock import EnvironmentLock, LockHolder
from dhash_console.store.process import this_host

state = Path(sys.argv[1])
rid = sys.argv[2]

async def main():
    lines = int(sys.argv[3])
    lock = EnvironmentLock(state, "staging")
    lock.acquire(LockHolder("staging", rid, "deploy", os.getpid(), this_host(), time.time()))
    store = await HistoryStore.open(state / "history.sqlite3")
    await store.journal(RolloutStarted(
        rollout_id=rid, seq=1, env="staging", from_version="1.3.0", to_version="1.4.0",
        started_by="ci", via="ci", host=this_host(), pid=os.getpid(), duration_s=60,
        interval_s=1))
    await store.journal(PhaseStarted(rollout_id=rid, seq=2, phase="migrate"))
    print("ready", flush=True)
    seq = 2
    while lines != 0:  # -1: journal until killed
        seq += 1
        await store.journal(LogLine(rollout_id=rid, seq=seq, message=f"line {seq} " + "x" * 200))
        lines -= 1
    sys.stdin.read()  # hold everything until killed (or stdin closes)

asyncio.run(main())
"""


def read_line(proc: subprocess.Popen[str], timeout: float = 15.0) -> str:
    """The child's next stdout line, waiting at most `timeout` seconds."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"no line from child {proc.pid} within {timeout}s")
    return proc.stdout.readline().strip()


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def kill9(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert not pid_alive(proc.pid)


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    children: list[subprocess.Popen[str]] = []

    def start(code: str, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        children.append(proc)
        return proc

    yield start  # type: ignore[misc]
    for proc in children:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_second_process_gets_lock_held_naming_the_first(tmp_path: Path, spawn: Spawn) -> None:
    first = spawn(ROLLOUT_CHILD, str(tmp_path), "r-first", "0")  # type: ignore[call-arg]
    assert read_line(first) == "ready"
    second = spawn(  # type: ignore[call-arg]
        """
        import os, sys, time
        from pathlib import Path
        from dhash_console.errors import LockHeld
        from dhash_console.store.lock import EnvironmentLock, LockHolder
        from dhash_console.store.process import this_host
        lock = EnvironmentLock(Path(sys.argv[1]), "staging")
        try:
            lock.acquire(LockHolder("staging", "r-second", "rollback", os.getpid(), this_host(),
                                    time.time()))
        except LockHeld as exc:
            print(exc.exit_code, exc)
            sys.exit(4)
        """,
        str(tmp_path),
    )
    out, _ = second.communicate(timeout=15)
    assert second.returncode == 4
    assert out.startswith("4 ")
    assert f"pid {first.pid}" in out and this_host() in out
    assert "deploy" in out and "r-first" in out and "UTC" in out

    # Another environment is free meanwhile.
    with EnvironmentLock(tmp_path, "production"):
        pass


def test_kill_9_leaves_an_intact_history_an_interrupted_rollout_and_a_stale_lock(
    tmp_path: Path, spawn: Spawn
) -> None:
    child = spawn(ROLLOUT_CHILD, str(tmp_path), "r-killed", "3")  # type: ignore[call-arg]
    assert read_line(child) == "ready"
    db = tmp_path / "history.sqlite3"

    def lines_visible() -> bool:  # a reader in another process sees the commits live
        with sqlite3.connect(db) as conn:
            (count,) = conn.execute(
                "SELECT count(*) FROM events WHERE rollout_id = 'r-killed'"
            ).fetchone()
        return bool(count == 5)

    wait_until(lines_visible)
    kill9(child)

    assert integrity(db) == "ok"
    import asyncio

    async def read() -> None:
        async with await HistoryStore.open(db) as store:
            record = await store.get_rollout("r-killed")
            assert record is not None
            assert (record.status, record.phase) == ("running", "migrate")
            assert record.effective_status == "interrupted"
            assert record.last_seq == 5
            assert len(await store.events("r-killed")) == 5

    asyncio.run(read())

    lock = EnvironmentLock(tmp_path, "staging")
    stale = lock.acquire(LockHolder.this_process("staging", "r-next", "rollback"))
    assert stale is not None and (stale.pid, stale.rollout_id) == (child.pid, "r-killed")
    lock.release()


@pytest.mark.parametrize("after_events", [3, 40, 150])
def test_kill_9_mid_journaling_leaves_a_readable_database(
    tmp_path: Path, spawn: Spawn, after_events: int
) -> None:
    child = spawn(ROLLOUT_CHILD, str(tmp_path), "r-busy", "-1")  # type: ignore[call-arg]
    assert read_line(child) == "ready"
    db = tmp_path / "history.sqlite3"

    def enough() -> bool:
        with sqlite3.connect(db) as conn:
            return bool(conn.execute("SELECT count(*) FROM events").fetchone()[0] >= after_events)

    wait_until(enough)
    kill9(child)  # while it is still writing, mid-transaction as likely as not
    assert integrity(db) == "ok"
    with sqlite3.connect(db) as conn:
        seqs = [
            row[0]
            for row in conn.execute(
                "SELECT seq FROM events WHERE rollout_id = 'r-busy' ORDER BY seq"
            )
        ]
        (last_seq,) = conn.execute("SELECT last_seq FROM rollouts WHERE id = 'r-busy'").fetchone()
    assert seqs == list(range(1, len(seqs) + 1))  # no hole, no half-written event
    assert last_seq == seqs[-1]


TAKER_CHILD = """
import asyncio, json, sys
from pathlib import Path
from dhash_console.store.history import HistoryStore

async def main():
    taken = []
    async with await HistoryStore.open(Path(sys.argv[1])) as store:
        print("ready", flush=True)
        while len(taken) < int(sys.argv[2]) and not Path(sys.argv[3]).exists():
            taken += [r.id for r in await store.take_control_requests("r-1")]
            await asyncio.sleep(0.001)
    print(json.dumps(taken), flush=True)

asyncio.run(main())
"""


def test_two_processes_take_each_control_request_exactly_once(tmp_path: Path, spawn: Spawn) -> None:
    import asyncio

    db = tmp_path / "history.sqlite3"
    done = tmp_path / "done"
    count = 60

    async def ask() -> list[int]:
        async with await HistoryStore.open(db) as store:
            return [
                await store.request_control("r-1", "pause", f"n{i}", "bob") for i in range(count)
            ]

    asyncio.run(ask())  # creates the schema before the takers start
    takers = [
        spawn(TAKER_CHILD, str(db), str(count), str(done))  # type: ignore[call-arg]
        for _ in range(2)
    ]
    for taker in takers:
        assert read_line(taker) == "ready"
    asked = asyncio.run(ask())  # while both poll

    def all_taken() -> bool:
        with sqlite3.connect(db) as conn:
            return bool(
                conn.execute(
                    "SELECT count(*) FROM control_requests WHERE state = 'pending'"
                ).fetchone()[0]
                == 0
            )

    wait_until(all_taken)
    done.touch()
    results = [json.loads(read_line(taker)) for taker in takers]
    taken = sorted(results[0] + results[1])
    assert taken == sorted([*range(1, count + 1), *asked])  # every request once, none twice
