"""The bundled dhash service at 1.0.0 with traffic, as the demo brings it up, for live tests.

Runs on its own thread and event loop, so a Pilot test's loop (or a tmux test with no loop)
is untouched; `stop` always brings the service down, also after a failed test.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from dhash_console.config import ResolvedEnvironment, load_config, resolve_environment

INITIAL_VERSION = "1.0.0"


class LocalStage:
    def __init__(self, config_path: Path, state_dir: Path) -> None:
        config = load_config(config_path)
        self.env: ResolvedEnvironment = resolve_environment(
            config, "local", config_dir=config_path.parent, state_dir=state_dir
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._traffic: Any = None
        self._deployer: Any = None

    def _run(self, coro: Any, timeout_s: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    async def _log(self, level: str, message: str) -> None:
        pass

    async def _start(self) -> None:
        from dhash_console.localenv.traffic import TrafficGenerator
        from dhash_console.ops.deploy import build_deployer
        from dhash_console.ops.migrate import apply_migrations

        env = self.env
        assert env.sqlite_path is not None
        env.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        await apply_migrations(env.sqlite_path, env.migrations_dir, applied_by="test")
        self._deployer = build_deployer(env)
        await self._deployer.ensure_running(INITIAL_VERSION, self._log)
        self._traffic = TrafficGenerator(env.base_url, 20.0)
        await self._traffic.start()

    async def _stop(self) -> None:
        if self._traffic is not None:
            await self._traffic.stop()
        if self._deployer is not None:
            await self._deployer.stop(self._log)

    def start(self) -> LocalStage:
        self._thread.start()
        self._run(self._start())
        return self

    def stop(self) -> None:
        try:
            self._run(self._stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
