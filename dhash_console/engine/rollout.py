"""The rollout state machine.

pre-checks -> backup -> migrate -> deploy -> smoke -> monitor -> succeeded, or a rollback
(rolled back | rollback failed), or aborted | interrupted | failed (nothing changed).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import httpx

from dhash_console.config import ResolvedEnvironment
from dhash_console.engine.clock import Clock
from dhash_console.engine.control import Control, ControlCommand
from dhash_console.engine.monitor import MonitoringWindow, WindowResult
from dhash_console.engine.plan import RollbackPlan, pre_rollout_plan
from dhash_console.errors import ConsoleError
from dhash_console.events import (
    ControlAcknowledged,
    Event,
    Level,
    LogLine,
    Outcome,
    Phase,
    PhaseFinished,
    PhaseStarted,
    RollbackFinished,
    RollbackRequested,
    RollbackStarted,
    RolloutFinished,
    RolloutStarted,
)
from dhash_console.ops.probes import build_probes

if TYPE_CHECKING:
    from dhash_console.events import EventBus
    from dhash_console.ops.backup import BackupInfo
    from dhash_console.ops.deploy import Deployer

HEALTH_DEADLINE_S = 30.0


@dataclass(frozen=True)
class RolloutRequest:
    env: ResolvedEnvironment
    to_version: str | None
    started_by: str
    via: str = "cli"
    dry_run: bool = False
    duration_minutes: float | None = None
    interactive: bool = False  # a face can answer a pause; headless rolls back instead
    monitor_only: bool = False  # `monitor`: the window alone, against what runs now
    rollback_to: str | None = None  # with monitor_only: the version a rollback returns to
    rollback_reason: str | None = None  # `rollback`: return to the earlier version now
    rollback_backup: Path | None = None  # with rollback_reason: restore this backup


@dataclass
class RolloutResult:
    rollout_id: str
    outcome: Outcome
    exit_code: int
    reason: str
    from_version: str | None = None
    to_version: str | None = None
    backup: Path | None = None
    rollback_healthy: bool | None = None
    extra: dict[str, object] = field(default_factory=dict)


@dataclass
class PhaseNote:
    """How a phase that ran to its end came out (a window can end in a rollback)."""

    status: Literal["ok", "failed", "stopped"] = "ok"
    detail: str = ""


class PhaseFailed(Exception):
    """A phase could not do its work; the state machine decides what follows."""


class _Stop(Exception):
    """A control command ended the rollout outside the monitoring window."""

    def __init__(self, command: ControlCommand) -> None:
        self.command = command


class RolloutEngine:
    def __init__(
        self,
        request: RolloutRequest,
        *,
        rollout_id: str,
        bus: EventBus,
        deployer: Deployer,
        client: httpx.AsyncClient,
        clock: Clock,
        control: Control | None = None,
        host: str,
        pid: int,
    ) -> None:
        self.request = request
        self.env = request.env
        self.rollout_id = rollout_id
        self.bus = bus
        self.deployer = deployer
        self.client = client
        self.clock = clock
        self.control = control or Control()
        self.host = host
        self.pid = pid
        self.previous_version: str | None = None
        self.target_version: str | None = request.to_version
        self.backup: BackupInfo | None = None
        self.migrations_applied: list[str] = []
        self.keep_database_reason = "no migration was applied"
        self.deployed = False
        self.window: MonitoringWindow | None = None
        self.start_notes: list[Event] = []  # published right after RolloutStarted

    # -- publishing -------------------------------------------------------------------

    async def publish(self, event: Event) -> Event:
        return await self.bus.publish(event)

    async def log(self, level: Level, message: str, source: str = "engine") -> None:
        await self.publish(
            LogLine(rollout_id=self.rollout_id, level=level, source=source, message=message)
        )

    @asynccontextmanager
    async def phase(self, name: Phase, detail: str = "") -> AsyncIterator[PhaseNote]:
        await self._between_phases()
        started = self.clock.now()
        await self.publish(PhaseStarted(rollout_id=self.rollout_id, phase=name, detail=detail))
        status = "failed"
        note = ""
        outcome = PhaseNote()
        try:
            yield outcome
            status, note = outcome.status, outcome.detail
        except PhaseFailed as exc:
            note = str(exc)
            raise
        except ConsoleError as exc:
            note = str(exc)
            raise PhaseFailed(note) from exc
        except asyncio.CancelledError:
            status = "interrupted"
            raise
        finally:
            await self.publish(
                PhaseFinished(
                    rollout_id=self.rollout_id,
                    phase=name,
                    status=status,  # type: ignore[arg-type]
                    duration_s=round(self.clock.now() - started, 3),
                    detail=note,
                )
            )

    async def _between_phases(self) -> None:
        """Rollback and abort are honoured between phases too; pause and resume wait for
        the monitoring window, where they mean something."""
        deferred: list[ControlCommand] = []
        while (command := self.control.get_nowait()) is not None:
            if command.action in ("rollback", "abort"):
                for later in deferred:
                    self.control.submit(later)
                raise _Stop(command)
            deferred.append(command)
        for later in deferred:
            self.control.submit(later)

    # -- the state machine ------------------------------------------------------------

    async def run(self) -> RolloutResult:
        req = self.request
        self.previous_version = await self.deployer.current_version()
        if self.target_version is None:
            self.target_version = self.previous_version
        if req.monitor_only:
            # What runs now is what the window guards; a rollback returns to the one before.
            self.target_version = self.previous_version
            self.previous_version = req.rollback_to
            self.deployed = True
        duration_s = (req.duration_minutes or self.env.monitoring.duration_minutes) * 60
        if req.dry_run and req.duration_minutes is None:
            # A dry run checks that the gates can be measured: two rounds, not a whole window.
            duration_s = 2 * self.env.monitoring.interval_seconds
        await self.publish(
            RolloutStarted(
                rollout_id=self.rollout_id,
                env=self.env.name,
                from_version=self.previous_version,
                to_version=self.target_version or "(current)",
                dry_run=req.dry_run,
                started_by=req.started_by,
                via=req.via,
                host=self.host,
                pid=self.pid,
                duration_s=duration_s,
                interval_s=self.env.monitoring.interval_seconds,
                gates=[gate.name for gate in self.env.gates],
                rollback_plan=pre_rollout_plan(self.env, self.previous_version),
                operation="rollback"
                if req.rollback_reason is not None
                else ("monitor" if req.monitor_only else "rollout"),
            )
        )
        for note in self.start_notes:
            await self.publish(note.model_copy(update={"at": time.time()}))
        try:
            if req.rollback_reason is not None:
                result = await self._manual_rollback(req.rollback_reason, req.rollback_backup)
            else:
                result = await self._run_phases(duration_s)
        except asyncio.CancelledError:
            await self._finish("interrupted", 130, "interrupted by the operator")
            raise
        except _Stop as stop:
            result = await self._stopped(stop.command)
        except Exception as exc:  # a fault of ours: say so, and that a human must look
            detail = f"unexpected {type(exc).__name__}: {exc}"
            await self.log("error", detail)
            result = await self._finish(
                "failed", 3, f"{detail}; the environment's state is unknown: check it"
            )
        return result

    async def _run_phases(self, duration_s: float) -> RolloutResult:
        req = self.request
        try:
            async with self.phase("prechecks"):
                await self._prechecks()
            if not req.monitor_only:
                async with self.phase("backup"):
                    await self._backup()
                async with self.phase("migrate"):
                    await self._migrate()
        except PhaseFailed as exc:
            if self.migrations_applied:
                return await self._rollback(f"migration failed: {exc}", automatic=True)
            return await self._finish("failed", 1, f"{exc} (nothing was changed)")
        try:
            if not req.monitor_only:
                async with self.phase(
                    "deploy", f"{self.previous_version} -> {self.target_version}"
                ):
                    await self._deploy()
                async with self.phase("smoke"):
                    await self._smoke()
        except PhaseFailed as exc:
            return await self._rollback(str(exc), automatic=True)
        async with self.phase("monitor", f"{duration_s / 60:g} minutes") as note:
            window = await self._monitor(duration_s)
            if window.decision != "passed":
                if window.automatic:
                    note.status, note.detail = "failed", window.reason
                else:  # an operator ended it: it did not fail, its gates may all have held
                    note.status = "stopped"
                    note.detail = f"{window.decision} by {window.by}: {window.reason}"
        if window.decision == "passed":
            return await self._finish("succeeded", 0, window.reason)
        if window.decision == "abort":
            return await self._finish("aborted", 130, f"aborted by {window.by}: {window.reason}")
        if req.dry_run:  # the gates do not hold on what runs now: a check that failed
            return await self._finish("failed", 1, f"dry run: would roll back: {window.reason}")
        return await self._rollback(window.reason, automatic=window.automatic, by=window.by)

    async def _stopped(self, command: ControlCommand) -> RolloutResult:
        await self.publish(
            ControlAcknowledged(
                rollout_id=self.rollout_id,
                request_id=command.request_id,
                action=command.action,
                by=command.by,
                result="rolling back" if command.action == "rollback" else "aborting",
            )
        )
        if command.action == "abort":
            return await self._finish("aborted", 130, f"aborted by {command.by}: {command.reason}")
        if not self.deployed and not self.migrations_applied:
            return await self._finish(
                "aborted", 130, f"stopped by {command.by} before any change: {command.reason}"
            )
        return await self._rollback(command.reason or "manual rollback", False, command.by)

    # -- phases -----------------------------------------------------------------------

    async def _prechecks(self) -> None:
        env = self.env
        await self.log("info", f"current version: {self.previous_version or 'none running'}")
        if self.target_version is None and not self.request.monitor_only:
            raise PhaseFailed("no version to deploy: give --version (nothing runs now)")
        if self.previous_version == self.target_version and not self.request.monitor_only:
            await self.log("warning", f"{self.target_version} already runs: redeploying it")
        db = env.sqlite_path
        if db is None:
            raise PhaseFailed(
                f"{env.name}: only sqlite:/// databases are supported for backups and "
                "migrations so far"
            )
        if not self.request.monitor_only:
            from dhash_console.ops import migrate

            status = await asyncio.to_thread(migrate.migration_status, db, env.migrations_dir)
            if status.drifted:
                names = ", ".join(str(m) for m in status.drifted)
                raise PhaseFailed(f"migration checksum drift: {names}")
            if status.unknown:
                names = ", ".join(str(m) for m in status.unknown)
                await self.log("warning", f"applied migrations unknown on disk: {names}")
            await self.log("info", f"{len(status.pending)} pending migration(s)")
            if not self.request.dry_run:
                env.backups_dir.mkdir(parents=True, exist_ok=True)
        if self.previous_version is not None and not self.request.monitor_only:
            healthy = await self.deployer.healthy()
            if not healthy:
                raise PhaseFailed(f"{env.base_url}/health is not healthy before the rollout")
            await self.log("info", "service healthy before the rollout")
        build_probes(env.gates, env.base_url, self.client)  # fails early on a broken gate

    async def _backup(self) -> None:
        from dhash_console.ops import backup

        if self.request.dry_run:
            await self.log(
                "info", f"dry run: would back up {self.env.database} to {self.env.backups_dir}"
            )
            return
        if self.env.sqlite_path is not None and not self.env.sqlite_path.exists():
            await self.log("info", "no database yet: nothing to back up")
            return
        self.backup = await backup.create_backup(self.env, service_version=self.previous_version)
        await self.log(
            "info",
            f"backup {self.backup.path.name} sha256 {self.backup.sha256[:12]} "
            f"({self.backup.size} bytes)"
            + (", verified and staged for a fast rollback" if self.backup.staged else ""),
        )

    async def _migrate(self) -> None:
        from dhash_console.ops import migrate

        db = self.env.sqlite_path
        assert db is not None
        if self.request.dry_run:
            plan = await asyncio.to_thread(migrate.plan_migrations, db, self.env.migrations_dir)
            for step in plan.pending:
                kind = "" if step.transactional else ", no transaction"
                await self.log(
                    "info",
                    f"dry run: would apply {step.path.name} "
                    f"({len(step.statements())} statements{kind})",
                )
            return
        lines: list[str] = []
        db.parent.mkdir(parents=True, exist_ok=True)
        try:
            result = await migrate.apply_migrations(
                db, self.env.migrations_dir, log=lines.append, applied_by=self.request.started_by
            )
        finally:
            for line in lines:
                await self.log("info", line, source="migrate")
        self.migrations_applied = [str(m) for m in result.applied]

    async def _deploy(self) -> None:
        assert self.target_version is not None
        if self.request.dry_run:
            await self.log("info", f"dry run: would deploy {self.target_version}")
            return
        self.deployed = True  # from here on, what runs may have changed
        await self.deployer.deploy(self.target_version, self._deploy_log)

    async def _smoke(self) -> None:
        if self.request.dry_run:
            await self.log("info", "dry run: smoke tests skipped (nothing was deployed)")
            return
        from dhash_console.ops.smoke import run_smoke

        async def on_result(result: object) -> None:
            ok = getattr(result, "ok", False)
            text = f"{getattr(result, 'group', '?')}/{getattr(result, 'name', '?')}: " + (
                "ok" if ok else f"FAILED {getattr(result, 'detail', '')}"
            )
            await self.log("info" if ok else "error", text, source="smoke")

        report = await run_smoke(self.env, self.client, on_result=on_result)
        if not report.ok:
            failed = [f"{r.group}/{r.name}" for r in report.results if not r.ok]
            raise PhaseFailed(f"smoke tests failed: {', '.join(failed)}")

    async def _monitor(self, duration_s: float) -> WindowResult:
        self.window = MonitoringWindow(
            rollout_id=self.rollout_id,
            probes=build_probes(self.env.gates, self.env.base_url, self.client),
            policy=self.env.monitoring,
            duration_s=duration_s,
            clock=self.clock,
            control=self.control,
            publish=self.publish,
            interactive=self.request.interactive,
            dry_run=self.request.dry_run,
        )
        return await self.window.run()

    async def _deploy_log(self, level: Level, message: str) -> None:
        await self.log(level, message, source="deploy")

    # -- rollback ---------------------------------------------------------------------

    async def _manual_rollback(self, reason: str, backup_path: Path | None) -> RolloutResult:
        """`rollback`: what runs now goes back to `to_version`, the database to a backup."""
        from dhash_console.ops import backup

        # Here the request's version is where we return to, and what runs now is undone.
        self.previous_version, self.target_version = self.target_version, self.previous_version
        if backup_path is not None:
            self.backup = await asyncio.to_thread(backup.backup_info, backup_path)
        elif self.env.sqlite_path is not None:
            # A staged newest backup is taken as verified when it was taken: the restore
            # checks its copy, and falls back to the zip, then to an older backup.
            self.backup = await asyncio.to_thread(
                backup.latest_verified_backup, self.env.backups_dir, self.env.name, staged=True
            )
        if self.backup is not None:
            await self.log("info", f"{self.backup.path.name}: {self.backup.how_verified()}")
        elif self.env.sqlite_path is not None:
            self.keep_database_reason = f"no verified backup of {self.env.name} to restore"
            await self.log("warning", f"{self.keep_database_reason} in {self.env.backups_dir}")
        self.migrations_applied = ["(restored from backup)"] if self.backup else []
        self.deployed = True
        if self.request.dry_run:
            plan = self.rollback_plan()
            await self.log("info", f"dry run: would {plan.describe()}")
            return await self._finish("succeeded", 0, f"dry run: {plan.describe()}")
        # The command asked for a rollback and got it: that is success (exit 0).
        return await self._rollback(
            reason, automatic=False, by=self.request.started_by, success_exit=0
        )

    def rollback_plan(self) -> RollbackPlan:
        return RollbackPlan.build(
            env=self.env,
            to_version=self.previous_version,
            backup=self.backup,
            restore_database=bool(self.migrations_applied),
            now=time.time(),
            keep_reason=self.keep_database_reason,
        )

    async def _rollback(
        self, reason: str, automatic: bool, by: str = "engine", success_exit: int = 1
    ) -> RolloutResult:
        plan = self.rollback_plan()
        await self.publish(
            RollbackRequested(rollout_id=self.rollout_id, reason=reason, by=by, automatic=automatic)
        )
        ok = False
        healthy = False
        detail = ""
        async with self.phase("rollback", plan.describe()) as note:
            await self.publish(
                RollbackStarted(
                    rollout_id=self.rollout_id,
                    from_version=self.target_version,
                    to_version=self.previous_version or "(none)",
                    reason=reason,
                    backup=str(plan.backup_path) if plan.restore_database else None,
                )
            )
            try:
                await self._undo(plan)
                ok = True
                healthy = await self._wait_healthy()
                detail = "health restored" if healthy else "health did not come back"
            except ConsoleError as exc:
                detail = f"rollback failed: {exc}"
                await self.log("error", detail)
            if not (ok and healthy):  # the phase ran to its end, but did not do its job
                note.status, note.detail = "failed", detail
            await self.publish(
                RollbackFinished(
                    rollout_id=self.rollout_id,
                    ok=ok,
                    version=self.previous_version,
                    healthy=healthy,
                    detail=detail,
                )
            )
        if ok and healthy:
            return await self._finish(
                "rolled_back",
                success_exit,
                f"rolled back to {self.previous_version}: {reason}",
                rollback_healthy=True,
            )
        return await self._finish(
            "rollback_failed",
            3,
            f"{detail} (reason for the rollback: {reason})",
            rollback_healthy=False,
        )

    async def _undo(self, plan: RollbackPlan) -> None:
        if plan.restore_database:
            from dhash_console.ops import backup

            if self.backup is None or self.env.sqlite_path is None:
                raise _rollback_error("migrations were applied but there is no backup to restore")
            await self.deployer.stop(self._deploy_log)
            restore = backup.restore_backup
            if self.request.rollback_reason is not None and self.request.rollback_backup is None:
                restore = backup.restore_newest  # chosen as the newest: an older may stand in
            restored = await restore(self.backup.path, self.env.sqlite_path)
            if restored.backup != self.backup.path:
                self.backup = await asyncio.to_thread(backup.backup_info, restored.backup)
            await self.log(
                "info",
                f"database restored from {restored.backup.name} {restored.how()}; "
                f"the replaced one kept as {restored.kept_as}",
            )
        if self.previous_version is None:
            raise _rollback_error("no earlier version is known to return to")
        if self.deployed or plan.restore_database:
            await self.deployer.rollback(self.previous_version, self._deploy_log)

    async def _wait_healthy(self) -> bool:
        deadline = self.clock.now() + HEALTH_DEADLINE_S
        while True:
            if await self.deployer.healthy():
                return True
            if self.clock.now() >= deadline:
                return False
            await self.clock.sleep(0.2)

    async def _finish(
        self, outcome: Outcome, exit_code: int, reason: str, rollback_healthy: bool | None = None
    ) -> RolloutResult:
        await self.publish(
            RolloutFinished(
                rollout_id=self.rollout_id, outcome=outcome, exit_code=exit_code, reason=reason
            )
        )
        from_version, to_version = self.previous_version, self.target_version
        if self.request.rollback_reason is not None:  # from what ran to the earlier version
            from_version, to_version = to_version, from_version
        return RolloutResult(
            rollout_id=self.rollout_id,
            outcome=outcome,
            exit_code=exit_code,
            reason=reason,
            from_version=from_version,
            to_version=to_version,
            backup=self.backup.path if self.backup else None,
            rollback_healthy=rollback_healthy,
        )


def _rollback_error(message: str) -> ConsoleError:
    from dhash_console.errors import NeedsHuman

    return NeedsHuman(message)
