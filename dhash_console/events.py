"""The event vocabulary of a rollout, and the bus that carries it.

The engine publishes; the history store journals every event before any face
sees it; subscribers (headless renderer, TUI, notifier) each read from a bounded
queue, so a slow one never blocks the engine: what it drops is counted and said.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Phase = Literal["prechecks", "backup", "migrate", "deploy", "smoke", "monitor", "rollback"]
PHASES: tuple[Phase, ...] = (
    "prechecks",
    "backup",
    "migrate",
    "deploy",
    "smoke",
    "monitor",
    "rollback",
)
Outcome = Literal["succeeded", "rolled_back", "rollback_failed", "aborted", "interrupted", "failed"]
SampleResult = Literal["pass", "fail", "inconclusive"]
Verdict = Literal["passed", "failed", "inconclusive"]
Level = Literal["debug", "info", "warning", "error"]


class EventBase(BaseModel):
    model_config = ConfigDict(frozen=True)

    rollout_id: str
    at: float = Field(default_factory=time.time, description="wall-clock time, epoch seconds")
    seq: int = 0  # set by the bus: the order within one rollout


class RolloutStarted(EventBase):
    type: Literal["rollout_started"] = "rollout_started"
    env: str
    from_version: str | None
    to_version: str
    dry_run: bool = False
    started_by: str
    via: str = Field(description="cli, tui, ci or demo")
    host: str
    pid: int
    duration_s: float
    interval_s: float
    gates: list[str] = Field(default_factory=list)
    rollback_plan: str = ""
    # What was asked: a rollout, the window alone (`monitor`) or a rollback (`rollback`).
    operation: Literal["rollout", "monitor", "rollback"] = "rollout"


class RolloutFinished(EventBase):
    type: Literal["rollout_finished"] = "rollout_finished"
    outcome: Outcome
    exit_code: int
    reason: str


class PhaseStarted(EventBase):
    type: Literal["phase_started"] = "phase_started"
    phase: Phase
    detail: str = ""


class PhaseFinished(EventBase):
    type: Literal["phase_finished"] = "phase_finished"
    phase: Phase
    # stopped: an operator ended it early (a manual rollback or abort during the window)
    status: Literal["ok", "failed", "skipped", "interrupted", "stopped"]
    duration_s: float
    detail: str = ""


class GateSample(EventBase):
    type: Literal["gate_sample"] = "gate_sample"
    gate: str
    index: int
    result: SampleResult
    value: float | None
    condition: str
    error: str | None = None
    detail: str = ""
    consecutive_fails: int = 0
    consecutive_errors: int = 0
    failure_limit: int = 1
    consecutive_error_limit: int = 1


class GateVerdict(EventBase):
    type: Literal["gate_verdict"] = "gate_verdict"
    gate: str
    verdict: Verdict
    reason: str
    value: float | None
    condition: str
    samples: int
    fails: int
    inconclusive: int
    critical: bool = False


class LogLine(EventBase):
    type: Literal["log_line"] = "log_line"
    level: Level = "info"
    source: str = "engine"
    message: str


class MonitorPaused(EventBase):
    type: Literal["monitor_paused"] = "monitor_paused"
    reason: str


class MonitorResumed(EventBase):
    type: Literal["monitor_resumed"] = "monitor_resumed"
    by: str = ""


class RollbackRequested(EventBase):
    type: Literal["rollback_requested"] = "rollback_requested"
    reason: str
    by: str
    automatic: bool


class RollbackStarted(EventBase):
    type: Literal["rollback_started"] = "rollback_started"
    from_version: str | None
    to_version: str
    reason: str
    backup: str | None = None


class RollbackFinished(EventBase):
    type: Literal["rollback_finished"] = "rollback_finished"
    ok: bool
    version: str | None
    healthy: bool
    detail: str = ""


class LockAcquired(EventBase):
    type: Literal["lock_acquired"] = "lock_acquired"
    env: str
    holder: str


class LockReleased(EventBase):
    type: Literal["lock_released"] = "lock_released"
    env: str


class ControlAcknowledged(EventBase):
    type: Literal["control_acknowledged"] = "control_acknowledged"
    request_id: int
    action: str
    by: str
    result: str


class NotificationSent(EventBase):
    type: Literal["notification_sent"] = "notification_sent"
    channel: str
    event_type: str
    ok: bool
    detail: str = ""


class SubscriberDropped(EventBase):
    type: Literal["subscriber_dropped"] = "subscriber_dropped"
    subscriber: str
    dropped: int


Event = Annotated[
    RolloutStarted
    | RolloutFinished
    | PhaseStarted
    | PhaseFinished
    | GateSample
    | GateVerdict
    | LogLine
    | MonitorPaused
    | MonitorResumed
    | RollbackRequested
    | RollbackStarted
    | RollbackFinished
    | LockAcquired
    | LockReleased
    | ControlAcknowledged
    | NotificationSent
    | SubscriberDropped,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def event_from_json(text: str | bytes) -> Event:
    """Parse one journaled event (the inverse of `event.model_dump_json()`)."""
    return EVENT_ADAPTER.validate_json(text)


Journal = Callable[[Event], Awaitable[None]]


class Subscription:
    """One subscriber's bounded queue. Iterate it; it ends when the bus closes."""

    def __init__(self, name: str, maxsize: int) -> None:
        self.name = name
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize)
        self.dropped = 0
        self._reported = 0
        self._closed = False

    def offer(self, event: Event) -> None:
        if self._closed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    def close(self) -> None:
        """Mark the end of the stream; waits for room rather than dropping the end."""
        self._closed = True
        while True:
            try:
                self.queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()  # drop the oldest: the end matters more
                self.dropped += 1

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            event = await self.queue.get()
            if event is None:
                return
            yield event


class EventBus:
    """Publishes to the journal first, then to every subscriber without waiting on them."""

    def __init__(self, rollout_id: str, journal: Journal | None = None) -> None:
        self.rollout_id = rollout_id
        self._journal = journal
        self._subscriptions: list[Subscription] = []
        self._seq = 0
        self._lock = asyncio.Lock()

    def subscribe(self, name: str, maxsize: int = 10_000) -> Subscription:
        subscription = Subscription(name, maxsize)
        self._subscriptions.append(subscription)
        return subscription

    async def publish(self, event: Event) -> Event:
        async with self._lock:  # one order for journal and subscribers alike
            self._seq += 1
            event = event.model_copy(update={"seq": self._seq})
            if self._journal is not None:
                await self._journal(event)
            for subscription in self._subscriptions:
                subscription.offer(event)
            await self._report_drops()
        return event

    async def _report_drops(self) -> None:
        for subscription in self._subscriptions:
            new = subscription.dropped - subscription._reported
            if new and subscription.queue.qsize() < subscription.queue.maxsize // 2:
                subscription._reported = subscription.dropped
                self._seq += 1
                note = SubscriberDropped(
                    rollout_id=self.rollout_id,
                    seq=self._seq,
                    subscriber=subscription.name,
                    dropped=new,
                )
                if self._journal is not None:
                    await self._journal(note)
                for other in self._subscriptions:
                    other.offer(note)

    def close(self) -> None:
        for subscription in self._subscriptions:
            subscription.close()
