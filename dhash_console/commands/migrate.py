"""`dhash-console migrate`: apply pending SQL migrations from migrations/."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dhash_console.commands.context import CommandContext

EXAMPLES = """\
examples:
  dhash-console migrate --env local --status
  dhash-console migrate --env local --dry-run     # the plan and its SQL, nothing changed
  dhash-console migrate --env local
"""


def register(sub: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        "migrate",
        help="apply pending SQL migrations (Flyway-style checksums and history)",
        description="Apply pending migrations in order, each in its own transaction; refuse "
        "checksum drift and out-of-order files before anything runs.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--env", required=True, help="environment name from the config")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and its SQL")
    parser.add_argument(
        "--status", action="store_true", help="list applied, pending, drifted and unknown versions"
    )
    parser.add_argument(
        "--allow-out-of-order",
        action="store_true",
        help="apply a pending file older than the newest applied one",
    )
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace, ctx: CommandContext) -> int:

    from dhash_console.errors import UsageError
    from dhash_console.ops.migrate import apply_migrations_sync, migration_status
    from dhash_console.store.lock import EnvironmentLock, LockHolder

    env = ctx.environment(args.env)
    db = env.sqlite_path
    if db is None:
        raise UsageError(
            f"--env: {env.name}'s database is not SQLite; migrations support "
            "sqlite:/// databases so far"
        )
    if args.status:
        status = migration_status(db, env.migrations_dir)
        if ctx.json:
            ctx.emit_json({"type": "migration_status", **status.to_dict()})
        else:
            for name, items in status.to_dict().items():
                ctx.console.print(f"{name:<13} {len(items):>3}  {', '.join(items) or '-'}")
        return 1 if status.drifted or status.unknown else 0
    say = ctx.console.print
    if args.dry_run:
        result = apply_migrations_sync(
            db,
            env.migrations_dir,
            dry_run=True,
            log=say,
            allow_out_of_order=args.allow_out_of_order,
        )
        say(f"dry run: {len(result.applied)} migration(s) would be applied; nothing changed")
        return 0
    holder = LockHolder.this_process(env.name, operation="migrate")
    with EnvironmentLock(env.state_dir, env.name, holder):
        db.parent.mkdir(parents=True, exist_ok=True)
        result = apply_migrations_sync(
            db, env.migrations_dir, log=say, allow_out_of_order=args.allow_out_of_order
        )
    if ctx.json:
        ctx.emit_json({"type": "migrate", "applied": [str(m) for m in result.applied]})
    return 0
