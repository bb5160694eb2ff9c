"""The delivery machinery every channel shares: outcomes, pacing, bounded retries.

A channel's `attempt` makes one try and says whether another may help (429, 5xx,
timeouts, a dropped connection) and how long to wait first; `deliver_with_retries`
runs the tries with exponential backoff, honouring a server's rate-limit wait up to a
bound, and never raises.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from dhash_console.redact import redact


@dataclass(frozen=True)
class Attempt:
    """One try: ok, or why not, whether to retry, and a wait the server asked for."""

    ok: bool
    detail: str = ""
    retryable: bool = False
    wait_s: float | None = None


@dataclass(frozen=True)
class Outcome:
    """What came of one send, all tries included. `detail` is already redacted."""

    ok: bool
    detail: str
    attempts: int


class Pacer:
    """Keeps at least `min_interval` between sends and honours "wait until" from a server."""

    def __init__(self, min_interval: float, clock: Callable[[], float]) -> None:
        self.min_interval = min_interval
        self.clock = clock
        self._next_at = 0.0

    def hold(self, seconds: float) -> None:
        """No send before `seconds` from now (a 429's retry-after, Discord's reset-after)."""
        self._next_at = max(self._next_at, self.clock() + seconds)

    async def wait_turn(self) -> None:
        delay = self._next_at - self.clock()
        if delay > 0:
            await asyncio.sleep(delay)
        self._next_at = max(self._next_at, self.clock() + self.min_interval)


@dataclass(frozen=True)
class RetryPolicy:
    retries: int
    backoff_s: float
    max_wait_s: float

    def backoff(self, attempt: int) -> float:
        """Exponential with a little jitter, so that channels do not retry in step."""
        base: float = self.backoff_s * (2 ** (attempt - 1))
        return min(base * (1 + random.random() * 0.2), 60.0)


async def deliver_with_retries(
    attempt: Callable[[], Awaitable[Attempt]],
    *,
    policy: RetryPolicy,
    pacer: Pacer,
    secrets: list[str],
) -> Outcome:
    """Try up to 1 + retries times; every detail passes through `redact` before it leaves."""
    tries = 0
    last = Attempt(ok=False, detail="not tried")
    while True:
        tries += 1
        await pacer.wait_turn()
        try:
            last = await attempt()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a channel bug must not stop the worker
            last = Attempt(ok=False, detail=f"{type(exc).__name__}: {exc}", retryable=False)
        if last.ok:
            return Outcome(True, redact(last.detail, secrets), tries)
        if not last.retryable or tries > policy.retries:
            break
        if last.wait_s is not None:
            if last.wait_s > policy.max_wait_s:
                detail = (
                    f"{last.detail}; asked to wait {last.wait_s:.4g} s, more than "
                    f"max_wait_seconds {policy.max_wait_s:.4g}"
                )
                return Outcome(False, redact(detail, secrets), tries)
            pacer.hold(last.wait_s)
        else:
            await asyncio.sleep(policy.backoff(tries))
    suffix = f" (after {tries} attempt{'s' if tries != 1 else ''})"
    return Outcome(False, redact(last.detail + suffix, secrets), tries)
