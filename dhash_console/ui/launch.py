"""Open the operator console. Textual is imported only here, when the console starts."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dhash_console.commands.context import CommandContext


def run_console(ctx: CommandContext) -> int:
    import sys

    print(
        "The operator console (TUI) is not in this release yet. Use a command, for example:\n"
        "  dhash-console demo --scenario bad-release --no-ui\n"
        "  dhash-console deploy --env local --version 1.1.0 --no-ui\n"
        "See dhash-console --help.",
        file=sys.stderr,
    )
    return 2
