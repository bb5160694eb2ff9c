"""SQL migrations, Flyway-style: ordered files, a history table, checksums, one file a transaction.

Files are `migrations/<version>_<description>.sql`; the version is the leading digit groups
(`20240315_001`), compared as numbers. A `<version>_<description>.postgresql.sql` beside a
file replaces it for PostgreSQL, where the dialects differ. A file whose first line is
`-- dhash:no-transaction` runs outside a transaction (for statements such as PostgreSQL's
`CREATE INDEX CONCURRENTLY` or SQLite's `VACUUM`) and must then hold exactly one statement.

The rule against mixing, checked before anything runs:
- no file manages its own transaction (BEGIN, COMMIT, END, ROLLBACK, SAVEPOINT, RELEASE):
  each file already runs in one, and its own COMMIT would break the file's atomicity;
- a transactional file holds no statement that cannot run inside a transaction (VACUUM,
  ATTACH, DETACH, anything CONCURRENTLY): it belongs in a no-transaction file of its own;
- a no-transaction file holds exactly one statement: one statement is atomic on its own, and
  two would need the transaction the file declined.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dhash_console.errors import OperationFailed, UsageError
from dhash_console.ops.sqlite_url import connect_readonly
from dhash_console.store.process import operator_identity, pid_alive

NO_TRANSACTION_MARK = "-- dhash:no-transaction"
_FILE = re.compile(
    r"^(?P<version>\d+(?:_\d+)*)_(?P<description>[A-Za-z][\w-]*?)"
    r"(?:\.(?P<dialect>postgresql))?\.sql$"
)
_TRANSACTION_CONTROL = re.compile(
    r"^(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b", re.IGNORECASE
)
_OUTSIDE_TRANSACTION_ONLY = re.compile(r"^(VACUUM|ATTACH|DETACH)\b|\bCONCURRENTLY\b", re.IGNORECASE)
_LEADING_COMMENTS = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)
HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    execution_ms INTEGER NOT NULL,
    success INTEGER NOT NULL,
    applied_by TEXT NOT NULL
)"""
LOCK_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations_lock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    since TEXT NOT NULL
)"""


class MigrationError(OperationFailed):
    """Refused before anything ran, or a file failed (and was rolled back)."""


class MigrationLocked(MigrationError):
    exit_code = 4


def normalised(text: str) -> str:
    """Line endings made \\n and a UTF-8 byte-order mark dropped, so a CRLF checkout (or an
    editor that adds a BOM) is not drift."""
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def version_key(version: str) -> tuple[int, ...]:
    """`20240315_001` -> (20240315, 1): versions compare as numbers, group by group."""
    try:
        return tuple(int(part) for part in version.split("_"))
    except ValueError:
        return (-1,)  # a history row no file of ours could have written sorts first


def leading_code(statement: str) -> str:
    """The statement without the comments before it, for keyword checks."""
    return _LEADING_COMMENTS.sub("", statement, count=1)


def checksum(text: str) -> str:
    return hashlib.sha256(normalised(text).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class MigrationFile:
    version: str
    description: str
    path: Path
    sql: str

    @property
    def key(self) -> tuple[int, ...]:
        return version_key(self.version)

    @property
    def checksum(self) -> str:
        return checksum(self.sql)

    @property
    def transactional(self) -> bool:
        first = normalised(self.sql).lstrip().split("\n", 1)[0].strip().lower()
        return first != NO_TRANSACTION_MARK

    def statements(self) -> list[str]:
        return split_statements(self.sql)

    def __str__(self) -> str:
        return f"{self.version}_{self.description}"


@dataclass(frozen=True)
class AppliedMigration:
    version: str
    description: str
    checksum: str
    applied_at: str
    execution_ms: int
    success: bool
    applied_by: str

    def __str__(self) -> str:
        return f"{self.version}_{self.description}"


@dataclass
class MigrationStatus:
    applied: list[AppliedMigration] = field(default_factory=list)
    pending: list[MigrationFile] = field(default_factory=list)
    drifted: list[MigrationFile] = field(default_factory=list)
    unknown: list[AppliedMigration] = field(default_factory=list)
    out_of_order: list[MigrationFile] = field(default_factory=list)
    failed: list[AppliedMigration] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[str]]:
        return {
            name: [str(m) for m in getattr(self, name)]
            for name in ("applied", "pending", "drifted", "unknown", "out_of_order", "failed")
        }


@dataclass
class MigrationPlan:
    pending: list[MigrationFile]
    status: MigrationStatus


@dataclass
class MigrationResult:
    applied: list[MigrationFile] = field(default_factory=list)
    dry_run: bool = False


def split_statements(sql: str) -> list[str]:
    """Whole statements, in order, as SQLite's own parser delimits them."""
    statements: list[str] = []
    buffer = ""
    for line in normalised(sql).split("\n"):
        buffer += line + "\n"
        if sqlite3.complete_statement(buffer):
            if _has_code(buffer):
                statements.append(buffer.strip())
            buffer = ""
    if _has_code(buffer):
        statements.append(buffer.strip())  # an unterminated last statement still counts
    return statements


def _has_code(sql: str) -> bool:
    for line in sql.split("\n"):
        stripped = line.split("--", 1)[0].strip().strip(";").strip()
        if stripped:
            return True
    return False


def discover(migrations_dir: Path, dialect: str = "sqlite") -> list[MigrationFile]:
    """Migration files in order; the dialect's own variant replaces the portable file."""
    if not migrations_dir.is_dir():
        raise UsageError(f"migrations: no folder {migrations_dir}")
    chosen: dict[str, MigrationFile] = {}
    for path in sorted(migrations_dir.iterdir()):
        if path.suffix != ".sql":
            continue
        match = _FILE.match(path.name)
        if match is None:
            raise MigrationError(
                f"{path.name}: not named <version>_<description>.sql (e.g. 20240315_001_init.sql)"
            )
        file_dialect = match.group("dialect")
        if file_dialect is not None and file_dialect != dialect:
            continue
        version = match.group("version")
        migration = MigrationFile(
            version, match.group("description"), path, path.read_text(encoding="utf-8")
        )
        if version in chosen and file_dialect is None:
            if chosen[version].path.name.endswith(f".{dialect}.sql"):
                continue  # the dialect's variant already won
            raise MigrationError(
                f"two migrations share version {version}: "
                f"{chosen[version].path.name} and {path.name}"
            )
        chosen[version] = migration
    by_key: dict[tuple[int, ...], MigrationFile] = {}
    for migration in chosen.values():
        twin = by_key.setdefault(migration.key, migration)
        if twin is not migration:  # `1_x` and `01_y` would run in an undefined order
            raise MigrationError(
                f"{twin.path.name} and {migration.path.name} have the same version number"
            )
    return sorted(chosen.values(), key=lambda m: m.key)


def _connect(db_path: Path, timeout: float = 10.0) -> sqlite3.Connection:
    conn = sqlite3.connect(db_path, timeout=timeout, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _applied(conn: sqlite3.Connection) -> list[AppliedMigration]:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if not exists:
        return []
    rows = conn.execute(
        "SELECT version, description, checksum, applied_at, execution_ms, success, applied_by "
        "FROM schema_migrations"
    ).fetchall()
    applied = [AppliedMigration(r[0], r[1], r[2], r[3], int(r[4]), bool(r[5]), r[6]) for r in rows]
    return sorted(applied, key=lambda a: version_key(a.version))


def migration_status(db_path: Path, migrations_dir: Path) -> MigrationStatus:
    """Applied, pending, drifted, unknown, out-of-order and failed versions. Reads only."""
    files = discover(migrations_dir)
    status = MigrationStatus()
    applied: list[AppliedMigration] = []
    if db_path.exists():
        conn = connect_readonly(db_path)
        try:
            applied = _applied(conn)
        finally:
            conn.close()
    by_version = {a.version: a for a in applied if a.success}
    status.applied = [a for a in applied if a.success]
    status.failed = [a for a in applied if not a.success]
    on_disk = {f.version for f in files}
    status.unknown = [a for a in status.applied if a.version not in on_disk]
    newest = max((f.key for f in files if f.version in by_version), default=())
    for migration in files:
        done = by_version.get(migration.version)
        if done is None:
            status.pending.append(migration)
            if migration.key < newest:
                status.out_of_order.append(migration)
        elif done.checksum != migration.checksum:
            status.drifted.append(migration)
    return status


def plan_migrations(
    db_path: Path,
    migrations_dir: Path,
    *,
    allow_out_of_order: bool = False,
    target: str | None = None,
) -> MigrationPlan:
    """What would run (up to `target`, a version, if given); refuses drift, out-of-order
    files and malformed files up front."""
    status = migration_status(db_path, migrations_dir)
    if status.drifted:
        names = ", ".join(m.path.name for m in status.drifted)
        raise MigrationError(
            f"checksum drift: {names} changed after it was applied; "
            "restore the file or add a new migration"
        )
    if status.out_of_order and not allow_out_of_order:
        names = ", ".join(m.path.name for m in status.out_of_order)
        raise MigrationError(
            f"out of order: {names} is older than the newest applied "
            "migration (allow it explicitly to apply it anyway)"
        )
    pending = status.pending
    if target is not None:
        limit = tuple(int(part) for part in target.split("_"))
        pending = [m for m in pending if m.key <= limit]
    for migration in pending:
        check_file(migration)
    return MigrationPlan(pending, status)


def check_file(migration: MigrationFile) -> None:
    statements = migration.statements()
    if not statements:
        raise MigrationError(f"{migration.path.name}: holds no SQL statement")
    for statement in statements:
        code = leading_code(statement)
        control = _TRANSACTION_CONTROL.match(code)
        if control:
            raise MigrationError(
                f"{migration.path.name}: manages its own transaction ({control.group(1)}); "
                "each file already runs in one, so remove it"
            )
        outside = _OUTSIDE_TRANSACTION_ONLY.search(code)
        if outside and migration.transactional:
            raise MigrationError(
                f"{migration.path.name}: {outside.group(0).strip()} cannot run inside a "
                f"transaction; put it alone in a file whose first line is {NO_TRANSACTION_MARK}"
            )
    if not migration.transactional and len(statements) != 1:
        raise MigrationError(
            f"{migration.path.name}: a no-transaction file must hold exactly one statement "
            f"(it has {len(statements)}); split the others into their own file"
        )


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _holder(conn: sqlite3.Connection) -> tuple[int, str, str] | None:
    row = conn.execute("SELECT pid, host, since FROM schema_migrations_lock").fetchone()
    return None if row is None else (int(row[0]), str(row[1]), str(row[2]))


@contextmanager
def migration_lock(conn: sqlite3.Connection, timeout_s: float) -> Iterator[None]:
    """One migrator at a time per database: a row in `schema_migrations_lock` names the holder
    (pid, host, since). Another migrator waits up to `timeout_s`, then fails naming it. A holder
    whose process is gone (same host) is cleared; a database busy with another writer's
    transaction counts as waiting, not as an error."""
    host = socket.gethostname()
    deadline = time.monotonic() + timeout_s
    holder: tuple[int, str, str] | None = None
    while True:
        try:
            conn.execute(LOCK_DDL)
            conn.execute(
                "INSERT INTO schema_migrations_lock (id, pid, host, since) VALUES (1, ?, ?, ?)",
                (os.getpid(), host, datetime.now(UTC).isoformat(timespec="seconds")),
            )
            break
        except sqlite3.IntegrityError:
            holder = _holder(conn)
            if holder is None:
                continue  # released between our insert and our look
            pid, holder_host, _since = holder
            if holder_host == host and not pid_alive(pid):
                conn.execute(
                    "DELETE FROM schema_migrations_lock WHERE pid = ? AND host = ?",
                    (pid, holder_host),
                )
                continue
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
        if time.monotonic() > deadline:
            who = (
                f"pid {holder[0]} on {holder[1]}, since {holder[2]}"
                if holder
                else "a writer holds the database busy"
            )
            raise MigrationLocked(
                f"another migrator holds the database ({who}); waited {timeout_s:g} s"
            ) from None
        time.sleep(0.05)
    try:
        yield
    finally:
        conn.execute(
            "DELETE FROM schema_migrations_lock WHERE pid = ? AND host = ?", (os.getpid(), host)
        )


def _record(
    conn: sqlite3.Connection,
    migration: MigrationFile,
    started: float,
    success: bool,
    applied_by: str,
) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO schema_migrations (version, description, checksum, applied_at, "
        "execution_ms, success, applied_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            migration.version,
            migration.description,
            migration.checksum,
            datetime.now(UTC).isoformat(timespec="milliseconds"),
            int((time.monotonic() - started) * 1000),
            int(success),
            applied_by,
        ),
    )


def _record_failure(
    conn: sqlite3.Connection, migration: MigrationFile, started: float, applied_by: str
) -> str:
    """The failure goes in its own transaction, after the file's was rolled back."""
    try:
        _record(conn, migration, started, False, applied_by)
    except sqlite3.Error as exc:
        return f" (and recording the failure failed too: {exc})"
    return ""


def _apply_one(conn: sqlite3.Connection, migration: MigrationFile, applied_by: str) -> None:
    started = time.monotonic()
    statements = migration.statements()
    if not migration.transactional:
        try:
            conn.execute(statements[0])
        except sqlite3.Error as exc:
            note = _record_failure(conn, migration, started, applied_by)
            raise MigrationError(
                f"{migration.path.name} (no-transaction) failed: {exc}{note}"
            ) from None
        _record(conn, migration, started, True, applied_by)
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise MigrationError(
            f"{migration.path.name}: cannot start its transaction: {exc}"
        ) from None
    try:
        for statement in statements:
            conn.execute(statement)
        _record(conn, migration, started, True, applied_by)
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        note = _record_failure(conn, migration, started, applied_by)
        raise MigrationError(
            f"{migration.path.name} failed and was rolled back: {exc}{note}"
        ) from None


def apply_migrations_sync(
    db_path: Path,
    migrations_dir: Path,
    *,
    dry_run: bool = False,
    log: Callable[[str], None] | None = None,
    applied_by: str | None = None,
    lock_timeout_s: float = 10.0,
    allow_out_of_order: bool = False,
    target: str | None = None,
) -> MigrationResult:
    say = log or (lambda _line: None)
    plan = plan_migrations(
        db_path, migrations_dir, allow_out_of_order=allow_out_of_order, target=target
    )
    if dry_run:
        for migration in plan.pending:
            say(
                f"would apply {migration.path.name}"
                + ("" if migration.transactional else " (no transaction)")
            )
            for statement in migration.statements():
                say(f"    {statement}")
        return MigrationResult(plan.pending, dry_run=True)
    if not plan.pending:
        say("schema is up to date")
        return MigrationResult()
    who = applied_by or operator_identity()
    result = MigrationResult()
    try:
        # The busy timeout stays within the lock timeout, so waiting for a busy database
        # never outlasts what the caller asked for.
        conn = _connect(db_path, timeout=max(1.0, min(lock_timeout_s, 10.0)))
    except sqlite3.Error as exc:
        raise MigrationError(f"cannot open {db_path}: {exc}") from None
    try:
        with migration_lock(conn, lock_timeout_s):
            conn.execute(HISTORY_DDL)
            # Planned again under the lock: another migrator may have run meanwhile.
            plan = plan_migrations(
                db_path, migrations_dir, allow_out_of_order=allow_out_of_order, target=target
            )
            for migration in plan.pending:
                say(f"applying {migration.path.name}")
                _apply_one(conn, migration, who)
                result.applied.append(migration)
                say(f"applied {migration.path.name}")
    except sqlite3.Error as exc:  # the history or lock tables, not a file: say so plainly
        raise MigrationError(f"{db_path}: {exc}") from None
    finally:
        conn.close()
    return result


async def apply_migrations(
    db_path: Path,
    migrations_dir: Path,
    *,
    dry_run: bool = False,
    log: Callable[[str], None] | None = None,
    applied_by: str | None = None,
    lock_timeout_s: float = 10.0,
    allow_out_of_order: bool = False,
    target: str | None = None,
) -> MigrationResult:
    """Apply pending migrations in a thread, so the caller's event loop keeps running."""
    return await asyncio.to_thread(
        apply_migrations_sync,
        db_path,
        migrations_dir,
        dry_run=dry_run,
        log=log,
        applied_by=applied_by,
        lock_timeout_s=lock_timeout_s,
        allow_out_of_order=allow_out_of_order,
        target=target,
    )
