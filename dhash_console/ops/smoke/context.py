"""What every smoke check receives, and how a check says it failed."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from dhash_console.config import ResolvedEnvironment
from dhash_console.textsafe import clean

DETAIL_MAX = 300


class SmokeFailure(Exception):
    """The check ran and what it saw is wrong; the message says what."""


class NotApplicable(Exception):
    """The check does not apply to this environment (reported as skipped, not failed)."""


def tidy(text: str) -> str:
    """Untrusted text as one short, safe line."""
    text = re.sub(r"\s+", " ", clean(text)).strip()
    return text if len(text) <= DETAIL_MAX else text[: DETAIL_MAX - 1] + "…"


@dataclass
class SmokeContext:
    env: ResolvedEnvironment
    client: httpx.AsyncClient
    timeout_s: float
    created: list[str] = field(default_factory=list)  # ids to delete at the end
    notes: dict[str, Any] = field(default_factory=dict)  # what one check hands the next

    def url(self, path: str) -> str:
        return self.env.base_url + path

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.request(method, self.url(path), timeout=self.timeout_s, **kwargs)


def json_body(response: httpx.Response, *, expect: tuple[int, ...]) -> Any:
    """The JSON body of a response with one of the `expect`ed statuses, or SmokeFailure."""
    where = f"{response.request.method} {response.request.url.path}"
    if response.status_code not in expect:
        body = tidy(response.text)[:160]
        raise SmokeFailure(f"{where} answered {response.status_code}: {body}")
    try:
        return response.json()
    except ValueError:
        raise SmokeFailure(f"{where}: body is not JSON: {tidy(response.text)[:160]}") from None


def field_of(body: Any, name: str, kind: type, where: str) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get(name), kind):
        raise SmokeFailure(f"{where}: no {kind.__name__} field {name!r} in {tidy(str(body))}")
    return body[name]


Check = Callable[[SmokeContext], Awaitable[str]]


@dataclass(frozen=True)
class Step:
    name: str
    check: Check
    required: bool = False  # when it fails, the group's later steps are not run
    always: bool = False  # runs even after a required step failed (clean-up)
