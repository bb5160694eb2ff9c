"""Against a real engine process and the local dhash service: launch, attach, roll back."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from textual.widgets import Checkbox, Input

from dhash_console.store.history import HistoryStore
from dhash_console.ui.tui.app import ConsoleApp
from dhash_console.ui.tui.screens.confirm_rollback import ConfirmRollbackScreen
from dhash_console.ui.tui.screens.dashboard import DashboardScreen
from dhash_console.ui.tui.screens.launch import LaunchScreen
from tests.tui.helpers import wait_for, wait_text
from tests.tui.local_stage import LocalStage

pytestmark = pytest.mark.slow


@pytest.fixture
def live_config(local_config: Callable[..., Path]) -> Path:
    return local_config(**{"environments.local.monitoring": {"interval_seconds": 1}})


@pytest.fixture
def stage(live_config: Path, state_dir: Path) -> Iterator[LocalStage]:
    running = LocalStage(live_config, state_dir).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def engines(state_dir: Path) -> Iterator[list[int]]:
    """Engine processes a test launched: killed at the end if they still run."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with suppress(OSError):
            os.kill(pid, signal.SIGKILL)


async def test_launch_attach_and_manual_rollback(
    live_config: Path, state_dir: Path, stage: LocalStage, engines: list[int]
) -> None:
    app = ConsoleApp(config_path=live_config, state_dir=state_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
        launch = app.screen
        await wait_text(
            pilot, "now running: 1.0.0", "rollback plan: on a failed gate: return local to 1.0.0"
        )
        launch.query_one("#version", Input).value = "1.1.0"
        launch.query_one("#minutes", Input).value = "1"
        assert not launch.query_one("#dry-run", Checkbox).value
        await pilot.click("#start")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        board = app.dashboard
        await wait_for(
            pilot,
            lambda: board.state is not None and board.state.started is not None,
            30,
            "attached",
        )
        assert board.state is not None and board.state.started is not None
        engines.append(board.state.started.pid)
        assert board.state.started.via == "tui"
        assert board.state.started.pid == app.backend.launched[0].pid
        await wait_for(
            pilot,
            lambda: board.state is not None and board.state.window_started_at is not None,
            60,
            "the window",
        )
        await wait_text(pilot, "● monitor", "local", "1.0.0 → 1.1.0")
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmRollbackScreen))
        await wait_text(pilot, "return to:", "1.0.0")
        app.screen.query_one("#reason", Input).value = "testing the manual rollback"
        await pilot.click("#confirm")
        await wait_for(
            pilot,
            lambda: board.state is not None and board.state.finished is not None,
            60,
            "the rollback to finish",
        )
        assert board.state is not None and board.state.finished is not None
        assert board.state.finished.outcome == "rolled_back", board.state.finished.reason
        await wait_text(pilot, "↶ rolled back", "testing the manual rollback")
    async with await HistoryStore.open(state_dir / "history.sqlite3") as store:
        requests = await store.control_requests(board.state.rollout_id)
        assert [r.action for r in requests] == ["rollback"] and requests[0].state == "taken"
        acks = await store.events(board.state.rollout_id, types=["control_acknowledged"])
        assert acks and getattr(acks[0], "request_id") == requests[0].id  # noqa: B009
