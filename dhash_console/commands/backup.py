"""`dhash-console backup`, `backup list`, `backup verify FILE`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dhash_console.commands.context import CommandContext

EXAMPLES = """\
examples:
  dhash-console backup --env local
  dhash-console backup --env production --dry-run
  dhash-console backup list --env local
  dhash-console backup verify backups/dhash_local_20261204_101500.zip
  cd backups && sha256sum -c dhash_local_20261204_101500.zip.sha256

verify exits 0 when every check passes and 1 when one fails, naming it.
"""


def register(sub: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        "backup",
        help="back up an environment's database (zip + .sha256), list or verify backups",
        description="Back up the environment's database to a zip with a sha256sum sidecar; "
        "list backups; verify one (sidecar, zip, CRCs, member names, sizes, restore drill).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", nargs="?", choices=["list", "verify"], help="list or verify")
    parser.add_argument("file", nargs="?", type=Path, help="with verify: the backup zip")
    parser.add_argument("--env", help="environment name from the config")
    parser.add_argument("--dry-run", action="store_true", help="say what would be backed up")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace, ctx: CommandContext) -> int:
    from dhash_console.errors import UsageError

    if args.action == "verify":
        if args.file is None:
            raise UsageError("backup verify: name the backup FILE")
        return _verify(ctx, args.file)
    if args.action == "list":
        return _list(ctx, args.env)
    if not args.env:
        raise UsageError("--env: name the environment to back up")
    return _create(ctx, args.env, args.dry_run)


def _create(ctx: CommandContext, env_name: str, dry_run: bool) -> int:
    import asyncio

    from dhash_console.errors import UsageError
    from dhash_console.ops.backup import create_backup
    from dhash_console.ops.deploy import build_deployer
    from dhash_console.store.lock import EnvironmentLock, LockHolder

    env = ctx.environment(env_name)
    if env.sqlite_path is None:
        raise UsageError(
            f"--env: {env.name}'s database is not SQLite; only sqlite:/// "
            "databases can be backed up so far"
        )
    if dry_run:
        exists = env.sqlite_path.exists()
        ctx.console.print(
            f"dry run: would back up {env.sqlite_path} "
            f"({env.sqlite_path.stat().st_size if exists else 0} bytes) to "
            f"{env.backups_dir}, keeping the newest {env.backups_keep}"
        )
        return 0 if exists else 1
    holder = LockHolder.this_process(env.name, operation="backup")
    with EnvironmentLock(env.state_dir, env.name, holder):

        async def go() -> Any:
            version = await build_deployer(env).current_version()
            return await create_backup(env, service_version=version)

        info = asyncio.run(go())
    if ctx.json:
        ctx.emit_json({"type": "backup", **info.to_dict()})
    else:
        ctx.console.print(f"{info.path}  {info.size} bytes  sha256 {info.sha256}")
        ctx.console.print(f"{info.sidecar}")
        if info.staged:
            ctx.console.print(f"{info.staged}  verified, staged for a fast restore")
    return 0


def _list(ctx: CommandContext, env_name: str | None) -> int:
    from dhash_console.ops.backup import list_backups

    directory = (
        ctx.environment(env_name).backups_dir
        if env_name
        else ctx.environment(next(iter(ctx.config.environments))).backups_dir
    )
    backups = list_backups(directory, env_name)
    if ctx.json:
        for info in backups:
            ctx.emit_json({"type": "backup", **info.to_dict()})
        return 0
    if not backups:
        ctx.console.print(f"no backups in {directory}")
    for info in backups:
        state = "complete" if info.complete else "INCOMPLETE (no sidecar)"
        state += ", staged" if info.staged else ""
        ctx.console.print(
            f"{info.path.name:<44} {info.env:<12} "
            f"{info.created_at:%Y-%m-%d %H:%M:%S} {info.size:>12} B  "
            f"{info.service_version or '-':<10} {state}"
        )
    return 0


def _verify(ctx: CommandContext, path: Path) -> int:
    from dhash_console.ops.backup import check_backup

    report = check_backup(path)
    if ctx.json:
        ctx.emit_json({"type": "verify", **report.to_dict()})
    else:
        for check in report.checks:
            mark = "✔" if check.ok else "✖"
            ctx.console.print(f"{mark} {check.name:<14} {check.detail}")
        ctx.console.print("verified" if report.ok else "NOT verified")
    return 0 if report.ok else 1
