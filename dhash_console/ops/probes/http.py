"""HTTP gates: GET a path of the environment; check the status, the JSON fields, the latency."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from dhash_console.config import HttpGate
from dhash_console.ops.probes.base import FetchError, Measurement, clean_text, fetch

MAX_BODY_BYTES = 1024 * 1024
_MISSING = object()


class HttpProbe:
    """One http gate against `base_url`; the measured value is the latency in ms."""

    def __init__(self, gate: HttpGate, base_url: str, client: httpx.AsyncClient) -> None:
        self.gate = gate
        self.client = client
        self.url = httpx.URL(base_url.rstrip("/") + gate.path)

    async def prime(self) -> None:
        """Nothing to remember between samples."""

    async def measure(self) -> Measurement:
        try:
            got = await fetch(
                self.client, self.url, timeout=self.gate.timeout_seconds, max_bytes=MAX_BODY_BYTES
            )
        except FetchError as exc:
            return Measurement(value=None, error=str(exc))
        except Exception as exc:  # a probe must never crash the window
            return Measurement(value=None, error=f"probe fault: {clean_text(repr(exc))}")
        timing = f"{got.status} in {got.elapsed_ms:.0f} ms"
        if got.status not in self.gate.expect_status:
            return Measurement(
                value=got.elapsed_ms,
                ok=False,
                detail=f"{timing}; expected status {_statuses(self.gate.expect_status)}",
            )
        if self.gate.expect_json:
            problem = self._json_problem(got.body, got.truncated)
            if problem is not None:
                return Measurement(value=got.elapsed_ms, ok=False, detail=f"{timing}; {problem}")
        return Measurement(value=got.elapsed_ms, ok=True, detail=timing)

    def _json_problem(self, body: bytes, truncated: bool) -> str | None:
        """Why the body does not hold the expected fields, or None when it does."""
        if truncated:
            return f"body larger than {MAX_BODY_BYTES // 1024} KiB; expected JSON"
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return "body is not JSON"
        return json_mismatch(document, self.gate.expect_json)


def json_mismatch(document: Any, expected: Mapping[str, str | int | float | bool]) -> str | None:
    """The first dotted path whose value differs from `expected`, worded; None when all match."""
    for path, want in expected.items():
        got = lookup(document, path)
        if got is _MISSING:
            return clean_text(f"{path} missing; expected {want!r}")
        if not same_json_value(got, want):
            return clean_text(f"{path} is {_short(got)}; expected {want!r}")
    return None


def lookup(document: Any, path: str) -> Any:
    """Follow a dotted path through objects (by key) and arrays (by index)."""
    current = document
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return current


def same_json_value(got: Any, want: str | int | float | bool) -> bool:
    """JSON equality without Python's true == 1: booleans only equal booleans."""
    if isinstance(want, bool) or isinstance(got, bool):
        return isinstance(want, bool) and isinstance(got, bool) and got is want
    if isinstance(want, int | float):
        return isinstance(got, int | float) and got == want
    return isinstance(got, str) and got == want


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:59] + "…"


def _statuses(statuses: list[int]) -> str:
    return ", ".join(str(s) for s in statuses)
