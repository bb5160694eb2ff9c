"""What the dashboard shows about one rollout, folded from its journaled events.

Pure Python (no Textual): the feed applies each event here and the dashboard reads the
result, so what a rollout looks like is testable without a screen, and a replay is the
same fold fed at a chosen speed.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from dhash_console.events import (
    PHASES,
    ControlAcknowledged,
    Event,
    GateSample,
    GateVerdict,
    LogLine,
    MonitorPaused,
    MonitorResumed,
    NotificationSent,
    PhaseFinished,
    PhaseStarted,
    RollbackFinished,
    RollbackRequested,
    RollbackStarted,
    RolloutFinished,
    RolloutStarted,
    SubscriberDropped,
)
from dhash_console.textsafe import clean

SPARK_POINTS = 24  # recent values kept per gate for its sparkline
_PENDING_MIGRATIONS = re.compile(r"^(\d+) pending migration")


@dataclass
class PhaseState:
    name: str
    status: str = "pending"  # pending, running, ok, failed, skipped, interrupted, stopped
    started_at: float | None = None
    duration_s: float | None = None
    detail: str = ""


@dataclass
class GateRow:
    """One gate as the table shows it: the latest sample and the running verdict."""

    name: str
    condition: str = ""
    result: str = "pending"  # pass, fail, inconclusive, pending
    verdict: str | None = None  # passed, failed, inconclusive once decided
    verdict_reason: str = ""
    value: float | None = None
    error: str | None = None
    consecutive_fails: int = 0
    failure_limit: int = 1
    consecutive_errors: int = 0
    consecutive_error_limit: int = 1
    samples: int = 0
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=SPARK_POINTS))

    @property
    def status(self) -> str:
        """The verdict once there is one, else the latest sample's result."""
        return self.verdict or self.result


@dataclass(frozen=True)
class Notice:
    at: float
    text: str
    ok: bool


@dataclass
class Changes:
    """What one batch of events touched, so the dashboard redraws only that."""

    header: bool = False
    phases: bool = False
    window: bool = False
    gates: set[str] = field(default_factory=set)
    logs: list[tuple[float, str, str, str]] = field(default_factory=list)  # at, level, source, msg
    notices: list[Notice] = field(default_factory=list)
    acks: list[ControlAcknowledged] = field(default_factory=list)

    @property
    def any(self) -> bool:
        return bool(
            self.header or self.phases or self.window or self.gates or self.logs or self.notices
        )


class RolloutState:
    """Every fact the dashboard needs about one rollout, kept current by `apply`."""

    def __init__(self, rollout_id: str) -> None:
        self.rollout_id = rollout_id
        self.last_seq = 0
        self.started: RolloutStarted | None = None
        self.finished: RolloutFinished | None = None
        self.phases: dict[str, PhaseState] = {name: PhaseState(name) for name in PHASES}
        self.current_phase: str | None = None
        self.gates: dict[str, GateRow] = {}
        self.window_started_at: float | None = None
        self.paused_since: float | None = None
        self.paused_total = 0.0
        self.pause_reason = ""
        self.rollback_requested: RollbackRequested | None = None
        self.rollback_started: RollbackStarted | None = None
        self.rollback_finished: RollbackFinished | None = None
        self.rollback_detail = ""  # the engine's plan, said when the rollback phase starts
        self.pending_migrations: int | None = None
        self.migrate_ok = False
        self.last_event_at: float | None = None

    # -- folding ------------------------------------------------------------------------------

    def apply_all(self, events: list[Event], changes: Changes | None = None) -> Changes:
        changes = changes or Changes()
        for event in events:
            self.apply(event, changes)
        return changes

    def apply(self, event: Event, changes: Changes) -> None:
        if event.seq and event.seq <= self.last_seq:
            return  # a re-read after a reconnect: already folded
        self.last_seq = max(self.last_seq, event.seq)
        self.last_event_at = event.at
        if isinstance(event, RolloutStarted):
            self.started = event
            for gate in event.gates:
                self.gates.setdefault(gate, GateRow(gate))
                changes.gates.add(gate)
            changes.header = changes.window = True
        elif isinstance(event, PhaseStarted):
            phase = self.phases[event.phase]
            phase.status, phase.started_at, phase.detail = "running", event.at, clean(event.detail)
            phase.duration_s = None
            self.current_phase = event.phase
            if event.phase == "monitor":
                self.window_started_at = event.at
            if event.phase == "rollback":
                self.rollback_detail = clean(event.detail)
            changes.phases = changes.window = changes.header = True
        elif isinstance(event, PhaseFinished):
            phase = self.phases[event.phase]
            phase.status, phase.duration_s = event.status, event.duration_s
            if event.detail:
                phase.detail = clean(event.detail)
            if event.phase == "migrate" and event.status == "ok":
                self.migrate_ok = True
            changes.phases = changes.window = True
        elif isinstance(event, GateSample):
            self._sample(event)
            changes.gates.add(event.gate)
        elif isinstance(event, GateVerdict):
            row = self.gates.setdefault(event.gate, GateRow(event.gate))
            row.verdict, row.verdict_reason = event.verdict, clean(event.reason)
            row.condition = event.condition
            changes.gates.add(event.gate)
        elif isinstance(event, LogLine):
            message = event.message
            if event.source == "engine":
                match = _PENDING_MIGRATIONS.match(message)
                if match:
                    self.pending_migrations = int(match.group(1))
            changes.logs.append((event.at, event.level, clean(event.source), message))
        elif isinstance(event, MonitorPaused):
            if self.paused_since is None:
                self.paused_since = event.at
            self.pause_reason = clean(event.reason)
            changes.header = changes.window = True
            changes.logs.append((event.at, "warning", "monitor", f"paused: {event.reason}"))
        elif isinstance(event, MonitorResumed):
            if self.paused_since is not None:
                self.paused_total += max(0.0, event.at - self.paused_since)
            self.paused_since = None
            self.pause_reason = ""
            changes.header = changes.window = True
            changes.logs.append((event.at, "info", "monitor", f"resumed by {event.by}"))
        elif isinstance(event, RollbackRequested):
            self.rollback_requested = event
            how = "automatic" if event.automatic else f"by {event.by}"
            changes.logs.append(
                (event.at, "warning", "rollback", f"requested ({how}): {event.reason}")
            )
            changes.header = True
        elif isinstance(event, RollbackStarted):
            self.rollback_started = event
            changes.header = True
            changes.logs.append(
                (
                    event.at,
                    "warning",
                    "rollback",
                    f"started: {event.from_version} -> {event.to_version}",
                )
            )
        elif isinstance(event, RollbackFinished):
            self.rollback_finished = event
            changes.header = True
            word = "healthy" if event.healthy else "NOT healthy"
            level = "info" if event.ok and event.healthy else "error"
            changes.logs.append(
                (event.at, level, "rollback", f"finished: {event.version} {word}. {event.detail}")
            )
        elif isinstance(event, RolloutFinished):
            self.finished = event
            changes.header = changes.window = changes.phases = True
            level = "info" if event.exit_code == 0 else "error"
            changes.logs.append((event.at, level, "engine", f"{event.outcome}: {event.reason}"))
        elif isinstance(event, NotificationSent):
            mark = "sent" if event.ok else "FAILED"
            text = f"{clean(event.channel)} {mark}: {clean(event.event_type)}"
            # A channel's detail is often its message, which starts with the event type again.
            detail = event.detail.removeprefix(f"{event.event_type}: ")
            if detail:
                text += f" ({clean(detail)})"
            changes.notices.append(Notice(event.at, text, event.ok))
        elif isinstance(event, ControlAcknowledged):
            changes.acks.append(event)
            changes.logs.append(
                (
                    event.at,
                    "info",
                    "control",
                    f"request #{event.request_id} {event.action} by {event.by}: {event.result}",
                )
            )
        elif isinstance(event, SubscriberDropped):
            changes.logs.append(
                (
                    event.at,
                    "warning",
                    "engine",
                    f"{event.subscriber} dropped {event.dropped} events",
                )
            )

    def _sample(self, event: GateSample) -> None:
        row = self.gates.setdefault(event.gate, GateRow(event.gate))
        row.condition = event.condition
        row.result = event.result
        row.value = event.value
        row.error = clean(event.error) if event.error else None
        row.consecutive_fails = event.consecutive_fails
        row.failure_limit = event.failure_limit
        row.consecutive_errors = event.consecutive_errors
        row.consecutive_error_limit = event.consecutive_error_limit
        row.samples = max(row.samples, event.index)
        if event.value is not None:
            row.recent.append(event.value)

    # -- reading ------------------------------------------------------------------------------

    @property
    def status(self) -> str:
        """running, paused, rolling back, or the outcome once finished."""
        if self.finished is not None:
            return self.finished.outcome
        if self.rollback_started is not None or self.rollback_requested is not None:
            return "rolling_back"
        if self.paused_since is not None:
            return "paused"
        return "running" if self.started is not None else "waiting"

    @property
    def active(self) -> bool:
        return self.started is not None and self.finished is None

    def window_progress(self, now: float) -> tuple[float, float] | None:
        """(elapsed, total) seconds of the monitoring window, pauses excluded; None before it."""
        if self.started is None or self.window_started_at is None:
            return None
        total = self.started.duration_s
        end = now
        monitor = self.phases["monitor"]
        if monitor.duration_s is not None:
            end = self.window_started_at + monitor.duration_s
        elif self.finished is not None:
            end = self.finished.at
        paused = self.paused_total
        if self.paused_since is not None:
            paused += max(0.0, end - self.paused_since)
        elapsed = max(0.0, end - self.window_started_at - paused)
        return min(elapsed, total), total

    def restores_database(self) -> bool:
        """Whether a rollback now would restore the database (migrations were applied)."""
        if self.started is not None and self.started.dry_run:
            return False
        return self.migrate_ok and bool(self.pending_migrations)
