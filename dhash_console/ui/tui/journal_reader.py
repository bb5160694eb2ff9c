"""Read one rollout's new events from the history journal, cheaply, off the UI thread.

The console polls ten times a second for the 100 ms pick-up of new events, but most polls
find nothing. So a poll first compares the database's and its WAL file's (size, mtime):
a commit by any process changes the WAL file, and a checkpoint changes the database file.
Only when they moved does it run the query and parse events. A full read every
`FORCE_READ_S` covers a file system with coarse timestamps. No Textual, no asyncio: the
dashboard runs this in a thread worker with its own sqlite3 connection (read-only).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from dhash_console.events import Event, event_from_json
from dhash_console.store.process import pid_alive, this_host

FORCE_READ_S = 2.0
BUSY_TIMEOUT_S = 5.0

Signature = tuple[int, int, int, int]


def _signature(db: Path, wal: Path) -> Signature:
    """(size, mtime_ns) of the database and its WAL file; zeros for a missing file."""
    values: list[int] = []
    for path in (db, wal):
        try:
            st = os.stat(path)
        except OSError:
            values += [0, 0]
        else:
            values += [st.st_size, st.st_mtime_ns]
    return values[0], values[1], values[2], values[3]


class JournalReader:
    """A read-only view of the journal for one thread: new events, and whether the owner died."""

    def __init__(self, db: Path) -> None:
        self.db = Path(db)
        self.wal = self.db.with_name(self.db.name + "-wal")
        self._conn: sqlite3.Connection | None = None
        self._seen: Signature | None = None
        self._forced_at = 0.0
        self.reads = 0  # queries run (for tests and the bench: polls that found nothing skip it)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            uri = f"{self.db.resolve().as_uri()}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def changed(self) -> bool:
        """Whether anything may have been committed since the last call that said so."""
        now = time.monotonic()
        signature = _signature(self.db, self.wal)
        if signature != self._seen or now - self._forced_at >= FORCE_READ_S:
            self._seen = signature
            self._forced_at = now
            return True
        return False

    def events(self, rollout_id: str, after_seq: int, limit: int) -> list[Event]:
        """The rollout's events with seq > after_seq, in journal order (at most `limit`)."""
        self.reads += 1
        rows = self._connection().execute(
            "SELECT json FROM events WHERE rollout_id = ? AND seq > ? ORDER BY seq, id LIMIT ?",
            (rollout_id, after_seq, limit),
        )
        return [event_from_json(row[0]) for row in rows]

    def owner_gone(self, rollout_id: str) -> bool:
        """True when the rollout is marked running but its process on this host has died."""
        row = (
            self._connection()
            .execute("SELECT status, host, pid FROM rollouts WHERE id = ?", (rollout_id,))
            .fetchone()
        )
        if row is None:
            return False
        status, host, pid = row
        return bool(status == "running" and host == this_host() and not pid_alive(int(pid)))
