"""Quality gates: what each one measures and the condition it must hold.

The vocabulary follows Argo Rollouts' analysis (failure_limit, consecutive_error_limit,
inconclusive) and Flagger's canary analysis, so that an SRE who knows them feels at home.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Severity = Literal["normal", "critical"]
OnError = Literal["fail", "inconclusive"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GateBase(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    severity: Severity = "normal"
    failure_limit: int = Field(1, ge=1, description="consecutive fails that fail the gate")
    consecutive_error_limit: int = Field(
        4, ge=1, description="consecutive inconclusive evaluations that fail the gate"
    )
    timeout_seconds: float = Field(5.0, gt=0, le=300)
    enabled: bool = True

    def condition(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError


class _Bounded(GateBase):
    """A gate whose measurement is a number held between `min` and `max`."""

    min: float | None = None
    max: float | None = None
    on_error: OnError = "inconclusive"

    @model_validator(mode="after")
    def _needs_threshold(self) -> _Bounded:
        if self.min is None and self.max is None:
            raise ValueError("a gate needs a threshold: set max, min or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        return self

    def condition(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        return " and ".join(parts)


class HttpGate(GateBase):
    """GET a path of the environment; the status, the latency and JSON fields are checked."""

    kind: Literal["http"]
    path: str = Field("/health", pattern=r"^/")
    expect_status: list[int] = Field(default_factory=lambda: [200], min_length=1)
    max_latency_ms: float | None = Field(None, gt=0)
    expect_json: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="dotted field path -> expected value"
    )
    on_error: OnError = "fail"

    def condition(self) -> str:
        parts = [f"status in {self.expect_status}"]
        if self.max_latency_ms is not None:
            parts.append(f"latency <= {self.max_latency_ms:g} ms")
        parts.extend(f"{path} == {value!r}" for path, value in self.expect_json.items())
        return " and ".join(parts)


_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class SeriesFilter(_Strict):
    """Which series of the metric a gate reads, by label, as PromQL's `=~` and `!~` matchers:
    each regular expression must match the label's whole value (a series without the label
    has the value "")."""

    match: dict[str, str] = Field(
        default_factory=dict, description="label -> regex: only series that match them all"
    )
    exclude: dict[str, str] = Field(
        default_factory=dict, description="label -> regex: series that match any are left out"
    )

    @field_validator("match", "exclude")
    @classmethod
    def _valid_matchers(cls, matchers: dict[str, str]) -> dict[str, str]:
        for label, pattern in matchers.items():
            if not _LABEL_NAME.fullmatch(label):
                raise ValueError(f"{label!r} is not a label name")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{label}: not a regular expression: {exc}") from None
        return matchers


class ErrorRatio(SeriesFilter):
    counter: str
    error_label: str = "status"
    error_match: str = "5.."

    @model_validator(mode="after")
    def _valid_regex(self) -> ErrorRatio:
        try:
            re.compile(self.error_match)
        except re.error as exc:
            raise ValueError(f"error_match is not a regular expression: {exc}") from None
        return self


class Quantile(SeriesFilter):
    histogram: str
    q: float = Field(gt=0, lt=1)
    scale: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _not_the_bucket_bound(self) -> Quantile:
        if "le" in self.match or "le" in self.exclude:
            raise ValueError("le is the bucket bound: filter on the other labels")
        return self


class Gauge(_Strict):
    metric: str
    labels: dict[str, str] = Field(default_factory=dict)


class MetricsGate(_Bounded):
    """Scrape the service's Prometheus text endpoint and compare the change between scrapes."""

    kind: Literal["metrics"]
    path: str = Field("/metrics", pattern=r"^/")
    error_ratio: ErrorRatio | None = None
    quantile: Quantile | None = None
    gauge: Gauge | None = None

    @model_validator(mode="after")
    def _one_measure(self) -> MetricsGate:
        chosen = [m for m in (self.error_ratio, self.quantile, self.gauge) if m is not None]
        if len(chosen) != 1:
            raise ValueError("a metrics gate needs exactly one of error_ratio, quantile, gauge")
        return self


class PrometheusGate(_Bounded):
    """An instant PromQL query against a Prometheus server."""

    kind: Literal["prometheus"]
    url: str = Field(pattern=r"^https?://")
    query: str = Field(min_length=1)


Gate = Annotated[HttpGate | MetricsGate | PrometheusGate, Field(discriminator="kind")]


class GateOverride(_Strict):
    """What an environment may change of a gate it inherits."""

    enabled: bool | None = None
    severity: Severity | None = None
    failure_limit: int | None = Field(None, ge=1)
    consecutive_error_limit: int | None = Field(None, ge=1)
    timeout_seconds: float | None = Field(None, gt=0, le=300)
    min: float | None = None
    max: float | None = None
    max_latency_ms: float | None = Field(None, gt=0)
    expect_status: list[int] | None = None
