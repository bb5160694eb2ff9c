"""Run the groups in order, each test under its own timeout, reporting as results come."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import httpx

from dhash_console.config import ResolvedEnvironment
from dhash_console.ops.smoke import api, db, e2e
from dhash_console.ops.smoke.context import NotApplicable, SmokeContext, SmokeFailure, Step, tidy
from dhash_console.ops.smoke.report import Group, SmokeReport, SmokeResult

OnResult = Callable[[SmokeResult], Awaitable[None]]
GROUPS: tuple[tuple[Group, Sequence[Step]], ...] = (
    ("api", api.STEPS),
    ("db", db.STEPS),
    ("e2e", e2e.STEPS),
)


async def run_smoke(
    env: ResolvedEnvironment,
    client: httpx.AsyncClient,
    *,
    timeout_s: float = 10,
    on_result: OnResult | None = None,
) -> SmokeReport:
    """Every smoke test against `env`; the report is ok only when none failed."""
    report = SmokeReport(env=env.name, base_url=env.base_url, started_at=time.time())
    ctx = SmokeContext(env=env, client=client, timeout_s=timeout_s)
    begin = time.perf_counter()
    for group, steps in GROUPS:
        blocked_by: str | None = None
        for step in steps:
            if blocked_by is not None and not step.always:
                result = SmokeResult(group, step.name, False, 0.0, f"not run: {blocked_by} failed")
            else:
                result = await _run_step(ctx, group, step)
                if step.required and not result.ok:
                    blocked_by = step.name
            report.results.append(result)
            if on_result is not None:
                await on_result(result)
    report.duration_s = time.perf_counter() - begin
    return report


async def _run_step(ctx: SmokeContext, group: Group, step: Step) -> SmokeResult:
    start = time.perf_counter()
    ok, skipped = False, False
    try:
        detail = await asyncio.wait_for(step.check(ctx), ctx.timeout_s)
        ok = True
    except NotApplicable as exc:
        ok, skipped, detail = True, True, f"skipped: {exc}"
    except SmokeFailure as exc:
        detail = str(exc)
    except (TimeoutError, httpx.TimeoutException):  # whichever deadline fires first
        detail = f"timed out after {ctx.timeout_s:g}s"
    except httpx.HTTPError as exc:
        said = str(exc) or "no answer (connection closed or refused)"
        detail = f"{type(exc).__name__} reaching {ctx.env.base_url}: {said}"
    except Exception as exc:  # a check's bug or a surprise from the service: a failure, not a crash
        detail = f"unexpected {type(exc).__name__}: {exc}"
    duration = time.perf_counter() - start
    return SmokeResult(group, step.name, ok, round(duration, 4), tidy(detail), skipped)
