"""Prometheus gates: an instant PromQL query; the answer must be one number.

The HTTP API's JSON becomes pydantic models where it enters; sample values arrive as strings
("0.5", "NaN", "+Inf") and become floats.
"""

from __future__ import annotations

from typing import Annotated, Literal

import httpx
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from dhash_console.config import PrometheusGate
from dhash_console.ops.probes.base import FetchError, Measurement, clean_text, fetch, safe_url

MAX_ANSWER_BYTES = 4 * 1024 * 1024

SampleValue = tuple[float, str]


class VectorSample(BaseModel):
    metric: dict[str, str] = Field(default_factory=dict)
    value: SampleValue


class VectorData(BaseModel):
    resultType: Literal["vector"]
    result: list[VectorSample]


class ScalarData(BaseModel):
    resultType: Literal["scalar"]
    result: SampleValue


class OtherData(BaseModel):
    resultType: Literal["matrix", "string"]


QueryData = Annotated[VectorData | ScalarData | OtherData, Field(discriminator="resultType")]


class QuerySuccess(BaseModel):
    status: Literal["success"]
    data: QueryData


class QueryError(BaseModel):
    status: Literal["error"]
    errorType: str = ""
    error: str = ""


QueryAnswer = Annotated[QuerySuccess | QueryError, Field(discriminator="status")]
_ANSWER: TypeAdapter[QuerySuccess | QueryError] = TypeAdapter(QueryAnswer)


def query_url(server: str) -> httpx.URL:
    """`{server}/api/v1/query`, keeping any path prefix and query parameters of `server`."""
    base = httpx.URL(server)
    return base.copy_with(path=base.path.rstrip("/") + "/api/v1/query")


class PrometheusProbe:
    """One prometheus gate: `GET {url}/api/v1/query?query=...`."""

    def __init__(self, gate: PrometheusGate, client: httpx.AsyncClient) -> None:
        self.gate = gate
        self.client = client
        self.url = query_url(gate.url)

    async def prime(self) -> None:
        """Nothing to remember between samples."""

    async def measure(self) -> Measurement:
        try:
            return await self._measure()
        except Exception as exc:  # a probe must never crash the window
            return Measurement(value=None, error=f"probe fault: {clean_text(repr(exc))}")

    async def _measure(self) -> Measurement:
        try:
            got = await fetch(
                self.client,
                # keeps any parameters the configured URL has (a tenant, say)
                self.url.copy_merge_params({"query": self.gate.query}),
                timeout=self.gate.timeout_seconds,
                max_bytes=MAX_ANSWER_BYTES,
            )
        except FetchError as exc:
            return Measurement(value=None, error=str(exc))
        where = safe_url(self.url)
        if got.truncated:
            return Measurement(value=None, error=f"GET {where}: answer larger than 4 MiB")
        try:
            answer = _ANSWER.validate_json(got.body)
        except ValidationError:
            if got.status != 200:
                return Measurement(value=None, error=f"GET {where}: HTTP {got.status}")
            return Measurement(value=None, error=f"GET {where}: not a Prometheus API answer")
        return interpret(answer)


def interpret(answer: QuerySuccess | QueryError) -> Measurement:
    """The one number a query answered, or why there is none."""
    if isinstance(answer, QueryError):
        kind = clean_text(answer.errorType) or "error"
        return Measurement(value=None, error=f"query failed: {kind}: {clean_text(answer.error)}")
    data = answer.data
    if isinstance(data, ScalarData):
        return _number(data.result[1], "scalar")
    if isinstance(data, OtherData):
        return Measurement(
            value=None, error=f"query returned a {data.resultType}; expected an instant vector"
        )
    if not data.result:
        return Measurement(value=None, error="empty result")
    if len(data.result) > 1:
        return Measurement(
            value=None,
            error=f"query returned {len(data.result)} series; expected one (aggregate with sum())",
        )
    sample = data.result[0]
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.metric.items()))
    return _number(sample.value[1], clean_text(f"{{{labels}}}") if labels else "vector")


def _number(text: str, what: str) -> Measurement:
    try:
        value = float(text)
    except ValueError:
        return Measurement(value=None, error=f"not a number: {clean_text(text, 40)!r}")
    return Measurement(value=value, detail=f"{what} = {value:g}")
