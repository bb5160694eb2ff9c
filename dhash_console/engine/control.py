"""The one control interface through which a face steers a rollout.

A face in the same process calls the methods; a face in another process (a second
terminal, the TUI) writes a control request into the history database, which
`poll_requests` picks up and feeds in here. Either way the engine decides and
journals the acknowledgement; no face reaches into the engine's state.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from dhash_console.store.history import HistoryStore

ControlAction = Literal["rollback", "abort", "pause", "resume"]
POLL_INTERVAL_S = 0.05  # well inside the 100 ms pick-up promise


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

    The database is read only when its WAL changed (a stat is far cheaper than a query),
    and at least once a second whatever the stat says.
    """
    seen: tuple[int, int] | None = None
    last_read = 0.0
    loop = asyncio.get_running_loop()
    while True:
        signature = _journal_signature(store)
        if signature == seen and signature is not None and loop.time() - last_read < 1.0:
            await asyncio.sleep(POLL_INTERVAL_S)
            continue
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
        await asyncio.sleep(POLL_INTERVAL_S)
