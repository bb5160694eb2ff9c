"""Backups: sha256sum-compatible sidecars, retention, restore, and every tamper case refused
before anything is touched."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from dhash_console import __version__
from dhash_console.errors import NeedsHuman
from dhash_console.ops.backup import (
    DB_MEMBER,
    MANIFEST,
    BackupInvalid,
    apply_retention,
    backup_info,
    check_backup,
    create_backup_sync,
    describe_restore,
    latest_verified_backup,
    list_backups,
    restore_backup_sync,
    sha256_file,
    sidecar_path,
    staged_paths,
    sweep_stale_partials,
    undo_restore_sync,
    verify_backup,
)
from dhash_console.ops.backup import restore as restore_module
from dhash_console.ops.migrate import apply_migrations_sync
from tests.integration.localenv_helpers import MIGRATIONS


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "db" / "dhash.sqlite3"
    path.parent.mkdir()
    apply_migrations_sync(path, MIGRATIONS)
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO hashes (hash, filename, width, height, created_at) VALUES (?,?,?,?,?)",
            [(f"{i:016x}", f"f{i}.png", 9, 8, "2026-12-04") for i in range(500)],
        )
    return path


@pytest.fixture
def backup(db: Path, tmp_path: Path) -> Path:
    return create_backup_sync(db, tmp_path / "backups", "local", service_version="1.0.0").path


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="no sha256sum on this system")
def test_backup_is_a_verified_zip_with_a_sha256sum_sidecar(backup: Path) -> None:
    assert backup.name.startswith("dhash_local_") and backup.suffix == ".zip"
    result = subprocess.run(
        ["sha256sum", "-c", sidecar_path(backup).name],
        cwd=backup.parent,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = verify_backup(backup)
    assert [c.name for c in report.checks] == [
        "sidecar",
        "zip",
        "members",
        "space",
        "manifest",
        "contents",
        "restore drill",
    ]
    manifest = report.manifest
    assert manifest["environment"] == "local" and manifest["service_version"] == "1.0.0"
    assert [m["version"] for m in manifest["migrations"]] == [
        "20240315_001",
        "20240320_001",
        "20240325_001",
    ]
    assert manifest["members"][DB_MEMBER]["size"] > 0
    assert manifest["console_version"] == __version__
    assert len(manifest["schema_sha256"]) == 64
    assert all(len(m["checksum"]) == 64 for m in manifest["migrations"])


def test_files_are_readable_by_their_owner_only(backup: Path) -> None:
    for path in (backup, sidecar_path(backup), *staged_paths(backup)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_no_temporary_files_are_left(backup: Path) -> None:
    assert sorted(p.name for p in backup.parent.iterdir()) == sorted(
        [backup.name, sidecar_path(backup).name, *(p.name for p in staged_paths(backup))]
    )


def rehash(path: Path) -> None:
    """Make the sidecar match a tampered zip, so the deeper checks are what refuse it."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    sidecar_path(path).write_text(f"{digest}  {path.name}\n")


def rebuild(backup: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> None:
    with zipfile.ZipFile(backup, "w") as archive:
        for info, data in members:
            archive.writestr(info, data)
    rehash(backup)


def original_members(backup: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(backup) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def flip_byte(backup: Path) -> None:
    data = bytearray(backup.read_bytes())
    data[len(data) // 2] ^= 0xFF
    backup.write_bytes(bytes(data))


def truncate(backup: Path) -> None:
    backup.write_bytes(backup.read_bytes()[: backup.stat().st_size // 2])
    rehash(backup)


def missing_sidecar(backup: Path) -> None:
    sidecar_path(backup).unlink()


def wrong_sidecar_name(backup: Path) -> None:
    digest = hashlib.sha256(backup.read_bytes()).hexdigest()
    sidecar_path(backup).write_text(f"{digest}  other.zip\n")


def member_named(name: str) -> Callable[[Path], None]:
    def tamper(backup: Path) -> None:
        members = original_members(backup)
        rebuild(backup, [(MANIFEST, members[MANIFEST]), (name, members[DB_MEMBER])])

    return tamper


def duplicate_member(backup: Path) -> None:
    members = original_members(backup)
    rebuild(
        backup,
        [
            (MANIFEST, members[MANIFEST]),
            (DB_MEMBER, members[DB_MEMBER]),
            (DB_MEMBER, members[DB_MEMBER]),
        ],
    )


def symlink_member(backup: Path) -> None:
    members = original_members(backup)
    link = zipfile.ZipInfo(DB_MEMBER)
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    rebuild(backup, [(MANIFEST, members[MANIFEST]), (link, b"/etc/passwd")])


def too_many_members(backup: Path) -> None:
    members = original_members(backup)
    padding: list[tuple[zipfile.ZipInfo | str, bytes]] = [(f"pad{i}", b"") for i in range(40)]
    rebuild(backup, [(MANIFEST, members[MANIFEST]), (DB_MEMBER, members[DB_MEMBER]), *padding])


def size_lies(backup: Path) -> None:
    """The manifest declares fewer bytes than the member holds."""
    members = original_members(backup)
    manifest = json.loads(members[MANIFEST])
    manifest["members"][DB_MEMBER]["size"] = 4096
    rebuild(backup, [(DB_MEMBER, members[DB_MEMBER]), (MANIFEST, json.dumps(manifest).encode())])


def zip_bomb(backup: Path) -> None:
    members = original_members(backup)
    bomb = zipfile.ZipInfo(DB_MEMBER)
    bomb.compress_type = zipfile.ZIP_DEFLATED
    rebuild(backup, [(MANIFEST, members[MANIFEST]), (bomb, b"\0" * 50_000_000)])


def manifest_mismatch(backup: Path) -> None:
    members = original_members(backup)
    manifest = json.loads(members[MANIFEST])
    manifest["members"][DB_MEMBER]["sha256"] = "0" * 64
    rebuild(backup, [(DB_MEMBER, members[DB_MEMBER]), (MANIFEST, json.dumps(manifest).encode())])


def corrupt_database(backup: Path) -> None:
    members = original_members(backup)
    data = bytearray(members[DB_MEMBER])
    for page in range(4096, len(data), 4096):  # every b-tree page's header, not the file's
        data[page : page + 8] = b"\xff" * 8
    manifest = json.loads(members[MANIFEST])
    manifest["members"][DB_MEMBER] = {
        "size": len(data),
        "sha256": hashlib.sha256(bytes(data)).hexdigest(),
    }
    rebuild(backup, [(DB_MEMBER, bytes(data)), (MANIFEST, json.dumps(manifest).encode())])


TAMPERS: dict[str, tuple[Callable[[Path], None], str]] = {
    "flipped byte": (flip_byte, "sidecar"),
    "truncated zip": (truncate, "zip"),
    "missing sidecar": (missing_sidecar, "sidecar"),
    "sidecar for another file": (wrong_sidecar_name, "sidecar"),
    "../x": (member_named("../x"), "members"),
    "/x": (member_named("/x"), "members"),
    "C:x": (member_named("C:x"), "members"),
    "unknown member": (member_named("evil.sh"), "members"),
    "duplicate names": (duplicate_member, "members"),
    "symlink member": (symlink_member, "members"),
    "zip bomb": (zip_bomb, "members"),
    "too many members": (too_many_members, "zip"),
    "manifest lies about the size": (size_lies, "manifest"),
    "manifest mismatch": (manifest_mismatch, "contents"),
    "corrupt database inside": (corrupt_database, "restore drill"),
}


@pytest.mark.filterwarnings("ignore:Duplicate name")  # the duplicate is the point
@pytest.mark.parametrize("case", sorted(TAMPERS))
def test_tampered_backup_is_refused_before_anything_is_touched(
    case: str, backup: Path, db: Path
) -> None:
    tamper, failing_check = TAMPERS[case]
    assert backup_info(backup).staged is not None  # an intact staged copy does not save it
    tamper(backup)
    report = check_backup(backup)
    assert not report.ok
    assert report.first_failure is not None and report.first_failure.name == failing_check
    before = db.read_bytes()
    with pytest.raises(BackupInvalid):
        restore_backup_sync(backup, db)
    assert db.read_bytes() == before  # byte for byte
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]  # no copy, no kept file


def test_restore_swaps_in_the_backup_and_keeps_the_replaced_database(
    backup: Path, db: Path
) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM hashes")
    result = restore_backup_sync(backup, db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM hashes").fetchone()[0] == 500
    assert result.kept_as is not None
    with sqlite3.connect(result.kept_as) as conn:  # the restore can itself be undone
        assert conn.execute("SELECT count(*) FROM hashes").fetchone()[0] == 0


def test_retention_keeps_the_newest_and_never_the_protected(db: Path, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    made = [create_backup_sync(db, backups, "local", service_version=None).path for _ in range(4)]
    removed = apply_retention(backups, "local", keep=2, protect=(made[0],))
    remaining = {b.path for b in list_backups(backups, "local")}
    assert made[0] in remaining  # protected, though oldest
    assert set(removed) == {made[1]}
    assert made[2] in remaining and made[3] in remaining


def test_a_zip_without_its_sidecar_is_listed_incomplete(backup: Path) -> None:
    sidecar_path(backup).unlink()
    (info,) = list_backups(backup.parent)
    assert info.complete is False


KILL_SCRIPT = """
import sys
import tempfile
from pathlib import Path
from dhash_console.ops.backup import create_backup_sync
create_backup_sync(Path(sys.argv[1]), Path(sys.argv[2]), "local", service_version=None)
"""


def test_kill_9_in_the_middle_of_a_backup_leaves_nothing_that_looks_complete(
    tmp_path: Path,
) -> None:
    big = tmp_path / "big.sqlite3"
    with sqlite3.connect(big) as conn:
        conn.execute("CREATE TABLE blob (data BLOB)")
        conn.executemany("INSERT INTO blob VALUES (randomblob(1000000))", [()] * 150)
    backups = tmp_path / "backups"
    backups.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(big), str(backups)])
    try:
        deadline = time.monotonic() + 30
        # Killed while the zip is being written: the partial file is there, not yet renamed.
        while not list(backups.glob(".dhash_*.partial-*")):
            assert proc.poll() is None, "the backup finished before it could be killed"
            assert time.monotonic() < deadline, "no partial zip appeared"
            time.sleep(0.005)
    finally:
        proc.kill()
        proc.wait()
    assert not list(backups.glob("dhash_*.zip.sha256"))
    complete = [b for b in list_backups(backups) if b.complete]
    assert complete == [] or all(check_backup(b.path).ok for b in complete)
    # Nothing that a rollback would take: a zip appears only after fsync, the sidecar last.
    for zip_path in backups.glob("dhash_*.zip"):
        if sidecar_path(zip_path).exists():
            assert check_backup(zip_path).ok
    assert latest_verified_backup(backups, "local") is None
    # The next backup clears what the killed one left, and is the only one offered.
    made = create_backup_sync(big, backups, "local", service_version=None)
    assert [p.name for p in backups.iterdir() if p.name.startswith(".")] == []
    assert latest_verified_backup(backups, "local") == backup_info(made.path)


def test_a_restore_can_be_undone(backup: Path, db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("DELETE FROM hashes WHERE id > 100")
    Path(f"{db}-shm").touch()  # a stale -shm must not survive the swap
    db.chmod(0o640)
    result = restore_backup_sync(backup, db)
    assert not Path(f"{db}-wal").exists() and not Path(f"{db}-shm").exists()
    assert stat.S_IMODE(db.stat().st_mode) == 0o640  # the service's own mode
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM hashes").fetchone()[0] == 500
    assert result.kept_as is not None
    undone = undo_restore_sync(result.kept_as, db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM hashes").fetchone()[0] == 100
    assert undone.kept_as is not None and not result.kept_as.exists()
    with sqlite3.connect(undone.kept_as) as conn:  # and the undo is itself undoable
        assert conn.execute("SELECT count(*) FROM hashes").fetchone()[0] == 500


def test_the_restore_plan_names_the_migrations_it_would_revert(db: Path, tmp_path: Path) -> None:
    info = create_backup_sync(db, tmp_path / "backups", "local", service_version="1.0.0")
    extra = tmp_path / "extra"
    shutil.copytree(MIGRATIONS, extra)
    (extra / "20240401_001_add_notes.sql").write_text("ALTER TABLE hashes ADD COLUMN note TEXT;\n")
    apply_migrations_sync(db, extra)
    later = info.created_at + timedelta(minutes=42)
    plan = describe_restore(info, db, now=later)
    assert plan.verified == "when taken" and plan.sha256 == info.sha256  # staged, as taken
    assert plan.reverted_migrations == ["20240401_001"] and plan.reverts_migrations
    assert plan.discards_minutes == pytest.approx(42)
    assert "20240401_001" in plan.describe() and "42 min" in plan.describe()
    flip_byte(info.path)
    assert describe_restore(info, db, now=later).verified == "no"  # its record no longer matches


def test_stale_partials_of_dead_processes_are_swept(backup: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    stale = backup.parent / f".dhash_local_20260101_000000.zip.partial-{pid}"
    stale.write_bytes(b"half a zip")
    stale_dir = backup.parent / f".snapshot-{pid}-abc"
    stale_dir.mkdir()
    stale_staging = backup.parent / f".{backup.name}.staged.sqlite3.partial-{pid}"
    stale_staging.write_bytes(b"half a database")
    live = backup.parent / f".dhash_local_20260101_000001.zip.partial-{os.getpid()}"
    live.write_bytes(b"still being written")
    assert set(sweep_stale_partials(backup.parent)) == {stale, stale_dir, stale_staging}
    assert live.exists() and backup.exists() and sidecar_path(backup).exists()


def test_a_path_with_uri_characters_backs_up_and_restores(db: Path, tmp_path: Path) -> None:
    odd = tmp_path / "a?b#c%20d" / "dhash.sqlite3"
    odd.parent.mkdir()
    shutil.copy(db, odd)
    info = create_backup_sync(odd, odd.parent / "backups", "local", service_version=None)
    assert verify_backup(info.path).ok
    assert restore_backup_sync(info.path, odd).kept_as is not None


# -- the staged restore ---------------------------------------------------------------------


def rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM hashes").fetchone()[0])


def member_sha256(backup: Path) -> str:
    return hashlib.sha256(original_members(backup)[DB_MEMBER]).hexdigest()


def test_a_staged_backup_restores_by_rename_and_the_next_restore_uses_the_zip(
    backup: Path, db: Path
) -> None:
    copy, record = staged_paths(backup)
    assert backup_info(backup).staged == copy and sha256_file(copy) == member_sha256(backup)
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM hashes")
    result = restore_backup_sync(backup, db)
    assert result.staged and rows(db) == 500
    assert not copy.exists() and not record.exists()  # consumed
    assert result.kept_as is not None and rows(result.kept_as) == 0  # and undoable
    assert sorted(p.name for p in db.parent.iterdir()) == sorted([db.name, result.kept_as.name])

    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM hashes WHERE id > 7")
    again = restore_backup_sync(backup, db)
    assert not again.staged and again.note == "no staged copy" and rows(db) == 500


def flip_staged_byte_keeping_mtime(backup: Path) -> None:
    """Change the copy's bytes but not its size or mtime: only its sha256 can tell."""
    copy, _ = staged_paths(backup)
    before = copy.stat()
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    os.utime(copy, ns=(before.st_atime_ns, before.st_mtime_ns))


def replace_staged_with_another_database(backup: Path) -> None:
    copy, _ = staged_paths(backup)
    other = copy.with_name("other.sqlite3")
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE hashes (id INTEGER PRIMARY KEY)")
    other.replace(copy)


def staged_record_for_another_copy(backup: Path) -> None:
    _, record = staged_paths(backup)
    facts = json.loads(record.read_text())
    facts["sha256"] = "0" * 64
    record.write_text(json.dumps(facts))


STAGED_TAMPERS: dict[str, tuple[Callable[[Path], None], str]] = {
    "bytes changed, size and mtime kept": (flip_staged_byte_keeping_mtime, "sha256"),
    "another database": (replace_staged_with_another_database, "changed after"),
    "record names another hash": (staged_record_for_another_copy, "sha256"),
}


@pytest.mark.parametrize("case", sorted(STAGED_TAMPERS))
def test_a_changed_staged_copy_is_never_restored(case: str, backup: Path, db: Path) -> None:
    tamper, reason = STAGED_TAMPERS[case]
    tamper(backup)
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM hashes")
    result = restore_backup_sync(backup, db)
    assert not result.staged and reason in result.note  # the zip, verified, was restored
    assert sha256_file(db) == member_sha256(backup) and rows(db) == 500
    assert not any(p.exists() for p in staged_paths(backup))  # dropped, never kept around


def test_a_changed_staged_copy_of_a_tampered_backup_is_refused_before_anything_is_touched(
    backup: Path, db: Path
) -> None:
    flip_staged_byte_keeping_mtime(backup)
    flip_byte(backup)
    before = db.read_bytes()
    with pytest.raises(BackupInvalid, match="sidecar"):
        restore_backup_sync(backup, db)
    assert db.read_bytes() == before
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]


def test_only_the_newest_backup_is_staged_and_retention_removes_staged_copies(
    db: Path, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    made = [create_backup_sync(db, backups, "local", service_version=None) for _ in range(3)]
    other = create_backup_sync(db, backups, "other", service_version=None)
    assert [info.staged is not None for info in made] == [True, True, True]  # each in its turn
    assert [backup_info(info.path).staged is not None for info in made] == [False, False, True]
    assert backup_info(other.path).staged is not None  # one per environment
    assert apply_retention(backups, "local", keep=1) == [made[1].path, made[0].path]
    # A staged copy whose backup went some other way goes at the next retention.
    other.path.unlink()
    sidecar_path(other.path).unlink()
    apply_retention(backups, "local", keep=1)
    assert sorted(p.name for p in backups.iterdir()) == sorted(
        [made[2].path.name, sidecar_path(made[2].path).name]
        + [p.name for p in staged_paths(made[2].path)]
    )


def another_filesystem() -> Path | None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK):
        return None
    return shm if shm.stat().st_dev != Path(__file__).stat().st_dev else None


@pytest.mark.skipif(another_filesystem() is None, reason="no second filesystem (/dev/shm) here")
def test_a_staged_copy_on_another_filesystem_falls_back_to_the_zip(
    backup: Path, db: Path, tmp_path: Path
) -> None:
    shm = another_filesystem()
    assert shm is not None
    elsewhere = Path(tempfile.mkdtemp(dir=shm, prefix="dhash-test-"))
    try:
        target = elsewhere / "dhash.sqlite3"
        shutil.copy(db, target)
        with sqlite3.connect(target) as conn:
            conn.execute("DELETE FROM hashes")
        result = restore_backup_sync(backup, target)
        assert not result.staged and "cannot be renamed" in result.note and rows(target) == 500
        assert backup_info(backup).staged is not None  # left for a restore it can serve
        # A database there is never staged for: a rename could not bring the copy to it.
        info = create_backup_sync(target, tmp_path / "backups", "local", service_version=None)
        assert info.staged is None and backup_info(backup).staged is None
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)


# -- a swap that cannot finish --------------------------------------------------------------


@pytest.mark.parametrize("staged", [True, False], ids=["staged", "from the zip"])
def test_a_restore_that_cannot_swap_leaves_the_database_as_it_was(
    staged: bool, backup: Path, db: Path
) -> None:
    if not staged:
        restore_backup_sync(backup, db)  # uses up the staged copy
        for kept in db.parent.glob(f"{db.name}.replaced-*"):
            kept.unlink()
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM hashes WHERE id > 3")
    before = db.read_bytes()
    obstacle = Path(f"{db}-wal")  # a directory where the old -wal is removed: fails for real
    obstacle.mkdir()
    (obstacle / "x").write_text("x")
    with pytest.raises(NeedsHuman, match="the database is as it was"):
        restore_backup_sync(backup, db)
    assert db.read_bytes() == before
    assert sorted(p.name for p in db.parent.iterdir()) == sorted([db.name, obstacle.name])
    shutil.rmtree(obstacle)
    again = restore_backup_sync(backup, db)  # the same backup still restores, from its zip
    assert not again.staged and rows(db) == 500


def test_a_database_another_process_still_uses_is_not_restored_over(
    backup: Path, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(restore_module, "CHECKPOINT_WAIT_S", 0.1)
    writer = sqlite3.connect(db, isolation_level=None)
    reader = sqlite3.connect(db, isolation_level=None)
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("PRAGMA wal_autocheckpoint=0")
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM hashes").fetchone()  # holds a snapshot open
        writer.execute("DELETE FROM hashes WHERE id > 9")  # lives in the -wal only
        with pytest.raises(NeedsHuman, match="in use by another process"):
            restore_backup_sync(backup, db)
    finally:
        reader.close()
        writer.close()
    assert rows(db) == 9  # the write the -wal held was not thrown away
    assert not list(db.parent.glob(f"{db.name}.replaced-*"))
