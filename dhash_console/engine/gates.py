"""Gate semantics (CONFIG.md), in the vocabulary of Argo Rollouts and Flagger.

Every evaluation is pass, fail or inconclusive. A gate fails after `failure_limit`
consecutive fails, or at once when critical; `consecutive_error_limit` inconclusive
evaluations in a row give an inconclusive verdict, which the monitoring policy turns
into a rollback, a pause or nothing. No data never counts as a pass.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from dhash_console.config import AnyGate, HttpGate
from dhash_console.events import SampleResult, Verdict
from dhash_console.ops.probes import Measurement

SPARK_POINTS = 60


def _fmt(value: float | None) -> str:
    if value is None:
        return "no value"
    if math.isnan(value):
        return "NaN"
    return f"{value:.4g}"


def classify(gate: AnyGate, measurement: Measurement) -> tuple[SampleResult, str]:
    """One evaluation: its result and, in words, why."""
    if measurement.error is not None:
        result: SampleResult = "fail" if gate.on_error == "fail" else "inconclusive"
        return result, f"could not measure: {measurement.error}"
    value = measurement.value
    if isinstance(gate, HttpGate):
        if measurement.ok is False:
            return "fail", measurement.detail or "unexpected answer"
        if gate.max_latency_ms is not None:
            if value is None or math.isnan(value):
                return "inconclusive", "no latency measured"
            if value > gate.max_latency_ms:
                return "fail", f"latency {value:.0f} ms > {gate.max_latency_ms:g} ms"
        if measurement.ok is None:
            return "inconclusive", measurement.detail or "no answer to judge"
        return "pass", measurement.detail or "as expected"
    if value is None or math.isnan(value):
        return "inconclusive", measurement.detail or "no data"
    if gate.max is not None and value > gate.max:
        return "fail", f"{_fmt(value)} > max {gate.max:g}"
    if gate.min is not None and value < gate.min:
        return "fail", f"{_fmt(value)} < min {gate.min:g}"
    return "pass", f"{_fmt(value)} within {gate.condition()}"


@dataclass
class GateState:
    """What one gate has seen so far in this rollout."""

    gate: AnyGate
    samples: int = 0
    passes: int = 0
    fails: int = 0
    inconclusive: int = 0
    consecutive_fails: int = 0
    consecutive_errors: int = 0
    last_value: float | None = None
    last_result: SampleResult | None = None
    last_reason: str = ""
    verdict: Verdict | None = None
    verdict_reason: str = ""
    recent: deque[float | None] = field(default_factory=lambda: deque(maxlen=SPARK_POINTS))

    @property
    def critical(self) -> bool:
        return self.gate.severity == "critical"

    def record(self, result: SampleResult, value: float | None, reason: str) -> Verdict | None:
        """Count one evaluation; return a verdict when this evaluation decides the gate."""
        self.samples += 1
        self.last_value = value
        self.last_result = result
        self.last_reason = reason
        self.recent.append(value)
        if result == "pass":
            self.passes += 1
            self.consecutive_fails = 0
            self.consecutive_errors = 0
            return None
        if result == "fail":
            self.fails += 1
            self.consecutive_fails += 1
            self.consecutive_errors = 0
            if self.critical:
                return self._decide("failed", f"critical gate failed: {reason}")
            if self.consecutive_fails >= self.gate.failure_limit:
                return self._decide(
                    "failed",
                    f"{self.consecutive_fails} consecutive fails (limit "
                    f"{self.gate.failure_limit}): {reason}",
                )
            return None
        # Inconclusive: no evidence either way, so it neither resets nor adds to the fails.
        self.inconclusive += 1
        self.consecutive_errors += 1
        if self.consecutive_errors >= self.gate.consecutive_error_limit:
            return self._decide(
                "inconclusive",
                f"{self.consecutive_errors} inconclusive evaluations in a row (limit "
                f"{self.gate.consecutive_error_limit}): {reason}",
            )
        return None

    def reset_after_operator(self) -> None:
        """The operator (or on_inconclusive=ignore) chose to go on past a verdict."""
        self.consecutive_errors = 0
        self.consecutive_fails = 0
        self.verdict = None
        self.verdict_reason = ""

    def final(self) -> tuple[Verdict, str]:
        """The verdict at the end of the window, for a gate not decided before."""
        if self.verdict is not None:
            return self.verdict, self.verdict_reason
        if self.passes == 0:
            # Never reported as passed without a single passing evaluation.
            why = "no evaluation" if self.samples == 0 else "every evaluation was inconclusive"
            return "inconclusive", f"{why} ({self.samples} samples)"
        return "passed", f"{self.passes} of {self.samples} evaluations passed"

    def _decide(self, verdict: Verdict, reason: str) -> Verdict:
        self.verdict = verdict
        self.verdict_reason = reason
        return verdict
