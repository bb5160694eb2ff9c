"""Backups to the standard of restic: consistent, atomic, checksummed, verified before use.

A backup is `dhash_<env>_<YYYYmmdd_HHMMSS>.zip` with a `.sha256` sidecar in `sha256sum`
format. Inside: `dhash.sqlite3`, a snapshot taken with SQLite's online backup API (never a
file copy of a live database), and `manifest.json`. The zip is written to a temporary file,
hashed in the same pass, fsynced and renamed; the sidecar comes last, so a zip without one
is incomplete and never offered for a rollback.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import sqlite3
import stat
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from dhash_console import __version__
from dhash_console.errors import OperationFailed, UsageError

if TYPE_CHECKING:
    from dhash_console.config import ResolvedEnvironment

DB_MEMBER = "dhash.sqlite3"
MANIFEST = "manifest.json"
ALLOWED_MEMBERS = (DB_MEMBER, MANIFEST)
MAX_MEMBER_BYTES = 256 * 1024**3  # a database larger than this is not ours
MAX_MANIFEST_BYTES = 1024**2
MAX_RATIO = 200  # uncompressed/compressed beyond this is a zip bomb, not a database
CHUNK = 1024 * 1024
_NAME = re.compile(r"^dhash_(?P<env>[A-Za-z0-9_.-]+?)_(?P<stamp>\d{8}_\d{6})(?:_(?P<n>\d+))?\.zip$")
_SIDECAR = re.compile(r"^(?P<hash>[0-9a-f]{64}) [ *](?P<name>[^\n/\\]+)\n?$")


class BackupInvalid(OperationFailed):
    """A backup that failed verification: nothing was touched."""

    def __init__(self, report: VerifyReport) -> None:
        self.report = report
        failed = report.first_failure
        super().__init__(
            f"{report.path.name}: {failed.name}: {failed.detail}"
            if failed
            else f"{report.path.name}: not verified"
        )


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    env: str
    created_at: datetime
    size: int
    sha256: str
    service_version: str | None
    migrations: list[dict[str, Any]]
    complete: bool

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
    kept_as: Path | None


def sidecar_path(zip_path: Path) -> Path:
    return zip_path.with_name(zip_path.name + ".sha256")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


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


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return  # directories cannot be opened for fsync on Windows
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _snapshot(db_path: Path, target: Path) -> None:
    """SQLite's online backup API: consistent while the service keeps writing."""
    source = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        dest = sqlite3.connect(target)
        try:
            source.backup(dest, pages=4096)
            dest.execute("PRAGMA journal_mode=DELETE")
        finally:
            dest.close()
    finally:
        source.close()


def _schema_facts(db_path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        tables = sorted(
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        )
        migrations: list[dict[str, Any]] = []
        if "schema_migrations" in tables:
            migrations = [
                {"version": r[0], "description": r[1], "checksum": r[2]}
                for r in conn.execute(
                    "SELECT version, description, checksum FROM "
                    "schema_migrations WHERE success = 1 ORDER BY version"
                )
            ]
        return migrations, tables
    finally:
        conn.close()


def _unique_name(directory: Path, env: str, now: datetime) -> Path:
    stamp = now.strftime("%Y%m%d_%H%M%S")
    path = directory / f"dhash_{env}_{stamp}.zip"
    n = 1
    while path.exists() or sidecar_path(path).exists():
        n += 1
        path = directory / f"dhash_{env}_{stamp}_{n}.zip"
    return path


def create_backup_sync(
    db_path: Path, backups_dir: Path, env: str, *, service_version: str | None
) -> BackupInfo:
    if not db_path.exists():
        raise UsageError(f"backup: no database at {db_path}")
    backups_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    final = _unique_name(backups_dir, env, now)
    with tempfile.TemporaryDirectory(dir=backups_dir, prefix=".snapshot-") as scratch:
        snapshot = Path(scratch) / DB_MEMBER
        _snapshot(db_path, snapshot)
        migrations, tables = _schema_facts(snapshot)
        partial = backups_dir / f".{final.name}.partial-{os.getpid()}"
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as raw:
                writer = _HashingWriter(raw)
                archive_file: Any = writer  # write/tell/flush is all zipfile needs here
                with zipfile.ZipFile(
                    archive_file, "w", zipfile.ZIP_DEFLATED, compresslevel=1
                ) as archive:
                    member_hash, member_size = _write_member(archive, snapshot)
                    manifest = {
                        "format": 1,
                        "environment": env,
                        "service_version": service_version,
                        "created_at": now.isoformat(timespec="seconds"),
                        "console_version": __version__,
                        "migrations": migrations,
                        "tables": tables,
                        "members": {DB_MEMBER: {"size": member_size, "sha256": member_hash}},
                    }
                    archive.writestr(MANIFEST, json.dumps(manifest, indent=2))
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(partial, final)
        except BaseException:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise
    _fsync_dir(backups_dir)
    digest = writer.digest.hexdigest()
    _write_sidecar(final, digest)
    return BackupInfo(
        final, env, now, final.stat().st_size, digest, service_version, migrations, True
    )


def _write_member(archive: zipfile.ZipFile, source: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    info = zipfile.ZipInfo(DB_MEMBER, date_time=time.gmtime()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | 0o600) << 16
    with source.open("rb") as handle, archive.open(info, "w", force_zip64=True) as out:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return digest.hexdigest(), size


def _write_sidecar(zip_path: Path, digest: str) -> None:
    sidecar = sidecar_path(zip_path)
    partial = sidecar.with_name(f".{sidecar.name}.partial-{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii", newline="\n") as handle:
        handle.write(f"{digest}  {zip_path.name}\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, sidecar)
    _fsync_dir(zip_path.parent)


async def create_backup(
    env: ResolvedEnvironment, *, service_version: str | None, protect: Path | None = None
) -> BackupInfo:
    """Back up the environment's database, then apply its retention."""
    db_path = env.sqlite_path
    if db_path is None:
        raise UsageError(
            f"backup: {env.name}'s database is not SQLite; "
            "only sqlite:/// databases can be backed up so far"
        )
    info = await asyncio.to_thread(
        create_backup_sync, db_path, env.backups_dir, env.name, service_version=service_version
    )
    await asyncio.to_thread(
        apply_retention, env.backups_dir, env.name, env.backups_keep, protect=(protect, info.path)
    )
    return info


def apply_retention(
    backups_dir: Path, env: str, keep: int, protect: tuple[Path | None, ...] = ()
) -> list[Path]:
    """Delete the oldest complete backups beyond `keep`; never a protected one."""
    kept = {p.resolve() for p in protect if p is not None}
    complete = [b for b in list_backups(backups_dir, env) if b.complete]
    removed = []
    for info in complete[keep:]:
        if info.path.resolve() in kept:
            continue
        info.sidecar.unlink(missing_ok=True)  # sidecar first: never a complete-looking orphan
        info.path.unlink(missing_ok=True)
        removed.append(info.path)
    return removed


def _read_manifest(archive: zipfile.ZipFile) -> dict[str, Any]:
    info = archive.getinfo(MANIFEST)
    if info.file_size > MAX_MANIFEST_BYTES:
        raise ValueError("manifest too large")
    data = json.loads(archive.read(MANIFEST))
    if not isinstance(data, dict):
        raise ValueError("manifest is not an object")
    return data


def backup_info(path: Path) -> BackupInfo:
    """What a backup says of itself (cheap: reads the sidecar and the manifest)."""
    match = _NAME.match(path.name)
    env = match.group("env") if match else "?"
    created = (
        datetime.strptime(match.group("stamp"), "%Y%m%d_%H%M%S").replace(tzinfo=UTC)
        if match
        else datetime.fromtimestamp(path.stat().st_mtime, UTC)
    )
    sidecar = sidecar_path(path)
    digest = ""
    complete = sidecar.exists()
    if complete:
        parsed = _SIDECAR.match(sidecar.read_text(encoding="ascii", errors="replace"))
        digest = parsed.group("hash") if parsed else ""
    manifest: dict[str, Any] = {}
    with (
        contextlib.suppress(zipfile.BadZipFile, KeyError, ValueError, OSError),
        zipfile.ZipFile(path) as archive,
    ):
        manifest = _read_manifest(archive)
    with contextlib.suppress(ValueError, TypeError):
        created = datetime.fromisoformat(str(manifest["created_at"]))
    return BackupInfo(
        path,
        str(manifest.get("environment", env)),
        created,
        path.stat().st_size,
        digest,
        manifest.get("service_version"),
        list(manifest.get("migrations", [])),
        complete,
    )


def list_backups(backups_dir: Path, env: str | None = None) -> list[BackupInfo]:
    """Backups newest first; `complete` is False for a zip without its sidecar."""
    if not backups_dir.is_dir():
        return []
    found = []
    for path in backups_dir.glob("dhash_*.zip"):
        match = _NAME.match(path.name)
        if match is None or (env is not None and match.group("env") != env):
            continue
        found.append(backup_info(path))
    return sorted(found, key=lambda b: (b.created_at, b.path.name), reverse=True)


def latest_verified_backup(backups_dir: Path, env: str) -> BackupInfo | None:
    for info in list_backups(backups_dir, env):
        if info.complete and check_backup(info.path).ok:
            return info
    return None


# -- verification -----------------------------------------------------------------------


def _bad_name(name: str) -> str | None:
    if not name or "\x00" in name:
        return "empty or NUL in name"
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "absolute path or drive letter"
    if "\\" in name or any(part in ("..", ".") for part in name.split("/")):
        return "path traversal"
    if name not in ALLOWED_MEMBERS:
        return "not a member a backup holds"
    return None


def _check_sidecar(path: Path) -> Check:
    sidecar = sidecar_path(path)
    if not sidecar.exists():
        return Check("sidecar", False, f"{sidecar.name} is missing: the backup is incomplete")
    parsed = _SIDECAR.match(sidecar.read_text(encoding="ascii", errors="replace"))
    if parsed is None:
        return Check("sidecar", False, f"{sidecar.name} is not in sha256sum format")
    if parsed.group("name") != path.name:
        return Check("sidecar", False, f"{sidecar.name} names {parsed.group('name')!r}")
    actual = sha256_file(path)
    if actual != parsed.group("hash"):
        return Check(
            "sidecar",
            False,
            f"sha256 {actual[:12]}… does not match the sidecar's {parsed.group('hash')[:12]}…",
        )
    return Check("sidecar", True, f"sha256 {actual}")


def _check_members(archive: zipfile.ZipFile) -> Check:
    infos = archive.infolist()
    names = [i.orig_filename for i in infos]
    if len(infos) != len(ALLOWED_MEMBERS):
        return Check(
            "members", False, f"{len(infos)} members; a backup holds exactly {len(ALLOWED_MEMBERS)}"
        )
    if len(set(names)) != len(names):
        return Check("members", False, "duplicate member names")
    for info in infos:
        problem = _bad_name(info.orig_filename) or _bad_name(info.filename)
        if problem:
            return Check("members", False, f"{info.orig_filename!r}: {problem}")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode) or info.is_dir():
            return Check("members", False, f"{info.orig_filename!r}: a link or a directory")
        if info.file_size > MAX_MEMBER_BYTES:
            return Check(
                "members",
                False,
                f"{info.orig_filename!r}: {info.file_size} bytes declared, over the bound",
            )
        if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
            return Check(
                "members",
                False,
                f"{info.orig_filename!r}: compression ratio over {MAX_RATIO} (a zip bomb)",
            )
    return Check("members", True, ", ".join(sorted(names)))


def _extract_checked(archive: zipfile.ZipFile, manifest: dict[str, Any], target: Path) -> Check:
    """Stream the database out, checking its CRC (zipfile) and the manifest's sha256 and size."""
    expected = manifest.get("members", {}).get(DB_MEMBER, {})
    bound = min(int(expected.get("size", MAX_MEMBER_BYTES)), MAX_MEMBER_BYTES)
    digest = hashlib.sha256()
    size = 0
    try:
        with archive.open(DB_MEMBER) as member, target.open("wb") as out:
            while chunk := member.read(CHUNK):
                size += len(chunk)
                if size > bound:
                    return Check("contents", False, "member is larger than the manifest says")
                digest.update(chunk)
                out.write(chunk)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:  # CRC errors land here
        return Check("contents", False, f"cannot read {DB_MEMBER}: {exc}")
    if digest.hexdigest() != expected.get("sha256") or size != expected.get("size"):
        return Check("contents", False, f"{DB_MEMBER} does not match the manifest's sha256/size")
    return Check("contents", True, f"CRC and sha256 of {DB_MEMBER} match ({size} bytes)")


def _drill(restored: Path, manifest: dict[str, Any]) -> Check:
    try:
        conn = sqlite3.connect(f"file:{restored}?mode=ro", uri=True)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return Check("restore drill", False, f"not a readable SQLite database: {exc}")
    if result != "ok":
        return Check("restore drill", False, f"integrity_check: {result}")
    missing = [t for t in manifest.get("tables", []) if t not in tables]
    if missing:
        return Check("restore drill", False, f"tables missing against the manifest: {missing}")
    migrations, _ = _schema_facts(restored)
    if [m["version"] for m in migrations] != [
        m.get("version") for m in manifest.get("migrations", [])
    ]:
        return Check("restore drill", False, "applied migrations differ from the manifest")
    return Check("restore drill", True, f"integrity ok, {len(tables)} tables as the manifest says")


@contextlib.contextmanager
def _verified(path: Path, scratch_dir: Path) -> Iterator[tuple[VerifyReport, Path]]:
    """Run every check in order, stopping at the first failure; yield the drilled copy."""
    report = VerifyReport(path)
    restored = scratch_dir / f".restore-{os.getpid()}-{time.monotonic_ns()}.sqlite3"
    try:
        _run_checks(path, report, restored)
        yield report, restored
    finally:
        restored.unlink(missing_ok=True)


def _run_checks(path: Path, report: VerifyReport, restored: Path) -> None:
    if not path.is_file():
        report.checks.append(Check("file", False, "no such file"))
        return
    report.checks.append(_check_sidecar(path))
    if not report.ok:
        return
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        report.checks.append(Check("zip", False, f"not a readable zip: {exc}"))
        return
    with archive:
        report.checks.append(Check("zip", True, "readable"))
        report.checks.append(_check_members(archive))
        if not report.ok:
            return
        try:
            report.manifest = _read_manifest(archive)
            report.checks.append(
                Check(
                    "manifest",
                    True,
                    f"{report.manifest.get('environment')} {report.manifest.get('created_at')}",
                )
            )
        except (KeyError, ValueError, zipfile.BadZipFile) as exc:
            report.checks.append(Check("manifest", False, f"unreadable: {exc}"))
            return
        report.checks.append(_extract_checked(archive, report.manifest, restored))
    if report.ok:
        report.checks.append(_drill(restored, report.manifest))


def check_backup(path: Path) -> VerifyReport:
    """Every check, never raising; `report.ok` says whether it verified."""
    with (
        tempfile.TemporaryDirectory(prefix="dhash-verify-") as scratch,
        _verified(path, Path(scratch)) as (report, _),
    ):
        return report


def verify_backup(path: Path) -> VerifyReport:
    """Every check; raises BackupInvalid (exit 1) naming the first that failed."""
    report = check_backup(path)
    if not report.ok:
        raise BackupInvalid(report)
    return report


def restore_backup_sync(path: Path, db_path: Path) -> RestoreResult:
    """Verify, then swap the drilled copy in atomically; the replaced database is kept."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with _verified(path, db_path.parent) as (report, restored):
        if not report.ok:
            raise BackupInvalid(report)
        kept: Path | None = None
        if db_path.exists():
            _checkpoint(db_path)
            stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
            kept = db_path.with_name(f"{db_path.name}.replaced-{stamp}")
            os.replace(db_path, kept)
        for suffix in ("-wal", "-shm"):
            Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        os.replace(restored, db_path)
        _fsync_dir(db_path.parent)
    return RestoreResult(db_path, path, kept)


def _checkpoint(db_path: Path) -> None:
    """Fold the WAL into the file, so the kept copy is whole on its own."""
    with contextlib.suppress(sqlite3.Error):
        conn = sqlite3.connect(db_path, timeout=10)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()


async def restore_backup(path: Path, db_path: Path) -> RestoreResult:
    return await asyncio.to_thread(restore_backup_sync, path, db_path)
