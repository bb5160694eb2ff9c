"""Backups to the standard of restic: consistent, atomic, checksummed, verified before use.

A backup is `dhash_<env>_<YYYYmmdd_HHMMSS>.zip` with a `.sha256` sidecar in `sha256sum`
format. Inside: `dhash.sqlite3`, a snapshot taken with SQLite's online backup API (never a
file copy of a live database), and `manifest.json`. The zip is written to a hidden temporary
file, hashed in the same pass, fsynced and renamed; the sidecar comes last, so a zip without
one is incomplete and never offered for a rollback.

- `create`: taking one; `catalog`: listing and retention; `verify`: the checks;
  `staged`: the verified database kept beside the newest backup, so a rollback renames it;
  `restore`: restore (a rollback's choice falling back to an older backup), undo, and the
  plan said before a restore runs.
"""

from dhash_console.ops.backup.catalog import (
    apply_retention,
    backup_info,
    latest_verified_backup,
    list_backups,
)
from dhash_console.ops.backup.create import (
    create_backup,
    create_backup_sync,
    sweep_stale_partials,
)
from dhash_console.ops.backup.model import (
    DB_MEMBER,
    MANIFEST,
    BackupInfo,
    BackupInvalid,
    Check,
    RestoreResult,
    VerifyReport,
    sha256_file,
    sidecar_path,
    staged_paths,
)
from dhash_console.ops.backup.restore import (
    RestorePlan,
    describe_restore,
    restore_backup,
    restore_backup_sync,
    restore_newest,
    restore_newest_sync,
    undo_restore,
    undo_restore_sync,
)
from dhash_console.ops.backup.staged import stage_backup
from dhash_console.ops.backup.verify import check_backup, verify_backup

__all__ = [
    "DB_MEMBER",
    "MANIFEST",
    "BackupInfo",
    "BackupInvalid",
    "Check",
    "RestorePlan",
    "RestoreResult",
    "VerifyReport",
    "apply_retention",
    "backup_info",
    "check_backup",
    "create_backup",
    "create_backup_sync",
    "describe_restore",
    "latest_verified_backup",
    "list_backups",
    "restore_backup",
    "restore_backup_sync",
    "restore_newest",
    "restore_newest_sync",
    "sha256_file",
    "sidecar_path",
    "stage_backup",
    "staged_paths",
    "sweep_stale_partials",
    "undo_restore",
    "undo_restore_sync",
    "verify_backup",
]
