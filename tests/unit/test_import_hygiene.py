"""The engine, ops, store and headless paths never import Textual (STYLE.md, like Harlequin)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CORE_MODULES = [
    "dhash_console.cli",
    "dhash_console.config",
    "dhash_console.events",
    "dhash_console.engine.rollout",
    "dhash_console.engine.session",
    "dhash_console.engine.monitor",
    "dhash_console.ops.probes",
    "dhash_console.ops.deploy",
    "dhash_console.ops.backup",
    "dhash_console.ops.migrate",
    "dhash_console.store.history",
    "dhash_console.ui.headless",
    "dhash_console.localenv.app",
]


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_does_not_import_textual(module: str) -> None:
    code = f"import sys, {module}; sys.exit(1 if 'textual' in sys.modules else 0)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, f"{module} imports textual\n{result.stderr}"


def test_help_does_not_import_textual_or_the_engine() -> None:
    code = (
        "import sys\n"
        "from dhash_console.cli import build_parser\n"
        "build_parser()\n"
        "heavy = [m for m in ('textual', 'httpx', 'aiosqlite', 'dhash_console.engine.rollout')"
        " if m in sys.modules]\n"
        "print(', '.join(heavy), file=sys.stderr)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_command_help_has_examples() -> None:
    from dhash_console.cli import COMMAND_MODULES

    for name in COMMAND_MODULES:
        command = name.replace("_", "-")
        result = subprocess.run(
            [sys.executable, "-m", "dhash_console", command, "--help"],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        assert "examples:" in result.stdout, command
