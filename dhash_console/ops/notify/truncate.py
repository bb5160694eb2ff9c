"""Cutting text to a channel's limits, saying so with a marker."""

from __future__ import annotations

MARKER = "…(truncated)"


def truncate(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else its start and the marker, `limit` long."""
    if len(text) <= limit:
        return text
    if limit <= len(MARKER):
        return MARKER[:limit]
    return text[: limit - len(MARKER)] + MARKER
