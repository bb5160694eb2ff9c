"""The rollouts in progress in this state directory: pick one to watch."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from dhash_console.store.history import RolloutRecord
from dhash_console.textsafe import clean
from dhash_console.ui.tui.format import clock, duration


class AttachScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Close")]

    def __init__(self, rollouts: list[RolloutRecord], now: float) -> None:
        super().__init__()
        self.rollouts = rollouts
        self.now = now

    def compose(self) -> ComposeResult:
        with Vertical(classes="form"):
            count = len(self.rollouts)
            yield Static(
                f"{count} rollout{'s' if count != 1 else ''} in progress — Enter attaches, "
                "Escape closes (they run on either way)",
                classes="dialog-title",
                markup=False,
            )
            yield DataTable(id="active", cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label in ("id", "env", "from → to", "phase", "running for", "by", "via"):
            table.add_column(label)
        for record in self.rollouts:
            table.add_row(
                record.id,
                clean(record.env),
                f"{clean(record.from_version or '—')} → {clean(record.to_version)}",
                clean(record.phase or "starting"),
                duration(self.now - record.started_at),
                clean(record.started_by),
                f"{clean(record.via)} · since {clock(record.started_at)}",
                key=record.id,
            )
        table.focus()

    @on(DataTable.RowSelected)
    def _chosen(self, event: DataTable.RowSelected) -> None:
        self.dismiss(event.row_key.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
