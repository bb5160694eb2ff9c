"""Restoring a backup, undoing a restore, and saying beforehand what a restore would do.

A restore verifies first (every check, the drill included) and refuses anything that fails
before the database is touched; a backup staged when it was taken was verified then, and its
drilled copy only has its sha256 checked now (staged.py). The drilled copy, fsynced beside the
database, is then swapped in with one atomic rename: the database path never goes missing.
The database it replaced stays beside it as `<db>.replaced-<stamp>` (a hard link taken before
the swap, so keeping it costs nothing), and `undo_restore` puts it back the same way.
A rollback that chose the newest backup itself (`restore_newest_sync`) restores the
next-newest one that verifies when the one it chose does not, as the choice would have gone
had it been verified then; when none does, it refuses with the database untouched.
The service must be stopped or quiesced meanwhile: that is the caller's part.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from dhash_console.errors import FileInUse, NeedsHuman, OperationFailed
from dhash_console.fsretry import replace_retrying, unlink_retrying
from dhash_console.ops.backup.catalog import list_backups, read_sidecar
from dhash_console.ops.backup.model import (
    NAME,
    BackupInfo,
    BackupInvalid,
    RestoreResult,
    fsync_dir,
    sha256_file,
)
from dhash_console.ops.backup.schema import schema_facts
from dhash_console.ops.backup.staged import claim_staged, staged_intact
from dhash_console.ops.backup.verify import verified_copy
from dhash_console.ops.sqlite_url import connect_readonly

REPLACED_INFIX = ".replaced-"
CHECKPOINT_WAIT_S = 10.0  # for another connection to let go of the database


def _checkpoint(db_path: Path) -> None:
    """Fold the WAL into the file, so the kept copy is whole on its own.

    A database another process still reads or writes is refused (FileInUse, nothing changed):
    its -wal would be removed next, and the kept copy would lose the writes it held. A file
    SQLite cannot read (a corrupt database being restored over) has nothing to fold in.
    """
    try:
        conn = sqlite3.connect(db_path, timeout=CHECKPOINT_WAIT_S)
        try:
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        if exc.sqlite_errorcode not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return
        busy = 1
    if busy:
        raise FileInUse(
            f"{db_path} is in use by another process: its WAL could not be folded in within "
            f"{CHECKPOINT_WAIT_S:g} s; stop what holds it open and try again"
        )


def _kept_name(db_path: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
    kept = db_path.with_name(f"{db_path.name}{REPLACED_INFIX}{stamp}")
    n = 1
    while kept.exists():
        n += 1
        kept = db_path.with_name(f"{db_path.name}{REPLACED_INFIX}{stamp}_{n}")
    return kept


def _swap_in(new_file: Path, db_path: Path) -> Path | None:
    """Atomically make `new_file` the database; return where the replaced one is kept.

    Files another process holds open are retried briefly (Windows, fsretry.py). If a step
    fails, the database is left where it was and the error raised.
    """
    kept: Path | None = None
    linked = False
    if db_path.exists():
        _checkpoint(db_path)
        kept = _kept_name(db_path)
        with contextlib.suppress(OSError):
            os.chmod(new_file, db_path.stat().st_mode & 0o777)  # the service's own mode
        try:
            os.link(db_path, kept)  # the old file keeps a name through the swap
            linked = True
        except OSError:
            replace_retrying(db_path, kept)  # no hard links here: a brief gap, same outcome
    try:
        # A -wal or -shm left from the old file would be replayed into the new one.
        for suffix in ("-wal", "-shm", "-journal"):
            unlink_retrying(Path(f"{db_path}{suffix}"), missing_ok=True)
        replace_retrying(new_file, db_path)
    except (OSError, FileInUse):
        if kept is not None:
            _put_back(kept, db_path, linked)
        raise
    fsync_dir(db_path.parent)
    return kept


def _put_back(kept: Path, db_path: Path, linked: bool) -> None:
    """Undo the first step of a swap that failed: the database where it was, no extra name."""
    try:
        if linked:
            kept.unlink()  # the database never moved; drop the second name
        else:
            replace_retrying(kept, db_path)
    except (OSError, FileInUse) as exc:
        raise NeedsHuman(
            f"a restore failed midway and the database could not be put back: it is {kept} ({exc})"
        ) from exc


def restore_backup_sync(path: Path, db_path: Path) -> RestoreResult:
    """Swap in the backup's staged copy once its sha256 matches (staged.py), else verify the
    zip (raising BackupInvalid, nothing touched) and swap the drilled copy in."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    taken, note = claim_staged(path, db_path.parent)
    if taken is not None:
        try:
            kept = _swap_or_fail(taken, db_path, path)
        finally:
            taken.unlink(missing_ok=True)  # gone already unless the swap failed
        return RestoreResult(db_path, path, kept, staged=True)
    with verified_copy(path, db_path.parent, durable=True) as (report, restored):
        if not report.ok:
            raise BackupInvalid(report)
        kept = _swap_or_fail(restored, db_path, path)
    return RestoreResult(db_path, path, kept, note=note)


def restore_newest_sync(path: Path, db_path: Path) -> RestoreResult:
    """Restore `path`, chosen by a rollback as its environment's newest verified backup
    (`latest_verified_backup(staged=True)`). If it does not verify now (its staged copy and
    its zip both refused), restore the next-newest backup that does instead; NeedsHuman,
    the database untouched, when none does."""
    try:
        return restore_backup_sync(path, db_path)
    except BackupInvalid as exc:
        refused = exc
    match = NAME.match(path.name)
    env = match.group("env") if match else None
    listed = [info.path for info in list_backups(path.parent, env) if info.complete]
    for older in listed[listed.index(path) + 1 :] if path in listed else []:
        try:
            result = restore_backup_sync(older, db_path)  # verified as it is restored
        except BackupInvalid:
            continue
        return replace(result, note=f"{refused}; the next-newest backup that verifies instead")
    raise NeedsHuman(f"{refused}; no older backup verifies either: the database is as it was")


async def restore_newest(path: Path, db_path: Path) -> RestoreResult:
    return await asyncio.to_thread(restore_newest_sync, path, db_path)


def _swap_or_fail(new_file: Path, db_path: Path, backup: Path) -> Path | None:
    try:
        return _swap_in(new_file, db_path)
    except (OSError, FileInUse) as exc:
        raise NeedsHuman(
            f"restore of {backup.name} into {db_path} failed; the database is as it was: {exc}"
        ) from exc


async def restore_backup(path: Path, db_path: Path) -> RestoreResult:
    """`restore_backup_sync` in a thread, so the caller's event loop keeps running."""
    return await asyncio.to_thread(restore_backup_sync, path, db_path)


def undo_restore_sync(kept: Path, db_path: Path) -> RestoreResult:
    """Put back the database a restore replaced (after its own integrity check); the one it
    replaces is kept in turn, so this too can be undone."""
    try:
        conn = connect_readonly(kept)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise OperationFailed(f"{kept.name} is not a readable SQLite database: {exc}") from None
    if result != "ok":
        raise OperationFailed(f"{kept.name}: integrity_check: {result}")
    try:
        replaced = _swap_in(kept, db_path)
    except (OSError, FileInUse) as exc:
        raise NeedsHuman(
            f"putting back {kept.name} as {db_path} failed; the database is as it was: {exc}"
        ) from exc
    return RestoreResult(db_path, kept, replaced)


async def undo_restore(kept: Path, db_path: Path) -> RestoreResult:
    return await asyncio.to_thread(undo_restore_sync, kept, db_path)


# -- the plan, said before it runs ------------------------------------------------------


@dataclass(frozen=True)
class RestorePlan:
    """What restoring `backup` into the database would do."""

    backup: Path
    sha256: str
    # "now": every check ran now; "when taken": staged, its copy matching its record (the
    # restore checks the copy's sha256); "checksum": only the zip's sha256 matched its sidecar
    # now; "no": not checked, or it did not match.
    verified: Literal["now", "when taken", "checksum", "no"]
    created_at: datetime
    age_s: float
    service_version: str | None
    reverted_migrations: list[str]  # applied in the database now, absent from the backup
    discards_minutes: float  # writes since the backup was taken, lost by the restore

    @property
    def reverts_migrations(self) -> bool:
        return bool(self.reverted_migrations)

    def describe(self) -> str:
        state = {
            "now": "verified now",
            "when taken": "verified when taken, staged; its copy's sha256 checked at restore",
            "checksum": "sha256 checked now against its sidecar",
            "no": "NOT verified",
        }[self.verified]
        text = (
            f"restore {self.backup.name} (sha256 {self.sha256[:12]}…, {state}, taken "
            f"{self.age_s / 60:.0f} min ago"
            + (f" under {self.service_version}" if self.service_version else "")
            + ")"
        )
        if self.reverted_migrations:
            text += f", reverting migrations {', '.join(self.reverted_migrations)}"
        else:
            text += ", reverting no migration"
        return text + f", discarding about {self.discards_minutes:.0f} min of writes"

    def to_dict(self) -> dict[str, Any]:
        return {
            "backup": str(self.backup),
            "sha256": self.sha256,
            "verified": self.verified,
            "created_at": self.created_at.isoformat(),
            "age_s": round(self.age_s, 1),
            "service_version": self.service_version,
            "reverted_migrations": self.reverted_migrations,
            "discards_minutes": round(self.discards_minutes, 1),
        }


def describe_restore(
    backup: BackupInfo, db_path: Path, *, now: datetime | None = None, check: bool = True
) -> RestorePlan:
    """The rollback plan's data: which backup and how it is known good, its checksum, its
    age, the migrations a restore would revert (applied in the database now but not in the
    backup's manifest), and the minutes of writes it discards.

    A backup verified just now, or staged and still matching its record (the restore reads
    its staged copy, not the zip), is said to be so; otherwise the zip is hashed now against
    its sidecar unless `check` is False."""
    now = now or datetime.now(UTC)
    recorded = read_sidecar(backup.path)
    verified: Literal["now", "when taken", "checksum", "no"] = "no"
    if backup.verified == "now":
        verified = "now"
    elif staged_intact(backup.path):
        verified = "when taken"
    elif check and recorded is not None and sha256_file(backup.path) == recorded:
        verified = "checksum"
    current: list[dict[str, Any]] = []
    if db_path.exists():
        with contextlib.suppress(sqlite3.Error):
            current, _ = schema_facts(db_path)
    in_backup = {str(m.get("version")) for m in backup.migrations}
    reverted = [str(m["version"]) for m in current if str(m["version"]) not in in_backup]
    age = max(0.0, (now - backup.created_at).total_seconds())
    return RestorePlan(
        backup=backup.path,
        sha256=recorded or backup.sha256,
        verified=verified,
        created_at=backup.created_at,
        age_s=age,
        service_version=backup.service_version,
        reverted_migrations=reverted,
        discards_minutes=age / 60,
    )
