"""`notify --test`: one message through every configured channel (or one), each result said."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from dhash_console.config.notifications import NotificationsConfig
from dhash_console.ops.notify.build import build_channels, configured_names
from dhash_console.ops.notify.facts import build_notification
from dhash_console.ops.notify.message import Item
from dhash_console.ops.notify.templates import Templates
from dhash_console.redact import redact

Status = Literal["sent", "failed", "not_configured"]


@dataclass(frozen=True)
class ChannelResult:
    channel: str
    status: Status
    detail: str
    attempts: int = 0
    counts_as_failure: bool = False

    @property
    def ok(self) -> bool:
        return not self.counts_as_failure


async def send_test(
    config: NotificationsConfig,
    environ: Mapping[str, str],
    message: str,
    channel: str | None,
    *,
    console: Callable[[str], None] | None = None,
) -> list[ChannelResult]:
    """Send `message` through each configured channel; a missing secret fails only if named.

    Raises ValueError if `channel` names a channel the config does not configure.
    """
    names = configured_names(config)
    if channel is not None and channel not in names:
        raise ValueError(
            f"{channel} is not configured in notifications "
            f"(configured: {', '.join(names) or 'none'})"
        )
    built = build_channels(config, environ, console=console, clock=time.monotonic)
    values = {"message": message, "env": "test"}
    note = build_notification("test", values, Templates(config.templates))
    item = Item(None, note)
    results: list[ChannelResult] = []
    for name, why in built.not_configured.items():
        if channel is None or channel == name:
            results.append(
                ChannelResult(name, "not_configured", why, counts_as_failure=channel == name)
            )
    targets = [c for c in built.active if channel is None or c.name == channel]

    async def one(target: object) -> ChannelResult:
        from dhash_console.ops.notify.channel import Channel

        assert isinstance(target, Channel)
        try:
            outcome = await target.deliver(item)
        finally:
            await target.aclose()
        detail = redact(outcome.detail, built.secrets)
        status: Status = "sent" if outcome.ok else "failed"
        return ChannelResult(
            target.name, status, detail, outcome.attempts, counts_as_failure=not outcome.ok
        )

    results += await asyncio.gather(*(one(target) for target in targets))
    order = {name: index for index, name in enumerate(names)}
    return sorted(results, key=lambda r: order.get(r.channel, len(order)))
