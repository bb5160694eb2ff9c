"""What a backup is: its names, its bounds, and the records the other modules pass around."""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from dhash_console.errors import OperationFailed

DB_MEMBER = "dhash.sqlite3"
MANIFEST = "manifest.json"
ALLOWED_MEMBERS = (DB_MEMBER, MANIFEST)
MAX_MEMBER_BYTES = 256 * 1024**3  # a database larger than this is not ours
MAX_MANIFEST_BYTES = 1024**2
MAX_RATIO = 200  # uncompressed/compressed beyond this is a zip bomb, not a database...
RATIO_FLOOR = 16 * 1024**2  # ...once it is big enough to matter (a tiny schema compresses well)
MAX_CENTRAL_DIRECTORY = 64 * 1024  # two members need a few hundred bytes
FREE_SPACE_MARGIN = 64 * 1024**2  # room left on the disk after a restore drill
CHUNK = 1024 * 1024
# Stored, not deflated: on a 1 GiB database deflate (even at level 1) costs more than the
# snapshot and everything else together, and inflating slows the restore a rollback waits
# for. Measured in bench/bench_backup.py; figures in docs/backups-and-migrations.md.
COMPRESSION = zipfile.ZIP_STORED
COMPRESS_LEVEL = 1  # used if COMPRESSION is ever ZIP_DEFLATED
NAME = re.compile(r"^dhash_(?P<env>[A-Za-z0-9_.-]+?)_(?P<stamp>\d{8}_\d{6})(?:_(?P<n>\d+))?\.zip$")
STAGED_SUFFIX = ".staged.sqlite3"
RECORD_SUFFIX = ".staged.json"
SIDECAR_LINE = re.compile(r"^(?P<hash>[0-9a-f]{64}) [ *](?P<name>[^\n/\\]+)\n?$")

# How a backup chosen for a rollback was found good: every check ran now, or it was staged
# when taken (every check ran then) and its staged copy still matches its record.
Verified = Literal["", "now", "when taken"]


class BackupInvalid(OperationFailed):
    """A backup that failed verification: nothing was touched. Names the first failed check."""

    def __init__(self, report: VerifyReport) -> None:
        self.report = report
        failed = report.first_failure
        super().__init__(
            f"backup {report.path.name} does not verify: {failed.name}: {failed.detail}"
            if failed
            else f"backup {report.path.name} does not verify"
        )


@dataclass(frozen=True)
class BackupInfo:
    """What a backup says of itself. `complete` is False for a zip without its sidecar."""

    path: Path
    env: str
    created_at: datetime
    size: int
    sha256: str
    service_version: str | None
    migrations: list[dict[str, Any]]  # {"version", "description", "checksum"}, in order
    complete: bool
    staged: Path | None = None  # its verified database, kept beside it for a fast restore
    verified: Verified = field(default="", compare=False)  # set by latest_verified_backup

    def how_verified(self) -> str:
        """What the choice of this backup rests on, for the plan and the journal."""
        if self.verified == "now":
            return "verified now (every check, the restore drill included)"
        if self.verified == "when taken":
            return (
                "verified when it was taken and staged (its staged copy still matches its "
                "record; the restore checks the copy's sha256, else verifies the zip in full)"
            )
        return (
            "verified at the restore, before the database is touched (its staged copy by its "
            "sha256 if it has one, else every check on the zip)"
        )

    @property
    def sidecar(self) -> Path:
        return sidecar_path(self.path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "env": self.env,
            "created_at": self.created_at.isoformat(),
            "size": self.size,
            "sha256": self.sha256,
            "service_version": self.service_version,
            "migrations": [m.get("version") for m in self.migrations],
            "complete": self.complete,
            "staged": str(self.staged) if self.staged else None,
        }


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class VerifyReport:
    path: Path
    checks: list[Check] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def first_failure(self) -> Check | None:
        return next((c for c in self.checks if not c.ok), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "verified": self.ok,
            "checks": [c.__dict__ for c in self.checks],
        }


@dataclass(frozen=True)
class RestoreResult:
    db_path: Path
    backup: Path
    kept_as: Path | None  # the database the restore replaced; `undo_restore` puts it back
    staged: bool = False  # restored from the copy staged when the backup was taken
    note: str = ""  # why the staged copy was not used, when it was not

    def how(self) -> str:
        """How the database was restored, for the journal."""
        if self.staged:
            return "from its staged copy (verified when the backup was taken, sha256 checked now)"
        return "verified and extracted from the zip" + (f" ({self.note})" if self.note else "")


def sidecar_path(zip_path: Path) -> Path:
    return zip_path.with_name(zip_path.name + ".sha256")


def staged_paths(zip_path: Path) -> tuple[Path, Path]:
    """The backup's staged database (staged.py) and the record of what it was checked against."""
    return (
        zip_path.with_name(zip_path.name + STAGED_SUFFIX),
        zip_path.with_name(zip_path.name + RECORD_SUFFIX),
    )


def sha256_file(path: Path) -> str:
    """Streamed in 1 MiB reads: never the whole file in memory."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable."""
    if os.name != "posix":
        return  # directories cannot be opened for fsync on Windows
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
