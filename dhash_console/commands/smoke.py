"""`dhash-console smoke --env ENV`: the post-deployment smoke tests on their own."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dhash_console.commands.context import CommandContext
    from dhash_console.ops.smoke import SmokeReport, SmokeResult

EXAMPLES = """\
examples:
  dhash-console smoke --env staging
  dhash-console smoke --env local --junit reports/smoke.xml
  dhash-console smoke --env production --timeout 5 --json

groups: API (health, version, a known image's dHash, a malformed upload gets a 4xx),
DB (read-only, latest migration, tables and indexes, no drift) and end to end (near
duplicates found by search, then deleted). Exit 0 when all pass, 1 when any fails.
"""


def register(sub: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        "smoke",
        help="post-deployment smoke tests (API, DB, end to end)",
        description="Run the smoke tests against an environment as it is now: the API "
        "answers and hashes correctly, the database is at the latest migration, and "
        "near-duplicate search works end to end. Prints a summary; exit 1 on any failure.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--env", required=True, help="the environment to test")
    parser.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML here")
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=10.0,
        metavar="S",
        help="seconds each test may take (default: 10)",
    )
    parser.set_defaults(handler=run)
    return parser


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 3600 seconds")
    return value


def run(args: argparse.Namespace, ctx: CommandContext) -> int:
    import asyncio

    env = ctx.environment(args.env)  # UsageError / ConfigError: exit 2
    report = asyncio.run(_run(env, args.timeout, ctx))
    if args.junit is not None:
        from dhash_console.errors import OperationFailed
        from dhash_console.ops.junit import write_junit

        try:
            write_junit(report, args.junit)
        except OSError as exc:
            raise OperationFailed(f"--junit: cannot write {args.junit}: {exc.strerror}") from None
    if ctx.json:
        ctx.emit_json({"type": "summary", **report.to_dict(), "junit": _str(args.junit)})
    else:
        _print_summary(ctx, report, args.junit)
    return 0 if report.ok else 1


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


async def _run(env: Any, timeout_s: float, ctx: CommandContext) -> SmokeReport:
    import httpx

    from dhash_console.ops.smoke import run_smoke

    async def on_result(result: SmokeResult) -> None:
        if ctx.json:
            ctx.emit_json({"type": "smoke_result", **result.to_dict()})
        else:
            ctx.console.print(_result_line(result))

    async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False) as client:
        return await run_smoke(env, client, timeout_s=timeout_s, on_result=on_result)


MARKS = {
    "passed": ("✔ pass", "green"),
    "failed": ("✖ FAIL", "bold red"),
    "skipped": ("– skip", "dim"),
}


def _result_line(result: SmokeResult) -> Any:
    from rich.text import Text

    mark, style = MARKS[result.status]
    line = Text(f"{mark} ", style=style)
    line.append(f"{result.group}/{result.name}", style="bold")
    line.append(f" ({result.duration_s:.2f}s) {result.detail}")
    return line


def _print_summary(ctx: CommandContext, report: SmokeReport, junit: Path | None) -> None:
    from rich.table import Table
    from rich.text import Text

    from dhash_console.ops.smoke import GROUP_TITLES

    table = Table(title=Text(f"smoke tests: {report.env} ({report.base_url})"))
    for column in ("group", "passed", "failed", "skipped", "time"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for group, title in GROUP_TITLES.items():
        results = report.group(group)
        statuses = [r.status for r in results]
        failed = statuses.count("failed")
        table.add_row(
            Text(title),
            Text(str(statuses.count("passed"))),
            Text(str(failed), style="bold red" if failed else ""),
            Text(str(statuses.count("skipped"))),
            Text(f"{sum(r.duration_s for r in results):.2f}s"),
        )
    ctx.console.print(table)
    for result in report.failed:
        ctx.console.print(Text(f"failed: {result.group}/{result.name}: {result.detail}"))
    counts = report.counts()
    verdict = "all smoke tests passed" if report.ok else f"{counts['failed']} smoke test(s) failed"
    tail = f"; JUnit XML in {junit}" if junit is not None else ""
    ctx.console.print(Text(f"{verdict} ({counts['tests']} run in {report.duration_s:.2f}s){tail}"))
