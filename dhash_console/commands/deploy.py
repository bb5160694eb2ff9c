"""`dhash-console deploy`: a guarded rollout, start to end."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dhash_console.commands.context import CommandContext

EXAMPLES = """\
examples:
  dhash-console deploy --env staging --version 1.4.0
  dhash-console deploy --env local --version 2.0.0-bad --duration-minutes 0.5 --no-ui
  dhash-console deploy --env production --version 1.4.0 --dry-run
  dhash-console deploy --env production --version 1.4.0 --yes --json > rollout.jsonl

exit codes: 0 passed its window, 1 failed and rolled back, 2 bad usage or config,
3 rollback failed (needs a human), 4 environment locked, 130 interrupted
"""


def register(sub: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        "deploy",
        help="guarded rollout: pre-checks, backup, migrations, deploy, smoke, monitoring",
        description="Run a guarded rollout: pre-checks, backup, SQL migrations, service update, "
        "smoke tests and the monitoring window of quality gates; roll back on a failed gate.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--env", required=True, help="environment name from the config")
    parser.add_argument("--version", dest="target_version", help="version to deploy")
    parser.add_argument("--dry-run", action="store_true", help="run every check, change nothing")
    parser.add_argument(
        "--duration-minutes",
        type=positive_minutes,
        help="monitoring window length (fractions allowed: 0.05 = 3 s)",
    )
    parser.add_argument("--yes", action="store_true", help="skip the confirmation")
    parser.set_defaults(handler=run)
    return parser


def positive_minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def run(args: argparse.Namespace, ctx: CommandContext) -> int:
    from dhash_console.commands._rollout import confirm_or_refuse, run_headless, via
    from dhash_console.engine.rollout import RolloutRequest
    from dhash_console.store.process import operator_identity

    env = ctx.environment(args.env)
    if not args.dry_run:
        confirm_or_refuse(ctx, env.name, env.confirm, args.yes, "start a rollout")
    request = RolloutRequest(
        env=env,
        to_version=args.target_version,
        started_by=operator_identity(),
        via=via(),
        dry_run=args.dry_run,
        duration_minutes=args.duration_minutes,
    )
    return run_headless(ctx, request)
