"""`r`: the confirm panel states the plan, guards against stray keys, and sends at once."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from textual.widgets import Button

from dhash_console.events import ControlAcknowledged
from dhash_console.ops.backup import create_backup_sync
from dhash_console.store.history import HistoryStore
from dhash_console.ui.tui.app import ConsoleApp
from dhash_console.ui.tui.screens.confirm_rollback import ConfirmRollbackScreen
from dhash_console.ui.tui.screens.dashboard import DashboardScreen
from tests.tui.helpers import Journal, wait_for, wait_text


async def _attached(
    make_app: Callable[..., ConsoleApp], journal: Journal, env: str = "local"
) -> ConsoleApp:
    await journal.start(env=env)
    t = await journal.phases_to_monitor()
    await journal.passing_rounds(t, 2)
    return make_app(attach=journal.rollout_id)


async def test_focus_starts_on_cancel_and_enter_or_escape_never_confirms(
    make_app: Callable[..., ConsoleApp], journal: Journal, store: HistoryStore
) -> None:
    app = await _attached(make_app, journal)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(
            pilot, lambda: app.dashboard.state is not None and app.dashboard.state.active
        )
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmRollbackScreen))
        text = await wait_text(pilot, "return to:", "1.0.0", "database:", "discards:")
        assert "RESTORED from backup" in text  # a migration was pending and migrate ran ok
        assert app.focused is not None and app.focused.id == "cancel"
        await pilot.press("enter")  # Enter on Cancel
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmRollbackScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        assert await store.control_requests(journal.rollout_id) == []


async def test_confirmed_rollback_goes_out_at_once_and_the_ack_is_shown(
    make_app: Callable[..., ConsoleApp], journal: Journal, store: HistoryStore
) -> None:
    app = await _attached(make_app, journal)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(
            pilot, lambda: app.dashboard.state is not None and app.dashboard.state.active
        )
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmRollbackScreen))
        confirm = app.screen.query_one("#confirm", Button)
        assert confirm.disabled  # no reason yet
        app.screen.query_one("#reason").focus()
        await pilot.press(*"p95 climbing", "enter")  # Enter in the field moves on, never confirms
        assert isinstance(app.screen, ConfirmRollbackScreen)
        assert not confirm.disabled
        confirm.focus()
        pressed = time.monotonic()
        await pilot.press("enter")
        requests: list[object] = []

        async def poll() -> bool:
            requests[:] = await store.control_requests(journal.rollout_id)
            return bool(requests)

        deadline = time.monotonic() + 2
        while not await poll():
            assert time.monotonic() < deadline, "no control request written"
            await pilot.pause(0.01)
        assert time.monotonic() - pressed < 0.5
        request = requests[0]
        assert getattr(request, "action") == "rollback"  # noqa: B009
        assert getattr(request, "reason") == "p95 climbing"  # noqa: B009
        # The panel stays open and shows the progress: the request first.
        assert isinstance(app.screen, ConfirmRollbackScreen) and app.screen.in_progress
        assert app.focused is not None and app.focused.id == "close"
        await wait_text(pilot, "confirmed: p95 climbing", "request #1 written to the journal")
        await wait_text(pilot, "waiting for the engine to acknowledge")
        # The engine takes it and journals its answer; the panel says so, with the latency.
        await journal.emit(
            ControlAcknowledged(
                rollout_id=journal.rollout_id,
                request_id=getattr(request, "id"),  # noqa: B009
                action="rollback",
                by="someone",
                result="rolling back",
            )
        )
        text = await wait_text(pilot, "engine acknowledged request #1: rolling back (")
        assert " ms after confirming)" in text
        await journal.rollback(time.time(), "p95 climbing", finish=False)
        await wait_text(pilot, "rollback started at", "2.0.0-bad → 1.0.0", "… rolling back…")
        await journal.rollback(time.time(), "p95 climbing", finish=True)
        await wait_text(
            pilot, "rollback finished at", "1.0.0 healthy — health restored", "Close (done)"
        )
        await pilot.press("escape")  # closes the panel; the dashboard shows the end
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await wait_text(pilot, "↶ rolled back", "request #1 rollback")


async def test_escape_closes_the_progress_panel_and_the_rollback_goes_on(
    make_app: Callable[..., ConsoleApp], journal: Journal, store: HistoryStore
) -> None:
    app = await _attached(make_app, journal)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(
            pilot, lambda: app.dashboard.state is not None and app.dashboard.state.active
        )
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmRollbackScreen))
        app.screen.query_one("#reason").focus()
        await pilot.press(*"now", "tab", "tab", "enter")  # reason -> Cancel -> Roll back now
        await wait_text(pilot, "request #1 written to the journal")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await wait_text(pilot, "rollback requested, waiting for the engine")
        # The engine's answer still reaches the dashboard with the panel gone.
        requests = await store.control_requests(journal.rollout_id)
        await journal.emit(
            ControlAcknowledged(
                rollout_id=journal.rollout_id,
                request_id=requests[0].id,
                action="rollback",
                by="someone",
                result="rolling back",
            )
        )
        await journal.rollback(time.time(), "now")
        await wait_text(pilot, "↶ rolled back", "request #1 rollback")


async def test_production_needs_the_name_typed(
    make_app: Callable[..., ConsoleApp], journal: Journal, store: HistoryStore
) -> None:
    app = await _attached(make_app, journal, env="production")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(
            pilot, lambda: app.dashboard.state is not None and app.dashboard.state.active
        )
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmRollbackScreen))
        await wait_text(pilot, "Type the environment's name (production)")
        screen = app.screen
        confirm = screen.query_one("#confirm", Button)
        screen.query_one("#reason").focus()
        await pilot.press(*"error rate")
        assert confirm.disabled
        screen.query_one("#env-name").focus()
        await pilot.press(*"prod")
        assert confirm.disabled
        await pilot.press(*"uction")
        assert not confirm.disabled
        await pilot.click("#confirm")
        await wait_text(pilot, "request #1 written to the journal")
        deadline = time.monotonic() + 2
        while not await store.control_requests(journal.rollout_id):
            assert time.monotonic() < deadline
            await pilot.pause(0.02)


async def test_replay_and_ended_rollouts_cannot_be_steered(
    make_app: Callable[..., ConsoleApp], journal: Journal, store: HistoryStore
) -> None:
    await journal.start()
    t = await journal.phases_to_monitor()
    await journal.rollback(t + 5, "gate health failed")
    app = make_app(attach=journal.rollout_id)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(
            pilot,
            lambda: (
                app.dashboard.state is not None
                and not app.dashboard.state.active
                and app.dashboard.state.finished is not None
            ),
        )
        await pilot.press("r")
        await pilot.pause(0.1)
        assert isinstance(app.screen, DashboardScreen)
        assert await store.control_requests(journal.rollout_id) == []


async def test_the_plan_names_the_backup_and_how_it_is_known_good(
    make_app: Callable[..., ConsoleApp], journal: Journal
) -> None:
    app = await _attached(make_app, journal)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(
            pilot, lambda: app.dashboard.state is not None and app.dashboard.state.active
        )
        env = app.backend.environment("local")
        assert env.sqlite_path is not None
        env.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(env.sqlite_path) as db:
            db.execute("CREATE TABLE images (id INTEGER PRIMARY KEY, hash TEXT)")
        db.close()
        backup = create_backup_sync(
            env.sqlite_path, env.backups_dir, "local", service_version="1.0.0"
        )
        assert backup.staged is not None  # the newest backup is staged when it is taken
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmRollbackScreen))
        await wait_text(
            pilot, backup.path.name, backup.sha256[:16], "verified when it was taken and staged"
        )
