"""What a channel is handed: a notification built from the rollout's events, and its event."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dhash_console.events import Event

Severity = Literal["info", "good", "warning", "danger"]


@dataclass(frozen=True)
class Notification:
    """One message, already rendered: a title, a text that says why, and labelled facts."""

    kind: str
    env: str
    title: str
    text: str
    facts: tuple[tuple[str, str], ...] = ()
    severity: Severity = "info"
    rollout_id: str = ""

    def plain(self) -> str:
        """Title, text and facts as plain lines (email, console, fallbacks)."""
        lines = [self.title, "", self.text] if self.text else [self.title]
        if self.facts:
            lines.append("")
            lines += [f"{label}: {value}" for label, value in self.facts]
        return "\n".join(lines)

    def summary(self, limit: int = 160) -> str:
        """One line for the history's record of a delivery."""
        line = f"{self.kind}: {self.title}"
        return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass(frozen=True)
class Item:
    """One queued send: the event, and its notification when the event maps to a kind."""

    event: Event | None
    notification: Notification | None = None
    key: str = field(default="")

    def __post_init__(self) -> None:
        if not self.key:
            kind = self.notification.kind if self.notification else None
            object.__setattr__(self, "key", kind or (self.event.type if self.event else "test"))

    def summary(self) -> str:
        if self.notification is not None:
            return self.notification.summary()
        if self.event is not None:
            return f"{self.event.type} #{self.event.seq} of rollout {self.event.rollout_id}"
        return self.key
