"""Payload builders: each channel's shape and limits, truncation with the marker."""

from __future__ import annotations

from dhash_console.ops.notify.discord import (
    CONTENT_MAX,
    DESCRIPTION_MAX,
    FIELD_VALUE_MAX,
    FIELDS_MAX,
    TITLE_MAX,
    TOTAL_MAX,
    discord_payload,
    embed_size,
)
from dhash_console.ops.notify.message import Notification
from dhash_console.ops.notify.slack import slack_payload
from dhash_console.ops.notify.teams import teams_payload
from dhash_console.ops.notify.truncate import MARKER, truncate


def huge(kind: str = "gate_failed") -> Notification:
    return Notification(
        kind=kind,
        env="production",
        title="T" * 5000,
        text="x" * 20_000,
        facts=tuple((f"label {i} " + "n" * 300, "v" * 3000) for i in range(40)),
        severity="danger",
        rollout_id="r-1",
    )


def test_truncate_keeps_the_limit_and_ends_with_the_marker() -> None:
    assert truncate("short", 10) == "short"
    cut = truncate("a" * 100, 20)
    assert len(cut) == 20 and cut.endswith(MARKER)
    assert truncate("abcdef", 3) == MARKER[:3]


def test_discord_payload_fits_every_limit() -> None:
    payload = discord_payload(huge())
    assert len(payload["content"]) <= CONTENT_MAX and payload["content"].endswith(MARKER)
    assert len(payload["embeds"]) == 1
    embed = payload["embeds"][0]
    assert len(embed["title"]) == TITLE_MAX and embed["title"].endswith(MARKER)
    assert len(embed["description"]) <= DESCRIPTION_MAX
    assert embed["description"].endswith(MARKER)
    assert len(embed["fields"]) <= FIELDS_MAX
    assert all(
        len(f["value"]) <= FIELD_VALUE_MAX and len(f["name"]) <= 256 for f in embed["fields"]
    )
    assert embed_size(embed) <= TOTAL_MAX
    assert len(embed["footer"]["text"]) <= 2048


def test_discord_payload_of_a_small_message_is_untouched() -> None:
    note = Notification(
        kind="rollout_started",
        env="staging",
        title="staging: go",
        text="started",
        facts=(("Environment", "staging"),),
    )
    embed = discord_payload(note)["embeds"][0]
    assert (embed["title"], embed["description"]) == ("staging: go", "started")
    assert embed["fields"] == [{"name": "Environment", "value": "staging", "inline": True}]
    assert MARKER not in str(embed)


def test_slack_payload_fits_block_kit_limits_and_escapes_the_fallback() -> None:
    payload = slack_payload(huge())
    header, section, fields, _context = payload["blocks"]
    assert len(header["text"]["text"]) == 150 and header["text"]["type"] == "plain_text"
    assert len(section["text"]["text"]) == 3000
    assert len(fields["fields"]) == 10 and all(len(f["text"]) <= 2000 for f in fields["fields"])
    note = Notification(kind="test", env="x", title="<!channel> & <https://evil|click>", text="")
    assert slack_payload(note)["text"].startswith(
        ":information_source: &lt;!channel&gt; &amp; &lt;https://evil|click&gt;"
    )


def test_teams_payload_is_an_adaptive_card_in_the_workflows_envelope() -> None:
    payload = teams_payload(huge())
    assert payload["type"] == "message"
    [attachment] = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert [b["type"] for b in card["body"]] == ["TextBlock", "TextBlock", "FactSet"]
    assert card["body"][0]["color"] == "Attention"
    assert len(card["body"][1]["text"]) <= 8000
