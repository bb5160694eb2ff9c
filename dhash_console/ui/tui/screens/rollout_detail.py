"""One past (or running) rollout: its timeline, its gates, its logs. R replays it."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Log, Static, TabbedContent, TabPane

from dhash_console.events import (
    ControlAcknowledged,
    Event,
    GateVerdict,
    LogLine,
    MonitorPaused,
    MonitorResumed,
    NotificationSent,
    PhaseFinished,
    PhaseStarted,
    RollbackFinished,
    RollbackRequested,
    RollbackStarted,
    RolloutFinished,
    RolloutStarted,
)
from dhash_console.textsafe import clean
from dhash_console.ui.tui.format import clock, duration, stamp, value
from dhash_console.ui.tui.palette import mark, status_style
from dhash_console.ui.tui.widgets.footer import ConsoleFooter
from dhash_console.ui.tui.widgets.log_pane import format_line

if TYPE_CHECKING:
    from dhash_console.ui.tui.app import ConsoleApp

LOG_TAIL = 5_000


def timeline_entry(event: Event) -> tuple[str, str] | None:
    """(status, words) for the events a timeline shows; None for the rest."""
    if isinstance(event, RolloutStarted):
        return "running", (
            f"started {event.env} {event.from_version or '—'} → {event.to_version} by "
            f"{event.started_by} via {event.via}" + (" (dry run)" if event.dry_run else "")
        )
    if isinstance(event, PhaseStarted):
        return "running", f"{event.phase} started" + (f": {event.detail}" if event.detail else "")
    if isinstance(event, PhaseFinished):
        text = f"{event.phase} {event.status} in {duration(event.duration_s)}"
        return event.status, text + (f": {event.detail}" if event.detail else "")
    if isinstance(event, GateVerdict):
        return event.verdict, f"gate {event.gate} {event.verdict}: {event.reason}"
    if isinstance(event, MonitorPaused):
        return "paused", f"window paused: {event.reason}"
    if isinstance(event, MonitorResumed):
        return "running", f"window resumed by {event.by}"
    if isinstance(event, RollbackRequested):
        who = "automatically" if event.automatic else f"by {event.by}"
        return "rolling_back", f"rollback requested {who}: {event.reason}"
    if isinstance(event, RollbackStarted):
        return "rolling_back", f"rollback {event.from_version} → {event.to_version}"
    if isinstance(event, RollbackFinished):
        status = "ok" if event.ok and event.healthy else "failed"
        return (
            status,
            f"rollback finished: {event.version}, healthy={event.healthy}. {event.detail}",
        )
    if isinstance(event, ControlAcknowledged):
        return "ok", f"request #{event.request_id} {event.action} by {event.by}: {event.result}"
    if isinstance(event, NotificationSent):
        return ("ok" if event.ok else "failed"), f"notified {event.channel}: {event.event_type}"
    if isinstance(event, RolloutFinished):
        return event.outcome, f"{event.outcome} (exit {event.exit_code}): {event.reason}"
    return None


class RolloutDetailScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("R", "replay", "Replay"),
        Binding("w", "watch", "Watch live"),
    ]

    def __init__(self, rollout_id: str) -> None:
        super().__init__()
        self.rollout_id = rollout_id

    @property
    def console_app(self) -> ConsoleApp:
        return cast("ConsoleApp", self.app)

    def compose(self) -> ComposeResult:
        yield Static("", id="detail-title", markup=False)
        with TabbedContent(id="detail-tabs"):
            with TabPane("Timeline", id="tab-timeline"):
                yield DataTable(id="timeline", cursor_type="row")
            with TabPane("Gates", id="tab-gates"):
                yield DataTable(id="gates", cursor_type="row")
            with TabPane("Logs", id="tab-logs"):
                yield Log(id="detail-log", max_lines=LOG_TAIL)
        yield ConsoleFooter()

    def on_mount(self) -> None:
        timeline = self.query_one("#timeline", DataTable)
        for label in ("time (UTC)", "", "what happened"):
            timeline.add_column(label)
        gates = self.query_one("#gates", DataTable)
        for label in ("gate", "verdict", "value", "condition", "samples", "fails", "why"):
            gates.add_column(label)
        self.load()

    @work(exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        store = self.console_app.backend.store
        record = await store.get_rollout(self.rollout_id)
        events = await store.events(self.rollout_id, types=_TIMELINE_TYPES)
        verdicts = await store.gate_verdicts(self.rollout_id)
        logs = await store.last_events(self.rollout_id, LOG_TAIL, types=["log_line"])
        title = Text(f"rollout {self.rollout_id}", style="bold")
        if record is not None:
            status = record.effective_status
            symbol, word, _ = mark(status)
            title.append(f"  {clean(record.env)} {clean(record.from_version or '—')} → ")
            title.append(f"{clean(record.to_version)}  ")
            title.append(f"{symbol} {word}", style=status_style(self.app, status))
            title.append(
                f"  started {stamp(record.started_at)} by {clean(record.started_by)} via "
                f"{clean(record.via)}, took {duration(record.elapsed_s)}"
            )
            if record.reason:
                title.append(f"\nwhy it ended: {clean(record.reason)}")
        self.query_one("#detail-title", Static).update(title)
        timeline = self.query_one("#timeline", DataTable)
        for event in events:
            entry = timeline_entry(event)
            if entry is None:
                continue
            status, words = entry
            symbol, _, _ = mark(status)
            timeline.add_row(
                clock(event.at),
                Text(symbol, style=status_style(self.app, status)),
                Text(clean(words)),
            )
        gates = self.query_one("#gates", DataTable)
        latest: dict[str, GateVerdict] = {v.gate: v for v in verdicts}
        for verdict in latest.values():
            symbol, word, _ = mark(verdict.verdict)
            gates.add_row(
                clean(verdict.gate),
                Text(f"{symbol} {word}", style=status_style(self.app, verdict.verdict)),
                value(verdict.value),
                clean(verdict.condition),
                str(verdict.samples),
                str(verdict.fails),
                Text(clean(verdict.reason)),
            )
        lines: list[str] = []
        for event in logs:
            if isinstance(event, LogLine):
                lines.extend(format_line(event.at, event.level, event.source, event.message))
        self.query_one("#detail-log", Log).write_lines(lines)

    def action_replay(self) -> None:
        self.console_app.ask_replay(self.rollout_id)

    def action_watch(self) -> None:
        self.console_app.show_rollout(self.rollout_id)


_TIMELINE_TYPES = [
    "rollout_started",
    "phase_started",
    "phase_finished",
    "gate_verdict",
    "monitor_paused",
    "monitor_resumed",
    "rollback_requested",
    "rollback_started",
    "rollback_finished",
    "control_acknowledged",
    "notification_sent",
    "rollout_finished",
]
