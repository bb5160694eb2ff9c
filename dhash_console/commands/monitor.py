"""`dhash-console monitor`: the monitoring window alone, against what is deployed now."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dhash_console.commands.context import CommandContext

EXAMPLES = """\
examples:
  dhash-console monitor --env staging --duration-minutes 30
  dhash-console monitor --env production --resume
  dhash-console monitor --env local --dry-run --duration-minutes 0.1
"""


def register(sub: Any) -> argparse.ArgumentParser:
    from dhash_console.commands.deploy import positive_minutes

    parser: argparse.ArgumentParser = sub.add_parser(
        "monitor",
        help="watch the quality gates for a window; roll back on a failed gate",
        description="Run the monitoring window alone against what is deployed now. "
        "--resume continues the window of the last interrupted rollout on the environment.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--env", required=True, help="environment name from the config")
    parser.add_argument("--duration-minutes", type=positive_minutes, help="window length")
    parser.add_argument(
        "--dry-run", action="store_true", help="evaluate the gates and report; never roll back"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the interrupted window of the last rollout"
    )
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace, ctx: CommandContext) -> int:
    import asyncio

    from dhash_console.commands._rollout import run_headless, via
    from dhash_console.commands.rollback import earlier_version
    from dhash_console.engine.rollout import RolloutRequest
    from dhash_console.store.process import operator_identity

    env = ctx.environment(args.env)
    minutes = args.duration_minutes
    if args.resume:
        remaining = asyncio.run(_remaining_window(ctx, env.name))
        minutes = minutes or remaining
        ctx.console.print(f"resuming the monitoring window: {minutes:.2f} minutes remain")
    request = RolloutRequest(
        env=env,
        to_version=None,
        started_by=operator_identity(),
        via=via(),
        dry_run=args.dry_run,
        duration_minutes=minutes,
        monitor_only=True,
        rollback_to=asyncio.run(earlier_version(ctx, env.name)),
    )
    return run_headless(ctx, request)


async def _remaining_window(ctx: CommandContext, env: str) -> float:
    """Minutes left of the last interrupted rollout's window on this environment."""
    from dhash_console.errors import UsageError
    from dhash_console.store.history import HistoryStore

    if not ctx.history_path.exists():
        raise UsageError("--resume: no history yet in this state directory")
    async with await HistoryStore.open(ctx.history_path) as store:
        for record in await store.list_rollouts(env=env, limit=1):
            if record.effective_status != "interrupted":
                raise UsageError(
                    f"--resume: the last rollout on {env} ({record.id}) is "
                    f"{record.effective_status}, not interrupted: nothing to resume"
                )
            events = await store.events(record.id, types=["phase_started"])
            monitor = [e for e in events if getattr(e, "phase", None) == "monitor"]
            if not monitor:
                raise UsageError(
                    f"--resume: rollout {record.id} stopped before its monitoring window "
                    f"(in {record.phase}); use `rollback` or start a new rollout"
                )
            last = await store.events(record.id, after_seq=0)
            elapsed = last[-1].at - monitor[-1].at if last else 0.0
            duration = record.duration_s or 0.0
            return max(duration - elapsed, 0.0) / 60 or 0.05
    raise UsageError(f"--resume: no interrupted rollout on {env}")
