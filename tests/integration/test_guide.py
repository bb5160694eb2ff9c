"""DEPLOYMENT_OPERATIONS_GUIDE.md, run: every command it shows, in order, against a scratch
local environment, each checked against the exit code the guide states.

The guide's ```sh blocks hold one `dhash-console` command a line; a trailing `# exit N` is the
exit code it promises (0 when absent). Words in angle brackets are filled in here as an
operator would (`<backup>`: the newest backup; `<rollout-id>`: the newest rollout). An HTML
comment `<!-- guide-test: ACTION -->` before a block makes the situation the block is about
(a drifted migration, a held lock, a damaged backup, an interrupted window) for that block
only. An ```output block after a ```sh block holds lines its last command must print.
Commands run as argv, never through a shell, so the test means the same on every OS.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dhash_console.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "DEPLOYMENT_OPERATIONS_GUIDE.md"
CLI = [sys.executable, "-m", "dhash_console"]
COMMAND_TIMEOUT_S = 60

_EXIT = re.compile(r"\s+#\s*exit\s+(\d+)\s*$")
_ACTION = re.compile(r"<!--\s*guide-test:\s*([a-z-]+)\s*-->")
_PLACEHOLDER = re.compile(r"<[a-z-]+>")
_KEY_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|")
_TRUNCATED_HEX = re.compile(r"[0-9a-f]{6,}…")


@dataclass
class Command:
    line: int
    argv: list[str]
    exit_code: int

    def __str__(self) -> str:
        return f"line {self.line}: {shlex.join(self.argv)}"


@dataclass
class Block:
    line: int
    action: str | None
    commands: list[Command]
    output: list[str] = field(default_factory=list)  # lines the last command must print


def parse_guide(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    previous = ""  # the last non-blank line before a fence
    while index < len(lines):
        stripped = lines[index].strip()
        if stripped.startswith("```"):
            info = stripped[3:].strip()
            start = index + 1
            index = start
            while not lines[index].strip().startswith("```"):
                index += 1
            body = lines[start:index]
            if info == "sh":
                action = _ACTION.fullmatch(previous)
                blocks.append(
                    Block(start, action.group(1) if action else None, _commands(start, body))
                )
            elif info == "output" and blocks:
                blocks[-1].output = [line for line in body if line.strip()]
        elif stripped:
            previous = stripped
        index += 1
    return blocks


def _commands(first_line: int, body: list[str]) -> list[Command]:
    commands: list[Command] = []
    pending, pending_line = "", first_line
    for offset, raw in enumerate(body, start=first_line + 1):
        if not pending:
            pending_line = offset
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        text = (pending + raw).strip()
        pending = ""
        if not text or text.startswith("#"):
            continue
        expected = _EXIT.search(text)
        if expected:
            text = text[: expected.start()]
        commands.append(
            Command(pending_line, shlex.split(text), int(expected.group(1)) if expected else 0)
        )
    return commands


# -- what can be checked without running anything ---------------------------------------------


def test_the_guide_shows_only_console_commands_that_parse() -> None:
    blocks = parse_guide(GUIDE.read_text(encoding="utf-8"))
    commands = [command for block in blocks for command in block.commands]
    assert len(commands) >= 20, "the guide lost its examples"
    parser = build_parser()
    for command in commands:
        assert command.argv[0] == "dhash-console", f"{command}: only dhash-console commands run"
        argv = [_PLACEHOLDER.sub("x", word) for word in command.argv[1:]]
        if command.exit_code == 2:
            continue  # shown on purpose as a refused command
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"{command}: the CLI refuses it (exit {exc.code})")


def test_the_guide_knows_every_action_it_asks_for() -> None:
    for block in parse_guide(GUIDE.read_text(encoding="utf-8")):
        assert block.action is None or block.action in ACTIONS, f"line {block.line}"


def test_the_guide_lists_the_console_keys_the_console_has() -> None:
    help_screen = pytest.importorskip("dhash_console.ui.tui.screens.help")
    console_keys = {key for _, keys in help_screen.SECTIONS for key, _ in keys}
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("### In the console", 1)[1].split("\n### ", 1)[0]
    guide_keys = {m.group(1) for line in section.splitlines() if (m := _KEY_ROW.match(line))}
    assert guide_keys == console_keys, (
        f"missing from the guide: {sorted(console_keys - guide_keys)}; "
        f"not in the console: {sorted(guide_keys - console_keys)}"
    )


# -- the scratch environment ------------------------------------------------------------------


@dataclass
class GuideEnv:
    root: Path
    config: Path
    state: Path
    migrations: Path
    placeholders: dict[str, str] = field(default_factory=dict)

    @property
    def backups(self) -> Path:
        return self.root / "backups"

    @property
    def environ(self) -> dict[str, str]:
        environ = {
            key: value
            for key, value in os.environ.items()
            if not key.endswith(("_WEBHOOK_URL", "SMTP_PASSWORD"))
        }
        environ.update(
            DHASH_CONSOLE_CONFIG=str(self.config),
            DHASH_CONSOLE_STATE_DIR=str(self.state),
            CI="true",
            PYTHONUTF8="1",
        )
        return environ

    def run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *argv],
            cwd=self.root,
            env=self.environ,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=COMMAND_TIMEOUT_S,
        )

    def start(self, argv: list[str], **kwargs: object) -> subprocess.Popen[str]:
        proc: subprocess.Popen[str] = subprocess.Popen(
            argv,
            cwd=self.root,
            env=self.environ,
            text=True,
            **kwargs,  # type: ignore[call-overload]
        )
        return proc

    def fill(self, word: str) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(0)
            if name == "<backup>":
                return self.newest_backup()
            if name == "<rollout-id>":
                return self.newest_rollout()
            assert name in self.placeholders, f"nothing fills {name} here"
            return self.placeholders[name]

        return _PLACEHOLDER.sub(value, word)

    def newest_backup(self) -> str:
        complete = [p for p in self.backups.glob("dhash_local_*.zip") if sidecar(p).exists()]
        assert complete, "no backup yet for <backup>"
        return f"backups/{max(complete, key=lambda p: p.name).name}"

    def newest_rollout(self) -> str:
        result = self.run(["--json", "history", "--limit", "1"])
        assert result.returncode == 0, result.stderr
        return str(json.loads(result.stdout.splitlines()[0])["id"])


def sidecar(zip_path: Path) -> Path:
    return zip_path.with_name(zip_path.name + ".sha256")


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)


@pytest.fixture
def guide_env(tmp_path: Path, local_config: Callable[..., Path]) -> Iterator[GuideEnv]:
    migrations = tmp_path / "migrations"
    shutil.copytree(REPO / "migrations", migrations)  # the drift example edits a copy
    config = local_config(
        **{"migrations": str(migrations), "environments.local.monitoring": {"interval_seconds": 1}}
    )
    env = GuideEnv(tmp_path, config, tmp_path / "state", migrations)
    try:
        yield env
    finally:
        stop_local_service(env.state)


def stop_local_service(state: Path) -> None:
    """The local service outlives the commands that start it, by design: end it here."""
    kill = getattr(signal, "SIGKILL", signal.SIGTERM)  # SIGTERM is TerminateProcess on Windows
    for service in state.glob("local/*/service.json"):
        record = json.loads(service.read_text(encoding="utf-8"))
        for pid in (record.get("traffic_pid"), record.get("pid")):  # and the traffic beside it
            if pid:
                with contextlib.suppress(OSError):
                    os.kill(int(pid), kill)


# -- the situations a block is about -----------------------------------------------------------


@contextlib.contextmanager
def drifted_migration(env: GuideEnv) -> Iterator[None]:
    """Someone edited a migration after it was applied."""
    newest = max(env.migrations.glob("*.sql"), key=lambda p: p.name)
    original = newest.read_bytes()
    newest.write_bytes(original + b"\n-- edited by hand after it was applied\n")
    try:
        yield
    finally:
        newest.write_bytes(original)


@contextlib.contextmanager
def held_lock(env: GuideEnv) -> Iterator[None]:
    """Another operation (a real process) holds the environment's lock."""
    holder = env.start(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from pathlib import Path\n"
            "from dhash_console.store.lock import EnvironmentLock, LockHolder\n"
            f"holder = LockHolder.this_process('local', '', 'backup')\n"
            f"with EnvironmentLock(Path({str(env.state)!r}), 'local', holder):\n"
            "    print('held', flush=True)\n"
            "    sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    lock = env.state / "locks" / "local.lock"
    try:
        wait_for(
            lambda: lock.exists() and f'"pid": {holder.pid}' in lock.read_text(encoding="utf-8"),
            "the lock holder",
        )
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()  # the holder releases the lock and exits
        with contextlib.suppress(subprocess.TimeoutExpired):
            holder.wait(timeout=10)
        stop(holder)


@contextlib.contextmanager
def damaged_backup(env: GuideEnv) -> Iterator[None]:
    """A copy of the newest backup whose bytes changed after its sidecar was written."""
    source = env.root / env.newest_backup()
    damaged = env.backups / "dhash_local_20000101_000000.zip"
    data = bytearray(source.read_bytes())
    sidecar(damaged).write_text(
        f"{hashlib.sha256(data).hexdigest()}  {damaged.name}\n", encoding="ascii", newline="\n"
    )
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    env.placeholders["<damaged-backup>"] = f"backups/{damaged.name}"
    try:
        yield
    finally:
        sidecar(damaged).unlink(missing_ok=True)
        damaged.unlink(missing_ok=True)


@contextlib.contextmanager
def interrupted_rollout(env: GuideEnv) -> Iterator[None]:
    """A rollout stopped a moment into its monitoring window (Ctrl-C, SIGTERM, a reboot)."""
    output = (env.root / "interrupted-rollout.log").open("w", encoding="utf-8")
    proc = env.start(
        [
            *CLI,
            "--no-ui",
            "deploy",
            "--env",
            "local",
            "--version",
            "1.1.0",
            "--yes",
            "--duration-minutes",
            "0.05",
        ],
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: monitoring_started(env.state, proc.pid), "the monitoring window")
        if sys.platform == "win32":
            proc.terminate()  # no SIGTERM: the process dies and history calls it interrupted
        else:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        yield
    finally:
        stop(proc)
        output.close()


def monitoring_started(state: Path, pid: int) -> bool:
    db = state / "history.sqlite3"
    if not db.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True)) as c:
            row = c.execute(
                "SELECT 1 FROM events e JOIN rollouts r ON r.id = e.rollout_id "
                "WHERE r.pid = ? AND e.type = 'phase_started' AND e.json LIKE '%monitor%'",
                (pid,),
            ).fetchone()
    except sqlite3.Error:
        return False
    return row is not None


ACTIONS: dict[str, Callable[[GuideEnv], contextlib.AbstractContextManager[None]]] = {
    "drift-migration": drifted_migration,
    "hold-lock": held_lock,
    "damage-backup": damaged_backup,
    "interrupt-rollout": interrupted_rollout,
}


# -- the run ----------------------------------------------------------------------------------


def output_line_pattern(line: str) -> re.Pattern[str]:
    """A guide's sample line as a pattern: digests and spacing vary from run to run."""
    pieces = [
        r"\s+".join(re.escape(word) for word in piece.split())
        for piece in _TRUNCATED_HEX.split(line.strip())
    ]
    return re.compile(r"\s*[0-9a-f]+…\s*".join(pieces))


def check_output(block: Block, command: Command, output: str) -> None:
    lines = output.splitlines()
    for sample in block.output:
        pattern = output_line_pattern(sample)
        assert any(pattern.search(line) for line in lines), (
            f"{command}: the guide shows {sample!r}, the command printed:\n{output}"
        )


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_every_command_in_the_guide_runs_as_it_says(guide_env: GuideEnv) -> None:
    started = time.monotonic()
    for block in parse_guide(GUIDE.read_text(encoding="utf-8")):
        situation = ACTIONS[block.action](guide_env) if block.action else contextlib.nullcontext()
        with situation:
            for command in block.commands:
                argv = [guide_env.fill(word) for word in command.argv[1:]]
                began = time.monotonic()
                result = guide_env.run(argv)
                output = result.stdout + result.stderr
                print(f"{time.monotonic() - began:5.1f}s  {command}")  # shown on failure
                assert result.returncode == command.exit_code, (
                    f"{command} exited {result.returncode}, the guide says {command.exit_code}:"
                    f"\n{output[-3000:]}"
                )
                if command is block.commands[-1] and block.output:
                    check_output(block, command, output)
    # The guide's examples are short by design; a slow one makes the suite slow for all.
    assert time.monotonic() - started < 120
