"""The confirm-to-rollback panel: the plan in full, a reason, and for some environments
the environment's name typed out. Focus starts on Cancel; Escape cancels; Enter on Cancel
never confirms.

Without `on_confirm` it dismisses with the reason, or None (the Backups screen's restore
starts its own engine process). With `on_confirm` it calls it with the reason and stays
open in a progress state: the request written, the engine's acknowledgement and its
latency, the rollback starting and finishing; then Close. Escape closes it at any time:
the rollback goes on without the panel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from dhash_console.events import ControlAcknowledged
from dhash_console.textsafe import clean
from dhash_console.ui.tui.format import clock
from dhash_console.ui.tui.rollback_plan import PlanView
from dhash_console.ui.tui.state import RolloutState


class ConfirmRollbackScreen(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    AUTO_FOCUS = "#cancel"

    def __init__(
        self,
        plan: PlanView,
        *,
        title: str = "Roll back",
        on_confirm: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self.plan = plan
        self.title_text = title
        self.on_confirm = on_confirm
        self.in_progress = False
        self._steps: dict[str, Text] = {}  # step -> its line, in the order they happened

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
            yield Static("", id="progress", classes="plan progress", markup=False)
            with Horizontal(classes="buttons progress"):
                yield Button("Close", id="close", variant="primary")

    def on_mount(self) -> None:
        for widget in self.query(".progress"):
            widget.display = False

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
    @on(Button.Pressed, "#close")
    def action_cancel(self) -> None:
        self.dismiss(None)  # in progress too: the rollback goes on, the panel goes

    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        if self.in_progress or not self._ready():
            return
        reason = self.query_one("#reason", Input).value.strip()
        if self.on_confirm is None:
            self.dismiss(reason)
            return
        self._to_progress(reason)
        self.on_confirm(reason)

    # -- progress ---------------------------------------------------------------------------------

    def _to_progress(self, reason: str) -> None:
        self.in_progress = True
        for widget in self.query("Vertical > *"):
            if widget.id not in ("progress",) and "dialog-title" not in widget.classes:
                widget.display = False
        for widget in self.query(".progress"):
            widget.display = True
        self.query_one(".dialog-title", Static).update(
            f"{self.title_text}: {self.plan.env} — to {self.plan.target_version}"
        )
        self._step("asked", f"confirmed: {reason}")
        self._step("sent", "sending the request to the engine…", waiting=True)
        self.query_one("#close", Button).focus()

    def _step(self, key: str, text: str, *, waiting: bool = False, bad: bool = False) -> None:
        mark = "…" if waiting else ("✖" if bad else "✔")
        line = Text(f"{mark} {clean(text)}", style="bold" if bad else "")
        self._steps[key] = line
        self.query_one("#progress", Static).update(Text("\n").join(self._steps.values()))

    def request_sent(self, request_id: int, took_ms: float) -> None:
        """The control request is in the journal: the engine picks it up within 50 ms."""
        self._step("sent", f"request #{request_id} written to the journal ({took_ms:.0f} ms)")
        if "ack" not in self._steps:
            self._step("ack", "waiting for the engine to acknowledge…", waiting=True)

    def request_failed(self, why: str) -> None:
        self._step("sent", f"the request could not be written: {why}", bad=True)

    def acknowledged(self, ack: ControlAcknowledged, took_ms: float) -> None:
        self._step(
            "ack",
            f"engine acknowledged request #{ack.request_id}: {ack.result} "
            f"({took_ms:.0f} ms after confirming)",
        )
        if "started" not in self._steps:
            self._step("started", "waiting for the rollback phase to start…", waiting=True)

    def show_state(self, state: RolloutState) -> None:
        """Follow the rollout's rollback phase (called with each batch of events)."""
        if not self.in_progress:
            return
        started, finished = state.rollback_started, state.rollback_finished
        if started is not None and not self._shown("started"):
            self._step(
                "started",
                f"rollback started at {clock(started.at)} UTC: "
                f"{started.from_version or '?'} → {started.to_version}",
            )
            if finished is None:
                self._step("finished", "rolling back…", waiting=True)
        if finished is not None and not self._shown("finished"):
            word = "healthy" if finished.healthy else "NOT healthy"
            detail = f" — {finished.detail}" if finished.detail else ""
            self._step(
                "finished",
                f"rollback finished at {clock(finished.at)} UTC: {finished.version or '?'} "
                f"{word}{detail}",
                bad=not (finished.ok and finished.healthy),
            )
            self.query_one("#close", Button).label = "Close (done)"
        if state.finished is not None and not self._shown("ended"):
            self._step(
                "ended",
                f"rollout ended: {state.finished.outcome} (exit {state.finished.exit_code})",
                bad=state.finished.exit_code not in (0, 1),
            )

    def _shown(self, key: str) -> bool:
        """Whether `key` has its final line (not a '…' waiting line)."""
        line = self._steps.get(key)
        return line is not None and not line.plain.startswith("…")
