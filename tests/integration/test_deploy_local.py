"""The local deployer against the real reference service, as real detached processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from dhash_console.config import (
    LocalDeployer,
    ResolvedEnvironment,
    load_config,
    resolve_environment,
)
from dhash_console.events import Level
from dhash_console.ops.deploy import DeployFailed, LocalServiceDeployer, build_deployer
from dhash_console.ops.deploy.local import service_alive
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(
    os.name != "posix", reason="signals and process groups as POSIX has them (docs/platforms.md)"
)


class Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[Level, str]] = []

    async def __call__(self, level: Level, message: str) -> None:
        self.lines.append((level, message))


def migrate(db: Path) -> None:
    """A migrated dhash database: the project's own migrations, applied in order."""
    scripts = sorted((REPO / "migrations").glob("*.sql"))
    assert scripts, "no migrations/*.sql to build the service's database from"
    db.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        for script in scripts:
            conn.executescript(script.read_text(encoding="utf-8"))


def pid_gone(pid: int) -> bool:
    return not service_alive(pid)


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def health(env: ResolvedEnvironment) -> tuple[int, Any]:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(env.base_url + "/health")
    return response.status_code, response.json()


@pytest.fixture
def local_env(local_config: Callable[..., Path], tmp_path: Path) -> ResolvedEnvironment:
    config_path = local_config()
    config = load_config(config_path)
    env = resolve_environment(
        config, "local", config_dir=config_path.parent, state_dir=tmp_path / "state"
    )
    assert env.sqlite_path is not None
    migrate(env.sqlite_path)
    return env


@pytest.fixture
async def stopper(local_env: ResolvedEnvironment) -> AsyncIterator[list[LocalServiceDeployer]]:
    """Whatever the test started is stopped afterwards, also when it fails."""
    drivers: list[LocalServiceDeployer] = []
    yield drivers
    state_path = local_env.state_dir / "local" / local_env.name / "service.json"
    for driver in drivers:
        await driver.stop(Recorder())
    if state_path.exists():
        state = json.loads(state_path.read_text())
        for pid in (state.get("traffic_pid"), state.get("pid")):
            if pid and service_alive(pid):
                os.kill(pid, signal.SIGKILL)


def make(
    env: ResolvedEnvironment, drivers: list[LocalServiceDeployer], **kwargs: Any
) -> LocalServiceDeployer:
    config = env.deployer
    assert isinstance(config, LocalDeployer)
    driver = LocalServiceDeployer(env, config, **kwargs)
    drivers.append(driver)
    return driver


async def test_deploy_replace_rollback_from_another_instance_and_stop(
    local_env: ResolvedEnvironment, stopper: list[LocalServiceDeployer]
) -> None:
    first = build_deployer(local_env)
    assert isinstance(first, LocalServiceDeployer)
    stopper.append(first)
    log = Recorder()

    assert await first.current_version() is None
    await first.deploy("1.0.0", log)
    assert await first.healthy()
    status, body = await health(local_env)
    assert (status, body["status"], body["version"]) == (200, "ok", "1.0.0")
    assert await first.current_version() == "1.0.0"
    old_pid = first.read_state().pid
    assert old_pid is not None
    if sys.platform != "win32":  # detached: its own session, so it outlives the console
        assert os.getsid(old_pid) == old_pid != os.getsid(0)

    await first.deploy("2.0.0", log)
    assert await until(lambda: pid_gone(old_pid))
    status, body = await health(local_env)
    assert (status, body["version"]) == (200, "2.0.0")
    messages = [message for _, message in log.lines]
    assert any("stopping 1.0.0" in m for m in messages)
    assert any("2.0.0 answers /health with 200" in m for m in messages)

    # A later `rollback` command is another process: it knows only the state file.
    second = make(local_env, stopper)
    assert await second.current_version() == "2.0.0"
    assert await second.previous_version() == "1.0.0"
    new_pid = second.read_state().pid
    assert new_pid is not None
    await second.rollback("1.0.0", log)
    assert await until(lambda: pid_gone(new_pid))
    assert (await health(local_env))[1]["version"] == "1.0.0"
    assert await first.current_version() == "1.0.0"

    rolled_back_pid = second.read_state().pid
    assert rolled_back_pid is not None
    await second.stop(log)
    assert pid_gone(rolled_back_pid)
    assert await second.current_version() is None
    assert not await second.healthy()
    state = second.read_state()
    assert state.pid is None and state.history[-1] == "1.0.0"
    service_log = (local_env.state_dir / "local" / "local" / "service.log").read_text()
    assert service_log.count("--- ") == 3  # one marker per start


ROLLBACK_ELSEWHERE = """
import asyncio, sys
from pathlib import Path
from dhash_console.config import load_config, resolve_environment
from dhash_console.ops.deploy import build_deployer

async def log(level, message):
    print(level, message, flush=True)

async def main():
    config_path, state_dir = Path(sys.argv[1]), Path(sys.argv[2])
    env = resolve_environment(
        load_config(config_path), "local", config_dir=config_path.parent, state_dir=state_dir
    )
    deployer = build_deployer(env)
    print("found", await deployer.current_version(), flush=True)
    await deployer.rollback(await deployer.previous_version(), log)
    print("now", await deployer.current_version(), flush=True)

asyncio.run(main())
"""


async def test_another_process_finds_the_service_and_rolls_it_back(
    local_env: ResolvedEnvironment, stopper: list[LocalServiceDeployer], tmp_path: Path
) -> None:
    driver = make(local_env, stopper)
    await driver.deploy("1.0.0", Recorder())
    await driver.deploy("1.1.0", Recorder())
    replaced_pid = driver.read_state().pid
    assert replaced_pid is not None
    replaced_traffic = traffic_pid(driver)

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ROLLBACK_ELSEWHERE,
        str(tmp_path / "quality-gates-config.json"), str(local_env.state_dir),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=REPO,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(proc.communicate(), 30)
    text = output.decode()
    assert proc.returncode == 0, text
    assert "found 1.1.0" in text and "now 1.0.0" in text

    assert await until(lambda: pid_gone(replaced_pid))
    assert pid_gone(replaced_traffic)  # the other process stopped the traffic it found too
    status, body = await health(local_env)
    assert (status, body["version"]) == (200, "1.0.0")
    survivor_traffic = traffic_pid(driver)
    assert service_alive(survivor_traffic)
    # The service the other process started outlived it, and this process can stop it.
    assert await driver.current_version() == "1.0.0"
    survivor = driver.read_state().pid
    assert survivor is not None and survivor != replaced_pid
    await driver.stop(Recorder())
    assert await until(lambda: pid_gone(survivor))
    assert pid_gone(survivor_traffic)


def real_requests(metrics: str) -> float:
    """Requests the service counted beyond the console's probes (/health, /metrics, ...)."""
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("dhash_http_requests_total{") and (
            'path="/hash"' in line or 'path="/search"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def real_requests_counted(env: ResolvedEnvironment, timeout_s: float = 15.0) -> float:
    """Wait until the service's /metrics counts real requests; how many it counted."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            counted = real_requests((await client.get(env.base_url + "/metrics")).text)
            if counted > 0 or time.monotonic() > deadline:
                return counted
            await asyncio.sleep(0.2)


def traffic_pid(driver: LocalServiceDeployer) -> int:
    pid = driver.read_state().traffic_pid
    assert pid is not None, "the deployer recorded no traffic beside its service"
    return pid


async def test_traffic_runs_beside_each_version_and_stops_with_it(
    local_env: ResolvedEnvironment, stopper: list[LocalServiceDeployer]
) -> None:
    driver = make(local_env, stopper)
    log = Recorder()
    await driver.deploy("1.0.0", log)
    first = traffic_pid(driver)
    assert service_alive(first)
    assert os.getsid(first) == first != os.getsid(0)  # detached, as the service is
    assert await real_requests_counted(local_env) > 0
    assert any("traffic at 5 requests/s" in m for _, m in log.lines)

    await driver.deploy("1.1.0", log)  # replaced: the old traffic goes with its service
    assert pid_gone(first)
    second = traffic_pid(driver)
    assert second != first and service_alive(second)
    assert await real_requests_counted(local_env) > 0  # sent to the new service

    await driver.stop(log)
    assert pid_gone(second)
    assert driver.read_state().traffic_pid is None
    traffic_log = (local_env.state_dir / "local" / "local" / "traffic.log").read_text()
    assert traffic_log.count("--- ") == 2


async def test_no_traffic_at_zero_requests_per_second(
    local_env: ResolvedEnvironment, stopper: list[LocalServiceDeployer]
) -> None:
    config = local_env.deployer
    assert isinstance(config, LocalDeployer)
    quiet = config.model_copy(update={"traffic_rps": 0.0})
    env = local_env.model_copy(update={"deployer": quiet})
    driver = make(env, stopper)
    log = Recorder()
    await driver.deploy("1.0.0", log)
    assert driver.read_state().traffic_pid is None
    assert ("info", "deploy: no traffic (traffic_rps is 0)") in log.lines
    await asyncio.sleep(1.0)
    async with httpx.AsyncClient(timeout=5) as client:
        assert real_requests((await client.get(env.base_url + "/metrics")).text) == 0


async def test_a_killed_service_reads_as_not_running(
    local_env: ResolvedEnvironment, stopper: list[LocalServiceDeployer]
) -> None:
    driver = make(local_env, stopper)
    log = Recorder()
    await driver.ensure_running("1.0.0", log)
    pid = driver.read_state().pid
    assert pid is not None
    await driver.ensure_running("1.0.0", log)  # already runs: not restarted
    assert driver.read_state().pid == pid
    assert "1.0.0 already runs" in log.lines[-1][1]

    traffic = traffic_pid(driver)
    os.kill(pid, signal.SIGKILL)
    assert await until(lambda: pid_gone(pid))
    assert await until(lambda: pid_gone(traffic))  # nobody left to send to: it ends too
    assert await driver.current_version() is None
    state = driver.read_state()
    assert state.pid is None and state.history == ["1.0.0"]  # stale record cleaned
    assert state.traffic_pid is None
    assert not await driver.healthy()


async def test_an_early_exit_surfaces_its_status_and_log_lines(
    local_env: ResolvedEnvironment, stopper: list[LocalServiceDeployer], tmp_path: Path
) -> None:
    unmigrated = tmp_path / "empty.sqlite3"
    sqlite3.connect(unmigrated).close()
    env = local_env.model_copy(update={"database": f"sqlite:///{unmigrated.as_posix()}"})
    driver = make(env, stopper)
    with pytest.raises(DeployFailed) as caught:
        await driver.deploy("1.0.0", Recorder())
    failure = caught.value
    assert failure.exit_status == 3
    assert "exit status 3" in str(failure)
    assert failure.last_lines, "the service's own words should be in the failure"
    assert "starting 1.0.0" not in "\n".join(failure.last_lines)  # only this start's lines
    assert driver.read_state().pid is None
    assert await driver.current_version() is None


async def test_a_port_held_by_something_else_is_refused(
    local_env: ResolvedEnvironment, stopper: list[LocalServiceDeployer]
) -> None:
    driver = make(local_env, stopper)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", local_env.port))
        squatter.listen()
        with pytest.raises(DeployFailed, match=f"port {local_env.port} is held"):
            await driver.deploy("1.0.0", Recorder())
    assert driver.read_state().pid is None


async def test_a_versions_faults_reach_the_service(
    local_env: ResolvedEnvironment, stopper: list[LocalServiceDeployer]
) -> None:
    config = local_env.deployer
    assert isinstance(config, LocalDeployer)
    data = config.model_dump()
    data["versions"]["9.9.9-down"] = {"faults": "health_down=true"}
    env = local_env.model_copy(update={"deployer": LocalDeployer.model_validate(data)})
    driver = make(env, stopper)
    await driver.deploy("9.9.9-down", Recorder())  # any HTTP answer means it is up
    assert (await health(env))[0] == 503
    assert not await driver.healthy()
    assert await driver.current_version() == "9.9.9-down"
