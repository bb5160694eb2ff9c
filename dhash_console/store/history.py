"""The history store: every event of every rollout, journaled to SQLite before anyone sees it.

One writer per rollout (the engine's process) appends in short transactions; readers in
other processes (the TUI, `history`) see each commit at once, since the database is in WAL
mode. A process killed at any moment leaves committed events intact and the rollout's row
saying `running` with its last phase; `RolloutRecord.effective_status` then reads
`interrupted`, because the owning process is gone.

Faces in other processes steer a rollout by writing control requests here; the engine takes
each one exactly once (`take_control_requests`).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

import aiosqlite

from dhash_console.errors import UsageError
from dhash_console.store.doorbell import ring
from dhash_console.store.process import pid_alive, this_host
from dhash_console.store.schema import migrate

if TYPE_CHECKING:
    # Only for types: reading the rollout list must not pay for building the event models
    # (`history --limit 50` has a 300 ms budget for the whole process).
    from dhash_console.events import (
        Event,
        GateSample,
        GateVerdict,
        PhaseStarted,
        RolloutFinished,
        RolloutStarted,
    )

ControlAction = Literal["rollback", "abort", "pause", "resume"]
BUSY_TIMEOUT_MS = 5_000

_ROLLOUT_COLUMNS = (
    "id, env, from_version, to_version, started_by, via, host, pid, dry_run, started_at, "
    "finished_at, duration_s, interval_s, status, phase, exit_code, reason, rollback_plan, "
    "last_seq, last_event_at"
)
_REQUEST_COLUMNS = "id, rollout_id, action, reason, requested_by, requested_at, taken_at, state"


@dataclass(frozen=True)
class RolloutRecord:
    id: str
    env: str
    from_version: str | None
    to_version: str
    started_by: str
    via: str
    host: str
    pid: int
    dry_run: bool
    started_at: float
    finished_at: float | None
    duration_s: float  # the planned monitoring window
    interval_s: float
    status: str  # 'running' or an Outcome
    phase: str | None  # the last phase started
    exit_code: int | None
    reason: str | None
    rollback_plan: str
    last_seq: int = 0
    last_event_at: float | None = None

    @property
    def effective_status(self) -> str:
        """`interrupted` for a rollout still marked running whose process is gone."""
        if self.status == "running" and self.host == this_host() and not pid_alive(self.pid):
            return "interrupted"
        return self.status

    @property
    def elapsed_s(self) -> float:
        """How long it ran: to its end, to its last event if it died, or until now."""
        if self.finished_at is not None:
            end = self.finished_at
        elif self.effective_status == "interrupted":
            end = self.last_event_at or self.started_at
        else:
            end = time.time()
        return max(0.0, end - self.started_at)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["effective_status"] = self.effective_status
        data["elapsed_s"] = round(self.elapsed_s, 3)
        return data

    @classmethod
    def _from_row(cls, row: sqlite3.Row | tuple[Any, ...]) -> RolloutRecord:
        values = list(row)
        values[8] = bool(values[8])  # dry_run
        return cls(*values)


@dataclass(frozen=True)
class ControlRequest:
    id: int
    rollout_id: str
    action: ControlAction
    reason: str
    by: str
    requested_at: float
    taken_at: float | None
    state: Literal["pending", "taken"]

    @classmethod
    def _from_row(cls, row: sqlite3.Row | tuple[Any, ...]) -> ControlRequest:
        return cls(*row)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AmbiguousRolloutId(UsageError):
    """A rollout id prefix that matches more than one rollout (exit 2)."""


class HistoryStore:
    def __init__(
        self, path: Path, conn: aiosqlite.Connection, appender: sqlite3.Connection
    ) -> None:
        self.path = path
        self._conn = conn
        # Journal appends go through a plain connection, each event's transaction in one call
        # on a worker thread: through aiosqlite every statement is a round trip between two
        # threads, six an event, and those were a good part of the CPU of watching a rollout.
        self._appender = appender
        # One transaction at a time: statements of two coroutines must not land in each
        # other's transaction, nor the two connections wait on each other's write lock.
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> HistoryStore:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(_prepare, path)
        appender = await asyncio.to_thread(_connect_appender, path)
        try:
            conn = await aiosqlite.connect(
                path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
            )
        except BaseException:
            appender.close()
            raise
        try:
            await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            await conn.close()
            appender.close()
            raise
        return cls(path, conn, appender)

    async def close(self) -> None:
        async with self._write_lock:
            try:
                await self._conn.close()
            finally:
                await asyncio.to_thread(self._appender.close)

    async def __aenter__(self) -> HistoryStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- writing --------------------------------------------------------------------------------

    async def journal(self, event: Event) -> None:
        """Append `event` and commit before returning.

        Shielded: a caller cancelled mid-write does not leave half a transaction open, and the
        event still lands (the journal must say where a cancelled rollout stopped).
        """
        await asyncio.shield(self._journal(event))

    async def _journal(self, event: Event) -> None:
        row = (event.rollout_id, event.seq, event.type, event.at, event.model_dump_json())
        async with self._write_lock:
            await asyncio.to_thread(_append, self._appender, event, row)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)

    # -- reading rollouts -------------------------------------------------------------------------

    async def list_rollouts(
        self, env: str | None = None, limit: int = 20, active_only: bool = False
    ) -> list[RolloutRecord]:
        """Newest first. `active_only`: still running, in a live process (or another host's)."""
        where: list[str] = []
        params: list[Any] = []
        if env is not None:
            where.append("env = ?")
            params.append(env)
        if active_only:
            where.append("status = 'running'")  # the partial index rollouts_running
        sql = f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        # rowid breaks ties of started_at in insertion order, and is in every index.
        sql += " ORDER BY started_at DESC, rowid DESC"
        if not active_only:
            sql += " LIMIT ?"
            params.append(max(0, limit))
        rows = await self._conn.execute_fetchall(sql, params)
        records = [RolloutRecord._from_row(row) for row in rows]
        if active_only:
            records = [r for r in records if r.effective_status == "running"][: max(0, limit)]
        return records

    async def get_rollout(self, rollout_id: str) -> RolloutRecord | None:
        """The rollout with this id, or the only one whose id starts with it.

        Raises AmbiguousRolloutId (exit 2) when a prefix matches several.
        """
        if not rollout_id:
            return None
        rows = list(
            await self._conn.execute_fetchall(
                f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts WHERE id = ?", (rollout_id,)
            )
        )
        if not rows:
            # A range on the primary key, not LIKE: it uses the index and treats % and _
            # as themselves.
            rows = list(
                await self._conn.execute_fetchall(
                    f"SELECT {_ROLLOUT_COLUMNS} FROM rollouts WHERE id >= ? AND id < ?"
                    " ORDER BY id LIMIT 6",
                    (rollout_id, _prefix_end(rollout_id)),
                )
            )
        if len(rows) > 1:
            names = ", ".join(str(row[0]) for row in rows[:5])
            more = ", ..." if len(rows) > 5 else ""
            raise AmbiguousRolloutId(
                f"rollout id prefix {rollout_id!r} matches several rollouts: {names}{more}"
            )
        return RolloutRecord._from_row(rows[0]) if rows else None

    # -- reading events ---------------------------------------------------------------------------

    async def events(
        self,
        rollout_id: str,
        after_seq: int = 0,
        limit: int | None = None,
        types: Sequence[str] | None = None,
    ) -> list[Event]:
        """The rollout's events with seq > after_seq, in order (poll with the last seq seen)."""
        sql = "SELECT json FROM events WHERE rollout_id = ? AND seq > ?"
        params: list[Any] = [rollout_id, after_seq]
        if types:
            sql += f" AND type IN ({', '.join('?' * len(types))})"
            params.extend(types)
        sql += " ORDER BY seq, id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(max(0, limit))
        rows = await self._conn.execute_fetchall(sql, params)
        return _parse_events(rows)

    async def last_events(
        self, rollout_id: str, limit: int, types: Sequence[str] | None = None
    ) -> list[Event]:
        """The last `limit` events (of these types), oldest of them first: a log's tail."""
        sql = "SELECT json FROM events WHERE rollout_id = ?"
        params: list[Any] = [rollout_id]
        if types:
            sql += f" AND type IN ({', '.join('?' * len(types))})"
            params.extend(types)
        sql += " ORDER BY seq DESC, id DESC LIMIT ?"
        params.append(max(0, limit))
        rows = await self._conn.execute_fetchall(sql, params)
        return _parse_events(reversed(list(rows)))

    async def gate_samples(self, rollout_id: str, gate: str | None = None) -> list[GateSample]:
        sql = (
            "SELECT e.json FROM gate_samples AS g JOIN events AS e ON e.id = g.event_id"
            " WHERE g.rollout_id = ?"
        )
        params: list[Any] = [rollout_id]
        if gate is not None:
            sql += " AND g.gate = ?"
            params.append(gate)
        sql += " ORDER BY e.seq, e.id"
        rows = await self._conn.execute_fetchall(sql, params)
        return cast("list[GateSample]", _parse_events(rows))

    async def sample_counts(self, rollout_id: str) -> dict[str, dict[str, int]]:
        """Per gate, how many samples passed, failed and were inconclusive (no parsing)."""
        rows = await self._conn.execute_fetchall(
            "SELECT gate, result, count(*) FROM gate_samples WHERE rollout_id = ?"
            " GROUP BY gate, result ORDER BY gate",
            (rollout_id,),
        )
        counts: dict[str, dict[str, int]] = {}
        for gate, result, count in rows:
            counts.setdefault(str(gate), {})[str(result)] = int(count)
        return counts

    async def gate_verdicts(self, rollout_id: str) -> list[GateVerdict]:
        rows = await self._conn.execute_fetchall(
            "SELECT e.json FROM gate_verdicts AS g JOIN events AS e ON e.id = g.event_id"
            " WHERE g.rollout_id = ? ORDER BY e.seq, e.id",
            (rollout_id,),
        )
        return cast("list[GateVerdict]", _parse_events(rows))

    # -- control requests -------------------------------------------------------------------------

    async def request_control(
        self, rollout_id: str, action: ControlAction, reason: str, by: str
    ) -> int:
        """Ask the engine running `rollout_id` (in any process) to act; returns the request id."""
        if action not in get_args(ControlAction):
            raise UsageError(f"unknown control action {action!r}")
        async with self._write_lock, self._transaction():
            cursor = await self._conn.execute(
                "INSERT INTO control_requests (rollout_id, action, reason, requested_by,"
                " requested_at) VALUES (?, ?, ?, ?, ?)",
                (rollout_id, action, reason, by, time.time()),
            )
            request_id = cursor.lastrowid
            await cursor.close()
        assert request_id is not None
        ring(self.path, rollout_id)  # the engine reads it now rather than at its next poll
        return request_id

    async def take_control_requests(self, rollout_id: str) -> list[ControlRequest]:
        """The pending requests for this rollout, oldest first, each marked taken.

        Marking and reading are one UPDATE ... RETURNING under the database's write lock, so
        of two pollers (in any processes) exactly one gets each request. Polled often: the
        usual answer, nothing pending, is a read that takes no write lock.
        """
        pending = await self._conn.execute_fetchall(
            "SELECT 1 FROM control_requests WHERE rollout_id = ? AND state = 'pending' LIMIT 1",
            (rollout_id,),
        )
        if not list(pending):
            return []
        async with self._write_lock, self._transaction():
            rows = await self._conn.execute_fetchall(
                "UPDATE control_requests SET state = 'taken', taken_at = ?"
                " WHERE rollout_id = ? AND state = 'pending'"
                f" RETURNING {_REQUEST_COLUMNS}",
                (time.time(), rollout_id),
            )
        return sorted((ControlRequest._from_row(row) for row in rows), key=lambda r: r.id)

    async def control_request(self, request_id: int) -> ControlRequest | None:
        rows = list(
            await self._conn.execute_fetchall(
                f"SELECT {_REQUEST_COLUMNS} FROM control_requests WHERE id = ?", (request_id,)
            )
        )
        return ControlRequest._from_row(rows[0]) if rows else None

    async def control_requests(self, rollout_id: str) -> list[ControlRequest]:
        """Every request made for this rollout, oldest first (for timelines)."""
        rows = await self._conn.execute_fetchall(
            f"SELECT {_REQUEST_COLUMNS} FROM control_requests WHERE rollout_id = ? ORDER BY id",
            (rollout_id,),
        )
        return [ControlRequest._from_row(row) for row in rows]


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error (the connection is autocommit)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def __aenter__(self) -> None:
        # IMMEDIATE: take the write lock up front, waiting up to busy_timeout for it, rather
        # than failing half-way when a read transaction would have to be upgraded.
        await self._conn.execute("BEGIN IMMEDIATE")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self._conn.execute("COMMIT")
        else:
            await self._conn.execute("ROLLBACK")


def _append(conn: sqlite3.Connection, event: Event, row: tuple[Any, ...]) -> None:
    """Append one event and commit, on a worker thread: all of it lands, or none."""
    conn.execute("BEGIN IMMEDIATE")  # the write lock up front (see _Transaction)
    try:
        cursor = conn.execute(
            "INSERT INTO events (rollout_id, seq, type, at, json) VALUES (?, ?, ?, ?, ?)", row
        )
        _apply(conn, event, cursor.lastrowid)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _apply(conn: sqlite3.Connection, event: Event, event_id: int | None) -> None:
    """Keep the per-rollout tables in step with the event just appended."""
    execute = conn.execute
    kind = event.type  # the discriminator: no need to import the classes
    if kind == "rollout_started":
        event = cast("RolloutStarted", event)
        # A resumed rollout starts again under the same id: it runs again, in this process.
        execute(
            "INSERT INTO rollouts (id, env, from_version, to_version, started_by, via, host,"
            " pid, dry_run, started_at, duration_s, interval_s, status, rollback_plan,"
            " last_seq, last_event_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,"
            " status = 'running', finished_at = NULL, exit_code = NULL, reason = NULL,"
            " last_seq = excluded.last_seq, last_event_at = excluded.last_event_at",
            (
                event.rollout_id,
                event.env,
                event.from_version,
                event.to_version,
                event.started_by,
                event.via,
                event.host,
                event.pid,
                int(event.dry_run),
                event.at,
                event.duration_s,
                event.interval_s,
                event.rollback_plan,
                event.seq,
                event.at,
            ),
        )
        return
    if kind == "phase_started":
        event = cast("PhaseStarted", event)
        execute(
            "UPDATE rollouts SET phase = ?, last_seq = max(last_seq, ?), last_event_at = ?"
            " WHERE id = ?",
            (event.phase, event.seq, event.at, event.rollout_id),
        )
        return
    if kind == "rollout_finished":
        event = cast("RolloutFinished", event)
        execute(
            "UPDATE rollouts SET status = ?, exit_code = ?, reason = ?, finished_at = ?,"
            " last_seq = max(last_seq, ?), last_event_at = ? WHERE id = ?",
            (
                event.outcome,
                event.exit_code,
                event.reason,
                event.at,
                event.seq,
                event.at,
                event.rollout_id,
            ),
        )
        return
    execute(
        "UPDATE rollouts SET last_seq = max(last_seq, ?), last_event_at = ? WHERE id = ?",
        (event.seq, event.at, event.rollout_id),
    )
    if kind == "gate_sample":
        event = cast("GateSample", event)
        execute(
            "INSERT INTO gate_samples (event_id, rollout_id, gate, idx, result, value, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                event_id,
                event.rollout_id,
                event.gate,
                event.index,
                event.result,
                event.value,
                event.at,
            ),
        )
    elif kind == "gate_verdict":
        event = cast("GateVerdict", event)
        execute(
            "INSERT INTO gate_verdicts (event_id, rollout_id, gate, verdict, value, at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (event_id, event.rollout_id, event.gate, event.verdict, event.value, event.at),
        )


def _parse_events(rows: Iterable[Any]) -> list[Event]:
    from dhash_console.events import event_from_json

    return [event_from_json(row[0]) for row in rows]


def _prepare(path: Path) -> None:
    """WAL mode (persistent in the file) and the schema, on a short-lived connection."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        migrate(conn)
    finally:
        conn.close()


def _connect_appender(path: Path) -> sqlite3.Connection:
    """The connection journal appends use, from whichever worker thread runs them (one at a
    time, under the store's write lock)."""
    conn = sqlite3.connect(
        path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def _prefix_end(prefix: str) -> str:
    """The smallest string greater than every string that starts with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if ord(prefix[-1]) < 0x10FFFF else prefix + "\0"
