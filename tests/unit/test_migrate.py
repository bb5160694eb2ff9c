"""Migrations, Flyway-style: order, checksums, drift, CRLF, unknown and out-of-order versions,
one transaction a file, one migrator at a time."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest

from dhash_console.ops.migrate import (
    MigrationError,
    MigrationLocked,
    apply_migrations_sync,
    migration_status,
)
from tests.integration.localenv_helpers import MIGRATIONS


def write(folder: Path, name: str, sql: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(sql.encode())
    return path


def schema(db: Path) -> list[tuple[str, str]]:
    """The database's schema and contents, to compare before and after."""
    with sqlite3.connect(db) as conn:
        objects = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'schema_migrations%'"
            " ORDER BY name"
        ).fetchall()
        rows = (
            [("row", repr(r)) for r in conn.execute("SELECT * FROM t ORDER BY 1")]
            if any(n == "t" for n, _ in objects)
            else []
        )
    return [(n, s or "") for n, s in objects] + rows


@pytest.fixture
def three(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    write(folder, "20240101_001_create.sql", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
    write(
        folder,
        "20240102_001_seed.sql",
        "INSERT INTO t (v) VALUES ('a');\nINSERT INTO t (v) VALUES ('b');",
    )
    write(folder, "20240103_001_more.sql", "ALTER TABLE t ADD COLUMN w TEXT;")
    return folder


def test_the_real_migrations_apply_in_order(tmp_path: Path) -> None:
    db = tmp_path / "dhash.sqlite3"
    result = apply_migrations_sync(db, MIGRATIONS)
    assert [str(m) for m in result.applied] == [
        "20240315_001_initial_dhash_schema",
        "20240320_001_add_hash_index",
        "20240325_001_update_queue_table",
    ]
    status = migration_status(db, MIGRATIONS)
    assert not (status.pending or status.drifted or status.unknown)
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT checksum, success, applied_by, execution_ms FROM "
            "schema_migrations ORDER BY version"
        ).fetchone()
    assert len(row[0]) == 64 and row[1] == 1 and row[2] and row[3] >= 0
    assert apply_migrations_sync(db, MIGRATIONS).applied == []  # idempotent


def test_a_failing_migration_in_the_middle_leaves_the_first_applied_and_nothing_else(
    tmp_path: Path, three: Path
) -> None:
    db = tmp_path / "db.sqlite3"
    apply_migrations_sync(db, three, target="20240101_001")
    before = schema(db)
    write(
        three,
        "20240102_001_seed.sql",
        "INSERT INTO t (v) VALUES ('a');\nINSERT INTO nowhere VALUES (1);",
    )
    with pytest.raises(MigrationError, match=r"20240102_001_seed\.sql failed and was rolled back"):
        apply_migrations_sync(db, three)
    assert schema(db) == before  # the first insert of the failing file is gone too
    status = migration_status(db, three)
    assert [str(m) for m in status.applied] == ["20240101_001_create"]
    assert [str(m) for m in status.failed] == ["20240102_001_seed"]  # recorded
    assert [str(m) for m in status.pending] == ["20240102_001_seed", "20240103_001_more"]


def test_drift_is_refused_naming_the_file_before_anything_runs(tmp_path: Path, three: Path) -> None:
    db = tmp_path / "db.sqlite3"
    apply_migrations_sync(db, three, target="20240102_001")
    write(three, "20240101_001_create.sql", "CREATE TABLE t (id INTEGER PRIMARY KEY);")
    before = schema(db)
    with pytest.raises(MigrationError, match=r"20240101_001_create\.sql changed"):
        apply_migrations_sync(db, three)
    assert schema(db) == before
    assert [m.path.name for m in migration_status(db, three).drifted] == ["20240101_001_create.sql"]


def test_crlf_line_endings_are_not_drift(tmp_path: Path, three: Path) -> None:
    db = tmp_path / "db.sqlite3"
    apply_migrations_sync(db, three)
    for path in three.iterdir():
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert migration_status(db, three).drifted == []


def test_an_applied_version_missing_on_disk_is_reported(tmp_path: Path, three: Path) -> None:
    db = tmp_path / "db.sqlite3"
    apply_migrations_sync(db, three)
    (three / "20240103_001_more.sql").unlink()
    assert [str(m) for m in migration_status(db, three).unknown] == ["20240103_001_more"]


def test_out_of_order_files_are_refused_unless_allowed(tmp_path: Path, three: Path) -> None:
    db = tmp_path / "db.sqlite3"
    apply_migrations_sync(db, three)
    write(three, "20240101_002_late.sql", "CREATE TABLE late (x);")
    with pytest.raises(MigrationError, match=r"out of order: 20240101_002_late\.sql"):
        apply_migrations_sync(db, three)
    applied = apply_migrations_sync(db, three, allow_out_of_order=True).applied
    assert [str(m) for m in applied] == ["20240101_002_late"]


def test_dry_run_prints_the_plan_and_changes_nothing(tmp_path: Path, three: Path) -> None:
    db = tmp_path / "db.sqlite3"
    lines: list[str] = []
    result = apply_migrations_sync(db, three, dry_run=True, log=lines.append)
    assert len(result.applied) == 3
    assert not db.exists()
    assert any("CREATE TABLE t" in line for line in lines)


def test_files_that_manage_their_own_transaction_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    write(folder, "1_a.sql", "BEGIN;\nCREATE TABLE a (x);\nCOMMIT;")
    with pytest.raises(MigrationError, match="manages its own transaction"):
        apply_migrations_sync(tmp_path / "db.sqlite3", folder)


def test_a_no_transaction_file_holds_one_statement(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    write(folder, "1_a.sql", "-- dhash:no-transaction\nCREATE TABLE a (x);\nCREATE TABLE b (x);")
    with pytest.raises(MigrationError, match="exactly one statement"):
        apply_migrations_sync(tmp_path / "db.sqlite3", folder)
    write(folder, "1_a.sql", "-- dhash:no-transaction\nCREATE INDEX IF NOT EXISTS i ON a (x);")
    write(folder, "0_t.sql", "CREATE TABLE a (x);")
    applied = apply_migrations_sync(tmp_path / "db.sqlite3", folder).applied
    assert [m.transactional for m in applied] == [True, False]


def test_a_dialect_file_replaces_the_portable_one_for_its_dialect_only(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    write(folder, "1_a.sql", "CREATE TABLE a (id INTEGER PRIMARY KEY);")
    write(folder, "1_a.postgresql.sql", "CREATE TABLE a (id BIGINT GENERATED ALWAYS AS IDENTITY);")
    applied = apply_migrations_sync(tmp_path / "db.sqlite3", folder).applied
    assert [m.path.name for m in applied] == ["1_a.sql"]


HOLD_LOCK = """
import sqlite3, sys, time
from pathlib import Path
from dhash_console.ops.migrate import LOCK_DDL, migration_lock
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
with migration_lock(conn, 5):
    print("holding", flush=True)
    sys.stdin.readline()  # held until the test says so (or kills us)
    released = time.time()
print(released, flush=True)
"""


def test_two_migrators_at_once_the_second_names_the_holder(tmp_path: Path, three: Path) -> None:
    db = tmp_path / "db.sqlite3"
    sqlite3.connect(db).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with pytest.raises(MigrationLocked, match=f"pid {holder.pid}"):
            apply_migrations_sync(db, three, lock_timeout_s=0.3)
        assert migration_status(db, three).applied == []
    finally:
        holder.kill()
        holder.wait()
    # A killed holder does not keep the database: its lock is cleared.
    assert len(apply_migrations_sync(db, three, lock_timeout_s=2).applied) == 3


def test_a_second_migrator_waits_its_turn_within_the_timeout(tmp_path: Path, three: Path) -> None:
    db = tmp_path / "db.sqlite3"
    sqlite3.connect(db).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdin is not None and holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        with ThreadPoolExecutor(1) as pool:
            second = pool.submit(apply_migrations_sync, db, three, lock_timeout_s=20)
            holder.stdin.write("release\n")
            holder.stdin.flush()
            released = float(holder.stdout.readline())
            applied = second.result(timeout=30).applied
    finally:
        holder.kill()
        holder.wait()
    assert len(applied) == 3
    first = min(a.applied_at for a in migration_status(db, three).applied)
    assert datetime.fromisoformat(first).timestamp() >= released - 0.01  # after, not during


def test_transaction_control_is_found_behind_comments_and_as_end(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    for sql in ("-- start\nBEGIN;\nCREATE TABLE a (x);", "CREATE TABLE a (x);\n/* done */ END;"):
        write(folder, "1_a.sql", sql)
        with pytest.raises(MigrationError, match="manages its own transaction"):
            apply_migrations_sync(tmp_path / "db.sqlite3", folder)
    # A trigger's BEGIN ... END is a statement of its own, not transaction control.
    write(
        folder,
        "1_a.sql",
        "CREATE TABLE a (x);\nCREATE TABLE log (x);\n"
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO log VALUES (new.x); END;",
    )
    assert len(apply_migrations_sync(tmp_path / "db.sqlite3", folder).applied) == 1


def test_statements_that_need_no_transaction_must_be_alone_in_a_marked_file(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "m"
    write(folder, "1_a.sql", "CREATE TABLE a (x);")
    write(folder, "2_vacuum.sql", "DELETE FROM a;\nVACUUM;")
    db = tmp_path / "db.sqlite3"
    with pytest.raises(MigrationError, match="VACUUM cannot run inside a transaction"):
        apply_migrations_sync(db, folder)
    assert not db.exists()  # refused before anything ran
    write(folder, "2_vacuum.sql", "-- dhash:no-transaction\nVACUUM;")
    assert [m.transactional for m in apply_migrations_sync(db, folder).applied] == [True, False]


def test_a_byte_order_mark_is_not_drift(tmp_path: Path, three: Path) -> None:
    db = tmp_path / "db.sqlite3"
    apply_migrations_sync(db, three)
    path = three / "20240102_001_seed.sql"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    status = migration_status(db, three)
    assert status.drifted == [] and status.pending == []


def test_two_files_with_the_same_version_number_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    write(folder, "1_a.sql", "CREATE TABLE a (x);")
    write(folder, "01_b.sql", "CREATE TABLE b (x);")
    with pytest.raises(MigrationError, match="same version number"):
        migration_status(tmp_path / "db.sqlite3", folder)


def test_a_failure_is_recorded_and_the_fixed_file_applies_later(
    tmp_path: Path, three: Path
) -> None:
    db = tmp_path / "db.sqlite3"
    write(
        three,
        "20240102_001_seed.sql",
        "INSERT INTO t (v) VALUES ('a');\nINSERT INTO nope VALUES (1);",
    )
    with pytest.raises(MigrationError, match=r"20240102_001_seed\.sql failed and was rolled back"):
        apply_migrations_sync(db, three)
    status = migration_status(db, three)
    assert [str(m) for m in status.failed] == ["20240102_001_seed"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0  # rolled back whole
    write(three, "20240102_001_seed.sql", "INSERT INTO t (v) VALUES ('a');")
    assert len(apply_migrations_sync(db, three).applied) == 2
    assert migration_status(db, three).failed == []


def test_a_dry_run_on_a_database_leaves_it_byte_for_byte(tmp_path: Path, three: Path) -> None:
    db = tmp_path / "db.sqlite3"
    apply_migrations_sync(db, three, target="20240101_001")
    before = db.read_bytes()
    lines: list[str] = []
    result = apply_migrations_sync(db, three, dry_run=True, log=lines.append)
    assert [str(m) for m in result.applied] == ["20240102_001_seed", "20240103_001_more"]
    assert db.read_bytes() == before
    assert sorted(p.name for p in db.parent.iterdir() if p.name.startswith("db")) == [db.name]
