"""Verification, restic-style: every check in order, the first failure named, nothing touched.

Order: the sidecar (present, for this file, matching); the zip (its central directory bounded
before `zipfile` parses it, then readable); the members (exact names on a whitelist, checked on
the raw names; no links, directories, duplicates, encryption or foreign compression; sizes and
compression ratio bounded); room on the disk for the drill; the manifest; the contents (CRC and
the manifest's sha256 and size, streamed); and a restore drill (`PRAGMA integrity_check`, then
the schema against the manifest). Names and bounds come before any byte is decompressed: a zip
bomb is refused by what it declares, never by inflating it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import sqlite3
import stat
import struct
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from dhash_console.ops.backup.catalog import read_manifest
from dhash_console.ops.backup.model import (
    ALLOWED_MEMBERS,
    CHUNK,
    DB_MEMBER,
    FREE_SPACE_MARGIN,
    MAX_CENTRAL_DIRECTORY,
    MAX_MEMBER_BYTES,
    MAX_RATIO,
    RATIO_FLOOR,
    SIDECAR_LINE,
    BackupInvalid,
    Check,
    VerifyReport,
    sidecar_path,
)
from dhash_console.ops.backup.schema import schema_digest, schema_facts
from dhash_console.ops.sqlite_url import connect_readonly

_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
_EOCD_SIGNATURE = b"PK\x05\x06"
MAX_DECLARED_MEMBERS = 16  # two are ours; a directory past this is refused unparsed
_DRIVE = re.compile(r"^[A-Za-z]:")


class _Stopped(Exception):
    """The sidecar check failed meanwhile: the rest of the work is moot."""


def _bad_name(name: str) -> str | None:
    if not name or "\x00" in name:
        return "empty or NUL in name"
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return "absolute path or drive letter"
    if "\\" in name or any(part in ("..", ".", "") for part in name.split("/")):
        return "path traversal"
    if name not in ALLOWED_MEMBERS:
        return "not a member a backup holds"
    return None


def _sidecar_expectation(path: Path) -> tuple[Check | None, str]:
    """The hash the sidecar promises, or the failed check saying why there is none."""
    sidecar = sidecar_path(path)
    try:
        text = sidecar.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return Check("sidecar", False, f"{sidecar.name} is missing: the backup is incomplete"), ""
    except OSError as exc:
        return Check("sidecar", False, f"{sidecar.name} cannot be read: {exc}"), ""
    parsed = SIDECAR_LINE.match(text)
    if parsed is None:
        return Check("sidecar", False, f"{sidecar.name} is not in sha256sum format"), ""
    if parsed.group("name") != path.name:
        return Check("sidecar", False, f"{sidecar.name} names {parsed.group('name')!r}"), ""
    return None, parsed.group("hash")


def _hash_against(path: Path, expected: str, stop: threading.Event) -> Check:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    actual = digest.hexdigest()
    if actual != expected:
        stop.set()
        return Check(
            "sidecar", False, f"sha256 {actual[:12]}… does not match the sidecar's {expected[:12]}…"
        )
    return Check("sidecar", True, f"sha256 {actual}")


def _check_central_directory(path: Path) -> Check:
    """Read the end record ourselves, so a directory of a million entries is never parsed."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        tail_len = min(size, _EOCD.size + 0xFFFF)
        handle.seek(size - tail_len)
        tail = handle.read(tail_len)
    at = tail.rfind(_EOCD_SIGNATURE)
    if at < 0 or at + _EOCD.size > len(tail):
        return Check("zip", False, "not a zip: no end-of-central-directory record (truncated?)")
    _sig, disk, cd_disk, here, total, cd_size, _offset, _comment = _EOCD.unpack_from(tail, at)
    if disk or cd_disk or here != total:
        return Check("zip", False, "a multi-disk zip: not a backup")
    if total > MAX_DECLARED_MEMBERS or cd_size > MAX_CENTRAL_DIRECTORY:
        return Check(
            "zip",
            False,
            f"declares {total} members in a {cd_size}-byte directory: over the bound, not a backup",
        )
    return Check("zip", True, f"readable, {total} members declared")


def _check_members(archive: zipfile.ZipFile) -> Check:
    infos = archive.infolist()
    raw_names = [i.orig_filename for i in infos]  # as stored, not as zipfile rewrote them
    if len(set(raw_names)) != len(raw_names):
        return Check("members", False, "duplicate member names")
    for info in infos:
        problem = _bad_name(info.orig_filename) or _bad_name(info.filename)
        if problem:
            return Check("members", False, f"{info.orig_filename!r}: {problem}")
        mode = info.external_attr >> 16  # Unix mode; no type bits from many writers
        if info.is_dir() or stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            return Check("members", False, f"{info.orig_filename!r}: a link or not a plain file")
        if info.flag_bits & 0x1:
            return Check("members", False, f"{info.orig_filename!r}: encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            return Check("members", False, f"{info.orig_filename!r}: foreign compression")
        if info.file_size > MAX_MEMBER_BYTES:
            return Check(
                "members", False, f"{info.orig_filename!r}: {info.file_size} bytes, over the bound"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR and ratio > MAX_RATIO:
            return Check(
                "members",
                False,
                f"{info.orig_filename!r}: compression ratio {ratio:.0f} over {MAX_RATIO} "
                "(a zip bomb)",
            )
    if sorted(raw_names) != sorted(ALLOWED_MEMBERS):
        return Check("members", False, f"holds {raw_names}; a backup holds {list(ALLOWED_MEMBERS)}")
    return Check("members", True, ", ".join(sorted(raw_names)))


def _check_space(archive: zipfile.ZipFile, scratch_dir: Path) -> Check:
    needed = archive.getinfo(DB_MEMBER).file_size + FREE_SPACE_MARGIN
    free = shutil.disk_usage(scratch_dir).free
    if free < needed:
        return Check(
            "space",
            False,
            f"the drill needs {needed // 2**20} MiB in {scratch_dir.parent}; "
            f"{free // 2**20} MiB free",
        )
    return Check("space", True, f"{free // 2**20} MiB free for the drill")


def _check_manifest(archive: zipfile.ZipFile) -> tuple[Check, dict[str, Any]]:
    try:
        manifest = read_manifest(archive)  # its CRC is checked as it is read
    except (KeyError, ValueError, zipfile.BadZipFile) as exc:
        return Check("manifest", False, f"unreadable: {exc}"), {}
    member = manifest.get("members", {})
    expected = member.get(DB_MEMBER) if isinstance(member, dict) else None
    if not isinstance(expected, dict) or not isinstance(expected.get("size"), int):
        return Check("manifest", False, f"does not describe {DB_MEMBER}"), manifest
    declared = archive.getinfo(DB_MEMBER).file_size
    if declared != expected["size"]:
        return (
            Check("manifest", False, f"says {expected['size']} bytes; the zip says {declared}"),
            manifest,
        )
    return Check(
        "manifest", True, f"{manifest.get('environment')} {manifest.get('created_at')}"
    ), manifest


def _extract(
    archive: zipfile.ZipFile,
    manifest: dict[str, Any],
    target: Path,
    stop: threading.Event,
    durable: bool,
) -> Check:
    """Stream the database out, checking its CRC (zipfile, at the end) and the manifest's
    sha256 and size. Never writes more than the manifest declared."""
    expected = manifest["members"][DB_MEMBER]
    bound = min(int(expected["size"]), MAX_MEMBER_BYTES)
    digest = hashlib.sha256()
    size = 0
    try:
        with archive.open(DB_MEMBER) as member, target.open("wb") as out:
            while chunk := member.read(CHUNK):
                if stop.is_set():
                    raise _Stopped
                size += len(chunk)
                if size > bound:
                    return Check("contents", False, "member is larger than the manifest says")
                digest.update(chunk)
                out.write(chunk)
            if durable:
                out.flush()
                os.fsync(out.fileno())
    except (zipfile.BadZipFile, OSError, EOFError) as exc:  # CRC errors land here
        return Check("contents", False, f"cannot read {DB_MEMBER}: {exc}")
    if size != expected["size"] or digest.hexdigest() != expected.get("sha256"):
        return Check("contents", False, f"{DB_MEMBER} does not match the manifest's sha256/size")
    return Check("contents", True, f"CRC and sha256 of {DB_MEMBER} match ({size} bytes)")


def _drill(restored: Path, manifest: dict[str, Any]) -> Check:
    try:
        conn = connect_readonly(restored)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        finally:
            conn.close()
        migrations, _ = schema_facts(restored)
        digest = schema_digest(restored)
    except sqlite3.Error as exc:
        return Check("restore drill", False, f"not a readable SQLite database: {exc}")
    if result != "ok":
        return Check("restore drill", False, f"integrity_check: {result}")
    missing = [t for t in manifest.get("tables", []) if t not in tables]
    if missing:
        return Check("restore drill", False, f"tables missing against the manifest: {missing}")
    if [m["version"] for m in migrations] != [
        m.get("version") for m in manifest.get("migrations", []) if isinstance(m, dict)
    ]:
        return Check("restore drill", False, "applied migrations differ from the manifest")
    if manifest.get("schema_sha256") not in (None, digest):
        return Check("restore drill", False, "the schema differs from the manifest's")
    return Check(
        "restore drill", True, f"integrity ok; schema and {len(migrations)} migrations as declared"
    )


def _zip_checks(
    path: Path, restored: Path, stop: threading.Event, durable: bool
) -> tuple[list[Check], dict[str, Any]]:
    """Every check after the sidecar, stopping at the first failure."""
    checks = [_check_central_directory(path)]
    if not checks[-1].ok:
        return checks, {}
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return [Check("zip", False, f"not a readable zip: {exc}")], {}
    with archive:
        checks.append(_check_members(archive))
        if not checks[-1].ok:
            return checks, {}
        checks.append(_check_space(archive, restored.parent))
        if not checks[-1].ok:
            return checks, {}
        check, manifest = _check_manifest(archive)
        checks.append(check)
        if not check.ok:
            return checks, manifest
        checks.append(_extract(archive, manifest, restored, stop, durable))
    return checks, manifest


def run_checks(path: Path, restored: Path, *, durable: bool = False) -> VerifyReport:
    """Every check in order into a report; the database lands in `restored` when they pass.

    The sidecar's sha256 of the whole zip runs in a second thread while the zip is checked
    and extracted (hashlib and file I/O let go of the GIL): one wall-clock pass for both.
    The report still lists the sidecar first, and nothing after it counts unless it passed.
    """
    report = VerifyReport(path)
    if not path.is_file():
        report.checks.append(Check("file", False, "no such file"))
        return report
    refused, expected = _sidecar_expectation(path)
    if refused is not None:
        report.checks.append(refused)
        return report
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="backup-sha256") as pool:
        sidecar = pool.submit(_hash_against, path, expected, stop)
        try:
            later, manifest = _zip_checks(path, restored, stop, durable)
        except _Stopped:
            later, manifest = [], {}
        report.checks.append(sidecar.result())
    if not report.ok:
        return report
    for check in later:
        report.checks.append(check)
        if not check.ok:
            return report
    report.manifest = manifest
    report.checks.append(_drill(restored, manifest))
    return report


@contextlib.contextmanager
def verified_copy(
    path: Path, scratch_dir: Path, *, durable: bool = False
) -> Iterator[tuple[VerifyReport, Path]]:
    """Run every check; yield the report and the drilled copy (removed afterwards unless the
    caller moved it away)."""
    restored = scratch_dir / f".restore-{os.getpid()}-{time.monotonic_ns()}.sqlite3"
    try:
        yield run_checks(path, restored, durable=durable), restored
    finally:
        restored.unlink(missing_ok=True)


def check_backup(path: Path) -> VerifyReport:
    """Every check, never raising; `report.ok` says whether it verified."""
    with (
        _scratch_beside(path) as scratch,
        verified_copy(path, scratch) as (report, _),
    ):
        return report


@contextlib.contextmanager
def _scratch_beside(path: Path) -> Iterator[Path]:
    """The drill runs beside the backup (same disk, never a RAM-backed /tmp) when it can."""
    try:
        scratch = tempfile.mkdtemp(dir=path.parent, prefix=f".verify-{os.getpid()}-")
    except OSError:
        scratch = tempfile.mkdtemp(prefix=f"dhash-verify-{os.getpid()}-")
    try:
        yield Path(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def verify_backup(path: Path) -> VerifyReport:
    """Every check; raises BackupInvalid (exit 1) naming the first that failed."""
    report = check_backup(path)
    if not report.ok:
        raise BackupInvalid(report)
    return report
