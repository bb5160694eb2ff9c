"""The one control interface through which a face steers a rollout.

A face in the same process calls the methods; a face in another process (a second
terminal, the TUI) writes a control request into the history database and rings the
rollout's doorbell, and `poll_requests` picks it up and feeds it in here. Either way the
engine decides and journals the acknowledgement; no face reaches into the engine's state.
"""

from __future__ import annotations

import asyncio
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from dhash_console.store.doorbell import Doorbell

if TYPE_CHECKING:
    from dhash_console.store.history import HistoryStore

ControlAction = Literal["rollback", "abort", "pause", "resume"]
POLL_INTERVAL_S = 0.05  # without a doorbell: well inside the 100 ms pick-up promise
BELL_POLL_INTERVAL_S = 0.5  # with one, polls only catch a lost ring


@dataclass(frozen=True)
class ControlCommand:
    action: ControlAction
    reason: str = ""
    by: str = "operator"
    request_id: int = 0  # 0: asked in-process; else the history database's request id


class Control:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[ControlCommand] = asyncio.Queue()

    def submit(self, command: ControlCommand) -> None:
        self._queue.put_nowait(command)

    def request_rollback(self, reason: str, by: str = "operator") -> None:
        self.submit(ControlCommand("rollback", reason, by))

    def abort(self, reason: str, by: str = "operator") -> None:
        self.submit(ControlCommand("abort", reason, by))

    def pause(self, by: str = "operator") -> None:
        self.submit(ControlCommand("pause", "", by))

    def resume(self, by: str = "operator") -> None:
        self.submit(ControlCommand("resume", "", by))

    def get_nowait(self) -> ControlCommand | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    async def get(self) -> ControlCommand:
        return await self._queue.get()


def _journal_signature(store: HistoryStore) -> tuple[int, int] | None:
    """Size and mtime of the journal's WAL: a write by anyone changes them."""
    try:
        stat = os.stat(f"{store.path}-wal")
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


async def poll_requests(store: HistoryStore, rollout_id: str, control: Control) -> None:
    """Feed control requests written by other processes into `control`, until cancelled.

    A writer rings the rollout's doorbell (store/doorbell.py), and the database is read at
    once. Between rings, and without a bell, it polls: the database is read only when its WAL
    changed (a stat is far cheaper than a query), and at least once a second.
    """
    bell = Doorbell(store.path, rollout_id)
    interval = BELL_POLL_INTERVAL_S if bell.listening else POLL_INTERVAL_S
    seen: tuple[int, int] | None = None
    last_read = -math.inf
    rung = True  # a request written before the bell was bound is read now
    loop = asyncio.get_running_loop()
    try:
        while True:
            signature = _journal_signature(store)
            if rung or signature != seen or signature is None or loop.time() - last_read >= 1.0:
                seen, last_read = signature, loop.time()
                for request in await store.take_control_requests(rollout_id):
                    control.submit(
                        ControlCommand(
                            action=request.action,
                            reason=request.reason,
                            by=request.by,
                            request_id=request.id,
                        )
                    )
            rung = await bell.wait(interval)
    finally:
        bell.close()
