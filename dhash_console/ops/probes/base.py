"""What every probe shares: the measurement it returns, the protocol, and safe HTTP fetching.

A probe never raises for a network, HTTP or parse fault: each becomes a `Measurement` with an
`error`, and the engine decides (by the gate's `on_error`) whether that is a fail or an
inconclusive sample. Error text is one short line with no control characters and no secrets.
"""

from __future__ import annotations

import errno
import re
import time
from dataclasses import dataclass
from typing import Protocol

import httpx

from dhash_console.config import AnyGate

MAX_ERROR_CHARS = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
# scheme://user:password@host -> scheme://host; a URL's ?query and #fragment are dropped.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]*@")
_URL_QUERY = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s?#]*)[?#]\S*")


@dataclass(frozen=True)
class Measurement:
    """One reading of a gate's source, before the engine judges it."""

    value: float | None
    """The number compared with min/max (http: latency in ms); may be NaN."""
    error: str | None = None
    """Why nothing could be measured: short, single-line, free of secrets."""
    ok: bool | None = None
    """http gates only: status (and expect_json fields) as expected."""
    detail: str = ""
    """Human text, e.g. "200 in 12 ms" or "no requests since the last sample"."""


class Probe(Protocol):
    # Read-only, so that a probe may hold its own kind of gate (HttpGate, MetricsGate, ...).
    @property
    def gate(self) -> AnyGate: ...

    async def prime(self) -> None:
        """Take a baseline (metrics gates); a no-op otherwise. Never raises."""
        ...

    async def measure(self) -> Measurement:
        """Read the gate's source once. Never raises for network, HTTP or parse faults."""
        ...


def clean_text(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """Untrusted or error text as one short line: escapes, control characters and URL secrets
    removed."""
    text = _ANSI.sub("", text)
    text = _CONTROL.sub(" ", text)
    text = _USERINFO.sub(r"\1", text)
    text = _URL_QUERY.sub(r"\1", text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def safe_url(url: httpx.URL | str) -> str:
    """A URL fit for messages: scheme, host, port and path; no userinfo, query or fragment."""
    parsed = httpx.URL(url)
    netloc = parsed.host
    if ":" in netloc:  # an IPv6 literal
        netloc = f"[{netloc}]"
    if parsed.port is not None:
        netloc = f"{netloc}:{parsed.port}"
    return clean_text(f"{parsed.scheme}://{netloc}{parsed.path}")


class FetchError(Exception):
    """A fault reaching a source, already worded for an operator (no secrets)."""


@dataclass(frozen=True)
class Fetched:
    status: int
    body: bytes
    elapsed_ms: float
    truncated: bool
    content_type: str


async def fetch(
    client: httpx.AsyncClient,
    url: httpx.URL,
    *,
    timeout: float,
    max_bytes: int,
) -> Fetched:
    """GET `url`, reading at most `max_bytes` of the body; faults become `FetchError`."""
    started = time.perf_counter()
    try:
        async with client.stream("GET", url, timeout=httpx.Timeout(timeout)) as response:
            chunks: list[bytes] = []
            size = 0
            truncated = False
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > max_bytes:
                    truncated = True
                    break
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            return Fetched(
                status=response.status_code,
                body=b"".join(chunks)[:max_bytes],
                elapsed_ms=elapsed_ms,
                truncated=truncated,
                content_type=response.headers.get("content-type", ""),
            )
    except httpx.HTTPError as exc:
        raise FetchError(f"GET {safe_url(url)}: {describe_http_error(exc, timeout)}") from None
    except OSError as exc:  # e.g. a socket error below httpx's mapping
        raise FetchError(f"GET {safe_url(url)}: {describe_os_error(exc)}") from None


def describe_http_error(exc: httpx.HTTPError, timeout: float) -> str:
    """An httpx fault in a few words: what went wrong, never the full URL."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connect timed out after {timeout:g} s"
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {timeout:g} s"
    cause = _root_os_error(exc)
    if cause is not None:
        return describe_os_error(cause)
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {clean_text(str(exc), 120) or 'connect error'}"
    if isinstance(exc, httpx.RemoteProtocolError):
        if "without sending a response" in str(exc):
            return "connection closed before an answer"
        return "connection closed mid-response"
    if isinstance(exc, httpx.ReadError):
        return "connection reset"
    name = type(exc).__name__
    message = clean_text(str(exc), 120)
    return f"{name}: {message}" if message else name


def describe_os_error(exc: OSError) -> str:
    if exc.errno == errno.ECONNREFUSED or isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if exc.errno in (errno.ECONNRESET, errno.EPIPE) or isinstance(
        exc, ConnectionResetError | BrokenPipeError
    ):
        return "connection reset"
    text = clean_text(exc.strerror or str(exc) or type(exc).__name__, 120)
    return text


def _root_os_error(exc: BaseException) -> OSError | None:
    """The OSError under httpx's wrappers, if any (refused and reset are worded from it)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None:
            return current
        current = current.__cause__ or current.__context__
    return None
