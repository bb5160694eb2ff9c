"""The deployer protocol, its failure, and the helpers both drivers share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, runtime_checkable

import httpx

from dhash_console.errors import OperationFailed
from dhash_console.events import Level
from dhash_console.textsafe import clean

LogSink = Callable[[Level, str], Awaitable[None]]
"""Where a driver reports each step and each line of output: `await log("info", "...")`."""

LAST_LINES = 20
"""How many lines of output a DeployFailed carries."""


@runtime_checkable
class Deployer(Protocol):
    """What the engine needs from a deployer: what runs, put a version in place, is it healthy."""

    async def current_version(self) -> str | None:
        """The version running now, or None when nothing runs or it cannot be told."""
        ...

    async def deploy(self, version: str, log: LogSink) -> None:
        """Put `version` in place; raise DeployFailed naming the step that failed."""
        ...

    async def rollback(self, version: str, log: LogSink) -> None:
        """Return to the earlier `version`; raise DeployFailed naming the step that failed."""
        ...

    async def healthy(self) -> bool:
        """Whether `base_url/health` answers 200 now. Never raises."""
        ...

    async def stop(self, log: LogSink) -> None:
        """Stop what runs (local) or nothing (command)."""
        ...


class DeployFailed(OperationFailed):
    """A deploy, rollback or stop step failed: which step, how it ended, its last output."""

    def __init__(
        self,
        step: str,
        problem: str,
        last_lines: Sequence[str] = (),
        exit_status: int | None = None,
    ) -> None:
        self.step = step
        self.problem = problem
        self.last_lines = list(last_lines)[-LAST_LINES:]
        self.exit_status = exit_status
        message = f"{step}: {problem}"
        if self.last_lines:
            message += "; last output:\n" + "\n".join(f"  {line}" for line in self.last_lines)
        super().__init__(message)


def clean_line(text: str) -> str:
    """One line of someone else's output, safe to show: no escapes, no control characters."""
    return clean(text).replace("\n", " ").rstrip()


async def health_ok(base_url: str, timeout_s: float) -> bool:
    """GET base_url/health answers 200 within the timeout. Any failure is a plain False."""
    try:
        async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False) as client:
            response = await client.get(base_url.rstrip("/") + "/health")
    except Exception:  # refused, reset, timeout, bad URL: all mean "not healthy"
        return False
    return response.status_code == 200
