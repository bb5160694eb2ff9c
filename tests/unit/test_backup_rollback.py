"""The backup a standalone rollback chooses, and how its restore falls back: the staged newest
taken as verified when it was taken, its copy checked by sha256, then the zip in full, then the
next-newest backup that verifies, else a refusal with the database untouched."""

from __future__ import annotations

import os
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from dhash_console.errors import NeedsHuman
from dhash_console.ops.backup import (
    backup_info,
    create_backup_sync,
    describe_restore,
    latest_verified_backup,
    restore_newest_sync,
    sha256_file,
    staged_paths,
)
from dhash_console.ops.migrate import apply_migrations_sync
from tests.integration.localenv_helpers import MIGRATIONS
from tests.unit.test_backup import flip_staged_byte_keeping_mtime, member_sha256, rows


def set_rows(db: Path, count: int) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM hashes")
        conn.executemany(
            "INSERT INTO hashes (hash, filename, width, height, created_at) VALUES (?,?,?,?,?)",
            [(f"{i:016x}", f"f{i}.png", 9, 8, "2026-12-04") for i in range(count)],
        )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "db" / "dhash.sqlite3"
    path.parent.mkdir()
    apply_migrations_sync(path, MIGRATIONS)
    return path


def make_backups(db: Path, directory: Path) -> list[Path]:
    """Three backups, oldest first, of 100, 200 and 300 rows; the newest is staged. The
    database then holds 7 rows: what a rollback is asked to undo."""
    made = []
    for count in (100, 200, 300):
        set_rows(db, count)
        made.append(create_backup_sync(db, directory, "local", service_version=None).path)
    set_rows(db, 7)
    return made


@pytest.fixture
def backups(db: Path, tmp_path: Path) -> list[Path]:
    return make_backups(db, tmp_path / "backups")


def flip_zip_byte_keeping_stat(zip_path: Path) -> None:
    """A zip changed in place, its size, mtime and sidecar kept: only hashing it can tell."""
    before = zip_path.stat()
    data = bytearray(zip_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    zip_path.write_bytes(bytes(data))
    os.utime(zip_path, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_the_staged_newest_is_chosen_on_its_record_and_restored_from_its_copy(
    backups: list[Path], db: Path
) -> None:
    newest = backups[-1]
    # The zip differs from what its sidecar says, but not in anything a stat sees: the full
    # checks refuse it, the choice on the staged record does not read it.
    flip_zip_byte_keeping_stat(newest)
    assert latest_verified_backup(newest.parent, "local") == backup_info(backups[1])
    chosen = latest_verified_backup(newest.parent, "local", staged=True)
    assert chosen is not None and chosen.path == newest and chosen.verified == "when taken"
    assert "verified when it was taken and staged" in chosen.how_verified()
    result = restore_newest_sync(chosen.path, db)
    # The staged copy passed every check when it was taken and its sha256 still matches:
    # those are the bytes restored, the zip is never read.
    assert result.staged and result.backup == newest and rows(db) == 300
    assert result.kept_as is not None and rows(result.kept_as) == 7


def test_without_a_staged_copy_the_newest_is_verified_now(backups: list[Path], db: Path) -> None:
    for path in staged_paths(backups[-1]):
        path.unlink()
    chosen = latest_verified_backup(backups[-1].parent, "local", staged=True)
    assert chosen is not None and chosen.path == backups[-1] and chosen.verified == "now"
    result = restore_newest_sync(chosen.path, db)
    assert not result.staged and result.note == "no staged copy" and rows(db) == 300


def test_a_changed_staged_copy_falls_back_to_the_zip_verified_in_full(
    backups: list[Path], db: Path
) -> None:
    flip_staged_byte_keeping_mtime(backups[-1])  # its record still matches: it is chosen
    chosen = latest_verified_backup(backups[-1].parent, "local", staged=True)
    assert chosen is not None and chosen.verified == "when taken"
    result = restore_newest_sync(chosen.path, db)
    assert not result.staged and "sha256 differs" in result.note and result.backup == chosen.path
    assert sha256_file(db) == member_sha256(backups[-1]) and rows(db) == 300
    assert not any(p.exists() for p in staged_paths(backups[-1]))  # dropped, never kept


def test_a_changed_staged_copy_and_zip_fall_back_to_the_next_verified_backup(
    backups: list[Path], db: Path
) -> None:
    flip_staged_byte_keeping_mtime(backups[-1])
    flip_zip_byte_keeping_stat(backups[-1])
    flip_zip_byte_keeping_stat(backups[-2])  # the next-newest does not verify either
    chosen = latest_verified_backup(backups[-1].parent, "local", staged=True)
    assert chosen is not None and chosen.path == backups[-1]
    result = restore_newest_sync(chosen.path, db)
    assert result.backup == backups[0] and rows(db) == 100
    assert f"backup {backups[-1].name} does not verify: sidecar" in result.note
    assert "next-newest backup that verifies instead" in result.how()
    assert result.kept_as is not None and rows(result.kept_as) == 7


def test_when_no_backup_verifies_the_restore_is_refused_and_the_database_untouched(
    backups: list[Path], db: Path
) -> None:
    flip_staged_byte_keeping_mtime(backups[-1])
    for path in backups:
        flip_zip_byte_keeping_stat(path)
    chosen = latest_verified_backup(backups[-1].parent, "local", staged=True)
    assert chosen is not None and chosen.path == backups[-1]
    before = db.read_bytes()
    with pytest.raises(NeedsHuman, match="no older backup verifies either"):
        restore_newest_sync(chosen.path, db)
    assert db.read_bytes() == before and rows(db) == 7
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]
    # As before staging: a choice made now finds no backup that verifies.
    assert latest_verified_backup(backups[-1].parent, "local", staged=True) is None


def test_an_older_backup_of_another_environment_never_stands_in(db: Path, tmp_path: Path) -> None:
    set_rows(db, 50)
    # Older than local's backups: by its time, or within the same second by its name.
    create_backup_sync(db, tmp_path / "backups", "archive", service_version=None)
    backups = make_backups(db, tmp_path / "backups")
    flip_staged_byte_keeping_mtime(backups[-1])
    for path in backups:
        flip_zip_byte_keeping_stat(path)
    with pytest.raises(NeedsHuman):
        restore_newest_sync(backups[-1], db)
    assert rows(db) == 7


def test_the_plan_says_how_the_backup_was_found_good(backups: list[Path], db: Path) -> None:
    newest = backups[-1]
    later = backup_info(newest).created_at + timedelta(minutes=5)
    staged = latest_verified_backup(newest.parent, "local", staged=True)
    assert staged is not None
    plan = describe_restore(staged, db, now=later)
    assert plan.verified == "when taken" and "verified when taken, staged" in plan.describe()
    for path in staged_paths(newest):
        path.unlink()
    assert describe_restore(backup_info(newest), db, now=later).verified == "checksum"
    verified_now = latest_verified_backup(newest.parent, "local", staged=True)
    assert verified_now is not None
    assert "verified now" in describe_restore(verified_now, db, now=later).describe()
    flip_zip_byte_keeping_stat(newest)
    plan = describe_restore(backup_info(newest), db, now=later)
    assert plan.verified == "no" and "NOT verified" in plan.describe()
    assert plan.to_dict()["verified"] == "no"
