"""The operator console: composes the screens and routes the operator's actions.

The console never owns a rollout. It launches engines as their own processes, watches
them through the history journal, and steers them with control requests that the engine
journals an answer to. Quitting leaves every rollout running and guarded.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from dhash_console.errors import ConsoleError
from dhash_console.store.history import ControlAction
from dhash_console.textsafe import clean
from dhash_console.ui.tui.backend import Backend
from dhash_console.ui.tui.engine_process import LaunchRequest
from dhash_console.ui.tui.rollback_plan import plan_for
from dhash_console.ui.tui.screens.attach import AttachScreen
from dhash_console.ui.tui.screens.confirm import ConfirmScreen
from dhash_console.ui.tui.screens.confirm_rollback import ConfirmRollbackScreen
from dhash_console.ui.tui.screens.dashboard import DashboardScreen
from dhash_console.ui.tui.screens.gate_detail import GateDetailScreen
from dhash_console.ui.tui.themes import STYLESHEET, THEMES, next_theme, theme_name

if TYPE_CHECKING:
    from dhash_console.config import Config


class ConsoleApp(App[int]):
    CSS_PATH = STYLESHEET
    TITLE = "dhash console"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "launch", "Launch"),
        Binding("a", "attach", "Attach"),
        Binding("h", "history", "History"),
        Binding("b", "backups", "Backups"),
        Binding("m", "migrations", "Migrations"),
        Binding("question_mark", "help", "Help"),
        Binding("t", "next_theme", "Theme"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        *,
        config_path: Path,
        state_dir: Path,
        config: Config | None = None,
        theme: str | None = None,
        clock: Callable[[], float] = time.time,
        attach: str | None = None,
        offer_attach: bool = True,
    ) -> None:
        super().__init__()
        self.config_path = config_path
        self.state_dir = state_dir
        self._given_config = config
        self._theme_choice = theme
        self.clock = clock
        self._attach_id = attach
        self._offer_attach = offer_attach
        self._backend: Backend | None = None
        for definition in THEMES.values():
            self.register_theme(definition)
        self.theme = theme_name(theme)

    # -- life -----------------------------------------------------------------------------------

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            raise RuntimeError("the console's backend is not open yet")
        return self._backend

    @property
    def ready(self) -> bool:
        return self._backend is not None

    def get_default_screen(self) -> Screen[None]:
        return DashboardScreen()

    @property
    def dashboard(self) -> DashboardScreen:
        for screen in self.screen_stack:
            if isinstance(screen, DashboardScreen):
                return screen
        raise RuntimeError("no dashboard")

    async def on_mount(self) -> None:
        self.call_after_refresh(_settle_memory)  # first, so no path below can skip it
        self._backend = await Backend.open(self.config_path, self.state_dir, self._given_config)
        if self._backend.config_error:
            self.notify(clean(self._backend.config_error)[:300], title="config", severity="error")
        if self._attach_id is not None:
            self.show_rollout(self._attach_id)
        elif self._offer_attach:
            await self._offer_active()

    async def on_unmount(self) -> None:
        if self._backend is not None:
            self._backend.reap()
            await self._backend.close()

    async def _offer_active(self) -> None:
        active = await self.backend.active_rollouts()
        if active:
            self.push_screen(AttachScreen(active, self.clock()), self._attach_chosen)

    def _attach_chosen(self, rollout_id: str | None) -> None:
        if rollout_id:
            self.show_rollout(rollout_id)

    # -- routing --------------------------------------------------------------------------------

    def show_rollout(self, rollout_id: str, replay_speed: float | None = None) -> None:
        """Show `rollout_id` on the dashboard (live, or replayed at `replay_speed`)."""
        while not isinstance(self.screen, DashboardScreen):
            self.pop_screen()
        self.dashboard.watch_rollout(rollout_id, replay_speed)

    def ask_replay(self, rollout_id: str) -> None:
        from dhash_console.ui.tui.screens.replay_speed import ReplaySpeedScreen

        def chosen(speed: float | None) -> None:
            if speed is not None:
                self.show_rollout(rollout_id, replay_speed=speed)

        self.push_screen(ReplaySpeedScreen(rollout_id), chosen)

    def open_gate(self, gate: str) -> None:
        rollout_id = self.dashboard.rollout_id
        if rollout_id is not None:
            self.push_screen(GateDetailScreen(rollout_id, gate))

    # -- steering -------------------------------------------------------------------------------

    def _steerable(self) -> bool:
        board = self.dashboard
        if board.state is None:
            self.notify("no rollout attached (a to attach, n to launch)", severity="warning")
            return False
        if not board.is_live:
            self.notify("this is a replay: nothing to steer", severity="warning")
            return False
        if not board.state.active:
            self.notify("this rollout has ended: nothing to steer", severity="warning")
            return False
        return True

    def action_rollback(self) -> None:
        if not self._steerable():
            return
        state = self.dashboard.state
        assert state is not None
        if state.rollback_requested is not None:
            self.notify("a rollback is already under way", severity="warning")
            return
        self._confirm_rollback()

    @work(exclusive=True, group="confirm", exit_on_error=False)
    async def _confirm_rollback(self) -> None:
        state = self.dashboard.state
        assert state is not None
        plan = await plan_for(self.backend, state)
        board = self.dashboard
        panel = ConfirmRollbackScreen(
            plan, on_confirm=lambda reason: board.send_control("rollback", reason, panel)
        )
        # The panel stays open after Confirm and shows the rollback's progress (the
        # dashboard feeds it); Escape or Close dismisses it, the rollback goes on.
        await self.push_screen_wait(panel)

    def action_pause(self) -> None:
        if not self._steerable():
            return
        state = self.dashboard.state
        assert state is not None
        if state.paused_since is not None:
            self._control("resume", "")
        else:
            self._control("pause", "")

    def action_abort(self) -> None:
        if not self._steerable():
            return

        def answered(reason: str | None) -> None:
            if reason:
                self._control("abort", reason)

        self.push_screen(
            ConfirmScreen(
                "Abort the rollout",
                "Abort stops the rollout WITHOUT rolling back: what is deployed stays. "
                "Use r to roll back instead.",
                "Abort",
                ask_reason=True,
            ),
            answered,
        )

    def _control(self, action: ControlAction, reason: str) -> None:
        self.dashboard.send_control(action, reason)

    # -- other screens ---------------------------------------------------------------------------

    def action_attach(self) -> None:
        self._attach_worker()

    @work(exclusive=True, group="attach", exit_on_error=False)
    async def _attach_worker(self) -> None:
        active = await self.backend.active_rollouts()
        if not active:
            self.notify("no rollout in progress in this state directory")
            return
        self.push_screen(AttachScreen(active, self.clock()), self._attach_chosen)

    def action_launch(self) -> None:
        from dhash_console.ui.tui.screens.launch import LaunchScreen

        if self.backend.config is None:
            self.notify(
                f"no valid config: {clean(self.backend.config_error)[:200]}", severity="error"
            )
            return
        self.push_screen(LaunchScreen(), self._launch_chosen)

    def _launch_chosen(self, request: LaunchRequest | None) -> None:
        if request is not None:
            self._launch(request)

    @work(exclusive=True, group="launch", exit_on_error=False)
    async def _launch(self, request: LaunchRequest) -> None:
        self.notify(f"starting the engine: {request.env} {request.version}", title="launch")
        try:
            process, record = await self.backend.launch(request)
        except ConsoleError as exc:
            self.notify(clean(str(exc)), title="launch failed", severity="error", timeout=15)
            return
        self.notify(f"engine pid {process.pid} runs {record.id}; attached", title="launch")
        self.show_rollout(record.id)

    def restore_backup(self, env: str, backup: Path, reason: str) -> None:
        self._restore(env, backup, reason)

    @work(exclusive=True, group="launch", exit_on_error=False)
    async def _restore(self, env: str, backup: Path, reason: str) -> None:
        try:
            process, record = await self.backend.restore(env, backup, reason)
        except ConsoleError as exc:
            self.notify(clean(str(exc)), title="restore failed", severity="error", timeout=15)
            return
        self.notify(f"restore runs as {record.id} (pid {process.pid}); attached")
        self.show_rollout(record.id)

    def action_history(self) -> None:
        from dhash_console.ui.tui.screens.history import HistoryScreen

        self.push_screen(HistoryScreen())

    def action_backups(self) -> None:
        from dhash_console.ui.tui.screens.backups import BackupsScreen

        self.push_screen(BackupsScreen())

    def action_migrations(self) -> None:
        from dhash_console.ui.tui.screens.migrations import MigrationsScreen

        self.push_screen(MigrationsScreen())

    def action_help(self) -> None:
        # Built once and kept installed: composing it anew at every `?` made garbage (a
        # few hundred nodes) that the collector then paused the console to sweep.
        if not self.is_screen_installed("help"):
            from dhash_console.ui.tui.screens.help import HelpScreen

            self.install_screen(HelpScreen(), "help")
        self.push_screen("help")

    def action_next_theme(self) -> None:
        self.theme = next_theme(self.theme)
        self.dashboard.restyle()
        self.notify(f"theme {self.theme}")

    async def action_quit(self) -> None:
        state = self.dashboard.state if self.dashboard else None
        if state is not None and self.dashboard.is_live and state.paused_since is not None:

            def answered(answer: str | None) -> None:
                if answer:
                    self.exit(0)

            self.push_screen(
                ConfirmScreen(
                    "Quit while paused?",
                    "The rollout is PAUSED: its gates are not evaluated until someone resumes "
                    "or rolls it back. It keeps running after you quit; nobody watches it.",
                    "Quit anyway",
                    ask_reason=False,
                ),
                answered,
            )
            return
        self.exit(0)

    # -- command palette: every action -------------------------------------------------------

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield SystemCommand("Roll back", "Roll back the watched rollout (r)", self.action_rollback)
        yield SystemCommand("Pause / resume", "Pause or resume the window (p)", self.action_pause)
        yield SystemCommand("Abort", "Stop the rollout without rolling back (x)", self.action_abort)
        yield SystemCommand(
            "Launch", "Start a rollout in its own engine process (n)", self.action_launch
        )
        yield SystemCommand("Attach", "Watch a rollout in progress (a)", self.action_attach)
        yield SystemCommand(
            "History", "Past rollouts, their gates, logs and replays (h)", self.action_history
        )
        yield SystemCommand("Backups", "Backups and their verification (b)", self.action_backups)
        yield SystemCommand(
            "Migrations", "Applied, pending and drifted migrations (m)", self.action_migrations
        )
        yield SystemCommand("Filter log", "Filter the log pane (/)", self._filter_log)
        yield SystemCommand("Follow log", "Toggle following new log lines (f)", self._follow_log)
        yield SystemCommand(
            "Next theme", "dark → light → high-contrast (t)", self.action_next_theme
        )
        yield SystemCommand("Help", "Keys and what they do (?)", self.action_help)
        yield SystemCommand("Quit", "Quit; rollouts run on (q)", self.action_quit)

    def _filter_log(self) -> None:
        self.watch_dashboard_only()
        self.dashboard.action_filter_log()

    def _follow_log(self) -> None:
        self.watch_dashboard_only()
        self.dashboard.action_follow()

    def watch_dashboard_only(self) -> None:
        while not isinstance(self.screen, DashboardScreen):
            self.pop_screen()


def _settle_memory() -> None:
    """After the first paint: what start-up built (Textual, Rich, the widgets) lives as long as
    the console, so it leaves the collector's sweeps, which otherwise stall keys for 100 ms
    under a log flood; then collection resumes (`run_console` pauses it during start-up)."""
    gc.freeze()
    gc.enable()
