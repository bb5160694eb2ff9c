"""What a database's schema says of itself: applied migrations, tables, a digest of its DDL."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from dhash_console.ops.migrate import version_key
from dhash_console.ops.sqlite_url import connect_readonly

# The migrator's lock row comes and goes; it is not part of the schema a backup vouches for.
_SCHEMA_ROWS = (
    "SELECT type, name, coalesce(sql, '') FROM sqlite_master "
    "WHERE name NOT LIKE 'sqlite_%' AND name != 'schema_migrations_lock' ORDER BY type, name"
)


def schema_digest(db_path: Path) -> str:
    """sha256 of the DDL of every table, index, view and trigger, in a stable order."""
    conn = connect_readonly(db_path)
    try:
        rows = conn.execute(_SCHEMA_ROWS).fetchall()
    finally:
        conn.close()
    text = "\n".join("\t".join(str(part) for part in row) for row in rows)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def schema_facts(db_path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Applied migrations (successful ones, in version order) and table names; read-only."""
    conn = connect_readonly(db_path)
    try:
        tables = sorted(
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        )
        migrations: list[dict[str, Any]] = []
        if "schema_migrations" in tables:
            rows = conn.execute(
                "SELECT version, description, checksum FROM schema_migrations WHERE success = 1"
            ).fetchall()
            migrations = [
                {"version": r[0], "description": r[1], "checksum": r[2]}
                for r in sorted(rows, key=lambda r: version_key(str(r[0])))
            ]
        return migrations, tables
    finally:
        conn.close()
