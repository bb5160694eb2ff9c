"""Choose how fast a past rollout replays on the dashboard."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

SPEEDS: tuple[tuple[str, float], ...] = (
    ("1× — as it happened", 1.0),
    ("10×", 10.0),
    ("60× — a minute a second", 60.0),
    ("600×", 600.0),
    ("at once — the end state", 0.0),
)


class ReplaySpeedScreen(ModalScreen[float | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, rollout_id: str) -> None:
        super().__init__()
        self.rollout_id = rollout_id

    def compose(self) -> ComposeResult:
        with Vertical(classes="form"):
            yield Static(f"Replay {self.rollout_id} at:", classes="dialog-title", markup=False)
            yield OptionList(*(Option(label, id=str(i)) for i, (label, _) in enumerate(SPEEDS)))

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(SPEEDS[event.option_index][1])

    def action_cancel(self) -> None:
        self.dismiss(None)
