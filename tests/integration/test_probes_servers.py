"""Probes against real HTTP servers on 127.0.0.1: every fault becomes a Measurement."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import struct
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from dhash_console.config import HttpGate, MetricsGate, PrometheusGate, load_config
from dhash_console.ops.probes import (
    HttpProbe,
    Measurement,
    Probe,
    PrometheusProbe,
    build_probes,
)
from tests.conftest import SHIPPED_CONFIG
from tests.integration.localenv_helpers import migrated_db, running_service

# --- a configurable test server -------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: bytes | str = b""
    content_type: str = "text/plain"
    delay: float = 0.0  # seconds before answering
    hang: bool = False  # never answer (until the server stops)
    cut: bool = False  # promise a longer body, send part of it, close
    reset: bool = False  # abort the connection with a TCP RST before answering


@dataclass
class Route:
    replies: list[Reply]
    requests: list[str] = field(default_factory=list)

    def next_reply(self) -> Reply:
        # The last reply repeats, so a single reply serves every request.
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


class ProbeServer:
    """An http.server in a thread whose answers each test sets per path."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                route = server.routes.get(path)
                if route is None:
                    self.send_error(404)
                    return
                route.requests.append(self.path)
                reply = route.next_reply()
                if reply.hang:
                    server.stopping.wait(30)
                    return
                if reply.delay:
                    server.stopping.wait(reply.delay)
                if reply.reset:
                    linger = struct.pack("ii", 1, 0)
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                    self.connection.close()
                    self.close_connection = True
                    return
                body = reply.body.encode() if isinstance(reply.body, str) else reply.body
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(body) + (1000 if reply.cut else 0)))
                self.end_headers()
                self.wfile.write(body)
                if reply.cut:
                    self.wfile.flush()
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        # A short poll interval: shutdown() waits for it, and tests start many servers.
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def set(self, path: str, *replies: Reply) -> Route:
        route = Route(list(replies))
        self.routes[path] = route
        return route

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server() -> Iterator[ProbeServer]:
    srv = ProbeServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A port bound but not listening: connecting to it is refused, without a race."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def http_gate(**fields: Any) -> HttpGate:
    return HttpGate.model_validate({"name": "health", "kind": "http", **fields})


def metrics_gate(**fields: Any) -> MetricsGate:
    return MetricsGate.model_validate({"name": "m", "kind": "metrics", "max": 1, **fields})


def prom_gate(url: str, **fields: Any) -> PrometheusGate:
    return PrometheusGate.model_validate(
        {"name": "p", "kind": "prometheus", "url": url, "query": "sum(up)", "max": 1, **fields}
    )


ERROR_RATIO = {"counter": "dhash_http_requests_total"}
QUANTILE = {"histogram": "dhash_http_request_duration_seconds", "q": 0.95, "scale": 1000}


def requests_text(ok: float, errors: float, created: float = 1.0) -> str:
    return (
        "# HELP dhash_http_requests_total Requests by status.\n"
        "# TYPE dhash_http_requests_total counter\n"
        f'dhash_http_requests_total{{path="/hash",status="200"}} {ok}\n'
        f'dhash_http_requests_total{{path="/hash",status="503"}} {errors}\n'
        f'dhash_http_requests_created{{path="/hash",status="200"}} {created}\n'
        f'dhash_http_requests_created{{path="/hash",status="503"}} {created}\n'
    )


def histogram_text(counts: Mapping[str, float]) -> str:
    lines = ["# TYPE dhash_http_request_duration_seconds histogram"]
    lines += [
        f'dhash_http_request_duration_seconds_bucket{{le="{le}"}} {count}'
        for le, count in counts.items()
    ]
    lines.append(f"dhash_http_request_duration_seconds_count {counts['+Inf']}")
    lines.append("dhash_http_request_duration_seconds_sum 1.0")
    return "\n".join(lines) + "\n"


def noise_text() -> str:
    """Lines a gate does not read: they must not be parsed nor break anything."""
    return "".join(f'process_noise_{i}{{x="{i}"}} {i}\n' for i in range(50))


# --- network faults: each is a Measurement with an error, never an exception ---------------


def make_probe(kind: str, base_url: str, client: httpx.AsyncClient, timeout: float) -> Probe:
    if kind == "http":
        return HttpProbe(http_gate(timeout_seconds=timeout), base_url, client)
    if kind == "metrics":
        gate = metrics_gate(error_ratio=ERROR_RATIO, timeout_seconds=timeout)
        return build_probes([gate], base_url, client)[0]
    return PrometheusProbe(prom_gate(base_url, timeout_seconds=timeout), client)


PATHS = {"http": "/health", "metrics": "/metrics", "prometheus": "/api/v1/query"}
KINDS = list(PATHS)


@pytest.mark.parametrize("kind", KINDS)
async def test_refused_is_an_error(kind: str, refused_url: str, client: httpx.AsyncClient) -> None:
    measurement = await make_probe(kind, refused_url, client, 2).measure()
    assert measurement.value is None
    assert measurement.error is not None and "connection refused" in measurement.error


@pytest.mark.parametrize("kind", KINDS)
async def test_timeout_is_an_error(
    kind: str, server: ProbeServer, client: httpx.AsyncClient
) -> None:
    server.set(PATHS[kind], Reply(hang=True))
    measurement = await make_probe(kind, server.base_url, client, 0.2).measure()
    assert measurement.value is None
    assert measurement.error is not None and "no answer within 0.2 s" in measurement.error


@pytest.mark.parametrize("kind", KINDS)
async def test_reset_is_an_error(kind: str, server: ProbeServer, client: httpx.AsyncClient) -> None:
    server.set(PATHS[kind], Reply(reset=True))
    measurement = await make_probe(kind, server.base_url, client, 2).measure()
    assert measurement.value is None
    assert measurement.error is not None
    assert "reset" in measurement.error or "closed" in measurement.error


@pytest.mark.parametrize("kind", KINDS)
async def test_cut_mid_response_is_an_error(
    kind: str, server: ProbeServer, client: httpx.AsyncClient
) -> None:
    server.set(PATHS[kind], Reply(body="partial", cut=True))
    measurement = await make_probe(kind, server.base_url, client, 2).measure()
    assert measurement.value is None
    assert measurement.error is not None and "mid-response" in measurement.error


async def test_slow_answer_within_timeout_is_measured(
    server: ProbeServer, client: httpx.AsyncClient
) -> None:
    server.set("/health", Reply(body="ok", delay=0.15))
    measurement = await make_probe("http", server.base_url, client, 2).measure()
    assert measurement.error is None and measurement.ok is True
    assert measurement.value is not None and measurement.value >= 150


async def test_metrics_5xx_and_malformed_are_errors(
    server: ProbeServer, client: httpx.AsyncClient
) -> None:
    probe = make_probe("metrics", server.base_url, client, 2)
    server.set("/metrics", Reply(status=503, body="overloaded"))
    assert (await probe.measure()).error == f"GET {server.base_url}/metrics: HTTP 503"
    server.set("/metrics", Reply(body='dhash_http_requests_total{status="200" 12\n'))
    measurement = await probe.measure()
    assert measurement.value is None
    assert measurement.error is not None and "malformed metrics text" in measurement.error
    server.set("/metrics", Reply(body="<html>Sign in</html>\n"))
    measurement = await probe.measure()
    assert measurement.error == "no metric dhash_http_requests_total in the scrape"


async def test_probe_error_text_has_no_secrets(
    refused_url: str, server: ProbeServer, client: httpx.AsyncClient
) -> None:
    port = refused_url.rsplit(":", 1)[1]
    secret_prom = f"http://alice:s3cret-pw@127.0.0.1:{port}/prom?token=t0ps3cret"
    measurement = await PrometheusProbe(prom_gate(secret_prom), client).measure()
    assert measurement.error == f"GET http://127.0.0.1:{port}/prom/api/v1/query: connection refused"

    server.set("/health", Reply(hang=True))
    secret_base = server.base_url.replace("http://", "http://bob:hunter2@")
    measurement = await HttpProbe(http_gate(timeout_seconds=0.1), secret_base, client).measure()
    assert measurement.error is not None
    assert "hunter2" not in measurement.error and "bob" not in measurement.error


async def test_prometheus_keeps_url_parameters_and_sends_the_query(
    server: ProbeServer, client: httpx.AsyncClient
) -> None:
    route = server.set("/prom/api/v1/query", Reply(body=vector(("3", {}))))
    gate = prom_gate(server.base_url + "/prom/?tenant=a", query='sum(rate(x{a="b"}[1m]))')
    measurement = await PrometheusProbe(gate, client).measure()
    assert measurement.value == 3
    sent = parse_qs(urlsplit(route.requests[0]).query)
    assert sent == {"tenant": ["a"], "query": ['sum(rate(x{a="b"}[1m]))']}


# --- http gates --------------------------------------------------------------------------


async def test_http_expect_status(server: ProbeServer, client: httpx.AsyncClient) -> None:
    server.set("/health", Reply(status=503, body="down"))
    measurement = await HttpProbe(http_gate(), server.base_url, client).measure()
    assert measurement.ok is False and measurement.error is None
    assert measurement.value is not None and measurement.value >= 0
    assert measurement.detail.startswith("503 in ") and "expected status 200" in measurement.detail

    gate = http_gate(expect_status=[200, 503])
    measurement = await HttpProbe(gate, server.base_url, client).measure()
    assert measurement.ok is True and measurement.detail.startswith("503 in ")


async def test_http_expect_json(server: ProbeServer, client: httpx.AsyncClient) -> None:
    body = {"status": "ok", "checks": {"db": {"up": True, "latency": 3}}, "items": ["a"]}
    server.set("/health", Reply(body=json.dumps(body), content_type="application/json"))
    expect = {"status": "ok", "checks.db.up": True, "checks.db.latency": 3, "items.0": "a"}
    probe = HttpProbe(http_gate(expect_json=expect), server.base_url, client)
    measurement = await probe.measure()
    assert measurement.ok is True, measurement.detail

    probe = HttpProbe(http_gate(expect_json={"checks.db.up": 1}), server.base_url, client)
    measurement = await probe.measure()
    assert measurement.ok is False and "checks.db.up is true; expected 1" in measurement.detail

    probe = HttpProbe(http_gate(expect_json={"checks.cache": "ok"}), server.base_url, client)
    measurement = await probe.measure()
    assert measurement.ok is False and "checks.cache missing" in measurement.detail


async def test_http_non_json_body_with_expect_json(
    server: ProbeServer, client: httpx.AsyncClient
) -> None:
    server.set("/health", Reply(body="\x1b[31m[red]OK[/red]"))
    probe = HttpProbe(http_gate(expect_json={"status": "ok"}), server.base_url, client)
    measurement = await probe.measure()
    assert measurement.error is None and measurement.ok is False
    assert measurement.detail.endswith("body is not JSON")


async def test_http_latency_is_the_value(server: ProbeServer, client: httpx.AsyncClient) -> None:
    server.set("/slow", Reply(body="ok", delay=0.2))
    gate = http_gate(path="/slow", max_latency_ms=50)
    measurement = await HttpProbe(gate, server.base_url + "/", client).measure()
    assert measurement.ok is True
    assert measurement.value is not None and 200 <= measurement.value < 2000
    assert measurement.detail == f"200 in {measurement.value:.0f} ms"


# --- metrics gates over two scrapes ------------------------------------------------------


async def test_error_ratio_over_two_scrapes(server: ProbeServer, client: httpx.AsyncClient) -> None:
    route = server.set("/metrics", Reply(body=requests_text(100, 1) + noise_text()))
    probe = build_probes([metrics_gate(error_ratio=ERROR_RATIO)], server.base_url, client)[0]
    await probe.prime()
    route.replies = [Reply(body=noise_text() + requests_text(386, 15))]
    measurement = await probe.measure()
    assert measurement.value == pytest.approx(14 / 300)
    assert measurement.detail == "14 of 300 requests matched status=5.."
    # no traffic since: no data, not a pass
    measurement = await probe.measure()
    assert measurement == Measurement(value=None, detail="no requests since the last sample")


async def test_error_ratio_accepts_the_name_without_total(
    server: ProbeServer, client: httpx.AsyncClient
) -> None:
    gate = metrics_gate(error_ratio={"counter": "dhash_http_requests", "error_match": "50[0-9]"})
    route = server.set("/metrics", Reply(body=requests_text(10, 0)))
    probe = build_probes([gate], server.base_url, client)[0]
    await probe.prime()
    route.replies = [Reply(body=requests_text(14, 4))]
    assert (await probe.measure()).value == pytest.approx(0.5)


async def test_error_ratio_after_a_counter_reset(
    server: ProbeServer, client: httpx.AsyncClient
) -> None:
    route = server.set("/metrics", Reply(body=requests_text(1000, 10)))
    probe = build_probes([metrics_gate(error_ratio=ERROR_RATIO)], server.base_url, client)[0]
    await probe.prime()
    # the process restarted: counters start again from zero
    route.replies = [Reply(body=requests_text(30, 10, created=2.0))]
    measurement = await probe.measure()
    assert measurement.value == pytest.approx(10 / 40)
    # restarted and already counted past the old values: the _created time tells
    route.replies = [Reply(body=requests_text(2000, 20, created=3.0))]
    assert (await probe.measure()).value == pytest.approx(20 / 2020)


async def test_metrics_without_a_baseline_warm_up(
    server: ProbeServer, client: httpx.AsyncClient
) -> None:
    route = server.set("/metrics", Reply(body=requests_text(5, 0)))
    probe = build_probes([metrics_gate(error_ratio=ERROR_RATIO)], server.base_url, client)[0]
    measurement = await probe.measure()
    assert measurement == Measurement(value=None, detail="warming up: first scrape")
    route.replies = [Reply(body=requests_text(9, 1))]
    assert (await probe.measure()).value == pytest.approx(0.2)


async def test_prime_against_a_dead_endpoint_never_raises(
    refused_url: str, client: httpx.AsyncClient
) -> None:
    probe = build_probes([metrics_gate(error_ratio=ERROR_RATIO)], refused_url, client)[0]
    await probe.prime()
    assert (await probe.measure()).error is not None


async def test_quantile_over_two_scrapes(server: ProbeServer, client: httpx.AsyncClient) -> None:
    before = {"0.1": 10, "0.5": 10, "1": 10, "+Inf": 10}
    after = {"0.1": 60, "0.5": 100, "1": 110, "+Inf": 110}
    route = server.set("/metrics", Reply(body=histogram_text(before)))
    probe = build_probes([metrics_gate(quantile=QUANTILE, max=500)], server.base_url, client)[0]
    await probe.prime()
    route.replies = [Reply(body=histogram_text(after))]
    measurement = await probe.measure()
    # 100 observations: rank 95 lies in (0.5, 1] holding 10 of them, 5 in => 0.75 s
    assert measurement.value == pytest.approx(750)
    assert measurement.detail == "q0.95 = 750 over 100 observations"
    measurement = await probe.measure()
    assert measurement == Measurement(value=None, detail="no observations since the last sample")


async def test_quantile_after_a_reset(server: ProbeServer, client: httpx.AsyncClient) -> None:
    route = server.set("/metrics", Reply(body=histogram_text({"0.1": 5, "1": 50, "+Inf": 50})))
    probe = build_probes([metrics_gate(quantile=QUANTILE)], server.base_url, client)[0]
    await probe.prime()
    # restarted: the +Inf bucket alone looks like it grew; the whole histogram reset
    route.replies = [Reply(body=histogram_text({"0.1": 40, "1": 40, "+Inf": 60}))]
    measurement = await probe.measure()
    assert measurement.value == pytest.approx(1000)  # rank 57 > 40: in +Inf -> highest bound


async def test_gauge(server: ProbeServer, client: httpx.AsyncClient) -> None:
    text = (
        "# TYPE dhash_queue_pending gauge\n"
        'dhash_queue_pending{queue="hash",shard="1"} 3\n'
        'dhash_queue_pending{queue="hash",shard="2"} 4\n'
        'dhash_queue_pending{queue="mail",shard="1"} NaN\n'
    )
    server.set("/metrics", Reply(body=text))

    async def gauge(labels: dict[str, str]) -> Measurement:
        gate = metrics_gate(gauge={"metric": "dhash_queue_pending", "labels": labels})
        return await build_probes([gate], server.base_url, client)[0].measure()

    assert await gauge({"queue": "hash"}) == Measurement(value=7, detail="sum of 2 series: 7")
    assert await gauge({"shard": "2"}) == Measurement(value=4, detail="4")
    assert math.isnan((await gauge({"queue": "mail"})).value or 0)
    none = await gauge({"queue": "nope"})
    assert none == Measurement(value=None, error='no series dhash_queue_pending{queue="nope"}')


async def test_gates_on_one_url_share_one_scrape(
    server: ProbeServer, client: httpx.AsyncClient
) -> None:
    text = requests_text(10, 0) + histogram_text({"0.1": 1, "+Inf": 1})
    text += "# TYPE dhash_queue_pending gauge\ndhash_queue_pending 2\n"
    route = server.set("/metrics", Reply(body=text, delay=0.05))
    gates = [
        metrics_gate(name="errors", error_ratio=ERROR_RATIO),
        metrics_gate(name="p95", quantile=QUANTILE),
        metrics_gate(name="queue", gauge={"metric": "dhash_queue_pending"}),
    ]
    probes = build_probes(gates, server.base_url, client)
    await asyncio.gather(*(p.prime() for p in probes))
    assert len(route.requests) == 1
    for round_ in range(2, 5):
        measurements = await asyncio.gather(*(p.measure() for p in probes))
        assert len(route.requests) == round_
        assert measurements[2].value == 2
        assert all(m.error is None for m in measurements)


async def test_a_cancelled_waiter_leaves_the_shared_scrape_running(
    server: ProbeServer, client: httpx.AsyncClient
) -> None:
    route = server.set("/metrics", Reply(body="dhash_queue_pending 5\n", delay=0.2))
    gate = metrics_gate(gauge={"metric": "dhash_queue_pending"})
    first, second = build_probes(
        [gate, gate.model_copy(update={"name": "m2"})], server.base_url, client
    )
    impatient = asyncio.create_task(first.measure())
    patient = asyncio.create_task(second.measure())
    await asyncio.sleep(0)
    impatient.cancel()
    assert (await patient).value == 5
    assert impatient.cancelled()
    assert len(route.requests) == 1


# --- prometheus API shapes ---------------------------------------------------------------


def vector(*samples: tuple[str, dict[str, str]]) -> str:
    result = [{"metric": labels, "value": [1700000000.5, value]} for value, labels in samples]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(body=vector(("0.25", {}))), Measurement(value=0.25, detail="vector = 0.25")),
        (
            Reply(body=vector(("12", {"job": "dhash"}))),
            Measurement(value=12, detail='{job="dhash"} = 12'),
        ),
        (
            Reply(
                body=json.dumps(
                    {"status": "success", "data": {"resultType": "scalar", "result": [1, "2"]}}
                )
            ),
            Measurement(value=2, detail="scalar = 2"),
        ),
        (Reply(body=vector()), Measurement(value=None, error="empty result")),
        (
            Reply(body=vector(("1", {"i": "a"}), ("2", {"i": "b"}))),
            Measurement(
                value=None, error="query returned 2 series; expected one (aggregate with sum())"
            ),
        ),
        (
            Reply(
                status=400,
                body=json.dumps(
                    {"status": "error", "errorType": "bad_data", "error": "parse error at char 4"}
                ),
            ),
            Measurement(value=None, error="query failed: bad_data: parse error at char 4"),
        ),
        (
            Reply(
                body=json.dumps(
                    {"status": "success", "data": {"resultType": "matrix", "result": []}}
                )
            ),
            Measurement(value=None, error="query returned a matrix; expected an instant vector"),
        ),
        (Reply(body=vector(("+Inf", {}))), Measurement(value=math.inf, detail="vector = inf")),
    ],
)
async def test_prometheus_answers(
    reply: Reply, expected: Measurement, server: ProbeServer, client: httpx.AsyncClient
) -> None:
    server.set("/api/v1/query", reply)
    assert await PrometheusProbe(prom_gate(server.base_url), client).measure() == expected


async def test_prometheus_nan(server: ProbeServer, client: httpx.AsyncClient) -> None:
    server.set("/api/v1/query", Reply(body=vector(("NaN", {}))))
    measurement = await PrometheusProbe(prom_gate(server.base_url), client).measure()
    assert measurement.error is None
    assert measurement.value is not None and math.isnan(measurement.value)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(status=502, body="<html>bad gateway</html>"), "HTTP 502"),
        (Reply(body="{not json"), "not a Prometheus API answer"),
        (Reply(body='{"status": "success", "data": {"resultType": "vector"}}'), "not a Prom"),
        (Reply(body=vector(("many", {}))), "not a number: 'many'"),
    ],
)
async def test_prometheus_bad_answers(
    reply: Reply, error: str, server: ProbeServer, client: httpx.AsyncClient
) -> None:
    server.set("/api/v1/query", reply)
    measurement = await PrometheusProbe(prom_gate(server.base_url), client).measure()
    assert measurement.value is None
    assert measurement.error is not None and error in measurement.error


# --- a real exporter's output --------------------------------------------------------------


async def test_gates_read_what_prometheus_client_exports(
    server: ProbeServer, client: httpx.AsyncClient
) -> None:
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    registry = CollectorRegistry()
    requests = Counter("dhash_http_requests", "Requests.", ["path", "status"], registry=registry)
    duration = Histogram(
        "dhash_http_request_duration_seconds", "Latency.", buckets=(0.1, 0.5, 1), registry=registry
    )
    route = server.set("/metrics", Reply(body=generate_latest(registry)))
    gates = [
        metrics_gate(name="errors", error_ratio=ERROR_RATIO),
        metrics_gate(name="p95", quantile=QUANTILE),
    ]
    errors, p95 = build_probes(gates, server.base_url, client)
    await asyncio.gather(errors.prime(), p95.prime())
    for _ in range(90):
        requests.labels("/hash", "200").inc()
        duration.observe(0.05)
    for _ in range(10):
        requests.labels("/hash", "500").inc()
        duration.observe(0.7)
    route.replies = [Reply(body=generate_latest(registry))]
    ratio, quantile = await asyncio.gather(errors.measure(), p95.measure())
    assert ratio.value == pytest.approx(0.1)
    # rank 95 of 100: 5 into the 10 observations of (0.5, 1] -> 0.75 s
    assert quantile.value == pytest.approx(750)
    assert len(route.requests) == 2


async def test_error_ratio_reads_only_the_series_its_matchers_keep(
    tmp_path: Path, client: httpx.AsyncClient
) -> None:
    """The shipped error_rate gate, with the exclusion docs/config.md gives, against the real
    reference service: its own /health and /metrics probes (and the fault switch) are left out,
    so a burst of 5xx on a real endpoint is the rate it reports, where the same gate without
    the exclusion is diluted by the probes."""
    shipped = next(g for g in load_config(SHIPPED_CONFIG).gates if g.name == "error_rate")
    assert isinstance(shipped, MetricsGate) and shipped.error_ratio is not None
    assert shipped.error_ratio.exclude == {"path": "/health|/version|/metrics|/admin/.*"}
    config = shipped.model_dump()
    config["error_ratio"]["exclude"] = {}
    unfiltered = MetricsGate.model_validate(config)
    search = {"hash": "0123456789abcdef"}
    with running_service(migrated_db(tmp_path / "dhash.sqlite3")) as service:
        filtered_probe, unfiltered_probe = build_probes([shipped, unfiltered], service.url, client)
        await filtered_probe.prime()
        await unfiltered_probe.prime()
        for _ in range(20):  # what a console probing every second sends
            assert (await client.get(service.url + "/health")).status_code == 200
            assert (await client.get(service.url + "/metrics")).status_code == 200
        for _ in range(5):
            assert (await client.get(service.url + "/search", params=search)).status_code == 200
        admin = service.url + "/admin/faults"
        assert (await client.post(admin, json={"error_rate": 1.0})).status_code == 200
        for _ in range(5):
            assert (await client.get(service.url + "/search", params=search)).status_code == 500
        filtered = await filtered_probe.measure()
        unfiltered_measurement = await unfiltered_probe.measure()
    assert filtered.error is None and filtered.value == 0.5
    assert filtered.detail == (
        '5 of 10 requests (of path!~"/health|/version|/metrics|/admin/.*") matched status=5..'
    )
    # Unfiltered, the same burst is diluted by 40 probe requests, a scrape and the switch.
    assert unfiltered_measurement.value is not None and unfiltered_measurement.value < 0.15


async def test_quantile_reads_only_the_series_its_matchers_keep(
    server: ProbeServer, client: httpx.AsyncClient
) -> None:
    fast = 'h_bucket{path="/health",le="0.1"} %d\nh_bucket{path="/health",le="+Inf"} %d\n'
    slow = 'h_bucket{path="/hash",le="0.1"} 0\nh_bucket{path="/hash",le="+Inf"} %d\n'
    gate = metrics_gate(
        quantile={"histogram": "h", "q": 0.5, "exclude": {"path": "/health"}}, max=1000
    )
    probe = build_probes([gate], server.base_url, client)[0]
    server.set("/metrics", Reply(body="# TYPE h histogram\n" + fast % (0, 0) + slow % 0))
    await probe.prime()
    server.set("/metrics", Reply(body="# TYPE h histogram\n" + fast % (90, 90) + slow % 10))
    measurement = await probe.measure()
    # Only /hash counts: its 10 observations are all above 0.1, so the median is 0.1 (the
    # highest finite bound); with /health's 90 fast ones it would be 0.1 * 50 / 90.
    assert measurement.value == pytest.approx(0.1)
    server.set("/metrics", Reply(body="# TYPE h histogram\n" + fast % (99, 99) + slow % 10))
    quiet = await probe.measure()
    assert quiet.value is None and quiet.detail == (
        'no observations (of path!~"/health") since the last sample'
    )
