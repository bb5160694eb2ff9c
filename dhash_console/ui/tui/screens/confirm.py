"""A plain yes/no confirmation for the lesser destructive acts (abort, quit while paused).

Focus starts on Cancel, Escape cancels, Enter on Cancel never confirms. With `ask_reason`
the answer is the reason typed (confirm stays disabled until there is one); else "yes".
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static


class ConfirmScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    AUTO_FOCUS = "#cancel"

    def __init__(self, title: str, message: str, confirm_label: str, ask_reason: bool) -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.confirm_label = confirm_label
        self.ask_reason = ask_reason

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.title_text, classes="dialog-title", markup=False)
            yield Static(self.message, markup=False, classes="plan")
            if self.ask_reason:
                yield Input(placeholder="reason", id="reason")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(
                    self.confirm_label, id="confirm", variant="error", disabled=self.ask_reason
                )

    @on(Input.Changed)
    def _check(self, event: Input.Changed) -> None:
        self.query_one("#confirm", Button).disabled = not event.value.strip()

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        event.stop()
        self.focus_next()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        if self.ask_reason:
            reason = self.query_one("#reason", Input).value.strip()
            if reason:
                self.dismiss(reason)
        else:
            self.dismiss("yes")
