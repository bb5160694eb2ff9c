"""Who rolls what where: environment, from -> to, who started it and how, and its status."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from dhash_console.textsafe import clean
from dhash_console.ui.tui.format import clock
from dhash_console.ui.tui.palette import color, mark, status_style
from dhash_console.ui.tui.state import RolloutState


class RolloutHeader(Static):
    DEFAULT_CSS = "RolloutHeader { height: 2; text-wrap: nowrap; text-overflow: ellipsis; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", markup=False, id=id)
        self._shown: Text | None = None

    def _show(self, text: Text) -> None:
        if text != self._shown:  # fixed height: a changed header needs no layout pass
            self._shown = text
            self.update(text, layout=False)

    def show_state(self, state: RolloutState | None, note: str = "") -> None:
        if state is None or state.started is None:
            self._show(Text("no rollout attached: n launch · h history · a attach · ? help"))
            return
        started = state.started
        symbol, word, _ = mark(state.status)
        line = Text()
        line.append(f" {symbol} {word} ", status_style(self.app, state.status, bold=True))
        line.append("  ")
        line.append(clean(started.env), color(self.app, "accent"))
        line.append("  ")
        line.append(clean(started.from_version or "(none)"))
        line.append(" → ")
        line.append(clean(started.to_version), color(self.app, "primary"))
        if started.dry_run:
            line.append("  [dry run]", color(self.app, "warning"))
        line.append(
            f"   by {clean(started.started_by)} via {clean(started.via)}"
            f" · started {clock(started.at)} UTC · {state.rollout_id}",
            color(self.app, "text-muted"),
        )
        second = Text()
        if note:  # what the console is waiting for comes first: it is what just changed
            second.append(f"{note}  ", color(self.app, "warning"))
        reason = _reason(state)
        if reason:
            second.append(reason, status_style(self.app, state.status))
        lines = [line, second]
        joined = Text("\n").join(lines)
        joined.no_wrap = True  # one line each, cut with an ellipsis: the layout never jumps
        joined.overflow = "ellipsis"
        self._show(joined)


def _reason(state: RolloutState) -> str:
    if state.finished is not None:
        return f"ended: {clean(state.finished.reason)} (exit {state.finished.exit_code})"
    if state.rollback_requested is not None:
        return f"rolling back: {clean(state.rollback_requested.reason)}"
    if state.paused_since is not None:
        return f"paused: {state.pause_reason} — p resume · r roll back"
    return ""
