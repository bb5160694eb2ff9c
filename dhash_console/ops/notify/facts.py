"""What the notifier remembers from earlier events, so that a message can say why.

`RolloutFacts.observe(event)` folds each event into the state and returns the kind of
notification it calls for, if any. A failed gate is held back until the console has
decided what to do about it (roll back, pause for the operator) so that the message can
say so; `take_pending_gates` hands those over once decided, or when waiting is over.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dhash_console.events import (
    Event,
    GateSample,
    GateVerdict,
    MonitorPaused,
    PhaseStarted,
    RollbackFinished,
    RollbackRequested,
    RollbackStarted,
    RolloutFinished,
    RolloutStarted,
)
from dhash_console.ops.notify.message import Notification, Severity
from dhash_console.ops.notify.templates import MISSING, Templates
from dhash_console.textsafe import clean

SEVERITY: dict[str, Severity] = {
    "rollout_started": "info",
    "gate_failed": "danger",
    "rollback_started": "warning",
    "rollback_finished": "good",
    "rollout_succeeded": "good",
    "rollout_failed": "danger",
    "test": "info",
}


def _number(value: float | None) -> str:
    return MISSING if value is None else f"{value:.6g}"


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:.4g} min"
    return f"{seconds:.4g} s"


@dataclass
class FailedGate:
    gate: str
    value: str
    condition: str
    reason: str
    samples: int
    consecutive_fails: str
    failure_limit: str
    phase: str
    rollout_id: str
    action: str = "none yet"


@dataclass
class RolloutFacts:
    env: str
    values: dict[str, str] = field(default_factory=dict)
    last_samples: dict[str, GateSample] = field(default_factory=dict)
    pending_gates: list[FailedGate] = field(default_factory=list)
    rollback_ok: bool = True
    operation: str = "rollout"
    rollback_reported: bool = False

    def __post_init__(self) -> None:
        self.values["env"] = self.env

    def observe(self, event: Event) -> str | None:
        """Fold the event in; the notification kind it calls for, if any."""
        v = self.values
        v["rollout_id"] = event.rollout_id
        if isinstance(event, RolloutStarted):
            v.update(
                env=event.env,
                from_version=event.from_version or "(none)",
                to_version=event.to_version,
                started_by=event.started_by,
                via=event.via,
                host=event.host,
                gates=", ".join(event.gates) or "(none)",
                duration=_duration(event.duration_s),
            )
            self.env = event.env
            self.operation = event.operation
            # A standalone rollback is no rollout "started, monitoring for 60 min": its own
            # rollback_started and rollback_finished say what happens.
            return None if event.operation == "rollback" else "rollout_started"
        if isinstance(event, PhaseStarted):
            v["phase"] = event.phase
        elif isinstance(event, GateSample):
            self.last_samples[event.gate] = event
        elif isinstance(event, GateVerdict) and event.verdict == "failed":
            self._gate_failed(event)
            return "gate_failed"
        elif isinstance(event, MonitorPaused):
            self._decide(f"paused, waiting for the operator ({event.reason})")
        elif isinstance(event, RollbackRequested):
            v.update(reason=event.reason, requested_by=event.by)
            how = "automatically" if event.automatic else f"by {event.by}"
            self._decide(f"rolling back ({how})")
        elif isinstance(event, RollbackStarted):
            v.update(
                reason=event.reason,
                backup=event.backup or "(none)",
                rollback_version=event.to_version,
            )
            if event.from_version:
                v["from_version"] = event.from_version
            v.setdefault("requested_by", "the console")
            self._decide("rolling back")
            return "rollback_started"
        elif isinstance(event, RollbackFinished):
            self.rollback_ok = event.ok and event.healthy
            v.update(
                rollback_version=event.version or MISSING,
                healthy="yes" if event.healthy else "NO",
                rollback_result="done, healthy"
                if self.rollback_ok
                else ("done, but NOT healthy" if event.ok else "FAILED: needs a human"),
                detail=event.detail,
            )
            self.rollback_reported = True
            return "rollback_finished"
        elif isinstance(event, RolloutFinished):
            v.update(outcome=event.outcome.replace("_", " "), exit_code=str(event.exit_code))
            if event.reason:
                v["reason"] = event.reason
            self._decide(f"rollout ended: {v['outcome']}")
            if self.operation == "rollback" and self.rollback_reported:
                return None  # rollback_finished said how it ended
            return "rollout_succeeded" if event.outcome == "succeeded" else "rollout_failed"
        return None

    def _gate_failed(self, event: GateVerdict) -> None:
        sample = self.last_samples.get(event.gate)
        self.pending_gates.append(
            FailedGate(
                gate=event.gate,
                value=_number(event.value),
                condition=event.condition,
                reason=event.reason,
                samples=event.samples,
                consecutive_fails=str(sample.consecutive_fails) if sample else str(event.fails),
                failure_limit=str(sample.failure_limit) if sample else MISSING,
                phase=self.values.get("phase", "monitor"),
                rollout_id=event.rollout_id,
            )
        )

    def _decide(self, action: str) -> None:
        for gate in self.pending_gates:
            if gate.action == "none yet":
                gate.action = action

    def decided(self) -> bool:
        return all(gate.action != "none yet" for gate in self.pending_gates)

    def take_pending_gates(self) -> list[dict[str, str]]:
        """The held-back failed gates as template values, and forget them."""
        out = []
        for gate in self.pending_gates:
            out.append(
                {
                    **self.values,
                    "gate": gate.gate,
                    "value": gate.value,
                    "condition": gate.condition,
                    "gate_reason": gate.reason,
                    "samples": str(gate.samples),
                    "consecutive_fails": gate.consecutive_fails,
                    "failure_limit": gate.failure_limit,
                    "phase": gate.phase,
                    "action": gate.action,
                    "rollout_id": gate.rollout_id,
                }
            )
        self.pending_gates.clear()
        return out


# The labelled facts each kind shows beside its text (Slack fields, Discord fields, Teams facts).
FACTS: dict[str, tuple[tuple[str, str], ...]] = {
    "rollout_started": (
        ("Environment", "env"),
        ("From", "from_version"),
        ("To", "to_version"),
        ("Started by", "started_by"),
    ),
    "gate_failed": (
        ("Environment", "env"),
        ("Version", "versions"),
        ("Gate", "gate"),
        ("Measured", "value"),
        ("Condition", "condition"),
        ("Consecutive fails", "fails_of_limit"),
        ("Action", "action"),
    ),
    "rollback_started": (
        ("Environment", "env"),
        ("Version", "rollback_versions"),
        ("Reason", "reason"),
        ("Backup", "backup"),
    ),
    "rollback_finished": (
        ("Environment", "env"),
        ("Now on", "rollback_version"),
        ("Healthy", "healthy"),
        ("Backup", "backup"),
        ("Reason", "reason"),
    ),
    "rollout_succeeded": (
        ("Environment", "env"),
        ("Version", "versions"),
        ("Started by", "started_by"),
    ),
    "rollout_failed": (
        ("Environment", "env"),
        ("Version", "versions"),
        ("Outcome", "outcome"),
        ("Reason", "reason"),
        ("Started by", "started_by"),
    ),
    "test": (),
}


def build_notification(kind: str, values: dict[str, str], templates: Templates) -> Notification:
    """Render one kind from the values; every value is cleaned of terminal escapes first."""
    safe = {key: clean(value) for key, value in values.items() if value}
    title, text = templates.render(kind, safe)
    derived = {
        **safe,
        "versions": f"{safe.get('from_version', MISSING)} → {safe.get('to_version', MISSING)}",
        "rollback_versions": f"{safe.get('from_version', MISSING)} → "
        f"{safe.get('rollback_version', MISSING)}",
        "fails_of_limit": f"{safe.get('consecutive_fails', MISSING)} "
        f"(limit {safe.get('failure_limit', MISSING)})",
    }
    facts = tuple((label, derived.get(key) or MISSING) for label, key in FACTS.get(kind, ()))
    severity = SEVERITY.get(kind, "info")
    if kind == "rollback_finished" and safe.get("healthy") != "yes":
        severity = "danger"
    return Notification(
        kind=kind,
        env=safe.get("env", MISSING),
        title=title,
        text=text,
        facts=facts,
        severity=severity,
        rollout_id=safe.get("rollout_id", ""),
    )
