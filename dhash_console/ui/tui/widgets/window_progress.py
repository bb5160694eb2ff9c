"""The monitoring window as a progress bar, with elapsed, remaining and ETA in words."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

from dhash_console.ui.tui.format import clock, duration
from dhash_console.ui.tui.state import RolloutState


class WindowProgress(Horizontal):
    DEFAULT_CSS = """
    WindowProgress { height: 1; }
    WindowProgress > Static { width: 1fr; padding-left: 1; }
    WindowProgress > ProgressBar { width: auto; }
    """

    def compose(self) -> ComposeResult:
        yield ProgressBar(total=100, show_eta=False, show_percentage=True, id="window-bar")
        yield Static("", markup=False, id="window-label")

    def show_state(self, state: RolloutState | None, now: float) -> None:
        bar = self.query_one(ProgressBar)
        label = self.query_one("#window-label", Static)
        progress = state.window_progress(now) if state is not None else None
        if state is None or state.started is None:
            bar.update(total=100, progress=0)
            label.update("")
            return
        if progress is None:
            bar.update(total=100, progress=0)
            label.update(f"window {duration(state.started.duration_s)}: not started yet")
            return
        elapsed, total = progress
        bar.update(total=max(total, 0.001), progress=elapsed)
        remaining = max(0.0, total - elapsed)
        text = f"window {duration(elapsed)} / {duration(total)} · {duration(remaining)} left"
        if state.finished is not None:
            text += " · ended"
        elif state.rollback_requested is not None:
            text += " · stopped: rolling back"
        elif state.paused_since is not None:
            text += " · PAUSED (the window waits)"
        elif state.phases["monitor"].status == "running":
            text += f" · ETA {clock(now + remaining)} UTC"
        label.update(text)
