"""Discord webhook: one embed, within Discord's limits, and its rate limits honoured.

Limits (Discord's "Embed Limits"): content 2,000 characters; up to 10 embeds; title 256,
description 4,096, 25 fields of name 256 / value 1,024, footer 2,048; 6,000 characters
across all embeds. Whatever is cut ends with the marker.

A 429 says how long to wait in several places. Its JSON body's `retry_after` is seconds
(a float) from API v8 on (we post to v10 when the URL names a version); in the
unversioned and older APIs it was milliseconds. The `Retry-After` header is whole
seconds, `X-RateLimit-Reset-After` fractional seconds. A successful answer with
`X-RateLimit-Remaining: 0` means the bucket is empty until `X-RateLimit-Reset-After`.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from dhash_console.ops.notify.http import HttpChannel, _seconds
from dhash_console.ops.notify.message import Item, Notification
from dhash_console.ops.notify.truncate import truncate

CONTENT_MAX = 2000
EMBEDS_MAX = 10
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
TOTAL_MAX = 6000
COLOURS = {"info": 0x3B82F6, "good": 0x22C55E, "warning": 0xF59E0B, "danger": 0xEF4444}
_VERSION = re.compile(r"/api/v(\d+)/")


def embed_size(embed: dict[str, Any]) -> int:
    """Characters that count towards the 6,000 limit."""
    size = len(embed.get("title", "")) + len(embed.get("description", ""))
    size += len(embed.get("footer", {}).get("text", ""))
    size += len(embed.get("author", {}).get("name", ""))
    for field in embed.get("fields", []):
        size += len(field["name"]) + len(field["value"])
    return size


def discord_payload(note: Notification) -> dict[str, Any]:
    fields = [
        {
            "name": truncate(label, FIELD_NAME_MAX) or "-",
            "value": truncate(value, FIELD_VALUE_MAX) or "-",
            "inline": len(value) <= 40,
        }
        for label, value in note.facts[:FIELDS_MAX]
    ]
    embed: dict[str, Any] = {
        "title": truncate(note.title, TITLE_MAX),
        "description": truncate(note.text, DESCRIPTION_MAX),
        "color": COLOURS[note.severity],
        "fields": fields,
        "footer": {"text": truncate(f"{note.kind} · rollout {note.rollout_id}", FOOTER_MAX)},
    }
    _fit(embed)
    return {
        "content": truncate(note.title, CONTENT_MAX),
        "embeds": [embed][:EMBEDS_MAX],
        "allowed_mentions": {"parse": []},  # a reason saying @everyone pings no one
    }


def _fit(embed: dict[str, Any]) -> None:
    """Cut the description, then drop trailing fields, until the embed is within 6,000."""
    excess = embed_size(embed) - TOTAL_MAX
    if excess > 0:
        description = embed["description"]
        keep = max(len(description) - excess, min(len(description), 200))
        embed["description"] = truncate(description, keep)
    while embed_size(embed) > TOTAL_MAX and embed["fields"]:
        embed["fields"].pop()


def api_version(url: str) -> int | None:
    match = _VERSION.search(url)
    return int(match.group(1)) if match else None


class DiscordChannel(HttpChannel):
    name = "discord"

    def payload(self, item: Item) -> dict[str, Any]:
        assert item.notification is not None
        return discord_payload(item.notification)

    def retry_after(self, response: httpx.Response) -> float | None:
        body_wait = self._body_retry_after(response)
        if body_wait is not None:
            return body_wait
        reset_after = _seconds(response.headers.get("x-ratelimit-reset-after"))
        if reset_after is not None:
            return reset_after
        return _seconds(response.headers.get("retry-after"))

    def _body_retry_after(self, response: httpx.Response) -> float | None:
        try:
            body = json.loads(response.text)
            value = float(body["retry_after"])
        except (ValueError, KeyError, TypeError):
            return None
        version = api_version(self.url)
        if version is not None and version >= 8:
            return max(0.0, value)
        return max(0.0, value / 1000.0)  # milliseconds before API v8

    def after_success(self, response: httpx.Response) -> None:
        if response.headers.get("x-ratelimit-remaining") == "0":
            reset_after = _seconds(response.headers.get("x-ratelimit-reset-after"))
            if reset_after:
                self.pacer.hold(reset_after)
