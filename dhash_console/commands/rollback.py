"""`dhash-console rollback`: return an environment to its earlier version, now."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dhash_console.commands.context import CommandContext

EXAMPLES = """\
examples:
  dhash-console rollback --env staging --reason "p95 latency doubled"
  dhash-console rollback --env production --reason "bad release" --yes
  dhash-console rollback --env production --reason "restore" \
      --backup backups/dhash_production_20261204_101500.zip
  dhash-console rollback --env local --reason "check the plan" --dry-run

When a rollout is in progress on the environment (in this or another terminal, or in CI),
the request goes to its engine, which rolls back and journals it; this command waits for
the outcome. Otherwise it rolls back itself, under the environment's lock.
"""

ANSWER_TIMEOUT_S = 5.0


def register(sub: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        "rollback",
        help="manual rollback to the earlier version and the latest (or given) verified backup",
        description="Manual rollback: return the environment to its earlier version and restore "
        "the database from the latest verified backup (or --backup FILE).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--env", required=True, help="environment name from the config")
    parser.add_argument("--reason", required=True, help="why: journaled and notified")
    parser.add_argument("--backup", type=Path, help="restore this backup instead of the latest")
    parser.add_argument("--to-version", help="the version to return to (default: the earlier one)")
    parser.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    parser.add_argument("--yes", action="store_true", help="skip the confirmation")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace, ctx: CommandContext) -> int:
    import asyncio

    from dhash_console.commands._rollout import confirm_or_refuse, run_headless, via
    from dhash_console.engine.rollout import RolloutRequest
    from dhash_console.errors import UsageError
    from dhash_console.store.process import operator_identity

    env = ctx.environment(args.env)
    if not args.reason.strip():
        raise UsageError("--reason: say why")
    if args.backup is not None and not args.backup.exists():
        raise UsageError(f"--backup: no such file {args.backup}")
    if not args.dry_run:
        confirm_or_refuse(ctx, env.name, env.confirm, args.yes, "roll back")
    by = operator_identity()
    active = asyncio.run(_active_rollout(ctx, env.name))
    if active is not None:
        if args.dry_run:
            ctx.console.print(f"dry run: would ask rollout {active} to roll back")
            return 0
        return asyncio.run(_ask_engine(ctx, active, args.reason, by))
    target = args.to_version or asyncio.run(earlier_version(ctx, env.name))
    if target is None:
        raise UsageError("--to-version: the history does not say which version ran before; name it")
    request = RolloutRequest(
        env=env,
        to_version=target,
        started_by=by,
        via=via(),
        dry_run=args.dry_run,
        rollback_reason=args.reason,
        rollback_backup=args.backup,
    )
    return run_headless(ctx, request)


async def _active_rollout(ctx: CommandContext, env: str) -> str | None:
    from dhash_console.store.history import HistoryStore

    if not ctx.history_path.exists():
        return None
    async with await HistoryStore.open(ctx.history_path) as store:
        for record in await store.list_rollouts(env=env, limit=5, active_only=True):
            if record.effective_status == "running":
                return record.id
    return None


async def earlier_version(ctx: CommandContext, env: str) -> str | None:
    """The version that ran before the newest rollout that changed what runs."""
    from dhash_console.store.history import HistoryStore

    if not ctx.history_path.exists():
        return None
    async with await HistoryStore.open(ctx.history_path) as store:
        for record in await store.list_rollouts(env=env, limit=50):
            changed = record.from_version and record.from_version != record.to_version
            if record.status == "succeeded" and changed and not record.dry_run:
                return str(record.from_version)
    return None


async def _ask_engine(ctx: CommandContext, rollout_id: str, reason: str, by: str) -> int:
    """Hand the request to the running engine and follow its journal to the end."""
    import asyncio
    import time

    from dhash_console.errors import NeedsHuman
    from dhash_console.events import ControlAcknowledged, RolloutFinished
    from dhash_console.store.history import HistoryStore
    from dhash_console.ui.headless import HeadlessRenderer

    renderer = HeadlessRenderer(ctx.console, json_lines=ctx.json, stdout=ctx.stdout)
    async with await HistoryStore.open(ctx.history_path) as store:
        seen = (await store.events(rollout_id))[-1].seq
        request_id = await store.request_control(rollout_id, "rollback", reason, by)
        ctx.console.print(f"asked rollout {rollout_id} to roll back (request {request_id})")
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        acknowledged = False
        while True:
            for event in await store.events(rollout_id, after_seq=seen):
                seen = event.seq
                renderer.show(event)
                if isinstance(event, ControlAcknowledged) and event.request_id == request_id:
                    acknowledged = True
                if isinstance(event, RolloutFinished):
                    return 0 if event.outcome == "rolled_back" else event.exit_code
            if not acknowledged and time.monotonic() > deadline:
                raise NeedsHuman(
                    f"rollout {rollout_id} did not answer within {ANSWER_TIMEOUT_S:g} s; "
                    "its engine may be gone: check `history --show` and roll back again"
                )
            await asyncio.sleep(0.1)
