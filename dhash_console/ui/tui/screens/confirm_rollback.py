"""The confirm-to-rollback panel: the plan in full, a reason, and for some environments
the environment's name typed out. Focus starts on Cancel; Escape cancels; Enter on Cancel
never confirms. Dismisses with the reason, or None.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from dhash_console.ui.tui.rollback_plan import PlanView


class ConfirmRollbackScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    AUTO_FOCUS = "#cancel"

    def __init__(self, plan: PlanView, *, title: str = "Roll back") -> None:
        super().__init__()
        self.plan = plan
        self.title_text = title

    def compose(self) -> ComposeResult:
        plan = self.plan
        with Vertical(classes="dialog"):
            yield Static(f"{self.title_text}: {plan.env}", classes="dialog-title", markup=False)
            body = Text()
            body.append("return to:  ", style="bold")
            body.append(f"{plan.target_version}\n")
            body.append("database:   ", style="bold")
            body.append(
                ("RESTORED from backup" if plan.restore_database else "kept as it is") + "\n"
            )
            body.append("backup:     ", style="bold")
            body.append(f"{plan.backup_line}\n")
            body.append("discards:   ", style="bold")
            body.append(f"{plan.discards}\n")
            body.append("plan:       ", style="bold")
            body.append(plan.summary)
            if plan.engine_plan and plan.engine_plan != plan.summary:
                body.append("\nengine:     ", style="bold")
                body.append(plan.engine_plan)
            yield Static(body, classes="plan", markup=False)
            yield Label("Reason (journaled, sent with the notifications):")
            yield Input(placeholder="why roll back?", id="reason")
            if plan.confirm == "type-name":
                yield Label(f"Type the environment's name ({plan.env}) to confirm:")
                yield Input(placeholder=plan.env, id="env-name")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel", variant="default")
                yield Button("Roll back now", id="confirm", variant="error", disabled=True)

    @on(Input.Changed)
    def _check(self) -> None:
        self.query_one("#confirm", Button).disabled = not self._ready()

    def _ready(self) -> bool:
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            return False
        if self.plan.confirm == "type-name":
            return self.query_one("#env-name", Input).value.strip() == self.plan.env
        return True

    @on(Input.Submitted)
    def _next_field(self, event: Input.Submitted) -> None:
        # Enter in a field never confirms: it moves on, so a stray Enter cannot roll back.
        event.stop()
        self.focus_next()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        if self._ready():
            self.dismiss(self.query_one("#reason", Input).value.strip())
