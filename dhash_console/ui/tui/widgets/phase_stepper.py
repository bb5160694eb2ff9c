"""The phases of a rollout in order, each with its mark and duration."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from dhash_console.ui.tui.format import duration
from dhash_console.ui.tui.palette import color, mark, status_style
from dhash_console.ui.tui.state import RolloutState

LABELS = {
    "prechecks": "pre-checks",
    "backup": "backup",
    "migrate": "migrate",
    "deploy": "deploy",
    "smoke": "smoke",
    "monitor": "monitor",
    "rollback": "rollback",
}


class PhaseStepper(Static):
    # Wraps on a narrow terminal (the running phase must show). Ticked every second, so a
    # layout pass only when the text's length changes, which is what could change its height.
    DEFAULT_CSS = "PhaseStepper { height: auto; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", markup=False, id=id)
        self._shown: Text | None = None

    def _show(self, line: Text) -> None:
        shown = self._shown
        if line != shown:  # same characters, same styles: nothing to redraw
            self._shown = line
            self.update(line, layout=shown is None or len(line) != len(shown))

    def show_state(self, state: RolloutState | None, now: float) -> None:
        if state is None or state.started is None:
            self._show(Text())
            return
        line = Text()
        shown = [p for p in state.phases.values() if p.name != "rollback" or p.status != "pending"]
        for i, phase in enumerate(shown):
            if i:
                line.append(" › ", color(self.app, "text-muted"))
            status = phase.status
            if status == "running" and state.finished is not None:
                status = "interrupted"
            symbol, _, _ = mark(status)
            took = phase.duration_s
            if status == "running" and phase.started_at is not None:
                took = now - phase.started_at
            text = f"{symbol} {LABELS[phase.name]}"
            if took is not None:
                text += f" {duration(took)}"
            style = status_style(self.app, status, bold=status == "running")
            line.append(text, style)
        self._show(line)
