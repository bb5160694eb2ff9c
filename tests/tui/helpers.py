"""Write a rollout into a real history database as an engine would, and wait on the screen."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from dhash_console.events import (
    Event,
    GateSample,
    GateVerdict,
    LogLine,
    PhaseFinished,
    PhaseStarted,
    RollbackFinished,
    RollbackRequested,
    RollbackStarted,
    RolloutFinished,
    RolloutStarted,
)
from dhash_console.store.history import HistoryStore

T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC: fixed instants make snapshots stable
GATES = ("health", "error_rate", "p95_latency_ms")
HOSTILE = (
    "[/foo]",
    "[bold red]ROLLBACK COMPLETE[/]",
    "\x1b]0;title\x07owned title",
    "\x1b[2Jscreen cleared?",
)


class Journal:
    """Journals events for one rollout with the engine's own store, seq and all."""

    def __init__(self, store: HistoryStore, rollout_id: str) -> None:
        self.store = store
        self.rollout_id = rollout_id
        self.seq = 0

    async def emit(self, event: Event) -> Event:
        self.seq += 1
        event = event.model_copy(update={"seq": self.seq})
        await self.store.journal(event)
        return event

    async def start(
        self, at: float = T0, env: str = "local", pid: int | None = None, **extra: Any
    ) -> None:
        await self.emit(
            RolloutStarted(
                rollout_id=self.rollout_id,
                at=at,
                env=env,
                from_version="1.0.0",
                to_version="2.0.0-bad",
                started_by="oncall@bastion",
                via="cli",
                host=socket.gethostname(),
                pid=pid if pid is not None else os.getpid(),
                duration_s=60.0,
                interval_s=2.0,
                gates=list(GATES),
                rollback_plan="on a failed gate: return local to 1.0.0; a backup is taken "
                "before migrations, and the database is restored from it only if "
                "migrations were applied",
                **extra,
            )
        )

    async def phases_to_monitor(self, at: float = T0) -> float:
        """pre-checks .. smoke ok, monitor started; returns the monitor's start instant."""
        t = at
        await self.log(t, "info", "1 pending migration(s)")
        for phase, took in (
            ("prechecks", 0.4),
            ("backup", 1.2),
            ("migrate", 0.3),
            ("deploy", 2.5),
            ("smoke", 1.1),
        ):
            await self.emit(PhaseStarted(rollout_id=self.rollout_id, at=t, phase=phase))
            t += took
            await self.emit(
                PhaseFinished(
                    rollout_id=self.rollout_id, at=t, phase=phase, status="ok", duration_s=took
                )
            )
        await self.emit(
            PhaseStarted(rollout_id=self.rollout_id, at=t, phase="monitor", detail="1 minutes")
        )
        return t

    async def log(self, at: float, level: str, message: str, source: str = "engine") -> None:
        await self.emit(
            LogLine(
                rollout_id=self.rollout_id,
                at=at,
                level=level,  # type: ignore[arg-type]
                source=source,
                message=message,
            )
        )

    async def sample(
        self,
        at: float,
        gate: str,
        index: int,
        value: float | None,
        result: str = "pass",
        fails: int = 0,
        limit: int = 3,
        error: str | None = None,
    ) -> None:
        conditions = {
            "health": "status in [200]",
            "error_rate": "<= 0.01",
            "p95_latency_ms": "<= 500",
        }
        await self.emit(
            GateSample(
                rollout_id=self.rollout_id,
                at=at,
                gate=gate,
                index=index,
                result=result,  # type: ignore[arg-type]
                value=value,
                condition=conditions.get(gate, "<= 1"),
                error=error,
                detail=f"{value} vs {conditions.get(gate)}" if error is None else error,
                consecutive_fails=fails,
                failure_limit=1 if gate == "health" else limit,
            )
        )

    async def passing_rounds(self, start: float, rounds: int) -> float:
        t = start
        for i in range(1, rounds + 1):
            t += 2.0
            await self.sample(t, "health", i, 200.0)
            await self.sample(t, "error_rate", i, 0.001 * (i % 3))
            await self.sample(t, "p95_latency_ms", i, 120.0 + 10 * (i % 4))
        return t

    async def failing_rounds(self, start: float, rounds: int, first_index: int) -> float:
        t = start
        for n in range(1, rounds + 1):
            t += 2.0
            i = first_index + n
            await self.sample(t, "health", i, 200.0)
            await self.sample(t, "error_rate", i, 0.4 + 0.02 * n, "fail", fails=n)
            await self.sample(t, "p95_latency_ms", i, 130.0)
        return t

    async def verdict(self, at: float, gate: str, verdict: str, reason: str, value: float) -> None:
        await self.emit(
            GateVerdict(
                rollout_id=self.rollout_id,
                at=at,
                gate=gate,
                verdict=verdict,  # type: ignore[arg-type]
                reason=reason,
                value=value,
                condition="<= 0.01",
                samples=6,
                fails=3,
                inconclusive=0,
            )
        )

    async def rollback(self, at: float, reason: str, finish: bool = True) -> float:
        await self.emit(
            RollbackRequested(
                rollout_id=self.rollout_id, at=at, reason=reason, by="engine", automatic=True
            )
        )
        await self.emit(
            PhaseStarted(
                rollout_id=self.rollout_id,
                at=at,
                phase="rollback",
                detail="return local to 1.0.0; restore the database from dhash-local.zip",
            )
        )
        await self.emit(
            RollbackStarted(
                rollout_id=self.rollout_id,
                at=at,
                from_version="2.0.0-bad",
                to_version="1.0.0",
                reason=reason,
            )
        )
        if not finish:
            return at
        t = at + 3.0
        await self.emit(
            RollbackFinished(
                rollout_id=self.rollout_id,
                at=t,
                ok=True,
                version="1.0.0",
                healthy=True,
                detail="health restored",
            )
        )
        await self.emit(
            PhaseFinished(
                rollout_id=self.rollout_id, at=t, phase="rollback", status="ok", duration_s=3.0
            )
        )
        await self.emit(
            RolloutFinished(
                rollout_id=self.rollout_id,
                at=t,
                outcome="rolled_back",
                exit_code=1,
                reason=f"rolled back to 1.0.0: {reason}",
            )
        )
        return t


async def wait_for(
    pilot: Pilot[Any], condition: Callable[[], bool], timeout_s: float = 5.0, what: str = ""
) -> None:
    """Let the app run until `condition` holds; fail with `what` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.05)


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def screen_text(app: Any) -> str:
    """What the terminal shows now, as plain text (the current screen, fully rendered)."""
    update = app.screen._compositor.render_full_update()
    return "\n".join("".join(strip.text for strip in line) for line in update.strips)


def history_path(state_dir: Path) -> Path:
    return state_dir / "history.sqlite3"


async def wait_text(pilot: Pilot[Any], *needles: str, timeout_s: float = 5.0) -> str:
    """Wait until every needle is on screen; return the screen's text."""
    app = pilot.app
    deadline = time.monotonic() + timeout_s
    while True:
        await pilot.pause(0.05)
        text = screen_text(app)
        if all(needle in text for needle in needles):
            return text
        if time.monotonic() > deadline:
            missing = [n for n in needles if n not in text]
            raise AssertionError(f"not on screen: {missing}\n{text}")
