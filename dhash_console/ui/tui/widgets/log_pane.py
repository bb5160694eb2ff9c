"""The live log: batched, bounded, filterable, never interpreted as markup.

Lines arrive in bursts (2,000 a second when a service misbehaves). They go into a buffer
that a timer flushes every FLUSH_S with one `Log.write_lines`, not a write per line. The
pane keeps the last `max_lines` (the journal keeps them all); `/` filters what is kept.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from rich.highlighter import Highlighter
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Log

from dhash_console.textsafe import clean
from dhash_console.ui.tui.format import clock
from dhash_console.ui.tui.palette import color

FLUSH_S = 0.1  # ten paints a second at most: a flood costs frames, not one per line
HIDDEN_FLUSH_S = 0.5  # under another screen (a modal, help): hold lines, keep keys quick
MAX_LINES = 5_000
TAGS = {"debug": "DBG ", "info": "INFO", "warning": "WARN", "error": "ERR "}
_TAG_COLOUR = {"WARN": "warning", "ERR ": "error", "DBG ": "text-muted"}
_TAG_AT = 9  # "HH:MM:SS " comes first


class LevelHighlighter(Highlighter):
    """Colours the level tag of a line (the word is there too: never colour alone)."""

    def __init__(self, pane: LogPane) -> None:
        self.pane = pane

    def highlight(self, text: Text) -> None:
        tag = text.plain[_TAG_AT : _TAG_AT + 4]
        variable = _TAG_COLOUR.get(tag)
        if variable is not None:
            text.stylize(color(self.pane.app, variable), _TAG_AT, _TAG_AT + 4)
            if tag == "ERR ":
                text.stylize(color(self.pane.app, "error"), _TAG_AT + 4)


def format_line(at: float, level: str, source: str, message: str) -> list[str]:
    """One journaled log line as the pane's plain-text lines (a message may hold newlines)."""
    head = f"{clock(at)} {TAGS.get(level, 'INFO')} {clean(source)[:8]:<8} "
    parts = clean(message).split("\n") or [""]
    return [head + parts[0]] + [" " * len(head) + part for part in parts[1:]]


class LogPane(Vertical):
    class FilterClosed(Message):
        """The filter input was closed; focus should go back to where it was."""

    def __init__(self, *, max_lines: int = MAX_LINES, id: str | None = None) -> None:
        super().__init__(id=id)
        self.max_lines = max_lines
        self._kept: deque[str] = deque(maxlen=max_lines)
        self._pending: list[str] = []
        self._filter = ""
        self._flush_due = False
        self.lines_received = 0

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter the log (Enter keeps it, Escape clears)", id="log-filter")
        log = Log(highlight=True, max_lines=self.max_lines, auto_scroll=True, id="log")
        log.highlighter = LevelHighlighter(self)
        yield log

    def on_mount(self) -> None:
        self.border_title = "log"

    def _schedule_flush(self) -> None:
        # A timer only while lines wait: a quiet pane costs nothing (no 13 wake-ups a second).
        if not self._flush_due:
            self._flush_due = True
            self.set_timer(FLUSH_S, self._timed_flush)

    def _timed_flush(self) -> None:
        self._flush_due = False
        if not self.screen.is_active and len(self._pending) < self.max_lines:
            # Another screen is on top (a confirm panel, help): the log under it would be
            # repainted through the modal's dimmed background at every flush, and the
            # operator's keys there would wait behind those paints. Hold the lines (bounded)
            # and write them when the dashboard is on top again.
            self._flush_due = True
            self.set_timer(HIDDEN_FLUSH_S, self._timed_flush)
            return
        self.flush()

    @property
    def log_widget(self) -> Log:
        return self.query_one("#log", Log)

    @property
    def follow(self) -> bool:
        return self.log_widget.auto_scroll

    def add(self, entries: Iterable[tuple[float, str, str, str]]) -> None:
        """Queue lines; they appear at the next flush."""
        for entry in entries:
            lines = format_line(*entry)
            self.lines_received += 1
            self._pending.extend(lines)
        if self._pending:
            self._schedule_flush()

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        if len(pending) > self.max_lines:  # more than the pane keeps: the rest is history
            pending = pending[-self.max_lines :]
        self._kept.extend(pending)
        shown = [line for line in pending if self._matches(line)] if self._filter else pending
        if shown:
            self.log_widget.write_lines(shown)

    def clear(self) -> None:
        self._pending.clear()
        self._kept.clear()
        self.lines_received = 0
        self.log_widget.clear()

    def toggle_follow(self) -> bool:
        log = self.log_widget
        log.auto_scroll = not log.auto_scroll
        if log.auto_scroll:
            log.scroll_end(animate=False)
        self._retitle()
        return log.auto_scroll

    def open_filter(self) -> None:
        box = self.query_one("#log-filter", Input)
        box.add_class("visible")
        box.focus()

    def set_filter(self, text: str) -> None:
        self._filter = text.lower()
        self.flush()
        log = self.log_widget
        log.clear()
        log.write_lines([line for line in self._kept if self._matches(line)])
        self._retitle()

    def _matches(self, line: str) -> bool:
        return self._filter in line.lower()

    def _retitle(self) -> None:
        title = "log"
        if self._filter:
            title += f" · filter: {self._filter}"
        if not self.follow:
            title += " · follow off (f)"
        self.border_title = title

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._close_filter(keep=True)

    def on_key(self, event: object) -> None:
        key = getattr(event, "key", "")
        box = self.query_one("#log-filter", Input)
        if key == "escape" and box.has_focus:
            getattr(event, "stop")()  # noqa: B009 - textual.events.Key
            box.value = ""
            self._close_filter(keep=False)

    def _close_filter(self, keep: bool) -> None:
        box = self.query_one("#log-filter", Input)
        if not keep or not box.value:
            box.remove_class("visible")
        self.post_message(self.FilterClosed())
