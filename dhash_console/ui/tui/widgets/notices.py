"""The notifications sent for this rollout and the engine's answers to control requests."""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual.widgets import Static

from dhash_console.textsafe import clean
from dhash_console.ui.tui.format import clock
from dhash_console.ui.tui.palette import color
from dhash_console.ui.tui.state import Notice

KEEP = 50


class NoticeList(Static):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", markup=False, id=id)
        self._notices: deque[Notice] = deque(maxlen=KEEP)

    def on_mount(self) -> None:
        self.border_title = "notifications"
        self._render_notices()

    def add(self, notices: list[Notice]) -> None:
        if notices:
            self._notices.extend(notices)
            self._render_notices()

    def clear(self) -> None:
        self._notices.clear()
        self._render_notices()

    def _render_notices(self) -> None:
        if not self._notices:
            self.update(Text("none sent yet", color(self.app, "text-muted")))
            return
        lines = []
        for notice in reversed(self._notices):
            mark = "✔" if notice.ok else "✖"
            style = color(self.app, "success" if notice.ok else "error")
            line = Text(f"{clock(notice.at)} ", color(self.app, "text-muted"))
            line.append(f"{mark} {clean(notice.text)}", style)
            lines.append(line)
        self.update(Text("\n").join(lines))
