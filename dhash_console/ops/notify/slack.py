"""Slack incoming webhook: Block Kit blocks and a plain `text` fallback.

All our text goes into `plain_text` objects, so a reason or a log line can never
mention @channel or forge a link; the fallback `text` is mrkdwn, so it is escaped.
Slack allows about one message a second per webhook: the channel paces itself.
"""

from __future__ import annotations

from typing import Any

from dhash_console.ops.notify.http import HttpChannel
from dhash_console.ops.notify.message import Item, Notification
from dhash_console.ops.notify.truncate import truncate

HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
FIELDS_MAX = 10
FALLBACK_MAX = 4000
SLACK_MIN_INTERVAL = 1.0
EMOJI = {
    "info": ":information_source:",
    "good": ":white_check_mark:",
    "warning": ":warning:",
    "danger": ":rotating_light:",
}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text, limit), "emoji": False}


def slack_payload(note: Notification) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [{"type": "header", "text": _plain(note.title, HEADER_MAX)}]
    if note.text:
        blocks.append({"type": "section", "text": _plain(note.text, SECTION_MAX)})
    if note.facts:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    _plain(f"{label}: {value}", FIELD_MAX)
                    for label, value in note.facts[:FIELDS_MAX]
                ],
            }
        )
    context = f"{note.kind} · rollout {note.rollout_id}" if note.rollout_id else note.kind
    blocks.append({"type": "context", "elements": [_plain(context, SECTION_MAX)]})
    fallback = f"{EMOJI[note.severity]} {note.title}" + (f": {note.text}" if note.text else "")
    return {"text": truncate(_escape(fallback), FALLBACK_MAX), "blocks": blocks}


class SlackChannel(HttpChannel):
    name = "slack"

    def payload(self, item: Item) -> dict[str, Any]:
        assert item.notification is not None  # wants() only takes notifications
        return slack_payload(item.notification)
