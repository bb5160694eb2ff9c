"""A generic JSON webhook: every event as the journal has it, for teams that route elsewhere.

Routing: `events` may name notification kinds, event types (`gate_sample`, ...) or `*`;
by default every event goes. Our own `notification_sent` records never go (that would
loop). Successful sends of events that are not notifications are not recorded in the
history one by one: that would double the journal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dhash_console.ops.notify.http import HttpChannel
from dhash_console.ops.notify.message import Item


class WebhookChannel(HttpChannel):
    name = "webhook"

    def wants(self, item: Item, env: str, default_events: Sequence[str]) -> bool:
        if self.environments is not None and env not in self.environments:
            return False
        if item.event is None:
            return item.key == "test"  # a held-back gate_failed was sent raw already
        if item.event.type == "notification_sent":
            return False
        if self.events is None or "*" in self.events:
            return True
        return item.event.type in self.events or item.key in self.events

    def payload(self, item: Item) -> dict[str, Any]:
        if item.event is not None:
            return item.event.model_dump(mode="json")
        assert item.notification is not None
        note = item.notification
        return {"type": "test", "title": note.title, "text": note.text}
