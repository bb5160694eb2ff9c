"""The history database's schema versions: fresh, upgraded from older, refused when newer."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from dhash_console.events import PhaseStarted
from dhash_console.store.history import HistoryStore
from dhash_console.store.schema import (
    LATEST,
    MIGRATIONS,
    Migration,
    SchemaTooNew,
    current_version,
    migrate,
)


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def versions(path: Path) -> list[int]:
    with connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY 1")]


async def test_a_fresh_database_gets_every_migration(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    async with await HistoryStore.open(path):
        pass
    assert versions(path) == [m.version for m in MIGRATIONS]
    assert MIGRATIONS[-1].version == LATEST
    assert [m.version for m in MIGRATIONS] == list(range(1, LATEST + 1))  # ordered, no gaps


async def test_an_older_database_is_upgraded_in_place_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    conn = connect(path)
    assert migrate(conn, MIGRATIONS[:1]) == 1  # as the first release left it
    conn.execute(
        "INSERT INTO rollouts (id, env, to_version, started_by, via, host, pid, started_at,"
        " duration_s, interval_s) VALUES ('r-old', 'staging', '1.0', 'a', 'cli', 'h', 1, 5.0,"
        " 60, 1)"
    )
    conn.close()
    assert versions(path) == [1]

    async with await HistoryStore.open(path) as store:
        record = await store.get_rollout("r-old")
        assert record is not None and record.to_version == "1.0"
        await store.journal(PhaseStarted(rollout_id="r-old", seq=2, phase="deploy"))
        # Version 2's table works.
        request_id = await store.request_control("r-old", "abort", "", "me")
        assert (await store.take_control_requests("r-old"))[0].id == request_id
    assert versions(path) == [1, 2]


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    conn = connect(tmp_path / "h.sqlite3")
    assert migrate(conn) == LATEST
    assert migrate(conn) == LATEST
    assert current_version(conn) == LATEST
    conn.close()


def test_a_newer_database_is_refused_untouched(tmp_path: Path) -> None:
    conn = connect(tmp_path / "h.sqlite3")
    future = (*MIGRATIONS, Migration(LATEST + 1, "from the future", "CREATE TABLE future (x)"))
    migrate(conn, future)
    with pytest.raises(SchemaTooNew, match=f"version {LATEST + 1}"):
        migrate(conn)
    assert current_version(conn) == LATEST + 1
    conn.close()


def test_a_failing_migration_leaves_the_database_as_it_was(tmp_path: Path) -> None:
    conn = connect(tmp_path / "h.sqlite3")
    migrate(conn)
    broken = (
        *MIGRATIONS,
        Migration(
            LATEST + 1, "half good", "CREATE TABLE half (x);\nINSERT INTO nowhere VALUES (1);"
        ),
    )
    with pytest.raises(sqlite3.OperationalError, match="nowhere"):
        migrate(conn, broken)
    assert current_version(conn) == LATEST
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "half" not in tables
    conn.close()


def test_a_python_migration_runs_in_the_same_transaction(tmp_path: Path) -> None:
    conn = connect(tmp_path / "h.sqlite3")
    migrate(conn)

    def backfill(c: sqlite3.Connection) -> None:
        c.execute("CREATE TABLE notes (n TEXT)")
        c.execute("INSERT INTO notes VALUES ('filled')")

    assert migrate(conn, (*MIGRATIONS, Migration(LATEST + 1, "backfill", backfill))) == LATEST + 1
    assert conn.execute("SELECT n FROM notes").fetchall() == [("filled",)]
    conn.close()


def test_concurrent_openers_apply_each_migration_once(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    errors: list[BaseException] = []

    def open_and_migrate() -> None:
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=10)
            migrate(conn)
            conn.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_and_migrate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert errors == []
    assert versions(path) == list(range(1, LATEST + 1))


def test_indexes_serve_the_history_queries(tmp_path: Path) -> None:
    conn = connect(tmp_path / "h.sqlite3")
    migrate(conn)

    def plan(sql: str) -> str:
        return " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql))

    newest = plan("SELECT id FROM rollouts ORDER BY started_at DESC, rowid DESC LIMIT 50")
    assert "rollouts_by_start" in newest and "TEMP B-TREE" not in newest
    by_env = plan(
        "SELECT id FROM rollouts WHERE env = 'x' ORDER BY started_at DESC, rowid DESC LIMIT 50"
    )
    assert "rollouts_by_env_start" in by_env and "TEMP B-TREE" not in by_env
    running = plan("SELECT id FROM rollouts WHERE status = 'running' ORDER BY started_at DESC")
    assert "rollouts_running" in running
    events = plan("SELECT json FROM events WHERE rollout_id = 'x' AND seq > 3 ORDER BY seq, id")
    assert "events_by_rollout_seq" in events
    conn.close()
