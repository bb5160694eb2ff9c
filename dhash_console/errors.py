"""One error family: every failure the engine or ops raise knows its exit code.

Only `cli.py` turns these into exit codes and messages (CLI.md, "Exit codes").
"""

from __future__ import annotations


class ConsoleError(Exception):
    """Base of every expected failure. `exit_code` follows CLI.md."""

    exit_code: int = 1


class OperationFailed(ConsoleError):
    """The operation ran, its checks failed, and the environment is in a known good state."""

    exit_code = 1


class FileInUse(OperationFailed):
    """A file another process holds open could not be replaced or removed (Windows); nothing
    was changed by the refused call. The message names the file."""


class UsageError(ConsoleError):
    """Bad usage: nothing was changed. The message names the flag."""

    exit_code = 2


class ConfigError(ConsoleError):
    """Invalid config: nothing was changed. Each problem names its field."""

    exit_code = 2

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = problems
        self.source = source
        super().__init__(f"{source}: " + "; ".join(problems))


class NeedsHuman(ConsoleError):
    """A rollback or restore failed, or the environment's state is unknown."""

    exit_code = 3


class LockHeld(ConsoleError):
    """Another operation holds this environment's lock."""

    exit_code = 4


class Interrupted(ConsoleError):
    """Interrupted by the operator; what happened is journaled."""

    exit_code = 130
