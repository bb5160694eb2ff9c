"""Migrations per environment: applied, pending, drifted (changed after applying), unknown."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Select, Static

from dhash_console.textsafe import clean
from dhash_console.ui.tui.palette import status_style
from dhash_console.ui.tui.widgets.footer import ConsoleFooter

if TYPE_CHECKING:
    from dhash_console.ui.tui.app import ConsoleApp

STATES = (
    ("applied", "✔ applied", "ok"),
    ("pending", "· pending", "pending"),
    ("drifted", "‼ DRIFTED (changed after it was applied)", "failed"),
    ("unknown", "? applied but not on disk", "inconclusive"),
)


class MigrationsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("ctrl+r", "reload", "Reload"),
    ]

    @property
    def console_app(self) -> ConsoleApp:
        return cast("ConsoleApp", self.app)

    def compose(self) -> ComposeResult:
        envs = self.console_app.backend.environments
        with Vertical(classes="list-screen"):
            yield Select(
                [(name, name) for name in envs],
                value=envs[0] if envs else Select.BLANK,
                allow_blank=False,
                id="env",
            )
            yield Static("", id="migrations-title", markup=False)
            yield DataTable(id="migrations", cursor_type="row")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("migration")
        table.add_column("state")
        self.load()

    @on(Select.Changed)
    def action_reload(self) -> None:
        self.load()

    @work(exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        value = self.query_one(Select).value
        if not isinstance(value, str):
            return
        title = self.query_one("#migrations-title", Static)
        table = self.query_one(DataTable)
        table.clear()
        try:
            status: Any = await self.console_app.backend.migrations(value)
        except Exception as exc:
            title.update(f"{value}: {clean(str(exc))}")
            return
        counts = []
        for attribute, word, style in STATES:
            items = list(getattr(status, attribute, []) or [])
            counts.append(f"{len(items)} {attribute}")
            for item in items:
                table.add_row(clean(str(item)), Text(word, style=status_style(self.app, style)))
        title.update(f"{value}: " + ", ".join(counts))
