"""The service's Prometheus metrics, in a registry of its own, and the middleware that counts.

A per-app registry (not prometheus_client's global one) keeps two apps in one process, as in
the tests, from sharing or clashing over counters.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dhash_console.localenv.routing import RouteTemplates

ACCESS_LOG = logging.getLogger("dhash.access")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MAX_LOGGED_PATH = 200


class ServiceMetrics:
    def __init__(self, version: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "dhash_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "path", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "dhash_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ["path"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.hashes_stored = Gauge(
            "dhash_hashes_stored", "Hashes in the database", registry=self.registry
        )
        self.queue_pending = Gauge(
            "dhash_queue_pending", "Processing queue entries still pending", registry=self.registry
        )
        self.build_info = Gauge(
            "dhash_build_info",
            "The running version (always 1)",
            ["version"],
            registry=self.registry,
        )
        self.build_info.labels(version=version).set(1)

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        label = method if method in METHODS else "OTHER"
        self.requests.labels(method=label, path=path, status=str(status)).inc()
        self.duration.labels(path=path).observe(seconds)

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))


def printable(text: str, limit: int = MAX_LOGGED_PATH) -> str:
    """Text for a log line: control characters shown as escapes, length bounded."""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    return out + ("..." if len(text) > limit else "")


class MetricsMiddleware:
    """Counts and times every HTTP request, and writes the access log line for it."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, templates: RouteTemplates) -> None:
        self.app = app
        self.metrics = metrics
        self.templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        template = self.templates.template(scope)
        status = 500  # what the client gets if the app raises before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            elapsed = time.perf_counter() - started
            method = str(scope["method"])
            self.metrics.observe(method, template, status, elapsed)
            client = scope.get("client")
            who = f"{client[0]}:{client[1]}" if client else "-"
            # The path without its query string: nothing a client sends there is logged.
            ACCESS_LOG.info(
                '%s "%s %s" %d %.1fms',
                who,
                printable(method, 16),
                printable(str(scope["path"])),
                status,
                elapsed * 1000,
            )
