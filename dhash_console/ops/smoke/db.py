"""DB group: the database opens read-only, sits at the latest migration, has what we expect.

Only SQLite databases are checked so far; a postgresql:// environment reports these
tests as skipped rather than passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

from dhash_console.ops.smoke.context import NotApplicable, SmokeContext, SmokeFailure, Step

EXPECTED_TABLES = ("hashes", "processing_queue", "schema_migrations")
INDEXED = ("hashes", "hash")  # near-duplicate search looks hashes up by value


def _database(ctx: SmokeContext) -> Path:
    path = ctx.env.sqlite_path
    if path is None:
        scheme = ctx.env.database.split(":", 1)[0]
        raise NotApplicable(f"{scheme} databases are not checked yet (SQLite only)")
    return path


def read_only_uri(path: Path) -> str:
    """`file:` URI that SQLite opens read-only and never creates."""
    return path.resolve().as_uri() + "?mode=ro"


def _open(path: Path, timeout_s: float) -> sqlite3.Connection:
    return sqlite3.connect(read_only_uri(path), uri=True, timeout=timeout_s)


def _schema_objects(path: Path, timeout_s: float) -> tuple[int, set[str], list[str]]:
    """(schema objects, tables, index names covering hashes.hash first)."""
    with contextlib.closing(_open(path, timeout_s)) as conn:
        count = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        covering = []
        table, column = INDEXED
        if table in tables:
            for row in conn.execute(f"PRAGMA index_list('{table}')"):
                index = row[1]
                columns = [r[2] for r in conn.execute(f"PRAGMA index_info('{index}')")]
                if columns[:1] == [column]:
                    covering.append(index)
    return int(count), tables, covering


async def reachable_read_only(ctx: SmokeContext) -> str:
    path = _database(ctx)
    if not path.exists():
        raise SmokeFailure(f"{path} does not exist")
    try:
        count, _, _ = await asyncio.to_thread(_schema_objects, path, ctx.timeout_s)
    except sqlite3.Error as exc:
        raise SmokeFailure(f"{path}: cannot read it read-only: {exc}") from None
    return f"{path.name} opened read-only ({count} schema objects)"


async def _status(ctx: SmokeContext) -> object:
    from dhash_console.ops.migrate import migration_status

    path = _database(ctx)
    return await asyncio.to_thread(migration_status, path, ctx.env.migrations_dir)


async def schema_at_latest_migration(ctx: SmokeContext) -> str:
    status = await _status(ctx)
    pending = [str(m) for m in getattr(status, "pending", [])]
    unknown = [str(m) for m in getattr(status, "unknown", [])]
    applied = [str(m) for m in getattr(status, "applied", [])]
    if pending:
        raise SmokeFailure(f"{len(pending)} migration(s) not applied: {', '.join(pending)}")
    if unknown:
        raise SmokeFailure(
            f"applied migration(s) not in {ctx.env.migrations_dir.name}/: {', '.join(unknown)}"
        )
    if not applied:
        raise SmokeFailure("no migration has been applied")
    return f"at {applied[-1]} ({len(applied)} applied)"


async def no_migration_drift(ctx: SmokeContext) -> str:
    status = await _status(ctx)
    drifted = [str(m) for m in getattr(status, "drifted", [])]
    if drifted:
        raise SmokeFailure(f"changed after they were applied: {', '.join(drifted)}")
    return "every applied migration matches its file"


async def tables_and_indexes(ctx: SmokeContext) -> str:
    path = _database(ctx)
    _, tables, covering = await asyncio.to_thread(_schema_objects, path, ctx.timeout_s)
    missing = [name for name in EXPECTED_TABLES if name not in tables]
    problems = []
    if missing:
        problems.append(f"missing table(s): {', '.join(missing)}")
    if not covering and INDEXED[0] in tables:
        problems.append(f"no index on {INDEXED[0]}({INDEXED[1]})")
    if problems:
        raise SmokeFailure("; ".join(problems))
    return f"tables {', '.join(EXPECTED_TABLES)}; index {covering[0]} on hashes(hash)"


STEPS = (
    Step("reachable_read_only", reachable_read_only, required=True),
    Step("schema_at_latest_migration", schema_at_latest_migration),
    Step("no_migration_drift", no_migration_drift),
    Step("tables_and_indexes", tables_and_indexes),
)
