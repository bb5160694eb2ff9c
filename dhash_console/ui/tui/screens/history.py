"""Past rollouts from the journal: filter by environment, Enter opens one, R replays it."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Input, Label

from dhash_console.store.history import RolloutRecord
from dhash_console.textsafe import clean
from dhash_console.ui.tui.format import duration, stamp
from dhash_console.ui.tui.palette import mark, status_style
from dhash_console.ui.tui.widgets.footer import ConsoleFooter

if TYPE_CHECKING:
    from dhash_console.ui.tui.app import ConsoleApp

LIMIT = 200


class HistoryScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("R", "replay", "Replay"),
        Binding("slash", "filter", "Filter env"),
        Binding("ctrl+r", "reload", "Reload"),
    ]

    def __init__(self) -> None:
        super().__init__(classes="list-screen")
        self.records: dict[str, RolloutRecord] = {}

    @property
    def console_app(self) -> ConsoleApp:
        return cast("ConsoleApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical():
            with Horizontal(classes="filter-row"):
                yield Label("History · environment: ")
                yield Input(placeholder="all (type a name)", id="env-filter")
            yield DataTable(id="history", cursor_type="row")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in (
            ("started", "started (UTC)"),
            ("env", "env"),
            ("versions", "from → to"),
            ("outcome", "outcome"),
            ("took", "took"),
            ("by", "who / via"),
            ("why", "why it ended"),
        ):
            table.add_column(label, key=key)
        table.focus()
        self.load()

    @on(Input.Changed, "#env-filter")
    def _filter_changed(self) -> None:
        self.load()

    @on(Input.Submitted, "#env-filter")
    def _filter_done(self) -> None:
        self.query_one(DataTable).focus()

    def action_filter(self) -> None:
        self.query_one("#env-filter", Input).focus()

    def action_reload(self) -> None:
        self.load()

    @work(exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        env = self.query_one("#env-filter", Input).value.strip() or None
        records = await self.console_app.backend.store.list_rollouts(env=env, limit=LIMIT)
        self._show(records)

    def _show(self, records: list[RolloutRecord]) -> None:
        table = self.query_one(DataTable)
        table.clear()
        self.records = {r.id: r for r in records}
        for record in records:
            status = record.effective_status
            symbol, word, _ = mark(status)
            reason = clean(record.reason or ("running" if status == "running" else "—"))
            table.add_row(
                stamp(record.started_at),
                clean(record.env),
                f"{clean(record.from_version or '—')} → {clean(record.to_version)}"
                + (" (dry run)" if record.dry_run else ""),
                Text(f"{symbol} {word}", style=status_style(self.app, status)),
                duration(record.elapsed_s),
                f"{clean(record.started_by)} · {clean(record.via)}",
                Text(reason[:90]),
                key=record.id,
            )

    def _selected(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return key

    @on(DataTable.RowSelected)
    def _open(self, event: DataTable.RowSelected) -> None:
        from dhash_console.ui.tui.screens.rollout_detail import RolloutDetailScreen

        if event.row_key.value is not None:
            self.app.push_screen(RolloutDetailScreen(event.row_key.value))

    def action_replay(self) -> None:
        rollout_id = self._selected()
        if rollout_id is not None:
            self.console_app.ask_replay(rollout_id)
