"""Probes behind the quality gates: each turns a gate's source into a `Measurement`.

`build_probes` makes one probe per gate; metrics gates reading the same URL share a scraper,
so they cost one request per evaluation round. The engine judges the measurements.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from dhash_console.config import AnyGate, HttpGate, MetricsGate, PrometheusGate
from dhash_console.errors import ConfigError
from dhash_console.ops.probes.base import Measurement, Probe, clean_text, safe_url
from dhash_console.ops.probes.http import HttpProbe
from dhash_console.ops.probes.metrics import MetricsProbe, MetricsScraper, Scrape
from dhash_console.ops.probes.prometheus import PrometheusProbe

__all__ = [
    "HttpProbe",
    "Measurement",
    "MetricsProbe",
    "MetricsScraper",
    "Probe",
    "PrometheusProbe",
    "Scrape",
    "build_probes",
    "clean_text",
    "safe_url",
]


def build_probes(gates: Sequence[AnyGate], base_url: str, client: httpx.AsyncClient) -> list[Probe]:
    """One probe per gate, in order. Raises ConfigError for a URL that cannot be built."""
    scrapers: dict[str, MetricsScraper] = {}
    probes: list[Probe] = []
    for gate in gates:
        try:
            probes.append(_probe(gate, base_url, client, scrapers))
        except httpx.InvalidURL as exc:
            raise ConfigError(
                [f"gates.{gate.name}: cannot build its URL: {clean_text(str(exc))}"]
            ) from None
    return probes


def _probe(
    gate: AnyGate, base_url: str, client: httpx.AsyncClient, scrapers: dict[str, MetricsScraper]
) -> Probe:
    if isinstance(gate, HttpGate):
        return HttpProbe(gate, base_url, client)
    if isinstance(gate, PrometheusGate):
        return PrometheusProbe(gate, client)
    assert isinstance(gate, MetricsGate)
    url = httpx.URL(base_url.rstrip("/") + gate.path)
    scraper = scrapers.get(str(url))
    if scraper is None:
        scraper = MetricsScraper(client, url, timeout=gate.timeout_seconds)
        scrapers[str(url)] = scraper
    return MetricsProbe(gate, scraper)
