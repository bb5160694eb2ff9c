"""Where the config and the state live by default (CLI.md). No heavy imports: `--help` and
`history` start from here."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_CONFIG = "quality-gates-config.json"
DEFAULT_STATE_DIR = ".dhash-console"


def default_config_path() -> Path:
    return Path(os.environ.get("DHASH_CONSOLE_CONFIG", DEFAULT_CONFIG))


def default_state_dir() -> Path:
    return Path(os.environ.get("DHASH_CONSOLE_STATE_DIR", DEFAULT_STATE_DIR))
