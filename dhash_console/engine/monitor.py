"""The monitoring window: evaluate every gate each interval and decide what happens."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from dhash_console.config import AnyGate, Monitoring
from dhash_console.engine.clock import Clock
from dhash_console.engine.control import Control, ControlCommand
from dhash_console.engine.gates import GateState, classify
from dhash_console.events import (
    ControlAcknowledged,
    Event,
    GateSample,
    GateVerdict,
    LogLine,
    MonitorPaused,
    MonitorResumed,
)
from dhash_console.ops.probes import Measurement, Probe

Publish = Callable[[Event], Awaitable[Event]]
Decision = Literal["passed", "rollback", "abort"]
CLOCK_SLACK_S = 0.001  # timers may wake a hair early; a round due within this is due


@dataclass(frozen=True)
class WindowResult:
    decision: Decision
    reason: str
    automatic: bool = True
    by: str = "engine"


class MonitoringWindow:
    """One window: `run` returns when it passed, or when a rollback or abort is due."""

    def __init__(
        self,
        *,
        rollout_id: str,
        probes: Sequence[Probe],
        policy: Monitoring,
        duration_s: float,
        clock: Clock,
        control: Control,
        publish: Publish,
        interactive: bool = False,
        dry_run: bool = False,
    ) -> None:
        self.rollout_id = rollout_id
        self.probes = list(probes)
        self.policy = policy
        self.duration_s = duration_s
        self.clock = clock
        self.control = control
        self.publish = publish
        self.interactive = interactive
        self.dry_run = dry_run
        self.states = {probe.gate.name: GateState(probe.gate) for probe in self.probes}
        self._round = 0
        self._paused_since: float | None = None
        self._paused_total = 0.0

    async def run(self) -> WindowResult:
        await asyncio.gather(*(probe.prime() for probe in self.probes))
        interval = self.policy.interval_seconds
        start = self.clock.now()
        next_round = start + interval
        while True:
            end = start + self.duration_s + self._paused_total  # a pause extends the window
            deadline = math.inf if self._paused_since is not None else min(next_round, end)
            command = await self._wait(deadline)
            if command is not None:
                result = await self._handle(command)
                if result is not None:
                    return result
                continue
            now = self.clock.now()
            round_due = now >= next_round - CLOCK_SLACK_S and next_round <= end + CLOCK_SLACK_S
            if not round_due:
                if now >= end - CLOCK_SLACK_S:
                    break
                continue
            decided = await self._evaluate_round()
            if decided is not None:
                return decided
            next_round += interval
            if next_round <= self.clock.now():  # a slow round: skip, never burst
                next_round = self.clock.now() + interval
        return await self._close_window()

    async def _wait(self, deadline: float) -> ControlCommand | None:
        ready = self.control.get_nowait()
        if ready is not None:
            return ready
        timeout = deadline - self.clock.now()
        if timeout <= 0:
            return None
        getter = asyncio.ensure_future(self.control.get())
        sleeper = asyncio.ensure_future(
            self.clock.sleep(timeout) if math.isfinite(timeout) else asyncio.Event().wait()
        )
        try:
            done, _ = await asyncio.wait({getter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            if not getter.done():
                getter.cancel()
        if getter in done and not getter.cancelled():
            return getter.result()
        return None

    async def _handle(self, command: ControlCommand) -> WindowResult | None:
        result: WindowResult | None = None
        if command.action == "rollback":
            reason = command.reason or "manual rollback"
            result = WindowResult("rollback", reason, automatic=False, by=command.by)
            outcome = "rolling back"
        elif command.action == "abort":
            result = WindowResult(
                "abort", command.reason or "aborted", automatic=False, by=command.by
            )
            outcome = "aborting"
        elif command.action == "pause":
            if self._paused_since is None:
                self._paused_since = self.clock.now()
                await self.publish(
                    MonitorPaused(rollout_id=self.rollout_id, reason=f"paused by {command.by}")
                )
                outcome = "paused"
            else:
                outcome = "already paused"
        else:
            if self._paused_since is not None:
                self._paused_total += self.clock.now() - self._paused_since
                self._paused_since = None
                for state in self.states.values():
                    state.reset_after_operator()
                await self.publish(MonitorResumed(rollout_id=self.rollout_id, by=command.by))
                outcome = "resumed"
            else:
                outcome = "not paused"
        await self.publish(
            ControlAcknowledged(
                rollout_id=self.rollout_id,
                request_id=command.request_id,
                action=command.action,
                by=command.by,
                result=outcome,
            )
        )
        return result

    async def _measure(self, probe: Probe) -> Measurement:
        limit = probe.gate.timeout_seconds + 1.0
        try:
            return await asyncio.wait_for(probe.measure(), limit)
        except TimeoutError:
            return Measurement(value=None, error=f"no answer within {limit:g} s")

    async def _evaluate_round(self) -> WindowResult | None:
        self._round += 1
        measurements = await asyncio.gather(*(self._measure(p) for p in self.probes))
        failed: list[GateState] = []
        inconclusive: list[GateState] = []
        for probe, measurement in zip(self.probes, measurements, strict=True):
            state = self.states[probe.gate.name]
            result, reason = classify(probe.gate, measurement)
            verdict = state.record(result, measurement.value, reason)
            await self.publish(self._sample_event(probe.gate, state, measurement, result, reason))
            if verdict == "failed":
                failed.append(state)
            elif verdict == "inconclusive":
                inconclusive.append(state)
        for state in failed + inconclusive:
            await self.publish(self._verdict_event(state))
        if self.dry_run:
            return None
        if failed:
            reason = "; ".join(f"gate {s.gate.name} failed: {s.verdict_reason}" for s in failed)
            if self.policy.auto_rollback:
                return WindowResult("rollback", reason)
            await self._pause(f"{reason}; automatic rollback is off: waiting for the operator")
        elif inconclusive:
            return await self._on_inconclusive(inconclusive)
        return None

    async def _on_inconclusive(self, states: list[GateState]) -> WindowResult | None:
        reason = "; ".join(f"gate {s.gate.name} inconclusive: {s.verdict_reason}" for s in states)
        policy = self.policy.on_inconclusive
        if policy == "ignore":
            for state in states:
                state.reset_after_operator()
            await self._log("warning", f"{reason}; on_inconclusive=ignore: going on")
            return None
        if policy == "pause" and self.interactive:
            await self._pause(f"{reason}: waiting for the operator (resume or roll back)")
            return None
        return WindowResult("rollback", reason)

    async def _pause(self, reason: str) -> None:
        self._paused_since = self.clock.now()
        await self.publish(MonitorPaused(rollout_id=self.rollout_id, reason=reason))

    async def _close_window(self) -> WindowResult:
        open_states = [s for s in self.states.values() if s.verdict is None]
        for state in open_states:
            verdict, reason = state.final()
            state.verdict, state.verdict_reason = verdict, reason
            await self.publish(self._verdict_event(state))
        unproven = [s for s in self.states.values() if s.verdict != "passed"]
        if not unproven:
            return WindowResult("passed", f"all {len(self.states)} gates passed the window")
        reason = "; ".join(f"gate {s.gate.name} {s.verdict}: {s.verdict_reason}" for s in unproven)
        if self.policy.on_inconclusive == "ignore":
            await self._log("warning", f"{reason}; on_inconclusive=ignore")
            return WindowResult("passed", f"window ended; not proven: {reason}")
        return WindowResult("rollback", f"window ended unproven: {reason}")

    async def _log(self, level: Literal["info", "warning"], message: str) -> None:
        await self.publish(LogLine(rollout_id=self.rollout_id, level=level, message=message))

    def _sample_event(
        self,
        gate: AnyGate,
        state: GateState,
        measurement: Measurement,
        result: Literal["pass", "fail", "inconclusive"],
        reason: str,
    ) -> GateSample:
        return GateSample(
            rollout_id=self.rollout_id,
            at=self.clock.wall(),
            gate=gate.name,
            index=state.samples,
            result=result,
            value=measurement.value,
            condition=gate.condition(),
            error=measurement.error,
            detail=reason,
            consecutive_fails=state.consecutive_fails,
            consecutive_errors=state.consecutive_errors,
            failure_limit=1 if state.critical else gate.failure_limit,
            consecutive_error_limit=gate.consecutive_error_limit,
        )

    def _verdict_event(self, state: GateState) -> GateVerdict:
        assert state.verdict is not None
        return GateVerdict(
            rollout_id=self.rollout_id,
            at=self.clock.wall(),
            gate=state.gate.name,
            verdict=state.verdict,
            reason=state.verdict_reason,
            value=state.last_value,
            condition=state.gate.condition(),
            samples=state.samples,
            fails=state.fails,
            inconclusive=state.inconclusive,
            critical=state.critical,
        )
