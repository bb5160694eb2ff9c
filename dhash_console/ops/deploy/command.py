"""The `command` deployer: argv templates (kubectl, helm, systemctl, ...), never a shell.

Each template argument may name `{version}`, `{env}` and `{previous_version}`; `{{` and `}}`
are literal braces, and braces around anything that is not a name (kubectl's
`jsonpath={.spec...}`) are left as they are. A step's output is streamed line by line to
the log as it comes; a step that outlives `timeout_seconds` is killed with its children.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from dhash_console.config.models import CommandDeployer, ResolvedEnvironment
from dhash_console.errors import ConfigError
from dhash_console.events import Level
from dhash_console.ops.deploy.base import LAST_LINES, DeployFailed, LogSink, clean_line, health_ok

PLACEHOLDERS = ("version", "env", "previous_version")
HEALTH_TIMEOUT_S = 5.0
READ_CHUNK = 64 * 1024
MAX_LINE = 64 * 1024  # a longer "line" is logged in pieces rather than held whole
OUTPUT_GRACE_S = 2.0  # after the step exits, how long a child may keep its output open

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


def placeholders(argv: Iterable[str]) -> set[str]:
    """The names an argv template uses."""
    return {
        match.group(1)
        for arg in argv
        for match in _PLACEHOLDER.finditer(arg)
        if match.group(1) is not None
    }


def render(argv: Sequence[str], values: Mapping[str, str]) -> list[str]:
    """Substitute the placeholders of each argument; KeyError names an unknown one."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)[0]  # `{{` -> `{`, `}}` -> `}`
        return values[name]

    return [_PLACEHOLDER.sub(substitute, arg) for arg in argv]


def check_templates(env_name: str, config: CommandDeployer) -> None:
    """Refuse unknown placeholders and a version_pattern without a `version` group, up front."""
    problems: list[str] = []
    allowed = {
        "deploy": set(PLACEHOLDERS),
        "rollback": set(PLACEHOLDERS),
        "wait": set(PLACEHOLDERS),
        "current_version": {"env"},  # it runs before any version is chosen
    }
    prefix = f"environments.{env_name}.deployer"
    for step, names in allowed.items():
        argv: list[str] | None = getattr(config, step)
        if argv is None:
            continue
        for index, arg in enumerate(argv):
            for name in sorted(placeholders([arg]) - names):
                known = ", ".join("{" + n + "}" for n in sorted(names))
                problems.append(
                    f"{prefix}.{step}[{index}]: unknown placeholder {{{name}}} (known: {known})"
                )
    try:
        pattern = re.compile(config.version_pattern)
    except re.error as exc:
        problems.append(f"{prefix}.version_pattern: not a valid regex: {exc}")
    else:
        if "version" not in pattern.groupindex:
            problems.append(f"{prefix}.version_pattern: needs a (?P<version>...) group")
    if problems:
        raise ConfigError(problems)


@dataclass
class StepResult:
    exit_status: int
    stdout: list[str] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)


def _describe_exit(status: int) -> str:
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = str(-status)
        return f"killed by signal {name}"
    return f"exit status {status}"


def _kill_tree(proc: asyncio.subprocess.Process) -> None:
    """Kill the step and whatever it started: its process group on POSIX, its tree on Windows."""
    if sys.platform == "win32":
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                ["taskkill", "/F", "/T", "/PID", str(proc.pid)],
                capture_output=True,
                timeout=10,
                check=False,
            )
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # start_new_session: the group id is its pid
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


class _Output:
    """Collects the lines of both streams in the order they arrive and forwards them."""

    def __init__(self, log: LogSink | None, capture_stdout: bool) -> None:
        self.log = log
        self.capture_stdout = capture_stdout
        self.stdout: list[str] = []
        self.tail: deque[str] = deque(maxlen=LAST_LINES)

    async def line(self, raw: bytes, level: Level) -> None:
        text = raw.decode("utf-8", errors="replace")
        if self.capture_stdout and level == "info":
            self.stdout.append(text.rstrip("\r"))
        cleaned = clean_line(text)
        if not cleaned:
            return
        self.tail.append(cleaned)
        if self.log is not None:
            await self.log(level, cleaned)

    async def pump(self, stream: asyncio.StreamReader, level: Level) -> None:
        pending = b""
        while chunk := await stream.read(READ_CHUNK):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                await self.line(raw, level)
            while len(pending) > MAX_LINE:
                await self.line(pending[:MAX_LINE], level)
                pending = pending[MAX_LINE:]
        if pending:
            await self.line(pending, level)


async def run_step(
    step: str,
    argv: Sequence[str],
    log: LogSink | None,
    timeout_s: float,
    *,
    capture_stdout: bool = False,
) -> StepResult:
    """Run one argv to its end; stream its output; kill it (and its children) on timeout.

    Raises DeployFailed when it cannot start or times out; a non-zero exit is the caller's call.
    """
    kwargs: dict[str, object] = {}
    if sys.platform == "win32":
        kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        kwargs["start_new_session"] = True  # its own process group, so a timeout kills all of it
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            **kwargs,  # type: ignore[arg-type]
        )
    except FileNotFoundError:
        raise DeployFailed(step, f"executable not found: {argv[0]!r}") from None
    except PermissionError:
        raise DeployFailed(step, f"executable not permitted to run: {argv[0]!r}") from None
    except OSError as exc:
        raise DeployFailed(step, f"cannot start {argv[0]!r}: {exc.strerror or exc}") from None

    assert proc.stdout is not None and proc.stderr is not None
    output = _Output(log, capture_stdout)
    pumps = [
        asyncio.create_task(output.pump(proc.stdout, "info")),
        asyncio.create_task(output.pump(proc.stderr, "warning")),
    ]
    try:
        try:
            await asyncio.wait_for(_exited(proc), timeout_s)
        except TimeoutError:
            _kill_tree(proc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_exited(proc), OUTPUT_GRACE_S)
            await _drain(pumps, OUTPUT_GRACE_S)
            raise DeployFailed(
                step, f"timed out after {timeout_s:g} s: killed", list(output.tail)
            ) from None
        if not await _drain(pumps, OUTPUT_GRACE_S):
            # Something it started still holds its output open: a leftover in its group.
            _kill_tree(proc)
            if log is not None:
                await log("warning", f"{step}: exited, but a child kept its output open: killed")
        # Bounded: a daemon in another session could hold the pipes open for good.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), OUTPUT_GRACE_S)
    except BaseException:
        # Cancelled, timed out, or a failing log sink: leave nothing of the step running.
        if proc.returncode is None:
            _kill_tree(proc)
        for task in pumps:
            task.cancel()
        raise
    assert proc.returncode is not None
    return StepResult(proc.returncode, output.stdout, list(output.tail))


async def _exited(proc: asyncio.subprocess.Process) -> None:
    """Until the process itself has exited (`wait()` also waits for its pipes to close)."""
    while proc.returncode is None:
        await asyncio.sleep(0.02)


async def _drain(pumps: list[asyncio.Task[None]], grace_s: float) -> bool:
    """Wait for both streams to end; True if they did within the grace, else cancel them."""
    done, pending = await asyncio.wait(pumps, timeout=grace_s)
    for task in pending:
        task.cancel()
    for task in done:
        if not task.cancelled():
            task.result()  # a failing log sink surfaces here
    return not pending


class CommandDriver:
    """A deployer that runs the environment's argv templates."""

    def __init__(self, env: ResolvedEnvironment, config: CommandDeployer) -> None:
        check_templates(env.name, config)
        self.env = env
        self.config = config
        self.version_pattern = re.compile(config.version_pattern)

    async def current_version(self) -> str | None:
        argv = self.config.current_version
        if argv is None:
            return None
        try:
            result = await run_step(
                "current_version",
                render(argv, {"env": self.env.name}),
                None,
                self.config.timeout_seconds,
                capture_stdout=True,
            )
        except DeployFailed:
            return None
        if result.exit_status != 0:
            return None
        match = self.version_pattern.search("\n".join(result.stdout).strip())
        if match is None or not match.group("version"):
            return None
        return match.group("version")

    async def deploy(self, version: str, log: LogSink) -> None:
        values = await self._values(version, [self.config.deploy, self.config.wait])
        await self._run("deploy", self.config.deploy, values, log)
        await self._wait(values, log)

    async def rollback(self, version: str, log: LogSink) -> None:
        if self.config.rollback is not None:
            step, argv = "rollback", self.config.rollback
        else:
            step, argv = "rollback (deploy of the earlier version)", self.config.deploy
        values = await self._values(version, [argv, self.config.wait])
        await self._run(step, argv, values, log)
        await self._wait(values, log)

    async def healthy(self) -> bool:
        return await health_ok(self.env.base_url, HEALTH_TIMEOUT_S)

    async def stop(self, log: LogSink) -> None:
        """Nothing to stop: what runs is the platform's business."""

    async def _wait(self, values: Mapping[str, str], log: LogSink) -> None:
        if self.config.wait is not None:
            await self._run("wait", self.config.wait, values, log)

    async def _values(self, version: str, templates: Sequence[list[str] | None]) -> dict[str, str]:
        values = {"version": version, "env": self.env.name}
        used = placeholders(arg for argv in templates if argv for arg in argv)
        if "previous_version" in used:
            previous = await self.current_version()
            if previous is None:
                raise DeployFailed(
                    "deploy",
                    "a template uses {previous_version} but the current version cannot be told "
                    "(check current_version and version_pattern)",
                )
            values["previous_version"] = previous
        return values

    async def _run(
        self, step: str, template: Sequence[str], values: Mapping[str, str], log: LogSink
    ) -> None:
        try:
            argv = render(template, values)
        except KeyError as exc:  # check_templates refuses these; kept for direct callers
            raise DeployFailed(step, f"unknown placeholder {{{exc.args[0]}}}") from None
        await log("info", f"{step}: {shlex.join(argv)}")
        result = await run_step(step, argv, log, self.config.timeout_seconds)
        if result.exit_status != 0:
            raise DeployFailed(
                step,
                f"failed with {_describe_exit(result.exit_status)}",
                result.tail,
                exit_status=result.exit_status,
            )
        await log("info", f"{step}: done")
