"""Injecting the faults of a FaultSpec into the running service (as podinfo and rollouts-demo).

`after_s` counts from the moment a spec takes effect: process start-up for the spec given on
the command line, the change itself for one set at run time on /admin/faults.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Collection

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from dhash_console.localenv.faults import FaultSpec
from dhash_console.localenv.routing import RouteTemplates


class FaultState:
    """The fault spec in force and since when; shared by the middleware and the endpoints."""

    def __init__(
        self,
        spec: FaultSpec,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._clock = clock
        self.rng = rng or random.Random()
        self.spec = spec
        self.since = clock()

    def set(self, spec: FaultSpec) -> None:
        self.spec = spec
        self.since = self._clock()

    def starts_in_s(self) -> float:
        return max(0.0, self.spec.after_s - (self._clock() - self.since))

    def active(self) -> FaultSpec | None:
        """The spec when it applies now, else None."""
        if self.spec.is_clean or self.starts_in_s() > 0:
            return None
        return self.spec

    def should_fail(self) -> bool:
        spec = self.active()
        return spec is not None and self.rng.random() < spec.error_rate

    def to_json(self) -> dict[str, object]:
        return {
            **self.spec.model_dump(),
            "spec": self.spec.to_spec(),
            "active": self.active() is not None,
            "starts_in_s": round(self.starts_in_s(), 3),
        }


class FaultMiddleware:
    """Adds latency and answers 500 on API routes, as the fault state says."""

    def __init__(
        self,
        app: ASGIApp,
        state: FaultState,
        templates: RouteTemplates,
        api_paths: Collection[str],
    ) -> None:
        self.app = app
        self.state = state
        self.templates = templates
        self.api_paths = frozenset(api_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.templates.template(scope) not in self.api_paths:
            await self.app(scope, receive, send)
            return
        spec = self.state.active()
        if spec is not None and spec.latency_ms > 0:
            await asyncio.sleep(spec.latency_ms / 1000)
        if self.state.should_fail():
            response = JSONResponse({"error": "injected fault (error_rate)"}, status_code=500)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
