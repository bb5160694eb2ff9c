"""Taking a backup: an online snapshot, a zip hashed in the pass that writes it, then the
sidecar. Every file appears by an atomic rename; a zip without its sidecar is incomplete."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from dhash_console import __version__
from dhash_console.errors import OperationFailed, UsageError
from dhash_console.ops.backup.model import (
    CHUNK,
    COMPRESS_LEVEL,
    COMPRESSION,
    DB_MEMBER,
    MANIFEST,
    BackupInfo,
    fsync_dir,
    sidecar_path,
)
from dhash_console.ops.backup.schema import schema_digest, schema_facts
from dhash_console.ops.backup.staged import stage_backup
from dhash_console.ops.sqlite_url import connect_readonly

if TYPE_CHECKING:
    from dhash_console.config import ResolvedEnvironment

# Hidden names a backup in progress uses (a staged copy's: `.<zip>.staged.sqlite3.partial-`);
# the pid says whether its writer still lives.
_PARTIAL = re.compile(r"^\.(?:.+\.partial|snapshot|verify)-(?P<pid>\d+)(?:-.*)?$")

_BINARY = getattr(os, "O_BINARY", 0)  # Windows opens in text mode without it


class _HashingWriter:
    """A write-only, non-seekable file: zipfile then streams with data descriptors, so the
    whole zip is hashed in the one pass that writes it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.offset = 0

    def write(self, data: bytes) -> int:
        self.raw.write(data)
        self.digest.update(data)
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def seek(self, *_: object) -> int:
        raise OSError("not seekable")

    def flush(self) -> None:
        self.raw.flush()


def snapshot(db_path: Path, target: Path) -> None:
    """SQLite's online backup API: consistent while the service keeps writing."""
    source = connect_readonly(db_path, timeout=30)
    try:
        dest = sqlite3.connect(target)
        try:
            # One step (pages=-1): a stepwise copy restarts whenever another connection
            # writes, so a busy service could keep it from ever finishing. One step is one
            # read transaction; in WAL mode the service keeps writing meanwhile.
            source.backup(dest, pages=-1)
            dest.execute("PRAGMA journal_mode=DELETE")  # a self-contained file, no -wal
        finally:
            dest.close()
    finally:
        source.close()


def _unique_name(directory: Path, env: str, now: datetime) -> Path:
    stamp = now.strftime("%Y%m%d_%H%M%S")
    path = directory / f"dhash_{env}_{stamp}.zip"
    n = 1
    while path.exists() or sidecar_path(path).exists():
        n += 1
        path = directory / f"dhash_{env}_{stamp}_{n}.zip"
    return path


def sweep_stale_partials(backups_dir: Path) -> list[Path]:
    """Remove what a killed backup left behind (hidden partial files and snapshot folders
    whose process is gone). They never look complete; this only frees their space."""
    from dhash_console.store.process import pid_alive

    removed = []
    for path in backups_dir.glob(".*"):
        match = _PARTIAL.match(path.name)
        if match is None or pid_alive(int(match.group("pid"))):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _write_member(archive: zipfile.ZipFile, source: Path) -> tuple[str, int]:
    """Stream the snapshot into the zip, hashing it on the way (one read)."""
    digest = hashlib.sha256()
    size = 0
    info = zipfile.ZipInfo(DB_MEMBER, date_time=time.gmtime()[:6])
    info.compress_type = COMPRESSION
    # A ZipInfo built by hand would otherwise compress at zlib's default level (6), not ours.
    info._compresslevel = COMPRESS_LEVEL  # type: ignore[attr-defined]
    info.external_attr = (stat.S_IFREG | 0o600) << 16
    with source.open("rb") as handle, archive.open(info, "w", force_zip64=True) as out:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return digest.hexdigest(), size


def _write_sidecar(zip_path: Path, digest: str) -> None:
    """`sha256sum` format (hash, two spaces, base name), itself written atomically."""
    sidecar = sidecar_path(zip_path)
    partial = sidecar.with_name(f".{sidecar.name}.partial-{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _BINARY, 0o600)
    with os.fdopen(fd, "w", encoding="ascii", newline="\n") as handle:
        handle.write(f"{digest}  {zip_path.name}\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, sidecar)
    fsync_dir(zip_path.parent)


def _write_zip(partial: Path, snapshot_file: Path, manifest: dict[str, Any], now: datetime) -> str:
    """The zip, created 0600, fsynced; returns its sha256, computed as it was written."""
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, 0o600)
    with os.fdopen(fd, "wb") as raw:
        writer = _HashingWriter(raw)
        archive_file: Any = writer  # write/tell/flush is all zipfile needs here
        with zipfile.ZipFile(
            archive_file, "w", COMPRESSION, compresslevel=COMPRESS_LEVEL
        ) as archive:
            member_hash, member_size = _write_member(archive, snapshot_file)
            manifest["members"] = {DB_MEMBER: {"size": member_size, "sha256": member_hash}}
            info = zipfile.ZipInfo(MANIFEST, date_time=now.timetuple()[:6])
            info.external_attr = (stat.S_IFREG | 0o600) << 16
            archive.writestr(info, json.dumps(manifest, indent=2))
        raw.flush()
        os.fsync(raw.fileno())
    return writer.digest.hexdigest()


def create_backup_sync(
    db_path: Path,
    backups_dir: Path,
    env: str,
    *,
    service_version: str | None,
    stage: bool = True,
) -> BackupInfo:
    """Snapshot, zip (hashed in the same pass), fsync, rename, then the sidecar; then, with
    `stage`, verify it and keep its database beside it for a fast restore (staged.py).
    Raises BackupInvalid if the backup just written does not verify."""
    if not db_path.exists():
        raise UsageError(f"backup: no database at {db_path}")
    backups_dir.mkdir(parents=True, exist_ok=True)
    sweep_stale_partials(backups_dir)
    now = datetime.now(UTC)
    final = _unique_name(backups_dir, env, now)
    partial = backups_dir / f".{final.name}.partial-{os.getpid()}"
    with tempfile.TemporaryDirectory(dir=backups_dir, prefix=f".snapshot-{os.getpid()}-") as tmp:
        snapshot_file = Path(tmp) / DB_MEMBER
        try:
            snapshot(db_path, snapshot_file)
            migrations, tables = schema_facts(snapshot_file)
            digest_of_schema = schema_digest(snapshot_file)
        except sqlite3.Error as exc:
            raise OperationFailed(f"backup: cannot snapshot {db_path}: {exc}") from None
        manifest: dict[str, Any] = {
            "format": 1,
            "environment": env,
            "service_version": service_version,
            "created_at": now.isoformat(timespec="seconds"),
            "console_version": __version__,
            "migrations": migrations,
            "tables": tables,
            "schema_sha256": digest_of_schema,
        }
        try:
            digest = _write_zip(partial, snapshot_file, manifest, now)
            os.replace(partial, final)
        except BaseException:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise
    fsync_dir(backups_dir)
    _write_sidecar(final, digest)  # last: from here on the backup is complete
    staged = stage_backup(final, db_path, env) if stage else None
    return BackupInfo(
        final, env, now, final.stat().st_size, digest, service_version, migrations, True, staged
    )


async def create_backup(
    env: ResolvedEnvironment, *, service_version: str | None, protect: Path | None = None
) -> BackupInfo:
    """Back up the environment's database, then apply its retention (never removing
    `protect`, the backup a rollout in progress depends on, nor the new one)."""
    from dhash_console.ops.backup.catalog import apply_retention

    db_path = env.sqlite_path
    if db_path is None:
        raise UsageError(
            f"backup: {env.name}'s database is not SQLite; "
            "only sqlite:/// databases can be backed up so far (PostgreSQL is not supported yet)"
        )
    info = await asyncio.to_thread(
        create_backup_sync, db_path, env.backups_dir, env.name, service_version=service_version
    )
    await asyncio.to_thread(
        apply_retention, env.backups_dir, env.name, env.backups_keep, protect=(protect, info.path)
    )
    return info
