"""What a rollback would do, said before it runs (and in every confirmation)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from dhash_console.config import ResolvedEnvironment

if TYPE_CHECKING:
    from dhash_console.ops.backup import BackupInfo


def _age(seconds: float) -> str:
    minutes = seconds / 60
    if minutes < 1:
        return f"{seconds:.0f} s"
    if minutes < 120:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


@dataclass(frozen=True)
class RollbackPlan:
    env: str
    to_version: str | None
    restore_database: bool
    backup_path: Path | None
    backup_sha256: str | None
    backup_age_s: float | None
    keep_reason: str = "no migration was applied"  # why the database stays, when it does

    @classmethod
    def build(
        cls,
        *,
        env: ResolvedEnvironment,
        to_version: str | None,
        backup: BackupInfo | None,
        restore_database: bool,
        now: float | None = None,
        keep_reason: str = "no migration was applied",
    ) -> RollbackPlan:
        age = None
        if backup is not None:
            created = backup.created_at
            stamp = created.timestamp() if isinstance(created, datetime) else float(created)
            age = max(0.0, (now or time.time()) - stamp)
        return cls(
            env=env.name,
            to_version=to_version,
            restore_database=restore_database,
            backup_path=backup.path if backup else None,
            backup_sha256=backup.sha256 if backup else None,
            backup_age_s=age,
            keep_reason=keep_reason,
        )

    def describe(self) -> str:
        if self.to_version is None:
            return (
                f"no earlier version of {self.env} is known to return to: a rollback cannot "
                "complete and the rollout ends as needing a human (exit 3)"
            )
        version = self.to_version
        if not self.restore_database:
            return (
                f"return {self.env} to {version}; the database stays as it is ({self.keep_reason})"
            )
        if self.backup_path is None:
            return f"return {self.env} to {version}; NO backup to restore the database from"
        age = _age(self.backup_age_s or 0.0)
        return (
            f"return {self.env} to {version}; restore the database from "
            f"{self.backup_path.name} (sha256 {(self.backup_sha256 or '')[:12]}, {age} old), "
            f"reverting the migrations and discarding about {age} of writes"
        )


def pre_rollout_plan(env: ResolvedEnvironment, current: str | None) -> str:
    """The plan shown before a rollout starts, when no backup exists yet."""
    if current is None:
        return (
            f"nothing runs on {env.name} now, so a failed gate has no earlier version to "
            "return to: the rollout would end as needing a human (exit 3)"
        )
    return (
        f"on a failed gate: return {env.name} to {current}; a backup is taken before "
        "migrations, and the database is restored from it only if migrations were applied"
    )
