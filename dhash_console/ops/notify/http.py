"""Channels that POST JSON to a webhook URL (the URL is a secret: it never leaves here)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from dhash_console.ops.notify.channel import Channel
from dhash_console.ops.notify.delivery import Attempt, RetryPolicy
from dhash_console.ops.notify.message import Item
from dhash_console.redact import protect_logs, url_secrets
from dhash_console.textsafe import clean

BODY_SNIPPET = 200


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class HttpChannel(Channel):
    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        policy: RetryPolicy,
        min_interval: float,
        clock: Callable[[], float],
        events: Sequence[str] | None,
        environments: Sequence[str] | None,
    ) -> None:
        secrets = url_secrets(url)
        super().__init__(
            events=events,
            environments=environments,
            policy=policy,
            min_interval=min_interval,
            clock=clock,
            secrets=secrets,
        )
        self.url = url
        # Every phase of a request is bounded; a hung receiver costs one timeout per try.
        self.timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        self._client: httpx.AsyncClient | None = None
        protect_logs(secrets)  # httpx logs each request's URL

    @abstractmethod
    def payload(self, item: Item) -> dict[str, Any]:
        """The JSON body for one item."""

    def retry_after(self, response: httpx.Response) -> float | None:
        """How long a 429 asks us to wait (seconds), from the standard header."""
        return _seconds(response.headers.get("retry-after"))

    def after_success(self, response: httpx.Response) -> None:
        """Hook for channels whose successful answers carry rate-limit state."""

    async def attempt(self, item: Item) -> Attempt:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        try:
            response = await self._client.post(self.url, json=self.payload(item))
        except httpx.TimeoutException as exc:
            return Attempt(False, f"timed out ({type(exc).__name__})", retryable=True)
        except httpx.HTTPError as exc:
            return Attempt(False, f"{type(exc).__name__}: {exc}", retryable=True)
        status = response.status_code
        if 200 <= status < 300:
            self.after_success(response)
            return Attempt(True, f"HTTP {status}")
        body = clean(response.text[:BODY_SNIPPET]).strip()
        detail = f"HTTP {status}" + (f": {body}" if body else "")
        if status == 429:
            return Attempt(False, detail, retryable=True, wait_s=self.retry_after(response))
        return Attempt(False, detail, retryable=status >= 500)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
