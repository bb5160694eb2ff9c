"""`dhash-console validate-logging`: check that the run log works end to end."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dhash_console.commands.context import CommandContext

EXAMPLES = """\
examples:
  dhash-console validate-logging
  dhash-console validate-logging --report artifacts/test_logging.log
  dhash-console --state-dir /var/lib/dhash-console validate-logging --json

checks: the log directory (<state-dir>/logs) is writable; every level reaches the file,
and the console from --console-level up; records are JSON with time, level, rollout_id,
env, phase and message; the file rotates by size; a planted webhook URL and database
password come out redacted. Exit 0 when all pass, 1 when any fails.
"""


def register(sub: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        "validate-logging",
        help="check that logging works end to end (files, levels, rotation, redaction)",
        description="Write test records through a real run log under the state directory and "
        "read them back: directory, levels, JSON fields, rotation and secret redaction. "
        "Writes a report file (the seed's test_logging.log) and exits 1 on any failure.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=Path("test_logging.log"),
        help="where to write the report (default: ./test_logging.log)",
    )
    parser.add_argument(
        "--console-level",
        choices=["debug", "info", "warning", "error"],
        default="info",
        help="the lowest level the console shows (default: info)",
    )
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace, ctx: CommandContext) -> int:
    import asyncio

    from rich.text import Text

    from dhash_console.errors import OperationFailed
    from dhash_console.ops.logcheck import validate_logging, write_report

    report = asyncio.run(validate_logging(ctx.state_dir, console_level=args.console_level))
    report_path: Path = args.report
    try:
        write_report(report, report_path)
    except OSError as exc:
        raise OperationFailed(
            f"--report: cannot write {report_path}: {exc.strerror or exc}"
        ) from None

    if ctx.json:
        ctx.emit_json({"type": "summary", **report.to_dict(), "report": str(report_path)})
    else:
        for check in report.checks:
            mark = "✔ PASS" if check.ok else "✖ FAIL"
            line = Text(f"{mark} ")
            line.append(check.name, style="bold")
            line.append(f": {check.detail}")
            ctx.console.print(line)
        passed = sum(check.ok for check in report.checks)
        verdict = "logging works" if report.ok else "logging is broken"
        ctx.console.print(
            Text(f"{verdict}: {passed}/{len(report.checks)} checks passed; report {report_path}")
        )
    return 0 if report.ok else 1
