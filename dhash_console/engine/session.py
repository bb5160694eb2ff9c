"""One guarded operation from start to end: lock, journal, bus, faces, engine, clean-up.

The commands (deploy, monitor, demo) and the console's engine process all go through
`run_rollout`, so every face sees the same events in the same order, journaled first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from dhash_console.config import NotificationsConfig
from dhash_console.engine.clock import Clock, SystemClock
from dhash_console.engine.control import Control, poll_requests
from dhash_console.engine.rollout import RolloutEngine, RolloutRequest, RolloutResult
from dhash_console.events import Event, EventBus, LockAcquired, LockReleased, LogLine

FACE_DRAIN_S = 5.0
NOTIFY_DRAIN_S = 10.0


class Face(Protocol):
    name: str

    async def run(self, events: AsyncIterable[Event]) -> None: ...


def new_rollout_id() -> str:
    """Sortable by time, short enough to type: r-20261204-120102-3fa9."""
    return time.strftime("r-%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(2)


@dataclass
class SessionOptions:
    faces: Sequence[Face] = ()
    clock: Clock = field(default_factory=SystemClock)
    control: Control | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    notifications: NotificationsConfig | None = None  # None: send nothing
    notify_drain_s: float = NOTIFY_DRAIN_S  # after the end, how long sends may still take
    console_notice: Callable[[str], None] | None = None
    on_engine: Callable[[RolloutEngine], Awaitable[None] | None] | None = None


def summarize(engine: RolloutEngine, result: RolloutResult, started: float) -> dict[str, Any]:
    gates = []
    if engine.window is not None:
        for state in engine.window.states.values():
            verdict, reason = (
                (state.verdict, state.verdict_reason)
                if state.verdict
                else (state.final() if state.samples else ("inconclusive", "not evaluated"))
            )
            gates.append(
                {
                    "gate": state.gate.name,
                    "verdict": verdict,
                    "reason": reason,
                    "value": state.last_value,
                    "condition": state.gate.condition(),
                    "samples": state.samples,
                    "fails": state.fails,
                    "inconclusive": state.inconclusive,
                    "critical": state.critical,
                }
            )
    return {
        "rollout_id": result.rollout_id,
        "env": engine.env.name,
        "outcome": result.outcome,
        "exit_code": result.exit_code,
        "reason": result.reason,
        "from_version": result.from_version,
        "to_version": result.to_version,
        "backup": str(result.backup) if result.backup else None,
        "rollback_healthy": result.rollback_healthy,
        "rollback_plan": engine.rollback_plan().describe(),
        "duration_s": round(time.monotonic() - started, 3),
        "gates": gates,
    }


async def run_rollout(
    request: RolloutRequest, options: SessionOptions | None = None
) -> tuple[RolloutResult, dict[str, Any]]:
    """Run one rollout under the environment's lock; return its result and summary."""
    from dhash_console.ops.deploy import build_deployer
    from dhash_console.store.history import HistoryStore
    from dhash_console.store.lock import EnvironmentLock, LockHolder

    options = options or SessionOptions()
    env = request.env
    rollout_id = new_rollout_id()
    started = time.monotonic()
    lock = EnvironmentLock(env.state_dir, env.name)
    operation = (
        "rollback"
        if request.rollback_reason is not None
        else ("monitor" if request.monitor_only else "deploy")
    )
    holder = LockHolder.this_process(env.name, rollout_id, operation)
    stale = lock.acquire(holder)  # raises LockHeld (exit 4) naming the holder
    store = await HistoryStore.open(env.state_dir / "history.sqlite3")
    bus = EventBus(rollout_id, journal=store.journal)
    tasks = [asyncio.create_task(face.run(bus.subscribe(face.name))) for face in options.faces]
    notifier = _notifier(request, bus, options)
    if notifier is not None:
        tasks.append(asyncio.create_task(notifier.run(bus.subscribe("notifier", 1000))))
    tasks.append(_run_log_task(env.state_dir, rollout_id, env.name, bus))
    control = options.control or Control()
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as client:
            engine = RolloutEngine(
                request,
                rollout_id=rollout_id,
                bus=bus,
                deployer=build_deployer(env),
                client=client,
                clock=options.clock,
                control=control,
                host=holder.host,
                pid=holder.pid,
            )
            if options.on_engine is not None:
                maybe = options.on_engine(engine)
                if maybe is not None:
                    await maybe
            engine.start_notes.extend(_lock_notes(rollout_id, env.name, holder, stale))
            poller = asyncio.create_task(poll_requests(store, rollout_id, control))
            try:
                result = await engine.run()
            finally:
                poller.cancel()
            return result, summarize(engine, result, started)
    finally:
        lock.release()
        with contextlib.suppress(Exception):
            await bus.publish(LockReleased(rollout_id=rollout_id, env=env.name))
        if notifier is not None:
            with contextlib.suppress(Exception):
                await notifier.drain(options.notify_drain_s)
        bus.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), FACE_DRAIN_S)
        await store.close()


def _lock_notes(rollout_id: str, env: str, holder: Any, stale: Any) -> list[Event]:
    """Journaled right after the rollout's first event, which creates its record."""
    notes: list[Event] = [
        LockAcquired(rollout_id=rollout_id, env=env, holder=f"pid {holder.pid} on {holder.host}")
    ]
    if stale is not None:
        notes.append(
            LogLine(
                rollout_id=rollout_id,
                level="warning",
                message=f"broke a stale lock of pid {stale.pid} on {stale.host} "
                f"(rollout {stale.rollout_id}), whose process is gone",
            )
        )
    return notes


def _notifier(request: RolloutRequest, bus: EventBus, options: SessionOptions) -> Any:
    if options.notifications is None:
        return None
    from dhash_console.ops.notify import Notifier

    async def report(event: Any) -> None:
        await bus.publish(event)

    return Notifier(
        options.notifications,
        env=request.env.name,
        environ=options.environ,
        report=report,
        console=options.console_notice,
    )


def _run_log_task(state_dir: Any, rollout_id: str, env: str, bus: EventBus) -> asyncio.Task[None]:
    from dhash_console.runlog import RunLog

    events = bus.subscribe("runlog", 10_000)  # before the first event is published
    run_log = RunLog.open(state_dir, rollout_id, env)

    async def run() -> None:
        try:
            await run_log.run(events)
        finally:
            run_log.close()

    return asyncio.create_task(run())


def cancel_on_sigterm(task: asyncio.Task[Any]) -> None:
    """SIGTERM (Windows: CTRL_BREAK_EVENT) ends a rollout like Ctrl-C: journaled as
    interrupted, lock released."""
    loop = asyncio.get_running_loop()
    if os.name != "posix":
        # No add_signal_handler on Windows: a plain handler hands the cancel to the loop.
        sigbreak = getattr(signal, "SIGBREAK", None)
        if sigbreak is not None:
            signal.signal(sigbreak, lambda *_: loop.call_soon_threadsafe(task.cancel))
        return
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
