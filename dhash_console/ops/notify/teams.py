"""Microsoft Teams through a Workflows webhook: an Adaptive Card 1.4 in a message envelope.

The Office 365 connectors' MessageCard is retired; Workflows ("Post to a channel when a
webhook request is received") accept `{"type": "message", "attachments": [...]}` with an
Adaptive Card attachment.
"""

from __future__ import annotations

from typing import Any

from dhash_console.ops.notify.http import HttpChannel
from dhash_console.ops.notify.message import Item, Notification
from dhash_console.ops.notify.truncate import truncate

TEXT_MAX = 8000  # Teams messages are limited to about 28 KB in all
COLOURS = {"info": "Accent", "good": "Good", "warning": "Warning", "danger": "Attention"}


def teams_payload(note: Notification) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": truncate(note.title, 500),
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            "color": COLOURS[note.severity],
        },
    ]
    if note.text:
        body.append({"type": "TextBlock", "text": truncate(note.text, TEXT_MAX), "wrap": True})
    if note.facts:
        body.append(
            {
                "type": "FactSet",
                "facts": [
                    {"title": truncate(label, 200), "value": truncate(value, 1000)}
                    for label, value in note.facts
                ],
            }
        )
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "msteams": {"width": "Full"},
    }
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


class TeamsChannel(HttpChannel):
    name = "teams"

    def payload(self, item: Item) -> dict[str, Any]:
        assert item.notification is not None
        return teams_payload(item.notification)
