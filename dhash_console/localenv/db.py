"""The service's database access: short sqlite3 calls on one worker thread.

Every call runs whole (a transaction included) on a single dedicated thread, so the event
loop never waits on SQLite and no two requests interleave statements on the connection.
WAL mode and a busy timeout let backups read the file while the service writes.

The service never creates or migrates the schema: `check_schema` tells what is missing and the
entry point refuses to start (migrations/ and `dhash_console.ops.migrate` own the schema).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from dhash_console.localenv.dhash import from_hex, hamming

T = TypeVar("T")

# What the service needs: the initial schema. The queue's bookkeeping columns (the
# 20240325 migration) are used when present, so one build runs on the schema before and
# after that migration (expand/contract), as a release must when a rollback restores it.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "hashes": ("id", "hash", "filename", "width", "height", "created_at"),
    "processing_queue": ("id", "hash_id", "status", "created_at"),
}
QUEUE_BOOKKEEPING = ("attempts", "last_error", "updated_at")

BUSY_TIMEOUT_S = 5.0


class SchemaMissing(Exception):
    """The database is not there or not migrated; the message says what is missing."""


def _uri(path: Path, mode: str) -> str:
    """A `file:` URI, so SQLite opens an existing file and never creates an empty one."""
    return f"{path.resolve().as_uri()}?mode={mode}"


def check_schema(path: Path) -> None:
    """Raise SchemaMissing unless the tables and columns the service uses are all there."""
    if not path.is_file():
        raise SchemaMissing(f"database {path} does not exist")
    try:
        with contextlib.closing(
            sqlite3.connect(_uri(path, "ro"), uri=True, timeout=BUSY_TIMEOUT_S)
        ) as conn:
            missing: list[str] = []
            for table, columns in REQUIRED_COLUMNS.items():
                present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
                if not present:
                    missing.append(f"table {table}")
                    continue
                missing += [f"column {table}.{c}" for c in columns if c not in present]
    except sqlite3.Error as exc:
        raise SchemaMissing(f"cannot read database {path}: {exc}") from None
    if missing:
        raise SchemaMissing(f"database {path} lacks {', '.join(missing)}")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class StoredHash:
    id: int
    hash: str
    filename: str | None
    width: int | None
    height: int | None
    created_at: str

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "hash": self.hash,
            "filename": self.filename,
            "width": self.width,
            "height": self.height,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class Match:
    id: int
    hash: str
    distance: int


class Database:
    """One connection, used only from its own worker thread."""

    def __init__(self, path: Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dhash-db")
        self._conn: sqlite3.Connection | None = None
        self.queue_bookkeeping = False

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._conn is None:
                raise sqlite3.OperationalError("the database is not open")
            return work(self._conn)

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def open(self) -> None:
        def connect() -> None:
            # Autocommit: writes open their own short BEGIN IMMEDIATE ... COMMIT.
            conn = sqlite3.connect(
                _uri(self.path, "rw"), uri=True, timeout=self.busy_timeout_s, isolation_level=None
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            columns = {row[1] for row in conn.execute("PRAGMA table_info(processing_queue)")}
            self.queue_bookkeeping = all(c in columns for c in QUEUE_BOOKKEEPING)
            self._conn = conn

        await asyncio.get_running_loop().run_in_executor(self._executor, connect)

    async def close(self) -> None:
        def disconnect() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, disconnect)
        self._executor.shutdown(wait=True)

    async def ping(self) -> None:
        """Raise sqlite3.Error unless the hashes table can be read."""
        await self._run(lambda conn: conn.execute("SELECT 1 FROM hashes LIMIT 1").fetchall())

    async def insert_hash(
        self, value: str, filename: str | None, width: int, height: int
    ) -> StoredHash:
        """Store a hash and queue it for processing, in one transaction."""

        def work(conn: sqlite3.Connection) -> StoredHash:
            now = utc_now()
            with _transaction(conn):
                cursor = conn.execute(
                    "INSERT INTO hashes (hash, filename, width, height, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (value, filename, width, height, now),
                )
                new_id = cursor.lastrowid
                assert new_id is not None
                if self.queue_bookkeeping:
                    conn.execute(
                        "INSERT INTO processing_queue (hash_id, status, created_at, updated_at)"
                        " VALUES (?, 'pending', ?, ?)",
                        (new_id, now, now),
                    )
                else:
                    conn.execute(
                        "INSERT INTO processing_queue (hash_id, status, created_at)"
                        " VALUES (?, 'pending', ?)",
                        (new_id, now),
                    )
            return StoredHash(new_id, value, filename, width, height, now)

        return await self._run(work)

    async def get_hash(self, hash_id: int) -> StoredHash | None:
        def work(conn: sqlite3.Connection) -> StoredHash | None:
            row = conn.execute(
                "SELECT id, hash, filename, width, height, created_at FROM hashes WHERE id = ?",
                (hash_id,),
            ).fetchone()
            return StoredHash(*row) if row else None

        return await self._run(work)

    async def delete_hash(self, hash_id: int) -> bool:
        """Delete a hash and its queue entries; False when there was none."""

        def work(conn: sqlite3.Connection) -> bool:
            with _transaction(conn):
                conn.execute("DELETE FROM processing_queue WHERE hash_id = ?", (hash_id,))
                return conn.execute("DELETE FROM hashes WHERE id = ?", (hash_id,)).rowcount > 0

        return await self._run(work)

    async def search(
        self, value: int, max_distance: int, limit: int, exclude_id: int | None = None
    ) -> list[Match]:
        """Stored hashes within `max_distance` bits of `value`, nearest first.

        SQLite has no popcount, so the distances are computed here, on the worker thread.
        """

        def work(conn: sqlite3.Connection) -> list[Match]:
            found: list[Match] = []
            for row_id, text in conn.execute("SELECT id, hash FROM hashes"):
                if row_id == exclude_id:
                    continue
                try:
                    distance = hamming(value, from_hex(text))
                except ValueError:
                    continue  # a row written by something else, not a dHash
                if distance <= max_distance:
                    found.append(Match(row_id, text, distance))
            found.sort(key=lambda m: (m.distance, m.id))
            return found[:limit]

        return await self._run(work)

    async def counts(self) -> tuple[int, int]:
        """(hashes stored, queue entries pending)."""

        def work(conn: sqlite3.Connection) -> tuple[int, int]:
            stored = conn.execute("SELECT count(*) FROM hashes").fetchone()[0]
            pending = conn.execute(
                "SELECT count(*) FROM processing_queue WHERE status = 'pending'"
            ).fetchone()[0]
            return int(stored), int(pending)

        return await self._run(work)

    async def process_pending(self, batch: int = 100) -> int:
        """Take pending queue entries through processing; how many were taken.

        The hash is computed on upload already, so processing confirms the row it points at
        is still there: done if so, failed with the reason if not.
        """

        def work(conn: sqlite3.Connection) -> int:
            rows = conn.execute(
                "SELECT q.id, h.id FROM processing_queue q LEFT JOIN hashes h ON h.id = q.hash_id"
                " WHERE q.status = 'pending' ORDER BY q.id LIMIT ?",
                (batch,),
            ).fetchall()
            if not rows:
                return 0
            now = utc_now()
            with _transaction(conn):
                for queue_id, hash_id in rows:
                    status, error = ("done", None) if hash_id is not None else ("failed", "gone")
                    if self.queue_bookkeeping:
                        conn.execute(
                            "UPDATE processing_queue SET status = ?, last_error = ?,"
                            " attempts = attempts + 1, updated_at = ?"
                            " WHERE id = ? AND status = 'pending'",
                            (status, error, now, queue_id),
                        )
                    else:
                        conn.execute(
                            "UPDATE processing_queue SET status = ?"
                            " WHERE id = ? AND status = 'pending'",
                            (status, queue_id),
                        )
            return len(rows)

        return await self._run(work)


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE takes the write lock up front, so the busy timeout applies at BEGIN and a
    # transaction never fails half-way on a lock upgrade.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
