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

    BAR_STEPS = 1000  # the bar moves in 0.1 % steps: finer would redraw it for nothing

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._bar_shown: tuple[int, int] | None = None
        self._label_shown: str | None = None

    def compose(self) -> ComposeResult:
        yield ProgressBar(total=100, show_eta=False, show_percentage=True, id="window-bar")
        yield Static("", markup=False, id="window-label")

    def _bar(self, progress: float, total: float) -> None:
        steps = round(self.BAR_STEPS * progress / total) if total > 0 else 0
        if (steps, self.BAR_STEPS) != self._bar_shown:
            self._bar_shown = (steps, self.BAR_STEPS)
            self.query_one(ProgressBar).update(total=self.BAR_STEPS, progress=steps)

    def _label(self, text: str) -> None:
        shown = self._label_shown
        if text != shown:
            self._label_shown = text
            # The label is as wide as its text: a layout pass only when the width changes
            # (the clock ticking over keeps it), not every second.
            resized = shown is None or len(text) != len(shown)
            self.query_one("#window-label", Static).update(text, layout=resized)

    def show_state(self, state: RolloutState | None, now: float) -> None:
        progress = state.window_progress(now) if state is not None else None
        if state is None or state.started is None:
            self._bar(0, 100)
            self._label("")
            return
        if progress is None:
            self._bar(0, 100)
            self._label(f"window {duration(state.started.duration_s)}: not started yet")
            return
        elapsed, total = progress
        self._bar(elapsed, max(total, 0.001))
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
        self._label(text)
