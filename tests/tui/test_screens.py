"""History, replay, attach, backups, migrations, help, palette, themes and quitting."""

from __future__ import annotations

import gc
from collections.abc import Callable

from textual.widgets import DataTable
from textual.widgets._footer import FooterKey

from dhash_console.events import RolloutFinished
from dhash_console.store.history import HistoryStore
from dhash_console.ui.tui.app import ConsoleApp
from dhash_console.ui.tui.screens.attach import AttachScreen
from dhash_console.ui.tui.screens.backups import BackupsScreen
from dhash_console.ui.tui.screens.confirm import ConfirmScreen
from dhash_console.ui.tui.screens.dashboard import DashboardScreen
from dhash_console.ui.tui.screens.help import HelpScreen
from dhash_console.ui.tui.screens.history import HistoryScreen
from dhash_console.ui.tui.screens.migrations import MigrationsScreen
from dhash_console.ui.tui.screens.replay_speed import ReplaySpeedScreen
from dhash_console.ui.tui.screens.rollout_detail import RolloutDetailScreen
from dhash_console.ui.tui.widgets.footer import ConsoleFooter
from tests.tui.helpers import T0, Journal, wait_for, wait_text


async def _rolled_back(journal: Journal) -> None:
    await journal.start()
    t = await journal.phases_to_monitor()
    t = await journal.passing_rounds(t, 2)
    t = await journal.failing_rounds(t, 3, first_index=2)
    await journal.verdict(t, "error_rate", "failed", "3 consecutive samples above 0.01", 0.46)
    await journal.rollback(t, "gate error_rate failed: 3 consecutive samples above 0.01")


async def test_history_opens_a_rollout_and_replays_it(
    make_app: Callable[..., ConsoleApp], journal: Journal, store: HistoryStore
) -> None:
    await _rolled_back(journal)
    other = Journal(store, "r-20260101-000100-prod")
    await other.start(at=T0 + 60, env="production")
    await other.emit(
        RolloutFinished(
            rollout_id=other.rollout_id,
            at=T0 + 120,
            outcome="succeeded",
            exit_code=0,
            reason="all 3 gates passed the window",
        )
    )
    app = make_app(offer_attach=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready)
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        await wait_text(pilot, "↶ rolled back", "✔ succeeded", "oncall@bastion · cli")
        await pilot.press("slash", *"local")
        await wait_for(pilot, lambda: table.row_count == 1, what="env filter")
        await pilot.press("enter")  # back to the table
        table.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RolloutDetailScreen))
        await wait_text(
            pilot, "why it ended: rolled back to 1.0.0", "rollback requested automatically"
        )
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, ReplaySpeedScreen))
        await pilot.press("down", "down", "down", "down", "enter")  # at once
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        board = app.dashboard
        assert board.replay_speed == 0.0
        await wait_for(pilot, lambda: board.state is not None and board.state.finished is not None)
        await wait_text(pilot, "replay ×0", "↶ rolled back")


async def test_start_offers_to_attach_to_rollouts_in_progress(
    make_app: Callable[..., ConsoleApp], journal: Journal
) -> None:
    await journal.start()  # running, in this (live) process: in progress
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, AttachScreen))
        await wait_text(pilot, "1 rollout in progress", journal.rollout_id)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        assert app.dashboard.rollout_id == journal.rollout_id


async def test_backups_and_migrations_lists(make_app: Callable[..., ConsoleApp]) -> None:
    app = make_app(offer_attach=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready)
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, BackupsScreen))
        backups_dir = app.backend.backups_dir(None)
        assert backups_dir is not None
        await wait_text(pilot, f"Backups — 0 in {backups_dir}")  # where they are kept
        await pilot.press("escape")
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, MigrationsScreen))
        await wait_text(pilot, "local: 0 applied", "pending")


async def test_help_palette_theme_and_quit(make_app: Callable[..., ConsoleApp]) -> None:
    app = make_app(offer_attach=False, theme="light")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready)
        assert app.theme == "dhash-light"
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await wait_text(pilot, "roll back: shows the plan", "command palette")
        await pilot.press("escape")
        await pilot.press("t")
        assert app.theme == "dhash-high-contrast"
        await pilot.press("t")
        assert app.theme == "dhash-dark"
        commands = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Roll back", "Launch", "History", "Backups", "Migrations", "Filter log"):
            assert title in commands
        await pilot.press("ctrl+p")
        await pilot.press(*"History", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen))
        await pilot.press("escape")
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running)


async def test_quit_asks_only_when_a_watched_rollout_is_paused(
    make_app: Callable[..., ConsoleApp], journal: Journal
) -> None:
    from dhash_console.events import MonitorPaused

    await journal.start()
    t = await journal.phases_to_monitor()
    await journal.emit(MonitorPaused(rollout_id=journal.rollout_id, at=t + 1, reason="paused by x"))
    app = make_app(attach=journal.rollout_id)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(
            pilot,
            lambda: (
                app.dashboard.state is not None and app.dashboard.state.paused_since is not None
            ),
        )
        await wait_text(pilot, "‖ PAUSED")
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("enter")  # Cancel has focus: stays
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        assert app.is_running


async def test_footer_keeps_its_keys_across_panels_and_leaks_none(
    make_app: Callable[..., ConsoleApp],
) -> None:
    app = make_app(offer_attach=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.ready)
        footer = app.dashboard.query_one(ConsoleFooter)
        await wait_for(pilot, lambda: bool(footer.query(FooterKey)), what="footer keys")
        keys = list(footer.query(FooterKey))
        for _ in range(5):
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
            await pilot.pause()
        # Same keys, so the very same widgets: nothing rebuilt, nothing for the collector.
        assert list(footer.query(FooterKey)) == keys
        # Keys that do change (the log filter's input takes focus) are shown, and the old
        # ones are not kept alive by their data binding on the footer.
        await pilot.press("slash")
        await wait_for(pilot, lambda: list(footer.query(FooterKey)) != keys, what="new keys")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.focused is None or app.focused.id != "log-filter")
        await pilot.pause()
        watchers = getattr(footer, "__watchers")["compact"]
        shown = {id(key) for key in footer.query(FooterKey)}
        assert watchers and {id(node) for node, _ in watchers} <= shown


async def test_collection_paused_for_start_up_resumes_after_the_first_paint(
    make_app: Callable[..., ConsoleApp],
) -> None:
    gc.disable()  # as run_console does before it imports the console
    try:
        app = make_app(offer_attach=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.ready)
            await wait_for(pilot, gc.isenabled, what="collection back on")
            assert gc.get_freeze_count() > 0  # start-up's objects left out of the sweeps
    finally:
        gc.enable()
