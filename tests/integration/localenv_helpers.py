"""Helpers for tests that need the bundled reference service as a real process.

    with running_service(migrated_db(tmp_path / "dhash.sqlite3")) as service:
        httpx.get(service.url + "/health")

`running_service` starts `python -m dhash_console.localenv serve` on a free port, waits for
/health to answer, and stops it (SIGTERM, then SIGKILL) when the block ends, also on failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent.parent
MIGRATIONS = REPO / "migrations"
SERVICE_MODULE = "dhash_console.localenv"


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def migrated_db(path: Path, migrations: Path = MIGRATIONS) -> Path:
    """Apply every migration in order to the SQLite file at `path` (created if need be).

    Each file in one transaction, statement by statement, as the migrator does; no
    bookkeeping table (that is the migrator's business, not the service's).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for script in sorted(migrations.glob("*.sql")):
            statements = [s for s in script.read_text(encoding="utf-8").split(";") if s.strip()]
            conn.execute("BEGIN")
            for statement in statements:
                conn.execute(statement)
            conn.execute("COMMIT")
    return path


def service_argv(
    db: Path, port: int, version: str = "1.0.0", faults: str = "", host: str = "127.0.0.1"
) -> list[str]:
    argv = [sys.executable, "-m", SERVICE_MODULE, "serve", "--host", host, "--port", str(port)]
    argv += ["--db", str(db), "--version", version]
    if faults:
        argv += ["--faults", faults]
    return argv


@dataclass
class RunningService:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    db: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def spawn_service(
    db: Path,
    *,
    version: str = "1.0.0",
    faults: str = "",
    port: int | None = None,
    log_path: Path | None = None,
) -> RunningService:
    """Start the service without waiting; its stderr and stdout go to `log_path`.

    To a file, not a pipe: a pipe nobody reads fills up and stalls the service.
    """
    port = free_port() if port is None else port
    log_path = log_path or db.with_name(f"service-{port}.log")
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            service_argv(db, port, version, faults),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    return RunningService(process, port, log_path, db)


def wait_until_answering(service: RunningService, timeout_s: float = 15.0) -> None:
    """Until /health gives any HTTP answer; RuntimeError with the log if it exits or stays mute."""
    deadline = time.monotonic() + timeout_s
    while True:
        code = service.process.poll()
        if code is not None:
            raise RuntimeError(f"service exited with {code} at start-up:\n{service.log_text()}")
        try:
            httpx.get(service.url + "/health", timeout=1.0)
            return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"service not answering after {timeout_s} s:\n{service.log_text()}")
        time.sleep(0.05)


def stop_service(service: RunningService, timeout_s: float = 10.0) -> int:
    """SIGTERM, wait up to `timeout_s`, then SIGKILL; the exit status."""
    process = service.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


@contextlib.contextmanager
def running_service(
    db: Path,
    *,
    version: str = "1.0.0",
    faults: str = "",
    port: int | None = None,
    log_path: Path | None = None,
) -> Iterator[RunningService]:
    """The service answering on a free port for the block's duration."""
    service = spawn_service(db, version=version, faults=faults, port=port, log_path=log_path)
    try:
        wait_until_answering(service)
        yield service
    finally:
        stop_service(service)
