"""The backups on disk: what each says of itself, newest first, and retention."""

from __future__ import annotations

import contextlib
import json
import zipfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dhash_console.ops.backup.model import (
    MANIFEST,
    MAX_MANIFEST_BYTES,
    NAME,
    SIDECAR_LINE,
    BackupInfo,
    sidecar_path,
    staged_paths,
)


def read_manifest(archive: zipfile.ZipFile) -> dict[str, Any]:
    info = archive.getinfo(MANIFEST)
    if info.file_size > MAX_MANIFEST_BYTES:
        raise ValueError("manifest too large")
    data = json.loads(archive.read(MANIFEST))
    if not isinstance(data, dict):
        raise ValueError("manifest is not an object")
    return data


def read_sidecar(zip_path: Path) -> str | None:
    """The hash the sidecar records for this very file, or None."""
    sidecar = sidecar_path(zip_path)
    try:
        text = sidecar.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    parsed = SIDECAR_LINE.match(text)
    if parsed is None or parsed.group("name") != zip_path.name:
        return None
    return parsed.group("hash")


def backup_info(path: Path) -> BackupInfo:
    """What a backup says of itself (cheap: the sidecar and the manifest, nothing verified)."""
    match = NAME.match(path.name)
    env = match.group("env") if match else "?"
    created = (
        datetime.strptime(match.group("stamp"), "%Y%m%d_%H%M%S").replace(tzinfo=UTC)
        if match
        else datetime.fromtimestamp(path.stat().st_mtime, UTC)
    )
    digest = read_sidecar(path)
    manifest: dict[str, Any] = {}
    with (
        contextlib.suppress(zipfile.BadZipFile, KeyError, ValueError, OSError),
        zipfile.ZipFile(path) as archive,
    ):
        manifest = read_manifest(archive)
    with contextlib.suppress(KeyError, ValueError, TypeError):
        stamp = datetime.fromisoformat(str(manifest["created_at"]))
        created = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    migrations = manifest.get("migrations", [])
    staged, record = staged_paths(path)
    return BackupInfo(
        path,
        str(manifest.get("environment", env)),
        created,
        path.stat().st_size,
        digest or "",
        manifest.get("service_version"),
        [m for m in migrations if isinstance(m, dict)] if isinstance(migrations, list) else [],
        digest is not None,
        staged if staged.is_file() and record.is_file() else None,
    )


def list_backups(backups_dir: Path, env: str | None = None) -> list[BackupInfo]:
    """Backups newest first; `complete` is False for a zip without its (matching) sidecar.
    Hidden partial files of a backup in progress or killed are never listed."""
    if not backups_dir.is_dir():
        return []
    found = []
    for path in backups_dir.glob("dhash_*.zip"):
        match = NAME.match(path.name)
        if match is None or (env is not None and match.group("env") != env):
            continue
        with contextlib.suppress(FileNotFoundError):  # removed by retention meanwhile
            found.append(backup_info(path))
    return sorted(found, key=lambda b: (b.created_at, b.path.name), reverse=True)


def latest_verified_backup(
    backups_dir: Path, env: str, *, staged: bool = False
) -> BackupInfo | None:
    """The newest complete backup that passes every check now, restore drill included.

    With `staged` (a rollback choosing what it restores), a backup whose staged copy still
    matches its record is taken without checking it again: it passed every check when it was
    taken, and the restore checks the copy's sha256 and else verifies the zip in full, moving
    on to an older backup if that fails too (restore.restore_newest_sync). `verified` says
    which way the backup was found good.
    """
    from dhash_console.ops.backup.staged import staged_intact
    from dhash_console.ops.backup.verify import check_backup

    for info in list_backups(backups_dir, env):
        if not info.complete:
            continue
        if staged and staged_intact(info.path):
            return replace(info, verified="when taken")
        if check_backup(info.path).ok:
            return replace(info, verified="now")
    return None


def apply_retention(
    backups_dir: Path, env: str, keep: int, protect: tuple[Path | None, ...] = ()
) -> list[Path]:
    """Delete the oldest complete backups beyond `keep`, with their staged copies; never a
    protected one. Incomplete zips are left for an operator to look at; they never count and
    are never offered. Staged copies whose backup is gone go too."""
    from dhash_console.ops.backup.staged import remove_orphaned_staged, remove_staged

    kept = {p.resolve() for p in protect if p is not None}
    complete = [b for b in list_backups(backups_dir, env) if b.complete]
    removed = []
    for info in complete[max(keep, 0) :]:
        if info.path.resolve() in kept:
            continue
        remove_staged(info.path)
        info.sidecar.unlink(missing_ok=True)  # sidecar first: never a complete-looking orphan
        info.path.unlink(missing_ok=True)
        removed.append(info.path)
    remove_orphaned_staged(backups_dir)
    return removed
