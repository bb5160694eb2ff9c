"""Backups of a database the running reference service keeps writing to."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

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
