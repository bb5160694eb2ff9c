"""The command deployer against real processes: small Python scripts stand in for kubectl."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dhash_console.config import CommandDeployer, load_config, resolve_environment
from dhash_console.errors import ConfigError
from dhash_console.events import Level
from dhash_console.ops.deploy import CommandDriver, DeployFailed, build_deployer
from dhash_console.store.process import pid_alive
from tests.conftest import REPO, SHIPPED_CONFIG, free_port
from tests.servers import ScriptedService, running

PY = sys.executable


def py(code: str, *args: str) -> list[str]:
    return [PY, "-c", code, *args]


class Recorder:
    """A log sink that keeps every line with the instant it arrived."""

    def __init__(self) -> None:
        self.lines: list[tuple[Level, str]] = []
        self.arrived: list[float] = []

    async def __call__(self, level: Level, message: str) -> None:
        self.lines.append((level, message))
        self.arrived.append(time.monotonic())

    def messages(self) -> list[str]:
        return [message for _, message in self.lines]


def driver(tmp_path: Path, base_url: str | None = None, **deployer: Any) -> CommandDriver:
    config = load_config(SHIPPED_CONFIG)
    env = resolve_environment(config, "staging", config_dir=REPO, state_dir=tmp_path)
    updates: dict[str, Any] = {"deployer": CommandDeployer(kind="command", **deployer)}
    if base_url is not None:
        updates["base_url"] = base_url
    deployer_ = build_deployer(env.model_copy(update=updates))
    assert isinstance(deployer_, CommandDriver)
    return deployer_


def gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody has reaped yet."""
    if not pid_alive(pid):
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


async def wait_gone(pid: int, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not gone(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def test_output_is_streamed_line_by_line_as_it_comes(tmp_path: Path) -> None:
    # The script prints "first", then waits until the log has seen it before printing more:
    # it only finishes if lines reach the sink while the step still runs.
    seen = tmp_path / "seen"
    script = (
        "import os, sys, time\n"
        "print('first', flush=True)\n"
        f"deadline = time.monotonic() + 10\n"
        f"while not os.path.exists({str(seen)!r}):\n"
        "    if time.monotonic() > deadline: sys.exit(9)\n"
        "    time.sleep(0.01)\n"
        "print('on stderr', file=sys.stderr, flush=True)\n"
        "print('second', flush=True)\n"
    )
    recorder = Recorder()

    async def sink(level: Level, message: str) -> None:
        await recorder(level, message)
        if message == "first":
            seen.touch()

    await driver(tmp_path, deploy=py(script)).deploy("1.0.0", sink)

    output = [(lvl, msg) for lvl, msg in recorder.lines if not msg.startswith("deploy:")]
    assert output == [("info", "first"), ("warning", "on stderr"), ("info", "second")]
    assert recorder.messages()[-1] == "deploy: done"


async def test_deploy_runs_the_wait_step_after_the_deploy_step(tmp_path: Path) -> None:
    recorder = Recorder()
    d = driver(tmp_path, deploy=py("print('deploying')"), wait=py("print('waiting')"))
    await d.deploy("1.0.0", recorder)
    outputs = [m for m in recorder.messages() if m in ("deploying", "waiting")]
    assert outputs == ["deploying", "waiting"]


async def test_a_failing_step_says_which_its_status_and_last_lines(tmp_path: Path) -> None:
    script = "import sys\nfor i in range(30): print('line', i)\nsys.exit(7)"
    d = driver(tmp_path, deploy=py("print('ok')"), wait=py(script))
    with pytest.raises(DeployFailed) as caught:
        await d.deploy("1.0.0", Recorder())
    failure = caught.value
    assert failure.step == "wait"
    assert failure.exit_status == 7
    assert "exit status 7" in str(failure)
    assert failure.last_lines[-1] == "line 29"
    assert "line 29" in str(failure) and "line 5\n" not in str(failure)
    assert failure.exit_code == 1


async def test_a_step_killed_by_a_signal_says_so(tmp_path: Path) -> None:
    if sys.platform == "win32":
        pytest.skip("POSIX signals")
    d = driver(tmp_path, deploy=py("import os, signal; os.kill(os.getpid(), signal.SIGKILL)"))
    with pytest.raises(DeployFailed, match="killed by signal SIGKILL"):
        await d.deploy("1.0.0", Recorder())


async def test_timeout_kills_the_step_and_its_children(tmp_path: Path) -> None:
    script = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([{PY!r}, '-c', 'import time; time.sleep(60)'])\n"
        "print(f'child {child.pid}', flush=True)\n"
        "time.sleep(60)\n"
    )
    recorder = Recorder()
    d = driver(tmp_path, deploy=py(script), timeout_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(DeployFailed, match=r"timed out after 1 s") as caught:
        await d.deploy("1.0.0", recorder)
    assert time.monotonic() - started < 5
    child_line = next(m for m in recorder.messages() if m.startswith("child "))
    child_pid = int(child_line.split()[1])
    assert child_line in caught.value.last_lines
    assert await wait_gone(child_pid), f"child {child_pid} outlived the timeout"


async def test_cancelling_a_step_kills_it(tmp_path: Path) -> None:
    started = asyncio.Event()
    pids: list[int] = []

    async def sink(level: Level, message: str) -> None:
        if message.startswith("pid "):
            pids.append(int(message.split()[1]))
            started.set()

    d = driver(
        tmp_path,
        deploy=py("import os, time; print('pid', os.getpid(), flush=True); time.sleep(60)"),
    )
    task = asyncio.create_task(d.deploy("1.0.0", sink))
    await asyncio.wait_for(started.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_gone(pids[0])


async def test_placeholders_are_substituted_per_argument(tmp_path: Path) -> None:
    echo = "import json, sys; print(json.dumps(sys.argv[1:]))"
    d = driver(
        tmp_path,
        deploy=[*py(echo), "img:{version}", "--env={env}", "from={previous_version}",
                "{{version}}", "jsonpath={.spec.image}", "a b;$(rm -rf x)"],
        current_version=py("print('registry.example.com/dhash:1.3.0')"),
        version_pattern=r":(?P<version>[^:@\s]+)\s*$",
    )  # fmt: skip
    recorder = Recorder()
    await d.deploy("1.4.0", recorder)
    printed = next(m for m in recorder.messages() if m.startswith("["))
    assert json.loads(printed) == [
        "img:1.4.0",
        "--env=staging",
        "from=1.3.0",
        "{version}",
        "jsonpath={.spec.image}",
        "a b;$(rm -rf x)",  # one argument, never a shell
    ]


async def test_previous_version_unknown_is_a_clear_failure(tmp_path: Path) -> None:
    d = driver(tmp_path, deploy=py("print(1)", "{previous_version}"))
    with pytest.raises(DeployFailed, match="previous_version"):
        await d.deploy("1.0.0", Recorder())


def test_an_unknown_placeholder_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        driver(tmp_path, deploy=["kubectl", "set", "image", "dhash={versoin}"])
    assert "{versoin}" in str(caught.value)
    assert "deployer.deploy[3]" in str(caught.value)
    with pytest.raises(ConfigError, match=r"current_version\[1\]: unknown placeholder \{version\}"):
        driver(tmp_path, deploy=["true"], current_version=["echo", "{version}"])
    with pytest.raises(ConfigError, match="version_pattern"):
        driver(tmp_path, deploy=["true"], version_pattern="(?P<v>.*)")


def test_the_shipped_command_environments_build(tmp_path: Path) -> None:
    config = load_config(SHIPPED_CONFIG)
    for name, env in config.environments.items():
        if env.deployer.kind == "command":
            resolved = resolve_environment(config, name, config_dir=REPO, state_dir=tmp_path)
            assert isinstance(build_deployer(resolved), CommandDriver)


async def test_a_missing_executable_is_named(tmp_path: Path) -> None:
    d = driver(tmp_path, deploy=["no-such-deploy-tool-xyz", "{version}"])
    with pytest.raises(DeployFailed, match="no-such-deploy-tool-xyz") as caught:
        await d.deploy("1.0.0", Recorder())
    assert caught.value.step == "deploy"


async def test_output_is_cleaned_of_escapes_and_control_characters(tmp_path: Path) -> None:
    script = r"print('\x1b[31mred\x1b[0m [bold]kept[/bold]\x07\r')"
    recorder = Recorder()
    await driver(tmp_path, deploy=py(script)).deploy("1.0.0", recorder)
    assert "red [bold]kept[/bold]" in recorder.messages()


async def test_rollback_uses_its_template_then_waits(tmp_path: Path) -> None:
    recorder = Recorder()
    d = driver(
        tmp_path,
        deploy=py("import sys; print('deploy', sys.argv[1])", "{version}"),
        rollback=py("import sys; print('undo', sys.argv[1])", "{version}"),
        wait=py("print('waited')"),
    )
    await d.rollback("1.0.0", recorder)
    steps = [m for m in recorder.messages() if m in ("undo 1.0.0", "deploy 1.0.0", "waited")]
    assert steps == ["undo 1.0.0", "waited"]


async def test_rollback_without_a_template_deploys_the_earlier_version(tmp_path: Path) -> None:
    recorder = Recorder()
    d = driver(tmp_path, deploy=py("import sys; print('deploy', sys.argv[1])", "{version}"))
    await d.rollback("0.9.0", recorder)
    assert "deploy 0.9.0" in recorder.messages()


@pytest.mark.parametrize(
    ("command", "pattern", "expected"),
    [
        (py("print('registry.example.com/dhash:1.4.2')"), r":(?P<version>[^:@\s]+)\s*$", "1.4.2"),
        (py("print('noise\\n2.0.1\\n')"), None, "2.0.1"),
        (py("print('no version here:')"), r":(?P<version>[^:@\s]+)\s*$", None),
        (py("import sys; print('1.0.0'); sys.exit(1)"), None, None),
        (["no-such-tool-xyz"], None, None),
        (None, None, None),
    ],
)
async def test_current_version_picks_the_version_group(
    tmp_path: Path, command: list[str] | None, pattern: str | None, expected: str | None
) -> None:
    extra: dict[str, Any] = {"current_version": command}
    if pattern is not None:
        extra["version_pattern"] = pattern
    assert await driver(tmp_path, deploy=["true"], **extra).current_version() == expected


async def test_healthy_is_a_200_from_health_and_never_raises(tmp_path: Path) -> None:
    service = ScriptedService()
    with running(service):
        d = driver(tmp_path, base_url=service.url, deploy=["true"])
        assert await d.healthy() is True
        service.healthy = False
        assert await d.healthy() is False
    refused = driver(tmp_path, base_url=f"http://127.0.0.1:{free_port()}", deploy=["true"])
    assert await refused.healthy() is False
    await refused.stop(Recorder())  # nothing to stop: a no-op


def test_no_shell_is_involved() -> None:
    source = (REPO / "dhash_console/ops/deploy/command.py").read_text()
    assert "shell=True" not in source and "create_subprocess_shell" not in source
    assert os.name in ("posix", "nt")
