"""Backup, verification and restore speed on a 1 GiB SQLite database (TARGETS.md).

Compared in the same run with the seed's shell pipeline run one step after another
(`sqlite3 .backup` + `zip` + `sha256sum`), with `sha256sum` alone, and with `cp`. The restore
is measured as a rollback does it (from the copy staged when the backup was taken) and from
the zip alone; a standalone `rollback` as choosing the newest backup and restoring it, before
(the newest verified in full first) and now (a staged newest chosen on its record).

    python bench/bench_backup.py [--size-mib 1024] [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dhash_console.ops.backup import create as backup_create  # noqa: E402
from dhash_console.ops.backup import (  # noqa: E402
    create_backup_sync,
    latest_verified_backup,
    restore_backup_sync,
    restore_newest_sync,
    sha256_file,
    stage_backup,
)
from dhash_console.ops.backup.staged import remove_staged  # noqa: E402


def build_database(size_mib: int) -> Path:
    """Cached under /tmp: rows of hash-like text and padding, about as compressible as data."""
    path = Path(tempfile.gettempdir()) / f"dhash-bench-backup-{size_mib}mib.sqlite3"
    if path.exists():
        return path
    rows = size_mib * 1024  # ~1 KiB a row
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    with sqlite3.connect(partial) as conn:
        conn.execute("CREATE TABLE hashes (id INTEGER PRIMARY KEY, hash TEXT, payload BLOB)")
        conn.execute(
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?) "
            "INSERT INTO hashes (hash, payload) SELECT hex(randomblob(8)), "
            "hex(randomblob(256)) || zeroblob(480) FROM n",
            (rows,),
        )
    partial.rename(path)
    return path


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def median(runs: int, action: Callable[[], object]) -> float:
    return statistics.median(timed(action) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for tool in ("sqlite3", "zip", "sha256sum", "cp"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed for the reference measurement")
    db = build_database(args.size_mib)
    size = db.stat().st_size
    print(f"database {size / 2**20:.0f} MiB, median of {args.runs} runs")
    with tempfile.TemporaryDirectory(dir=db.parent) as scratch:
        work = Path(scratch)

        def ours(stage: bool) -> Callable[[], None]:
            def run() -> None:
                out = work / "ours"
                shutil.rmtree(out, ignore_errors=True)
                create_backup_sync(db, out, "bench", service_version=None, stage=stage)

            return run

        def ours_deflated() -> None:
            """The same at deflate level 1: the alternative the shipped choice was measured
            against."""
            shipped = backup_create.COMPRESSION
            backup_create.COMPRESSION = zipfile.ZIP_DEFLATED
            try:
                out = work / "deflated"
                shutil.rmtree(out, ignore_errors=True)
                create_backup_sync(db, out, "bench", service_version=None, stage=False)
            finally:
                backup_create.COMPRESSION = shipped

        def pipeline() -> None:
            snap = work / "snap.sqlite3"
            snap.unlink(missing_ok=True)
            (work / "snap.zip").unlink(missing_ok=True)
            subprocess.run(["sqlite3", str(db), f".backup {snap}"], check=True)
            subprocess.run(["zip", "-q", "snap.zip", "snap.sqlite3"], cwd=work, check=True)
            subprocess.run(
                ["sha256sum", "snap.zip"], cwd=work, check=True, stdout=subprocess.DEVNULL
            )

        reference = median(args.runs, pipeline)
        backup = median(args.runs, ours(stage=False))
        staged = median(args.runs, ours(stage=True))
        deflated = median(args.runs, ours_deflated)
        deflated_size = next((work / "deflated").glob("*.zip")).stat().st_size
        shutil.rmtree(work / "deflated")
        print(
            f"backup    ours {backup:6.2f} s   sqlite3+zip+sha256sum {reference:6.2f} s   "
            f"ratio {backup / reference:.2f} (target < 1)",
            flush=True,
        )
        print(
            f"          and staged (verified, drilled copy kept) {staged:6.2f} s   "
            f"ratio {staged / reference:.2f}",
            flush=True,
        )
        print(
            f"          the same deflated at level 1 {deflated:6.2f} s "
            f"({deflated_size / 2**20:.0f} MiB)   ratio {deflated / reference:.2f}",
            flush=True,
        )

        zip_path = next((work / "ours").glob("*.zip"))
        hashing = median(args.runs, lambda: sha256_file(zip_path))
        tool = median(
            args.runs,
            lambda: subprocess.run(
                ["sha256sum", str(zip_path)], check=True, stdout=subprocess.DEVNULL
            ),
        )
        print(
            f"sha256    ours {hashing:6.2f} s   sha256sum {tool:6.2f} s   "
            f"speed {tool / hashing:.2f} of sha256sum's (target >= 0.80)"
        )

        # The rollback's restore: the backup was staged when it was taken (untimed here, as
        # the rollout does it before deploying), so the restore checks the staged copy's
        # sha256 and renames it in. Unstaged: verify the zip, extract, drill, fsync, swap.
        target = work / "restored.sqlite3"
        shutil.copy(db, target)

        def restore(stage: bool) -> float:
            if stage:
                assert stage_backup(zip_path, target, "bench") is not None
            else:
                remove_staged(zip_path)
            took = timed(lambda: restore_backup_sync(zip_path, target))
            for kept in work.glob("restored.sqlite3.replaced-*"):
                kept.unlink()
            return took

        copy_sync = median(
            args.runs,
            lambda: subprocess.run(
                [
                    "dd",
                    f"if={db}",
                    f"of={work / 'copy.sqlite3'}",
                    "bs=1M",
                    "conv=fsync",
                    "status=none",
                ],
                check=True,
            ),
        )
        copy = median(
            args.runs,
            lambda: subprocess.run(["cp", str(db), str(work / "copy.sqlite3")], check=True),
        )
        unstaged = statistics.median(restore(stage=False) for _ in range(args.runs))
        restore_staged = statistics.median(restore(stage=True) for _ in range(args.runs))
        print(
            f"restore   ours, staged (the rollback's) {restore_staged:6.2f} s   cp {copy:6.2f} s   "
            f"ratio {restore_staged / copy:.2f} (target <= 1.2; sha256 of the staged copy, swap)"
        )
        print(
            f"          ours, from the zip {unstaged:6.2f} s   ratio {unstaged / copy:.2f} "
            "(verify, extract, drill, fsync, swap)"
        )

        def standalone(staged: bool) -> float:
            """A standalone `rollback`'s restore step: choose the newest backup, restore it.
            Before: the newest verified in full, then restored (from its staged copy)."""
            assert stage_backup(zip_path, target, "bench") is not None

            def run() -> None:
                chosen = latest_verified_backup(zip_path.parent, "bench", staged=staged)
                assert chosen is not None and chosen.path == zip_path
                assert restore_newest_sync(chosen.path, target).staged

            took = timed(run)
            for kept in work.glob("restored.sqlite3.replaced-*"):
                kept.unlink()
            return took

        before = statistics.median(standalone(staged=False) for _ in range(args.runs))
        after = statistics.median(standalone(staged=True) for _ in range(args.runs))
        print(
            f"rollback  standalone (choose the newest, restore) {after:6.2f} s   cp {copy:6.2f} s"
            f"   ratio {after / copy:.2f} (target <= 1.2; chosen on its staged record)"
        )
        print(
            f"          before: the newest verified in full first {before:6.2f} s   "
            f"ratio {before / copy:.2f}"
        )
        print(
            f"          a copy that fsyncs (dd conv=fsync) {copy_sync:6.2f} s   "
            f"ratios {restore_staged / copy_sync:.2f} staged, "
            f"{unstaged / copy_sync:.2f} from the zip"
        )


if __name__ == "__main__":
    main()
