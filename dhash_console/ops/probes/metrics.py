"""Metrics gates: scrape the service's Prometheus text endpoint and compare two scrapes.

Gates that read the same URL share one `MetricsScraper`: a scrape in flight is joined, and a
finished one is reused for a short while by probes that have not seen it yet, so three gates on
/metrics cost one request per evaluation round. A probe never reuses a scrape it already read,
so its deltas stay honest even when rounds come faster than the reuse window (simulated clock).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from dhash_console.config import MetricsGate
from dhash_console.ops.probes import promtext
from dhash_console.ops.probes.base import (
    FetchError,
    Measurement,
    clean_text,
    fetch,
    safe_url,
)

MAX_METRICS_BYTES = 32 * 1024 * 1024
SHARE_SECONDS = 0.25


@dataclass(frozen=True)
class Scrape:
    """One scrape: its serial number, and either the indexed samples or why it failed."""

    serial: int
    index: promtext.SampleIndex | None
    error: str | None = None


class MetricsScraper:
    """Fetches and parses one metrics URL for every gate that reads it."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: httpx.URL,
        *,
        timeout: float,
        share_seconds: float = SHARE_SECONDS,
    ) -> None:
        self.client = client
        self.url = url
        self.timeout = timeout
        self.share_seconds = share_seconds
        self.requests = 0
        self._prefixes: set[str] = set()
        self._serial = 0
        self._last: Scrape | None = None
        self._last_at = 0.0
        self._inflight: asyncio.Task[Scrape] | None = None

    def want(self, metric_prefix: str, timeout: float) -> None:
        """Register a metric a gate reads; the scrape keeps only the lines of wanted metrics."""
        self._prefixes.add(metric_prefix)
        self.timeout = min(self.timeout, timeout)

    async def scrape(self, newer_than: int = 0) -> Scrape:
        """A scrape with a serial above `newer_than`: shared, recent, or fetched now.

        Never raises but for cancellation, which leaves the shared fetch running for the others.
        """
        last = self._last
        if (
            last is not None
            and last.serial > newer_than
            and time.monotonic() - self._last_at <= self.share_seconds
        ):
            return last
        if self._inflight is None:
            self._serial += 1
            self._inflight = asyncio.create_task(self._fetch(self._serial))
        return await asyncio.shield(self._inflight)

    async def _fetch(self, serial: int) -> Scrape:
        try:
            scrape = await self._fetch_and_parse(serial)
        except Exception as exc:  # a probe must never crash the window
            scrape = Scrape(serial, None, f"scrape failed: {clean_text(repr(exc))}")
        finally:
            self._inflight = None
        self._last, self._last_at = scrape, time.monotonic()
        return scrape

    async def _fetch_and_parse(self, serial: int) -> Scrape:
        self.requests += 1
        try:
            got = await fetch(
                self.client, self.url, timeout=self.timeout, max_bytes=MAX_METRICS_BYTES
            )
        except FetchError as exc:
            return Scrape(serial, None, str(exc))
        where = safe_url(self.url)
        if got.status != 200:
            return Scrape(serial, None, f"GET {where}: HTTP {got.status}")
        if got.truncated:
            limit = MAX_METRICS_BYTES // (1024 * 1024)
            return Scrape(serial, None, f"GET {where}: body larger than {limit} MiB")
        text = got.body.decode("utf-8", errors="replace")
        try:
            index = promtext.parse(text, tuple(sorted(self._prefixes)))
        except promtext.MalformedMetrics as exc:
            problem = clean_text(str(exc))
            return Scrape(serial, None, f"GET {where}: malformed metrics text: {problem}")
        return Scrape(serial, index)


class MetricsProbe:
    """One metrics gate: an error ratio, a histogram quantile or a gauge."""

    def __init__(self, gate: MetricsGate, scraper: MetricsScraper) -> None:
        self.gate = gate
        self.scraper = scraper
        self._seen = 0
        self._baseline: promtext.CounterSeries | None = None
        self._error_match = (
            re.compile(gate.error_ratio.error_match) if gate.error_ratio is not None else None
        )
        chosen = gate.error_ratio or gate.quantile
        self._matchers = (
            promtext.LabelMatchers.of(chosen.match, chosen.exclude)
            if chosen is not None
            else promtext.LabelMatchers()
        )
        scraper.want(_metric_prefix(gate), gate.timeout_seconds)

    async def prime(self) -> None:
        """Take the baseline the first measurement compares against. Never raises."""
        try:
            scrape = await self._next_scrape()
            if scrape.index is not None:
                self._baseline = self._series(scrape.index) or promtext.CounterSeries({}, {})
        except Exception:  # a missing baseline only means the first sample warms up
            self._baseline = None

    async def measure(self) -> Measurement:
        try:
            scrape = await self._next_scrape()
            if scrape.index is None:
                return Measurement(value=None, error=scrape.error or "scrape failed")
            return self._measure(scrape.index)
        except Exception as exc:  # a probe must never crash the window
            return Measurement(value=None, error=f"probe fault: {clean_text(repr(exc))}")

    async def _next_scrape(self) -> Scrape:
        scrape = await self.scraper.scrape(newer_than=self._seen)
        self._seen = scrape.serial
        return scrape

    def _series(self, index: promtext.SampleIndex) -> promtext.CounterSeries | None:
        if self.gate.error_ratio is not None:
            found = promtext.counter_series(index, self.gate.error_ratio.counter)
        elif self.gate.quantile is not None:
            found = promtext.histogram_series(index, self.gate.quantile.histogram)
        else:
            return None
        return None if found is None else promtext.select(found, self._matchers)

    def _of_series(self) -> str:
        """` (of path!~"/health")` when the gate reads only some series, else nothing."""
        return f" (of {clean_text(self._matchers.describe(), 80)})" if self._matchers else ""

    def _measure(self, index: promtext.SampleIndex) -> Measurement:
        gate = self.gate
        if gate.gauge is not None:
            return _gauge(index, gate.gauge.metric, gate.gauge.labels)
        series = self._series(index)
        if series is None:
            return Measurement(value=None, error=f"no metric {_metric_name(gate)} in the scrape")
        baseline, self._baseline = self._baseline, series
        if baseline is None:
            return Measurement(value=None, detail="warming up: first scrape")
        if gate.error_ratio is not None and self._error_match is not None:
            grown = promtext.increases(series, baseline)
            errors, total = promtext.error_ratio(
                grown, gate.error_ratio.error_label, self._error_match
            )
            if total <= 0:
                return Measurement(
                    value=None, detail=f"no requests{self._of_series()} since the last sample"
                )
            return Measurement(
                value=errors / total,
                detail=(
                    f"{errors:g} of {total:g} requests{self._of_series()} matched "
                    f"{gate.error_ratio.error_label}={gate.error_ratio.error_match}"
                ),
            )
        assert gate.quantile is not None
        buckets = promtext.bucket_increases(series, baseline)
        observations = max(buckets.values(), default=0.0)
        if observations <= 0:
            return Measurement(
                value=None, detail=f"no observations{self._of_series()} since the last sample"
            )
        value = promtext.histogram_quantile(gate.quantile.q, buckets)
        if value != value:  # NaN: the buckets cannot give a quantile
            return Measurement(
                value=value, detail=f"no quantile: {gate.quantile.histogram} lacks a +Inf bucket"
            )
        scaled = value * gate.quantile.scale
        return Measurement(
            value=scaled,
            detail=(
                f"q{gate.quantile.q:g} = {scaled:.4g} over {observations:g} "
                f"observations{self._of_series()}"
            ),
        )


def _gauge(index: promtext.SampleIndex, metric: str, labels: Mapping[str, str]) -> Measurement:
    value = promtext.gauge_sum(index, metric, labels)
    if value is None:
        matching = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        where = f"{metric}{{{matching}}}" if labels else metric
        return Measurement(value=None, error=clean_text(f"no series {where}"))
    count = sum(
        1
        for sample_labels, _ in index.samples.get(metric, ())
        if all(sample_labels.get(k) == v for k, v in labels.items())
    )
    detail = f"{value:.6g}" if count == 1 else f"sum of {count} series: {value:.6g}"
    return Measurement(value=value, detail=detail)


def _metric_name(gate: MetricsGate) -> str:
    if gate.error_ratio is not None:
        return gate.error_ratio.counter
    if gate.quantile is not None:
        return gate.quantile.histogram
    assert gate.gauge is not None
    return gate.gauge.metric


def _metric_prefix(gate: MetricsGate) -> str:
    """The name every line of the gate's metric starts with (HELP, TYPE and samples)."""
    if gate.error_ratio is not None:
        return promtext.base_name(gate.error_ratio.counter)
    return _metric_name(gate)
