"""Gate semantics tables (CONFIG.md): pass, fail, inconclusive, limits, critical, no data."""

from __future__ import annotations

import math

import pytest

from dhash_console.config import HttpGate, MetricsGate
from dhash_console.engine.gates import GateState, classify
from dhash_console.ops.probes import Measurement

ERROR_RATE = MetricsGate.model_validate(
    {
        "name": "error_rate",
        "kind": "metrics",
        "error_ratio": {"counter": "dhash_http_requests_total"},
        "max": 0.01,
        "failure_limit": 3,
        "consecutive_error_limit": 2,
    }
)
HEALTH = HttpGate.model_validate(
    {"name": "health", "kind": "http", "severity": "critical", "failure_limit": 5}
)
MIN_GATE = MetricsGate.model_validate(
    {
        "name": "throughput",
        "kind": "metrics",
        "gauge": {"metric": "x"},
        "min": 10,
        "max": 100,
    }
)


@pytest.mark.parametrize(
    ("gate", "measurement", "expected"),
    [
        (ERROR_RATE, Measurement(value=0.0), "pass"),
        (ERROR_RATE, Measurement(value=0.01), "pass"),  # at the threshold holds
        (ERROR_RATE, Measurement(value=0.02), "fail"),
        (ERROR_RATE, Measurement(value=None, detail="no requests"), "inconclusive"),
        (ERROR_RATE, Measurement(value=math.nan), "inconclusive"),
        (ERROR_RATE, Measurement(value=None, error="connection refused"), "inconclusive"),
        (MIN_GATE, Measurement(value=5.0), "fail"),
        (MIN_GATE, Measurement(value=50.0), "pass"),
        (MIN_GATE, Measurement(value=500.0), "fail"),
        (HEALTH, Measurement(value=12.0, ok=True), "pass"),
        (HEALTH, Measurement(value=12.0, ok=False, detail="503"), "fail"),
        # A health check that cannot connect has failed (on_error defaults to fail for http).
        (HEALTH, Measurement(value=None, error="connection refused"), "fail"),
    ],
)
def test_classify(gate: MetricsGate | HttpGate, measurement: Measurement, expected: str) -> None:
    result, reason = classify(gate, measurement)
    assert result == expected
    assert reason


def test_http_on_error_can_be_inconclusive() -> None:
    gate = HEALTH.model_copy(update={"on_error": "inconclusive"})
    assert classify(gate, Measurement(value=None, error="timeout"))[0] == "inconclusive"


def test_latency_limit_on_http_gate() -> None:
    gate = HttpGate.model_validate({"name": "h", "kind": "http", "max_latency_ms": 100})
    assert classify(gate, Measurement(value=150.0, ok=True))[0] == "fail"
    assert classify(gate, Measurement(value=50.0, ok=True))[0] == "pass"


def run(state: GateState, results: list[str]) -> list[str | None]:
    return [state.record(r, 1.0, "because") for r in results]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("results", "decided_at", "verdict"),
    [
        (["fail", "fail", "fail"], 2, "failed"),  # failure_limit 3, consecutive
        (["fail", "fail", "pass", "fail", "fail"], None, None),  # a pass resets the count
        (["fail", "inconclusive", "fail", "fail"], 3, "failed"),  # no data neither resets nor adds
        (["inconclusive", "inconclusive"], 1, "inconclusive"),  # consecutive_error_limit 2
        (["inconclusive", "pass", "inconclusive"], None, None),
    ],
)
def test_limits(results: list[str], decided_at: int | None, verdict: str | None) -> None:
    state = GateState(ERROR_RATE)
    decisions = run(state, results)
    first = next((i for i, d in enumerate(decisions) if d is not None), None)
    assert first == decided_at
    if verdict is not None:
        assert decisions[first] == verdict  # type: ignore[index]
        assert state.verdict == verdict


def test_critical_fails_on_first_fail_whatever_its_limit() -> None:
    state = GateState(HEALTH)
    assert state.record("fail", None, "503") == "failed"
    assert "critical" in state.verdict_reason


def test_every_evaluation_inconclusive_is_never_passed() -> None:
    gate = ERROR_RATE.model_copy(update={"consecutive_error_limit": 1000})
    state = GateState(gate)
    run(state, ["inconclusive"] * 10)
    verdict, reason = state.final()
    assert verdict == "inconclusive"
    assert "every evaluation was inconclusive" in reason


def test_no_evaluation_is_never_passed() -> None:
    assert GateState(ERROR_RATE).final()[0] == "inconclusive"


def test_passes_with_some_inconclusive_is_passed() -> None:
    state = GateState(ERROR_RATE)
    run(state, ["pass", "inconclusive", "pass"])
    assert state.final() == ("passed", "2 of 3 evaluations passed")
