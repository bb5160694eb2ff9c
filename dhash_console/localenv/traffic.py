"""Steady load for the reference service, so that rate gates (error rate, latency) have data.

Requests start on a fixed schedule (start + n / rps), each in its own task, so a slow answer
never holds the next one back and the rate does not drift. Mostly uploads of small generated
PNGs, all different; now and then a search for something uploaded before.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import random
from collections import deque
from collections.abc import Callable

import httpx
from PIL import Image

MAX_LAG_S = 1.0  # further behind schedule than this (a stalled loop): resume from now, no burst
SEARCH_SHARE = 0.2
STOP_DRAIN_S = 2.0
WATCH_S = 0.5  # how often run_for asks whether the service is still there


def generated_png(rng: random.Random) -> bytes:
    """A 36×32 grey PNG of a random 9×8 pattern: tiny, and a different hash nearly every time."""
    img = Image.frombytes("L", (9, 8), rng.randbytes(72))
    img = img.resize((36, 32), Image.Resampling.NEAREST)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


class TrafficGenerator:
    """Sends `rps` requests a second to `base_url` between start() and stop()."""

    def __init__(
        self,
        base_url: str,
        rps: float,
        *,
        timeout_s: float = 5.0,
        max_in_flight: int = 200,
        search_share: float = SEARCH_SHARE,
        seed: int | None = None,
    ) -> None:
        if rps <= 0:
            raise ValueError(f"rps must be positive, not {rps}")
        self.base_url = base_url.rstrip("/")
        self.rps = rps
        self.timeout_s = timeout_s
        self.max_in_flight = max_in_flight
        self.search_share = search_share
        self.sent = 0
        self.ok = 0
        self.failed = 0
        self.network_errors = 0  # part of `failed`: no HTTP answer at all
        self.dropped = 0  # not sent: too many requests still waiting for an answer
        self.by_status: dict[int, int] = {}
        self._rng = random.Random(seed)
        self._recent: deque[str] = deque(maxlen=64)
        self._client: httpx.AsyncClient | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self._loop_task is not None:
            raise RuntimeError("the traffic generator is already running")
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(self.timeout_s),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        )
        self._loop_task = asyncio.create_task(self._schedule(), name="dhash-traffic")

    async def stop(self, drain_s: float = STOP_DRAIN_S) -> None:
        """Stop sending; give requests on their way `drain_s` to finish, then cancel them."""
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._in_flight:
            _, pending = await asyncio.wait(set(self._in_flight), timeout=drain_s)
            for waiting in pending:
                waiting.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def summary(self) -> dict[str, object]:
        return {
            "sent": self.sent,
            "ok": self.ok,
            "failed": self.failed,
            "network_errors": self.network_errors,
            "dropped": self.dropped,
            "by_status": {str(code): n for code, n in sorted(self.by_status.items())},
        }

    async def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.rps
        due = loop.time()
        while True:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif -delay > MAX_LAG_S:
                due = loop.time()
            self._launch()
            due += interval

    def _launch(self) -> None:
        if len(self._in_flight) >= self.max_in_flight:
            self.dropped += 1
            return
        task = asyncio.create_task(self._one_request())
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _one_request(self) -> None:
        client = self._client
        assert client is not None
        self.sent += 1
        searching = bool(self._recent) and self._rng.random() < self.search_share
        try:
            if searching:
                params: dict[str, str | int] = {
                    "hash": self._rng.choice(self._recent),
                    "max_distance": 8,
                }
                response = await client.get("/search", params=params)
            else:
                files = {
                    "image": (f"traffic-{self.sent}.png", generated_png(self._rng), "image/png")
                }
                response = await client.post("/hash", files=files)
        except asyncio.CancelledError:
            self.failed += 1  # still unanswered at stop(): not a success
            raise
        except (httpx.HTTPError, httpx.InvalidURL, OSError):
            self.failed += 1
            self.network_errors += 1
            return
        code = response.status_code
        self.by_status[code] = self.by_status.get(code, 0) + 1
        if not 200 <= code < 300:
            self.failed += 1
            return
        self.ok += 1
        if not searching:
            with contextlib.suppress(ValueError, TypeError, KeyError):
                digest = response.json()["hash"]
                if isinstance(digest, str):
                    self._recent.append(digest)


async def run_for(
    generator: TrafficGenerator, seconds: float, alive: Callable[[], bool] | None = None
) -> None:
    """Run `generator` for `seconds`, until cancelled or, given `alive`, until it says False
    (the service is gone: nobody left to send to); stopping it either way."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    await generator.start()
    try:
        while (left := deadline - loop.time()) > 0 and (alive is None or alive()):
            await asyncio.sleep(left if alive is None else min(left, WATCH_S))
    finally:
        await generator.stop()
