"""What a rollback requested now would do, in the words the confirm panel shows. No Textual."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from dhash_console.engine.plan import RollbackPlan
from dhash_console.textsafe import clean
from dhash_console.ui.tui.backend import Backend
from dhash_console.ui.tui.format import duration
from dhash_console.ui.tui.state import RolloutState


@dataclass(frozen=True)
class PlanView:
    env: str
    confirm: str  # none, yes, type-name: how the environment wants a rollback confirmed
    target_version: str
    restore_database: bool
    backup_line: str
    discards: str
    engine_plan: str  # what the engine said it would do, in its own words
    summary: str


async def plan_for(backend: Backend, state: RolloutState) -> PlanView:
    """The plan for rolling back `state`'s rollout, from its events and the backups on disk."""
    assert state.started is not None
    started = state.started
    confirm = "none"
    backup = None
    note = ""
    restore = state.restores_database()
    try:
        env = backend.environment(started.env)
        confirm = env.confirm
    except Exception as exc:  # an old rollout of an environment no longer configured
        env = None
        note = f"(environment not in the config: {clean(str(exc))[:80]})"
        confirm = "type-name"  # unknown: ask the most careful way
    if env is not None and env.sqlite_path is not None:
        try:
            from dhash_console.ops.backup import latest_verified_backup

            # staged=True: the newest backup, staged when taken, is chosen as the rollback will
            # choose it, without re-verifying a whole database before the panel can open.
            backup = await asyncio.to_thread(
                latest_verified_backup, env.backups_dir, env.name, staged=True
            )
        except Exception as exc:  # a broken backups folder must not block a rollback
            note = f"(backups not readable: {clean(str(exc))[:80]})"
    target = started.from_version or "(no earlier version known)"
    if env is not None:
        plan = RollbackPlan.build(
            env=env,
            to_version=started.from_version,
            backup=backup,
            restore_database=restore,
            now=time.time(),
        )
        summary = plan.describe()
        age = plan.backup_age_s
    else:
        summary, age = f"return {started.env} to {target}", None
    if backup is not None:
        backup_line = (
            f"{backup.path.name} · sha256 {backup.sha256[:16]}… · {duration(age)} old · "
            + backup.how_verified()
        )
    else:
        backup_line = "no verified backup found " + note
    if not restore:
        discards = "nothing: the database stays as it is (no migration was applied)"
    elif backup is None:
        discards = "UNKNOWN: migrations were applied and there is no verified backup"
    else:
        discards = f"about {duration(age)} of writes (everything since the backup)"
    engine_plan = clean(state.rollback_detail or started.rollback_plan)
    return PlanView(
        env=started.env,
        confirm=confirm,
        target_version=clean(target),
        restore_database=restore,
        backup_line=clean(backup_line.strip()),
        discards=discards,
        engine_plan=engine_plan,
        summary=clean(summary),
    )
