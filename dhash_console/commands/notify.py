"""`dhash-console notify --test --message TEXT [--channel NAME]`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dhash_console.commands.context import CommandContext

CHANNELS = ("console", "slack", "discord", "teams", "webhook", "email")

EXAMPLES = """\
examples:
  SLACK_WEBHOOK_URL=https://hooks.slack.com/services/... \\
    dhash-console notify --test --message "hello from staging"
  dhash-console notify --test --message "smtp check" --channel email
  dhash-console notify --test --message "ci check" --json

Every channel the config's `notifications` section configures is tried. One whose
secret variable is unset is reported "not configured" and fails the command only when
named with --channel. Exit 0 when every attempted send succeeded, 1 otherwise.
"""


def register(sub: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        "notify",
        help="send a test notification through the configured channels",
        description="Send a test message through every configured notification channel "
        "(Slack, Discord, Teams, email, the JSON webhook, the console), or one, and report "
        "each channel's result. Webhook URLs and passwords are never printed.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--test", action="store_true", required=True, help="send a test message (the only mode)"
    )
    parser.add_argument("--message", required=True, help="the text to send")
    parser.add_argument("--channel", choices=CHANNELS, help="only this channel")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace, ctx: CommandContext) -> int:
    import asyncio
    import os

    from dhash_console.errors import UsageError
    from dhash_console.ops.notify import send_test
    from dhash_console.textsafe import clean

    config = ctx.config.notifications
    shown: list[str] = []

    def show(line: str) -> None:
        shown.append(line)
        if not ctx.json:
            ctx.console.print(f"console: {clean(line)}")

    try:
        results = asyncio.run(
            send_test(config, os.environ, args.message, args.channel, console=show)
        )
    except ValueError as exc:
        raise UsageError(f"--channel: {exc}") from None
    if not results:
        raise UsageError("no notification channel is configured (notifications in the config)")
    failed = [r for r in results if r.counts_as_failure]
    if ctx.json:
        for r in results:
            ctx.emit_json(
                {
                    "type": "notify_result",
                    "channel": r.channel,
                    "status": r.status,
                    "ok": r.ok,
                    "attempts": r.attempts,
                    "detail": r.detail,
                }
            )
        ctx.emit_json(
            {
                "type": "summary",
                "ok": not failed,
                "sent": sum(r.status == "sent" for r in results),
                "failed": len(failed),
                "exit_code": 1 if failed else 0,
            }
        )
    else:
        for r in results:
            mark = {"sent": "✔ sent", "failed": "✖ FAILED", "not_configured": "- skipped"}
            ctx.console.print(f"{mark[r.status]:<11} {r.channel:<8} {clean(r.detail)}")
    return 1 if failed else 0
