"""Backups with their verification; Enter restores one through the same confirm panel."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Static

from dhash_console.textsafe import clean
from dhash_console.ui.tui.format import duration, stamp
from dhash_console.ui.tui.palette import status_style
from dhash_console.ui.tui.rollback_plan import PlanView
from dhash_console.ui.tui.screens.confirm_rollback import ConfirmRollbackScreen
from dhash_console.ui.tui.widgets.footer import ConsoleFooter

if TYPE_CHECKING:
    from dhash_console.ui.tui.app import ConsoleApp


def _created(info: Any) -> float | None:
    created = getattr(info, "created_at", None)
    if created is None:
        return None
    return float(created.timestamp()) if hasattr(created, "timestamp") else float(created)


class BackupsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("enter", "restore", "Restore", show=True),
        Binding("ctrl+r", "reload", "Reload"),
    ]

    def __init__(self) -> None:
        super().__init__(classes="list-screen")
        self.backups: dict[str, Any] = {}
        self.verified: dict[str, str] = {}  # key -> what its verification on this screen said

    @property
    def console_app(self) -> ConsoleApp:
        return cast("ConsoleApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Backups — verifying…", id="backups-title", markup=False)
            yield DataTable(id="backups", cursor_type="row")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label in (
            ("name", "backup"),
            ("env", "env"),
            ("created", "created (UTC)"),
            ("age", "age"),
            ("size", "size"),
            ("sha", "sha256"),
            ("verified", "verified"),
        ):
            table.add_column(label, key=key)
        table.focus()
        self.load()

    def action_reload(self) -> None:
        self.load()

    @work(exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        backend = self.console_app.backend
        title = self.query_one("#backups-title", Static)
        try:
            backups = await backend.backups(None)
        except Exception as exc:  # the ops module may refuse a folder: say so, do not crash
            title.update(f"Backups — cannot list: {clean(str(exc))}")
            return
        table = self.query_one(DataTable)
        table.clear()
        self.backups = {}
        self.verified = {}
        now = self.console_app.clock()
        for info in backups:
            key = str(info.path)
            self.backups[key] = info
            created = _created(info)
            table.add_row(
                clean(info.path.name),
                clean(str(getattr(info, "env", "") or "—")),
                stamp(created),
                duration(now - created) if created else "—",
                f"{getattr(info, 'size', 0):,}",
                clean(str(getattr(info, "sha256", "") or ""))[:16],
                Text("… checking"),
                key=key,
            )
        title.update(f"Backups — {len(backups)} in {clean(str(backend.backups_dir(None)))}")
        for key, info in self.backups.items():
            ok, why = await self._verify(info.path)
            status = "ok" if ok else "failed"
            word = "✔ verified" if ok else f"✖ NOT verified: {why}"
            self.verified[key] = word
            table.update_cell(key, "verified", Text(word, style=status_style(self.app, status)))

    async def _verify(self, path: Path) -> tuple[bool, str]:
        try:
            result = await self.console_app.backend.verify(path)
        except Exception as exc:
            return False, clean(str(exc))[:60]
        ok = bool(getattr(result, "ok", result if isinstance(result, bool) else True))
        return ok, clean(str(getattr(result, "reason", "") or getattr(result, "detail", "")))

    def action_restore(self) -> None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        info = self.backups.get(key or "")
        if info is None:
            return
        env_name = str(getattr(info, "env", "") or "")
        if not env_name:
            self.notify("this backup does not say its environment", severity="error")
            return
        try:
            env = self.console_app.backend.environment(env_name)
        except Exception as exc:
            self.notify(clean(str(exc)), severity="error")
            return
        created = _created(info)
        age = duration(self.console_app.clock() - created) if created else "unknown age"
        plan = PlanView(
            env=env_name,
            confirm="type-name" if env.confirm == "none" else env.confirm,
            target_version=clean(str(getattr(info, "service_version", "") or "the backup's")),
            restore_database=True,
            backup_line=(
                f"{clean(info.path.name)} · sha256 {clean(str(info.sha256))[:16]}… · {age} old · "
                + self.verified.get(key or "", "… still being verified")
                + " (the restore verifies it again before touching the database)"
            ),
            discards=f"every write since the backup ({age})",
            engine_plan="",
            summary=f"restore {env_name}'s database from {clean(info.path.name)} and return "
            "the service to the version it ran then",
        )

        def answered(reason: str | None) -> None:
            if reason:
                self.console_app.restore_backup(env_name, Path(info.path), reason)

        self.app.push_screen(ConfirmRollbackScreen(plan, title="Restore from backup"), answered)

    @on(DataTable.RowSelected)
    def _selected(self) -> None:
        self.action_restore()
