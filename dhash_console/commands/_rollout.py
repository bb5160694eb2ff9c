"""What deploy, monitor and demo share: build the request, run it headless, print the end."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dhash_console.commands.context import CommandContext
    from dhash_console.engine.rollout import RolloutEngine, RolloutRequest


def via() -> str:
    """How the rollout was started: the console sets DHASH_CONSOLE_VIA=tui for its engines."""
    if os.environ.get("DHASH_CONSOLE_VIA"):
        return os.environ["DHASH_CONSOLE_VIA"]
    return "ci" if (os.environ.get("CI") or "").lower() not in ("", "0", "false", "no") else "cli"


def confirm_or_refuse(
    ctx: CommandContext, env_name: str, confirm: str, yes: bool, what: str
) -> None:
    """CLI.md: without a terminal and without --yes, a command that would ask exits 2."""
    import sys

    from dhash_console.errors import UsageError

    if confirm == "none" or yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            f"--yes: {what} on {env_name} needs confirmation, and there is no terminal to ask"
        )
    prompt = (
        f"type the environment's name ({env_name}) to {what}: "
        if confirm == "type-name"
        else f"{what} on {env_name}? [y/N] "
    )
    answer = input(prompt).strip()
    expected = env_name if confirm == "type-name" else "y"
    if answer.lower() != expected.lower():
        raise UsageError(f"not confirmed: {what} on {env_name} was not started")


def run_headless(
    ctx: CommandContext,
    request: RolloutRequest,
    *,
    before: Callable[[], Awaitable[None]] | None = None,
    after: Callable[[], Awaitable[None]] | None = None,
    on_engine: Callable[[RolloutEngine], Any] | None = None,
) -> int:
    """Run one rollout with the headless face; return its exit code (CLI.md)."""
    from dhash_console.engine.session import SessionOptions, cancel_on_sigterm, run_rollout
    from dhash_console.ui.headless import HeadlessRenderer

    renderer = HeadlessRenderer(ctx.console, json_lines=ctx.json, stdout=ctx.stdout)
    options = SessionOptions(
        faces=[renderer],
        notifications=None if request.dry_run else ctx.config.notifications,
        console_notice=lambda text: ctx.console.print(f"notify: {text}"),
        on_engine=on_engine,
    )

    async def main() -> int:
        task = asyncio.current_task()
        assert task is not None
        cancel_on_sigterm(task)
        try:
            if before is not None:
                await before()
            result, summary = await run_rollout(request, options)
        finally:
            if after is not None:
                await asyncio.shield(after())
        renderer.summary(summary)
        return result.exit_code

    try:
        return asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        ctx.console.print(
            "interrupted: the journal says where it stopped; "
            "`monitor --resume` or `rollback` can continue"
        )
        return 130
