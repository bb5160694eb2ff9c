"""The history database's own schema, as ordered migrations.

Version N of the schema is migrations 1..N applied in order; `schema_version` records each
one. A release that changes the schema appends a migration here and never edits an old one,
so a database written by any earlier release opens and upgrades in place.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from dhash_console.errors import UsageError

Apply = Callable[[sqlite3.Connection], None] | str


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Apply  # SQL script, or a function for what SQL alone cannot say


_V1 = """
CREATE TABLE rollouts (
    id            TEXT PRIMARY KEY,
    env           TEXT NOT NULL,
    from_version  TEXT,
    to_version    TEXT NOT NULL,
    started_by    TEXT NOT NULL,
    via           TEXT NOT NULL,
    host          TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    dry_run       INTEGER NOT NULL DEFAULT 0,
    started_at    REAL NOT NULL,
    finished_at   REAL,
    duration_s    REAL NOT NULL,
    interval_s    REAL NOT NULL,
    status        TEXT NOT NULL DEFAULT 'running',
    phase         TEXT,
    exit_code     INTEGER,
    reason        TEXT,
    rollback_plan TEXT NOT NULL DEFAULT '',
    last_seq      INTEGER NOT NULL DEFAULT 0,
    last_event_at REAL
);
CREATE INDEX rollouts_by_start ON rollouts (started_at);
CREATE INDEX rollouts_by_env_start ON rollouts (env, started_at);
CREATE INDEX rollouts_running ON rollouts (started_at) WHERE status = 'running';

CREATE TABLE events (
    id         INTEGER PRIMARY KEY,
    rollout_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    type       TEXT NOT NULL,
    at         REAL NOT NULL,
    json       TEXT NOT NULL
);
CREATE INDEX events_by_rollout_seq ON events (rollout_id, seq);

CREATE TABLE gate_samples (
    event_id   INTEGER PRIMARY KEY REFERENCES events (id),
    rollout_id TEXT NOT NULL,
    gate       TEXT NOT NULL,
    idx        INTEGER NOT NULL,
    result     TEXT NOT NULL,
    value      REAL,
    at         REAL NOT NULL
);
CREATE INDEX gate_samples_by_rollout_gate ON gate_samples (rollout_id, gate, idx);

CREATE TABLE gate_verdicts (
    event_id   INTEGER PRIMARY KEY REFERENCES events (id),
    rollout_id TEXT NOT NULL,
    gate       TEXT NOT NULL,
    verdict    TEXT NOT NULL,
    value      REAL,
    at         REAL NOT NULL
);
CREATE INDEX gate_verdicts_by_rollout ON gate_verdicts (rollout_id, gate);
"""

# Version 2: requests from faces in other processes to steer a rollout. Kept apart from v1 so
# that the upgrade path from a v1 database is exercised by the tests from the start.
_V2 = """
CREATE TABLE control_requests (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    rollout_id   TEXT NOT NULL,
    action       TEXT NOT NULL CHECK (action IN ('rollback', 'abort', 'pause', 'resume')),
    reason       TEXT NOT NULL DEFAULT '',
    requested_by TEXT NOT NULL DEFAULT '',
    requested_at REAL NOT NULL,
    taken_at     REAL,
    state        TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'taken'))
);
CREATE INDEX control_requests_pending ON control_requests (rollout_id, state);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "rollouts, events, gate samples and verdicts", _V1),
    Migration(2, "control requests from other processes", _V2),
)
LATEST = MIGRATIONS[-1].version

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  REAL NOT NULL
)
"""


class SchemaTooNew(UsageError):
    """The database was written by a newer release than this one (exit 2: nothing changed)."""


def current_version(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if row is None:
        return 0
    (version,) = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(version)


def migrate(conn: sqlite3.Connection, migrations: tuple[Migration, ...] = MIGRATIONS) -> int:
    """Bring the database up to the last of `migrations`; return the version it is now at.

    Runs on a connection in autocommit mode (isolation_level=None). Each migration and its
    `schema_version` row commit together, under an immediate write lock, so two processes
    opening a fresh database at once apply each migration exactly once.
    """
    latest = migrations[-1].version
    if current_version(conn) == latest:
        return latest  # the common case, without taking the write lock
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_VERSION_TABLE)
        version = current_version(conn)
        if version > latest:
            raise SchemaTooNew(
                f"history database schema is version {version}; this release knows up to "
                f"{latest}: upgrade dhash-console"
            )
        for migration in migrations:
            if migration.version <= version:
                continue
            if isinstance(migration.apply, str):
                for statement in _statements(migration.apply):
                    conn.execute(statement)
            else:
                migration.apply(conn)
            conn.execute(
                "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.description, time.time()),
            )
            version = migration.version
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return version


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (executescript would commit on its own).

    Splits at each `;` that ends a complete statement (one inside a string or trigger body
    does not); the last statement may omit its `;`.
    """
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \t\r\n;"):
        statements.append(pending.strip().rstrip(";") + ";")
    return statements
