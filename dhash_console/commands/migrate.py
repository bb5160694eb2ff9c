"""`dhash-console migrate`: apply pending SQL migrations from migrations/."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dhash_console.commands.context import CommandContext
    from dhash_console.config import ResolvedEnvironment

EXAMPLES = """\
examples:
  dhash-console migrate --env local --status
  dhash-console migrate --env local --dry-run     # the plan and its SQL, nothing changed
  dhash-console migrate --env local
  dhash-console --json migrate --env local --status

Files are migrations/<version>_<description>.sql, applied in version order, each in its own
transaction (or none, with a first line `-- dhash:no-transaction`). --status exits 1 when a
version drifted, is unknown on disk or failed. See docs/backups-and-migrations.md.
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

    env = ctx.environment(args.env)
    db = env.sqlite_path
    if db is None:
        raise UsageError(
            f"--env: {env.name}'s database is not SQLite; migrations support only "
            "sqlite:/// databases so far (PostgreSQL is not supported yet)"
        )
    if args.status:
        return _status(ctx, db, env.migrations_dir)
    if args.dry_run:
        return _dry_run(ctx, db, env.migrations_dir, args.allow_out_of_order)
    return _apply(ctx, env, db, args.allow_out_of_order)


def _status(ctx: CommandContext, db: Path, migrations_dir: Path) -> int:
    """Exit 1 when something needs a human (drift, unknown or failed versions)."""
    from dhash_console.ops.migrate import migration_status

    status = migration_status(db, migrations_dir)
    if ctx.json:
        ctx.emit_json({"type": "migration_status", **status.to_dict()})
    else:
        for name, items in status.to_dict().items():
            ctx.console.print(f"{name:<13} {len(items):>3}  {', '.join(items) or '-'}")
    return 1 if status.drifted or status.unknown or status.failed else 0


def _dry_run(ctx: CommandContext, db: Path, migrations_dir: Path, out_of_order: bool) -> int:
    """The plan and the SQL it would run; opens the database read-only, changes nothing."""
    from dhash_console.ops.migrate import plan_migrations

    plan = plan_migrations(db, migrations_dir, allow_out_of_order=out_of_order)
    if ctx.json:
        ctx.emit_json(
            {
                "type": "migration_plan",
                "dry_run": True,
                "pending": [
                    {
                        "version": m.version,
                        "file": m.path.name,
                        "checksum": m.checksum,
                        "transactional": m.transactional,
                        "statements": m.statements(),
                    }
                    for m in plan.pending
                ],
            }
        )
        return 0
    say = ctx.console.print
    for migration in plan.pending:
        kind = "in its own transaction" if migration.transactional else "with no transaction"
        say(f"would apply {migration.path.name} ({kind}, sha256 {migration.checksum[:12]})")
        for statement in migration.statements():
            for line in statement.splitlines():
                say(f"    {line}")
    say(f"dry run: {len(plan.pending)} migration(s) would be applied; nothing changed")
    return 0


def _apply(ctx: CommandContext, env: ResolvedEnvironment, db: Path, out_of_order: bool) -> int:
    from dhash_console.ops.migrate import apply_migrations_sync
    from dhash_console.store.lock import EnvironmentLock, LockHolder

    holder = LockHolder.this_process(env.name, operation="migrate")
    with EnvironmentLock(env.state_dir, env.name, holder):
        db.parent.mkdir(parents=True, exist_ok=True)
        result = apply_migrations_sync(
            db, env.migrations_dir, log=ctx.console.print, allow_out_of_order=out_of_order
        )
    if ctx.json:
        ctx.emit_json({"type": "migrate", "applied": [str(m) for m in result.applied]})
    return 0
