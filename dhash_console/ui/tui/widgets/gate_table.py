"""The quality gates, one keyed row each, updated in place (no clear-and-refill flicker)."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from dhash_console.textsafe import clean
from dhash_console.ui.tui.format import sparkline, value
from dhash_console.ui.tui.palette import mark, status_style
from dhash_console.ui.tui.state import GateRow

# Fixed widths: columns never dance as values change under the operator's eyes.
COLUMNS = (
    ("status", "status", 16),
    ("gate", "gate", 18),
    ("last", "last", 14),
    ("condition", "threshold", 22),
    ("fails", "fails/limit", 14),
    ("trend", "trend", 24),
)


class GateTable(DataTable[Text]):
    class GateChosen(Message):
        """The operator asked for a gate's detail (Enter on its row)."""

        def __init__(self, gate: str) -> None:
            super().__init__()
            self.gate = gate

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._shown: dict[str, tuple[Text, ...]] = {}  # gate -> the cells on screen

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    def show_gates(self, rows: Iterable[GateRow]) -> None:
        for row in rows:
            cells = self._cells(row)
            shown = self._shown.get(row.name)
            if shown is None or row.name not in self.rows:
                self.add_row(*cells, key=row.name)
            else:
                # Only the cells that read differently: a sample usually moves two or three.
                for (key, _, _), cell, old in zip(COLUMNS, cells, shown, strict=True):
                    if cell != old:
                        self.update_cell(row.name, key, cell)
            self._shown[row.name] = cells

    def clear(self, columns: bool = False) -> GateTable:
        self._shown.clear()
        super().clear(columns)
        return self

    def restyle(self, rows: Iterable[GateRow]) -> None:
        """Colours come from the theme: redraw every row after a theme switch."""
        self.show_gates(rows)

    def _cells(self, row: GateRow) -> tuple[Text, ...]:
        status = row.status
        symbol, word, _ = mark(status)
        style = status_style(self.app, status, bold=status in ("fail", "failed"))
        last = Text(value(row.value))
        if row.error:
            last = Text(f"error: {row.error}"[:40], style=status_style(self.app, "inconclusive"))
        fails = f"{row.consecutive_fails}/{row.failure_limit}"
        if row.consecutive_errors:
            fails += f" err {row.consecutive_errors}/{row.consecutive_error_limit}"
        return (
            Text(f"{symbol} {word}", style=style),
            Text(clean(row.name)),
            last,
            Text(clean(row.condition)),
            Text(fails, style=style if row.consecutive_fails else ""),
            Text(sparkline(list(row.recent), width=22), style=style),
        )

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.GateChosen(event.row_key.value))
