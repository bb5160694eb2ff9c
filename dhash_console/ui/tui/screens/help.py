"""Every key and what it does, k9s-style: one screen, grouped by what you are doing."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

SECTIONS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Watching a rollout (dashboard)",
        (
            ("enter", "on a gate: its samples and, in words, why it passed or failed"),
            ("r", "roll back: shows the plan, asks a reason (and the env name where configured)"),
            ("p", "pause / resume the monitoring window"),
            ("x", "abort without rolling back (asks first)"),
            ("/", "filter the log pane (Escape clears)"),
            ("f", "follow new log lines on / off"),
        ),
    ),
    (
        "Going places",
        (
            ("n", "launch a rollout: its own engine process; the console attaches"),
            ("a", "attach to a rollout in progress (also offered at start)"),
            ("h", "history: Enter opens a rollout, R replays it on the dashboard"),
            ("b", "backups and their verification; Enter restores (asks first)"),
            ("m", "migrations: applied, pending, drifted"),
            ("escape", "back"),
        ),
    ),
    (
        "Console",
        (
            ("ctrl+p", "command palette: every action by name"),
            ("t", "next theme: dark, light, high-contrast"),
            ("?", "this help"),
            ("q", "quit: rollouts keep running, guarded by their engines"),
        ),
    ),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close"),
        Binding("q", "dismiss", "Close"),
    ]

    def compose(self) -> ComposeResult:
        text = Text()
        for title, keys in SECTIONS:
            text.append(f"{title}\n", style="bold underline")
            for key, what in keys:
                text.append(f"  {key:<8}", style="bold")
                text.append(f"{what}\n")
            text.append("\n")
        text.append(
            "The console never owns a rollout: quitting or a crash leaves it running and "
            "guarded. Statuses read as symbol + word: ✔ pass  ✖ FAIL  ? inconclusive  "
            "‖ PAUSED  ↶ rolling back.",
            style="italic",
        )
        with VerticalScroll(classes="form"):
            yield Static(text, markup=False)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
