"""Open the operator console. Textual is imported only here, when the console starts."""

from __future__ import annotations

import gc
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dhash_console.commands.context import CommandContext

THEME_ENV = "DHASH_CONSOLE_THEME"


def choose_theme(flag: str | None, env_value: str | None, config_theme: str | None) -> str:
    """--theme first, then $DHASH_CONSOLE_THEME, then the config's console.theme, then dark."""
    for choice in (flag, env_value, config_theme):
        if choice and choice.strip():
            return choice.strip()
    return "dark"


def run_console(ctx: CommandContext, theme: str | None = None) -> int:
    """Run the TUI until the operator quits; rollouts it launched run on."""
    # Start-up builds objects that live as long as the console (Textual, Rich, the models):
    # collecting while it does only sweeps them again and again (about 80 ms of first paint).
    # The app freezes them and turns collection back on after its first paint.
    gc.disable()
    from dhash_console.errors import ConsoleError
    from dhash_console.ui.tui.app import ConsoleApp

    config = None
    config_theme = None
    try:
        config = ctx.config
        config_theme = config.console.theme
    except ConsoleError:
        pass  # the console opens anyway and says why launching is off
    flag = theme if theme is not None else getattr(ctx, "theme", None)
    app = ConsoleApp(
        config_path=ctx.config_path,
        state_dir=ctx.state_dir,
        config=config,
        theme=choose_theme(flag, os.environ.get(THEME_ENV), config_theme),
    )
    result = app.run()
    return int(result or 0)
