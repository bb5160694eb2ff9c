"""Start a rollout as its own engine process: the console never owns a rollout.

The child is the same program, headless, detached (own session / process group) with its
output in `<state_dir>/logs/engine-<timestamp>.out`, so that quitting or crashing the
console leaves the rollout running and guarded. No Textual here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LaunchRequest:
    env: str
    version: str
    dry_run: bool = False
    duration_minutes: float | None = None


def engine_argv(config_path: Path, state_dir: Path, request: LaunchRequest) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "dhash_console",
        "--config",
        str(config_path),
        "--state-dir",
        str(state_dir),
        "--no-ui",
        "deploy",
        "--env",
        request.env,
        "--version",
        request.version,
        "--yes",
    ]
    if request.dry_run:
        argv.append("--dry-run")
    if request.duration_minutes is not None:
        argv += ["--duration-minutes", f"{request.duration_minutes:g}"]
    return argv


def restore_argv(
    config_path: Path, state_dir: Path, env: str, backup: Path, reason: str
) -> list[str]:
    """A manual rollback to a chosen backup (the Backups screen's restore)."""
    return [
        sys.executable,
        "-m",
        "dhash_console",
        "--config",
        str(config_path),
        "--state-dir",
        str(state_dir),
        "--no-ui",
        "rollback",
        "--env",
        env,
        "--reason",
        reason,
        "--backup",
        str(backup),
        "--yes",
    ]


@dataclass
class EngineProcess:
    pid: int
    output: Path
    popen: subprocess.Popen[bytes]

    def exited(self) -> int | None:
        """The exit code once the process ended (reaps it), else None."""
        return self.popen.poll()

    def output_tail(self, lines: int = 8) -> str:
        try:
            text = self.output.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def start_engine(argv: list[str], state_dir: Path) -> EngineProcess:
    logs = state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    output = logs / f"engine-{stamp}-{os.getpid()}-{time.monotonic_ns() % 100000}.out"
    env = dict(os.environ, DHASH_CONSOLE_VIA="tui")
    env.pop("CI", None)  # the engine says via=tui, not ci, whatever the console's shell had
    kwargs: dict[str, object] = {}
    if os.name == "posix":
        kwargs["start_new_session"] = True  # no SIGINT/SIGHUP from the console's terminal
    else:
        kwargs["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
    with output.open("wb") as sink:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            close_fds=True,
            **kwargs,  # type: ignore[call-overload]
        )
    return EngineProcess(pid=popen.pid, output=output, popen=popen)
