"""The console channel: one line for the headless output or the TUI's notification list."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dhash_console.ops.notify.channel import Channel
from dhash_console.ops.notify.delivery import Attempt, RetryPolicy
from dhash_console.ops.notify.message import Item
from dhash_console.redact import redact
from dhash_console.textsafe import clean


def console_line(item: Item) -> str:
    assert item.notification is not None
    note = item.notification
    line = f"{note.title} — {note.text}" if note.text else note.title
    return clean(" ".join(line.split()))


class ConsoleChannel(Channel):
    """Calls the face's callback, and journals the line: a console in another process (the
    TUI watching an engine it launched) shows the notifications from the journal."""

    name = "console"

    def __init__(
        self,
        show: Callable[[str], None],
        *,
        events: Sequence[str] | None,
        clock: Callable[[], float],
    ) -> None:
        super().__init__(
            events=events,
            environments=None,
            policy=RetryPolicy(retries=0, backoff_s=0.0, max_wait_s=0.0),
            min_interval=0.0,
            clock=clock,
        )
        self.show = show

    async def attempt(self, item: Item) -> Attempt:
        # Every channel's secrets are masked here too (the notifier fills them in).
        line = redact(console_line(item), self.secrets)
        self.show(line)
        return Attempt(True, line)
