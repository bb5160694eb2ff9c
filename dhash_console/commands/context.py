"""What every command receives: where the config and state live, and how to print."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console

    from dhash_console.config import Config, ResolvedEnvironment


@dataclass
class CommandContext:
    config_path: Path
    state_dir: Path
    json: bool = False
    no_ui: bool = True
    theme: str | None = None  # the console's, from --theme
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)

    @cached_property
    def config(self) -> Config:
        """The config, loaded and validated once (raises ConfigError, exit 2)."""
        from dhash_console.config import load_config

        return load_config(self.config_path)

    def environment(self, name: str) -> ResolvedEnvironment:
        from dhash_console.config import resolve_environment

        return resolve_environment(
            self.config,
            name,
            config_dir=self.config_path.resolve().parent,
            state_dir=self.state_dir,
        )

    @property
    def history_path(self) -> Path:
        return self.state_dir / "history.sqlite3"

    @cached_property
    def console(self) -> Console:
        """Human text. With --json it goes to stderr so stdout stays JSON lines.

        markup=False and highlight=False: what we print may hold untrusted text.
        """
        from rich.console import Console

        target = self.stderr if self.json else self.stdout
        return Console(file=target, markup=False, highlight=False, emoji=False, soft_wrap=True)

    def emit_json(self, obj: Any) -> None:
        """One JSON object on one line of stdout."""
        import json

        self.stdout.write(json.dumps(obj, default=str, separators=(",", ":")) + "\n")
        self.stdout.flush()
