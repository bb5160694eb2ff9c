"""What the console does outside the screen: the journal, the config, engine processes.

No Textual here: screens call these coroutines (in workers) and show what comes back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dhash_console.errors import ConsoleError, UsageError
from dhash_console.store.history import ControlAction, HistoryStore, RolloutRecord
from dhash_console.store.process import operator_identity
from dhash_console.ui.tui.engine_process import (
    EngineProcess,
    LaunchRequest,
    engine_argv,
    restore_argv,
    start_engine,
)

if TYPE_CHECKING:
    from dhash_console.config import Config, ResolvedEnvironment

ATTACH_TIMEOUT_S = 30.0


class LaunchFailed(ConsoleError):
    """The engine process ended before its rollout appeared in the journal."""


@dataclass
class Backend:
    config_path: Path
    state_dir: Path
    store: HistoryStore
    config: Config | None = None
    config_error: str = ""
    clock: Callable[[], float] = time.time
    by: str = field(default_factory=lambda: f"{operator_identity()} (console)")
    launched: list[EngineProcess] = field(default_factory=list)

    @classmethod
    async def open(
        cls, config_path: Path, state_dir: Path, config: Config | None = None
    ) -> Backend:
        error = ""
        if config is None:
            from dhash_console.config import load_config

            try:
                config = load_config(config_path)
            except ConsoleError as exc:
                # The console still shows history without a valid config; launch says why not.
                error = str(exc)
        store = await HistoryStore.open(state_dir / "history.sqlite3")
        return cls(config_path, state_dir, store, config, error)

    async def close(self) -> None:
        await self.store.close()

    # -- config ---------------------------------------------------------------------------------

    @property
    def environments(self) -> list[str]:
        return list(self.config.environments) if self.config else []

    def environment(self, name: str) -> ResolvedEnvironment:
        from dhash_console.config import resolve_environment

        if self.config is None:
            raise UsageError(f"no valid config at {self.config_path}: {self.config_error}")
        return resolve_environment(
            self.config,
            name,
            config_dir=self.config_path.resolve().parent,
            state_dir=self.state_dir,
        )

    # -- rollouts -------------------------------------------------------------------------------

    async def active_rollouts(self) -> list[RolloutRecord]:
        return await self.store.list_rollouts(active_only=True, limit=50)

    async def request_control(self, rollout_id: str, action: ControlAction, reason: str) -> int:
        return await self.store.request_control(rollout_id, action, reason, self.by)

    async def current_version(self, env: ResolvedEnvironment, timeout_s: float = 3.0) -> str | None:
        """What runs now, for the pre-rollout plan; None when it cannot be told in time."""
        from dhash_console.ops.deploy import build_deployer

        try:
            version: str | None = await asyncio.wait_for(
                build_deployer(env).current_version(), timeout_s
            )
        except (TimeoutError, ConsoleError, OSError):
            return None
        return version

    async def launch(self, request: LaunchRequest) -> tuple[EngineProcess, RolloutRecord]:
        """Start the engine process and wait for its rollout to be journaled (attach)."""
        argv = engine_argv(self.config_path, self.state_dir, request)
        return await self._start_and_attach(argv)

    async def restore(
        self, env: str, backup: Path, reason: str
    ) -> tuple[EngineProcess, RolloutRecord]:
        argv = restore_argv(self.config_path, self.state_dir, env, backup, reason)
        return await self._start_and_attach(argv)

    async def _start_and_attach(self, argv: list[str]) -> tuple[EngineProcess, RolloutRecord]:
        process = await asyncio.to_thread(start_engine, argv, self.state_dir)
        self.launched.append(process)
        record = await self.wait_for_rollout(process)
        return process, record

    async def wait_for_rollout(
        self, process: EngineProcess, timeout_s: float = ATTACH_TIMEOUT_S
    ) -> RolloutRecord:
        deadline = time.monotonic() + timeout_s
        while True:
            for record in await self.store.list_rollouts(limit=20):
                if record.pid == process.pid:
                    return record
            code = process.exited()
            if code is not None:
                # One last look: it may have journaled and ended between the two reads.
                for record in await self.store.list_rollouts(limit=20):
                    if record.pid == process.pid:
                        return record
                tail = process.output_tail()
                raise LaunchFailed(f"the engine exited with {code} before starting:\n{tail}")
            if time.monotonic() > deadline:
                raise LaunchFailed(
                    f"the engine (pid {process.pid}) did not start a rollout within "
                    f"{timeout_s:g} s; its output is in {process.output}"
                )
            await asyncio.sleep(0.1)

    def reap(self) -> None:
        """Collect launched engines that ended, so none lingers as a zombie."""
        self.launched = [p for p in self.launched if p.exited() is None]

    # -- backups and migrations ----------------------------------------------------------------

    def backups_dir(self, env: str | None) -> Path | None:
        """The backups folder (one for all environments unless an environment names its own)."""
        if self.config is None:
            return None
        names = [env] if env else self.environments
        return self.environment(names[0]).backups_dir if names else None

    async def backups(self, env: str | None) -> list[Any]:
        from dhash_console.ops.backup import list_backups

        directory = self.backups_dir(env)
        if directory is None:
            return []
        return list(await asyncio.to_thread(list_backups, directory, env))

    async def verify(self, path: Path) -> Any:
        from dhash_console.ops.backup import verify_backup

        return await asyncio.to_thread(verify_backup, path)

    async def migrations(self, env: str) -> Any:
        from dhash_console.ops.migrate import migration_status

        resolved = self.environment(env)
        if resolved.sqlite_path is None:
            raise UsageError(f"{env}: migration status needs a sqlite:/// database")
        return await asyncio.to_thread(
            migration_status, resolved.sqlite_path, resolved.migrations_dir
        )
