"""Backups of a database the running reference service keeps writing to."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dhash_console.localenv.traffic import TrafficGenerator
from dhash_console.ops.backup import check_backup, create_backup_sync, restore_backup_sync
from tests.integration.localenv_helpers import migrated_db, running_service


async def test_backups_taken_under_load_are_consistent_and_restore(tmp_path: Path) -> None:
    db = migrated_db(tmp_path / "dhash.sqlite3")
    backups = tmp_path / "backups"
    with running_service(db) as service:
        traffic = TrafficGenerator(service.url, 100)
        await traffic.start()
        try:
            while traffic.ok < 20:  # writes are flowing
                await asyncio.sleep(0.05)
            made = []
            for _ in range(3):
                made.append(
                    await asyncio.to_thread(
                        create_backup_sync, db, backups, "local", service_version="1.0.0"
                    )
                )
        finally:
            await traffic.stop()
    counts = []
    for info in made:
        report = check_backup(info.path)
        assert report.ok, report.first_failure
        restored = restore_backup_sync(info.path, tmp_path / "restored.sqlite3").db_path
        with sqlite3.connect(restored) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            hashes = conn.execute("SELECT count(*) FROM hashes").fetchone()[0]
            # Every queue row points at a hash that the same snapshot holds: consistent.
            orphans = conn.execute(
                "SELECT count(*) FROM processing_queue q LEFT JOIN hashes h ON h.id = q.hash_id"
                " WHERE h.id IS NULL"
            ).fetchone()[0]
        assert orphans == 0
        counts.append(hashes)
    assert counts == sorted(counts) and counts[-1] > 0  # later snapshots hold more


WRITER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("PRAGMA journal_mode=WAL")
n = 0
while True:
    # Each transaction writes a pair: a consistent snapshot holds both halves or neither.
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO orders (payload) VALUES (randomblob(2000))")
    conn.execute("INSERT INTO ledger (order_id) VALUES (last_insert_rowid())")
    conn.execute("COMMIT")
    n += 1
    if n == 200:
        print("writing", flush=True)
"""


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    db = tmp_path / "busy.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, payload BLOB)")
        conn.execute("CREATE TABLE ledger (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL)")
        conn.executemany("INSERT INTO orders (payload) VALUES (randomblob(2000))", [()] * 5000)
        conn.execute("INSERT INTO ledger (order_id) SELECT id FROM orders")
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
        yield db, proc
    finally:
        proc.kill()
        proc.wait()


def test_backups_under_a_writer_process_are_consistent(
    tmp_path: Path, writer: tuple[Path, subprocess.Popen[str]]
) -> None:
    db, proc = writer
    backups = tmp_path / "backups"
    made = [create_backup_sync(db, backups, "local", service_version=None) for _ in range(3)]
    assert proc.poll() is None  # the writer kept writing throughout
    counts = []
    for info in made:
        restored = restore_backup_sync(info.path, tmp_path / "restored.sqlite3").db_path
        with sqlite3.connect(restored) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            orders = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
            ledger = conn.execute("SELECT count(*) FROM ledger").fetchone()[0]
        assert orders == ledger  # no half-written pair
        counts.append(orders)
    assert counts == sorted(counts) and counts[-1] > counts[0] > 5000
