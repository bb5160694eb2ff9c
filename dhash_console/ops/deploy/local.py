"""The `local` deployer: the bundled dhash reference service as a detached process.

Beside each version it starts, it runs the bundled traffic generator as its own detached
process at `traffic_rps`, so that the local environment's rate gates judge real requests,
not only the console's own probes. What runs (the service's pid, the traffic's pid) is written
to `<state_dir>/local/<env>/service.json`, so that another process (a later `rollback`, the
TUI, a resumed window) finds both and can replace them; the service's output is appended to
`service.log` beside it, the traffic's to `traffic.log`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from pydantic import BaseModel, ValidationError

from dhash_console.config.models import LocalDeployer, ResolvedEnvironment
from dhash_console.errors import ConfigError
from dhash_console.fsretry import replace_retrying
from dhash_console.ops.deploy.base import LAST_LINES, DeployFailed, LogSink, clean_line, health_ok
from dhash_console.store.process import pid_alive

SERVICE_MODULE = "dhash_console.localenv"
HOST = "127.0.0.1"
HEALTH_TIMEOUT_S = 2.0
HISTORY_KEEP = 20
POLL_S = 0.05
# The traffic runs until stopped with its service; this only bounds a forgotten one (it also
# ends by itself once the service it was started for is gone).
TRAFFIC_SECONDS = 30 * 24 * 3600
TRAFFIC_STOP_S = 5.0

# Services this process started: polling them reaps them, so one that died is not taken for
# alive as a zombie, whichever driver instance asks.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}

# Windows has no SIGKILL; there os.kill with SIGTERM already ends the process outright.
_FORCE_STOP = getattr(signal, "SIGKILL", signal.SIGTERM)


class ServiceState(BaseModel):
    """What runs now (pid, version, port, since when, the traffic's pid) and the versions
    that ran before."""

    pid: int | None = None
    traffic_pid: int | None = None
    version: str | None = None
    port: int | None = None
    started_at: float | None = None
    history: list[str] = []

    def retired(self) -> ServiceState:
        """The same record once what ran has stopped: its version joins the history."""
        history = [*self.history, self.version] if self.version else list(self.history)
        return ServiceState(history=history[-HISTORY_KEEP:])


def _is_zombie(pid: int) -> bool:
    """Linux: a process that exited but was not reaped yet (pid_alive counts it as alive)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def _runs_our_service(pid: int) -> bool:
    """Linux: the pid still runs our service, not some process that reused the id."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        # Gone, or no /proc at all (macOS, Windows): then pid_alive is all we can ask.
        return not Path("/proc/self").exists()
    except OSError:
        return True  # not allowed to look: trust pid_alive
    return SERVICE_MODULE.encode() in cmdline


def service_alive(pid: int) -> bool:
    """True while `pid` is a live (not zombie) process running the reference service."""
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None  # reaps it once it has exited
    return pid_alive(pid) and not _is_zombie(pid) and _runs_our_service(pid)


def _signal_service(pid: int, sig: signal.Signals) -> None:
    """Signal the service's process group (it leads its own), else the process alone."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        child = _CHILDREN.get(pid)
        with contextlib.suppress(OSError):
            if child is not None:
                child.terminate() if sig == signal.SIGTERM else child.kill()
            else:
                os.kill(pid, signal.SIGTERM)  # TerminateProcess: Windows has nothing softer
        return
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _tail(path: Path, offset: int, count: int = LAST_LINES) -> list[str]:
    """The last lines of the log written since `offset`, cleaned for display."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(offset, size - 64 * 1024))
            data = handle.read()
    except OSError:
        return []
    lines = [clean_line(line) for line in data.decode("utf-8", errors="replace").splitlines()]
    return [line for line in lines if line][-count:]


async def _port_answers(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


class LocalServiceDeployer:
    """Runs, replaces and stops the reference service for one environment."""

    def __init__(
        self,
        env: ResolvedEnvironment,
        config: LocalDeployer,
        *,
        stop_timeout_s: float = 10.0,
        start_timeout_s: float = 15.0,
        python: str = sys.executable,
    ) -> None:
        db_path = env.sqlite_path
        if db_path is None:
            raise ConfigError(
                [f"environments.{env.name}.database: the local deployer needs a sqlite:/// URL"]
            )
        self.env = env
        self.config = config
        self.db_path = db_path.resolve()
        self.stop_timeout_s = stop_timeout_s
        self.start_timeout_s = start_timeout_s
        self.python = python
        self.directory = env.state_dir / "local" / env.name
        self.state_path = self.directory / "service.json"
        self.log_path = self.directory / "service.log"
        self.traffic_log_path = self.directory / "traffic.log"

    # -- the protocol ----------------------------------------------------------------------

    async def current_version(self) -> str | None:
        state = self._running_state()
        return state.version if state.pid is not None else None

    async def deploy(self, version: str, log: LogSink) -> None:
        await self._replace("deploy", version, log)

    async def rollback(self, version: str, log: LogSink) -> None:
        await self._replace("rollback", version, log)

    async def healthy(self) -> bool:
        return await health_ok(self.env.base_url, HEALTH_TIMEOUT_S)

    async def stop(self, log: LogSink) -> None:
        state = self._running_state()
        if state.pid is None:
            await log("info", "stop: the local service is not running")
            return
        await self._stop_process("stop", state, log)
        self._write_state(state.retired())

    # -- beyond the protocol ---------------------------------------------------------------

    async def ensure_running(self, version: str, log: LogSink) -> None:
        """Bring `version` up unless it already runs (the demo's starting point)."""
        state = self._running_state()
        if state.pid is not None and state.version == version:
            await log("info", f"{version} already runs (pid {state.pid})")
            if state.traffic_pid is None or not service_alive(state.traffic_pid):
                traffic = await self._start_traffic("start", state.pid, log)
                self._write_state(state.model_copy(update={"traffic_pid": traffic}))
            return
        await self._replace("start", version, log)

    async def previous_version(self) -> str | None:
        """The latest version that ran before the current one, for a later `rollback`."""
        state = self._running_state()
        for version in reversed(state.history):
            if version != state.version:
                return version
        return None

    def read_state(self) -> ServiceState:
        """The state file as it is (an unreadable or missing file reads as nothing running)."""
        try:
            return ServiceState.model_validate_json(self.state_path.read_bytes())
        except (OSError, ValidationError):
            return ServiceState()

    # -- the work --------------------------------------------------------------------------

    def _running_state(self) -> ServiceState:
        """The state, with a dead service's record retired (and written back)."""
        state = self.read_state()
        if state.pid is not None and not service_alive(state.pid):
            _CHILDREN.pop(state.pid, None)
            if state.traffic_pid is not None and service_alive(state.traffic_pid):
                _signal_service(state.traffic_pid, signal.SIGTERM)  # nothing left to send to
            state = state.retired()
            self._write_state(state)
        return state

    def _write_state(self, state: ServiceState) -> None:
        """Write the state atomically: a reader sees the old file or the new one, never half."""
        self.directory.mkdir(parents=True, exist_ok=True)
        temp = self.state_path.with_name(f".{self.state_path.name}.{os.getpid()}.tmp")
        with temp.open("w", encoding="utf-8") as handle:
            handle.write(state.model_dump_json(indent=2))
            handle.flush()
            os.fsync(handle.fileno())
        replace_retrying(temp, self.state_path)  # a reader may hold it open (Windows)

    async def _replace(self, step: str, version: str, log: LogSink) -> None:
        state = self._running_state()
        if state.pid is not None:
            await self._stop_process(step, state, log)
            state = state.retired()
            self._write_state(state)
        port = self.env.port
        if await _port_answers(port):
            raise DeployFailed(
                step,
                f"port {port} is held by something that is not our service (no live service in "
                f"{self.state_path}); stop it or change the environment's base_url",
            )
        proc, log_offset = self._spawn(version, port)
        self._write_state(
            ServiceState(
                pid=proc.pid,
                version=version,
                port=port,
                started_at=time.time(),
                history=state.history,
            )
        )
        await log("info", f"{step}: started {version} on {HOST}:{port} (pid {proc.pid})")
        try:
            status, waited = await self._wait_answering(step, version, proc, log_offset)
        except BaseException:
            # Failed or cancelled mid-start: leave no half-started service and no claim on it.
            if proc.poll() is None:
                _signal_service(proc.pid, _FORCE_STOP)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
            _CHILDREN.pop(proc.pid, None)
            self._write_state(ServiceState(history=state.history))
            raise
        await log("info", f"{step}: {version} answers /health with {status} after {waited:.1f} s")
        traffic = await self._start_traffic(step, proc.pid, log)
        if traffic is not None:
            self._write_state(self.read_state().model_copy(update={"traffic_pid": traffic}))

    def _spawn(self, version: str, port: int) -> tuple[subprocess.Popen[bytes], int]:
        """Start the service detached, so that it outlives this console."""
        entry = self.config.versions.get(version)
        faults = entry.faults if entry is not None else ""
        argv = [
            self.python, "-m", SERVICE_MODULE, "serve",
            "--host", HOST, "--port", str(port),
            "--db", str(self.db_path), "--version", version,
        ]  # fmt: skip
        if faults:
            argv += ["--faults", faults]
        try:
            return self._detached(argv, self.log_path, f"starting {version} on {HOST}:{port}")
        except OSError as exc:
            raise DeployFailed("start", f"cannot run {self.python}: {exc}") from None

    def _detached(
        self, argv: list[str], log_path: Path, banner: str
    ) -> tuple[subprocess.Popen[bytes], int]:
        """Run argv in its own session, its output appended to log_path after a banner line."""
        self.directory.mkdir(parents=True, exist_ok=True)
        detach: dict[str, object] = {}
        if sys.platform == "win32":
            detach["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            detach["start_new_session"] = True  # out of the console's group: Ctrl-C spares it
        with log_path.open("ab") as output:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            output.write(f"--- {stamp} {banner}\n".encode())
            output.flush()
            offset = output.tell()
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                **detach,  # type: ignore[call-overload]
            )
        _CHILDREN[proc.pid] = proc
        return proc, offset

    async def _start_traffic(self, step: str, service_pid: int, log: LogSink) -> int | None:
        """Start the traffic generator against the service; its pid, or None at 0 requests/s.

        A traffic that cannot start is a warning, not a failed deploy: the service runs, and
        the rate gates will say they have nothing to read.
        """
        rps = self.config.traffic_rps
        if rps <= 0:
            await log("info", f"{step}: no traffic (traffic_rps is 0)")
            return None
        argv = [
            self.python, "-m", SERVICE_MODULE, "traffic",
            "--url", self.env.base_url, "--rps", f"{rps:g}",
            "--seconds", str(TRAFFIC_SECONDS), "--service-pid", str(service_pid),
        ]  # fmt: skip
        try:
            proc, _ = self._detached(argv, self.traffic_log_path, f"traffic at {rps:g}/s")
        except OSError as exc:
            await log("warning", f"{step}: cannot start the traffic: {exc}")
            return None
        await log("info", f"{step}: traffic at {rps:g} requests/s (pid {proc.pid})")
        return proc.pid

    async def _stop_traffic(self, step: str, pid: int, log: LogSink) -> None:
        """SIGTERM, up to TRAFFIC_STOP_S for it to go, then SIGKILL; it holds no state."""
        if service_alive(pid):
            _signal_service(pid, signal.SIGTERM)
            if not await self._gone(pid, TRAFFIC_STOP_S):
                _signal_service(pid, _FORCE_STOP)
                await self._gone(pid, TRAFFIC_STOP_S)
            await log("info", f"{step}: traffic stopped (pid {pid})")
        _CHILDREN.pop(pid, None)

    async def _wait_answering(
        self, step: str, version: str, proc: subprocess.Popen[bytes], log_offset: int
    ) -> tuple[int, float]:
        """Until /health gives any HTTP answer; DeployFailed if it exits or stays silent."""
        url = self.env.base_url + "/health"
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=1.0) as client:
            while True:
                code = proc.poll()
                if code is not None:
                    hint = " (is the database migrated?)" if code == 3 else ""
                    raise DeployFailed(
                        step,
                        f"{version} exited at start-up with exit status {code}{hint}; "
                        f"see {self.log_path}",
                        _tail(self.log_path, log_offset),
                        exit_status=code,
                    )
                try:
                    response = await client.get(url)
                except httpx.HTTPError:
                    pass
                else:
                    return response.status_code, time.monotonic() - started
                if time.monotonic() - started > self.start_timeout_s:
                    raise DeployFailed(
                        step,
                        f"{version} did not answer {url} within {self.start_timeout_s:g} s; "
                        f"see {self.log_path}",
                        _tail(self.log_path, log_offset),
                    )
                await asyncio.sleep(0.1)

    async def _stop_process(self, step: str, state: ServiceState, log: LogSink) -> None:
        """SIGTERM, up to stop_timeout_s for it to go, then SIGKILL."""
        assert state.pid is not None
        if state.traffic_pid is not None:
            await self._stop_traffic(step, state.traffic_pid, log)
        pid = state.pid
        await log("info", f"{step}: stopping {state.version} (pid {pid})")
        _signal_service(pid, signal.SIGTERM)
        if await self._gone(pid, self.stop_timeout_s):
            await log("info", f"{step}: {state.version} stopped{self._exit_note(pid)}")
        else:
            await log(
                "warning",
                f"{step}: {state.version} still runs after {self.stop_timeout_s:g} s: killing it",
            )
            _signal_service(pid, _FORCE_STOP)
            if not await self._gone(pid, 5.0):
                raise DeployFailed(step, f"pid {pid} ({state.version}) does not go away")
        _CHILDREN.pop(pid, None)

    @staticmethod
    async def _gone(pid: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while service_alive(pid):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL_S)
        return True

    @staticmethod
    def _exit_note(pid: int) -> str:
        child = _CHILDREN.get(pid)
        if child is None or child.returncode is None:
            return ""
        return f" (exit status {child.returncode})"
