"""Shared fixtures. Configs are built in code from the shipped config, so tests follow it."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = REPO / "quality-gates-config.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def shipped_config_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SHIPPED_CONFIG.read_text())
    return copy.deepcopy(data)


@pytest.fixture
def local_config(tmp_path: Path, shipped_config_data: dict[str, Any]) -> Callable[..., Path]:
    """Write a config whose local environment uses a free port and tmp_path for state."""

    def make(**changes: Any) -> Path:
        data = copy.deepcopy(shipped_config_data)
        local = data["environments"]["local"]
        local["base_url"] = f"http://127.0.0.1:{free_port()}"
        data["backups"]["directory"] = str(tmp_path / "backups")
        data["migrations"] = str(REPO / "migrations")
        data["notifications"] = {"console": True}
        for key, value in changes.items():
            target = data
            *parents, last = key.split(".")
            for part in parents:
                target = target[part]
            target[last] = value
        path = tmp_path / "quality-gates-config.json"
        path.write_text(json.dumps(data))
        return path

    return make


@pytest.fixture(scope="session", autouse=True)
def no_service_outlives_the_tests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Engines the tests launch detached (as the console does) may start a reference service
    and its traffic after a test's own clean-up ran; whatever still serves a database of this
    session's temporary folders is stopped at the end, and so is the traffic sent to it."""
    yield
    base = str(tmp_path_factory.getbasetemp()).encode()
    proc = Path("/proc")
    if not proc.is_dir():
        return
    localenv: dict[int, list[bytes]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if b"dhash_console.localenv" in argv:
                localenv[int(entry.name)] = argv
    services = {pid for pid, argv in localenv.items() if any(base in a for a in argv)}
    traffic = {pid for pid, argv in localenv.items() if _traffic_for(argv) in services}
    for pid in services | traffic:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)


def _traffic_for(argv: list[bytes]) -> int | None:
    """The service pid a `localenv traffic --service-pid N` process was started for."""
    if b"traffic" in argv and b"--service-pid" in argv:
        with contextlib.suppress(IndexError, ValueError):
            return int(argv[argv.index(b"--service-pid") + 1])
    return None
