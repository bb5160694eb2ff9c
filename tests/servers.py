"""A small real HTTP service the engine tests steer: health, metrics and a control knob.

It runs under uvicorn on 127.0.0.1 in a thread; each /metrics scrape counts
`requests_per_scrape` more requests, `error_ratio` of them answered 500.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.conftest import free_port


@dataclass
class ScriptedService:
    port: int = field(default_factory=free_port)
    healthy: bool = True
    error_ratio: float = 0.0
    requests_per_scrape: int = 100
    version: str = "1.0.0"
    log_message: str = "ok"
    ok_total: float = 0.0
    error_total: float = 0.0
    scrapes: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> Starlette:
        async def health(request: Request) -> Response:
            if not self.healthy:
                return JSONResponse({"status": "down", "message": self.log_message}, 503)
            return JSONResponse({"status": "ok", "version": self.version})

        async def metrics(request: Request) -> Response:
            self.scrapes += 1
            errors = self.requests_per_scrape * self.error_ratio
            self.error_total += errors
            self.ok_total += self.requests_per_scrape - errors
            text = (
                "# TYPE dhash_http_requests_total counter\n"
                f'dhash_http_requests_total{{method="POST",path="/hash",status="201"}} '
                f"{self.ok_total}\n"
                f'dhash_http_requests_total{{method="POST",path="/hash",status="500"}} '
                f"{self.error_total}\n"
                "# TYPE dhash_http_request_duration_seconds histogram\n"
                f'dhash_http_request_duration_seconds_bucket{{le="0.1"}} {self.ok_total}\n'
                f'dhash_http_request_duration_seconds_bucket{{le="+Inf"}} '
                f"{self.ok_total + self.error_total}\n"
                f"dhash_http_request_duration_seconds_count {self.ok_total + self.error_total}\n"
                f"dhash_http_request_duration_seconds_sum {self.ok_total * 0.01}\n"
            )
            return PlainTextResponse(text)

        return Starlette(routes=[Route("/health", health), Route("/metrics", metrics)])


@contextmanager
def running(service: ScriptedService) -> Iterator[ScriptedService]:
    server = uvicorn.Server(
        uvicorn.Config(
            service.app(), host="127.0.0.1", port=service.port, log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test service did not start")
        time.sleep(0.01)
    try:
        yield service
    finally:
        server.should_exit = True
        thread.join(10)
