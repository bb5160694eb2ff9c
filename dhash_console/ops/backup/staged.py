"""A restore staged ahead: the verified database kept beside its backup, so that a rollback
only checks it and renames it into place.

When a backup is taken, every check runs on it (the restore drill included) and the drilled
copy stays beside the zip as `<zip>.staged.sqlite3`, fsynced and readable by its owner only.
`<zip>.staged.json`, written last, records what it was checked against: the zip's size, mtime
and sidecar hash, and the copy's own size, mtime and sha256. A restore then

1. sees that the zip is still the one the copy was staged from (size, mtime, sidecar: cheap);
   if not, the copy is dropped and the zip is verified afresh, so a tampered zip is refused;
2. takes the copy by a rename beside the database (one filesystem; else the zip path runs);
3. hashes it against the recorded sha256: a copy changed since staging is removed and the
   zip path runs instead, so a changed copy is never restored;
4. swaps it in like any restore (restore.py).

The copy is consumed by the restore that uses it; the next restore from that backup runs from
the zip. Only the newest backup of an environment is staged: one database's worth of disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from dhash_console.ops.backup.catalog import read_sidecar
from dhash_console.ops.backup.model import (
    DB_MEMBER,
    NAME,
    RECORD_SUFFIX,
    STAGED_SUFFIX,
    BackupInvalid,
    fsync_dir,
    sha256_file,
    staged_paths,
)

_BINARY = getattr(os, "O_BINARY", 0)


def remove_staged(zip_path: Path) -> None:
    """Record first: a copy without its record is never used."""
    copy, record = staged_paths(zip_path)
    record.unlink(missing_ok=True)
    copy.unlink(missing_ok=True)


def _staged_backups(backups_dir: Path) -> set[Path]:
    """The backups (existing or not) that have a staged copy or record in `backups_dir`."""
    found = set()
    for path in backups_dir.glob("dhash_*.zip.staged.*"):
        for suffix in (STAGED_SUFFIX, RECORD_SUFFIX):
            if path.name.endswith(suffix):
                found.add(path.with_name(path.name[: -len(suffix)]))
    return found


def remove_staged_of(backups_dir: Path, env: str) -> None:
    """Remove every staged copy of `env`'s backups: only the newest backup is staged."""
    for zip_path in _staged_backups(backups_dir):
        match = NAME.match(zip_path.name)
        if match is not None and match.group("env") == env:
            remove_staged(zip_path)


def remove_orphaned_staged(backups_dir: Path) -> None:
    """Remove staged copies whose backup is gone."""
    for zip_path in _staged_backups(backups_dir):
        if not zip_path.exists():
            remove_staged(zip_path)


def stage_backup(zip_path: Path, db_path: Path, env: str) -> Path | None:
    """Verify `zip_path` and keep its drilled database beside it; returns the staged copy.

    None, staging nothing, when the database lives on another filesystem (a rename could not
    take the copy there) or the disk lacks room for it. Raises BackupInvalid when the backup
    does not verify: a rollout must not go on with a backup it could not restore.
    """
    from dhash_console.ops.backup.verify import run_checks

    backups_dir = zip_path.parent
    remove_staged_of(backups_dir, env)  # superseded by this backup: free their room first
    with contextlib.suppress(OSError):
        if backups_dir.stat().st_dev != db_path.resolve().parent.stat().st_dev:
            return None
    copy, record = staged_paths(zip_path)
    partial = backups_dir / f".{copy.name}.partial-{os.getpid()}"
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _BINARY, 0o600))
    try:
        report = run_checks(zip_path, partial, durable=True)
        if not report.ok:
            failed = report.first_failure
            if failed is not None and failed.name == "space":
                return None
            raise BackupInvalid(report)
        os.replace(partial, copy)
    finally:
        partial.unlink(missing_ok=True)
    fsync_dir(backups_dir)
    zip_stat, copy_stat = zip_path.stat(), copy.stat()
    facts = {
        "format": 1,
        "backup": zip_path.name,
        "backup_size": zip_stat.st_size,
        "backup_mtime_ns": zip_stat.st_mtime_ns,
        "backup_sha256": read_sidecar(zip_path),
        "size": copy_stat.st_size,
        "mtime_ns": copy_stat.st_mtime_ns,
        # The contents check compared the extracted bytes with this: it is the copy's hash.
        "sha256": report.manifest["members"][DB_MEMBER]["sha256"],
    }
    _write_record(record, facts)
    return copy


def _write_record(record: Path, facts: dict[str, Any]) -> None:
    partial = record.with_name(f".{record.name}.partial-{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _BINARY, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
        json.dump(facts, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, record)
    fsync_dir(record.parent)


def _read_record(record: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(record.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == 1 else None


def _mismatch(facts: dict[str, Any], zip_path: Path, copy: Path) -> str | None:
    """Why the staged copy cannot stand for the backup now, or None (cheap: stats, sidecar)."""
    try:
        zip_stat, copy_stat = zip_path.stat(), copy.stat()
    except OSError as exc:
        return f"cannot look at the staged copy: {exc.strerror}"
    if (zip_stat.st_size, zip_stat.st_mtime_ns) != (
        facts.get("backup_size"),
        facts.get("backup_mtime_ns"),
    ) or read_sidecar(zip_path) != facts.get("backup_sha256"):
        return "the backup changed after it was staged"
    if (copy_stat.st_size, copy_stat.st_mtime_ns) != (facts.get("size"), facts.get("mtime_ns")):
        return "the staged copy changed after it was staged"
    return None


def staged_intact(zip_path: Path) -> bool:
    """Whether `zip_path` has a staged copy that still stands for it as recorded: the cheap
    first step of `claim_staged` (stats and the sidecar; no byte of either file is read)."""
    copy, record = staged_paths(zip_path)
    facts = _read_record(record) if copy.exists() else None
    return facts is not None and _mismatch(facts, zip_path, copy) is None


def claim_staged(zip_path: Path, scratch_dir: Path) -> tuple[Path | None, str]:
    """Take `zip_path`'s staged copy into `scratch_dir` (the database's folder) and check it.

    Returns the checked copy, now the caller's to swap in or remove, or None and why the zip
    has to be restored instead. The staged copy is consumed either way once it was taken.
    """
    copy, record = staged_paths(zip_path)
    facts = _read_record(record) if copy.exists() else None
    if facts is None:
        return None, "no staged copy"
    problem = _mismatch(facts, zip_path, copy)
    if problem is not None:
        remove_staged(zip_path)  # it can never stand for this backup again
        return None, problem
    taken = scratch_dir / f".restore-{os.getpid()}-{time.monotonic_ns()}.sqlite3"
    try:
        os.replace(copy, taken)  # a rename: fails across filesystems, and then costs nothing
    except OSError as exc:
        return None, f"the staged copy cannot be renamed beside the database: {exc.strerror}"
    record.unlink(missing_ok=True)
    try:
        actual = sha256_file(taken)
    except OSError as exc:
        actual = f"unreadable: {exc.strerror}"
    if actual != facts.get("sha256"):
        taken.unlink(missing_ok=True)
        return None, "the staged copy's sha256 differs from the one recorded when it was staged"
    return taken, ""
