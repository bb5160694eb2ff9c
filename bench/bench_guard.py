"""How fast the guard acts: fault -> rollback start -> health restored (TARGETS.md).

Runs real rollouts against the bundled reference service on 127.0.0.1: deploys a clean
release, injects a fault through the service's admin endpoint at a known instant during
the monitoring window, and reads the journaled instants of the rollback. Prints the
overhead beyond `interval x failure_limit` (the target is <= 250 ms), and beyond one
interval for a critical gate (health down).

    python bench/bench_guard.py [--runs 3] [--interval 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


TRAFFIC_RPS = 50  # plenty of requests between two samples for the rate gates


def write_config(work: Path, interval: float, extra_gates: Sequence[dict[str, Any]] = ()) -> Path:
    """The shipped config on a free port, its traffic at TRAFFIC_RPS, state under `work`."""
    data = json.loads((REPO / "quality-gates-config.json").read_text())
    data["gates"].extend(extra_gates)
    data["environments"]["local"]["base_url"] = f"http://127.0.0.1:{free_port()}"
    data["environments"]["local"]["deployer"]["traffic_rps"] = TRAFFIC_RPS
    data["environments"]["local"]["monitoring"] = {"interval_seconds": interval}
    data["backups"]["directory"] = str(work / "backups")
    data["migrations"] = str(REPO / "migrations")
    data["notifications"] = {"console": False}
    path = work / "config.json"
    path.write_text(json.dumps(data))
    return path


@asynccontextmanager
async def service_running(config: Path, state: Path) -> AsyncIterator[str]:
    """Version 1.0.0 of the reference service, migrated, with the local deployer's traffic
    beside it, until the block ends; yields its base URL."""
    from dhash_console.config import load_config, resolve_environment
    from dhash_console.ops.deploy import build_deployer
    from dhash_console.ops.migrate import apply_migrations

    env = resolve_environment(
        load_config(config), "local", config_dir=config.parent, state_dir=state
    )
    assert env.sqlite_path is not None
    env.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    await apply_migrations(env.sqlite_path, env.migrations_dir, applied_by="bench")
    deployer = build_deployer(env)

    async def log(level: str, message: str) -> None:
        pass

    await deployer.ensure_running("1.0.0", log)  # type: ignore[attr-defined]
    try:
        yield env.base_url
    finally:
        await deployer.stop(log)  # type: ignore[attr-defined]  # its traffic with it


async def one_run(interval: float, fault: dict[str, object]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = write_config(work, interval)
        state = work / "state"
        async with service_running(config, state) as url:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "dhash_console",
                "--config",
                str(config),
                "--state-dir",
                str(state),
                "--json",
                "deploy",
                "--env",
                "local",
                "--version",
                "1.1.0",
                "--duration-minutes",
                "3",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                env={**os.environ, "CI": ""},
            )
            assert proc.stdout is not None
            events: list[dict[str, object]] = []
            fault_at = 0.0
            samples_in_window = 0
            async with httpx.AsyncClient() as client:
                async for raw in proc.stdout:
                    event = json.loads(raw)
                    events.append(event)
                    if event["type"] == "gate_sample" and not fault_at:
                        samples_in_window += 1
                        if samples_in_window == 9:  # three clean rounds first
                            await client.post(f"{url}/admin/faults", json=fault)
                            fault_at = time.time()
            await proc.wait()
    started = next(float(e["at"]) for e in events if e["type"] == "rollback_started")  # type: ignore[arg-type]
    finished = next(float(e["at"]) for e in events if e["type"] == "rollback_finished")  # type: ignore[arg-type]
    return {"to_rollback": started - fault_at, "to_healthy": finished - fault_at}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    interval = args.interval
    cases = [
        ("error_rate (failure_limit 3)", {"error_rate": 0.5}, interval * 3),
        ("health down (critical)", {"health_down": True}, interval * 1),
    ]
    print(f"interval {interval:g} s, {args.runs} runs each, median")
    for name, fault, budget in cases:
        runs = [asyncio.run(one_run(interval, fault)) for _ in range(args.runs)]
        to_rollback = statistics.median(r["to_rollback"] for r in runs)
        to_healthy = statistics.median(r["to_healthy"] for r in runs)
        print(
            f"{name:<30} fault->rollback {to_rollback * 1000:7.0f} ms "
            f"(budget {budget * 1000:.0f} ms, overhead {(to_rollback - budget) * 1000:+.0f} ms, "
            f"target <= +250)   fault->healthy {to_healthy * 1000:7.0f} ms "
            f"(overhead {(to_healthy - budget) * 1000:+.0f} ms, target <= +3250)"
        )


if __name__ == "__main__":
    main()
